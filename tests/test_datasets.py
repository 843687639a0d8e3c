"""Evaluation inputs: ground-truth sidecars, input bags and the DAMON / PIAD converters.

The datasets are built here in tmp_path in their release formats (tiny: 2-3 images), converted,
and the bag is read back with rosbags + rclpy deserialisation: every stamp, pixel, detection
and ground-truth value is compared exactly with what the dataset holds.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from interactvlm_ros.detection import Detection
from interactvlm_ros.ros import bags, datasets
from interactvlm_ros.eval.groundtruth import (GroundTruthSample, load_ground_truth,
                                              save_ground_truth, sidecar_path)

rclpy_serialization = pytest.importorskip("rclpy.serialization")
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

MSG_CLASSES = {bags.IMAGE_MSGTYPE: Image, bags.COMPRESSED_IMAGE_MSGTYPE: CompressedImage,
               bags.DETECTIONS_MSGTYPE: Detection2DArray}
START, PERIOD = datasets.DEFAULT_START_NS, datasets.DEFAULT_PERIOD_NS


# --------------------------------------------------------------------------------------------
# helpers


def make_image(path: Path, height: int, width: int, seed: int) -> np.ndarray:
    """Write a random RGB image (format from the suffix) and return its decoded pixels."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"quality": 95} if path.suffix == ".jpg" else {}
    PILImage.fromarray(rgb).save(path, **options)
    return np.asarray(PILImage.open(path).convert("RGB"))


def read_bag(path):
    """[(topic, msgtype, timestamp, message)] of a bag, deserialised with rclpy."""
    return [(topic, msgtype, stamp, rclpy_serialization.deserialize_message(raw, MSG_CLASSES[msgtype]))
            for topic, msgtype, stamp, raw in bags.read_messages(path)]


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def detection_tuples(msg: Detection2DArray):
    """(id, label, score, bbox_xyxy) of each detection, read back with the project's converter."""
    from interactvlm_ros.ros.conversions import detection_from_msg

    return [(d.id, d.label, d.score, tuple(d.bbox_xyxy)) for d in
            (detection_from_msg(det, i) for i, det in enumerate(msg.detections))]


def split_frames(messages, image_topic=bags.IMAGE_TOPIC):
    """Pair image and detections messages by bag timestamp; check stamps agree."""
    images = [(t, m) for topic, _, t, m in messages if topic == image_topic]
    dets = [(t, m) for topic, _, t, m in messages if topic == bags.DETECTIONS_TOPIC]
    assert [t for t, _ in images] == [t for t, _ in dets]
    for (t, image), (_, det) in zip(images, dets):
        assert stamp_ns(image) == stamp_ns(det) == t
        assert all(stamp_ns(d) == t for d in det.detections)
    return [(t, image, det) for (t, image), (_, det) in zip(images, dets)]


def whole(rgb):
    h, w = rgb.shape[:2]
    return (0.0, 0.0, float(w), float(h))


def ids_to_contact(ids):
    contact = np.zeros(6890, np.float32)
    contact[list(ids)] = 1.0
    return contact


# --------------------------------------------------------------------------------------------
# ground truth sidecar


def samples_for_roundtrip():
    rng = np.random.default_rng(3)
    return [
        GroundTruthSample(1_000, "cup", "cup", "smplh", rng.random(6890).astype(np.float32)),
        GroundTruthSample(1_000, "track-2", "chair", "smplx", rng.random(10475)),
        GroundTruthSample(2_000, "bag", "Bag", affordance=rng.random(2048),
                          points=rng.normal(size=(2048, 3)), affordance_type="lift"),
        GroundTruthSample(3_000, "both", "mug", "anny", np.zeros(13718), rng.random(5),
                          rng.normal(size=(5, 3)), "grasp"),
    ]


