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


# --- posed bodies: HumanContact.posed_body, Person ---------------------------------------------

#: A 6-vertex "body" 2 m in front of the camera and its parts.
BODY_VERTICES = np.array([[0.0, 0.0, 2.0], [0.1, 0.0, 2.0], [0.2, 0.3, 2.1],
                          [-0.4, 0.1, 1.9], [-0.5, 0.2, 2.0], [0.0, -0.6, 2.2]], np.float32)
BODY_PARTS_IDS = {"right hand": np.array([0, 1, 2]), "left hand": np.array([3, 4]), "head": np.array([5])}
BODY_CONTACT = np.array([0.9, 0.6, 0.1, 0.2, 0.3, 0.8], np.float32)


def test_posed_body_cloud_is_one_point_per_vertex_with_its_contact():
    from interactvlm_ros.ros.conversions import posed_body_cloud, posed_body_from_cloud

    cloud = posed_body_cloud(HEADER, BODY_VERTICES, BODY_CONTACT)
    assert [(f.name, f.offset, f.datatype) for f in cloud.fields] == [
        ("x", 0, PointField.FLOAT32), ("y", 4, PointField.FLOAT32), ("z", 8, PointField.FLOAT32),
        ("contact", 12, PointField.FLOAT32)]
    assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step, cloud.is_dense) == (1, 6, 16, 96, True)
    assert bytes(cloud.data[4 * 16:5 * 16]) == np.array([-0.5, 0.2, 2.0, 0.3], np.float32).tobytes()  # vertex 4
    body = posed_body_from_cloud(cloud)
    np.testing.assert_array_equal(body.vertices, BODY_VERTICES)
    np.testing.assert_array_equal(body.contact, BODY_CONTACT)
    assert body.normals is None
    with pytest.raises(ValueError, match="6 points but 5 contact values"):
        posed_body_cloud(HEADER, BODY_VERTICES, BODY_CONTACT[:5])
    with pytest.raises(ValueError, match="non-finite"):
        posed_body_cloud(HEADER, np.full((1, 3), np.inf), [0.5])


def test_body_mesh_cloud_carries_unit_normals_and_reads_back():
    from interactvlm_ros.ros.conversions import body_mesh_cloud, posed_body_from_cloud

    normals = np.zeros((6, 3), np.float32)
    normals[:, 2] = -1.0
    normals[5] = (0.6, 0.0, -0.8)
    normals[4] = 0.0  # a vertex in no face
    cloud = body_mesh_cloud(HEADER, BODY_VERTICES, normals)
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "normal_x", "normal_y", "normal_z"]
    assert [f.offset for f in cloud.fields] == [0, 4, 8, 12, 16, 20]
    assert (cloud.width, cloud.point_step, len(cloud.data)) == (6, 24, 144)
    assert bytes(cloud.data[5 * 24:6 * 24]) == np.array([0.0, -0.6, 2.2, 0.6, 0.0, -0.8], np.float32).tobytes()
    body = posed_body_from_cloud(cloud)
    np.testing.assert_array_equal(body.vertices, BODY_VERTICES)
    np.testing.assert_array_equal(body.normals, normals)
    assert body.contact is None
    bad = normals.copy()
    bad[2] = (0.0, 0.0, -0.9)
    with pytest.raises(ValueError, match="normals must have length 1 \\(or 0\\): 1 do not, e.g. vertex 2 has length 0.9"):
        body_mesh_cloud(HEADER, BODY_VERTICES, bad)
    with pytest.raises(ValueError, match="6 vertices but 5 normals"):
        body_mesh_cloud(HEADER, BODY_VERTICES, normals[:5])
    del cloud.fields[4]
    with pytest.raises(ValueError, match="has \\['normal_x', 'normal_z'\\] but not all"):
        posed_body_from_cloud(cloud)
    empty = posed_body_from_cloud(PointCloud2())  # a person not posed
    assert empty.vertices.shape == (0, 3) and empty.normals is None and empty.contact is None


