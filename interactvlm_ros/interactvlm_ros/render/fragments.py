"""Per-pixel rasterisation results, shared by the OpenGL renderer and the ray-casting oracle."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def clamp_barycentric(barycentric: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """Barycentric weights made what PyTorch3D gives inside a face: negative weights (the GL
    rasteriser's interpolation gives a few of about -1e-3 at triangle edges) set to 0 and
    the three renormalised to sum 1; background pixels all 0.

    Args:
        barycentric: (S, S, 3) float weights; hit: (S, S) bool, pixels that hit a face.

    Returns:
        (S, S, 3) float32, >= 0, summing to 1 where ``hit``.
    """
    weights = np.clip(np.asarray(barycentric, np.float32), 0.0, None)
    weights[~hit] = 0.0
    sums = weights.sum(axis=-1, keepdims=True)
    # A hit pixel always keeps a positive weight (three clamped weights cannot all be 0 when
    # they summed to 1); the guard only avoids 0 / 0 on background.
    return np.divide(weights, sums, out=np.zeros_like(weights), where=sums > 0)


@dataclass(frozen=True)
class MeshFragments:
    """What the nearest triangle under each pixel centre is, for one S x S view.

    Attributes:
        face_ids: (S, S) int32 index of the face hit at the pixel centre, -1 for background.
            Row 0 is the top of the image.
        barycentric: (S, S, 3) float32 perspective-correct barycentric coordinates of the hit
            point with respect to the face's three vertices (in the order of ``faces``),
            >= 0 and summing to 1 (:func:`clamp_barycentric`); zero on background pixels.
        depth: (S, S) float32 view-frame z of the hit point (mesh units), +inf on background.
    """

    face_ids: np.ndarray
    barycentric: np.ndarray
    depth: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """(S, S) bool, True where a face was hit."""
        return self.face_ids >= 0

    def vertex_ids(self, faces: np.ndarray) -> np.ndarray:
        """(S, S, 3) int64 ids of the hit face's vertices, -1 on background."""
        ids = np.full(self.face_ids.shape + (3,), -1, dtype=np.int64)
        hit = self.mask
        ids[hit] = np.asarray(faces)[self.face_ids[hit]]
        return ids


@dataclass(frozen=True)
class PointFragments:
    """The nearest point splat covering each pixel centre, for one S x S view.

    Attributes:
        point_ids: (S, S) int32 index of the nearest point whose splat covers the pixel
            centre, -1 for background.
        depth: (S, S) float32 view-frame z of that point, +inf on background.
    """

    point_ids: np.ndarray
    depth: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.point_ids >= 0
