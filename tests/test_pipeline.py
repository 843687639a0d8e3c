"""The RLL pipeline end to end with the tiny checkpoint (random weights: plumbing only)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from interactvlm_ros.geometry.body import load_body_model
from interactvlm_ros.geometry.mesh import TriangleMesh
from interactvlm_ros.geometry.objects import ObjectGeometry, ObjectLibrary, proxy_mesh
from interactvlm_ros.localize.builder import load_mvloc
from interactvlm_ros.localize.tiny import write_tiny_checkpoint
from interactvlm_ros.pipeline import Detection, InteractionEstimator

SIZE = 256


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


@pytest.fixture(scope="module")
def camera_photo():
    from skimage import data

    return np.repeat(data.camera()[:, :, None], 3, axis=2)  # a man with a camera on a tripod


@pytest.fixture(scope="module")
def estimator(model):
    objects = ObjectLibrary(proxies={"camera": ["box", 0.25], "tripod": ["capsule", 1.5]})
    return InteractionEstimator(model, model, load_body_model("anny"), objects, render_size=SIZE)


CAMERA = Detection("camera", (230.0, 60.0, 360.0, 180.0), 0.91, "det-0")


def test_real_photo_gives_finite_maps_of_the_right_sizes(estimator, camera_photo):
    result = estimator.estimate(camera_photo, [CAMERA], image_region="full")
    assert result.weights_are_random and result.model_id == "tiny"
    (interaction,) = result.interactions
    assert interaction.detection == CAMERA and interaction.notes == ()
    assert interaction.person is None and interaction.image_region == (0, 0, 512, 512)
    contact = interaction.human_contact
    assert contact.body_model == "anny" and contact.has_mask and contact.answer == "[SEG]"
    p = contact.vertex_probabilities
    assert p.shape == (13718,) and p.dtype == np.float32 and np.all(np.isfinite(p))
    assert np.all((p >= 0) & (p <= 1)) and p.max() > 0
    np.testing.assert_array_equal(contact.contact_vertices, np.flatnonzero(p >= 0.5))
    affordance = interaction.object_affordance
    geometry = estimator.objects.get("camera")
    assert affordance.geometry_source == "proxy:box"
    np.testing.assert_array_equal(affordance.points, geometry.mesh.vertices)
    assert affordance.probabilities.shape == (geometry.mesh.num_vertices,)
    assert affordance.probabilities.dtype == np.float32 and np.all(np.isfinite(affordance.probabilities))
    assert set(result.timings_ms) >= {"image_encode", "generate", "sam_encode", "decode", "lift", "total"}
    assert all(v >= 0 for v in result.timings_ms.values())


def test_detections_share_the_image_encoding_and_the_renders(estimator, model, camera_photo, monkeypatch):
    calls = []
    original = model.encode_image
    monkeypatch.setattr(model, "encode_image", lambda image: calls.append(1) or original(image))
    detections = [CAMERA, Detection("tripod", (200, 150, 400, 500), 0.8, "det-1"),
                  Detection("camera", (10, 10, 50, 50), 0.3, "det-2"), Detection("giraffe", (0, 0, 5, 5), 0.2, "det-3")]
    result = estimator.estimate(camera_photo, detections)
    assert len(calls) == 1  # one model serves both tasks: one encoding for four detections
    assert [i.detection.id for i in result.interactions] == ["det-0", "det-1", "det-2", "det-3"]
    unknown = result.interactions[3]
    assert unknown.object_affordance is None and "giraffe" in unknown.notes[-1]
    assert unknown.human_contact is not None
    # The same class, the same answer and renders: identical maps.
    np.testing.assert_array_equal(result.interactions[0].object_affordance.probabilities,
                                  result.interactions[2].object_affordance.probabilities)
    # One set of views per mesh, prepared once: the second "camera" reused the first's.
    camera_views = estimator.object_views(estimator.objects.get("camera"))
    assert estimator.object_views(estimator.objects.get("camera")) is camera_views


def test_geometry_override_by_detection_id(estimator, camera_photo):
    sphere = ObjectGeometry.from_mesh(proxy_mesh("sphere", 0.2), "mesh:package://demo/ball.obj")
    result = estimator.estimate(camera_photo, [CAMERA], geometries={"det-0": sphere})
    affordance = result.interactions[0].object_affordance
    assert affordance.geometry_source == "mesh:package://demo/ball.obj"
    assert affordance.points.shape == sphere.mesh.vertices.shape


def test_contact_only_and_smplx_conversion(model, camera_photo):
    # A stand-in "SMPL-H": the conversion is checked with a hand-made matrix on its vertices.
    body = load_body_model("anny")
    smplh_like = TriangleMesh(body.vertices, body.faces, name="smplh")
    rows = np.array([0, 1, 1])
    matrix = sp.csr_matrix((np.array([1.0, 0.5, 0.5]), (rows, np.array([10, 20, 30]))), shape=(2, body.num_vertices))
    estimator = InteractionEstimator(model, None, smplh_like, ObjectLibrary(), render_size=SIZE, smplx_matrix=matrix)
    (interaction,) = estimator.estimate(camera_photo, [CAMERA]).interactions
    assert interaction.object_affordance is None
    contact = interaction.human_contact
    assert contact.body_model == "smplx" and contact.vertex_probabilities.shape == (2,)
    plain = InteractionEstimator(model, None, smplh_like, ObjectLibrary(), render_size=SIZE)
    p = plain.estimate(camera_photo, [CAMERA]).interactions[0].human_contact.vertex_probabilities
    np.testing.assert_allclose(contact.vertex_probabilities, [p[10], 0.5 * p[20] + 0.5 * p[30]], rtol=1e-6)
    with pytest.raises(ValueError, match="SMPL-H body"):
        InteractionEstimator(model, None, body, ObjectLibrary(), smplx_matrix=matrix)


def test_bad_input(estimator, model):
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        estimator.estimate(np.zeros((10, 10), np.uint8), [CAMERA])
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        estimator.estimate(np.zeros((10, 10, 3), np.float32), [CAMERA])
    with pytest.raises(ValueError, match="at least one"):
        InteractionEstimator(None, None, load_body_model("anny"), ObjectLibrary())
    with pytest.raises(ValueError, match="threshold"):
        InteractionEstimator(model, None, load_body_model("anny"), ObjectLibrary(), threshold=1.5)
    assert estimator.estimate(np.zeros((8, 8, 3), np.uint8), []).interactions == []


def test_point_cloud_geometry_is_lifted_onto_its_points(estimator, camera_photo):
    from interactvlm_ros.geometry.objects import PointCloudGeometry

    rng = np.random.default_rng(4)
    points = (rng.normal(size=(300, 3)) * [0.05, 0.1, 0.05] + [1.0, 2.0, 3.0]).astype(np.float32)
    cloud = PointCloudGeometry(points, "points:piad/mug_0001.txt")
    result = estimator.estimate(camera_photo, [CAMERA], geometries={"det-0": cloud})
    affordance = result.interactions[0].object_affordance
    assert affordance.geometry_source == "points:piad/mug_0001.txt"
    np.testing.assert_array_equal(affordance.points, points)  # reported in the cloud's own frame
    assert affordance.probabilities.shape == (300,) and np.all(np.isfinite(affordance.probabilities))
    assert affordance.probabilities.max() > 0  # splats of the front points were seen and lifted


def test_depth_gives_points_in_the_camera_optical_frame(estimator, camera_photo):
    """Registered depth of a flat object 1.5 m away in front of a wall: the affordance is
    estimated on 2048 points sampled from the object's depth, in the camera optical frame."""
    from interactvlm_ros.geometry.depth import Intrinsics
    from interactvlm_ros.geometry.depth import DepthFrame
    from interactvlm_ros.ros.processing import FrameProcessor, Processed, ProcessingSettings
    from interactvlm_ros.ros.bags import detections_msg, image_msg

    height, width = camera_photo.shape[:2]
    depth = np.full((height, width), 3.0, np.float32)  # wall
    depth[60:180, 230:360] = 1.5  # the camera on its tripod
    depth[100:110, 250:260] = np.nan  # holes are ignored
    intrinsics = Intrinsics(fx=500.0, fy=500.0, cx=255.5, cy=255.5, width=width, height=height)
    reports = []
    processor = FrameProcessor(estimator, lambda reason, detail: reports.append(reason))
    image = image_msg(camera_photo, 5_000_000_000, frame_id="head_camera_color_optical_frame")
    dets = detections_msg([Detection("camera", (225, 55, 365, 185), 0.9, "cam-1")], 5_000_000_000)
    message, result, *_ = processor.process(image, dets, ProcessingSettings(),
                                        depth=DepthFrame(depth, intrinsics, "head_camera_depth_optical_frame"))
    markers = processor.markers(Processed(message, result, None), ProcessingSettings())
    cloud = next(m for m in markers.markers if m.ns == "object")
    assert cloud.header.frame_id == "head_camera_depth_optical_frame" and cloud.pose.orientation.w == 1.0
    assert len(cloud.points) == 2048
    affordance = message.interactions[0].object_affordance
    assert affordance.geometry_source == "depth"
    assert affordance.header.frame_id == "head_camera_depth_optical_frame"
    from interactvlm_ros.ros.conversions import affordance_from_cloud

    points, values = affordance_from_cloud(affordance.points)
    assert points.shape == (2048, 3) and np.allclose(points[:, 2], 1.5)  # only the object, not the wall
    u = points[:, 0] * 500.0 / 1.5 + 255.5
    assert u.min() >= 229 and u.max() <= 360  # inside the object's columns
    # With a mesh preferred, the class's proxy is used instead.
    message, *_ = processor.process(image, dets, ProcessingSettings(markers=False, geometry_preference="mesh"),
                                   depth=DepthFrame(depth, intrinsics, "x"))
    assert message.interactions[0].object_affordance.geometry_source == "proxy:box"
    # Depth of another size is not used (it must be registered to the colour image): counted,
    # and the pair is processed with the class's proxy.
    reports.clear()
    message, *_ = processor.process(image, dets, ProcessingSettings(markers=False),
                                   depth=DepthFrame(depth[:100], intrinsics, "x"))
    assert "bad_depth" in reports
    assert message.interactions[0].object_affordance.geometry_source == "proxy:box"


