"""The joint fit's objective and its exact gradient (numpy, float64).

Written out by hand rather than through torch's autograd: the fit's arrays are small (hundreds
of points), so per step torch's per-operation overhead and graph cost more than the arithmetic
(on a loaded 2-core CPU, one torch thread: 1.3-1.9 ms per step, against 0.4 ms here), and with
more than one torch thread each small operation waited on the thread pool (10 times slower).
The gradient is checked against finite differences in tests/test_reconstruction.py.

Parameters ``x`` (10,): the rotation's 6D representation (its first two columns before
Gram-Schmidt, Zhou et al.), the translation of the object's centre (metres, optical frame) and
the scale. A point ``p`` (model frame, relative to the object's centre) is placed at
``scale * R p + t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree


def rotation_from_6d(r6: np.ndarray) -> np.ndarray:
    """(6,) -> (3, 3) rotation: the two 3-vectors made orthonormal by Gram-Schmidt are its first
    two columns, their cross product the third."""
    first = r6[:3] / np.linalg.norm(r6[:3])
    second = r6[3:] - (first @ r6[3:]) * first
    second = second / np.linalg.norm(second)
    return np.column_stack([first, second, _cross(first, second)])


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The cross product of two 3-vectors (np.cross's generality costs more than the product)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


@dataclass(frozen=True)
class Terms:
    """The objective's parts at one ``x`` (unweighted): ``contact`` (metres, the weighted mean
    pairwise distance), ``iou`` (projected box vs detection box), ``centre_px2`` (squared
    pixels), ``penetration`` (metres, mean depth inside over the penetration points),
    ``behind`` (metres, summed over the hull below the near plane)."""

    contact: float
    iou: float
    centre_px2: float
    penetration: float
    behind: float


class Objective:
    """The weighted objective of :mod:`.placement` on fixed point sets.

    Args:
        weights: (contact, box, centre, penetration, front) weights.
        near_m: the near plane (metres) the hull's vertices must stay in front of.
        intrinsics: fx, fy, cx, cy, width, height (pixels).
        box: (4,) xyxy pixels of the detection.
        human_points: (H, 3) human contact vertices (metres, optical frame); human_weights (H,);
        object_points: (K, 3) object contact vertices (model frame, about the centre);
            object_weights (K,): the contact term's pairs weigh ``human_w * object_w``.
        hull: (C, 3) the object's convex-hull vertices (model frame, about the centre).
        inner: (P, 3) object vertices (model frame, about the centre) tested against the body;
        body_points, body_normals: (B, 3) body vertices near the contact and their outward
            normals (B may be 0: no penetration term).
        refresh_every: the nearest body vertex of each inner vertex (the penetration term) is
            found again every this many calls and kept in between: the term then measures
            against that vertex's tangent plane, exactly, with a pairing that lags the
            placement by at most that many steps.
    """

    def __init__(self, weights, near_m, intrinsics, box, human_points, human_weights, object_points,
                 object_weights, hull, inner, body_points, body_normals, refresh_every: int = 1):
        self.w_contact, self.w_box, self.w_centre, self.w_pen, self.w_front = (float(w) for w in weights)
        self.near = float(near_m)
        self.focal = np.array([intrinsics.fx, intrinsics.fy])
        self.principal = np.array([intrinsics.cx, intrinsics.cy])
        # Pixel centres are integers: the image spans [-0.5, size - 0.5] on each axis.
        self.high = np.array([intrinsics.width - 0.5, intrinsics.height - 0.5])
        self.box = np.asarray(box, np.float64)
        self.box_area = float((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))
        self.box_centre = 0.5 * (self.box[:2] + self.box[2:])
        self.box_list = [float(v) for v in self.box]
        # Distances are computed about the human contact's centre (exact in float64; it keeps
        # the expanded |h|^2 + |x|^2 - 2 h.x form well conditioned).
        self.origin = np.average(human_points, axis=0, weights=human_weights)
        self.human = np.asarray(human_points, np.float64) - self.origin
        self.human_sq = (self.human**2).sum(axis=1)
        pairs = np.outer(human_weights, object_weights)
        self.pairs = pairs / pairs.sum()
        self.counts = np.cumsum([len(object_points), len(hull)])
        self.points = np.concatenate([object_points, hull, inner]).astype(np.float64)
        self.inner_count = len(inner)
        self.body = np.asarray(body_points, np.float64)
        self.body_normals = np.asarray(body_normals, np.float64)
        self.tree = cKDTree(self.body) if len(self.body) else None
        self.refresh_every = int(refresh_every)
        self._calls = 0
        self._planes = None

    def reset(self) -> None:
        """Forget the nearest body vertices (before a new start)."""
        self._calls, self._planes = 0, None

    def _nearest_planes(self, inner):
        """Per inner vertex the nearest body vertex's outward normal (P, 3) and plane offset
        ``n . b`` (P,): the body's tangent planes the penetration term measures against; None
        when the term is off."""
        if self.w_pen <= 0 or self.tree is None or len(inner) == 0:
            return None
        ids = self.tree.query(inner)[1]
        normals = self.body_normals[ids]
        return normals, np.einsum("ij,ij->i", normals, self.body[ids])

    def __call__(self, x: np.ndarray, gradient: bool = True):
        """(loss, gradient (10,) or None, :class:`Terms`) at ``x``."""
        a1, a2, shift, scale = x[:3], x[3:6], x[6:9], x[9]
        n1 = np.linalg.norm(a1)
        b1 = a1 / n1
        dot = b1 @ a2
        u = a2 - dot * b1
        n2 = np.linalg.norm(u)
        b2 = u / n2
        b3 = _cross(b1, b2)
        rotation = np.column_stack([b1, b2, b3])
        turned = self.points @ rotation.T
        placed = scale * turned + shift
        grad = np.zeros_like(placed)
        contact_end, hull_end = self.counts
        loss = 0.0

        # Contact: weighted mean pairwise distance.
        contact = 0.0
        if self.w_contact > 0:
            mine = placed[:contact_end] - self.origin
            squared = self.human_sq[:, None] + (mine**2).sum(axis=1)[None, :] - 2.0 * self.human @ mine.T
            distance = np.sqrt(np.maximum(squared, 1e-18))
            contact = float((self.pairs * distance).sum())
            loss += self.w_contact * contact
            if gradient:
                q = self.w_contact * self.pairs / distance
                grad[:contact_end] = mine * q.sum(axis=0)[:, None] - q.T @ self.human

        inner = placed[hull_end:]
        if self._planes is None or self._calls % self.refresh_every == 0:
            self._planes = self._nearest_planes(inner)
        self._calls += 1
        planes = self._planes

        # Penetration: object points inside the body (the nearest body vertex's tangent plane).
        penetration = 0.0
        if planes is not None:
            signed = np.einsum("ij,ij->i", inner, planes[0]) - planes[1]
            inside = signed < 0
            penetration = float(-signed[inside].sum() / self.inner_count) + 0.0
            loss += self.w_pen * penetration
            if gradient:
                grad[hull_end:] -= (self.w_pen / self.inner_count) * inside[:, None] * planes[0]

        # The hull: in front of the near plane, and its projected box against the detection's.
        hull = placed[contact_end:hull_end]
        depth = hull[:, 2]
        below = depth < self.near
        behind = float((self.near - depth[below]).sum())
        loss += self.w_front * behind
        safe = np.maximum(depth, 1e-3)
        image = hull[:, :2] / safe[:, None] * self.focal + self.principal
        ids = (*image.argmin(axis=0), *image.argmax(axis=0))  # the hull vertices at u min, v min, u max, v max
        raw = (float(image[ids[0], 0]), float(image[ids[1], 1]), float(image[ids[2], 0]), float(image[ids[3], 1]))
        low_u, low_v = max(raw[0], -0.5), max(raw[1], -0.5)  # clipped to the image, as a detector's box
        high_u, high_v = min(raw[2], self.high[0]), min(raw[3], self.high[1])
        x1, y1, x2, y2 = self.box_list
        overlap_u, overlap_v = min(high_u, x2) - max(low_u, x1), min(high_v, y2) - max(low_v, y1)
        side_u, side_v = high_u - low_u, high_v - low_v
        overlap = max(overlap_u, 0.0) * max(overlap_v, 0.0)
        union = max(side_u, 0.0) * max(side_v, 0.0) + self.box_area - overlap + 1e-9
        iou = overlap / union
        offset_u, offset_v = 0.5 * (low_u + high_u) - self.box_centre[0], 0.5 * (low_v + high_v) - self.box_centre[1]
        centre = offset_u**2 + offset_v**2
        loss += self.w_box * (1.0 - iou) + self.w_centre * centre
        if gradient:
            grad[contact_end:hull_end, 2] -= self.w_front * below
            d_overlap = -self.w_box * (union + overlap) / union**2  # d loss / d overlap
            d_area = self.w_box * overlap / union**2  # d loss / d the projected box's area
            corner = []
            for overlap_side, other_overlap, other_side, offset, low, high, lo, hi, raw_low, raw_high, limit in (
                    (overlap_u, overlap_v, side_v, offset_u, low_u, high_u, x1, x2, raw[0], raw[2], self.high[0]),
                    (overlap_v, overlap_u, side_u, offset_v, low_v, high_v, y1, y2, raw[1], raw[3], self.high[1])):
                along = d_overlap * max(other_overlap, 0.0) if overlap_side > 0 else 0.0
                area = d_area * max(other_side, 0.0) if high > low else 0.0
                d_low = (-along * (low > lo) - area + self.w_centre * offset) * (raw_low > -0.5)
                d_high = (along * (high < hi) + area + self.w_centre * offset) * (raw_high < limit)
                corner.append((d_low, d_high))
            for k, axis, d_corner in ((ids[0], 0, corner[0][0]), (ids[1], 1, corner[1][0]),
                                      (ids[2], 0, corner[0][1]), (ids[3], 1, corner[1][1])):
                if d_corner:
                    f = d_corner * self.focal[axis] / safe[k]
                    grad[contact_end + k, axis] += f
                    if depth[k] > 1e-3:  # the depth is clamped below that
                        grad[contact_end + k, 2] -= f * hull[k, axis] / depth[k]

        terms = Terms(contact, iou, centre, penetration, behind)
        if not gradient:
            return loss, None, terms
        # Back through placed = scale * points @ R^T + shift and the 6D representation.
        g_shift = grad.sum(axis=0)
        g_scale = float((grad * turned).sum())
        g_rotation = scale * grad.T @ self.points  # d loss / d R, (3, 3)
        g_b1, g_b2, g_b3 = g_rotation[:, 0].copy(), g_rotation[:, 1].copy(), g_rotation[:, 2]
        g_b1 += _cross(b2, g_b3)
        g_b2 += _cross(g_b3, b1)
        g_u = (g_b2 - b2 * (b2 @ g_b2)) / n2
        g_a2 = g_u - b1 * (b1 @ g_u)
        g_b1 -= dot * g_u + (b1 @ g_u) * a2
        g_a1 = (g_b1 - b1 * (b1 @ g_b1)) / n1
        return loss, np.concatenate([g_a1, g_a2, g_shift, [g_scale]]), terms
