"""The released variants through the estimator and the node's processing (tiny RANDOM
models of each variant's release layout; reference agreement is in test_variants.py)."""

from __future__ import annotations

import numpy as np
import pytest

from interactvlm_ros.detection import Detection
from interactvlm_ros.geometry.body import load_body_model
from interactvlm_ros.geometry.depth import DepthFrame, Intrinsics, contact_points_from_depth
from interactvlm_ros.geometry.objects import ObjectLibrary
from interactvlm_ros.pipeline import InteractionEstimator
from interactvlm_ros.ros.bags import detections_msg, image_msg
from interactvlm_ros.ros.conversions import cloud_fields
from interactvlm_ros.ros.images import depth_to_array
from interactvlm_ros.ros.processing import FrameProcessor, Processed, ProcessingSettings

CUP = Detection("cup", (60, 40, 100, 80), 0.9, "c1")
PERSON = Detection("person", (20, 10, 120, 120), 0.9, "p1")


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(4).integers(0, 255, (120, 160, 3), np.uint8)


def test_contact_points_from_depth_are_the_back_projected_contact_pixels():
    # A wall 2 m away, fx = fy = 100, principal point at the image centre (pixel 2, 1).
    intrinsics = Intrinsics(100.0, 100.0, 2.0, 1.0, 5, 3)
    metres = np.full((3, 5), 2.0, np.float32)
    metres[0, 4] = np.nan  # no depth there
    probabilities = np.zeros((3, 5), np.float32)
    probabilities[0, 4] = probabilities[1, 3] = probabilities[2, 0] = 0.9
    probabilities[1, 2] = 0.4  # below the threshold
    points, values = contact_points_from_depth(probabilities, DepthFrame(metres, intrinsics, "optical"), 0.5)
    np.testing.assert_allclose(points, [[0.02, 0.0, 2.0], [-0.04, 0.02, 2.0]], atol=1e-7)
    np.testing.assert_array_equal(values, np.float32([0.9, 0.9]))
    # Threshold 0: every predicted pixel, never the zeros where nothing was predicted.
    points, values = contact_points_from_depth(probabilities, DepthFrame(metres, intrinsics, "optical"), 0.0)
    np.testing.assert_array_equal(values, np.float32([0.4, 0.9, 0.9]))
    with pytest.raises(ValueError, match="registered"):
        contact_points_from_depth(np.zeros((4, 5)), DepthFrame(metres, intrinsics, "optical"), 0.5)


def test_2d_contact_model_gives_a_per_pixel_map_of_the_camera_image(tiny_variant_model, image, monkeypatch):
    """interactvlm-2d-hcontact: no body views; the map is in the image's pixels, the model's
    crop pasted back (0 elsewhere); its prompt is the demo's 2D question."""
    model = tiny_variant_model("2d-hcontact")
    estimator = InteractionEstimator(model, None, load_body_model("anny"), ObjectLibrary(), render_size=64)
    assert estimator.contact_is_2d
    monkeypatch.setattr(estimator, "body_views", lambda: pytest.fail("a 2D model renders no body views"))
    estimator.warm_up()
    questions, segmented = [], []
    generate_batch, image_answer_masks = model.generate_batch, model.image_answer_masks
    monkeypatch.setattr(model, "generate_batch", lambda requests, *a, **k:
                        questions.extend(q for _, q in requests) or generate_batch(requests, *a, **k))
    monkeypatch.setattr(model, "image_answer_masks", lambda answer, rgb, *a, **k:
                        segmented.append(rgb.shape) or image_answer_masks(answer, rgb, *a, **k))
    (interaction,) = estimator.estimate(image, [CUP], persons=[PERSON], region_margin=0.0).interactions
    contact = interaction.human_contact
    assert questions == ["Segment the area on the human's body that is in direct contact with the cup in this image."]
    assert segmented == [(110, 110, 3)]  # SAM segments the crop the model saw
    assert contact.body_model == "" and contact.vertex_probabilities.size == 0 and contact.has_mask
    p = contact.image_probabilities
    assert p.shape == (120, 160) and p.dtype == np.float32 and np.all((p >= 0) & (p <= 1))
    x0, y0, x1, y1 = interaction.image_region
    assert (x0, y0, x1, y1) == (15, 10, 125, 120)
    outside = np.ones_like(p, bool)
    outside[y0:y1, x0:x1] = False
    assert not p[outside].any() and p[~outside].min() > 0  # sigmoid > 0 inside the crop


