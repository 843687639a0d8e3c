"""Task "handover": robot_grasp_clearance from the human's contact on the object."""

from __future__ import annotations

import numpy as np
import pytest
from std_msgs.msg import Header

from interactvlm_ros.handover import NoContactError, check_task, grasp_clearance
from interactvlm_ros.ros.conversions import affordance_cloud, affordance_from_cloud, cloud_fields


def test_clearance_rises_linearly_from_the_contact_to_the_distance():
    x = np.linspace(0.0, 0.2, 21)  # a 20 cm rod, points every centimetre
    points = np.stack([x, np.zeros_like(x), np.zeros_like(x)], axis=1)
    contact = np.where(x <= 0.02 + 1e-9, 0.9, 0.1)  # the person holds the first 2 cm
    clearance = grasp_clearance(points, contact, threshold=0.5, distance=0.05)
    assert clearance.dtype == np.float32
    expected = np.clip((x - 0.02) / 0.05, 0.0, 1.0)
    np.testing.assert_allclose(clearance, expected, atol=1e-6)
    assert clearance[:3].max() == 0.0 and clearance[7:].min() == 1.0
    # The threshold decides what counts as contact; a map with no contact at all is a failed
    # estimate (the person holds the object in a handover), never "all clear".
    with pytest.raises(NoContactError, match="no point of the object-contact map reaches the threshold 0.95 "
                                             r"\(largest 0.900\)"):
        grasp_clearance(points, contact, threshold=0.95)
    # Euclidean in 3D: a point 3 cm above and 4 cm beside the contact is 5 cm away.
    corner = grasp_clearance([[0, 0, 0], [0.04, 0.03, 0]], [1.0, 0.0], 0.5, distance=0.1)
    np.testing.assert_allclose(corner, [0.0, 0.5], atol=1e-7)


def test_bad_input_and_unknown_tasks_are_refused():
    with pytest.raises(ValueError, match="distance must be > 0"):
        grasp_clearance(np.zeros((2, 3)), np.zeros(2), 0.5, distance=0.0)
    with pytest.raises(ValueError, match="finite"):
        grasp_clearance([[np.nan, 0, 0]], [1.0], 0.5)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        grasp_clearance(np.zeros((2, 3)), np.zeros(3), 0.5)
    for threshold in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="threshold must be in"):
            grasp_clearance(np.zeros((2, 3)), np.ones(2), threshold)
    assert check_task("") == "" and check_task("handover") == "handover"
    with pytest.raises(ValueError, match=r"task 'pour' is not supported; supported: \"\" \(default maps\), handover"):
        check_task("pour")


