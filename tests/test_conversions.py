"""numpy <-> message conversions: exact contents, boundaries and rejected input."""

from __future__ import annotations

import array
import sys

import numpy as np
import pytest
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from interactvlm_ros.ros.conversions import (
    affordance_cloud,
    affordance_from_cloud,
    cloud_fields,
    human_contact_msg,
    object_affordance_msg,
)

HEADER = Header(frame_id="camera_optical_frame")


def _contact(p, threshold=0.5):
    return human_contact_msg(HEADER, "smplh", p, threshold, ["right hand"], "cup", "7")


def test_contact_vertices_include_the_threshold_itself():
    p = np.array([0.0, 0.49999997, 0.5, 0.75, 1.0, 0.2], dtype=np.float32)
    msg = _contact(p)
    assert list(msg.contact_vertices) == [2, 3, 4]
    assert msg.num_vertices == 6
    assert list(msg.vertex_probabilities) == p.tolist()
    assert msg.threshold == 0.5
    assert list(_contact(p, threshold=0.0).contact_vertices) == [0, 1, 2, 3, 4, 5]
    assert list(_contact(p, threshold=1.0).contact_vertices) == [4]


def test_float64_probabilities_are_stored_as_float32():
    p = np.linspace(0.0, 1.0, 11)  # float64
    msg = _contact(p, threshold=0.3)
    np.testing.assert_array_equal(np.asarray(msg.vertex_probabilities, np.float32), p.astype(np.float32))
    assert list(msg.contact_vertices) == [3, 4, 5, 6, 7, 8, 9, 10]


@pytest.mark.parametrize(
    "values, reason",
    [
        ([0.1, float("nan")], "non-finite"),
        ([0.1, float("inf")], "non-finite"),
        ([0.1, 1.5], r"\[0, 1\]"),
        ([-0.01, 0.5], r"\[0, 1\]"),
        ([[0.1, 0.2]], "1-D"),
    ],
)
def test_bad_probabilities_are_rejected(values, reason):
    with pytest.raises(ValueError, match=reason):
        _contact(values)


def test_bad_threshold_and_body_model_are_rejected():
    with pytest.raises(ValueError, match="threshold"):
        _contact([0.1], threshold=1.2)
    with pytest.raises(ValueError, match="body_model"):
        human_contact_msg(HEADER, "", [0.1], 0.5, [], "cup", "7")


def test_affordance_cloud_layout_and_round_trip():
    points = np.array([[0.1, -0.2, 0.3], [1.0, 2.0, 3.0], [-0.5, 0.0, 0.25]], dtype=np.float32)
    values = np.array([0.0, 0.5, 1.0], dtype=np.float32)
    msg = affordance_cloud(HEADER, points, values)
    assert (msg.height, msg.width, msg.point_step, msg.row_step, msg.is_dense) == (1, 3, 16, 48, True)
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, PointField.FLOAT32, 1),
        ("y", 4, PointField.FLOAT32, 1),
        ("z", 8, PointField.FLOAT32, 1),
        ("affordance", 12, PointField.FLOAT32, 1),
    ]
    assert msg.is_bigendian == (sys.byteorder == "big")
    # The second point, byte for byte.
    assert bytes(msg.data[16:32]) == np.array([1.0, 2.0, 3.0, 0.5], np.float32).tobytes()
    back_points, back_values = affordance_from_cloud(msg)
    np.testing.assert_array_equal(back_points, points)
    np.testing.assert_array_equal(back_values, values)


def test_empty_cloud_is_valid():
    msg = affordance_cloud(HEADER, np.zeros((0, 3)), np.zeros(0))
    assert (msg.width, len(msg.data)) == (0, 0)
    points, values = affordance_from_cloud(msg)
    assert points.shape == (0, 3) and values.shape == (0,)


@pytest.mark.parametrize(
    "points, values, reason",
    [
        (np.zeros((3, 2)), np.zeros(3), r"shape \(N, 3\)"),
        (np.zeros((3, 3)), np.zeros(2), "3 points but 2"),
        (np.array([[0.0, np.nan, 0.0]]), np.zeros(1), "non-finite"),
        (np.zeros((1, 3)), np.array([2.0]), r"\[0, 1\]"),
    ],
)
def test_bad_clouds_are_rejected(points, values, reason):
    with pytest.raises(ValueError, match=reason):
        affordance_cloud(HEADER, points, values)