def test_2d_contact_with_depth_gives_points_in_the_camera_frame(tiny_variant_model, image):
    model = tiny_variant_model("2d-hcontact")
    estimator = InteractionEstimator(model, None, load_body_model("anny"), ObjectLibrary(), render_size=64)
    metres = np.full(image.shape[:2], 1.5, np.float32)
    depth = DepthFrame(metres, Intrinsics(120.0, 120.0, 79.5, 59.5, 160, 120), "camera_optical")
    reports = []
    processor = FrameProcessor(estimator, lambda reason, detail: reports.append((reason, detail)))
    settings = ProcessingSettings(markers=False, threshold=1e-9, region_margin=0.0)  # every crop pixel is contact
    message, result, *_ = processor.process(image_msg(image, 9, frame_id="camera_optical"),
                                        detections_msg([PERSON, CUP], 9, "camera_optical"), settings, depth=depth)
    assert reports == []
    contact = message.interactions[0].human_contact
    assert contact.body_model == "" and contact.num_vertices == 0 and len(contact.vertex_probabilities) == 0
    assert (contact.contact_image.width, contact.contact_image.height) == (160, 120)
    assert contact.contact_image.encoding == "32FC1" and contact.contact_image.header.stamp.nanosec == 9
    np.testing.assert_array_equal(depth_to_array(contact.contact_image),
                                  result.interactions[0].human_contact.image_probabilities)
    cloud = contact.contact_points
    assert cloud.header.frame_id == "camera_optical" and cloud.width == 110 * 110  # the crop's pixels
    fields = cloud_fields(cloud)
    assert list(fields) == ["x", "y", "z", "contact"]
    np.testing.assert_allclose(fields["z"], 1.5)
    # The first crop pixel, (u, v) = (15, 10): x = (15 - 79.5) * 1.5 / 120.
    np.testing.assert_allclose([fields["x"][0], fields["y"][0]], [(15 - 79.5) * 1.5 / 120, (10 - 59.5) * 1.5 / 120],
                               rtol=1e-6)
    # RViz: the touching body parts drawn where they are, in the optical frame.
    markers = processor.markers(Processed(message, result, None), ProcessingSettings())
    (touching,) = [m for m in markers.markers if m.ns == "contact_points"]
    assert touching.header.frame_id == "camera_optical" and len(touching.points) == 110 * 110
    assert touching.points[0].z == pytest.approx(1.5)
    # Without depth: the image only, an empty cloud.
    message, *_ = processor.process(image_msg(image, 10, frame_id="camera_optical"),
                                   detections_msg([PERSON, CUP], 10, "camera_optical"), settings)
    assert message.interactions[0].human_contact.contact_points.width == 0