def test_groundtruth_round_trip(tmp_path):
    samples = samples_for_roundtrip()
    path = save_ground_truth(tmp_path / "run.groundtruth.npz", samples)
    loaded = load_ground_truth(path)
    assert list(loaded) == [s.key for s in samples]
    for sample in samples:
        got = loaded[sample.key]
        for name in ("image_stamp_ns", "detection_id", "object_label", "body_model", "affordance_type"):
            assert getattr(got, name) == getattr(sample, name)
        for name in ("contact", "affordance", "points"):
            want = getattr(sample, name)
            if want is None:
                assert getattr(got, name) is None
            else:
                assert getattr(got, name).dtype == np.float32
                np.testing.assert_array_equal(getattr(got, name), want)
    with np.load(path, allow_pickle=False) as raw:  # plain arrays only
        assert raw["stamps"].dtype == np.int64 and "contact/0" in raw.files
    assert load_ground_truth(save_ground_truth(tmp_path / "empty.npz", [])) == {}


@pytest.mark.parametrize("kwargs, message", [
    (dict(contact=np.full(6890, 1.5), body_model="smplh"), "in \\[0, 1\\]"),
    (dict(contact=np.full(6890, np.nan), body_model="smplh"), "non-finite"),
    (dict(contact=np.zeros(100), body_model="smplh"), "6890 vertices"),
    (dict(contact=np.zeros((2, 6890)), body_model="smplh"), "1-D"),
    (dict(contact=np.zeros(6890)), "needs a body_model"),
    (dict(affordance=np.zeros(4)), "go together"),
    (dict(affordance=np.zeros(4), points=np.zeros((5, 3))), "5 points but 4"),
    (dict(affordance=np.zeros(4), points=np.zeros((4, 2))), "shape \\(N, 3\\)"),
    (dict(affordance=np.zeros(1), points=np.full((1, 3), np.inf)), "non-finite"),
    (dict(), "needs contact, affordance or both"),
    (dict(image_stamp_ns=-1, contact=np.zeros(6890), body_model="smpl"), "image_stamp_ns"),
    (dict(image_stamp_ns=1.5, contact=np.zeros(6890), body_model="smpl"), "image_stamp_ns"),
    (dict(detection_id="", contact=np.zeros(6890), body_model="smpl"), "detection_id"),
])
def test_groundtruth_sample_validation(kwargs, message):
    fields = dict(image_stamp_ns=5, detection_id="d", object_label="cup")
    fields.update(kwargs)
    with pytest.raises(ValueError, match=message):
        GroundTruthSample(**fields)


def test_groundtruth_file_validation(tmp_path):
    sample = GroundTruthSample(1, "a", "cup", "smpl", np.zeros(6890))
    with pytest.raises(ValueError, match="duplicate"):
        save_ground_truth(tmp_path / "dup.npz", [sample, sample])
    with pytest.raises(FileNotFoundError):
        load_ground_truth(tmp_path / "missing.npz")
    good = dict(np.load(save_ground_truth(tmp_path / "good.npz", [sample])))

    def write(name, **changes):
        arrays = dict(good, **changes)
        arrays = {k: v for k, v in arrays.items() if v is not None}
        np.savez(tmp_path / name, **arrays)
        return tmp_path / name

    cases = {
        "no_version.npz": (dict(format_version=None), "format_version"),
        "version.npz": (dict(format_version=np.array(99)), "format_version 99"),
        "no_ids.npz": (dict(ids=None), "missing index"),
        "ragged.npz": (dict(ids=np.array(["a", "b"])), "index array ids"),
        "extra.npz": ({"contact/7": np.zeros(6890, np.float32)}, "unexpected array"),
        "range.npz": ({"contact/0": np.full(6890, 2, np.float32)}, "sample 0"),
        "pickled.npz": (dict(ids=np.array([{"a": 1}], dtype=object)), "not a ground-truth"),
    }
    for name, (changes, message) in cases.items():
        with pytest.raises(ValueError, match=message):
            load_ground_truth(write(name, **changes))
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not a ground-truth"):
        load_ground_truth(tmp_path / "text.npz")


