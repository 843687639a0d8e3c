"""The scene stage (reconstruction/scene.py): objects placed relative to the posed person, as the
node and replay run it, on a synthetic scene with a known object pose (tests/object_scenes.py);
and what reaches ObjectAffordance and HumanContact (placement, pose, residuals, proximity)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

import object_scenes
from interactvlm_ros.body.fit import BodyFitter, PosedBody
from interactvlm_ros.body.people import PeopleResult, PersonEstimate
from interactvlm_ros.body.placement import Placement
from interactvlm_ros.detection import Detection
from interactvlm_ros.geometry.objects import ObjectLibrary
from interactvlm_ros.pipeline import HumanContactResult, InteractionResult, ObjectAffordanceResult
from interactvlm_ros.reasons import Reason
from interactvlm_ros.reconstruction.scene import PLACED_BY_CONTACT, PLACED_BY_DEPTH, SceneEstimator

K = object_scenes.INTRINSICS
SIZE = (K.width, K.height)
PERSON = Detection("person", (0.0, 0.0, 640.0, 480.0), 0.9, "p1")


@pytest.fixture(scope="module")
def scene():
    """A cup held in the right hand of a person handing it over (2 px box noise)."""
    maker = object_scenes.SceneMaker(BodyFitter())
    return maker.scene(object_scenes.SCENES[0], np.random.default_rng(3), box_noise_px=2.0)


@pytest.fixture(scope="module")
def library():
    return ObjectLibrary(proxies={"cup": ["cylinder", 0.12]})


def people(scene, posed=True) -> PeopleResult:
    body = PosedBody(scene.body_vertices, np.zeros((0, 3), np.int32), scene.body_normals, np.zeros((33, 3)),
                     np.zeros(33), np.ones(33, bool), np.zeros((0, 3, 3)), np.zeros(3), "p1", "anny", 1, False)
    placement = Placement(np.zeros((33, 3), np.float32), np.eye(3), np.zeros(3), "pnp", np.ones(33, bool), 0.0, "px")
    return PeopleResult([PersonEstimate(PERSON, placement=placement, posed=body if posed else None)])


def interaction(scene, library, source="proxy:cylinder", points=None, human=None, box=None, person=PERSON):
    mesh = library.get("cup").mesh
    points = mesh.vertices if points is None else points
    contact = HumanContactResult("anny", scene.human_contact if human is None else human,
                                 np.zeros(0, np.int64), 0.5, ("right hand",), "", True)
    object_contact = scene.object_contact if len(points) == len(scene.object_contact) else np.ones(len(points))
    affordance = ObjectAffordanceResult(source, np.asarray(points, np.float32), object_contact.astype(np.float32),
                                        0.5, "grasp", "", True)
    box = tuple(scene.box) if box is None else box
    return InteractionResult(Detection("cup", box, 0.9, "cup"), contact, affordance, person=person)


def test_the_library_proxy_is_the_scene_object(scene, library):
    np.testing.assert_allclose(library.get("cup").mesh.vertices, scene.object_mesh.vertices, atol=1e-6)


def test_a_cup_without_depth_is_placed_in_the_hand_by_its_contact(scene, library):
    result = SceneEstimator(library).estimate([interaction(scene, library)], people(scene), K, SIZE)
    placed = result.objects[0]
    assert placed.placement == PLACED_BY_CONTACT and placed.fit_status == "converged" and placed.rejections == ()
    assert object_scenes.chamfer(placed.points, scene.placed) < 0.03  # metres
    model = library.get("cup").mesh.vertices
    np.testing.assert_allclose(placed.scale * model @ placed.rotation.T + placed.translation, placed.points, atol=1e-4)
    assert 0.0 <= placed.contact_distance < 0.05 and placed.box_iou > 0.5 and placed.penetration_depth < 0.03
    # Proximity: the cup touches the hand, the feet are far from it.
    assert placed.body_distance.shape == (len(model),) and placed.body_distance.min() < 0.02
    assert placed.object_distance.shape == (len(scene.body_vertices),)
    expected = cKDTree(placed.points).query(scene.body_vertices)[0]
    np.testing.assert_allclose(placed.object_distance, expected, atol=1e-6)
    assert set(result.timings_ms) == {"object_fit", "proximity"} and result.timings_ms["object_fit"] > 0


def test_depth_points_are_checked_not_fitted(scene, library):
    rng = np.random.default_rng(0)
    seen = scene.placed + rng.normal(0.0, 0.002, scene.placed.shape)
    result = SceneEstimator(library).estimate([interaction(scene, library, "depth", seen)], people(scene), K, SIZE)
    placed = result.objects[0]
    assert placed.placement == PLACED_BY_DEPTH and placed.fit_status == ""
    np.testing.assert_array_equal(placed.points, seen.astype(np.float32))
    assert placed.contact_distance < 0.02 and np.isnan(placed.box_iou)
    # Held 10 cm off the hand, the maps disagree by about that much.
    off = seen + 0.10 * (seen.mean(axis=0) - scene.body_vertices[scene.truth_human].mean(axis=0)) / np.linalg.norm(
        seen.mean(axis=0) - scene.body_vertices[scene.truth_human].mean(axis=0))
    far = SceneEstimator(library).estimate([interaction(scene, library, "depth", off)], people(scene), K, SIZE)
    assert far.objects[0].contact_distance > 0.06


def test_what_cannot_be_placed_is_counted_with_its_reason(scene, library):
    stage = SceneEstimator(library)

    def reasons(result):
        return [(r.reason, r.detail) for r in result.objects[0].rejections]

    alone = stage.estimate([interaction(scene, library, person=None)], people(scene), K, SIZE)
    assert alone.objects[0].placement == "" and alone.objects[0].points is None
    ((reason, detail),) = reasons(alone)
    assert reason is Reason.OBJECT_NOT_PLACED and "no person detection" in detail
    ((reason, detail),) = reasons(stage.estimate([interaction(scene, library)], people(scene, posed=False), K, SIZE))
    assert reason is Reason.OBJECT_NOT_PLACED and "'p1' was not posed" in detail
    ((reason, detail),) = reasons(stage.estimate([interaction(scene, library)], people(scene), None, SIZE))
    assert reason is Reason.OBJECT_NOT_PLACED and "no CameraInfo" in detail
    untouched = np.zeros(len(scene.body_vertices))
    empty = stage.estimate([interaction(scene, library, human=untouched)], people(scene), K, SIZE)
    ((reason, detail),) = reasons(empty)
    assert reason is Reason.NO_CONTACT_REGION and empty.objects[0].fit_status.startswith("no_human_contact")
    # Switched off: in the model frame, nothing counted.
    off = stage.estimate([interaction(scene, library)], people(scene), K, SIZE, fit=False)
    assert off.objects[0].placement == "" and off.objects[0].rejections == ()


def test_a_box_at_the_border_is_noted_and_still_fitted(scene, library):
    x0, y0, x1, y1 = scene.box
    clipped = (0.0, y0, x1, y1) if x0 < 320 else (x0, y0, 640.0, y1)
    result = SceneEstimator(library).estimate([interaction(scene, library, box=clipped)], people(scene), K, SIZE)
    assert Reason.OBJECT_BOX_AT_BORDER in [r.reason for r in result.objects[0].rejections]


def test_the_placement_reaches_the_messages(scene, library):
    from std_msgs.msg import Header

    from interactvlm_ros.geometry.body import load_body_model
    from interactvlm_ros.geometry.body_parts import part_vertex_ids
    from interactvlm_ros.ros.conversions import cloud_fields, detections_to_msg, interaction_msg, posed_body_from_cloud

    cup = interaction(scene, library)
    result = SceneEstimator(library).estimate([cup], people(scene), K, SIZE)
    placed = result.objects[0]
    body = load_body_model("anny")
    person = people(scene).persons[0]
    header = Header(frame_id="camera_color_optical_frame")
    msg = interaction_msg(header, detections_to_msg([cup.detection], header).detections[0], cup, 0.5,
                          "camera_color_optical_frame", person, part_vertex_ids(body.part_labels, body.part_names),
                          placed)
    affordance = msg.object_affordance
    assert affordance.placement == "contact_fit" and affordance.fit_status == "converged"
    assert affordance.header.frame_id == "camera_color_optical_frame"
    q = affordance.pose.orientation
    rotation = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
    position = [affordance.pose.position.x, affordance.pose.position.y, affordance.pose.position.z]
    fields = cloud_fields(affordance.points)
    points = np.stack([fields["x"], fields["y"], fields["z"]], axis=1)
    model = library.get("cup").mesh.vertices
    np.testing.assert_allclose(affordance.scale * model @ rotation.T + position, points, atol=1e-4)
    np.testing.assert_allclose(fields["body_distance"], placed.body_distance)
    assert affordance.contact_distance == pytest.approx(placed.contact_distance, rel=1e-6)
    cloud = posed_body_from_cloud(msg.human_contact.posed_body)
    np.testing.assert_allclose(cloud_fields(msg.human_contact.posed_body)["object_distance"], placed.object_distance)
    assert len(cloud.vertices) == len(scene.body_vertices)
    # Not placed: model frame, identity pose, NaN residuals, the fit's reason.
    failed = dataclasses.replace(placed, placement="", points=None, fit_status="box_mismatch: IoU 0.1",
                                 body_distance=None, object_distance=None)
    msg = interaction_msg(header, detections_to_msg([cup.detection], header).detections[0], cup, 0.5,
                          "camera_color_optical_frame", None, None, failed)
    assert msg.object_affordance.header.frame_id == "cup_model" and msg.object_affordance.placement == ""
    assert msg.object_affordance.fit_status == "box_mismatch: IoU 0.1"


def test_a_message_states_the_reconstruction_replay_scores(scene, library):
    """ros.replay.reconstructions reads back what the messages say: the posed body with its
    model's triangles, the placed object's points with the proxy's triangles."""
    from std_msgs.msg import Header

    from interactvlm_ros.geometry.body import load_body_model
    from interactvlm_ros.geometry.body_parts import part_vertex_ids
    from interactvlm_ros.pipeline import EstimateResult
    from interactvlm_ros.ros.conversions import detections_to_msg, interaction_array_msg
    from interactvlm_ros.ros.replay import reconstructions

    cup = interaction(scene, library)
    placed = SceneEstimator(library).estimate([cup], people(scene), K, SIZE)
    body = load_body_model("anny")
    header = Header(frame_id="camera")
    result = people(scene)
    result.persons[0] = dataclasses.replace(result.persons[0], landmarks=_landmarks())
    message = interaction_array_msg(header, detections_to_msg([cup.detection], header).detections,
                                    EstimateResult([cup]), 0.5, "camera", "", result,
                                    part_vertex_ids(body.part_labels, body.part_names), placed)
    faces = np.zeros((1, 3), np.int64)
    (item,) = reconstructions(7, message, {"anny": faces}, library)
    assert item.stamp_ns == 7 and item.detection_id == "cup" and item.placement == "contact_fit"
    np.testing.assert_allclose(item.body_vertices, scene.body_vertices, atol=1e-6)
    assert item.body_faces is faces and item.body_model == "anny"
    np.testing.assert_allclose(item.object_vertices, placed.objects[0].points, atol=1e-6)
    np.testing.assert_array_equal(item.object_faces, library.get("cup").mesh.faces)
    (unknown,) = reconstructions(7, message, {}, library)  # no triangles for the body: not a body
    assert unknown.body_vertices is None and unknown.object_vertices is not None


