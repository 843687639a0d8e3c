"""InteractVLM's evaluation metrics and the joint-reconstruction metrics of BEHAVE, per sample,
in numpy/scipy (no torch, no scikit-learn; trimesh samples surfaces and libigl gives signed
distances to a mesh, both imported by the functions that need them).

Source of the contact and affordance formulas: InteractVLM's public code, ``utils/eval_utils.py``
(``get_h_contact_metrics``, ``get_h_geo_metric``, ``SIM``, ``get_o_affordance_metrics``). The
reconstruction metrics (:func:`reconstruction_chamfer`, :func:`proximity_contact`,
:func:`penetration_depth`) say their sources in their docstrings.
Each function here scores ONE sample;
InteractVLM averages the per-sample values over the test set, which :func:`summarize` does
(overall and per object class).

Deviations from InteractVLM, all deliberate and documented where they occur:

* :func:`geodesic_error` uses the argument orientation ``get_h_geo_metric(pred, gt)`` is
  written for; InteractVLM's ``validate`` calls it as ``get_h_geo_metric(gt, pred)``
  (swapped), see the function's docstring. GT contact is ``gt > 0`` as in the F1 metric
  (InteractVLM's geodesic code tests ``gt == 1``; identical for binary labels).
* :func:`affordance_scores` divides the MAE by the number of points N instead of the
  hard-coded 2048 (identical for PIAD's 2048-point clouds).
* AUC is the rank-based Mann-Whitney statistic with average ranks for ties, which equals
  ``sklearn.metrics.roc_auc_score`` (its trapezoidal ROC area treats ties the same way).
* Arithmetic is float64 (InteractVLM: float32 torch tensors), so values can differ from
  InteractVLM's in the last float32 digits.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra
from scipy.stats import rankdata

__all__ = [
    "AIOU_THRESHOLDS",
    "CHAMFER_ALIGNMENTS",
    "CHAMFER_SAMPLES",
    "CONTACT_THRESHOLD",
    "GT_AFFORDANCE_THRESHOLD",
    "PROXIMITY_CONTACT_M",
    "affordance_scores",
    "chamfer_distance",
    "contact_scores",
    "geodesic_error",
    "iou",
    "mesh_geodesic_distances",
    "penetration_depth",
    "point_cloud_chamfer",
    "proximity_contact",
    "reconstruction_chamfer",
    "roc_auc",
    "signed_distance",
    "similarity_transform",
    "summarize",
]

#: Predicted contact is ``pred >= CONTACT_THRESHOLD`` (InteractVLM's default 0.5).
CONTACT_THRESHOLD = 0.5
#: Affordance ground truth is binarised as ``gt >= GT_AFFORDANCE_THRESHOLD`` for AUC and aIoU.
GT_AFFORDANCE_THRESHOLD = 0.5
#: aIoU thresholds: ``numpy.linspace(0, 1, 20)`` (0, 1/19, ..., 1), as in InteractVLM.
AIOU_THRESHOLDS = np.linspace(0.0, 1.0, 20)

#: Points sampled on each surface for :func:`reconstruction_chamfer` (BEHAVE's and CONTHO's 6000).
CHAMFER_SAMPLES = 6000
#: Alignments of :func:`reconstruction_chamfer` before the distances are taken.
CHAMFER_ALIGNMENTS = ("combined", "human", "none")
#: A body vertex is in contact when it lies within this distance of the object's surface or
#: inside it [m]: BEHAVE's own contact labels use 2 cm (``compute_contacts.py``).
PROXIMITY_CONTACT_M = 0.02

_EPS_CONTACT = 1e-10  # get_h_contact_metrics
_EPS_SIM = 1e-12  # SIM(..., eps=1e-12)
_M_TO_CM = 100.0


def _as_1d(name: str, values: Any) -> np.ndarray:
    """``values`` as a 1-D float array (a float32 input stays float32)."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per vertex / point), "
                         f"got shape {array.shape}")
    if array.dtype == np.float32:
        return array
    return array.astype(np.float64)


