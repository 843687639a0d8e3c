"""Synthetic people for the body fit: plausible poses, posed through the rig, seen by a camera.

Shared by tests/test_body_fit.py and benchmarks/body_pose.py. Each pose is written as what a
person does (limb directions in the body's frame: x = the body's left, y up, z forward) and
turned into the fitter's joint values (``BodyFitter.compose``), so every pose lies in the set
the fit can reach (hinged elbows and knees, forearm twist, wrist swing). Landmarks come from
the posed mesh through the rig's landmark regressor; a person is placed 1.5-4 m in front of the
camera in the optical frame (+x right, +y down, +z forward).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.transform import Rotation

from interactvlm_ros.body.landmarks import LANDMARK_INDEX

SIDES = ("left", "right")

# Per pose: the upper arm's and forearm's directions, the thigh's and shin's (left side; the
# right side mirrors x unless given), forearm twist and wrist swing (radians), and the spine,
# neck and head rotations (axis-angle, radians, in the body's rest axes).
POSES = {
    "arms_down": {
        "arm": ((0.15, -1.0, 0.0), (0.1, -1.0, 0.2)), "leg": ((0.05, -1.0, 0.0), (0.05, -1.0, -0.05)),
        "twist": 0.1, "swing": (0.1, 0.0),
    },
    "reaching_forward": {
        "arm": ((0.15, -1.0, 0.05), (0.1, -1.0, 0.25)),
        "right_arm": ((-0.15, 0.05, 1.0), (-0.05, 0.1, 1.0)),
        "leg": ((0.05, -1.0, 0.0), (0.05, -1.0, -0.05)),
        "right_twist": 0.8, "spine": (0.05, 0.0, 0.0), "head": (0.15, 0.1, 0.0),
    },
    "holding_at_chest": {
        "arm": ((0.25, -1.0, 0.3), (-0.45, 0.25, 1.0)), "leg": ((0.05, -1.0, 0.0), (0.05, -1.0, -0.05)),
        "twist": 1.2, "swing": (0.2, -0.3), "head": (0.25, 0.0, 0.0),
    },
    "carrying_box": {
        "arm": ((0.3, -1.0, 0.35), (0.15, -0.35, 1.0)), "leg": ((0.08, -1.0, 0.05), (0.08, -1.0, -0.1)),
        "twist": 1.4, "swing": (-0.3, 0.2), "spine": (-0.03, 0.0, 0.0),
    },
    "sitting": {
        "arm": ((0.2, -1.0, 0.3), (0.05, -0.4, 1.0)), "leg": ((0.15, -0.1, 1.0), (0.1, -1.0, 0.1)),
        "twist": 0.9, "swing": (0.0, 0.2), "spine": (0.04, 0.0, 0.0), "neck": (0.05, 0.0, 0.0),
    },
    "handing_over": {
        "arm": ((0.12, -1.0, 0.0), (0.1, -1.0, 0.15)),
        "right_arm": ((-0.25, -0.45, 1.0), (-0.1, -0.2, 1.0)),
        "leg": ((0.06, -1.0, 0.0), (0.06, -1.0, -0.05)),
        "right_twist": 1.5, "right_swing": (0.3, 0.1), "head": (0.3, -0.3, 0.0), "spine": (0.03, -0.05, 0.0),
    },
}

#: The BlazePose landmarks of each side's hand (the wrist's knuckles and the wrist itself).
HAND = {side: [LANDMARK_INDEX[f"{side}_{n}"] for n in ("wrist", "pinky", "index", "thumb")] for side in SIDES}
#: Landmarks an image's bottom edge cuts off when only the upper body is in view.
LEGS = [LANDMARK_INDEX[f"{side}_{n}"] for side in SIDES for n in ("knee", "ankle", "heel", "foot_index")]


def _unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def _limb(fitter, upper: str, hinge: str, bones: tuple[str, str, str], d_upper, d_lower) -> dict:
    """Values of the swing and twist of ``upper`` and of the hinge ``hinge`` that point the limb
    whose bones are ``bones`` (upper, lower, end: e.g. upper arm, elbow, wrist) along the
    directions (body frame)."""
    rig = fitter.rig
    top, middle, end = (rig.rest_joints[rig.bone_names.index(name)] for name in bones)
    u0, f0 = _unit(middle - top), _unit(end - middle)
    n0 = _unit(np.cross(fitter.joint_axes(hinge)[:, 0], f0))  # where flexion moves the lower segment
    d, e = _unit(d_upper), _unit(d_lower)
    swing = Rotation.align_vectors([d], [u0])[0]  # the smallest rotation: a swing
    angle = math.atan2(np.linalg.norm(np.cross(d, e)), d @ e)
    twist = 0.0
    if angle > 1e-6:  # turn the limb about its axis so that it flexes towards e
        wanted = swing.inv().apply(_unit(e - (e @ d) * d))
        a, b = n0 - (n0 @ u0) * u0, wanted - (wanted @ u0) * u0
        twist = math.atan2(u0 @ np.cross(a, b), a @ b)
    return {upper: fitter.joint_axes(upper).T @ swing.as_rotvec(), f"{upper}_twist": [twist], hinge: [angle]}


def joint_values(fitter, pose: str) -> dict:
    """The fitter's joint values (``BodyFitter.compose``) of one of :data:`POSES`."""
    spec = POSES[pose]
    joints = fitter.joints
    values = {}
    for i, side in enumerate(SIDES):
        mirror = np.array([1.0, 1.0, 1.0]) if side == "left" else np.array([-1.0, 1.0, 1.0])
        arm = spec.get(f"{side}_arm", tuple(tuple(np.array(v) * mirror) for v in spec["arm"]))
        leg = spec.get(f"{side}_leg", tuple(tuple(np.array(v) * mirror) for v in spec["leg"]))
        arm_bones = (joints.shoulder[i], joints.elbow[i], joints.wrist[i])
        leg_bones = (joints.hip[i], joints.knee[i], joints.ankle[i])
        values.update(_limb(fitter, f"{side}_shoulder", f"{side}_elbow", arm_bones, *arm))
        values.update(_limb(fitter, f"{side}_hip", f"{side}_knee", leg_bones, *leg))
        sign = 1.0 if side == "left" else -1.0
        values[f"{side}_forearm"] = [spec.get(f"{side}_twist", sign * spec.get("twist", 0.0))]
        values[f"{side}_wrist"] = list(spec.get(f"{side}_swing", spec.get("swing", (0.0, 0.0))))
    for name in ("spine", "neck", "head"):
        if name in spec:
            values[name] = list(spec[name])
    return values