def test_sidecar_path():
    assert sidecar_path("/data/run.mcap") == Path("/data/run.groundtruth.npz")
    assert sidecar_path("/data/run.db3") == Path("/data/run.groundtruth.npz")
    assert sidecar_path("/data/run") == Path("/data/run.groundtruth.npz")
    assert sidecar_path("/data/run/") == Path("/data/run.groundtruth.npz")
    assert sidecar_path("run") == Path("run.groundtruth.npz")


# --------------------------------------------------------------------------------------------
# input bags


def test_input_bag_messages_and_connections(tmp_path):
    from rosbags.rosbag2 import Reader

    rgb = [np.random.default_rng(i).integers(0, 256, (6, 8, 3), dtype=np.uint8) for i in range(2)]
    frames = [bags.Frame(1_700_000_000_123_456_789, rgb[0], [Detection("cup", (0, 0, 3, 4), 0.75, "t1"),
                                                             Detection("chair", (3, 2.5, 5, 3.5), 0.5, "t2")],
                         frame_id="head_camera"),
              bags.Frame(1_700_000_000_223_456_789, rgb[1], [])]
    path = bags.write_input_bag(tmp_path / "run", frames)
    with Reader(path) as reader:
        topics = {c.topic: c for c in reader.connections}
        assert {t: c.msgtype for t, c in topics.items()} == {
            bags.IMAGE_TOPIC: bags.IMAGE_MSGTYPE, bags.DETECTIONS_TOPIC: bags.DETECTIONS_MSGTYPE}
        for connection in reader.connections:
            assert connection.msgdef.data.strip()
            assert connection.digest == installed_type_hash(connection.msgtype)
        assert reader.message_count == 4
    pairs = split_frames(read_bag(path))
    assert [t for t, _, _ in pairs] == [f.stamp_ns for f in frames]
    for frame, (_, image, det) in zip(frames, pairs):
        assert (image.height, image.width, image.encoding, image.step) == (6, 8, "rgb8", 24)
        assert bytes(image.data) == frame.rgb.tobytes()
        assert image.header.frame_id == det.header.frame_id == frame.frame_id
        assert detection_tuples(det) == [(d.id, d.label, d.score, tuple(float(v) for v in d.bbox_xyxy))
                                         for d in frame.detections]
    # rosbags decodes the rclpy-serialised CDR with the stored definitions
    typestore = bags.project_typestore()
    raw = next(r for t, _, _, r in bags.read_messages(path, [bags.DETECTIONS_TOPIC]))
    decoded = typestore.deserialize_cdr(raw, bags.DETECTIONS_MSGTYPE)
    assert [d.id for d in decoded.detections] == ["t1", "t2"]
    assert decoded.detections[0].results[0].hypothesis.class_id == "cup"
    # a bare storage file reads too
    mcap = next(path.glob("*.mcap"))
    assert [m[:3] for m in bags.read_messages(mcap)] == [m[:3] for m in bags.read_messages(path)]