def _pair(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    p, g = _as_1d("pred", pred), _as_1d("gt", gt)
    if p.shape != g.shape:
        raise ValueError(f"pred and gt differ in length: {p.shape} vs {g.shape}")
    return p, g


# ----------------------------------------------------------------------------- human contact


def contact_scores(pred: Any, gt: Any, threshold: float = CONTACT_THRESHOLD) -> dict[str, float]:
    """Precision, recall and F1 of one sample's per-vertex contact (InteractVLM formula).

    Args:
        pred: (V,) float, predicted contact probabilities in [0, 1] (e.g. V = 6890 SMPL-H
            vertices). Predicted contact is ``pred >= threshold``.
        gt: (V,) float / int / bool, ground-truth contact labels; contact is ``gt > 0``.
        threshold: decision threshold on ``pred`` (unitless; InteractVLM uses 0.5).

    Returns:
        ``{"precision", "recall", "f1"}`` as Python floats in [0, 1], with tp the number of
        vertices in both sets, pp / gp the sizes of the predicted / GT sets::

            P = tp / (pp + 1e-10);  R = tp / (gp + 1e-10);  F1 = 2 P R / (P + R + 1e-10)

        so an empty prediction or an empty GT gives 0 for all three (never NaN).

    Source: InteractVLM ``utils/eval_utils.py::get_h_contact_metrics`` (per batch element).
    """
    p, g = _pair(pred, gt)
    pred_contact = p >= threshold
    gt_contact = g > 0
    tp = float(np.count_nonzero(pred_contact & gt_contact))
    pp = float(np.count_nonzero(pred_contact))
    gp = float(np.count_nonzero(gt_contact))
    precision = tp / (pp + _EPS_CONTACT)
    recall = tp / (gp + _EPS_CONTACT)
    f1 = 2.0 * precision * recall / (precision + recall + _EPS_CONTACT)
    return {"precision": precision, "recall": recall, "f1": f1}


def geodesic_error(pred: Any, gt: Any, distances: Any,
                   threshold: float = CONTACT_THRESHOLD) -> dict[str, float]:
    """False-positive and false-negative geodesic errors of one sample, in centimetres.

    Args:
        pred: (V,) float, predicted contact probabilities; contact is ``pred >= threshold``.
        gt: (V,) float / int / bool, GT labels; contact is ``gt > 0``.
        distances: (V, V) float, geodesic distances between vertices in METRES (InteractVLM
            loads ``smpl_neutral_geodesic_dist.npy``; :func:`mesh_geodesic_distances` gives an
            edge-path approximation for any mesh).
        threshold: decision threshold on ``pred``.

    Returns:
        ``{"fp_geodesic_cm", "fn_geodesic_cm"}`` as Python floats in CENTIMETRES (metres x 100):

        * ``fp_geodesic_cm``: mean over predicted contact vertices of the distance to the
          nearest GT contact vertex (how far off the false positives are; 0 if every predicted
          vertex is a GT vertex);
        * ``fn_geodesic_cm``: mean over GT contact vertices of the distance to the nearest
          predicted contact vertex (how far the misses are from any prediction).

        As in InteractVLM, with no predicted contact every vertex is used as a "predicted" row,
        and with no GT contact every vertex is used as a GT column. So no prediction gives
        fp = mean distance of all vertices to the GT set and fn = 0; no GT gives fp = 0 and
        fn = mean distance of all vertices to the prediction; both empty gives 0 and 0.
        Disconnected vertices (infinite distances) propagate as ``inf``.

    Source: InteractVLM ``utils/eval_utils.py::get_h_geo_metric(pred, gt)``: error matrix =
    ``D[pred rows, gt columns]``, fp = row minima averaged, fn = column minima averaged.
    Discrepancy: InteractVLM's ``validate`` calls it as ``get_h_geo_metric(gt, pred)``, i.e.
    with the arguments swapped, so the "fp" value it logs is the mean, over GT contact
    vertices, of the distance to the nearest vertex whose prediction is exactly 1 (to the
    nearest of all vertices, i.e. 0, when there is none): our ``fn_geodesic_cm`` when the
    prediction is binary, not a false-positive error. This function implements the
    orientation ``get_h_geo_metric`` is written for, so InteractVLM's logged figure is not
    reproduced by it. GT contact here is ``gt > 0``
    (InteractVLM's geodesic code uses ``gt == 1``; identical for binary labels).
    """
    p, g = _pair(pred, gt)
    dist = np.asarray(distances)
    n = p.shape[0]
    if dist.shape != (n, n):
        raise ValueError(f"distances must be ({n}, {n}) to match pred/gt, got {dist.shape}")
    pred_contact = p >= threshold
    gt_contact = g > 0
    columns = dist[:, gt_contact] if gt_contact.any() else dist
    error = columns[pred_contact, :] if pred_contact.any() else columns
    error = error.astype(np.float64, copy=False)
    fp = float(error.min(axis=1).mean()) * _M_TO_CM
    fn = float(error.min(axis=0).mean()) * _M_TO_CM
    return {"fp_geodesic_cm": fp, "fn_geodesic_cm": fn}


def mesh_geodesic_distances(vertices: Any, faces: Any,
                            sources: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """Shortest-path distances along the edges of a triangle mesh (a geodesic upper bound).

    Args:
        vertices: (V, 3) float, vertex positions (any length unit; metres for
            :func:`geodesic_error`).
        faces: (F, 3) int, vertex indices of each triangle.
        sources: optional 1-D int indices of the vertices to compute rows for (for big
            meshes: V x V float32 is 4 V^2 bytes, about 190 MB for SMPL's 6890 vertices).

    Returns:
        (len(sources), V) float32 (or (V, V) when ``sources`` is None): Dijkstra distances
        (``scipy.sparse.csgraph.dijkstra``) on the undirected graph of the mesh's unique
        edges, each weighted by its Euclidean length, in the unit of ``vertices``. Vertices
        not connected to a source get ``inf``.

    This is NOT the exact surface geodesic: paths are confined to edges, so the result is an
    upper bound of the true geodesic distance, exact only along straight edge chains (on a
    regular right-triangle grid it is up to sqrt(2) times too long, in the direction no
    diagonal edge follows). InteractVLM uses a precomputed SMPL geodesic matrix
    (``smpl_neutral_geodesic_dist.npy``) instead; pass that to :func:`geodesic_error` when
    available.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must be (V, 3), got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"faces must be (F, 3), got {f.shape}")
    n = v.shape[0]
    f = f.astype(np.int64)
    if f.size and (f.min() < 0 or f.max() >= n):
        raise ValueError("faces index vertices out of range")
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], axis=0)
    edges = np.sort(edges, axis=1)
    edges = edges[edges[:, 0] != edges[:, 1]]  # degenerate faces
    edges = np.unique(edges, axis=0)  # an edge shared by two faces must not be summed twice
    lengths = np.linalg.norm(v[edges[:, 0]] - v[edges[:, 1]], axis=1)
    # Explicit zeros (coincident vertices) stay edges of length 0 for csgraph's sparse input.
    graph = sp.csr_matrix((lengths, (edges[:, 0], edges[:, 1])), shape=(n, n))
    indices = None if sources is None else np.asarray(sources, dtype=np.int64).reshape(-1)
    result = dijkstra(graph, directed=False, indices=indices)
    return np.asarray(result, dtype=np.float32).reshape(-1 if indices is not None else n, n)


# ----------------------------------------------------------------------------- object affordance


def roc_auc(scores: Any, labels: Any) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (NaN with one class).

    Args:
        scores: (N,) float, higher = more likely positive.
        labels: (N,) bool / int, positives are the truthy entries.

    Returns:
        Python float in [0, 1]: the Mann-Whitney statistic
        ``(sum of positive ranks - n_pos (n_pos + 1) / 2) / (n_pos n_neg)`` with average ranks
        for tied scores (a tied positive/negative pair counts 1/2), which equals
        ``sklearn.metrics.roc_auc_score``; ``nan`` when ``labels`` has only one class
        (scikit-learn raises there; InteractVLM then records NaN).
    """
    s = _as_1d("scores", scores).astype(np.float64)
    y = np.asarray(labels).astype(bool).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"scores and labels differ in length: {s.shape} vs {y.shape}")
    n_pos = int(np.count_nonzero(y))
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s, method="average")
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def iou(a: Any, b: Any) -> float:
    """``|A and B| / |A or B|`` of two boolean masks of equal shape; 0 when the union is empty."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b)) / union if union else 0.0


def affordance_scores(pred: Any, gt: Any) -> dict[str, float]:
    """SIM, AUC, aIoU and MAE of one object's per-point affordance (PIAD: N = 2048 points).

    Args:
        pred: (N,) float, predicted affordance probabilities in [0, 1].
        gt: (N,) float, GT affordance in [0, 1] (PIAD's soft labels).

    Returns:
        ``{"sim", "auc", "aiou", "mae"}`` as Python floats (unitless, each in [0, 1]):

        * ``sim = sum(min(p / (sum p + 1e-12), g / (sum g + 1e-12)))`` (histogram
          intersection of the normalised maps; 0 when either map is all zero);
        * ``mae = sum |g - p| / N`` (InteractVLM divides by a hard-coded 2048; N here, the
          same for PIAD);
        * ``auc``: :func:`roc_auc` of ``pred`` against ``gt >= 0.5``;
        * ``aiou``: mean over the 20 thresholds t in ``linspace(0, 1, 20)`` of
          ``IoU(pred >= t, gt >= 0.5)`` (:func:`iou`; the threshold is taken in ``pred``'s
          float precision, as torch does for a float32 tensor).

        ``auc`` and ``aiou`` are NaN when ``gt >= 0.5`` has a single class (all or no points):
        InteractVLM skips such samples in those two averages (``valid_samples``), which
        :func:`summarize` reproduces by ignoring NaN. ``sim`` and ``mae`` are always defined.

    Source: InteractVLM ``utils/eval_utils.py::get_o_affordance_metrics`` and ``SIM``.
    """
    p, g = _pair(pred, gt)
    n = p.shape[0]
    if n == 0:
        raise ValueError("affordance_scores needs at least one point")
    p64, g64 = p.astype(np.float64), g.astype(np.float64)
    sim = float(np.minimum(g64 / (g64.sum() + _EPS_SIM), p64 / (p64.sum() + _EPS_SIM)).sum())
    mae = float(np.abs(g64 - p64).sum() / n)
    gt_binary = g >= GT_AFFORDANCE_THRESHOLD
    if gt_binary.all() or not gt_binary.any():
        auc = aiou = float("nan")
    else:
        auc = roc_auc(p64, gt_binary)
        thresholds = AIOU_THRESHOLDS.astype(p.dtype)
        aiou = float(np.mean([iou(p >= t, gt_binary) for t in thresholds]))
    return {"sim": sim, "auc": auc, "aiou": aiou, "mae": mae}


# ----------------------------------------------------------------------------- reconstruction


def _points(name: str, values: Any) -> np.ndarray:
    """``values`` as a finite (N, 3) float64 array with N >= 1."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 3 or array.shape[0] == 0:
        raise ValueError(f"{name} must be an (N, 3) array with N >= 1, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains non-finite values")
    return array


def _faces(name: str, values: Any, num_vertices: int) -> np.ndarray:
    """``values`` as an (F, 3) int64 array of vertex ids in [0, num_vertices), F >= 1."""
    array = np.asarray(values)
    if array.ndim != 2 or array.shape[1] != 3 or array.shape[0] == 0 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must be an (F, 3) integer array with F >= 1, got {array.shape} {array.dtype}")
    if array.min() < 0 or array.max() >= num_vertices:
        raise ValueError(f"{name} index vertices outside [0, {num_vertices})")
    return array.astype(np.int64)


def similarity_transform(source: Any, target: Any) -> tuple[float, np.ndarray, np.ndarray]:
    """The scale s, rotation R and translation t minimising ``sum |s R x_i + t - y_i|^2`` over
    corresponding points (Umeyama's solution of the orthogonal Procrustes problem with scale).

    Args:
        source: (N, 3) points x_i (e.g. a prediction), any length unit.
        target: (N, 3) points y_i in the same order (the ground truth).

    Returns:
        ``(s, R, t)``: s > 0 (0 when ``source`` is a single point or all points coincide), R
        (3, 3) a proper rotation (det +1), t (3,) in the unit of the points; ``s * x @ R.T + t``
        is the aligned source.

    Raises:
        ValueError: shapes differ or are not (N, 3), or non-finite values.

    Source: the similarity transform of BEHAVE's evaluation (``challenges/lib/metrics.py``
    ``compute_similarity_transform``) and CONTHO's ``rigid_transform_3D``: the same solution.
    """
    x, y = _points("source", source), _points("target", target)
    if x.shape != y.shape:
        raise ValueError(f"source and target differ in shape: {x.shape} vs {y.shape}")
    mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - mu_x, y - mu_y
    covariance = yc.T @ xc  # sum_i y_i x_i^T
    u, singular, vt = np.linalg.svd(covariance)
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rotation = u @ np.diag(d) @ vt
    variance = float((xc ** 2).sum())
    scale = float((singular * d).sum() / variance) if variance > 0 else 0.0
    return scale, rotation, mu_y - scale * rotation @ mu_x


def chamfer_distance(a: Any, b: Any) -> float:
    """Bidirectional Chamfer distance of two point sets, in their length unit.

    ``mean_i min_j |a_i - b_j| + mean_j min_i |a_i - b_j|`` (Euclidean, not squared; the two
    directions are added, not averaged), nearest neighbours from ``scipy.spatial.cKDTree``.

    Args:
        a: (N, 3) points; b: (M, 3) points.

    Source: BEHAVE's ``challenges/lib/chamfer_distance.py`` (``direction='bi'``) and CONTHO's
    ``chamfer_distance``, the definition behind the BEHAVE Chamfer figures in centimetres.
    """
    from scipy.spatial import cKDTree

    pa, pb = _points("a", a), _points("b", b)
    a_to_b = cKDTree(pb).query(pa)[0]
    b_to_a = cKDTree(pa).query(pb)[0]
    return float(a_to_b.mean() + b_to_a.mean())


def _sample_surface(vertices: np.ndarray, faces: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` points uniformly on the triangles' area (``trimesh.sample.sample_surface``)."""
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=False)
    return np.asarray(trimesh.sample.sample_surface(mesh, count, seed=rng)[0], dtype=np.float64)


def reconstruction_chamfer(pred_human: Any, gt_human: Any, human_faces: Any, pred_object: Any,
                           pred_object_faces: Any, gt_object: Any, gt_object_faces: Any,
                           alignment: str = "combined", samples: int = CHAMFER_SAMPLES,
                           seed: int = 0, pred_human_faces: Any = None) -> dict[str, float]:
    """Chamfer distances of a reconstructed human and object to the ground truth, in centimetres.

    Protocol (BEHAVE's joint-reconstruction evaluation, ``challenges/cvprw23/evaluate_joint.py``,
    "same evaluation metric used in CHORE"; CONTHO's ``lib/utils/eval_utils.py``
    ``eval_chamfer_distance``, by TeHOR's authors, the same steps):

    1. ``alignment="combined"``: the predicted human and object vertices, stacked, are aligned to
       the ground truth's, stacked the same way, by one :func:`similarity_transform` (scale,
       rotation, translation); the aligned human and object are then scored separately. This
       needs vertex correspondence: the human in the ground truth's topology (SMPL-H) and the
       object as the ground-truth template's vertices, posed.
    2. :data:`CHAMFER_SAMPLES` (6000) points are sampled uniformly on each surface (predicted
       and true human, predicted and true object).
    3. Each part's score is :func:`chamfer_distance` of its two samples, metres x 100.

    ``alignment="human"`` estimates the similarity transform from the human vertices only and
    applies it to both parts: for an object mesh without correspondence to the template (a
    retrieved or generated mesh); not the reference protocol. ``alignment="none"`` scores the
    meshes as given (both in the same camera frame).

    Args:
        pred_human, gt_human: (V, 3) vertices [m], same topology (``human_faces`` (F, 3)).
        pred_object: (N, 3) vertices [m], faces ``pred_object_faces``; gt_object: (N', 3)
            vertices [m], faces ``gt_object_faces`` (N = N' needed for "combined").
        alignment: one of :data:`CHAMFER_ALIGNMENTS`.
        samples: points sampled per surface (>= 1).
        seed: seed of the surface sampling (``numpy.random.default_rng``), so a score repeats.
        pred_human_faces: the predicted human's own triangles when it is another body model
            than the ground truth's (e.g. the open body against SMPL-H): only with alignment
            "none" (the others need vertex correspondence); default ``human_faces``.

    Returns:
        ``{"chamfer_human_cm", "chamfer_object_cm"}`` as Python floats >= 0.

    Raises:
        ValueError: an unknown alignment, shapes that differ where correspondence is needed
            (names which), non-finite values or faces out of range.
    """
    if alignment not in CHAMFER_ALIGNMENTS:
        raise ValueError(f"alignment must be one of {CHAMFER_ALIGNMENTS}, got {alignment!r}")
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples must be an int >= 1, got {samples!r}")
    ph, gh = _points("pred_human", pred_human), _points("gt_human", gt_human)
    if pred_human_faces is not None and alignment != "none":
        raise ValueError(f"pred_human_faces (another body model) needs alignment 'none', got {alignment!r}")
    if pred_human_faces is None and ph.shape != gh.shape:
        raise ValueError(f"pred_human and gt_human must share a topology: {ph.shape} vs {gh.shape}")
    po, go = _points("pred_object", pred_object), _points("gt_object", gt_object)
    hf = _faces("human_faces", human_faces, len(gh))
    phf = hf if pred_human_faces is None else _faces("pred_human_faces", pred_human_faces, len(ph))
    pof = _faces("pred_object_faces", pred_object_faces, len(po))
    gof = _faces("gt_object_faces", gt_object_faces, len(go))
    if alignment == "combined":
        if po.shape != go.shape:
            raise ValueError(f"alignment 'combined' needs the predicted object in the ground-truth template's "
                             f"vertices: {po.shape} vs {go.shape} (use alignment 'human' for another mesh)")
        scale, rotation, shift = similarity_transform(np.vstack([ph, po]), np.vstack([gh, go]))
    elif alignment == "human":
        scale, rotation, shift = similarity_transform(ph, gh)
    else:
        scale, rotation, shift = 1.0, np.eye(3), np.zeros(3)
    ph, po = scale * ph @ rotation.T + shift, scale * po @ rotation.T + shift
    rng = np.random.default_rng(seed)
    human = chamfer_distance(_sample_surface(ph, phf, samples, rng), _sample_surface(gh, hf, samples, rng))
    obj = chamfer_distance(_sample_surface(po, pof, samples, rng), _sample_surface(go, gof, samples, rng))
    return {"chamfer_human_cm": human * _M_TO_CM, "chamfer_object_cm": obj * _M_TO_CM}


def point_cloud_chamfer(points: Any, vertices: Any, faces: Any, samples: int = CHAMFER_SAMPLES,
                        seed: int = 0) -> float:
    """Chamfer distance (cm) of a point cloud (e.g. an object's depth points) to a mesh: the
    cloud (at most ``samples`` of its points, chosen with ``seed``) against ``samples`` points
    sampled on the mesh's surface, as :func:`reconstruction_chamfer` scores a part (no
    alignment). A depth cloud sees one side of the object: the mesh-to-cloud half counts the
    unseen side.

    Raises:
        ValueError: shapes, non-finite values, faces out of range, samples < 1.
    """
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples must be an int >= 1, got {samples!r}")
    cloud, mesh = _points("points", points), _points("vertices", vertices)
    triangles = _faces("faces", faces, len(mesh))
    rng = np.random.default_rng(seed)
    if len(cloud) > samples:
        cloud = cloud[rng.choice(len(cloud), samples, replace=False)]
    return chamfer_distance(cloud, _sample_surface(mesh, triangles, samples, rng)) * _M_TO_CM


def signed_distance(points: Any, vertices: Any, faces: Any) -> np.ndarray:
    """Signed distance of each point to a triangle mesh's surface: negative inside.

    Args:
        points: (N, 3) query points; vertices: (V, 3); faces: (F, 3) int (any length unit, the
            same for both).

    Returns:
        (N,) float64: the exact distance to the nearest point of the surface, negative where the
        point is inside (generalised winding number >= 1/2, libigl's ``signed_distance`` with
        ``SIGNED_DISTANCE_TYPE_WINDING_NUMBER``, which also decides inside for meshes with small
        holes, as scans have).

    Raises:
        ValueError: shapes, non-finite values or faces out of range.
    """
    import igl

    p, v = _points("points", points), _points("vertices", vertices)
    f = _faces("faces", faces, len(v))
    distances = igl.signed_distance(np.ascontiguousarray(p), np.ascontiguousarray(v), np.ascontiguousarray(f),
                                    sign_type=igl.SignedDistanceType.SIGNED_DISTANCE_TYPE_WINDING_NUMBER)[0]
    return np.asarray(distances, dtype=np.float64)


def proximity_contact(body_vertices: Any, object_vertices: Any, object_faces: Any,
                      threshold: float = PROXIMITY_CONTACT_M) -> np.ndarray:
    """Per-vertex human contact from geometry: a body vertex is in contact when its
    :func:`signed_distance` to the object's surface is below ``threshold`` (within it outside,
    or anywhere inside the object).

    Args:
        body_vertices: (V, 3) [m]; object_vertices: (N, 3) [m]; object_faces: (F, 3) int.
        threshold: [m], > 0 (default 2 cm: the threshold of BEHAVE's own contact labels,
            ``compute_contacts.py``, which label object surface points whose signed distance to
            the SMPL surface is below 0.02; here the same rule runs from the body's vertices to
            the object's surface, so the label lives on the body's vertices as InteractVLM's
            human contact does).

    Returns:
        (V,) float32 in {0, 1}.

    Raises:
        ValueError: a threshold that is not > 0, shapes, non-finite values, faces out of range.
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0 [m], got {threshold}")
    return (signed_distance(body_vertices, object_vertices, object_faces) < threshold).astype(np.float32)


def penetration_depth(body_vertices: Any, object_vertices: Any, object_faces: Any) -> dict[str, float]:
    """How deep a body reaches into an object: the largest distance of a body vertex inside
    the object's surface, in centimetres.

    Args:
        body_vertices: (V, 3) [m]; object_vertices: (N, 3) [m]; object_faces: (F, 3) int.

    Returns:
        ``{"penetration_cm": max over body vertices of max(0, -signed distance) x 100 (0 when no
        vertex is inside), "penetrating_vertices": the number of body vertices inside}``.
        Inside is decided as :func:`signed_distance` does (winding number).

    Raises:
        ValueError: shapes, non-finite values, faces out of range.
    """
    depth = np.maximum(-signed_distance(body_vertices, object_vertices, object_faces), 0.0)
    return {"penetration_cm": float(depth.max()) * _M_TO_CM, "penetrating_vertices": int(np.count_nonzero(depth))}


# ----------------------------------------------------------------------------- aggregation


def _is_metric_value(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (int, float, np.integer, np.floating))


def _mean_or_none(values: Iterable[float]) -> float | None:
    """``numpy.nanmean`` without its all-NaN warning: None when no value is a number."""
    array = np.asarray(list(values), dtype=np.float64)
    valid = array[~np.isnan(array)]
    return float(valid.mean()) if valid.size else None


def summarize(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Average per-sample metrics overall and per object class, ignoring NaN.

    Args:
        samples: one mapping per sample with the key ``"object_label"`` (str; a missing or
            None label is grouped as ``"unknown"``) and any metric keys (e.g. the outputs of
            :func:`contact_scores`, :func:`geodesic_error`, :func:`affordance_scores`). A metric
            is any key (other than ``"object_label"``, ``"count"`` and the sample's image
            ``"stamp_ns"``) whose value is a real
            number or None in at least one sample; None counts as NaN, a metric missing from
            a sample counts as NaN there; other values (strings, bools, arrays) are ignored.

    Returns:
        ``{"overall": {metric: mean, ..., "count": n}, "per_class": {label: {...}, ...}}``,
        labels sorted, every group listing every metric. A mean follows ``numpy.nanmean``
        (NaN samples are skipped, as InteractVLM skips single-class samples for AUC / aIoU),
        but is None instead of NaN, with no warning, when the group has no valid value, so the
        result is valid JSON. ``count`` is the number of samples in the group (valid or not).
    """
    metrics: list[str] = []
    for sample in samples:
        for key, value in sample.items():
            if key in ("object_label", "count", "stamp_ns") or key in metrics:
                continue
            if _is_metric_value(value):
                metrics.append(key)

    def value_of(sample: Mapping[str, Any], key: str) -> float:
        value = sample.get(key)
        if value is None or not _is_metric_value(value):
            return math.nan
        return float(value)

    def group_summary(group: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {m: _mean_or_none(value_of(s, m) for s in group) for m in metrics}
        out["count"] = len(group)
        return out

    groups: dict[str, list[Mapping[str, Any]]] = {}
    for sample in samples:
        label = sample.get("object_label")
        groups.setdefault("unknown" if label is None else str(label), []).append(sample)
    return {
        "overall": group_summary(samples),
        "per_class": {label: group_summary(groups[label]) for label in sorted(groups)},
    }
