"""An object placed in the camera's optical frame from contact with a posed body (numpy, scipy).

:func:`place_object` estimates the rigid transform (and optionally a scale within a range) that
takes an object's mesh from its model frame into the optical frame (+x right, +y down, +z
forward, metres), so that it touches the posed body where both contact maps say and projects
onto the detection box. It is InteractVLM's joint-reconstruction optimisation with the object
mask replaced by the detection box, plus what a robot needs: no penetration of the body, the
object in front of the camera, and a verdict (``converged``) with residuals.

**Objective** (minimised with Adam over the rotation's 6D representation, the translation and,
when ``min_scale < max_scale``, the scale; :class:`.objective.Objective` computes it and its
exact gradient)::

    L = w_contact * sum_ij p_i q_j |h_i - x_j| / sum_ij p_i q_j         (InteractVLM: 10)
      + w_box     * (1 - IoU(projected box, detection box))             (InteractVLM's mask: 5)
      + w_centre  * |projected box centre - detection box centre|^2 px  (InteractVLM: 1e-4)
      + w_pen     * mean_k relu(-sd_k)                                  (added: 100 per metre)
      + w_front   * sum_k relu(near - z_k)                              (added: 1000 per metre)

``h_i``: body vertices whose human contact probability ``p_i`` exceeds 0.5; ``x_j``: object
vertices (placed) whose object contact probability ``q_j`` exceeds 0.3 (InteractVLM's
thresholds); the projected box is the axis-aligned box of the object's projected convex-hull
vertices (a pinhole projection maps the hull's extreme points onto the image's), clipped to the
image as a detector's box is; ``sd_k`` the signed distance of object vertex ``k`` to the body's
tangent plane at its nearest body vertex (outward normal; negative inside); ``z_k`` the depth
of hull vertex ``k``, ``near`` 5 cm.

**Start** (InteractVLM's): the object's centre on the ray through the box centre at the depth
of the human contact region (its probability-weighted mean), turned upright (the model's +Y,
the proxies' long axis, to the image's up, -y) and then so that its contact region's mean normal
faces the human contact region's; 10 iterations of ICP move the object's contact vertices onto
their nearest human contact vertices (pairs whose normals face each other only); then Adam, lr
5e-2 (rotation, 6D) / 1e-2 (translation, scale), 250 steps at most.

**Changed from InteractVLM**, measured with ``benchmarks/joint_fit.py`` (96 synthetic scenes:
cup, box, ball and mug touching a posed open body 1.5-4 m away, contact maps from the truth
with noise, boxes with 2 px noise; median / p90 object Chamfer distance, median rotation error
on the mug and the box, share converged, median time on a loaded 2-core Xeon):

* four starts turned by 90 degrees about the human contact's mean normal (the box and the
  contact leave the turn about the contact normal open), each screened with 40 Adam steps, the
  best one continued (``starts``, ``screen_iterations``): 1.51 / 3.33 cm, 44 degrees, 96/96,
  102 ms, against InteractVLM's single start 1.60 / 4.27 cm, 75 degrees, 83/96 (13 ended
  ``far_from_contact``), 55 ms;
* early stop when the loss has not improved by 1e-4 (relative) for 30 steps, keeping the best
  step's parameters (``patience``, ``stall_tolerance``);
* the penetration term's nearest body vertices found again every 5 steps, not every step
  (``refresh_every``): 1.51 against 1.45 cm, 102 against 221 ms;
* subsampling: at most 128 vertices of each contact region in the contact term, 256 object
  vertices in the penetration term, the body within twice the object's radius (plus 5 cm) of the
  human contact region (at most 3000 vertices).

Measured and not changed: the box term. The box centre alone (box weight 0, centre 1e-3) gave
1.43 cm (34 degrees) with 2 px box noise, within the spread between scene draws, but 1.42 cm
(36 degrees) against the IoU's 1.01 cm (20 degrees) with exact boxes. A nearest-vertex "touch"
term (each contact region to the other surface) gave no gain beyond that spread either.
Without the penetration term the scenes' placed objects entered the body by 0.16 cm median
(0.02 cm with it); where the contact maps ask for more (contact over the whole object) it
keeps the object out (tests/test_reconstruction.py).

**Verdict.** A fit that ends with any object vertex at ``z <= 0`` (``behind_camera``), with the
contact regions further apart than ``max_contact_distance_m`` (``far_from_contact``), a box IoU
below ``min_box_iou`` (``box_mismatch``) or the object deeper in the body than
``max_penetration_m`` (``penetrates_body``) returns ``converged=False`` with that reason: never
use it as placed. Inputs that leave nothing to fit (no human contact vertex, no object contact
vertex, the contact region or the given start behind the camera) and a loss that turns
non-finite from every start (``diverged``) return ``converged=False`` with ``rotation`` /
``translation`` NaN. Malformed inputs raise ValueError.

**Limits.** The object's depth comes from the body's: an error in the person's placement
moves the object with it. The turn about the contact normal is decided by the box's shape
only: symmetric boxes leave it ambiguous (rotation errors of tens of degrees are common on the
synthetic scenes). Costs grow with the mesh only through its convex hull and normals (pass
``object_normals`` to reuse them).
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, fields

import numpy as np
from scipy.spatial import ConvexHull, QhullError, cKDTree

from ..geometry.depth import Intrinsics
from ..geometry.mesh import TriangleMesh
from .fields import (
    HUMAN_CONTACT_THRESHOLD,
    OBJECT_CONTACT_THRESHOLD,
    body_signed_distances,
    points_array,
    probabilities_array,
    weighted_median,
)
from .objective import Objective, rotation_from_6d

#: The ``reason`` of a placement that is not converged.
NO_HUMAN_CONTACT = "no_human_contact"
NO_OBJECT_CONTACT = "no_object_contact"
BEHIND_CAMERA = "behind_camera"
DIVERGED = "diverged"
FAR_FROM_CONTACT = "far_from_contact"
BOX_MISMATCH = "box_mismatch"
PENETRATES_BODY = "penetrates_body"
REASONS = (NO_HUMAN_CONTACT, NO_OBJECT_CONTACT, BEHIND_CAMERA, DIVERGED, FAR_FROM_CONTACT, BOX_MISMATCH,
           PENETRATES_BODY)

#: The model frame's up (+Y, the proxies' long axis) turned to the optical frame's up (-y).
UPRIGHT = np.diag([1.0, -1.0, -1.0])
#: The verdict measures the contact distance and the penetration on the object's contact
#: vertices and at most this many others (a bound on its time for large meshes).
VERDICT_VERTICES = 4000


@dataclass(frozen=True)
class PlacementSettings:
    """The numbers of :func:`place_object` (InteractVLM's unless said otherwise; the module
    docstring says what was measured).

    Loss weights: ``contact_weight`` 10, ``box_weight`` 5 (on ``1 - IoU``), ``centre_weight``
    1e-4 (per squared pixel), ``penetration_weight`` (added, per metre of mean depth inside the
    body over the penetration vertices), ``front_weight`` (added, per metre in front of the
    ``near_m`` plane that the hull's vertices lack, summed).

    Optimisation: ``iterations`` (Adam steps at most along the kept start: its screening steps
    and the continuation, which starts Adam afresh from the screening's best), ``rotation_lr``
    / ``translation_lr`` / ``scale_lr``; ``icp_iterations`` per start; ``starts`` turned about
    the contact normal, each run ``screen_iterations`` steps before the best goes on (0: each
    runs to the end); early stop when the loss has not improved by ``stall_tolerance``
    (relative) for ``patience`` steps; the penetration term's nearest body vertices found every
    ``refresh_every`` steps. ``human_threshold`` / ``object_threshold``:
    the contact regions (0.5 / 0.3).

    Subsampling: at most ``max_contact_vertices`` of each contact region in the contact term,
    ``max_penetration_vertices`` object vertices in the penetration term and
    ``max_body_vertices`` body vertices near the human contact region; ``seed`` makes the
    choice repeatable.

    Verdict: ``max_contact_distance_m`` (the contact regions of the synthetic scenes' truth lie
    1.5 cm apart by this measure), ``min_box_iou``, ``max_penetration_m``.

    Raises:
        ValueError: (from the constructor) a weight or tolerance that is negative or not
            finite, a rate, threshold or count out of its range (the field is named).
    """

    contact_weight: float = 10.0
    box_weight: float = 5.0
    centre_weight: float = 1e-4
    penetration_weight: float = 100.0
    front_weight: float = 1000.0
    iterations: int = 250
    rotation_lr: float = 5e-2
    translation_lr: float = 1e-2
    scale_lr: float = 1e-2
    icp_iterations: int = 10
    starts: int = 4
    screen_iterations: int = 40
    patience: int = 30
    stall_tolerance: float = 1e-4
    refresh_every: int = 5
    human_threshold: float = HUMAN_CONTACT_THRESHOLD
    object_threshold: float = OBJECT_CONTACT_THRESHOLD
    near_m: float = 0.05
    max_contact_vertices: int = 128
    max_penetration_vertices: int = 256
    max_body_vertices: int = 3000
    seed: int = 0
    max_contact_distance_m: float = 0.05
    min_box_iou: float = 0.3
    max_penetration_m: float = 0.03

    def __post_init__(self) -> None:
        counts = {"iterations": 0, "icp_iterations": 0, "starts": 1, "screen_iterations": 0, "patience": 1,
                  "refresh_every": 1, "max_contact_vertices": 1, "max_penetration_vertices": 1,
                  "max_body_vertices": 1, "seed": 0}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in counts:
                if isinstance(value, bool) or int(value) != value or value < counts[item.name]:
                    raise ValueError(f"{item.name} must be an integer >= {counts[item.name]}, got {value!r}")
                continue
            if isinstance(value, bool) or not (isinstance(value, numbers.Real) and math.isfinite(value)
                                               and value >= 0):
                raise ValueError(f"{item.name} must be a finite number >= 0, got {value!r}")
        for name in ("rotation_lr", "translation_lr", "scale_lr", "near_m"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("human_threshold", "object_threshold", "min_box_iou"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)}")


@dataclass(frozen=True, eq=False)
class ObjectPlacement:
    """Output of :func:`place_object`.

    Attributes:
        rotation: (3, 3) float64, translation: (3,) float64 metres, scale: the object's size
            factor: a model-frame point ``p`` is at ``scale * rotation @ p + translation`` in
            the optical frame. NaN (rotation, translation) when refused before fitting or
            diverged.
        vertices: (M, 3) float32 metres, the object mesh's vertices so placed (NaN where
            rotation is).
        converged: True only when the placement passed every check (module docstring); a
            placement with False must not be used as the object's pose.
        reason: "" when converged, else one of :data:`REASONS`; detail: one line saying why.
        contact_distance_m: the distance between the contact regions (``fields.consistency``'s
            ``contact_distance_m`` on the placed mesh: its contact vertices and up to
            :data:`VERDICT_VERTICES` others), metres.
        box_iou: IoU of the placed mesh's projected box (clipped to the image) with the
            detection box; centre_error_px: distance between the two boxes' centres, pixels.
        penetration_m: the largest depth of a placed vertex (the same vertices) inside the
            body, metres (``fields.body_signed_distances``).
        iterations: Adam steps run, every start's together (0 when refused before fitting).
        loss: the objective at the kept step (NaN where rotation is).
        time_ms: wall time of the call, milliseconds.
    """

    rotation: np.ndarray
    translation: np.ndarray
    scale: float
    vertices: np.ndarray
    converged: bool
    reason: str
    detail: str
    contact_distance_m: float
    box_iou: float
    centre_error_px: float
    penetration_m: float
    iterations: int
    loss: float
    time_ms: float


def kabsch(source: np.ndarray, target: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rotation R (3, 3) and translation t (3,) minimising ``sum w |R s + t - t'|^2`` over
    the pairs (source, target: (N, 3); weights (N,) >= 0 with a positive sum)."""
    weights = weights / weights.sum()
    source_mean, target_mean = weights @ source, weights @ target
    covariance = ((source - source_mean) * weights[:, None]).T @ (target - target_mean)
    u, _, vt = np.linalg.svd(covariance)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    rotation = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return rotation, target_mean - rotation @ source_mean


def _minimal_rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector ``source`` onto unit vector ``target``."""
    axis = np.cross(source, target)
    sine, cosine = np.linalg.norm(axis), float(source @ target)
    if sine < 1e-9:
        if cosine > 0:
            return np.eye(3)
        other = np.eye(3)[np.argmin(np.abs(source))]  # half a turn about any perpendicular axis
        axis = np.cross(source, other)
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    axis /= sine
    skew = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    angle = math.atan2(sine, cosine)
    return np.eye(3) + math.sin(angle) * skew + (1 - math.cos(angle)) * skew @ skew


def _axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """The rotation by ``angle`` radians about the unit vector ``axis`` (Rodrigues)."""
    skew = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * skew + (1 - math.cos(angle)) * skew @ skew


def _choose(count: int, limit: int, rng) -> np.ndarray:
    """Indices of at most ``limit`` of ``count`` items (all, ascending, when within it)."""
    if count <= limit:
        return np.arange(count)
    return np.sort(rng.choice(count, size=limit, replace=False))


def _rotation_matrix(value, name: str) -> np.ndarray:
    matrix = np.asarray(value, dtype=np.float64)
    if matrix.shape != (3, 3) or not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} must be a finite (3, 3) matrix, got shape {matrix.shape}")
    if not (np.allclose(matrix @ matrix.T, np.eye(3), atol=1e-4) and np.linalg.det(matrix) > 0):
        raise ValueError(f"{name} is not a rotation (orthonormal with determinant +1)")
    return matrix


def _box_array(box_xyxy) -> np.ndarray:
    box = np.asarray(box_xyxy, dtype=np.float64)
    if box.shape != (4,):
        raise ValueError(f"box_xyxy must have 4 values (x1, y1, x2, y2 pixels), got shape {box.shape}")
    if not np.all(np.isfinite(box)):
        raise ValueError(f"box_xyxy has non-finite values: {box.tolist()}")
    if not (box[2] > box[0] and box[3] > box[1]):
        raise ValueError(f"box_xyxy must have x2 > x1 and y2 > y1, got {box.tolist()}")
    return box


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def projected_box(points: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """(4,) float64 xyxy pixels: the axis-aligned box of the points' pinhole projections,
    clipped to the image (points: (N, 3) metres in the optical frame, z > 0)."""
    u = intrinsics.fx * points[:, 0] / points[:, 2] + intrinsics.cx
    v = intrinsics.fy * points[:, 1] / points[:, 2] + intrinsics.cy
    # Pixel centres are integers: the image spans [-0.5, size - 0.5].
    return np.array([max(u.min(), -0.5), max(v.min(), -0.5), min(u.max(), intrinsics.width - 0.5),
                     min(v.max(), intrinsics.height - 0.5)])


def _refused(reason: str, detail: str, scale: float, num_vertices: int, start: float,
             iterations: int = 0) -> ObjectPlacement:
    nan = float("nan")
    return ObjectPlacement(
        rotation=np.full((3, 3), nan), translation=np.full(3, nan), scale=scale,
        vertices=np.full((num_vertices, 3), nan, np.float32), converged=False, reason=reason, detail=detail,
        contact_distance_m=nan, box_iou=nan, centre_error_px=nan, penetration_m=nan, iterations=iterations, loss=nan,
        time_ms=(time.perf_counter() - start) * 1000.0)


def place_object(body_vertices, body_normals, human_contact, object_mesh: TriangleMesh, object_contact, box_xyxy,
                 intrinsics: Intrinsics, *, min_scale: float = 1.0, max_scale: float = 1.0,
                 object_normals=None, initial_rotation=None, initial_translation=None,
                 settings: PlacementSettings | None = None) -> ObjectPlacement:
    """Place an object mesh in the optical frame from contact with a posed body and its box.

    Args:
        body_vertices: (V, 3) metres in the optical frame (``PosedBody.vertices``).
        body_normals: (V, 3) unit outward vertex normals (``PosedBody.normals``).
        human_contact: (V,) human contact probability per body vertex, in [0, 1]
            (``HumanContactResult.vertex_probabilities``).
        object_mesh: the object in its model frame, metres (``ObjectGeometry.mesh``).
        object_contact: (M,) probability per object vertex that the human touches it, in
            [0, 1] (``ObjectAffordanceResult.contact``; the affordance map where no model
            estimates contact).
        box_xyxy: (4,) the object's detection box, pixels (x1, y1, x2, y2, x2 > x1, y2 > y1).
        intrinsics: the pinhole intrinsics of the image the box is in.
        min_scale, max_scale: the range of the object's size factor (both > 0, finite); equal
            (default 1, 1): the mesh's size is kept.
        object_normals: (M, 3) unit outward normals (default: the mesh's area-weighted ones).
        initial_rotation: (3, 3) rotation model -> optical to start from (e.g. the previous
            frame's): the only start, instead of the turned upright ones; initial_translation:
            (3,) metres, where the model frame's origin starts (with ``initial_rotation``);
            default: the object's centre on the box centre's ray (module docstring).
        settings: the fit's numbers (:class:`PlacementSettings`; default its defaults).

    Returns:
        :class:`ObjectPlacement`; check ``converged`` before using it. About 100 ms per object
        with the default settings on a 2-core CPU (numpy and scipy, one thread).

    Raises:
        ValueError: wrong shapes, non-finite values, probabilities outside [0, 1], lengths
            that do not match, an empty box, a scale range that is not ``0 < min <= max``, an
            initial rotation that is not one, an initial translation without a rotation (the
            argument is named).
    """
    start = time.perf_counter()
    settings = settings or PlacementSettings()
    body = points_array(body_vertices, "body_vertices")
    normals = points_array(body_normals, "body_normals")
    if normals.shape != body.shape:
        raise ValueError(f"body_normals has shape {normals.shape}, body_vertices {body.shape}")
    human = probabilities_array(human_contact, len(body), "human_contact", "body_vertices")
    if not isinstance(object_mesh, TriangleMesh):
        raise ValueError(f"object_mesh must be a TriangleMesh, got {type(object_mesh).__name__}")
    model = object_mesh.vertices.astype(np.float64)
    if len(model) < 4:
        raise ValueError(f"object_mesh has {len(model)} vertices; at least 4 are needed")
    on_object = probabilities_array(object_contact, len(model), "object_contact", "object_mesh's vertices")
    model_normals = (object_mesh.vertex_normals() if object_normals is None
                     else points_array(object_normals, "object_normals")).astype(np.float64)
    if model_normals.shape != model.shape:
        raise ValueError(f"object_normals has shape {model_normals.shape}, object_mesh's vertices {model.shape}")
    box = _box_array(box_xyxy)
    if not isinstance(intrinsics, Intrinsics):
        raise ValueError(f"intrinsics must be a geometry.depth.Intrinsics, got {type(intrinsics).__name__}")
    for name, value in (("min_scale", min_scale), ("max_scale", max_scale)):
        if isinstance(value, bool) or not (isinstance(value, numbers.Real) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if min_scale > max_scale:
        raise ValueError(f"min_scale ({min_scale}) must not exceed max_scale ({max_scale})")
    if initial_translation is not None and initial_rotation is None:
        raise ValueError("initial_translation needs initial_rotation")
    rotation0 = None if initial_rotation is None else _rotation_matrix(initial_rotation, "initial_rotation")
    translation0 = None
    if initial_translation is not None:
        translation0 = np.asarray(initial_translation, dtype=np.float64)
        if translation0.shape != (3,) or not np.all(np.isfinite(translation0)):
            raise ValueError(f"initial_translation must be 3 finite numbers, got {translation0.tolist()}")

    scale_fixed = min_scale == max_scale
    scale = float(min_scale) if scale_fixed else float(np.clip(1.0, min_scale, max_scale))
    in_human = human > settings.human_threshold
    if not in_human.any():
        return _refused(NO_HUMAN_CONTACT, f"no body vertex has human contact probability above "
                        f"{settings.human_threshold}", scale, len(model), start)
    in_object = on_object > settings.object_threshold
    if not in_object.any():
        return _refused(NO_OBJECT_CONTACT, f"no object vertex has contact probability above "
                        f"{settings.object_threshold}", scale, len(model), start)
    human_points, human_weights = body[in_human], human[in_human]
    contact_depth = float(human_weights @ human_points[:, 2] / human_weights.sum())
    if contact_depth <= settings.near_m:
        return _refused(BEHIND_CAMERA, f"the human contact region is at depth {contact_depth:.3f} m, not in front "
                        "of the camera", scale, len(model), start)

    centre = model.mean(axis=0)
    local = model - centre
    try:
        hull = local[ConvexHull(local).vertices]
    except QhullError:  # a flat object: every vertex may be extreme
        hull = local
    radius = float(np.linalg.norm(local, axis=1).max())

    # ---- the start
    u_centre, v_centre = 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])
    human_normal = human_weights @ normals[in_human]
    axis = human_normal / np.linalg.norm(human_normal) if np.linalg.norm(human_normal) > 1e-6 else np.eye(3)[2]
    if rotation0 is None:
        rotation = UPRIGHT.copy()
        object_normal = on_object[in_object] @ model_normals[in_object]
        if np.linalg.norm(object_normal) > 1e-6 and np.linalg.norm(human_normal) > 1e-6:
            rotation = _minimal_rotation(rotation @ (object_normal / np.linalg.norm(object_normal)), -axis) @ rotation
        starts = [_axis_rotation(axis, 2.0 * math.pi * k / settings.starts) @ rotation for k in range(settings.starts)]
    else:
        starts = [rotation0]
    depth = contact_depth if translation0 is None else float((translation0 + rotation0 @ centre)[2])
    if depth - radius * max_scale <= 0:
        return _refused(BEHIND_CAMERA, f"the start places the object's centre at depth {depth:.3f} m (radius "
                        f"{radius * max_scale:.3f} m at most), not in front of the camera", scale, len(model), start)
    if not scale_fixed:  # the size whose projected box (first start) has the detection box's diagonal
        spread = np.ptp(hull @ starts[0].T, axis=0)
        seen = math.hypot(spread[0] * intrinsics.fx, spread[1] * intrinsics.fy) / depth
        scale = float(np.clip(math.hypot(box[2] - box[0], box[3] - box[1]) / seen, min_scale, max_scale))
    if translation0 is None:
        ray = np.array([(u_centre - intrinsics.cx) / intrinsics.fx, (v_centre - intrinsics.cy) / intrinsics.fy, 1.0])
        translation = ray * contact_depth  # the object's centre
    else:
        translation = translation0 + scale * rotation0 @ centre

    rng = np.random.default_rng(settings.seed)
    object_ids = np.flatnonzero(in_object)[_choose(int(in_object.sum()), settings.max_contact_vertices, rng)]
    human_ids = np.flatnonzero(in_human)[_choose(int(in_human.sum()), settings.max_contact_vertices, rng)]
    # The body near the contact region (where the object can be), for the penetration term.
    reach = 2.0 * radius * max_scale + 0.05
    near_contact, _ = cKDTree(human_points).query(body, distance_upper_bound=reach)
    nearby = np.flatnonzero(np.isfinite(near_contact))
    nearby = nearby[_choose(len(nearby), settings.max_body_vertices, rng)]
    penetration_ids = _choose(len(local), settings.max_penetration_vertices, rng)
    objective = Objective(
        (settings.contact_weight, settings.box_weight, settings.centre_weight, settings.penetration_weight,
         settings.front_weight), settings.near_m, intrinsics, box, body[human_ids],
        human[human_ids], local[object_ids], on_object[object_ids], hull, local[penetration_ids], body[nearby],
        normals[nearby], settings.refresh_every)
    best, iterations = None, 0
    screen = settings.screen_iterations if len(starts) > 1 and settings.screen_iterations else settings.iterations
    for turned in starts:
        turned, shifted = _icp(turned, translation, scale, local[object_ids], model_normals[object_ids],
                               on_object[object_ids], body[human_ids], normals[human_ids], human[human_ids],
                               settings.icp_iterations)
        objective.reset()
        *fit, steps, failed = _optimise(turned, shifted, scale, (min_scale, max_scale), settings, objective, screen)
        iterations += steps
        if not failed and (best is None or fit[3] < best[3]):
            best = fit
    if best is not None and screen < settings.iterations:  # the best start goes on
        objective.reset()
        *fit, steps, failed = _optimise(*best[:3], (min_scale, max_scale), settings, objective,
                                        settings.iterations - screen)
        iterations += steps
        if not failed and fit[3] < best[3]:
            best = fit
    if best is None:
        return _refused(DIVERGED, f"the loss turned non-finite from every start ({iterations} steps)", scale,
                        len(model), start, iterations)
    rotation, translation, scale, loss = best

    # ---- the verdict: on the whole body, the hull (depth, box) and the object's contact vertices
    # plus at most VERDICT_VERTICES others (contact distance, penetration)
    model_translation = translation - scale * rotation @ centre
    placed_hull = scale * hull @ rotation.T + translation
    measured = np.union1d(np.flatnonzero(in_object), _choose(len(local), VERDICT_VERTICES, rng))
    placed = scale * local[measured] @ rotation.T + translation
    body_tree = cKDTree(body)
    to_object, _ = cKDTree(placed).query(human_points)
    to_body, _ = body_tree.query(placed[in_object[measured]])
    contact_distance = 0.5 * (weighted_median(to_object, human_weights)
                              + weighted_median(to_body, on_object[in_object]))
    signed = body_signed_distances(placed, body, normals, body_tree)
    penetration = float(max(0.0, -signed.min()))
    nearest_depth = float(placed_hull[:, 2].min())  # the hull holds the extremes of any linear function
    in_front = nearest_depth > 0
    fitted_box = projected_box(placed_hull, intrinsics) if in_front else np.full(4, np.nan)
    iou = _box_iou(fitted_box, box) if in_front else 0.0
    centre_error = float(np.hypot(0.5 * (fitted_box[0] + fitted_box[2]) - u_centre,
                                  0.5 * (fitted_box[1] + fitted_box[3]) - v_centre))
    reason, detail = "", ""
    if not in_front:
        reason, detail = BEHIND_CAMERA, f"the fit ends with a vertex at depth {nearest_depth:.3f} m"
    elif contact_distance > settings.max_contact_distance_m:
        reason, detail = FAR_FROM_CONTACT, (f"the contact regions end {contact_distance:.3f} m apart (limit "
                                            f"{settings.max_contact_distance_m} m)")
    elif iou < settings.min_box_iou:
        reason, detail = BOX_MISMATCH, f"the placed object's box has IoU {iou:.2f} with the detection's"
    elif penetration > settings.max_penetration_m:
        reason, detail = PENETRATES_BODY, (f"the object ends {penetration:.3f} m deep in the body (limit "
                                           f"{settings.max_penetration_m} m)")
    return ObjectPlacement(
        rotation=rotation, translation=model_translation, scale=float(scale),
        vertices=(scale * model @ rotation.T + model_translation).astype(np.float32), converged=not reason,
        reason=reason, detail=detail, contact_distance_m=float(contact_distance), box_iou=iou,
        centre_error_px=centre_error, penetration_m=penetration, iterations=iterations, loss=loss,
        time_ms=(time.perf_counter() - start) * 1000.0)


def _icp(rotation, translation, scale, object_points, object_normals, object_weights, human_points, human_normals,
         human_weights, iterations):
    """Rigid ICP of the object's contact vertices (model frame, about the object's centre) onto
    the human contact vertices: each placed object vertex paired with its nearest human one,
    only pairs whose normals face each other (negative dot product), weighted by both
    probabilities; stops early with fewer than 3 pairs. Returns (rotation, translation)."""
    tree = cKDTree(human_points)
    for _ in range(iterations):
        placed = scale * object_points @ rotation.T + translation
        _, nearest = tree.query(placed)
        facing = np.einsum("ij,ij->i", object_normals @ rotation.T, human_normals[nearest]) < 0
        if facing.sum() < 3:
            break
        step_rotation, step_translation = kabsch(placed[facing], human_points[nearest[facing]],
                                                 object_weights[facing] * human_weights[nearest[facing]])
        rotation = step_rotation @ rotation
        translation = step_rotation @ translation + step_translation
    return rotation, translation


def _optimise(rotation, translation, scale, scale_range, settings, objective, iterations):
    """Adam (torch's update rule: beta 0.9 / 0.999, eps 1e-8, bias-corrected) on ``objective``
    from the given start, a learning rate per parameter. Returns (rotation (3, 3), translation
    (3,) of the object's centre, scale, loss, steps, diverged) at the best step (the start
    itself when ``iterations`` is 0)."""
    x = np.concatenate([rotation[:, 0], rotation[:, 1], translation, [scale]])
    rates = np.array([settings.rotation_lr] * 6 + [settings.translation_lr] * 3
                     + [settings.scale_lr if scale_range[0] < scale_range[1] else 0.0])
    first, second = np.zeros(10), np.zeros(10)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    best = (math.inf if iterations else objective(x, gradient=False)[0], x.copy())
    since_best, steps, diverged = 0, 0, False
    for steps in range(1, iterations + 1):
        value, gradient, _ = objective(x)
        if not (math.isfinite(value) and np.all(np.isfinite(gradient))):
            diverged = True
            break
        improved = best[0] == math.inf or value < best[0] - settings.stall_tolerance * abs(best[0])
        since_best = 0 if improved else since_best + 1
        if value < best[0]:
            best = (value, x.copy())
        if since_best >= settings.patience:
            break
        first = beta1 * first + (1 - beta1) * gradient
        second = beta2 * second + (1 - beta2) * gradient**2
        x = x - rates * (first / (1 - beta1**steps)) / (np.sqrt(second / (1 - beta2**steps)) + eps)
        x[9] = min(max(x[9], scale_range[0]), scale_range[1])
    return rotation_from_6d(best[1][:6]), best[1][6:9], float(best[1][9]), best[0], steps, diverged