def test_cloud_carries_contact_and_clearance_fields_by_name():
    points = np.array([[0, 0, 0], [0.1, 0, 0], [0.2, 0, 0]], np.float32)
    header = Header(frame_id="cup_model")
    cloud = affordance_cloud(header, points, [0.1, 0.5, 0.9], contact=[1.0, 0.0, 0.0],
                             robot_grasp_clearance=[0.0, 1.0, 1.0])
    assert [(f.name, f.offset) for f in cloud.fields] == [("x", 0), ("y", 4), ("z", 8), ("affordance", 12),
                                                          ("contact", 16), ("robot_grasp_clearance", 20)]
    assert cloud.point_step == 24 and cloud.row_step == 72 and len(cloud.data) == 72
    fields = cloud_fields(cloud)
    np.testing.assert_array_equal(fields["contact"], np.float32([1, 0, 0]))
    np.testing.assert_array_equal(fields["robot_grasp_clearance"], np.float32([0, 1, 1]))
    xyz, affordance = affordance_from_cloud(cloud)  # older readers keep working
    np.testing.assert_array_equal(xyz, points)
    np.testing.assert_allclose(affordance, [0.1, 0.5, 0.9], rtol=1e-7)
    # Without the optional maps: the four fields of before, 16-byte points.
    plain = affordance_cloud(header, points, [0.1, 0.5, 0.9])
    assert [f.name for f in plain.fields] == ["x", "y", "z", "affordance"] and plain.point_step == 16
    with pytest.raises(ValueError, match="robot_grasp_clearance"):
        affordance_cloud(header, points, [0.1, 0.5, 0.9], robot_grasp_clearance=[0.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="3 points but 2 contact values"):
        affordance_cloud(header, points, [0.1, 0.5, 0.9], contact=[0.0, 1.0])


def test_handover_with_a_model_without_object_contact_says_so(tiny_model):
    """The tiny model is single-task: task handover publishes the affordance as before, notes
    per detection that there is no contact map (no clearance), and the array carries the task."""
    from interactvlm_ros.detection import Detection
    from interactvlm_ros.geometry.body import load_body_model
    from interactvlm_ros.geometry.objects import ObjectLibrary
    from interactvlm_ros.pipeline import InteractionEstimator
    from interactvlm_ros.ros.bags import detections_msg, image_msg
    from interactvlm_ros.ros.processing import FrameProcessor, ProcessingSettings

    estimator = InteractionEstimator(None, tiny_model, load_body_model("anny"),
                                     ObjectLibrary(proxies={"cup": ["cylinder", 0.1]}), render_size=64)
    assert not estimator.estimates_object_contact
    image = np.random.default_rng(3).integers(0, 255, (128, 128, 3), np.uint8)
    cup = Detection("cup", (40, 40, 80, 80), 0.9, "c1")
    (interaction,) = estimator.estimate(image, [cup], task="handover", image_region="full").interactions
    affordance = interaction.object_affordance
    assert affordance.contact is None and affordance.grasp_clearance is None and affordance.contact_answer == ""
    assert "does not estimate the human's contact on the object" in interaction.notes[-1]
    with pytest.raises(ValueError, match="task 'dance' is not supported"):
        estimator.estimate(image, [cup], task="dance")
    reports = []
    processor = FrameProcessor(estimator, lambda reason, detail: reports.append((reason, detail)))
    message, *_ = processor.process(image_msg(image, 1, frame_id="camera"), detections_msg([cup], 1),
                                   ProcessingSettings(markers=False, task="handover", image_region="full"))
    assert message.task == "handover" and message.interactions[0].object_contact_answer == ""
    assert reports == [("no_object_contact_for_handover", "detection 'c1': no grasp clearance: tiny does not "
                                                          "estimate the human's contact on the object (InteractVLM's "
                                                          "joint model does)")]


# --- clearance from a posed person's body ------------------------------------------------------

#: Two hand vertices 1 m in front of the camera, 2 cm apart.
HAND = np.array([[0.0, 0.0, 1.0], [0.0, 0.02, 1.0]])
#: Object points and their distances (metres) to the nearest hand vertex: 0.03 (to the first),
#: 0.08 and 0.02 (to the second: 8 cm along y; 1.2 cm along x and 1.6 cm along y), 0 (on it).
OBJECT = np.array([[0.03, 0.0, 1.0], [0.0, 0.1, 1.0], [0.012, 0.036, 1.0], [0.0, 0.02, 1.0]])


def test_body_clearance_is_the_distance_to_the_nearest_hand_or_contact_vertex():
    from interactvlm_ros.handover import body_clearance

    clearance = body_clearance(OBJECT, HAND, np.zeros((0, 3)), distance=0.05)
    assert clearance.dtype == np.float32
    np.testing.assert_allclose(clearance, [0.6, 1.0, 0.4, 0.0], atol=1e-6)
    # The same points as contact vertices instead of hands give the same clearance; a contact
    # vertex nearer than the hand decides for the points near it.
    np.testing.assert_array_equal(body_clearance(OBJECT, [], HAND, distance=0.05), clearance)
    contact = np.array([[0.03, 0.01, 1.0]])  # 1 cm from the first object point
    both = body_clearance(OBJECT, HAND, contact, distance=0.05)
    np.testing.assert_allclose(both, [0.2, 1.0, 0.4, 0.0], atol=1e-6)
    np.testing.assert_allclose(body_clearance(OBJECT, HAND, [], distance=0.1), [0.3, 0.8, 0.2, 0.0], atol=1e-6)
    assert body_clearance(np.zeros((0, 3)), HAND, []).shape == (0,)


def test_body_clearance_refusals():
    from interactvlm_ros.handover import NoBodyPointsError, NoContactError, body_clearance

    with pytest.raises(NoBodyPointsError, match="no hand points and no contact points"):
        body_clearance(OBJECT, [], np.zeros((0, 3)))
    assert not issubclass(NoBodyPointsError, NoContactError)  # a reason of its own, counted apart
    with pytest.raises(ValueError, match=r"hand_points must have shape \(N, 3\)"):
        body_clearance(OBJECT, np.zeros((2, 2)), [])
    with pytest.raises(ValueError, match=r"contact_points must have shape \(N, 3\)"):
        body_clearance(OBJECT, HAND, np.zeros((3, 0)))
    with pytest.raises(ValueError, match="points contain non-finite"):
        body_clearance(OBJECT + np.nan, HAND, [])
    with pytest.raises(ValueError, match="distance must be > 0"):
        body_clearance(OBJECT, HAND, [], distance=-0.05)


def test_combined_clearance_is_the_smaller_of_the_two():
    from interactvlm_ros.handover import combined_clearance

    a = np.array([0.0, 0.5, 1.0, 0.25])
    b = np.array([0.3, 0.2, 1.0, 1.0])
    both = combined_clearance(a, b)
    assert both.dtype == np.float32
    np.testing.assert_array_equal(both, np.float32([0.0, 0.2, 1.0, 0.25]))
    np.testing.assert_array_equal(combined_clearance(None, b), np.float32(b))
    np.testing.assert_array_equal(combined_clearance(a, None), np.float32(a))
    assert combined_clearance(None, None) is None
    with pytest.raises(ValueError, match="the clearances have 4 and 3 points"):
        combined_clearance(a, b[:3])
    with pytest.raises(ValueError, match=r"clearance b must lie in \[0, 1\]"):
        combined_clearance(a, b + 0.5)