def test_human_contact_on_a_posed_body_places_the_contact_and_each_parts_centroid():
    msg = human_contact_msg(HEADER, "smplh", BODY_CONTACT, 0.5, ["right hand", "left hand", "hands", "head"],
                            "cup", "7", posed_vertices=BODY_VERTICES, placement_method="depth",
                            part_vertex_ids=BODY_PARTS_IDS, posed_frame_id="depth_optical_frame")
    assert list(msg.contact_vertices) == [0, 1, 5] and msg.placement_method == "depth"
    assert msg.posed_body.header.frame_id == "depth_optical_frame"
    fields = cloud_fields(msg.posed_body)
    np.testing.assert_array_equal(fields["contact"], BODY_CONTACT)
    np.testing.assert_array_equal(fields["z"], BODY_VERTICES[:, 2])
    centroids = np.array([(p.x, p.y, p.z) for p in msg.part_contact_centroids])
    # right hand: vertices 0 and 1 reach 0.5 (2 does not); left hand: none; "hands": no such part.
    np.testing.assert_allclose(centroids[0], [0.05, 0.0, 2.0], atol=1e-6)
    assert np.isnan(centroids[1]).all() and np.isnan(centroids[2]).all()
    np.testing.assert_allclose(centroids[3], BODY_VERTICES[5], atol=1e-6)
    # Not posed: the posed fields stay empty; the frame defaults to the image's.
    plain = _contact(BODY_CONTACT)
    assert (plain.posed_body.width, plain.placement_method, list(plain.part_contact_centroids)) == (0, "", [])
    posed = human_contact_msg(HEADER, "smplh", BODY_CONTACT, 0.5, [], "cup", "7", posed_vertices=BODY_VERTICES,
                              placement_method="pnp", part_vertex_ids=BODY_PARTS_IDS)
    assert posed.posed_body.header.frame_id == HEADER.frame_id and list(posed.part_contact_centroids) == []


def test_human_contact_refuses_an_inconsistent_posed_body():
    args = (HEADER, "smplh", BODY_CONTACT, 0.5, ["right hand"], "cup", "7")
    with pytest.raises(ValueError, match="6 points but 5 contact"):
        human_contact_msg(*args[:2], BODY_CONTACT[:5], *args[3:], posed_vertices=BODY_VERTICES[:6],
                          placement_method="pnp", part_vertex_ids=BODY_PARTS_IDS)
    with pytest.raises(ValueError, match="posed_vertices need the placement_method"):
        human_contact_msg(*args, posed_vertices=BODY_VERTICES, part_vertex_ids=BODY_PARTS_IDS)
    with pytest.raises(ValueError, match="posed_vertices need the placement_method and the body model's part"):
        human_contact_msg(*args, posed_vertices=BODY_VERTICES, placement_method="pnp")
    with pytest.raises(ValueError, match="pass posed_vertices too"):
        human_contact_msg(*args, placement_method="pnp")
    with pytest.raises(ValueError, match="part 'right hand': vertex ids must lie in \\[0, 6\\)"):
        human_contact_msg(*args, posed_vertices=BODY_VERTICES, placement_method="pnp",
                          part_vertex_ids={"right hand": np.array([2, 6])})