def _landmarks():
    from interactvlm_ros.body.landmarks import PersonLandmarks

    return PersonLandmarks(np.zeros((33, 2)), np.ones(33), np.zeros((33, 3)), "p1", (0.0, 0.0, 10.0, 10.0))


def test_the_mesh_fitted_is_the_one_the_results_are_on(scene, library):
    """A geometry override (a dataset's object mesh) is the mesh fitted; points that are not a
    mesh of the library (a dataset's point cloud) are not fitted, and say so."""
    from interactvlm_ros.geometry.objects import ObjectGeometry

    stage = SceneEstimator(library)
    mesh = library.get("cup").mesh
    gadget = dataclasses.replace(interaction(scene, library, source="mesh:dataset#gadget"),
                                 detection=Detection("gadget", tuple(scene.box), 0.9, "gadget"))
    override = {"gadget": ObjectGeometry.from_mesh(mesh, "mesh:dataset#gadget")}
    fitted = stage.estimate([gadget], people(scene), K, SIZE, geometries=override).objects[0]
    assert fitted.placement == PLACED_BY_CONTACT and object_scenes.chamfer(fitted.points, scene.placed) < 0.03
    (unknown,) = stage.estimate([gadget], people(scene), K, SIZE).objects[0].rejections
    assert unknown.reason is Reason.OBJECT_NOT_PLACED and "not a mesh or proxy" in unknown.detail
    cloud = interaction(scene, library, source="points:dataset#cup")
    (points,) = stage.estimate([cloud], people(scene), K, SIZE).objects[0].rejections
    assert points.reason is Reason.OBJECT_NOT_PLACED and "points:dataset#cup" in points.detail