def installed_type_hash(msgtype: str) -> str:
    """RIHS01 hash of an installed interface, from its share/<pkg>/msg/<Type>.json."""
    package, _, name = msgtype.split("/")
    prefixes = os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) + [sys.prefix]
    for prefix in filter(None, prefixes):
        path = Path(prefix) / "share" / package / "msg" / f"{name}.json"
        if path.is_file():
            hashes = json.loads(path.read_text())["type_hashes"]
            return next(h["hash_string"] for h in hashes if h["type_name"] == msgtype)
    pytest.skip(f"no installed type description of {msgtype}")


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_input_bag_compressed(tmp_path, storage):
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[4:12, 4:12] = (200, 40, 10)
    original = bags.encode_jpeg(rgb, 90)
    frames = [bags.Frame(10, rgb, [Detection("cup", (4, 4, 12, 12), 1.0, "a")], jpeg=original),
              bags.Frame(20, rgb, [Detection("cup", (4, 4, 12, 12), 1.0, "a")])]
    path = bags.write_input_bag(tmp_path / "run", frames, compressed=True, storage=storage)
    pairs = split_frames(read_bag(path), bags.COMPRESSED_IMAGE_TOPIC)
    assert [p[1].format for p in pairs] == ["jpeg", "jpeg"]
    assert bytes(pairs[0][1].data) == original
    import cv2

    assert bytes(pairs[1][1].data) == bags.encode_jpeg(rgb)  # encoded at jpeg_quality=95
    decoded = cv2.imdecode(np.frombuffer(bytes(pairs[1][1].data), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    assert decoded.shape == rgb.shape and np.abs(decoded.astype(int) - rgb).mean() < 8


def test_input_bag_with_depth_round_trips_through_the_node_decoders(tmp_path):
    """Frames with registered depth write a depth image and a CameraInfo of their stamp that
    the node's own decoders (processing.depth_frame) read back exactly, in metres; a frame with
    intrinsics but no depth (a photo: people placed by PnP) writes its CameraInfo alone."""
    from sensor_msgs.msg import CameraInfo

    from interactvlm_ros.ros.processing import depth_frame

    rgb = np.zeros((6, 8, 3), np.uint8)
    millimetres = np.arange(48, dtype=np.uint16).reshape(6, 8) * 100
    metres = millimetres.astype(np.float32) / 1000
    k = [50.0, 0.0, 3.5, 0.0, 60.0, 2.5, 0.0, 0.0, 1.0]
    frames = [bags.Frame(10, rgb, [], depth=millimetres, k=k), bags.Frame(20, rgb, []),
              bags.Frame(30, rgb, [], depth=metres, k=k), bags.Frame(40, rgb, [], k=k)]
    path = bags.write_input_bag(tmp_path / "run", frames)
    messages = {(topic, t): raw for topic, _, t, raw in bags.read_messages(path)}
    assert sorted(t for topic, t in messages if topic == bags.DEPTH_TOPIC) == [10, 30]
    assert sorted(t for topic, t in messages if topic == bags.CAMERA_INFO_TOPIC) == [10, 30, 40]
    alone = rclpy_serialization.deserialize_message(messages[(bags.CAMERA_INFO_TOPIC, 40)], CameraInfo)
    assert (alone.width, alone.height, list(alone.k)) == (8, 6, k)
    for stamp, encoding in ((10, "16UC1"), (30, "32FC1")):
        depth = rclpy_serialization.deserialize_message(messages[(bags.DEPTH_TOPIC, stamp)], Image)
        info = rclpy_serialization.deserialize_message(messages[(bags.CAMERA_INFO_TOPIC, stamp)], CameraInfo)
        assert depth.encoding == encoding and depth.header.stamp.nanosec == info.header.stamp.nanosec == stamp
        assert list(info.p) == [50.0, 0.0, 3.5, 0.0, 0.0, 60.0, 2.5, 0.0, 0.0, 0.0, 1.0, 0.0]
        frame = depth_frame(depth, info, "camera")
        np.testing.assert_allclose(frame.metres, np.where(metres > 0, metres, np.nan), rtol=1e-6)  # 0: no depth
        assert (frame.intrinsics.fx, frame.intrinsics.fy, frame.intrinsics.cx, frame.intrinsics.cy) == (50, 60, 3.5, 2.5)
    from interactvlm_ros.reasons import Rejected

    with pytest.raises(Rejected, match="bad_depth: depth image: image_too_large"):  # before any conversion
        depth_frame(depth, info, "camera", max_pixels=47)
    with pytest.raises(ValueError, match="depth needs k"):
        bags.write_input_bag(tmp_path / "nok", [bags.Frame(1, rgb, [], depth=millimetres)])
    with pytest.raises(ValueError, match=r"\(H, W\) uint16 mm or float32 m"):
        bags.write_input_bag(tmp_path / "i32", [bags.Frame(1, rgb, [], depth=millimetres.astype(np.int32), k=k)])


def test_input_bag_errors(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    (tmp_path / "exists").mkdir()
    with pytest.raises(FileExistsError):
        bags.write_input_bag(tmp_path / "exists", [bags.Frame(1, rgb)])
    with pytest.raises(ValueError, match="storage"):
        bags.write_input_bag(tmp_path / "a", [bags.Frame(1, rgb)], storage="rosbag1")
    bad = {
        "stamps": ([bags.Frame(2, rgb), bags.Frame(2, rgb)], "increase"),
        "rgb": ([bags.Frame(1, rgb[:, :, 0])], "uint8"),
        "score": ([bags.Frame(1, rgb, [Detection("cup", (0.5, 0.5, 1.5, 1.5), 1.5, "a")])], "score"),
        "box": ([bags.Frame(1, rgb, [Detection("cup", (1.5, 0.5, 0.5, 1.5), 0.5, "a")])], "box"),
        "ids": ([bags.Frame(1, rgb, [Detection("cup", (0.5, 0.5, 1.5, 1.5), 0.5, "a")] * 2)], "duplicate"),
    }
    for name, (frames, message) in bad.items():
        with pytest.raises(ValueError, match=message):
            bags.write_input_bag(tmp_path / name, frames)
        assert not (tmp_path / name).exists()


# --------------------------------------------------------------------------------------------
# DAMON


OBJECTWISE = [
    {"cup": [1, 2, 3, 6889], "supporting": np.array([10, 11], np.int64)},
    {"chair": list(range(100, 140))},
    {"bottle": []},  # no contact at all: the image is skipped
]


def make_damon_release(root: Path, objectwise=OBJECTWISE) -> dict:
    """DECO release layout: datasets/Release_Datasets/damon/hot_dca_test.npz + images."""
    names = [f"datasets/HOT-Annotated/images/{n}" for n in ("a.jpg", "b.png", "c.jpg")]
    pixels = [make_image(root / n, 20 + 2 * i, 30 + 4 * i, i) for i, n in enumerate(names)]
    binary = np.stack([np.maximum.reduce([ids_to_contact(v) for v in d.values()]) for d in OBJECTWISE])
    npz = root / "datasets" / "Release_Datasets" / "damon" / "hot_dca_test.npz"
    npz.parent.mkdir(parents=True)
    np.savez(npz, imgname=np.array(names), contact_label=binary,
             contact_label_objectwise=np.array(objectwise, dtype=object),
             pose=np.zeros((3, 72)))
    return {"names": names, "pixels": pixels, "binary": binary}


def test_convert_damon_objectwise(tmp_path):
    data = make_damon_release(tmp_path / "deco")
    result = datasets.convert_damon(tmp_path / "deco", tmp_path / "out" / "damon_test")
    assert (result.frames, result.samples) == (2, 3)
    assert len(result.skipped) == 1 and "c.jpg" in result.skipped[0]
    assert result.sidecar == tmp_path / "out" / "damon_test.groundtruth.npz"

    pairs = split_frames(read_bag(result.bag))
    assert [t for t, _, _ in pairs] == [START, START + PERIOD]
    for (_, image, _), rgb in zip(pairs, data["pixels"]):
        assert (image.height, image.width, image.encoding) == (*rgb.shape[:2], "rgb8")
        assert bytes(image.data) == rgb.tobytes()
    assert detection_tuples(pairs[0][2]) == [("cup", "cup", 1.0, whole(data["pixels"][0])),
                                             ("supporting", "support object or ground", 1.0,
                                              whole(data["pixels"][0]))]
    assert detection_tuples(pairs[1][2]) == [("chair", "chair", 1.0, whole(data["pixels"][1]))]

    truth = load_ground_truth(result.sidecar)
    assert set(truth) == {(START, "cup"), (START, "supporting"), (START + PERIOD, "chair")}
    for (stamp, det_id), sample in truth.items():
        image_index = (stamp - START) // PERIOD
        assert sample.body_model == "smpl" and sample.affordance is None
        np.testing.assert_array_equal(sample.contact, ids_to_contact(OBJECTWISE[image_index][det_id]))
    assert truth[(START, "supporting")].object_label == "support object or ground"


def test_convert_damon_binary_interactvlm_layout_compressed(tmp_path):
    """InteractVLM's copy: damon/test/*.npy, images under damon/test/images/<basename>."""
    base = tmp_path / "data" / "damon" / "test"
    pixels = [make_image(base / "images" / n, 24, 32, 10 + i) for i, n in enumerate(["x.jpg", "y.png"])]
    binary = np.zeros((2, 6890), np.float32)
    binary[0, :50] = 1
    binary[1, 6000:] = 1
    np.save(base / "imgname.npy", np.array(["/cluster/damon/train/images/x.jpg", "images/y.png"]))
    np.save(base / "contact_label.npy", binary)
    result = datasets.convert_damon(tmp_path / "data", tmp_path / "bin", compressed=True,
                                    start_ns=5_000_000_000, period_ns=1_000)
    assert (result.frames, result.samples, result.skipped) == (2, 2, [])
    pairs = split_frames(read_bag(result.bag), bags.COMPRESSED_IMAGE_TOPIC)
    assert [t for t, _, _ in pairs] == [5_000_000_000, 5_000_001_000]
    assert bytes(pairs[0][1].data) == (base / "images" / "x.jpg").read_bytes()  # copied verbatim
    import cv2

    png = cv2.imdecode(np.frombuffer(bytes(pairs[1][1].data), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    assert png.shape == pixels[1].shape
    obj = datasets.DAMON_BINARY_OBJECT
    for (t, _, det), rgb, contact in zip(pairs, pixels, binary):
        assert detection_tuples(det) == [(obj, obj, 1.0, whole(rgb))]
        np.testing.assert_array_equal(load_ground_truth(result.sidecar)[(t, obj)].contact, contact)


def test_convert_damon_limit_split_file_and_errors(tmp_path):
    make_damon_release(tmp_path / "deco")
    npz = tmp_path / "deco" / "datasets" / "Release_Datasets" / "damon" / "hot_dca_test.npz"
    result = datasets.convert_damon(tmp_path / "deco", tmp_path / "one", limit=1, contact="binary")
    assert (result.frames, result.samples) == (1, 1)
    assert detection_tuples(read_bag(result.bag)[1][3])[0][0] == datasets.DAMON_BINARY_OBJECT
    # root may be the npz itself: imgname is relative to the DECO repository root above it
    result = datasets.convert_damon(npz, tmp_path / "from_npz")
    assert (result.frames, result.samples) == (2, 3)
    with pytest.raises(FileExistsError):
        datasets.convert_damon(tmp_path / "deco", tmp_path / "one")
    with pytest.raises(FileNotFoundError, match="trainval"):
        datasets.convert_damon(tmp_path / "deco", tmp_path / "x", split="trainval")
    with pytest.raises(ValueError, match="contact must be"):
        datasets.convert_damon(npz, tmp_path / "y", contact="semantic")
    assert not (tmp_path / "y").exists()


class SavesFile:
    """Unpickles to ``np.save(target, ...)``: what a crafted file runs under allow_pickle=True."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return np.save, (str(self.target), np.zeros(1))


@pytest.mark.parametrize("layout", ["npz", "npy"])
def test_damon_object_array_naming_other_globals_is_refused(tmp_path, layout):
    target = tmp_path / "written"
    objectwise = [{"cup": [1, 2, 3], "evil": SavesFile(target)}, {"chair": [4]}, {"bottle": []}]
    if layout == "npz":
        make_damon_release(tmp_path / "data", objectwise)
        path = tmp_path / "data" / "datasets" / "Release_Datasets" / "damon" / "hot_dca_test.npz"
    else:  # InteractVLM's copy: damon/test/*.npy
        path = tmp_path / "data" / "damon" / "test" / "contact_label_objectwise.npy"
        path.parent.mkdir(parents=True)
        np.save(path.parent / "imgname.npy", np.array(["a.jpg", "b.jpg", "c.jpg"]))
        np.save(path, np.array(objectwise, dtype=object))
    with pytest.raises(pickle.UnpicklingError) as error:
        datasets.convert_damon(tmp_path / "data", tmp_path / "out")
    assert isinstance(error.value, ValueError)
    for part in (str(path), "global numpy.save", "trust_pickle=True"):
        assert part in str(error.value)
    assert not list(tmp_path.glob("written*")) and not (tmp_path / "out").exists()


def test_damon_trust_pickle_loads_other_globals(tmp_path):
    """range() entries (pickled as builtins.range) are refused unless trust_pickle=True."""
    ranges = [{"cup": [1, 2, 3, 6889], "supporting": range(10, 12)}, {"chair": range(100, 140)},
              {"bottle": []}]  # the ids of OBJECTWISE
    make_damon_release(tmp_path / "deco", ranges)
    with pytest.raises(ValueError, match=r"global builtins\.range.*trust_pickle=True"):
        datasets.convert_damon(tmp_path / "deco", tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    result = datasets.convert_damon(tmp_path / "deco", tmp_path / "trusted", trust_pickle=True)
    assert (result.frames, result.samples) == (2, 3)
    truth = load_ground_truth(result.sidecar)
    for (stamp, det_id), sample in truth.items():
        np.testing.assert_array_equal(sample.contact,
                                      ids_to_contact(OBJECTWISE[(stamp - START) // PERIOD][det_id]))


def test_damon_contact_forms():
    np.testing.assert_array_equal(datasets.damon_contact([0, 5]), ids_to_contact([0, 5]))
    dense = np.zeros(6890, np.int64)
    dense[7] = 1
    np.testing.assert_array_equal(datasets.damon_contact(dense), ids_to_contact([7]))
    np.testing.assert_array_equal(datasets.damon_contact(dense.astype(bool)), ids_to_contact([7]))
    assert not datasets.damon_contact([]).any()
    with pytest.raises(ValueError, match="vertex ids"):
        datasets.damon_contact([6890])
    with pytest.raises(ValueError, match="vertex ids"):
        datasets.damon_contact([1.5])


# --------------------------------------------------------------------------------------------
# PIAD


def write_point_txt(path: Path, shape_id: str, obj: str, points, table):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [" ".join([shape_id, obj] + [repr(float(v)) for v in (*p, *row)]) + " "
             for p, row in zip(points, table)]
    path.write_text("\n".join(lines) + "\n")


def labelme(path: Path, shapes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": "3.16.7", "shapes": [
        {"label": label, "points": points, "shape_type": "rectangle"} for label, points in shapes]}))


def make_piad(top: Path) -> dict:
    """IAG-Net layout: Data/Seen/{Img,Point,Box}_Test.txt listing paths relative to ``top``."""
    rng = np.random.default_rng(0)
    seen = top / "Data" / "Seen"
    samples = [("Bag", "lift", "txt", [[50.5, 20.25], [10.0, 10.0]]),
               ("Chair", "sit", "npy", [[0.0, 0.0], [500.0, 400.0]]),
               ("Mug", "wrapgrasp", "txt", None)]
    img_lines, point_lines, box_lines, expected = [], [], [], []
    for i, (obj, afford, kind, rect) in enumerate(samples):
        image = f"Data/Seen/Img/Test/{obj}/{afford}/Img_Test_{obj}_{afford}_{i + 1}.jpg"
        pixels = make_image(top / image, 40 + i, 60, 20 + i)
        points = rng.normal(size=(datasets.PIAD_POINTS, 3)).astype(np.float32)
        table = rng.random((datasets.PIAD_POINTS, 17)).astype(np.float32)
        table[rng.random(table.shape) < 0.5] = 0.0
        point = f"Data/Seen/Point/Test/{obj}/Point_Test_{obj}_{i + 1}.{kind}"
        if kind == "txt":
            write_point_txt(top / point, f"{i:032x}"[-32:].replace("0", "c"), obj, points, table)
        else:
            (top / point).parent.mkdir(parents=True, exist_ok=True)
            np.save(top / point, np.hstack([points, table]))
        box = f"Data/Seen/Box/Test/{obj}/{afford}/Img_Test_{obj}_{afford}_{i + 1}.json"
        labelme(top / box, [("subject", [[1, 2], [3, 4]])] + ([("object", rect)] if rect else []))
        img_lines.append(image), point_lines.append(point), box_lines.append(box)
        expected.append(dict(obj=obj, afford=afford, pixels=pixels, points=points,
                             affordance=table[:, datasets.PIAD_AFFORDANCES.index(afford)]))
    for name, lines in (("Img", img_lines), ("Point", point_lines), ("Box", box_lines)):
        (seen / f"{name}_Test.txt").write_text("\n".join(lines) + "\n")
    return {"root": seen, "expected": expected}


def test_convert_piad(tmp_path):
    data = make_piad(tmp_path)
    with pytest.warns(UserWarning, match="no 'object' rectangle"):
        result = datasets.convert_piad(data["root"], tmp_path / "piad_test", storage="sqlite3")
    assert (result.frames, result.samples, result.skipped) == (3, 3, [])
    assert next(result.bag.glob("*.db3"))
    pairs = split_frames(read_bag(result.bag))
    assert [t for t, _, _ in pairs] == [START + i * PERIOD for i in range(3)]
    boxes = [(10.0, 10.0, 50.5, 20.25), (0.0, 0.0, 60.0, 41.0),  # 2nd clipped to 60x41
             whole(data["expected"][2]["pixels"])]
    truth = load_ground_truth(result.sidecar)
    for (t, image, det), want, box in zip(pairs, data["expected"], boxes):
        assert bytes(image.data) == want["pixels"].tobytes()
        assert detection_tuples(det) == [(want["obj"], want["obj"], 1.0, box)]
        sample = truth[(t, want["obj"])]
        assert (sample.object_label, sample.affordance_type, sample.body_model) == (want["obj"], want["afford"], "")
        assert sample.contact is None
        np.testing.assert_array_equal(sample.points, want["points"])
        np.testing.assert_array_equal(sample.affordance, want["affordance"])


def test_convert_piad_skips_and_errors(tmp_path):
    data = make_piad(tmp_path)
    root = data["root"]
    (tmp_path / "Data/Seen/Point/Test/Chair/Point_Test_Chair_2.npy").unlink()
    with warnings.catch_warnings():  # the limit stops before the entry without an object box is read
        warnings.simplefilter("error")
        result = datasets.convert_piad(root, tmp_path / "partial", limit=1, compressed=True)
    assert (result.frames, result.samples) == (1, 1)
    pairs = split_frames(read_bag(result.bag), bags.COMPRESSED_IMAGE_TOPIC)
    image = tmp_path / "Data/Seen/Img/Test/Bag/lift/Img_Test_Bag_lift_1.jpg"
    assert bytes(pairs[0][1].data) == image.read_bytes()
    with pytest.warns(UserWarning):
        result = datasets.convert_piad(root, tmp_path / "all")
    assert result.frames == 2 and "Chair" in result.skipped[0]

    lines = (root / "Point_Test.txt").read_text().splitlines()
    (root / "Point_Test.txt").write_text("\n".join(lines[:2]))
    with pytest.raises(ValueError, match="not paired"):
        datasets.convert_piad(root, tmp_path / "unpaired")
    with pytest.raises(FileNotFoundError, match="Img_Train.txt"):
        datasets.convert_piad(root, tmp_path / "train", split="Train")


def test_piad_readers(tmp_path):
    assert datasets.piad_names("a/Img_Test_StorageFurniture_open_12.jpg") == ("StorageFurniture", "open")
    assert datasets.piad_names("Img/Test/Knife/cut/0001.png") == ("Knife", "cut")
    with pytest.raises(ValueError):
        datasets.piad_names("Img/Test/Knife/frob/0001.png")
    path = tmp_path / "p.txt"
    path.write_text("id Bag 1 2 3 0.5 0\nid Bag 4 5 6 1 0.25\n")
    points, table = datasets.read_piad_points(path)
    np.testing.assert_array_equal(points, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(table, [[0.5, 0], [1, 0.25]])
    path.write_text("1 2 3 0.5\n4 5 6\n")
    with pytest.raises(ValueError, match="columns"):
        datasets.read_piad_points(path)