def _hand_made_cloud(big_endian: bool) -> PointCloud2:
    """2 rows x 2 points; fields affordance (float64 @0), x,y,z (float32 @8,12,16), a uint16
    intensity @20, 24-byte points and 4 bytes of padding at the end of every row."""
    order = ">" if big_endian else "<"
    point = np.dtype(
        {
            "names": ["affordance", "x", "y", "z", "intensity"],
            "formats": [order + "f8", order + "f4", order + "f4", order + "f4", order + "u2"],
            "offsets": [0, 8, 12, 16, 20],
            "itemsize": 24,
        }
    )
    rows = []
    for r in range(2):
        values = np.zeros(2, dtype=point)
        values["affordance"] = [0.25 + r * 0.5, 0.5 + r * 0.5]
        values["x"] = [r, r + 0.5]
        values["y"] = [-1.0, -2.0]
        values["z"] = [10.0 * r, 3.0]
        values["intensity"] = [7 + r, 65535]
        rows.append(values.tobytes() + b"\xaa" * 4)
    msg = PointCloud2(height=2, width=2, point_step=24, row_step=52, is_bigendian=big_endian, is_dense=True)
    msg.fields = [
        PointField(name="affordance", offset=0, datatype=PointField.FLOAT64, count=1),
        PointField(name="x", offset=8, datatype=PointField.FLOAT32, count=1),
        PointField(name="y", offset=12, datatype=PointField.FLOAT32, count=1),
        PointField(name="z", offset=16, datatype=PointField.FLOAT32, count=1),
        PointField(name="intensity", offset=20, datatype=PointField.UINT16, count=1),
    ]
    msg.data = array.array("B", b"".join(rows))
    return msg


@pytest.mark.parametrize("big_endian", [False, True])
def test_foreign_cloud_layouts_are_read_correctly(big_endian):
    msg = _hand_made_cloud(big_endian)
    fields = cloud_fields(msg)
    assert fields["intensity"].dtype == np.uint16
    assert fields["intensity"].tolist() == [7, 65535, 8, 65535]
    assert fields["affordance"].dtype == np.float64
    points, values = affordance_from_cloud(msg)
    np.testing.assert_array_equal(
        points, np.array([[0, -1, 0], [0.5, -2, 3], [1, -1, 10], [1.5, -2, 3]], dtype=np.float32)
    )
    np.testing.assert_array_equal(values, np.array([0.25, 0.5, 0.75, 1.0], dtype=np.float32))


def test_cloud_reader_rejects_inconsistent_clouds():
    msg = _hand_made_cloud(False)
    msg.data = msg.data[:-1]
    with pytest.raises(ValueError, match="bytes"):
        cloud_fields(msg)
    msg = _hand_made_cloud(False)
    msg.fields[4].count = 3
    with pytest.raises(ValueError, match="count 3"):
        cloud_fields(msg)
    msg = _hand_made_cloud(False)
    msg.fields[4].datatype = 42
    with pytest.raises(ValueError, match="unknown datatype 42"):
        cloud_fields(msg)
    msg = _hand_made_cloud(False)
    del msg.fields[3]
    with pytest.raises(ValueError, match=r"lacks fields \['z'\]"):
        affordance_from_cloud(msg)


def test_object_affordance_message():
    points = np.array([[0.0, 0.0, 0.1]], np.float32)
    msg = object_affordance_msg(
        Header(frame_id="mug_model"), "3", "cup", "grasp", "proxy:cylinder", points, [0.9], 0.5
    )
    assert (msg.detection_id, msg.object_label, msg.affordance, msg.geometry_source) == (
        "3", "cup", "grasp", "proxy:cylinder")
    assert msg.points.header.frame_id == "mug_model" and msg.threshold == 0.5
    with pytest.raises(ValueError, match="geometry_source"):
        object_affordance_msg(Header(), "3", "cup", "", "file.obj", points, [0.9], 0.5)


@pytest.mark.parametrize("label, frame", [
    ("cup", "cup_model"), ("sports ball", "sports_ball_model"), ("cup/../../x", "cup_x_model"),
    ("[SEG]_cup", "seg_cup_model"), ("Café", "cafe_model"), ("3d printer", "_3d_printer_model"), ("", "object_model"),
    ("__", "object_model"),
])
def test_object_frame_ids_follow_ros_name_rules(label, frame):
    import re

    from interactvlm_ros.ros.conversions import object_frame_id

    assert object_frame_id(label) == frame
    assert re.fullmatch(r"[a-z_][a-z0-9_]*", frame)
