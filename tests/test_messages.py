"""The interfaces survive rclpy serialisation (CDR) unchanged, with realistic content."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message

import messages
from interactvlm_ros.ros.conversions import affordance_from_cloud, person_from_msg, posed_body_from_cloud


def _round_trip(msg):
    data = serialize_message(msg)
    assert isinstance(data, bytes) and len(data) > 0
    return deserialize_message(data, type(msg)), data


@pytest.mark.parametrize(
    "factory",
    [
        messages.detections,
        messages.interaction_array,
        messages.rgb_image,
        messages.estimate_request,
        messages.estimate_response,
    ],
    ids=lambda f: f.__name__,
)
def test_serialisation_round_trip_is_lossless(factory):
    msg = factory()
    back, data = _round_trip(msg)
    # Field-wise equality, with NaN (the "not computed" of float fields) equal to itself.
    assert repr(back) == repr(msg)
    # Equality is field-wise; a second serialisation must have the same size (the bytes may
    # differ only in CDR alignment padding, which Fast CDR does not zero).
    assert len(serialize_message(back)) == len(data)


def test_detections_round_trip_through_the_converters():
    """Detection -> Detection2DArray -> CDR -> Detection2DArray -> Detection: the same values."""
    from interactvlm_ros.ros.conversions import detection_from_msg

    back, _ = _round_trip(messages.detections())
    assert tuple(detection_from_msg(d, i) for i, d in enumerate(back.detections)) == messages.DETECTIONS
    assert all(d.header == back.header for d in back.detections)


def test_interaction_array_fields_after_round_trip():
    back, data = _round_trip(messages.interaction_array())
    # Two interactions, each carrying a 6890-float body map, the posed body with its contact
    # (16 bytes a vertex) and a 2048-point cloud, and one person's posed body (24 bytes a
    # vertex, sent once for both): the serialised size is dominated by exactly those arrays.
    floats = 2 * (messages.SMPLH_VERTICES * (4 + 16) + messages.PIAD_POINTS * 16) + messages.SMPLH_VERTICES * 24
    assert floats < len(data) < floats + 2 * 200 * 4 + 8192

    assert back.header.frame_id == messages.IMAGE_FRAME
    assert (back.header.stamp.sec, back.header.stamp.nanosec) == (1_700_000_123, 456_789_000)
    assert back.model_id == "interactvlm-3d-hcontact-damon"
    assert back.weights_are_random is False
    assert back.inference_ms == pytest.approx(412.25)
    assert [i.detection.id for i in back.interactions] == ["track-17", "track-18"]

    first = back.interactions[0]
    assert first.detection.results[0].hypothesis.class_id == "cup"
    assert first.detection.results[0].hypothesis.score == pytest.approx(0.87)
    assert (first.detection.bbox.center.position.x, first.detection.bbox.size_y) == (412.5, 88.0)

    contact = first.human_contact
    expected = messages.contact_probabilities()
    assert contact.body_model == "smplh"
    assert contact.num_vertices == messages.SMPLH_VERTICES
    np.testing.assert_array_equal(np.asarray(contact.vertex_probabilities, dtype=np.float32), expected)
    np.testing.assert_array_equal(np.asarray(contact.contact_vertices), np.flatnonzero(expected >= 0.5))
    assert set(range(5200, 5400)) <= set(contact.contact_vertices)
    assert list(contact.body_parts) == ["right hand", "left hand"]
    assert (contact.object_label, contact.detection_id) == ("cup", "track-17")

    affordance = first.object_affordance
    assert affordance.header.frame_id == "cup_model"
    assert affordance.geometry_source == "mesh:package://interactvlm_bringup/meshes/cup.obj"
    assert affordance.affordance == "grasp"
    points, values = affordance_from_cloud(affordance.points)
    expected_points, expected_values = messages.object_points()
    np.testing.assert_array_equal(points, expected_points)
    np.testing.assert_array_equal(values, expected_values)
    assert first.contact_answer.endswith("[SEG].")

    # The posed contact: the same vertices as the person's body, this object's contact.
    vertices, normals = messages.posed_body()
    assert first.person_detection_id == back.interactions[1].person_detection_id == messages.PERSON_ID
    assert contact.placement_method == "depth" and contact.posed_body.header.frame_id == messages.IMAGE_FRAME
    posed = posed_body_from_cloud(contact.posed_body)
    np.testing.assert_array_equal(posed.vertices, vertices)
    np.testing.assert_array_equal(posed.contact, expected)
    centroids = np.array([(p.x, p.y, p.z) for p in contact.part_contact_centroids])
    for row, part in enumerate(contact.body_parts):
        ids = messages.PART_VERTEX_IDS[part]
        np.testing.assert_allclose(centroids[row], vertices[ids[expected[ids] >= 0.5]].mean(axis=0), atol=1e-6)

    # The person, once for both objects.
    (person,) = back.persons
    fields = person_from_msg(person)
    pixels, visibility, landmarks = messages.person_landmarks()
    assert (fields.detection_id, fields.placement_method, fields.body_model) == (messages.PERSON_ID, "depth", "smplh")
    assert fields.landmark_names[0] == "nose" and len(fields.landmark_names) == 33
    np.testing.assert_array_equal(fields.landmark_pixels, pixels)
    np.testing.assert_array_equal(fields.landmark_visibility, visibility)
    np.testing.assert_array_equal(fields.landmarks, landmarks)
    np.testing.assert_array_equal(fields.vertices, vertices)
    np.testing.assert_array_equal(fields.normals, normals)


def test_service_request_keeps_image_bytes_and_task():
    back, _ = _round_trip(messages.estimate_request())
    image = messages.rgb_image()
    assert back.task == "handover"
    assert (back.image.width, back.image.height, back.image.step, back.image.encoding) == (64, 48, 192, "rgb8")
    assert bytes(back.image.data) == bytes(image.data)
    pixels = np.frombuffer(bytes(back.image.data), np.uint8).reshape(48, 64, 3)
    assert tuple(pixels[0, 0]) == (0, 0, 128) and tuple(pixels[47, 63]) == (255, 255, 128)
    assert len(back.detections.detections) == 2
