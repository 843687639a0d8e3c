"""Object point clouds from a registered depth image (no ROS imports).

Turns the depth pixels inside a detection's box into an (N, 3) point cloud of the object:
:func:`depth_to_metres` (``sensor_msgs/Image`` encodings to metres, invalid -> NaN),
:func:`back_project` (pinhole model, pixels of a box; :func:`back_project_points` for given
positions), :func:`largest_depth_cluster` (background rejection),
:func:`downsample` (farthest-point sampling to a fixed count), all chained by
:func:`object_points_from_depth`.

Conventions:

* **Registered depth.** The depth image is aligned to the colour image the detections refer
  to: same width and height, same intrinsics, pixel (u, v) of one is pixel (u, v) of the other
  (REP-118 "registered" depth; e.g. realsense2_camera's ``aligned_depth_to_color`` topics,
  whose CameraInfo is the colour camera's). Use :func:`check_registered` to refuse anything
  else: an unregistered depth image puts the box over the wrong pixels.
* **Pixels and intrinsics** (ROS ``sensor_msgs/CameraInfo`` / OpenCV): pixel (u, v) is the
  integer column u and row v (row 0 at the top) and its centre is the point (u, v) of the
  pinhole model ``u = fx * x / z + cx``, ``v = fy * y / z + cy``. (A renderer whose pixel
  centres sit at half-integers, like :mod:`.camera`, has ``cx = S / 2 - 0.5`` in this
  convention.) Lens distortion is ignored: the depth image is assumed rectified, or its
  distortion negligible, as for the usual RGB-D cameras' aligned depth.
* **Boxes** follow the detectors' (``vision_msgs/BoundingBox2D``) continuous coordinates, in
  which the image spans [0, W] x [0, H] and pixel (u, v) covers [u, u + 1) x [v, v + 1): a
  pixel belongs to the box ``(x_min, y_min, x_max, y_max)`` when its centre
  ``(u + 0.5, v + 0.5)`` lies in the closed box. The whole-image box is ``(0, 0, W, H)``.
* **Points** are in the camera's optical frame (REP-103 ``*_optical_frame``): +x right, +y
  down, +z forward along the optical axis, metres. The frame is the one of the depth image's
  header (for registered depth, the colour camera's optical frame).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: Encodings :func:`depth_to_metres` accepts (REP-118).
DEPTH_ENCODINGS = ("16UC1", "32FC1")

#: Default of :func:`largest_depth_cluster`'s ``min_fraction``.
NEAREST_CLUSTER_FRACTION = 0.25


def depth_to_metres(depth: np.ndarray, encoding: str) -> np.ndarray:
    """A depth image in metres with invalid pixels set to NaN.

    Args:
        depth: (H, W) depth image. ``"16UC1"``: unsigned 16-bit integers, millimetres (any
            integer dtype is accepted); ``"32FC1"``: floating point, metres.
        encoding: the ``sensor_msgs/Image`` encoding, ``"16UC1"`` or ``"32FC1"``.

    Returns:
        (H, W) float32 depth in metres (a new array). Zero, negative, NaN and +-inf values
        (the drivers' "no measurement") become NaN. Millimetres are converted with correct
        rounding: ``1234`` -> ``np.float32(1.234)``.

    Raises:
        ValueError: another encoding, a non-2-D array, or a dtype that does not match the
            encoding (floats for 16UC1, integers for 32FC1).
    """
    depth = np.asarray(depth)
    if encoding not in DEPTH_ENCODINGS:
        raise ValueError(f"unsupported depth encoding {encoding!r}; expected one of {', '.join(DEPTH_ENCODINGS)}")
    if depth.ndim != 2:
        raise ValueError(f"a depth image must have shape (H, W), got {depth.shape}")
    if encoding == "16UC1":
        if not np.issubdtype(depth.dtype, np.integer):
            raise ValueError(f"16UC1 depth must hold integers (millimetres), got dtype {depth.dtype}")
        metres = (depth.astype(np.float64) / 1000.0).astype(np.float32)
    else:
        if not np.issubdtype(depth.dtype, np.floating):
            raise ValueError(f"32FC1 depth must hold floats (metres), got dtype {depth.dtype}")
        metres = depth.astype(np.float32, copy=True)
    with np.errstate(invalid="ignore"):
        metres[~(np.isfinite(metres) & (metres > 0))] = np.nan
    return metres


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of the (registered) depth image.

    Attributes:
        fx, fy: focal lengths, pixels (positive).
        cx, cy: principal point, pixels, with integer pixel coordinates at pixel centres
            (ROS CameraInfo / OpenCV convention, see the module docstring).
        width, height: image size, pixels (positive).

    Raises:
        ValueError: (from the constructor) non-positive or non-finite focal lengths,
            non-finite principal point, or non-positive sizes.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ("fx", "fy"):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"focal length {name} must be positive and finite, got {value} "
                                 "(an all-zero K means an uncalibrated camera)")
            object.__setattr__(self, name, value)
        for name in ("cx", "cy"):
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise ValueError(f"principal point {name} must be finite, got {value}")
            object.__setattr__(self, name, value)
        for name in ("width", "height"):
            value = getattr(self, name)
            if int(value) != value or not int(value) > 0:
                raise ValueError(f"image {name} must be a positive integer, got {value}")
            object.__setattr__(self, name, int(value))

    @classmethod
    def from_camera_info(cls, k: Sequence[float], width: int, height: int) -> "Intrinsics":
        """Intrinsics from ``sensor_msgs/CameraInfo``: ``k`` (its ``k`` field), ``width``, ``height``.

        Args:
            k: 9 numbers, the row-major 3 x 3 camera matrix
                ``[fx, 0, cx, 0, fy, cy, 0, 0, 1]``.
            width, height: the image size, pixels.

        Raises:
            ValueError: not 9 finite numbers; not of the pinhole form above (non-zero skew,
                bottom row not (0, 0, 1), non-zero k[3]); non-positive focal lengths (an
                uncalibrated all-zero K included) or sizes.
        """
        values = np.asarray(k, dtype=np.float64).ravel()
        if values.shape != (9,):
            raise ValueError(f"K must have 9 elements (row-major 3x3), got {values.size}")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"K has non-finite elements: {values.tolist()}")
        if values[0] <= 0 or values[4] <= 0:
            raise ValueError(f"K has non-positive focal lengths fx={values[0]}, fy={values[4]} "
                             "(an all-zero K means an uncalibrated camera)")
        expected_zero = {"k[1] (skew)": values[1], "k[3]": values[3], "k[6]": values[6], "k[7]": values[7]}
        bad = [name for name, value in expected_zero.items() if abs(value) > 1e-9 * max(values[0], values[4])]
        if bad or not math.isclose(values[8], 1.0, abs_tol=1e-9):
            raise ValueError(f"K is not a pinhole matrix [fx, 0, cx, 0, fy, cy, 0, 0, 1]: {values.tolist()}")
        return cls(fx=values[0], fy=values[4], cx=values[2], cy=values[5], width=width, height=height)

    @property
    def matrix(self) -> np.ndarray:
        """(3, 3) float64 K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


def check_registered(depth_shape: Sequence[int], color_shape: Sequence[int]) -> None:
    """Refuse a depth image that is not the size of the colour image.

    Args:
        depth_shape: the depth image's shape, (H, W) (further dimensions are ignored).
        color_shape: the colour image's shape, (H, W) or (H, W, C).

    Raises:
        ValueError: the sizes differ; the message names both (width x height). Equal sizes
            are necessary, not sufficient: registration itself cannot be checked from shapes.
    """
    dh, dw = int(depth_shape[0]), int(depth_shape[1])
    ch, cw = int(color_shape[0]), int(color_shape[1])
    if (dh, dw) != (ch, cw):
        raise ValueError(
            f"the depth image is {dw}x{dh} but the colour image is {cw}x{ch}: depth must be registered "
            "to the colour image (same size and intrinsics, e.g. a camera driver's aligned_depth_to_color "
            "topic, REP-118)"
        )


def _box_slices(box, width: int, height: int) -> tuple[slice, slice]:
    """Row and column slices of the pixels whose centres lie in the (clipped) box."""
    x_min, y_min, x_max, y_max = (float(b) for b in box)
    if not all(math.isfinite(b) for b in (x_min, y_min, x_max, y_max)):
        raise ValueError(f"box has non-finite coordinates: {tuple(box)}")
    if x_max < x_min or y_max < y_min:
        raise ValueError(f"box must be (x_min, y_min, x_max, y_max) with max >= min, got {tuple(box)}")
    # centre u + 0.5 in [x_min, x_max]  <=>  u in [ceil(x_min - 0.5), floor(x_max - 0.5)]
    u0, u1 = max(math.ceil(x_min - 0.5), 0), min(math.floor(x_max - 0.5) + 1, width)
    v0, v1 = max(math.ceil(y_min - 0.5), 0), min(math.floor(y_max - 0.5) + 1, height)
    return slice(v0, max(v1, v0)), slice(u0, max(u1, u0))


def back_project(
    depth_m: np.ndarray,
    intrinsics: Intrinsics,
    box: Sequence[float] | None = None,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """3-D points of the valid depth pixels inside a box and a mask.

    For pixel (u, v) (column, row; centre at (u, v) in the K model) with depth z:
    ``x = (u - cx) * z / fx``, ``y = (v - cy) * z / fy``, ``z = z``.

    Args:
        depth_m: (H, W) float depth in metres, NaN (or any non-finite or non-positive value)
            where invalid, as :func:`depth_to_metres` returns; (H, W) must equal
            (intrinsics.height, intrinsics.width).
        intrinsics: the depth image's (= the registered colour image's) intrinsics.
        box: ``(x_min, y_min, x_max, y_max)`` in the detectors' continuous pixel coordinates
            (module docstring: pixel (u, v) is inside when (u + 0.5, v + 0.5) is), clipped to
            the image; None for the whole image.
        mask: (H, W) bool, only True pixels are used; None for all.

    Returns:
        (N, 3) float32 points in the camera optical frame (+x right, +y down, +z forward,
        metres), in row-major pixel order; N = 0 when no valid pixel is selected.

    Raises:
        ValueError: depth not 2-D or not the intrinsics' size, a mask of another shape, a box
            with non-finite coordinates or max < min.
    """
    depth_m = np.asarray(depth_m)
    if depth_m.ndim != 2:
        raise ValueError(f"depth must have shape (H, W), got {depth_m.shape}")
    height, width = depth_m.shape
    if (width, height) != (intrinsics.width, intrinsics.height):
        raise ValueError(f"the depth image is {width}x{height} but the intrinsics are for "
                         f"{intrinsics.width}x{intrinsics.height}")
    rows, cols = (slice(0, height), slice(0, width)) if box is None else _box_slices(box, width, height)
    z = depth_m[rows, cols].astype(np.float64)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(z) & (z > 0)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != depth_m.shape:
            raise ValueError(f"mask shape {mask.shape} differs from the depth image's {depth_m.shape}")
        valid &= mask[rows, cols].astype(bool)
    v, u = np.nonzero(valid)
    uv = np.stack([u + cols.start, v + rows.start], axis=1)
    return back_project_points(uv, z[v, u], intrinsics).astype(np.float32)


def back_project_points(uv: np.ndarray, z: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """3-D points of image positions with known depth (pinhole model, no distortion).

    ``x = (u - cx) * z / fx``, ``y = (v - cy) * z / fy``, ``z = z``.

    Args:
        uv: (N, 2) image positions (column u, row v), pixels, sub-pixel allowed, in the K
            convention (pixel (u, v)'s centre is the point (u, v); see the module docstring).
        z: (N,) depth along the optical axis, metres.
        intrinsics: the image's intrinsics.

    Returns:
        (N, 3) float64 points in the camera optical frame (+x right, +y down, +z forward, metres).

    Raises:
        ValueError: uv not (N, 2) or z not (N,).
    """
    uv = np.asarray(uv, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    if uv.ndim != 2 or uv.shape[1] != 2 or z.shape != uv.shape[:1]:
        raise ValueError(f"uv must have shape (N, 2) and z (N,), got {uv.shape} and {z.shape}")
    return np.stack([(uv[:, 0] - intrinsics.cx) * z / intrinsics.fx,
                     (uv[:, 1] - intrinsics.cy) * z / intrinsics.fy, z], axis=1)


def _as_points(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError("points contain non-finite values")
    return points


def largest_depth_cluster(
    points: np.ndarray, gap: float = 0.05, min_fraction: float = NEAREST_CLUSTER_FRACTION
) -> np.ndarray:
    """Reject the background behind an object: keep one cluster of depths.

    A 1-D gap clustering along the viewing direction: the depths (z, optical frame) are
    sorted and split wherever two consecutive depths differ by more than ``gap`` metres, so
    each cluster is a run of depths without a hole wider than ``gap``. The kept cluster is the
    **nearest** cluster holding at least ``min_fraction`` of the points (inside a detection
    box the object usually stands in front of its background, which may still cover more of
    the box); when no cluster is that large, the cluster with the most points (the nearest
    of those tied). Clusters smaller than ``min_fraction`` in front of it (flying pixels at
    edges, an occluding hand) are therefore dropped too.

    Limitations: surfaces that run continuously in depth from the object to the background
    (the floor or table it stands on) join its cluster, and an object in contact with a wall
    behind it (less than ``gap`` apart) is not separated from the wall.

    Args:
        points: (N, 3) finite points in the optical frame (metres; only z is used).
        gap: the smallest depth jump (metres) that separates two clusters; positive.
        min_fraction: the share of all points, in (0, 1], the nearest acceptable cluster
            must hold.

    Returns:
        (N,) bool, True for the kept points (all False when N = 0).

    Raises:
        ValueError: points not (N, 3) or not finite, gap not positive, min_fraction outside (0, 1].
    """
    points = _as_points(points)
    if not gap > 0:
        raise ValueError(f"gap must be positive, got {gap}")
    if not 0 < min_fraction <= 1:
        raise ValueError(f"min_fraction must lie in (0, 1], got {min_fraction}")
    n = points.shape[0]
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    z = points[:, 2].astype(np.float64)
    order = np.argsort(z, kind="stable")
    breaks = np.nonzero(np.diff(z[order]) > gap)[0] + 1  # first index of each later cluster
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [n]])
    sizes = ends - starts
    large = np.nonzero(sizes >= min_fraction * n)[0]
    chosen = int(large[0]) if large.size else int(np.argmax(sizes))  # argmax: first = nearest
    keep[order[starts[chosen]:ends[chosen]]] = True
    return keep


def farthest_point_indices(points: np.ndarray, count: int) -> np.ndarray:
    """Farthest-point sampling: ``count`` distinct indices into ``points`` (N >= count).

    Starts at the point nearest the centroid (deterministic, no seed), then repeatedly adds
    the point farthest (Euclidean) from those chosen; ties go to the lowest index. O(N *
    count) time, O(N) memory, vectorised over N.

    Raises:
        ValueError: count outside [1, N], points not (N, 3) finite.
    """
    points = _as_points(points).astype(np.float32)
    n = points.shape[0]
    if not 1 <= count <= n:
        raise ValueError(f"count must lie in [1, {n}], got {count}")
    centred = points - points.mean(axis=0, dtype=np.float64).astype(np.float32)
    chosen = np.empty(count, dtype=np.int64)
    chosen[0] = int(np.argmin(np.einsum("ij,ij->i", centred, centred)))
    nearest = np.full(n, np.inf, dtype=np.float32)  # squared distance to the chosen set
    for i in range(1, count):
        diff = points - points[chosen[i - 1]]
        np.minimum(nearest, np.einsum("ij,ij->i", diff, diff), out=nearest)
        chosen[i] = int(np.argmax(nearest))
    return chosen


def downsample(points: np.ndarray, count: int = 2048, seed: int = 0, max_candidates: int | None = 16384) -> np.ndarray:
    """Exactly ``count`` points from a cloud.

    * N > count: farthest-point sampling (:func:`farthest_point_indices`), which spreads the
      points evenly over the surface. When N exceeds ``max_candidates``, a uniform random
      subset of ``max_candidates`` points (seeded) is taken first, bounding the O(N * count)
      cost (a depth box can hold 10^5 - 10^6 pixels); below it the result does not depend on
      the seed.
    * N == count: the points themselves.
    * N < count: every point once, in order, followed by ``count - N`` points drawn
      uniformly with replacement (seeded); duplicates do not move the cloud's shape.

    Args:
        points: (N, 3) finite points, N >= 1.
        count: the number of points returned, >= 1.
        seed: seeds numpy's default generator for the random steps above.
        max_candidates: the largest N farthest-point sampling runs on (>= count), or None
            for no limit.

    Returns:
        (count, 3) float32 points (a new array), deterministic for given inputs and seed.

    Raises:
        ValueError: N == 0, count < 1, max_candidates < count, points not (N, 3) finite.
    """
    points = _as_points(points)
    n = points.shape[0]
    if n == 0:
        raise ValueError("cannot downsample an empty point cloud")
    if count < 1:
        raise ValueError(f"count must be positive, got {count}")
    if max_candidates is not None and max_candidates < count:
        raise ValueError(f"max_candidates ({max_candidates}) must be at least count ({count})")
    points = points.astype(np.float32)
    rng = np.random.default_rng(seed)
    if n == count:
        return points.copy()
    if n < count:
        extra = rng.integers(0, n, size=count - n)
        return np.concatenate([points, points[extra]])
    if max_candidates is not None and n > max_candidates:
        points = points[np.sort(rng.choice(n, size=max_candidates, replace=False))]
    return points[farthest_point_indices(points, count)]


def object_points_from_depth(
    depth_m: np.ndarray,
    intrinsics: Intrinsics,
    box: Sequence[float] | None,
    mask: np.ndarray | None = None,
    count: int = 2048,
    gap: float = 0.05,
    min_points: int = 50,
    seed: int = 0,
) -> np.ndarray | None:
    """The object's point cloud from the depth inside its box (and mask).

    :func:`back_project` -> :func:`largest_depth_cluster` (``gap``) -> :func:`downsample`
    (``count``, ``seed``).

    Args:
        depth_m: (H, W) float depth in metres, NaN where invalid (:func:`depth_to_metres`).
        intrinsics: the registered depth image's intrinsics.
        box: ``(x_min, y_min, x_max, y_max)`` detection box, pixels (see :func:`back_project`),
            or None for the whole image.
        mask: optional (H, W) bool instance mask.
        count: points returned.
        gap: depth jump (metres) separating the object from its background.
        min_points: fewest valid points, both before and after background rejection, for a
            result.

    Returns:
        (count, 3) float32 points in the camera optical frame (metres), or None when fewer
        than ``min_points`` valid depth points remain (the caller reports "too few valid
        depth points").

    Raises:
        ValueError: as :func:`back_project`, :func:`largest_depth_cluster` and :func:`downsample`.
    """
    points = back_project(depth_m, intrinsics, box=box, mask=mask)
    if points.shape[0] < max(min_points, 1):
        return None
    points = points[largest_depth_cluster(points, gap=gap)]
    if points.shape[0] < max(min_points, 1):
        return None
    return downsample(points, count=count, seed=seed)


@dataclass(frozen=True)
class DepthFrame:
    """A registered depth image for the colour image being processed.

    Attributes:
        metres: (H, W) float32 depth in metres, NaN where invalid; intrinsics: the colour
        camera's (registered depth); frame_id: the optical frame the points are expressed in.
    """

    metres: np.ndarray
    intrinsics: Intrinsics
    frame_id: str


def object_geometries_from_depth(detections, depth: DepthFrame, color_shape: Sequence[int], count: int = 2048,
                                 gap: float = 0.05) -> tuple[dict, list]:
    """The objects' points from a registered depth image, one point cloud per detection.

    Args:
        detections: pipeline Detections (``bbox_xyxy`` in image pixels).
        depth: the depth registered to the colour image; color_shape: (H, W) of that image.
        count, gap: see :func:`object_points_from_depth`.

    Returns:
        (geometries, missing): geometries maps detection ids to ``PointCloudGeometry(points,
        "depth")`` (points in ``depth.frame_id``, metres); missing lists the detections without
        enough valid depth in their box.

    Raises:
        ValueError: a depth image not registered to the colour image (see :func:`check_registered`).
    """
    from .objects import PointCloudGeometry

    check_registered(depth.metres.shape, color_shape)
    geometries, missing = {}, []
    for detection in detections:
        points = object_points_from_depth(depth.metres, depth.intrinsics, detection.bbox_xyxy, count=count, gap=gap)
        if points is None:
            missing.append(detection)
        else:
            geometries[detection.id] = PointCloudGeometry(points, "depth")
    return geometries, missing


def contact_points_from_depth(probabilities: np.ndarray, depth: DepthFrame,
                              threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of a per-pixel contact map at or above ``threshold`` (and above 0: a map is 0
    where nothing was predicted, e.g. outside the region the model saw), back-projected with a
    registered depth image (:func:`back_project`), with their probabilities.

    Args:
        probabilities: (H, W) float contact probability per pixel of the colour image.
        depth: the depth registered to that image; threshold: in [0, 1].

    Returns:
        (points, values): (N, 3) float32 metres in ``depth.frame_id`` (camera optical frame)
        and (N,) float32 probabilities, in row-major pixel order; N = 0 when no contact pixel
        has valid depth.

    Raises:
        ValueError: a map of another size than the depth image (not registered).
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    check_registered(depth.metres.shape, probabilities.shape)
    with np.errstate(invalid="ignore"):
        mask = ((probabilities >= np.float32(threshold)) & (probabilities > 0) & np.isfinite(depth.metres)
                & (depth.metres > 0))
    return back_project(depth.metres, depth.intrinsics, mask=mask), probabilities[mask]