def _person_arrays(seed=5):
    from interactvlm_ros.body.landmarks import NUM_LANDMARKS

    rng = np.random.default_rng(seed)
    pixels = rng.uniform(0, 640, (NUM_LANDMARKS, 2))
    visibility = rng.uniform(0, 1, NUM_LANDMARKS).astype(np.float32)
    landmarks = rng.normal((0.0, 0.0, 2.5), 0.4, (NUM_LANDMARKS, 3))
    normals = rng.normal(size=(len(BODY_VERTICES), 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return pixels, visibility, landmarks, normals.astype(np.float32)


def test_person_message_round_trip():
    from interactvlm_ros.body.landmarks import LANDMARK_NAMES
    from interactvlm_ros.ros.conversions import person_from_msg, person_msg

    pixels, visibility, landmarks, normals = _person_arrays()
    msg = person_msg(HEADER, "person-3", pixels, visibility, landmarks=landmarks, placement_method="depth",
                     body_model="anny", vertices=BODY_VERTICES, normals=normals)
    assert tuple(msg.landmark_names) == LANDMARK_NAMES and msg.landmark_names[15] == "left_wrist"
    assert (msg.landmark_pixels[15].x, msg.landmark_pixels[15].y) == tuple(pixels[15])
    assert (msg.landmarks[15].x, msg.landmarks[15].y, msg.landmarks[15].z) == tuple(landmarks[15])
    assert (msg.posed_body.width, msg.posed_body.point_step, msg.posed_body.header.frame_id) == (6, 24, HEADER.frame_id)
    back = person_from_msg(msg)
    assert (back.detection_id, back.placement_method, back.body_model) == ("person-3", "depth", "anny")
    assert back.landmark_names == LANDMARK_NAMES
    np.testing.assert_array_equal(back.landmark_pixels, pixels)
    np.testing.assert_array_equal(back.landmark_visibility, visibility)
    np.testing.assert_array_equal(back.landmarks, landmarks)
    np.testing.assert_array_equal(back.vertices, BODY_VERTICES)
    np.testing.assert_array_equal(back.normals, normals)
    # Found but not placed (no CameraInfo): pixels and visibility only.
    unplaced = person_from_msg(person_msg(HEADER, "person-4", pixels, visibility))
    assert unplaced.landmarks is None and unplaced.vertices is None and unplaced.normals is None
    assert unplaced.placement_method == "" and unplaced.body_model == ""
    np.testing.assert_array_equal(unplaced.landmark_pixels, pixels)
    # Placed, not posed.
    placed = person_from_msg(person_msg(HEADER, "person-5", pixels, visibility, landmarks=landmarks,
                                        placement_method="pnp"))
    np.testing.assert_array_equal(placed.landmarks, landmarks)
    assert placed.vertices is None and placed.body_model == ""


@pytest.mark.parametrize("change, reason", [
    (dict(detection_id=""), "detection_id must name the person"),
    (dict(landmark_pixels=np.zeros((32, 2))), r"landmark_pixels must be \(33, 2\) finite pixels, got shape \(32, 2\)"),
    (dict(landmark_pixels=np.full((33, 2), np.nan)), "landmark_pixels must be"),
    (dict(landmark_visibility=np.full(33, 1.5)), r"landmark_visibility must lie in \[0, 1\]"),
    (dict(landmark_visibility=np.ones(32)), "landmark_visibility must have 33 values, got 32"),
    (dict(landmark_names=("nose",)), r"landmark_pixels must be \(1, 2\)"),
    (dict(placement_method=""), "landmarks and placement_method come together"),
    (dict(landmarks=None, body_model="", vertices=None, normals=None), "landmarks and placement_method"),
    (dict(body_model=""), "vertices and body_model come together"),
    (dict(vertices=None, normals=None), "vertices and body_model come together"),
    (dict(landmarks=None, placement_method=""), "a posed body needs placed landmarks"),
    (dict(normals=None), "a posed body needs its vertex normals"),
    (dict(landmarks=np.zeros((32, 3))), "landmarks must have 33 rows, got 32"),
    (dict(landmarks=np.full((33, 3), np.nan)), "landmarks contain non-finite"),
    (dict(vertices=np.zeros((6, 2))), r"vertices must have shape \(N, 3\)"),
])
def test_person_message_refuses_inconsistent_input(change, reason):
    from interactvlm_ros.ros.conversions import person_msg

    pixels, visibility, landmarks, normals = _person_arrays()
    kwargs = dict(detection_id="p", landmark_pixels=pixels, landmark_visibility=visibility, landmarks=landmarks,
                  placement_method="depth", body_model="anny", vertices=BODY_VERTICES, normals=normals)
    kwargs.update(change)
    with pytest.raises(ValueError, match=reason):
        person_msg(HEADER, **kwargs)


def test_person_reader_refuses_inconsistent_messages():
    from interactvlm_ros.ros.conversions import person_from_msg, person_msg

    pixels, visibility, landmarks, normals = _person_arrays()
    msg = person_msg(HEADER, "p", pixels, visibility, landmarks=landmarks, placement_method="depth",
                     body_model="anny", vertices=BODY_VERTICES, normals=normals)
    msg.landmarks = msg.landmarks[:30]
    with pytest.raises(ValueError, match="landmark arrays of different lengths .*'landmarks': 30"):
        person_from_msg(msg)
    msg = person_msg(HEADER, "p", pixels, visibility)
    msg.placement_method = "pnp"
    with pytest.raises(ValueError, match="landmark arrays of different lengths"):
        person_from_msg(msg)
    msg = person_msg(HEADER, "p", pixels, visibility, landmarks=landmarks, placement_method="pnp")
    msg.body_model = "anny"
    with pytest.raises(ValueError, match="body_model 'anny' with a posed body of 0 vertices and no normals"):
        person_from_msg(msg)