def camera_placement(rng) -> tuple[np.ndarray, np.ndarray]:
    """A random rotation (body -> optical frame) and root position: facing the camera within
    +-60 degrees of yaw, +-8 degrees of pitch and roll, 1.5-4 m away, within the view."""
    yaw = rng.uniform(-math.radians(60), math.radians(60))
    tilt = rng.uniform(-math.radians(8), math.radians(8), size=2)
    rotation = (Rotation.from_rotvec([math.pi, 0.0, 0.0]) * Rotation.from_rotvec([0.0, yaw, 0.0])
                * Rotation.from_rotvec([tilt[0], 0.0, 0.0]) * Rotation.from_rotvec([0.0, 0.0, tilt[1]]))
    depth = rng.uniform(1.5, 4.0)
    root = np.array([rng.uniform(-0.25, 0.25) * depth, rng.uniform(-0.1, 0.3) * depth, depth])
    return rotation.as_matrix(), root


def jitter(values: dict, rng, scale: float) -> dict:
    """Every joint value moved by Gaussian noise of ``scale`` radians (hinges kept >= 0)."""
    moved = {}
    for name, value in values.items():
        value = np.asarray(value, np.float64) + rng.normal(0.0, scale, np.shape(value))
        if name.endswith(("_elbow", "_knee")):
            value = np.abs(value)
        moved[name] = value
    return moved


def person(fitter, values: dict, rotation, root, rng, noise_m: float = 0.01, hidden=()):
    """A posed body and what the fit gets: (ground truth RigPose, targets (33, 3), visibility (33,)).

    Visible landmarks carry ``noise_m`` Gaussian noise per axis and a visibility in [0.6, 1];
    ``hidden`` ones get visibility 0 and a position 0.3 m off (what a pose source guesses)."""
    rig = fitter.rig
    translation = np.asarray(root) - rig.rest_joints[0]
    rotations, translation = fitter.compose(values, rotation, translation)
    truth = rig.pose(rotations, translation)
    targets = truth.landmarks + rng.normal(0.0, noise_m, truth.landmarks.shape)
    visibility = rng.uniform(0.6, 1.0, len(targets))
    hidden = list(hidden)
    visibility[hidden] = 0.0
    targets[hidden] += rng.normal(0.0, 0.3, (len(hidden), 3))
    return truth, np.nan_to_num(targets), visibility