def test_joint_model_gives_both_object_maps_and_handover_clearance(tiny_variant_model, image):
    """interactvlm-3d-hcontact-ocontact as the only model: human contact, affordance and the
    object contact (its object-contact question); task handover adds the clearance, computed
    from that contact map."""
    from interactvlm_ros.handover import grasp_clearance

    model = tiny_variant_model("hcontact-ocontact")
    estimator = InteractionEstimator(model, model, load_body_model("anny"),
                                     ObjectLibrary(proxies={"cup": ["cylinder", 0.1]}), render_size=64)
    assert estimator.estimates_object_contact and not estimator.contact_is_2d
    reports = []
    processor = FrameProcessor(estimator, lambda reason, detail: reports.append((reason, detail)))
    message, result, *_ = processor.process(image_msg(image, 3, frame_id="camera"), detections_msg([PERSON, CUP], 3),
                                        ProcessingSettings(markers=False, task="handover"))
    assert reports == []
    affordance = result.interactions[0].object_affordance
    assert affordance.contact is not None and affordance.contact.shape == affordance.probabilities.shape
    assert affordance.contact_answer.endswith("SEG]")  # a mask token of the joint model
    np.testing.assert_array_equal(affordance.grasp_clearance,
                                  grasp_clearance(affordance.points, affordance.contact, 0.5, 0.05))
    out = message.interactions[0]
    assert message.task == "handover" and out.object_contact_answer == affordance.contact_answer
    fields = cloud_fields(out.object_affordance.points)
    assert list(fields) == ["x", "y", "z", "affordance", "contact", "robot_grasp_clearance"]
    np.testing.assert_array_equal(fields["contact"], affordance.contact)
    np.testing.assert_array_equal(fields["robot_grasp_clearance"], affordance.grasp_clearance)
    # The default task: both maps, no clearance.
    message, *_ = processor.process(image_msg(image, 4, frame_id="camera"), detections_msg([PERSON, CUP], 4),
                                   ProcessingSettings(markers=False))
    assert list(cloud_fields(message.interactions[0].object_affordance.points)) == ["x", "y", "z", "affordance",
                                                                                   "contact"]
    # A contact map with no point at the threshold: the hold was not found, which is no "all
    # clear": no clearance field, the reason counted.
    reports.clear()
    message, result, *_ = processor.process(image_msg(image, 5, frame_id="camera"), detections_msg([PERSON, CUP], 5),
                                        ProcessingSettings(markers=False, task="handover", threshold=1.0))
    affordance = result.interactions[0].object_affordance
    assert affordance.contact is not None and affordance.contact.max() < 1.0 and affordance.grasp_clearance is None
    assert list(cloud_fields(message.interactions[0].object_affordance.points)) == ["x", "y", "z", "affordance",
                                                                                   "contact"]
    assert [r for r, _ in reports] == ["no_object_contact_for_handover"]
    assert reports[0][1] == (f"detection 'c1': no grasp clearance: no point of the object-contact map reaches the "
                             f"threshold 1 (largest {affordance.contact.max():.3f}): the person's hold on the object "
                             "was not found")


def test_a_2d_model_is_refused_as_affordance_model(tiny_variant_model):
    model = tiny_variant_model("2d-hcontact")
    with pytest.raises(ValueError, match="is a 2D model .* use it as the contact model"):
        InteractionEstimator(None, model, load_body_model("anny"), ObjectLibrary(), render_size=64)


def test_the_node_settings_load_a_tiny_release_variant(tmp_path):
    """use_tiny_checkpoint + tiny_checkpoint_variant 2d-hcontact: a 2D contact model and no
    affordance model (the 2D model has no object views); scene_contact on it notes nothing
    (a random model is not checked against the scene views)."""
    from interactvlm_ros.loading import build_estimator

    lines = []
    estimator, keepalive = build_estimator({"use_tiny_checkpoint": True, "tiny_checkpoint_variant": "2d-hcontact",
                                            "cache_dir": str(tmp_path / "cache")}, log=lines.append)
    try:
        assert estimator.contact_is_2d and estimator.affordance_model is None
        assert estimator.model_id == "tiny-random-2d-hcontact"
        assert lines == ["use_tiny_checkpoint: the model has RANDOM weights; outputs are meaningless"]
    finally:
        del estimator
        keepalive.cleanup()