def test_answer_without_seg_gives_no_mask_and_says_why(tmp_path, camera_photo):
    """Plainly random weights do not answer [SEG]: with a 2-token limit both answers stop at
    the limit, carry no mask (all zeros) and report stop_reason "max_new_tokens"."""
    directory = write_tiny_checkpoint(tmp_path / "plain", emit_seg=False)
    plain = load_mvloc(directory, directory / "clip")
    objects = ObjectLibrary(proxies={"camera": ["box", 0.25]})
    estimator = InteractionEstimator(plain, plain, load_body_model("anny"), objects, render_size=64,
                                     max_new_tokens=2)
    (interaction,) = estimator.estimate(camera_photo, [CAMERA]).interactions
    for part, values in ((interaction.human_contact, interaction.human_contact.vertex_probabilities),
                         (interaction.object_affordance, interaction.object_affordance.probabilities)):
        assert part.stop_reason == "max_new_tokens" and not part.has_mask and not values.any()
    assert InteractionEstimator(plain, None, load_body_model("anny"), objects).max_new_tokens == 512
    # The node and replay count such answers apart (diagnostics / replay_summary.json).
    from interactvlm_ros.ros.bags import detections_msg, image_msg
    from interactvlm_ros.ros.processing import FrameProcessor, ProcessingSettings

    reports = []
    processor = FrameProcessor(estimator, lambda reason, detail: reports.append((reason, detail)))
    processor.process(image_msg(camera_photo, 1, frame_id="camera"),
                      detections_msg([Detection("camera", (225, 55, 365, 185), 0.9, "cam-1")], 1),
                      ProcessingSettings(markers=False, image_region="full"))
    assert reports == [("answer_limit_reached", "contact answer for 'camera' (cam-1) reached max_new_tokens (2) "
                                                "without [SEG]"),
                       ("answer_limit_reached", "affordance answer for 'camera' (cam-1) reached max_new_tokens (2) "
                                                "without [SEG]")]
