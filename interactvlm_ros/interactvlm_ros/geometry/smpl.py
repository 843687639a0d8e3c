"""SMPL-H / SMPL-X body meshes and SMPL-H -> SMPL-X contact conversion (no ROS, no chumpy).

Model files need registration and are never downloaded by this project: SMPL-H from
https://mano.is.tue.mpg.de (or its "Extended SMPL+H", ``neutral/model.npz``), SMPL-X from
https://smpl-x.is.tue.mpg.de. Both the original pickles and ``.npz`` files are read.

Original pickles hold chumpy objects, and chumpy does not import on Python 3.11. They are
read with a restricted unpickler (:mod:`interactvlm_ros.safe_pickle`): ``chumpy.*`` classes
become a stand-in that keeps the pickled state (a chumpy ``Ch`` keeps its value under
``'x'``), ``csc_matrix`` / ``csr_matrix`` are rebuilt from their buffers, and besides those
only numpy array / dtype / scalar reconstruction, copyreg helpers and builtin containers may be
named by the pickle, each by its exact module path (anything else, e.g. ``scipy.sparse.save_npz``,
raises :class:`~interactvlm_ros.safe_pickle.RefusedGlobalError`, a ``pickle.UnpicklingError``).
chumpy is never imported.

Posing: the loaded arrays go straight into ``smplx.lbs.lbs`` (float64 tensors, one batch).
smplx's own ``SMPLH`` / ``SMPLX`` classes are not used: their pickle loader needs chumpy and
their constructors demand keys (hand PCA, expression bases) that a rest-pose mesh does not.

Frame: SMPL's native one, metres, +Y up, the body faces +Z, +X is the body's left. Nothing
is recentred. :func:`body_mesh` (what the pipeline renders) has betas 0 and zero translation
and global orientation; :func:`posed_vertices` poses a model with any pose, betas and
translation (e.g. a dataset's fits).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..safe_pickle import DATA_GLOBALS, OBJECT_GLOBALS, SPARSE_GLOBALS, RestrictedUnpickler, load_pickle
from .body_parts import BODY_PARTS, part_of_smpl_joint
from .mesh import TriangleMesh

#: Vertices human contact can be reported on: the rendered body's own ("native"), or SMPL-X's,
#: converted from SMPL-H with a (10475, 6890) matrix (:func:`smplh_to_smplx`).
CONTACT_TOPOLOGIES = ("native", "smplx")
SMPLH_NUM_VERTICES = 6890
SMPLX_NUM_VERTICES = 10475
#: Joints per model (body + jaw/eyes + 2 x 15 hand joints) and body joints before the hands.
NUM_JOINTS = {"smplh": 52, "smplx": 55}
NUM_BODY_JOINTS = {"smplh": 22, "smplx": 25}
#: Keys a model file must hold to build the rest-pose mesh.
REQUIRED_KEYS = ("v_template", "f", "weights", "kintree_table", "J_regressor", "posedirs")
#: Hip rotation of the canonical "Vitruvian" pose InteractVLM renders, radians about +z.
#: Joint 1 (left hip) gets +pi/6, joint 2 (right hip) -pi/6: with +x the body's left, a +z
#: rotation swings a point below the left hip towards +x, so the legs spread apart.
VITRUVIAN_HIP_ANGLE = np.pi / 6

_WHERE = {
    "smplh": "SMPL-H model files are obtained (registration required) from https://mano.is.tue.mpg.de",
    "smplx": "SMPL-X model files are obtained (registration required) from https://smpl-x.is.tue.mpg.de",
}
_OBTAIN = f"{_WHERE['smplh']}; {_WHERE['smplx']}. This project never downloads them."
# Globals a model pickle may name, as exact (module, name) pairs with their Python 2 / old numpy
# and scipy module-path aliases (plus any chumpy.* name, which becomes _ChumpyStandIn).
_ALLOWED = {**DATA_GLOBALS, **OBJECT_GLOBALS, **SPARSE_GLOBALS}


class _ChumpyStandIn:
    """Takes the place of any chumpy class while unpickling; keeps the pickled state."""

    def __init__(self, *args, **kwargs):
        self.state = {}

    def __setstate__(self, state):
        if isinstance(state, tuple):  # (dict state, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        self.state = state if isinstance(state, dict) else {}


class _ModelUnpickler(RestrictedUnpickler):
    def find_class(self, module: str, name: str):
        if module.split(".")[0] == "chumpy":
            return _ChumpyStandIn
        return super().find_class(module, name)


def _missing(paths: list[Path], what: str = "SMPL-H / SMPL-X model file") -> FileNotFoundError:
    tried = "\n  ".join(str(p) for p in paths)
    return FileNotFoundError(f"{what} not found; looked for:\n  {tried}\n{_OBTAIN}")


def _convert(value):
    """Loaded object -> numpy array (floats as float32) / CSR float32 matrix / None (dropped)."""
    if isinstance(value, _ChumpyStandIn):
        value = value.state.get("x")
        if value is None:  # a chumpy expression, not a stored value: nothing to keep
            return None
    if sp.issparse(value):
        d = value.__dict__
        if {"data", "indices", "indptr"} <= d.keys() and value.format in ("csr", "csc"):
            shape = d.get("_shape", d.get("shape"))  # old scipy pickles differ here
            value = type(value)((d["data"], d["indices"], d["indptr"]), shape=shape)
        return sp.csr_matrix(value, dtype=np.float32)
    if isinstance(value, (dict, type(None))):
        return None
    array = np.asarray(value)
    if array.dtype == object:
        return None
    return array.astype(np.float32) if np.issubdtype(array.dtype, np.floating) else array


def _read_pickle(path: Path):
    return load_pickle(path, _ALLOWED, " (a model file may name only numpy arrays, csc / csr "
                       "matrices, chumpy classes, copyreg helpers and builtin containers)",
                       unpickler=_ModelUnpickler)


def load_model_file(path) -> dict:
    """Read an SMPL-H / SMPL-X model file: an original pickle (chumpy-free) or an ``.npz``.

    Returns:
        {key: value}: float arrays as float32 numpy arrays, integer / string arrays unchanged,
        sparse matrices (the pickles' ``J_regressor``) as ``scipy.sparse.csr_matrix`` float32.
        Entries that are not arrays (dicts, chumpy expressions, object arrays) are dropped.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message says where files come from).
        ValueError: a pickle that does not hold a dict.
        pickle.UnpicklingError: a pickle naming a global other than numpy arrays / dtypes /
            scalars, ``csc_matrix`` / ``csr_matrix``, chumpy classes, copyreg helpers and
            builtin containers (the message names the global and the file).
    """
    path = Path(path)
    if not path.is_file():
        raise _missing([path])
    if path.suffix == ".npz":
        out = {}
        with np.load(path, allow_pickle=False) as npz:
            for key in npz.files:
                try:
                    value = _convert(npz[key])
                except ValueError:  # object array: needs pickle, never a geometry array
                    continue
                if value is not None:
                    out[key] = value
        return out
    data = _read_pickle(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a pickled dict of model arrays, got {type(data).__name__}")
    return {k: v for k, v in ((str(k), _convert(v)) for k, v in data.items()) if v is not None}


def _check_model_type(model_type: str) -> None:
    if model_type not in NUM_JOINTS:
        raise ValueError(f"model_type must be one of {sorted(NUM_JOINTS)}, got {model_type!r}")


def resolve_model_path(model_dir_or_file, model_type: str, gender: str = "neutral") -> Path:
    """Find the model file for ``model_type`` ('smplh' | 'smplx') and ``gender``.

    A file is returned as it is. In a directory D, with T = SMPLH / SMPLX, t = smplh / smplx
    and G the gender, these are tried in order (``.npz`` before ``.pkl``, G upper then lower
    case): D/t/T_G.{npz,pkl}, D/T_G.{npz,pkl}, D/t/G/model.npz, D/G/model.npz.

    Raises:
        ValueError: unknown model_type or gender.
        FileNotFoundError: nothing found; the message lists every path tried.
    """
    _check_model_type(model_type)
    if gender not in ("neutral", "male", "female"):
        raise ValueError(f"gender must be 'neutral', 'male' or 'female', got {gender!r}")
    root = Path(model_dir_or_file)
    if root.is_file():
        return root
    stem = model_type.upper()
    names = [f"{stem}_{g}.{ext}" for ext in ("npz", "pkl") for g in (gender.upper(), gender)]
    candidates = [root / model_type / n for n in names] + [root / n for n in names]
    candidates += [root / model_type / gender / "model.npz", root / gender / "model.npz"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise _missing([root] + candidates, f"{model_type} {gender} model")


def canonical_pose(model_type: str, pose: str = "vitruvian") -> np.ndarray:
    """(J, 3) float64 axis-angle per joint (radians) of a named pose.

    'zero': the T-pose (all zeros). 'vitruvian': zero except joint 1 (left hip) = (0, 0, +pi/6)
    and joint 2 (right hip) = (0, 0, -pi/6): the legs spread apart, as InteractVLM renders.

    Raises:
        ValueError: unknown model_type or pose.
    """
    _check_model_type(model_type)
    if pose not in ("vitruvian", "zero"):
        raise ValueError(f"pose must be 'vitruvian' or 'zero', got {pose!r}")
    axis_angle = np.zeros((NUM_JOINTS[model_type], 3))
    if pose == "vitruvian":
        axis_angle[1, 2] = VITRUVIAN_HIP_ANGLE
        axis_angle[2, 2] = -VITRUVIAN_HIP_ANGLE
    return axis_angle


def _model_arrays(data: dict, model_type: str, source) -> dict:
    """Check keys and shapes; return float64 / int64 arrays ready for LBS."""
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(f"{source}: model file lacks required keys {missing} (needs {list(REQUIRED_KEYS)})")
    joints = NUM_JOINTS[model_type]
    v_template = np.asarray(data["v_template"], np.float64)
    num_vertices = len(v_template)
    regressor = data["J_regressor"]
    regressor = regressor.toarray() if sp.issparse(regressor) else regressor
    arrays = {
        "v_template": v_template,
        "faces": np.asarray(data["f"], np.int64),
        "weights": np.asarray(data["weights"], np.float64),
        "parents": np.asarray(data["kintree_table"], np.int64)[0].copy(),
        "J_regressor": np.asarray(regressor, np.float64),
        "posedirs": np.asarray(data["posedirs"], np.float64),
    }
    expected = {
        "v_template": (num_vertices, 3),
        "weights": (num_vertices, joints),
        "J_regressor": (joints, num_vertices),
        "posedirs": (num_vertices, 3, (joints - 1) * 9),
    }
    for key, shape in expected.items():
        if arrays[key].shape != shape:
            raise ValueError(
                f"{source}: {key} has shape {arrays[key].shape}, expected {shape} for {model_type} "
                f"({joints} joints, {num_vertices} vertices)"
            )
    kintree = np.asarray(data["kintree_table"])
    if kintree.ndim != 2 or kintree.shape != (2, joints):
        raise ValueError(f"{source}: kintree_table has shape {kintree.shape}, expected (2, {joints})")
    arrays["parents"][0] = -1
    if "shapedirs" in data:
        shapedirs = np.asarray(data["shapedirs"], np.float64)
        if shapedirs.ndim != 3 or shapedirs.shape[:2] != (num_vertices, 3):
            raise ValueError(f"{source}: shapedirs has shape {shapedirs.shape}, expected ({num_vertices}, 3, B)")
        arrays["shapedirs"] = shapedirs
    return arrays


def load_model_arrays(model_type: str, model_path, gender: str = "neutral") -> dict:
    """The arrays linear blend skinning needs, checked, from a model file or folder.

    Returns:
        {"v_template": (V, 3) float64 metres, "faces": (F, 3) int64, "weights": (V, J) float64,
        "parents": (J,) int64 (root -1), "J_regressor": (J, V) float64, "posedirs": (V, 3, 9 (J - 1))
        float64} with J = ``NUM_JOINTS[model_type]``, and "shapedirs": (V, 3, B) float64 (metres
        per unit of each of the B shape coefficients) when the file has it.

    Raises:
        ValueError: unknown model_type / gender, missing keys (listed) or wrong array shapes.
        FileNotFoundError: no model file (the message lists the paths tried).
    """
    _check_model_type(model_type)
    path = resolve_model_path(model_path, model_type, gender)
    return _model_arrays(load_model_file(path), model_type, path)


def body_mesh(model_type: str, model_path, pose: str = "vitruvian", gender: str = "neutral") -> TriangleMesh:
    """The body mesh InteractVLM renders: betas 0, zero translation, a canonical pose.

    Args:
        model_type: 'smplh' (52 joints) or 'smplx' (55 joints).
        model_path: a model file or a directory (see ``resolve_model_path``).
        pose: 'vitruvian' (hips +-30 deg about z, see ``canonical_pose``) or 'zero' (T-pose).
        gender: used only when ``model_path`` is a directory.

    Returns:
        TriangleMesh named ``model_type``: vertices (V, 3) float32 metres in SMPL's native frame
        (+Y up, facing +Z, +X = body's left), the model's faces, per-vertex part labels = the
        BODY_PARTS part of the joint with the largest skinning weight.

    Raises:
        ValueError: unknown model_type / pose, missing keys (listed) or wrong array shapes.
        FileNotFoundError: no model file (the message lists the paths tried).
    """
    axis_angle = canonical_pose(model_type, pose)
    m = load_model_arrays(model_type, model_path, gender)
    vertices = posed_vertices(m, axis_angle)
    body_joints = NUM_BODY_JOINTS[model_type]
    lookup = np.array([part_of_smpl_joint(j, body_joints) for j in range(NUM_JOINTS[model_type])])
    return TriangleMesh(
        vertices=vertices.astype(np.float32),
        faces=m["faces"],
        part_labels=lookup[np.argmax(m["weights"], axis=1)],
        part_names=BODY_PARTS,
        name=model_type,
    )


def posed_vertices(arrays: dict, axis_angle, betas=None, translation=None) -> np.ndarray:
    """Vertices of a body model posed by linear blend skinning (``smplx.lbs.lbs``), pose
    correctives included: the SMPL family's forward function.

    Args:
        arrays: from :func:`load_model_arrays` (with ``shapedirs`` when ``betas`` is given).
        axis_angle: (J, 3) or (3 J,) axis-angle per joint, radians, in the model's joint order
            (SMPL-H: global orientation, 21 body joints, 15 left-hand then 15 right-hand joints;
            the 156 values of a BEHAVE ``person_fit.pkl`` ``pose``).
        betas: (B,) shape coefficients (None: the template's shape); B at most the model's.
        translation: (3,) metres added to every vertex after posing (None: zero).

    Returns:
        (V, 3) float64 metres in the model's frame (translated; nothing is recentred).

    Raises:
        ValueError: ``axis_angle`` not J x 3 values, more betas than the model has shape
            directions (or none), a translation that is not 3 values, or non-finite values.
    """
    joints = len(arrays["parents"])
    pose = np.asarray(axis_angle, np.float64).reshape(-1)
    if pose.shape != (3 * joints,):
        raise ValueError(f"pose must hold {joints} x 3 axis-angle values, got {np.shape(axis_angle)}")
    num_vertices = len(arrays["v_template"])
    shapedirs = np.zeros((num_vertices, 3, 1))
    coefficients = np.zeros(1)
    if betas is not None:
        coefficients = np.asarray(betas, np.float64).reshape(-1)
        available = arrays["shapedirs"].shape[2] if "shapedirs" in arrays else 0
        if not 0 < coefficients.size <= available:
            raise ValueError(f"{coefficients.size} betas for a model with {available} shape directions")
        shapedirs = arrays["shapedirs"][:, :, :coefficients.size]
    shift = np.zeros(3) if translation is None else np.asarray(translation, np.float64).reshape(-1)
    if shift.shape != (3,):
        raise ValueError(f"translation must be 3 values, got {np.shape(translation)}")
    if not (np.all(np.isfinite(pose)) and np.all(np.isfinite(coefficients)) and np.all(np.isfinite(shift))):
        raise ValueError("pose, betas and translation must be finite")
    import torch  # deferred: loading files needs no torch
    from smplx.lbs import lbs

    num_poses = arrays["posedirs"].shape[2]
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    with torch.no_grad():
        vertices, _ = lbs(
            betas=t(coefficients[None]),
            pose=t(pose[None]),
            v_template=t(arrays["v_template"]),
            shapedirs=t(shapedirs),
            posedirs=t(arrays["posedirs"].reshape(-1, num_poses).T),  # (P, V*3), as smplx stores it
            J_regressor=t(arrays["J_regressor"]),
            parents=torch.as_tensor(arrays["parents"]),
            lbs_weights=t(arrays["weights"]),
        )
    return vertices[0].numpy() + shift


def load_conversion_matrix(
    path, num_smplx_vertices: int = SMPLX_NUM_VERTICES, num_smplh_vertices: int = SMPLH_NUM_VERTICES
) -> sp.csr_matrix:
    """Read a user-supplied SMPL-H -> SMPL-X vertex matrix M, shape (10475, 6890) by default.

    Accepted files: ``.npy`` (dense); ``.npz`` from ``scipy.sparse.save_npz`` or ``np.savez``
    with key 'matrix' / 'mtx' or a single array; a pickle holding a dict with 'matrix' (dense
    or sparse, e.g. DECO's / InteractVLM's ``smpl_to_smplx.pkl``) or 'mtx' (the smplx repo's
    ``transfer_model`` ``smplh2smplx_deftrafo_setup.pkl``). A matrix of shape
    (num_smplx, 2 * num_smplh) is a deformation-transfer matrix whose second half of columns
    acts on normals: only the first num_smplh columns are kept, as the smplx repo's
    ``read_deformation_transfer`` does without normals. Row i of M holds the barycentric
    weights of SMPL-X vertex i on the SMPL-H triangle it was registered to.

    Returns:
        ``scipy.sparse.csr_matrix`` float32, shape (num_smplx_vertices, num_smplh_vertices).

    Raises:
        FileNotFoundError: no such file.
        ValueError: unknown format, no matrix in it, or a shape other than the above.
        pickle.UnpicklingError: a pickle naming a global a model file may not name (as for
            :func:`load_model_file`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"SMPL-H -> SMPL-X conversion matrix not found: {path} (e.g. the smplx repo's "
            "transfer_data/smplh2smplx_deftrafo_setup.pkl, obtained from https://smpl-x.is.tue.mpg.de)"
        )
    if path.suffix == ".npy":
        matrix = np.load(path, allow_pickle=False)
    elif path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
        if {"format", "data", "indices", "indptr", "shape"} <= keys:
            matrix = sp.load_npz(path)
        else:
            with np.load(path, allow_pickle=False) as npz:
                matrix = _pick_matrix({k: npz[k] for k in npz.files}, path)
    else:
        data = _read_pickle(path)
        matrix = _pick_matrix(data if isinstance(data, dict) else {"matrix": data}, path)
    matrix = sp.csr_matrix(matrix, dtype=np.float32)
    rows, cols = matrix.shape
    if rows == num_smplx_vertices and cols == 2 * num_smplh_vertices:
        matrix = matrix[:, :num_smplh_vertices]
    if matrix.shape != (num_smplx_vertices, num_smplh_vertices):
        raise ValueError(
            f"{path}: conversion matrix has shape {(rows, cols)}, expected "
            f"({num_smplx_vertices}, {num_smplh_vertices}) or ({num_smplx_vertices}, {2 * num_smplh_vertices})"
        )
    return matrix


def _pick_matrix(data: dict, path: Path):
    for key in ("matrix", "mtx"):
        if key in data:
            value = data[key]
            return value if sp.issparse(value) else np.asarray(value, np.float32)
    arrays = [v for v in data.values() if sp.issparse(v) or isinstance(v, np.ndarray)]
    if len(arrays) == 1:
        return arrays[0]
    raise ValueError(f"{path}: no conversion matrix found (expected key 'matrix' or 'mtx'; keys: {sorted(data)})")


def smplh_to_smplx(probabilities, matrix) -> np.ndarray:
    """Per-vertex contact probabilities on SMPL-H -> on SMPL-X: ``clip(M @ p, 0, 1)``.

    Each SMPL-X vertex gets the barycentric interpolation (row of M) of the SMPL-H vertex
    probabilities; clipping keeps the result in [0, 1] whatever the row sums.

    Args:
        probabilities: (N_h,) probabilities in [0, 1] on the source mesh (6890 for SMPL-H).
        matrix: (N_x, N_h) dense or sparse, e.g. from ``load_conversion_matrix``.

    Returns:
        (N_x,) float32 probabilities in [0, 1] (10475 for SMPL-X).

    Raises:
        ValueError: ``matrix`` is not 2-D or ``probabilities`` is not of shape (N_h,).
    """
    p = np.asarray(probabilities, dtype=np.float64)
    shape = matrix.shape
    if len(shape) != 2:
        raise ValueError(f"conversion matrix must be 2-D, got shape {shape}")
    if p.shape != (shape[1],):
        raise ValueError(f"probabilities must have shape ({shape[1]},) for a {shape} matrix, got {p.shape}")
    result = np.asarray(matrix @ p).reshape(-1)
    return np.clip(result, 0.0, 1.0).astype(np.float32)