def test_an_object_contact_answer_without_mask_gives_no_map_and_no_clearance(tiny_variant_model, image):
    """Unsafe otherwise: zeros would say "nobody touches it" and the clearance would be 1."""
    plain = tiny_variant_model("hcontact-ocontact", emit_seg=False)  # answers run into the limit
    estimator = InteractionEstimator(plain, plain, load_body_model("anny"),
                                     ObjectLibrary(proxies={"cup": ["cylinder", 0.1]}), render_size=64,
                                     max_new_tokens=2)
    reports = []
    processor = FrameProcessor(estimator, lambda reason, detail: reports.append((reason, detail)))
    message, result, *_ = processor.process(image_msg(image, 1), detections_msg([PERSON, CUP], 1),
                                        ProcessingSettings(markers=False, task="handover"))
    affordance = result.interactions[0].object_affordance
    assert affordance.contact is None and affordance.grasp_clearance is None
    assert affordance.contact_stop_reason == "max_new_tokens"
    assert list(cloud_fields(message.interactions[0].object_affordance.points)) == ["x", "y", "z", "affordance"]
    assert ("no_object_contact_for_handover", "detection 'c1': no grasp clearance: the object-contact answer ended "
                                              "without a mask (max_new_tokens)") in reports
    assert sum(r == "answer_limit_reached" for r, _ in reports) == 3  # contact, affordance, object contact


def test_the_joint_model_as_contact_model_gives_object_contact_beside_another_affordance_model(
        tiny_variant_model, tiny_model, image):
    joint = tiny_variant_model("hcontact-ocontact")
    estimator = InteractionEstimator(joint, tiny_model, load_body_model("anny"),
                                     ObjectLibrary(proxies={"cup": ["cylinder", 0.1]}), render_size=64)
    assert estimator.object_contact_model is joint
    (interaction,) = estimator.estimate(image, [CUP], persons=[PERSON], task="handover").interactions
    affordance = interaction.object_affordance
    assert affordance.answer == "[SEG]" and affordance.contact_answer == "[HSEG]"  # each model its own answer
    assert affordance.contact is not None and affordance.grasp_clearance is not None


def test_scene_contact_for_people_alone_and_once_for_the_full_image(tiny_model, image):
    estimator = InteractionEstimator(tiny_model, None, load_body_model("anny"), ObjectLibrary(), render_size=64)
    reports = []
    processor = FrameProcessor(estimator, lambda reason, detail: reports.append((reason, detail)))
    other = Detection("person", (120, 10, 160, 120), 0.8, "p2")
    settings = ProcessingSettings(markers=False, scene_contact=True)
    message, *_ = processor.process(image_msg(image, 2), detections_msg([PERSON, other], 2), settings)
    assert [i.detection.id for i in message.interactions] == ["scene/p1", "scene/p2"] and reports == []
    import dataclasses

    full = dataclasses.replace(settings, image_region="full")
    message, *_ = processor.process(image_msg(image, 3), detections_msg([PERSON, other], 3), full)
    (scene,) = message.interactions  # every person would see the same whole image: asked once
    assert scene.detection.id == "scene" and scene.person_detection_id == ""
    assert processor.process(image_msg(image, 4), detections_msg([PERSON], 4),
                             ProcessingSettings(markers=False)) is None  # no scene contact asked: nothing to do


def test_2d_contact_with_unregistered_depth_keeps_the_image_map(tiny_variant_model, image, monkeypatch):
    model = tiny_variant_model("2d-hcontact")
    estimator = InteractionEstimator(model, None, load_body_model("anny"), ObjectLibrary(), render_size=64)
    encoded = []
    original = model.image_embedding
    monkeypatch.setattr(model, "image_embedding", lambda rgb: encoded.append(rgb.shape) or original(rgb))
    reports = []
    processor = FrameProcessor(estimator, lambda reason, detail: reports.append((reason, detail)))
    wrong = DepthFrame(np.ones((60, 80), np.float32), Intrinsics(60.0, 60.0, 39.5, 29.5, 80, 60), "camera_optical")
    second = Detection("bottle", (70, 50, 90, 90), 0.8, "c2")  # the same person: the same region
    message, *_ = processor.process(image_msg(image, 5, frame_id="camera_optical"),
                                   detections_msg([PERSON, CUP, second], 5, "camera_optical"),
                                   ProcessingSettings(markers=False), depth=wrong)
    assert [r for r, _ in reports] == ["bad_depth"] and "registered" in reports[0][1]
    for interaction in message.interactions:
        assert interaction.human_contact.contact_image.width == 160
        assert interaction.human_contact.contact_points.width == 0
    assert len(encoded) == 1  # SAM encodes a region once for all its detections
