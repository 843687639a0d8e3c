"""A person's pose landmarks placed in metres in the image's optical frame (no ROS imports).

The pose source gives, per person, BlazePose's 33 landmarks (:data:`LANDMARK_NAMES`) twice: in
the image (pixels, with a visibility) and as metric "world" coordinates in a hip-centred
frame whose orientation is only roughly the camera's. :func:`place_person` finds the rigid
transform (rotation + translation, no scale) from that world frame to the camera's optical
frame and returns the landmarks in the camera frame (:class:`Placement`):

* **depth** (a registered depth image): the depth under each visible landmark inside the
  person's box (:func:`sample_landmark_depth`, a small window's median) is back-projected,
  moved from the skin to the joint centre (:data:`SURFACE_TO_JOINT_M`, below), and the
  world landmarks are aligned to these points by a robust Kabsch / Umeyama fit
  (:func:`rigid_transform`; Kabsch, Acta Cryst. A32 (1976) 922; Umeyama, IEEE TPAMI 13(4)
  (1991) 376, without scale): non-collinear triples of samples (all of them, or 500 drawn
  with a fixed seed) each propose a transform, the one with the lowest truncated squared
  residual (MSAC: Torr and Zisserman, CVIU 78 (2000) 138) wins, then the fit is redone on its inliers (residual below
  ``inlier_distance``) until they no longer change. A depth sample that falls on the
  background behind an arm or on an object in front of the body is an outlier and does not
  move the body. The metric depth fixes the distance.
* **pnp** (the intrinsics only): OpenCV's ``cv2.solvePnP`` (``SOLVEPNP_SQPNP``: Terzakis and
  Lourakis, ECCV 2020) between the visible world landmarks and their image positions,
  refined by ``cv2.solvePnPRefineLM`` (Levenberg-Marquardt on the reprojection error).
  **Monocular scale**: one image cannot tell a large person far away from a small one
  nearby; the distance comes entirely from the size of MediaPipe's metric world landmarks
  (its estimate of the person's size from their appearance), so a relative error in that
  size is the same relative error in the distance (10 % of 3 m = 30 cm). Occluded or
  truncated bodies (few visible landmarks) make the rotation, and with it the distance,
  less certain; ``residual`` (pixels) does not reveal a wrong scale.

With depth but too little of it at the landmarks (fewer than :data:`MIN_DEPTH_LANDMARKS`
samples, or samples too close together to fix the rotation, :data:`MIN_DEPTH_SPREAD_M`), or
depth that a rigid body cannot explain (fewer than half of the samples agree), the placement
falls back to PnP and says so in its ``method``. Lens distortion is ignored (a rectified
image, as :mod:`..geometry.depth` assumes).

**Skin versus joint centre.** Depth measures the surface facing the camera; the shoulder,
elbow, wrist, hip, knee and ankle landmarks are joint centres a few centimetres behind it.
Each depth sample is pushed away from the camera along its viewing ray by the landmark's
:data:`SURFACE_TO_JOINT_M` (a rough half-thickness of an adult's limb at that joint; 0 for
the face, finger and foot landmarks, which lie on the surface). This is exact for a joint that is a
sphere of that radius; for other builds, clothing or a joint seen edge-on it leaves a bias
of the order of the difference (a few cm) in the direction of the camera.

Failures raise :class:`~interactvlm_ros.reasons.Rejected` (no CameraInfo, too few landmarks,
no depth at the landmarks, a body behind the camera or implausibly far); malformed arrays
(wrong shapes, non-finite values) raise ``ValueError`` naming the input.

Conventions: image positions follow the ROS CameraInfo / OpenCV K convention of
:mod:`..geometry.depth` (pixel (u, v)'s centre is the point (u, v); the pose source converts
its own coordinates to it); boxes follow the
detectors' continuous coordinates (the image spans [0, W] x [0, H]); camera points are in the
optical frame (REP-103 ``*_optical_frame``: +x right, +y down, +z forward, metres).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from ..geometry.depth import DepthFrame, Intrinsics, back_project_points
from ..reasons import Reason, Rejected
from .landmarks import LANDMARK_NAMES, NUM_LANDMARKS


#: Metres from the skin facing the camera to the landmark, per landmark (module docstring):
#: rough half-thicknesses of an adult's limbs at the joints; 0 where the landmark is on the
#: surface (face, finger and foot points).
SURFACE_TO_JOINT_M = np.array(
    [0.0] * 11                 # nose, eyes, ears, mouth
    + [0.05, 0.05]             # shoulders
    + [0.035, 0.035]           # elbows
    + [0.025, 0.025]           # wrists
    + [0.0] * 6                # pinky, index, thumb knuckles
    + [0.07, 0.07]             # hips
    + [0.045, 0.045]           # knees
    + [0.03, 0.03]             # ankles
    + [0.0] * 4,               # heels, foot tips
    dtype=np.float64,
)

#: Landmarks with at least this visibility are used (MediaPipe's drawing utilities use 0.5).
VISIBILITY_MIN = 0.5
#: Side of the square window (pixels, odd) whose median depth is a landmark's depth.
DEPTH_WINDOW = 5
#: Share of a window's pixels that must hold valid depth for a landmark's sample.
DEPTH_WINDOW_MIN_VALID = 0.25
#: Metres: a depth sample farther than this from the fitted body is an outlier. Covers the
#: depth noise, the skin offset's error and the world landmarks' own error; a background
#: behind an arm is usually tens of centimetres away.
INLIER_DISTANCE_M = 0.08
#: Fewest depth samples agreeing with the fit for the depth method (3 fix a rigid transform,
#: a fourth checks it); fewer than half of the samples agreeing also counts as too few.
MIN_DEPTH_LANDMARKS = 4
#: Metres: the depth method needs its agreeing landmarks (in the world frame) to spread at
#: least this much (standard deviation) along their second principal axis; less (the face
#: alone: about 0.03 m; shoulders and hips: 0.15 m) leaves the body's rotation to the noise.
MIN_DEPTH_SPREAD_M = 0.08
#: Fewest visible landmarks for PnP (enough for a stable SQPnP solution and refinement).
MIN_PNP_LANDMARKS = 6
#: Metres: a placement whose median landmark depth exceeds this is implausible for a person
#: the robot deals with (and beyond the range of the usual RGB-D cameras).
MAX_DISTANCE_M = 10.0
#: The visible landmarks' spread (standard deviation along their second principal axis)
#: below which PnP is refused as degenerate: metres in the world frame, pixels in the image.
_MIN_PNP_SPREAD_M = 0.02
_MIN_PNP_SPREAD_PX = 2.0
#: Metres: a triple of world landmarks whose triangle's smallest height is below this is too
#: close to collinear to fix a rotation.
_MIN_TRIPLE_HEIGHT_M = 0.02
#: Triples tried at most (C(12, 3) = 220, C(33, 3) = 5456). With half of the samples outliers
#: a triple is all inliers with probability about 1/8: 500 draws all miss with probability 1e-29.
_MAX_HYPOTHESES = 500
#: Inlier refits at most (the inlier set usually settles after one or two).
_MAX_REFITS = 10

METHOD_DEPTH = "depth"
METHOD_PNP = "pnp"
METHOD_PNP_TOO_LITTLE_DEPTH = "pnp (too little depth)"
METHOD_PNP_DEPTH_DISAGREES = "pnp (depth disagrees with the landmarks)"
#: Every value of :attr:`Placement.method`.
METHODS = (METHOD_DEPTH, METHOD_PNP, METHOD_PNP_TOO_LITTLE_DEPTH, METHOD_PNP_DEPTH_DISAGREES)


@dataclass(frozen=True)
class Placement:
    """A person's landmarks in the camera's optical frame.

    Attributes:
        camera_xyz: (33, 3) float32 landmarks in the image's optical frame (+x right, +y down,
            +z forward), metres: ``rotation @ world + translation`` for every landmark, the
            hidden ones included.
        rotation: (3, 3) float64 rotation, world landmark frame -> optical frame.
        translation: (3,) float64 metres, the world frame's origin (between the hips) in the
            optical frame.
        method: how it was placed, one of :data:`METHODS`.
        support: (33,) bool, the landmarks the final fit used: the depth inliers (method
            ``depth``) or the visible landmarks (PnP).
        residual: RMS residual of the final fit over ``support``: metres between the fitted
            landmarks and their depth points (``depth``), pixels between the projected and
            the detected landmarks (PnP).
        residual_unit: ``"m"`` or ``"px"``.
    """

    camera_xyz: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    method: str
    support: np.ndarray
    residual: float
    residual_unit: str

    @property
    def inliers(self) -> int:
        """The number of landmarks the final fit used."""
        return int(np.count_nonzero(self.support))


def place_person(
    image_xy: np.ndarray,
    visibility: np.ndarray,
    world_xyz: np.ndarray,
    box: Sequence[float],
    depth: DepthFrame | None = None,
    intrinsics: Intrinsics | None = None,
    *,
    visibility_min: float = VISIBILITY_MIN,
    window: int = DEPTH_WINDOW,
    inlier_distance: float = INLIER_DISTANCE_M,
    max_distance: float = MAX_DISTANCE_M,
) -> Placement:
    """Place one person's landmarks in the image's optical frame (module docstring).

    Args:
        image_xy: (33, 2) float landmark positions in the full image, pixels (K convention).
        visibility: (33,) float in [0, 1]; landmarks with ``visibility >= visibility_min``
            are used.
        world_xyz: (33, 3) float metric landmarks, metres, in the pose source's hip-centred
            frame (MediaPipe: x right, y down, z away from the camera, origin between the hips).
        box: the person's box ``(x_min, y_min, x_max, y_max)``, continuous pixel coordinates;
            only landmarks inside it are sampled in the depth image.
        depth: a depth image registered to the colour image (``metres`` (H, W) float, NaN
            where invalid; its intrinsics are used), or None.
        intrinsics: the colour camera's intrinsics (CameraInfo), used when ``depth`` is None;
            when both are given they must be equal.
        visibility_min: in [0, 1].
        window: the depth window's side, pixels, odd, >= 1 (:func:`sample_landmark_depth`).
        inlier_distance: metres, > 0: depth samples farther than this from the fit are outliers.
        max_distance: metres, > 0: a farther median landmark depth is rejected.

    Returns:
        The :class:`Placement`.

    Raises:
        Rejected: ``no_camera_info`` (neither depth nor intrinsics); ``too_few_landmarks``
            (fewer visible landmarks than the available methods need: :data:`MIN_PNP_LANDMARKS`
            for PnP, :data:`MIN_DEPTH_LANDMARKS` with depth, or a degenerate set PnP cannot
            solve); ``no_depth_at_landmarks`` (with depth: too few usable depth samples,
            i.e. missing, inconsistent or too close together, and too few visible landmarks
            for PnP); ``person_behind_camera`` (a landmark placed at
            z <= 0); ``person_too_far`` (median landmark depth > ``max_distance``).
        ValueError: arrays of the wrong shape or with non-finite values, visibility outside
            [0, 1], a malformed box, out-of-range settings, a depth image that is not its
            intrinsics' size, or ``intrinsics`` that differ from ``depth.intrinsics``.
    """
    image_xy, visibility, world_xyz, box = _check_inputs(image_xy, visibility, world_xyz, box)
    if not 0.0 <= visibility_min <= 1.0:
        raise ValueError(f"visibility_min must lie in [0, 1], got {visibility_min}")
    if not (inlier_distance > 0 and math.isfinite(inlier_distance)):
        raise ValueError(f"inlier_distance must be a positive number of metres, got {inlier_distance}")
    if not (max_distance > 0 and math.isfinite(max_distance)):
        raise ValueError(f"max_distance must be a positive number of metres, got {max_distance}")
    if depth is not None:
        if intrinsics is not None and intrinsics != depth.intrinsics:
            raise ValueError(f"intrinsics {intrinsics} differ from the registered depth image's {depth.intrinsics}: "
                             "registered depth has the colour camera's intrinsics")
        intrinsics = depth.intrinsics
    if intrinsics is None:
        raise Rejected(Reason.NO_CAMERA_INFO, "no CameraInfo (intrinsics) for this image: a person cannot be "
                                              "placed in metres without them")
    visible = visibility >= visibility_min
    n_visible = int(np.count_nonzero(visible))
    needed = min(MIN_PNP_LANDMARKS, MIN_DEPTH_LANDMARKS) if depth is not None else MIN_PNP_LANDMARKS
    if n_visible < needed:
        raise Rejected(Reason.TOO_FEW_LANDMARKS, f"{n_visible} of {NUM_LANDMARKS} landmarks have visibility >= "
                                                 f"{visibility_min}; placement needs at least {needed}")
    method = METHOD_PNP
    if depth is not None:
        placed = _place_with_depth(image_xy, visible, world_xyz, box, depth, window, inlier_distance)
        if isinstance(placed, Placement):
            return _checked(placed, max_distance)
        method, why = placed
        if n_visible < MIN_PNP_LANDMARKS:
            raise Rejected(Reason.NO_DEPTH_AT_LANDMARKS, f"{why}, and {n_visible} visible landmarks are too few "
                                                         f"for PnP (needs {MIN_PNP_LANDMARKS})")
    return _checked(_place_with_pnp(image_xy, visible, world_xyz, intrinsics, method), max_distance)


def _check_inputs(image_xy, visibility, world_xyz, box):
    arrays = {}
    for name, value, shape in (("image_xy", image_xy, (NUM_LANDMARKS, 2)), ("visibility", visibility, (NUM_LANDMARKS,)),
                               ("world_xyz", world_xyz, (NUM_LANDMARKS, 3))):
        array = np.asarray(value, dtype=np.float64)
        if array.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} has non-finite values")
        arrays[name] = array
    if np.any((arrays["visibility"] < 0) | (arrays["visibility"] > 1)):
        raise ValueError(f"visibility must lie in [0, 1], got values from {arrays['visibility'].min()} "
                         f"to {arrays['visibility'].max()}")
    box = np.asarray(box, dtype=np.float64)
    if box.shape != (4,) or not np.all(np.isfinite(box)) or box[2] < box[0] or box[3] < box[1]:
        raise ValueError(f"box must be 4 finite numbers (x_min, y_min, x_max, y_max) with max >= min, "
                         f"got {box.tolist()}")
    return arrays["image_xy"], arrays["visibility"], arrays["world_xyz"], box


def sample_landmark_depth(depth_m: np.ndarray, uv: np.ndarray, window: int = DEPTH_WINDOW,
                          min_valid: float = DEPTH_WINDOW_MIN_VALID) -> np.ndarray:
    """The depth under image positions: the median of the valid pixels in a square window.

    Args:
        depth_m: (H, W) float depth, metres, NaN (or any non-finite or non-positive value)
            where invalid (:func:`~interactvlm_ros.geometry.depth.depth_to_metres`).
        uv: (N, 2) positions, pixels, K convention; the window is centred on the nearest pixel
            and clipped to the image.
        window: the window's side, pixels, odd, >= 1.
        min_valid: the share of the (unclipped) window's pixels, in (0, 1], that must be valid.

    Returns:
        (N,) float64 depth along the optical axis, metres; NaN where too few pixels are valid
        (a position outside the image included).

    Raises:
        ValueError: depth not 2-D, uv not (N, 2), window not a positive odd integer, min_valid
            outside (0, 1].
    """
    depth_m = np.asarray(depth_m)
    uv = np.asarray(uv, dtype=np.float64)
    if depth_m.ndim != 2:
        raise ValueError(f"depth must have shape (H, W), got {depth_m.shape}")
    if uv.ndim != 2 or uv.shape[1] != 2:
        raise ValueError(f"uv must have shape (N, 2), got {uv.shape}")
    if int(window) != window or window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number of pixels, got {window}")
    if not 0 < min_valid <= 1:
        raise ValueError(f"min_valid must lie in (0, 1], got {min_valid}")
    height, width = depth_m.shape
    half = int(window) // 2
    needed = max(1, math.ceil(min_valid * window * window))
    samples = np.full(uv.shape[0], np.nan)
    for i, (u, v) in enumerate(np.rint(uv)):
        if not (0 <= u < width and 0 <= v < height):
            continue
        u, v = int(u), int(v)
        patch = depth_m[max(v - half, 0):v + half + 1, max(u - half, 0):u + half + 1].astype(np.float64)
        with np.errstate(invalid="ignore"):
            values = patch[np.isfinite(patch) & (patch > 0)]
        if values.size >= needed:
            samples[i] = np.median(values)
    return samples


def rigid_transform(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares rotation and translation (no scale) taking ``source`` onto ``target``.

    Minimises ``sum_i |R source_i + t - target_i|^2`` over rotations R (det +1) and
    translations t: Kabsch's SVD solution with the reflection correction (Umeyama 1991,
    without scale), batched over leading dimensions.

    Args:
        source, target: (..., N, 3) float corresponding points, N >= 3 (not all collinear for
            a unique rotation).

    Returns:
        (R, t): (..., 3, 3) and (..., 3) float64.

    Raises:
        ValueError: shapes that differ or are not (..., N, 3) with N >= 3.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if source.shape != target.shape or source.ndim < 2 or source.shape[-1] != 3 or source.shape[-2] < 3:
        raise ValueError(f"source and target must both have shape (..., N >= 3, 3), got {source.shape} "
                         f"and {target.shape}")
    source_mean = source.mean(axis=-2, keepdims=True)
    target_mean = target.mean(axis=-2, keepdims=True)
    cross = np.swapaxes(source - source_mean, -1, -2) @ (target - target_mean)  # sum_i s_i t_i^T = U S V^T
    u, _, vt = np.linalg.svd(cross)
    sign = np.sign(np.linalg.det(u @ vt))  # det(V U^T) = det(U V^T)
    vt[..., 2, :] *= sign[..., None]
    rotation = np.swapaxes(vt, -1, -2) @ np.swapaxes(u, -1, -2)  # V diag(1, 1, sign) U^T
    translation = target_mean[..., 0, :] - (rotation @ source_mean[..., 0, :, None])[..., 0]
    return rotation, translation


def _robust_rigid_transform(source: np.ndarray, target: np.ndarray, inlier_distance: float):
    """MSAC over the non-collinear triples (all of them, or :data:`_MAX_HYPOTHESES` drawn with a
    fixed seed), then inlier refits.

    Returns (R, t, inliers (N,) bool, residuals (N,) metres), or None when every triple of
    ``source`` is collinear."""
    triples = np.array(list(itertools.combinations(range(source.shape[0]), 3)))
    if triples.shape[0] > _MAX_HYPOTHESES:  # a fixed-seed subset: the same answer for the same input
        triples = triples[np.sort(np.random.default_rng(0).choice(triples.shape[0], _MAX_HYPOTHESES, replace=False))]
    a, b, c = (source[triples[:, k]] for k in range(3))
    sides = np.stack([np.linalg.norm(b - a, axis=1), np.linalg.norm(c - b, axis=1), np.linalg.norm(a - c, axis=1)])
    twice_area = np.linalg.norm(np.cross(b - a, c - a), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        height = twice_area / sides.max(axis=0)  # the triangle's smallest height
    triples = triples[height >= _MIN_TRIPLE_HEIGHT_M]
    if triples.shape[0] == 0:
        return None
    rotations, translations = rigid_transform(source[triples], target[triples])
    moved = source @ np.swapaxes(rotations, 1, 2) + translations[:, None, :]
    residuals = np.linalg.norm(moved - target, axis=-1)
    cost = (np.minimum(residuals, inlier_distance) ** 2).sum(axis=1)
    best = int(np.argmin(cost))
    rotation, translation = rotations[best], translations[best]
    inliers = residuals[best] < inlier_distance
    for _ in range(_MAX_REFITS):
        if np.count_nonzero(inliers) < 3:
            break
        rotation, translation = rigid_transform(source[inliers], target[inliers])
        residual = np.linalg.norm(source @ rotation.T + translation - target, axis=1)
        refit = residual < inlier_distance
        if np.array_equal(refit, inliers):
            break
        inliers = refit
    residual = np.linalg.norm(source @ rotation.T + translation - target, axis=1)
    return rotation, translation, residual < inlier_distance, residual


def _place_with_depth(image_xy, visible, world_xyz, box, depth: DepthFrame, window, inlier_distance):
    """The depth placement, or (fallback method, why) when the depth cannot place the body."""
    metres = np.asarray(depth.metres)
    intrinsics = depth.intrinsics
    if metres.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(f"the depth image is {metres.shape[1]}x{metres.shape[0]} but its intrinsics are for "
                         f"{intrinsics.width}x{intrinsics.height}")
    # Continuous coordinates: pixel (u, v)'s centre is (u + 0.5, v + 0.5).
    inside = ((image_xy[:, 0] + 0.5 >= box[0]) & (image_xy[:, 0] + 0.5 <= box[2])
              & (image_xy[:, 1] + 0.5 >= box[1]) & (image_xy[:, 1] + 0.5 <= box[3]))
    candidates = np.flatnonzero(visible & inside)
    z = sample_landmark_depth(metres, image_xy[candidates], window)
    sampled = candidates[np.isfinite(z)]
    z = z[np.isfinite(z)]
    if sampled.size < MIN_DEPTH_LANDMARKS:
        return METHOD_PNP_TOO_LITTLE_DEPTH, (f"{sampled.size} visible landmarks in the person's box have valid depth "
                                             f"(needs {MIN_DEPTH_LANDMARKS})")
    surface = back_project_points(image_xy[sampled], z, intrinsics)
    rays = surface / np.linalg.norm(surface, axis=1, keepdims=True)
    joints = surface + SURFACE_TO_JOINT_M[sampled, None] * rays
    fit = _robust_rigid_transform(world_xyz[sampled], joints, inlier_distance)
    agreeing = 0 if fit is None else int(np.count_nonzero(fit[2]))
    if agreeing < max(MIN_DEPTH_LANDMARKS, math.ceil(sampled.size / 2)):
        return METHOD_PNP_DEPTH_DISAGREES, (f"only {agreeing} of {sampled.size} landmark depths agree with one body "
                                            f"pose within {inlier_distance} m")
    rotation, translation, inliers, residual = fit
    spread = _second_spread(world_xyz[sampled[inliers]])
    if spread < MIN_DEPTH_SPREAD_M:
        return METHOD_PNP_TOO_LITTLE_DEPTH, (f"the {agreeing} landmarks with consistent depth spread {spread:.3f} m "
                                             f"across their main axis (needs {MIN_DEPTH_SPREAD_M} m to fix the "
                                             "body's rotation)")
    support = np.zeros(NUM_LANDMARKS, dtype=bool)
    support[sampled[inliers]] = True
    return Placement(
        camera_xyz=(world_xyz @ rotation.T + translation).astype(np.float32),
        rotation=rotation,
        translation=translation,
        method=METHOD_DEPTH,
        support=support,
        residual=float(np.sqrt(np.mean(residual[inliers] ** 2))),
        residual_unit="m",
    )


def _second_spread(points: np.ndarray) -> float:
    """The standard deviation of (N, D) points along their second principal axis (0 when collinear)."""
    return float(np.linalg.svd(points - points.mean(axis=0), compute_uv=False)[1] / math.sqrt(points.shape[0]))


def _place_with_pnp(image_xy, visible, world_xyz, intrinsics: Intrinsics, method: str) -> Placement:
    objects = np.ascontiguousarray(world_xyz[visible])
    pixels = np.ascontiguousarray(image_xy[visible])
    world_spread, image_spread = _second_spread(objects), _second_spread(pixels)
    if world_spread < _MIN_PNP_SPREAD_M or image_spread < _MIN_PNP_SPREAD_PX:
        raise Rejected(Reason.TOO_FEW_LANDMARKS, f"the {objects.shape[0]} visible landmarks are too close to a line "
                                                 f"for PnP ({world_spread:.3f} m in world_xyz, {image_spread:.1f} px "
                                                 f"in image_xy across it)")
    camera = intrinsics.matrix
    try:
        found, rvec, tvec = cv2.solvePnP(objects, pixels, camera, None, flags=cv2.SOLVEPNP_SQPNP)
        if found:
            rvec, tvec = cv2.solvePnPRefineLM(objects, pixels, camera, None, rvec, tvec)
    except cv2.error as error:  # OpenCV's checks of degenerate point sets
        raise Rejected(Reason.TOO_FEW_LANDMARKS, f"PnP refused the {objects.shape[0]} visible landmarks: "
                                                 f"{str(error).strip().splitlines()[-1]}") from error
    if not (found and np.all(np.isfinite(rvec)) and np.all(np.isfinite(tvec))):
        raise Rejected(Reason.TOO_FEW_LANDMARKS, f"PnP found no pose for the {objects.shape[0]} visible landmarks")
    rotation = cv2.Rodrigues(rvec)[0]
    translation = tvec.reshape(3)
    projected = cv2.projectPoints(objects, rvec, tvec, camera, None)[0].reshape(-1, 2)
    return Placement(
        camera_xyz=(world_xyz @ rotation.T + translation).astype(np.float32),
        rotation=rotation,
        translation=translation,
        method=method,
        support=visible.copy(),
        residual=float(np.sqrt(np.mean(np.sum((projected - pixels) ** 2, axis=1)))),
        residual_unit="px",
    )


def _checked(placement: Placement, max_distance: float) -> Placement:
    z = placement.camera_xyz[:, 2].astype(np.float64)
    if np.any(z <= 0):
        worst = int(np.argmin(z))
        raise Rejected(Reason.PERSON_BEHIND_CAMERA, f"the {placement.method} placement puts {np.count_nonzero(z <= 0)} "
                                                    f"landmarks behind the camera ({LANDMARK_NAMES[worst]} at z = "
                                                    f"{z[worst]:.2f} m)")
    median = float(np.median(z))
    if median > max_distance:
        raise Rejected(Reason.PERSON_TOO_FAR, f"the {placement.method} placement puts the person {median:.1f} m away "
                                              f"(median landmark depth), beyond {max_distance} m")
    return placement
