"""The contact body posed to placed landmarks (body.fit) on synthetic people with known poses.

Ground truth is posed through the rig from the plausible poses of tests/body_poses.py; the
landmarks are the posed mesh's, through the rig's regressor. Error bounds in metres; the
measured values they guard are in the comments. SMPL-H runs on test_smpl.py's synthetic model.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import body_poses
import test_body_rig
import test_smpl
from interactvlm_ros.body.fit import (
    HINGE_MAX_RAD,
    MIN_FIT_LANDMARKS,
    OPEN_BODY_JOINTS,
    BodyFitter,
    JointMap,
    PosedBody,
)
from interactvlm_ros.body.landmarks import LANDMARK_INDEX as LM
from interactvlm_ros.body.skinning import SmplhRig
from interactvlm_ros.geometry.open_body import load_open_body_arrays
from interactvlm_ros.reasons import Reason, Rejected


@pytest.fixture(scope="module")
def fitter():
    return BodyFitter()


@pytest.fixture(scope="module")
def parts():
    arrays = load_open_body_arrays()
    names, labels = list(arrays["part_names"]), arrays["part_labels"]
    mask = lambda *wanted: np.isin(labels, [names.index(n) for n in wanted])  # noqa: E731
    return {"hands": mask("left hand", "right hand"),
            "scored": mask("left hand", "right hand", "left forearm", "right forearm", "chest", "abdomen",
                           "lower back", "hips")}


def _person(fitter, pose, seed, noise=0.0, hidden=()):
    rng = np.random.default_rng(seed)
    rotation, root = body_poses.camera_placement(rng)
    return body_poses.person(fitter, body_poses.joint_values(fitter, pose), rotation, root, rng, noise, hidden)


def _vertex_error(body: PosedBody, truth) -> np.ndarray:
    return np.linalg.norm(body.vertices.astype(np.float64) - truth.vertices, axis=1)


# ---------------------------------------------------------------- the synthetic people


def test_synthetic_poses_are_what_they_say(fitter):
    """The benchmark's ground truth (body frame: x the body's left, y up, z forward, metres)."""
    def landmarks(pose):
        return {name: fitter.rig.landmarks(*fitter.compose(body_poses.joint_values(fitter, pose)))[i]
                for name, i in LM.items()}

    for pose in body_poses.POSES:
        lm = landmarks(pose)
        for side in body_poses.SIDES:  # the hands hang off their own shoulders
            assert np.linalg.norm(lm[f"{side}_wrist"] - lm[f"{side}_shoulder"]) < 0.6
        assert lm["nose"][1] > lm["left_shoulder"][1] + 0.1
    lm = landmarks("arms_down")
    assert lm["left_wrist"][1] < lm["left_shoulder"][1] - 0.4 and lm["left_wrist"][2] < 0.15
    lm = landmarks("reaching_forward")
    assert lm["right_wrist"][2] > lm["right_shoulder"][2] + 0.4 and lm["left_wrist"][2] < 0.15
    for pose in ("holding_at_chest", "carrying_box"):
        lm = landmarks(pose)
        for side in body_poses.SIDES:
            assert lm[f"{side}_wrist"][2] > lm[f"{side}_hip"][2] + 0.2  # in front of the body
            assert lm[f"{side}_hip"][1] < lm[f"{side}_wrist"][1] < lm[f"{side}_shoulder"][1]
    assert landmarks("holding_at_chest")["left_wrist"][0] < 0.15  # the hands close together
    lm = landmarks("sitting")
    assert lm["left_knee"][2] > lm["left_hip"][2] + 0.3 and abs(lm["left_knee"][1] - lm["left_hip"][1]) < 0.1
    assert lm["left_ankle"][1] < lm["left_knee"][1] - 0.3
    lm = landmarks("handing_over")
    assert lm["right_wrist"][2] > lm["right_shoulder"][2] + 0.3 and lm["right_wrist"][1] > lm["right_hip"][1]


# ---------------------------------------------------------------- recovery


@pytest.mark.parametrize("pose", ["holding_at_chest", "carrying_box"])
def test_exact_recovery_from_noise_free_landmarks(pose):
    """Without the pose prior the fit is plain least squares: a reachable pose comes back exactly
    (measured: under 1e-8 m on every vertex)."""
    fitter = BodyFitter(prior_scale=0.0)
    truth, targets, visibility = _person(fitter, pose, seed=1)
    body = fitter.fit(targets, visibility)
    assert body.residual.max() < 1e-6
    assert _vertex_error(body, truth).max() < 1e-4
    np.testing.assert_allclose(fitter.rig.posed_vertices(body.rotations, body.translation), body.vertices, atol=1e-5)


@pytest.mark.parametrize("pose", ["holding_at_chest", "carrying_box", "sitting"])
def test_default_prior_leaves_a_millimetre_bias(fitter, pose):
    """The default prior holds the joints the landmarks barely determine (a twist, the neck
    against the head) and pulls the others a little (measured: landmarks within 0.4 mm,
    vertices within 4 mm)."""
    truth, targets, visibility = _person(fitter, pose, seed=1)
    body = fitter.fit(targets, visibility)
    assert body.residual.max() < 1e-3
    assert _vertex_error(body, truth).max() < 0.006


@pytest.mark.parametrize("pose, seed, hidden", [
    ("reaching_forward", 2, ()),
    ("handing_over", 3, body_poses.LEGS),
    ("sitting", 4, ()),
    ("carrying_box", 5, body_poses.LEGS),
])
def test_centimetre_noise_stays_within_the_targets(fitter, parts, pose, seed, hidden):
    """1 cm of noise per axis: hands, forearms and torso median <= 3 cm, p90 <= 6 cm, hands
    median <= 3 cm (measured: 1.0-1.5, 1.8-2.9 and 0.6-1.4 cm)."""
    truth, targets, visibility = _person(fitter, pose, seed, noise=0.01, hidden=hidden)
    body = fitter.fit(targets, visibility)
    error = _vertex_error(body, truth)
    scored = error[parts["scored"]]
    assert np.median(scored) <= 0.03 and np.percentile(scored, 90) <= 0.06
    assert np.median(error[parts["hands"]]) <= 0.03
    assert not body.pulled[list(hidden)].any() and body.pulled.sum() == 33 - len(hidden)


def test_posed_body_fields(fitter):
    truth, targets, visibility = _person(fitter, "arms_down", seed=6)
    body = fitter.fit(targets, visibility, person_id=7, stamp=1.0)
    assert body.person_id == "7" and body.body_model == "anny" and not body.warm_started and body.iterations > 0
    assert body.vertices.shape == (13718, 3) and body.vertices.dtype == np.float32
    assert body.faces.shape == (27420, 3) and body.faces.dtype == np.int32
    assert body.normals.shape == (13718, 3) and body.normals.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(body.normals, axis=1), 1.0, atol=1e-5)
    assert body.landmarks.shape == (33, 3) and body.residual.shape == (33,) and body.rotations.shape == (104, 3, 3)
    np.testing.assert_allclose(body.residual, np.linalg.norm(body.landmarks - targets, axis=1), atol=1e-6)
    # Normals point out of the body: at the nose forwards, i.e. towards the camera the person faces.
    nose = np.argmin(np.linalg.norm(body.vertices - body.landmarks[LM["nose"]], axis=1))
    assert body.normals[nose] @ (-body.vertices[nose] / np.linalg.norm(body.vertices[nose])) > 0.5
    # In the optical frame: in front of the camera, head above (smaller y than) the ankles.
    assert body.vertices[:, 2].min() > 0.5
    assert body.landmarks[LM["nose"], 1] < body.landmarks[LM["left_ankle"], 1] - 1.0


# ---------------------------------------------------------------- hidden landmarks and limits


def test_hidden_landmarks_do_not_pull(fitter):
    hand = body_poses.HAND["left"]
    truth, targets, visibility = _person(fitter, "holding_at_chest", seed=8, noise=0.01, hidden=hand)
    first = fitter.fit(targets, visibility)
    moved = targets.copy()
    moved[hand] += [0.5, -0.4, 0.3]  # the hidden wrist and knuckles somewhere else entirely
    second = fitter.fit(moved, visibility)
    np.testing.assert_array_equal(first.vertices, second.vertices)
    np.testing.assert_array_equal(first.residual[:15], second.residual[:15])
    # The residual is reported against what was given, hidden or not.
    np.testing.assert_allclose(second.residual[hand], np.linalg.norm(second.landmarks[hand] - moved[hand], axis=1),
                               atol=1e-6)
    assert np.abs(second.residual[hand] - first.residual[hand]).min() > 0.05
    # Hidden landmarks may be NaN (a pose source with no guess): same body, NaN residual there.
    unknown = targets.copy()
    unknown[hand] = np.nan
    third = fitter.fit(unknown, visibility)
    np.testing.assert_array_equal(first.vertices, third.vertices)
    assert np.isnan(third.residual[hand]).all() and np.isfinite(third.residual[:15]).all()
    # Made visible, the same wrong positions do pull the hand away.
    visible = fitter.fit(moved, np.where(np.isin(np.arange(33), hand), 0.9, visibility))
    assert np.abs(visible.vertices - first.vertices).max() > 0.1


def test_visibility_threshold(fitter):
    truth, targets, visibility = _person(fitter, "arms_down", seed=9, noise=0.0)
    visibility = np.full(33, 0.9)
    visibility[LM["right_wrist"]] = 0.49  # below the default 0.5: does not pull
    targets = targets.copy()
    targets[LM["right_wrist"]] += [0.0, 0.0, 0.4]
    assert not fitter.fit(targets, visibility).pulled[LM["right_wrist"]]
    visibility[LM["right_wrist"]] = 0.5
    assert fitter.fit(targets, visibility).pulled[LM["right_wrist"]]


def _hinge_pose(fitter, side: str, joint: str, flexion: float):
    """Arms down, legs straight, one elbow or knee bent by ``flexion`` radians about its hinge
    (negative: hyperextended, which ``compose`` refuses, so it is applied to the rotations)."""
    values = body_poses.joint_values(fitter, "arms_down")
    values[f"{side}_{joint}"] = [0.0]
    rotation, root = body_poses.camera_placement(np.random.default_rng(10))
    rotations, translation = fitter.compose(values, rotation, root - fitter.rig.rest_joints[0])
    bone = fitter.rig.bone_names.index(getattr(fitter.joints, joint)[0 if side == "left" else 1])
    axis = fitter.joint_axes(f"{side}_{joint}")[:, 0]
    rotations[bone] = rotations[bone] @ Rotation.from_rotvec(flexion * axis).as_matrix()
    return fitter.rig.pose(rotations, translation), bone, axis


@pytest.mark.parametrize("side, joint", [("left", "elbow"), ("right", "knee")])
def test_elbows_and_knees_do_not_bend_backwards(fitter, side, joint):
    """Landmarks of a limb bent 0.5 rad backwards give a straight limb (its end aimed between
    the targets); bent 0.5 rad the anatomical way, they give that flexion (the hinge is
    one-sided, not just stiff)."""
    i = 0 if side == "left" else 1
    chain = [fitter.rig.bone_names.index(getattr(fitter.joints, name)[i]) for name in
             (("shoulder", "elbow", "wrist") if joint == "elbow" else ("hip", "knee", "ankle"))]

    def bend(joints):
        upper, lower = joints[chain[1]] - joints[chain[0]], joints[chain[2]] - joints[chain[1]]
        return math.atan2(np.linalg.norm(np.cross(upper, lower)), upper @ lower)

    for flexion, expected in ((-0.5, 0.0), (0.5, 0.5)):
        truth, bone, axis = _hinge_pose(fitter, side, joint, flexion)
        body = fitter.fit(truth.landmarks, np.ones(33))
        rotvec = Rotation.from_matrix(body.rotations[bone]).as_rotvec()
        np.testing.assert_allclose(rotvec, expected * axis, atol=0.02)
        # The fitted limb bends like the true one at the expected flexion, not like the input.
        fitted = bend(fitter.rig.posed_joints(body.rotations, body.translation))
        assert fitted == pytest.approx(bend(_hinge_pose(fitter, side, joint, expected)[0].joints), abs=0.02)
        if flexion < 0:
            assert abs(fitted - bend(truth.joints)) > 0.1  # the input's bend is not reproduced


def test_compose_refuses_values_outside_the_limits(fitter):
    with pytest.raises(ValueError, match=r"joint left_elbow: \[-0.1\] outside"):
        fitter.compose({"left_elbow": -0.1})
    with pytest.raises(ValueError, match="joint right_knee: .* outside"):
        fitter.compose({"right_knee": HINGE_MAX_RAD + 0.1})
    with pytest.raises(ValueError, match="joint head: expected 3 values"):
        fitter.compose({"head": [0.1, 0.2]})
    with pytest.raises(ValueError, match="unknown joint 'left_finger'"):
        fitter.compose({"left_finger": 0.1})


# ---------------------------------------------------------------- warm start


def test_warm_start_same_answer_in_fewer_iterations():
    fitter = BodyFitter()
    truth, targets, visibility = _person(fitter, "handing_over", seed=11, noise=0.01)
    cold = fitter.fit(targets, visibility, person_id="p", stamp=10.0)
    warm = fitter.fit(targets, visibility, person_id="p", stamp=10.1)
    assert not cold.warm_started and warm.warm_started
    assert warm.iterations < cold.iterations
    assert np.abs(warm.vertices - cold.vertices).max() < 1e-3
    # A moved person: the warm start still lands on the cold answer.
    rng = np.random.default_rng(12)
    values = body_poses.jitter(body_poses.joint_values(fitter, "handing_over"), rng, 0.05)
    rotation, root = body_poses.camera_placement(np.random.default_rng(11))
    moved, targets, visibility = body_poses.person(fitter, values, rotation, root + 0.03, rng, 0.01)
    warm = fitter.fit(targets, visibility, person_id="p", stamp=10.2)
    cold = BodyFitter().fit(targets, visibility)
    assert warm.warm_started and np.abs(warm.vertices - cold.vertices).max() < 0.01


def test_warm_start_cache_size_and_age():
    fitter = BodyFitter(cache_size=1, cache_max_age_s=0.5)
    truth, targets, visibility = _person(fitter, "arms_down", seed=13)
    assert not fitter.fit(targets, visibility, person_id="a", stamp=0.0).warm_started
    assert fitter.fit(targets, visibility, person_id="a", stamp=0.4).warm_started
    assert not fitter.fit(targets, visibility, person_id="a", stamp=1.0).warm_started  # 0.6 s later: too old
    assert not fitter.fit(targets, visibility, person_id="a", stamp=0.9).warm_started  # stamps went back
    assert not fitter.fit(targets, visibility, person_id="b", stamp=1.0).warm_started
    assert not fitter.fit(targets, visibility, person_id="a", stamp=1.0).warm_started  # evicted by b
    assert fitter.fit(targets, visibility, person_id="a", stamp=1.1).warm_started
    fitter.forget("a")
    assert not fitter.fit(targets, visibility, person_id="a", stamp=1.2).warm_started
    assert not fitter.fit(targets, visibility, stamp=1.3).warm_started
    assert fitter.fit(targets, visibility).person_id == ""


def test_a_warm_start_far_from_the_person_is_redone_cold():
    fitter = BodyFitter()
    _, sitting, visibility = _person(fitter, "sitting", seed=14)
    fitter.fit(sitting, visibility, person_id="p", stamp=0.0)
    truth, reaching, visibility = _person(fitter, "reaching_forward", seed=15)  # elsewhere, another pose
    body = fitter.fit(reaching, visibility, person_id="p", stamp=0.1)
    assert _vertex_error(body, truth).max() < 0.02
    assert body.residual.max() < 2e-3


# ---------------------------------------------------------------- bad input


def test_bad_input_is_named(fitter):
    targets, visibility = np.zeros((33, 3)), np.ones(33)
    with pytest.raises(ValueError, match=r"targets must have shape \(33, 3\), got \(32, 3\)"):
        fitter.fit(targets[:32], visibility)
    with pytest.raises(ValueError, match=r"visibility must have shape \(33,\)"):
        fitter.fit(targets, visibility[:, None])
    bad = targets.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="targets has non-finite values at landmarks with visibility >= 0.5: "
                                         "left_eye_outer"):
        fitter.fit(bad, visibility)
    with pytest.raises(ValueError, match=r"visibility must lie in \[0, 1\]"):
        fitter.fit(targets, visibility * 1.5)
    few = np.zeros(33)
    few[:MIN_FIT_LANDMARKS - 1] = 1.0
    with pytest.raises(Rejected, match="too_few_landmarks: 3 landmarks .* needs at least 4") as caught:
        fitter.fit(targets, few)
    assert caught.value.reason is Reason.TOO_FEW_LANDMARKS
    for kwargs, name in (({"visibility_min": 1.5}, "visibility_min"), ({"prior_scale": -1.0}, "prior_scale"),
                         ({"cache_size": 1.5}, "cache_size"), ({"cache_max_age_s": 0.0}, "cache_max_age_s")):
        with pytest.raises(ValueError, match=name):
            BodyFitter(fitter.rig, **kwargs)
    broken = JointMap(**{**OPEN_BODY_JOINTS.__dict__, "head": "skull"})
    with pytest.raises(ValueError, match="the rig has no bone 'skull'"):
        BodyFitter(fitter.rig, broken)
    broken = JointMap(**{**OPEN_BODY_JOINTS.__dict__, "forearm": ("lowerarm01.L", "lowerarm01.R")})
    with pytest.raises(ValueError, match="the wrist 'wrist.L' must be a child of the forearm's twist bone"):
        BodyFitter(fitter.rig, broken)


# ---------------------------------------------------------------- SMPL-H


@pytest.fixture(scope="module")
def smplh_fitter(tmp_path_factory):
    path = test_smpl._write_npz(tmp_path_factory.mktemp("smplh") / "SMPLH_NEUTRAL.npz", test_smpl._arrays("smplh"))
    return BodyFitter(SmplhRig(path, correspondences=test_body_rig._synthetic_correspondences()))


@pytest.mark.parametrize("pose", ["holding_at_chest", "sitting"])
def test_smplh_fit_on_the_synthetic_model(smplh_fitter, pose):
    """The same fit drives SMPL-H (52 joints, elbow twist on the elbow itself) through smplx:
    the boxes of the arms, hands and torso come back (measured: within 1 mm; the feet, with a
    single landmark vertex each, are left to the prior)."""
    fitter = smplh_fitter
    assert fitter.body_model == "smplh" and fitter.rig.landmark_available.sum() == 27
    truth, targets, visibility = _person(fitter, pose, seed=16)
    body = fitter.fit(targets, visibility, person_id="s", stamp=0.0)
    assert body.body_model == "smplh" and body.vertices.shape == (416, 3) and body.rotations.shape == (52, 3, 3)
    assert np.isnan(body.residual[~fitter.rig.landmark_available]).all()
    assert np.nanmax(body.residual) < 2e-3
    joints = [fitter.rig.bone_names.index(n) for n in
              ("pelvis", "spine1", "spine2", "spine3", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
               "left_wrist", "right_wrist", "left_index1", "right_pinky1", "left_knee", "right_knee")]
    boxes = np.concatenate([np.arange(8 * j, 8 * j + 8) for j in joints])
    assert _vertex_error(body, truth)[boxes].max() < 0.005
    assert fitter.fit(targets, visibility, person_id="s", stamp=0.1).warm_started


def test_smplh_landmark_skin_with_pose_correctives(tmp_path):
    """The landmark skin the fit differentiates reproduces smplx's landmarks, pose correctives
    included (random posedirs)."""
    rng = np.random.default_rng(17)
    arrays = test_smpl._arrays("smplh", posedirs=rng.normal(size=(416, 3, 51 * 9)) * 0.002)
    rig = SmplhRig(test_smpl._write_npz(tmp_path / "SMPLH_NEUTRAL.npz", arrays),
                   correspondences=test_body_rig._synthetic_correspondences())
    from interactvlm_ros.body.skinning import chain_transforms, rotation_matrices

    for _ in range(3):
        rotations = rotation_matrices(rng.normal(size=(52, 3)) * 0.4, 52)
        translation = rng.normal(size=3)
        G, t = chain_transforms(rotations, translation, rig.parents, rig.rest_joints)
        expected = rig.landmarks(rotations, translation)
        got = rig.landmark_skin(rotations).evaluate(G, t)
        np.testing.assert_allclose(got, expected, atol=1e-9)
        without = rig.landmark_skin().evaluate(G, t)  # the rest pose's correctives only
        on_vertices = [LM[n] for n in ("nose", "left_ear", "right_heel")]
        assert np.abs(without[on_vertices] - expected[on_vertices]).max() > 1e-3


def test_open_body_landmark_skin_matches_the_regressor(fitter):
    rig = fitter.rig
    rng = np.random.default_rng(18)
    from interactvlm_ros.body.skinning import chain_transforms, rotation_matrices

    rotations = rotation_matrices(rng.normal(size=(104, 3)) * 0.5, 104)
    posed = rig.pose(rotations, [0.1, 0.2, 2.0])
    G, t = chain_transforms(rotations, np.array([0.1, 0.2, 2.0]), rig.parents, rig.rest_joints)
    np.testing.assert_allclose(rig.landmark_skin().evaluate(G, t), posed.landmarks, atol=1e-12)
    skin = rig.landmark_skin()
    np.testing.assert_allclose(skin.weights.sum(axis=1), 1.0, atol=1e-9)
    assert math.isclose(float(np.abs(skin.offset).max()), 0.0, abs_tol=1e-6)
