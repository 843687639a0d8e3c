"""Which person an object belongs to, and the image region the model sees for the pair."""

from __future__ import annotations

import numpy as np
import pytest

from interactvlm_ros.association import associate, associate_person, box_gap, intersection_area, pair_region
from interactvlm_ros.detection import Detection
from interactvlm_ros.geometry.body import load_body_model
from interactvlm_ros.geometry.objects import ObjectLibrary
from interactvlm_ros.pipeline import InteractionEstimator


def person(box, id_, score=0.9):
    return Detection("person", box, score, id_)


def test_overlap_and_gap_of_known_boxes():
    assert intersection_area((0, 0, 10, 10), (5, 5, 20, 20)) == 25.0
    assert intersection_area((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0  # touching edges
    assert box_gap((0, 0, 10, 10), (13, 14, 20, 20)) == 5.0  # 3-4-5 corner to corner
    assert box_gap((0, 0, 10, 10), (20, 2, 30, 8)) == 10.0
    assert box_gap((0, 0, 10, 10), (5, 5, 6, 6)) == 0.0


def test_largest_overlap_wins_then_nearest_then_score():
    cup = Detection("cup", (100, 100, 140, 140), 0.8, "cup")
    a = person((0, 0, 110, 300), "a")        # overlaps the cup by 10 x 40
    b = person((120, 0, 400, 300), "b")      # overlaps by 20 x 40
    assert associate_person(cup, [a, b]).id == "b"
    far = person((300, 0, 400, 300), "far")  # gap 160
    near = person((0, 0, 80, 300), "near")   # gap 20
    assert associate_person(cup, [far, near]).id == "near"
    twin_low = person((0, 0, 80, 300), "low", 0.5)
    assert associate_person(cup, [twin_low, near]).id == "near"  # same geometry: higher score
    assert associate_person(cup, []) is None


def test_region_is_the_square_around_the_pair_with_its_margin():
    # Union 100..200 x 100..150 (longer side 100); margin 0.1 -> side 120 around (150, 125).
    assert pair_region([(100, 100, 200, 150)], 640, 480, 0.1) == (90, 65, 210, 185)
    assert pair_region([(100, 100, 150, 150), (150, 120, 200, 130)], 640, 480, 0.0) == (100, 75, 200, 175)


def test_region_is_moved_inside_the_image_then_clipped():
    # Near the left edge: moved right, still square.
    assert pair_region([(0, 100, 50, 200)], 640, 480, 0.0) == (0, 100, 100, 200)
    # Larger than the image's height: clipped to it, full height.
    assert pair_region([(10, 10, 600, 300)], 640, 480, 0.0) == (10, 0, 600, 480)
    # A 3-pixel box: the region keeps MIN_REGION_SIDE (32 px), centred, inside the image.
    assert pair_region([(100, 100, 103, 103)], 640, 480, 0.1) == (85, 85, 117, 117)
    assert pair_region([(0, 0, 3, 3)], 20, 640, 0.1) == (0, 0, 20, 32)
    # Larger than the whole image: the whole image.
    assert pair_region([(0, 0, 640, 480)], 640, 480, 0.5) == (0, 0, 640, 480)
    with pytest.raises(ValueError, match="margin"):
        pair_region([(0, 0, 1, 1)], 10, 10, -0.1)


def test_two_cups_two_people_and_a_cup_alone():
    left_cup = Detection("cup", (100, 200, 140, 240), 0.9, "cup-left")
    right_cup = Detection("cup", (500, 200, 540, 240), 0.9, "cup-right")
    people = [person((380, 50, 560, 470), "bob"), person((60, 40, 240, 460), "alice")]
    left, right = associate([left_cup, right_cup], people, 640, 480)
    assert (left.person.id, right.person.id) == ("alice", "bob")
    assert left.region != right.region and not left.full_image and not right.full_image
    for association in (left, right):
        x0, y0, x1, y1 = association.region
        for box in (association.detection.bbox_xyxy, association.person.bbox_xyxy):
            assert x0 <= box[0] and y0 <= box[1] and x1 >= box[2] and y1 >= box[3]  # both boxes inside
    (alone,) = associate([left_cup], [], 640, 480)
    assert alone.person is None and alone.full_image and alone.region == (0, 0, 640, 480)
    (chosen_full,) = associate([left_cup], people, 640, 480, image_region="full")
    assert chosen_full.person is None and chosen_full.region == (0, 0, 640, 480)
    with pytest.raises(ValueError, match="image_region"):
        associate([left_cup], people, 640, 480, image_region="crop")


def test_the_estimator_shows_each_pair_its_own_crop(tiny_model, monkeypatch):
    """Two same-class objects held by two people: two different crops reach CLIP, two person
    ids come back; without a person the whole image is used and the result says so."""
    model = tiny_model
    estimator = InteractionEstimator(model, model, load_body_model("anny"),
                                     ObjectLibrary(proxies={"cup": ["cylinder", 0.1]}), render_size=64)
    image = np.random.default_rng(0).integers(0, 255, (240, 320, 3), np.uint8)
    seen = []
    original = model.encode_image
    monkeypatch.setattr(model, "encode_image", lambda rgb: seen.append(rgb.copy()) or original(rgb))
    cups = [Detection("cup", (40, 100, 60, 120), 0.9, "c1"), Detection("cup", (250, 100, 270, 120), 0.9, "c2")]
    people = [person((0, 20, 100, 230), "p1"), person((220, 20, 320, 230), "p2")]
    result = estimator.estimate(image, cups, persons=people, region_margin=0.0)
    first, second = result.interactions
    assert (first.person.id, second.person.id) == ("p1", "p2") and first.notes == second.notes == ()
    assert first.image_region == (0, 20, 210, 230) and second.image_region == (110, 20, 320, 230)
    assert len(seen) == 2  # one CLIP encoding per distinct region (one model serves both tasks)
    np.testing.assert_array_equal(seen[0], image[20:230, 0:210])
    np.testing.assert_array_equal(seen[1], image[20:230, 110:320])
    seen.clear()
    alone = estimator.estimate(image, cups[:1])
    (interaction,) = alone.interactions
    assert interaction.person is None and interaction.image_region == (0, 0, 320, 240)
    assert "no person detection" in interaction.notes[0]
    np.testing.assert_array_equal(seen[0], image)
    with pytest.raises(ValueError, match="image_region"):
        estimator.estimate(image, cups, image_region="box")


def test_processing_keeps_people_for_association_and_reports_it(tiny_model):
    """Through the node's FrameProcessor: people are not estimated and do not count towards
    max_detections (even if listed in ignore_classes); each object's message names its person
    and the region; an object in an image without people is reported (no_person_for_object)."""
    from interactvlm_ros.ros.bags import detections_msg, image_msg
    from interactvlm_ros.ros.processing import FrameProcessor, ProcessingSettings

    estimator = InteractionEstimator(tiny_model, None, load_body_model("anny"), ObjectLibrary(), render_size=64)
    reports = []
    processor = FrameProcessor(estimator, lambda reason, detail: reports.append((reason, detail)))
    image = np.random.default_rng(1).integers(0, 255, (240, 320, 3), np.uint8)
    detections = [person((0, 20, 100, 230), "p1"), Detection("cup", (40, 100, 60, 120), 0.9, "c1"),
                  person((220, 20, 320, 230), "p2"), Detection("cup", (250, 100, 270, 120), 0.8, "c2")]
    settings = ProcessingSettings(markers=False, max_detections=2, region_margin=0.0, ignore_classes=("person",))
    message, *_ = processor.process(image_msg(image, 5, frame_id="camera"), detections_msg(detections, 5), settings)
    assert reports == []
    assert [i.detection.id for i in message.interactions] == ["c1", "c2"]
    assert [i.person_detection_id for i in message.interactions] == ["p1", "p2"]
    roi = message.interactions[1].image_region
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height, roi.do_rectify) == (110, 20, 210, 210, False)
    message, *_ = processor.process(image_msg(image, 6, frame_id="camera"), detections_msg(detections[1:2], 6),
                                   settings)
    ((reason, detail),) = reports
    assert reason == "no_person_for_object" and "'c1'" in detail
    (interaction,) = message.interactions
    roi = interaction.image_region
    assert interaction.person_detection_id == ""
    assert (roi.x_offset, roi.y_offset, roi.width, roi.height) == (0, 0, 320, 240)
    reports.clear()
    alone = detections_msg(detections[:1], 7)  # a person only
    assert processor.process(image_msg(image, 7, frame_id="camera"), alone, settings) is None
    assert reports == [("pairs_without_valid_detections", "no valid object detection in the pair")]


def test_scene_contact_is_one_human_contact_per_person(tiny_model, monkeypatch):
    """scene_contact: per person one result for the class "scene" (InteractVLM's scene-model
    class name) in that person's region, human contact only, after the objects; one for the
    whole image without people; through the processor as Interactions with class "scene"."""
    from interactvlm_ros.ros.bags import detections_msg, image_msg
    from interactvlm_ros.ros.processing import FrameProcessor, ProcessingSettings

    estimator = InteractionEstimator(tiny_model, tiny_model, load_body_model("anny"),
                                     ObjectLibrary(proxies={"cup": ["cylinder", 0.1]}), render_size=64)
    questions = []
    original = tiny_model.generate_batch
    monkeypatch.setattr(tiny_model, "generate_batch", lambda requests, *a, **k:
                        questions.extend(q for _, q in requests) or original(requests, *a, **k))
    image = np.random.default_rng(2).integers(0, 255, (240, 320, 3), np.uint8)
    cup = Detection("cup", (40, 100, 60, 120), 0.9, "c1")
    people = [person((0, 20, 100, 230), "p1", 0.7), person((220, 20, 320, 230), "p2")]
    result = estimator.estimate(image, [cup], persons=people, region_margin=0.0, scene_contact=True)
    cup_result, *scenes = result.interactions
    assert cup_result.detection == cup and cup_result.object_affordance is not None
    assert [s.detection for s in scenes] == [Detection("scene", (0, 20, 100, 230), 0.7, "scene/p1"),
                                             Detection("scene", (220, 20, 320, 230), 0.9, "scene/p2")]
    assert [s.person.id for s in scenes] == ["p1", "p2"]
    assert [s.image_region for s in scenes] == [(0, 20, 210, 230), (110, 20, 320, 230)]
    assert all(s.human_contact is not None and s.object_affordance is None for s in scenes)
    assert questions[-1] == "Which body parts are in contact with the scene? Segment these contact areas."
    (alone,) = estimator.estimate(image, [], scene_contact=True).interactions
    assert alone.detection == Detection("scene", (0.0, 0.0, 320.0, 240.0), 1.0, "scene")
    assert alone.image_region == (0, 0, 320, 240)
    without_contact = InteractionEstimator(None, tiny_model, load_body_model("anny"), ObjectLibrary(), render_size=64)
    with pytest.raises(ValueError, match="scene_contact needs a human-contact model"):
        without_contact.estimate(image, [cup], scene_contact=True)
    reports = []
    processor = FrameProcessor(estimator, lambda reason, detail: reports.append((reason, detail)))
    message, *_ = processor.process(image_msg(image, 5, frame_id="camera"),
                                   detections_msg([people[0], cup], 5),
                                   ProcessingSettings(markers=False, scene_contact=True, region_margin=0.0))
    assert reports == []
    assert [i.detection.id for i in message.interactions] == ["c1", "scene/p1"]
    scene = message.interactions[1]
    assert scene.detection.results[0].hypothesis.class_id == "scene" and scene.person_detection_id == "p1"
    assert scene.human_contact.object_label == "scene" and scene.object_affordance.geometry_source == ""
    assert (scene.detection.bbox.size_x, scene.detection.bbox.size_y) == (100.0, 210.0)


def test_scene_contact_without_a_contact_model_fails_configure(tmp_path):
    from interactvlm_ros.loading import ConfigurationError, build_estimator

    with pytest.raises(ConfigurationError, match="scene_contact = True: ValueError: scene contact is human contact"):
        build_estimator({"affordance_checkpoint_dir": str(tmp_path), "scene_contact": True,
                         "cache_dir": str(tmp_path / "cache")}, log=lambda line: None)
