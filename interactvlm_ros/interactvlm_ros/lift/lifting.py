"""Lifting 2D predictions on rendered views back to the geometry, as InteractVLM does.

Formulas (InteractVLM's ``HumanContact3DPredictor`` and its object / point-cloud lifting):

* probabilities: ``p = sigmoid(clamp(logit, -20, 20))`` per pixel;
* meshes: every pixel that hits a face votes for the face's three vertices with its
  barycentric weights w; per view a vertex gets ``sum(w * p) / sum(w)`` over the pixels that
  vote for it; the result is the mean over the views where the vertex is visible (has at
  least one vote), 0 where it is visible in none, clamped to [0, 1];
* object meshes (``vote_threshold=0.3``): only pixels with ``p > 0.3`` vote, in numerator
  and denominator alike, so a vertex gets the weighted mean of the confident pixels, and a
  view counts for a vertex only where at least one such pixel votes for it;
* point clouds: a pixel votes (weight 1) for the nearest point whose splat covers it; per
  view a point gets the mean p of its pixels, then the mean over views where it is visible.

Every view's votes form a sparse (num_vertices, S*S) matrix, built once from the constant
renders; lifting is then one sparse product per view (a single stacked product when no vote
threshold is used).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from ..render.fragments import MeshFragments, PointFragments

#: Logits are clamped to this range before the sigmoid.
LOGIT_CLAMP = 20.0


def logits_to_probabilities(logits: np.ndarray) -> np.ndarray:
    """``sigmoid(clamp(logits, -20, 20))`` as float32, same shape as the input.

    Raises:
        ValueError: NaN logits (a broken model output must not become a probability).
    """
    logits = np.asarray(logits, dtype=np.float32)
    if np.isnan(logits).any():
        raise ValueError(f"logits contain {int(np.isnan(logits).sum())} NaN values")
    clamped = np.clip(logits, -LOGIT_CLAMP, LOGIT_CLAMP)
    return (1.0 / (1.0 + np.exp(-clamped))).astype(np.float32)


class Lifter:
    """Precomputed lifting from a fixed set of views to the vertices (or points) of one geometry.

    Build it with :meth:`for_mesh` or :meth:`for_points` from the fragments of the constant
    renders; then :meth:`lift` maps per-view logits to per-vertex probabilities.

    Attributes:
        num_targets: number of vertices (or points) lifted to.
        image_size: S, the views are S x S.
        votes: per view, the (num_targets, S*S) float32 CSR matrix of vote weights.
        visible: (num_views, num_targets) bool, whether any pixel of a view votes for a target.
    """

    def __init__(self, votes: Sequence[sp.csr_matrix], image_size: int):
        self.votes = [sp.csr_matrix(v, dtype=np.float32) for v in votes]
        if not self.votes:
            raise ValueError("at least one view is needed")
        self.image_size = int(image_size)
        self.num_targets = int(self.votes[0].shape[0])
        for vote in self.votes:
            if vote.shape != (self.num_targets, self.image_size**2):
                raise ValueError(f"vote matrix of shape {vote.shape}, expected ({self.num_targets}, {self.image_size**2})")
        weight_sums = np.stack([np.asarray(v.sum(axis=1)).ravel() for v in self.votes])
        self.visible = weight_sums > 0
        # Row-normalised, view-averaged votes stacked side by side: lift = one product.
        counts = self.visible.sum(axis=0)
        scale = np.divide(1.0, counts, out=np.zeros(self.num_targets), where=counts > 0)
        blocks = []
        for vote, sums in zip(self.votes, weight_sums):
            inverse = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
            blocks.append(sp.diags((inverse * scale).astype(np.float32)) @ vote)
        self._averaging = sp.hstack(blocks, format="csr", dtype=np.float32)
        self._on_device: dict[str, tuple] = {}

    @property
    def num_views(self) -> int:
        return len(self.votes)

    @classmethod
    def for_mesh(cls, fragments: Sequence[MeshFragments], faces: np.ndarray, num_vertices: int) -> "Lifter":
        """Votes with barycentric weights from mesh fragments.

        Args:
            fragments: one per view, all S x S; faces: (F, 3) vertex ids the face ids refer to;
            num_vertices: V.
        """
        return cls.from_vertex_maps(
            [f.vertex_ids(faces) for f in fragments], [f.barycentric for f in fragments], num_vertices
        )

    @classmethod
    def from_vertex_maps(cls, vertex_ids: Sequence[np.ndarray], barycentric: Sequence[np.ndarray],
                         num_vertices: int) -> "Lifter":
        """Votes from per-pixel vertex-id and barycentric maps (InteractVLM's
        ``pixel_to_vertex_map`` / ``bary_coords_map`` format).

        Args:
            vertex_ids: per view, (S, S, 3) integer ids of the three vertices of the face hit at
                each pixel; a pixel votes only when all three lie in [0, num_vertices)
                (background is -1).
            barycentric: per view, (S, S, 3) weights of those vertices.
            num_vertices: V.

        Raises:
            ValueError: maps of mismatched or non-square shapes.
        """
        votes = []
        for ids, weights in zip(vertex_ids, barycentric, strict=True):
            ids = np.asarray(ids)
            weights = np.asarray(weights, np.float32)
            if ids.shape != weights.shape or ids.ndim != 3 or ids.shape[2] != 3 or ids.shape[0] != ids.shape[1]:
                raise ValueError(f"vertex-id map {ids.shape} and barycentric map {weights.shape} must both be (S, S, 3)")
            flat_ids = ids.reshape(-1, 3)
            pixels = np.flatnonzero(np.all((flat_ids >= 0) & (flat_ids < num_vertices), axis=1))
            votes.append(
                sp.csr_matrix(
                    (weights.reshape(-1, 3)[pixels].ravel(), (flat_ids[pixels].ravel(), np.repeat(pixels, 3))),
                    shape=(num_vertices, flat_ids.shape[0]),
                )
            )  # duplicate (vertex, pixel) pairs are summed
        if not votes:
            raise ValueError("at least one view is needed")
        return cls(votes, int(np.asarray(vertex_ids[0]).shape[0]))

    @classmethod
    def for_points(cls, fragments: Sequence[PointFragments], num_points: int) -> "Lifter":
        """Votes of weight 1 from point fragments (each pixel -> its nearest covering point)."""
        votes = []
        for fragment in fragments:
            pixels = np.flatnonzero(fragment.point_ids.ravel() >= 0)
            votes.append(
                sp.csr_matrix(
                    (np.ones(pixels.size, np.float32), (fragment.point_ids.ravel()[pixels], pixels)),
                    shape=(num_points, fragment.point_ids.size),
                )
            )
        return cls(votes, _image_size(fragments))

    def _probabilities(self, logits) -> np.ndarray:
        logits = np.asarray(logits)
        expected = (self.num_views, self.image_size, self.image_size)
        if logits.shape != expected:
            raise ValueError(f"logits of shape {logits.shape}, expected {expected} (views, S, S)")
        return logits_to_probabilities(logits).reshape(self.num_views, -1)

    def lift(self, logits, vote_threshold: float | None = None) -> np.ndarray:
        """Per-vertex probabilities from per-view logits.

        Args:
            logits: (num_views, S, S) mask logits, one image per view in the views' order: a
                numpy array (scipy sparse products) or a torch tensor (torch sparse products on
                the tensor's device).
            vote_threshold: None (every pixel votes: human contact, point clouds) or the
                probability a pixel must exceed to vote (0.3 for InteractVLM's object meshes).

        Returns:
            (num_targets,) float32 probabilities in [0, 1]; 0 where no pixel voted.

        Raises:
            ValueError: logits of the wrong shape or with NaNs.
        """
        if not isinstance(logits, np.ndarray) and hasattr(logits, "device") and hasattr(logits, "detach"):
            return self._lift_tensor(logits, vote_threshold)
        p = self._probabilities(logits)
        if vote_threshold is None:
            return np.clip(self._averaging @ p.ravel(), 0.0, 1.0).astype(np.float32)
        total = np.zeros(self.num_targets, np.float64)
        views = np.zeros(self.num_targets, np.int64)
        for vote, view_p in zip(self.votes, p):
            confident = (view_p > vote_threshold).astype(np.float32)
            numerator = vote @ (view_p * confident)
            denominator = vote @ confident
            voted = denominator > 0
            total[voted] += numerator[voted] / denominator[voted]
            views += voted
        result = np.divide(total, views, out=np.zeros_like(total), where=views > 0)
        return np.clip(result, 0.0, 1.0).astype(np.float32)


    def _device_matrices(self, device):
        """The averaging and per-view vote matrices as torch sparse CSR tensors on ``device``
        (converted once per device)."""
        import torch

        key = str(device)
        if key not in self._on_device:
            def convert(matrix):
                matrix = matrix.tocsr(copy=True)
                matrix.sum_duplicates()  # torch's CSR requires sorted, distinct column indices
                matrix.sort_indices()
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                    # torch 2.11 warns that checks are "implicitly disabled" even though this call
                    # asks for them (check_invariants=True below).
                    warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
                    return torch.sparse_csr_tensor(torch.from_numpy(matrix.indptr.astype(np.int64)),
                                                   torch.from_numpy(matrix.indices.astype(np.int64)),
                                                   torch.from_numpy(matrix.data.astype(np.float32)),
                                                   size=matrix.shape, device=device, check_invariants=True)

            self._on_device[key] = (convert(self._averaging), [convert(v) for v in self.votes])
        return self._on_device[key]

    def _lift_tensor(self, logits, vote_threshold):
        """:meth:`lift` for a torch tensor, computed on its device (e.g. the GPU the masks were
        decoded on, which avoids copying 4 full-resolution masks to the host)."""
        import torch

        expected = (self.num_views, self.image_size, self.image_size)
        if tuple(logits.shape) != expected:
            raise ValueError(f"logits of shape {tuple(logits.shape)}, expected {expected} (views, S, S)")
        if bool(torch.isnan(logits).any()):
            raise ValueError(f"logits contain {int(torch.isnan(logits).sum())} NaN values")
        averaging, votes = self._device_matrices(logits.device)
        p = torch.sigmoid(logits.float().clamp(-LOGIT_CLAMP, LOGIT_CLAMP)).reshape(self.num_views, -1)
        if vote_threshold is None:
            result = (averaging @ p.reshape(-1, 1)).squeeze(1)
        else:
            total = torch.zeros(self.num_targets, device=logits.device, dtype=torch.float64)
            views = torch.zeros(self.num_targets, device=logits.device, dtype=torch.int64)
            for vote, view_p in zip(votes, p):
                confident = (view_p > vote_threshold).float()
                numerator = (vote @ (view_p * confident).reshape(-1, 1)).squeeze(1).double()
                denominator = (vote @ confident.reshape(-1, 1)).squeeze(1).double()
                voted = denominator > 0
                total[voted] += numerator[voted] / denominator[voted]
                views += voted
            result = torch.where(views > 0, total / views.clamp(min=1), torch.zeros_like(total))
        return result.clamp(0.0, 1.0).float().cpu().numpy()


def _image_size(fragments) -> int:
    if not fragments:
        raise ValueError("at least one view is needed")
    shapes = {f.depth.shape for f in fragments}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2 or next(iter(shapes))[0] != next(iter(shapes))[1]:
        raise ValueError(f"fragments must all be S x S, got shapes {sorted(shapes)}")
    return next(iter(shapes))[0]
