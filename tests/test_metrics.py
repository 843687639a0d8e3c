"""InteractVLM's metrics (interactvlm_ros.eval.metrics) and reports vs hand-computed values."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from interactvlm_ros.eval.metrics import (
    AIOU_THRESHOLDS,
    affordance_scores,
    contact_scores,
    geodesic_error,
    iou,
    mesh_geodesic_distances,
    roc_auc,
    summarize,
)
from interactvlm_ros.eval.report import (
    SAMPLE_FIGURE_SIZE_PX,
    per_class_size_px,
    project_points,
    sample_figure,
    write_report,
)

TOL = 1e-9


# ----------------------------------------------------------------------------- contact


def test_contact_perfect():
    gt = np.array([0, 1, 1, 0, 1], dtype=np.float32)
    scores = contact_scores(gt, gt)
    assert scores["precision"] == pytest.approx(1.0, abs=TOL)
    assert scores["recall"] == pytest.approx(1.0, abs=TOL)
    assert scores["f1"] == pytest.approx(1.0, abs=TOL)


def test_contact_thresholds_pred_ge_and_gt_gt_zero():
    # pred 0.5 counts (>=), 0.49 does not; GT 0.3 counts (> 0).
    pred = np.array([0.5, 0.49, 0.0])
    gt = np.array([0.3, 0.0, 0.0])
    scores = contact_scores(pred, gt)
    assert scores["precision"] == pytest.approx(1.0, abs=TOL)
    assert scores["recall"] == pytest.approx(1.0, abs=TOL)


def test_contact_empty_prediction_and_empty_gt_give_zero():
    gt = np.array([0, 1, 1, 0])
    empty = contact_scores(np.zeros(4), gt)
    assert empty == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    no_gt = contact_scores(np.array([0.9, 0.1, 0.7, 0.0]), np.zeros(4))
    assert no_gt == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    both = contact_scores(np.zeros(4), np.zeros(4))
    assert both == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_contact_disjoint():
    scores = contact_scores(np.array([1.0, 1.0, 0.0, 0.0]), np.array([0, 0, 1, 1]))
    assert scores["f1"] == 0.0 and scores["precision"] == 0.0 and scores["recall"] == 0.0


def test_contact_partial_by_hand():
    # 10 vertices; predicted {0, 1, 2}; GT {0, 1, 5, 6}: tp = 2, pp = 3, gp = 4.
    # P = 2/3, R = 2/4 = 1/2, F1 = 2 (1/3) / (2/3 + 1/2) = (2/3) / (7/6) = 4/7.
    pred = np.zeros(10)
    pred[[0, 1, 2]] = [0.9, 0.6, 0.5]
    pred[[3, 5]] = [0.4, 0.2]  # below the threshold
    gt = np.zeros(10)
    gt[[0, 1, 5, 6]] = 1
    scores = contact_scores(pred, gt)
    assert scores["precision"] == pytest.approx(2 / 3, abs=TOL)
    assert scores["recall"] == pytest.approx(1 / 2, abs=TOL)
    assert scores["f1"] == pytest.approx(4 / 7, abs=TOL)


def test_contact_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        contact_scores(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError):
        contact_scores(np.zeros((2, 2)), np.zeros((2, 2)))


# ----------------------------------------------------------------------------- geodesic


def path_distances(n: int = 5, spacing_m: float = 0.1) -> np.ndarray:
    """Distances on a path graph 0-1-...-(n-1) with edges of ``spacing_m`` metres."""
    index = np.arange(n)
    return spacing_m * np.abs(index[:, None] - index[None, :]).astype(np.float64)


def test_geodesic_error_path_graph_by_hand():
    d = path_distances()  # metres: d[i, j] = 0.1 |i - j|
    pred = np.array([0.9, 0.7, 0.1, 0.0, 0.2])  # predicted {0, 1}
    gt = np.array([0, 0, 0, 1, 0])  # GT {3}
    err = geodesic_error(pred, gt, d)
    # FP: predicted 0 -> 3 is 0.3 m, 1 -> 3 is 0.2 m; mean 0.25 m = 25 cm.
    assert err["fp_geodesic_cm"] == pytest.approx(25.0, abs=1e-9)
    # FN: GT 3 -> nearest predicted (1) is 0.2 m = 20 cm.
    assert err["fn_geodesic_cm"] == pytest.approx(20.0, abs=1e-9)
    # InteractVLM's validate swaps the arguments; with a binary prediction that orientation
    # would give 20 / 25 instead.
    swapped = geodesic_error(gt, (pred >= 0.5).astype(float), d)
    assert swapped["fp_geodesic_cm"] == pytest.approx(20.0, abs=1e-9)
    assert swapped["fn_geodesic_cm"] == pytest.approx(25.0, abs=1e-9)


def test_geodesic_error_empty_sets_use_all_vertices():
    d = path_distances()
    gt = np.array([0, 0, 0, 1, 0])
    # No prediction: rows = all vertices. FP = mean(0.3, 0.2, 0.1, 0, 0.1) = 0.14 m; FN = 0.
    no_pred = geodesic_error(np.zeros(5), gt, d)
    assert no_pred["fp_geodesic_cm"] == pytest.approx(14.0, abs=1e-9)
    assert no_pred["fn_geodesic_cm"] == pytest.approx(0.0, abs=1e-12)
    # No GT: columns = all vertices. Predicted {0, 1}: FP = 0;
    # FN = mean over columns of the distance to {0, 1} = (0 + 0 + 0.1 + 0.2 + 0.3) / 5 = 0.12 m.
    no_gt = geodesic_error(np.array([1.0, 1.0, 0, 0, 0]), np.zeros(5), d)
    assert no_gt["fp_geodesic_cm"] == pytest.approx(0.0, abs=1e-12)
    assert no_gt["fn_geodesic_cm"] == pytest.approx(12.0, abs=1e-9)
    both = geodesic_error(np.zeros(5), np.zeros(5), d)
    assert both == {"fp_geodesic_cm": 0.0, "fn_geodesic_cm": 0.0}
    perfect = geodesic_error(gt.astype(float), gt, d)
    assert perfect == {"fp_geodesic_cm": 0.0, "fn_geodesic_cm": 0.0}


def grid_mesh(spacing: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """3x3 vertices (2x2 unit squares scaled by ``spacing``), each square split by the diagonal
    (x, y)-(x+1, y+1). Vertex (x, y) has index 3 y + x.

    Shortest edge paths (in units of ``spacing``) between (x1, y1) and (x2, y2), dx = x2 - x1,
    dy = y2 - y1: when dx and dy have the same sign, min(|dx|, |dy|) diagonals of length
    sqrt(2) plus ||dx| - |dy|| axis edges; otherwise only axis edges, |dx| + |dy|.
    """
    xs, ys = np.meshgrid(np.arange(3), np.arange(3))
    vertices = np.stack([xs.ravel(), ys.ravel(), np.zeros(9)], axis=1) * spacing
    faces = []
    for y in range(2):
        for x in range(2):
            a, b, c, d = 3 * y + x, 3 * y + x + 1, 3 * (y + 1) + x, 3 * (y + 1) + x + 1
            faces += [[a, b, d], [a, d, c]]  # both triangles share the diagonal a-d
    return vertices, np.array(faces)


def grid_reference(spacing: float = 0.1) -> np.ndarray:
    ref = np.zeros((9, 9))
    for i in range(9):
        for j in range(9):
            dx, dy = j % 3 - i % 3, j // 3 - i // 3
            if dx * dy > 0:
                m = min(abs(dx), abs(dy))
                ref[i, j] = m * math.sqrt(2) + abs(abs(dx) - abs(dy))
            else:
                ref[i, j] = abs(dx) + abs(dy)
    return ref * spacing


def test_mesh_geodesic_distances_grid():
    vertices, faces = grid_mesh()
    d = mesh_geodesic_distances(vertices, faces)
    assert d.shape == (9, 9) and d.dtype == np.float32
    np.testing.assert_allclose(d, grid_reference(), atol=1e-6)
    # Spot checks: (0,0)->(2,2) two diagonals; (0,2)->(2,0) against the diagonals: 4 edges;
    # (0,0)->(2,1): one diagonal + one edge.
    assert d[0, 8] == pytest.approx(0.2 * math.sqrt(2), abs=1e-6)
    assert d[6, 2] == pytest.approx(0.4, abs=1e-6)
    assert d[0, 5] == pytest.approx(0.1 * (1 + math.sqrt(2)), abs=1e-6)
    # A subset of sources gives those rows.
    sub = mesh_geodesic_distances(vertices, faces, sources=[0, 4])
    assert sub.shape == (2, 9)
    np.testing.assert_allclose(sub, d[[0, 4]], atol=0)


def test_mesh_geodesic_distances_disconnected_is_inf():
    vertices, faces = grid_mesh()
    vertices = np.vstack([vertices, [[5.0, 5.0, 0.0]]])  # an isolated 10th vertex
    d = mesh_geodesic_distances(vertices, faces)
    assert np.isinf(d[0, 9]) and d[9, 9] == 0.0


def test_geodesic_error_on_grid_mesh():
    vertices, faces = grid_mesh(spacing=0.1)  # metres
    d = mesh_geodesic_distances(vertices, faces)
    pred = np.zeros(9)
    pred[0] = 1.0  # predicted {(0,0)}
    gt = np.zeros(9)
    gt[[8, 2]] = 1  # GT {(2,2), (2,0)}
    err = geodesic_error(pred, gt, d)
    # FP: (0,0) -> nearest of 2 sqrt(2) * 0.1 and 0.2 m = 0.2 m = 20 cm.
    assert err["fp_geodesic_cm"] == pytest.approx(20.0, abs=1e-4)
    # FN: mean(20 sqrt(2), 20) cm = 10 sqrt(2) + 10 cm.
    assert err["fn_geodesic_cm"] == pytest.approx(10 * math.sqrt(2) + 10, abs=1e-4)


# ----------------------------------------------------------------------------- affordance


def test_roc_auc_with_ties_by_hand():
    scores = np.array([0.1, 0.4, 0.4, 0.8, 0.4])
    labels = np.array([0, 0, 1, 1, 1])
    # positives {0.4, 0.8, 0.4}, negatives {0.1, 0.4}: 6 pairs. 0.4 beats 0.1 (1) and ties 0.4
    # (1/2); 0.8 beats both (2); the second 0.4 again 1.5. AUC = (1.5 + 2 + 1.5) / 6 = 5/6.
    assert roc_auc(scores, labels) == pytest.approx(5 / 6, abs=TOL)
    assert roc_auc(np.full(4, 0.3), [0, 1, 0, 1]) == pytest.approx(0.5, abs=TOL)
    assert math.isnan(roc_auc([0.1, 0.2], [1, 1]))
    assert math.isnan(roc_auc([0.1, 0.2], [0, 0]))


def test_roc_auc_matches_pair_count_on_random_data():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=60) / 4.0  # many ties
    labels = rng.random(60) < 0.4
    pos, neg = scores[labels], scores[~labels]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert roc_auc(scores, labels) == pytest.approx(pairs / (pos.size * neg.size), abs=TOL)


def test_iou_empty_union_is_zero():
    assert iou([False, False], [False, False]) == 0.0
    assert iou([True, True, False], [True, False, False]) == pytest.approx(0.5)


def test_affordance_perfect():
    gt = np.array([0.0, 0.0, 1.0, 1.0])
    s = affordance_scores(gt, gt)
    assert s["sim"] == pytest.approx(1.0, abs=TOL)
    assert s["mae"] == 0.0
    assert s["auc"] == pytest.approx(1.0, abs=TOL)
    # t = 0: every point predicted, IoU = 2/4; the 19 thresholds t > 0 give {2, 3}, IoU = 1.
    # aIoU = (0.5 + 19) / 20 = 0.975.
    assert s["aiou"] == pytest.approx(0.975, abs=TOL)


def test_affordance_four_points_by_hand():
    pred = np.array([0.0, 0.3, 0.6, 1.0])
    gt = np.array([0.0, 0.2, 0.5, 0.9])  # binarised (>= 0.5): {2, 3}
    s = affordance_scores(pred, gt)
    # aIoU over t_k = k/19, k = 0..19:
    #   k = 0 (t = 0): all 4 predicted, IoU 2/4 = 1/2;
    #   k = 1..5 (t <= 5/19 = 0.263 < 0.3): {1, 2, 3}, IoU 2/3;
    #   k = 6..11 (0.316 <= t <= 0.579 < 0.6): {2, 3}, IoU 1;
    #   k = 12..19 (0.632 <= t <= 1.0): {3}, IoU 1/2.
    #   aIoU = (1/2 + 5 * 2/3 + 6 * 1 + 8 * 1/2) / 20 = (83/6) / 20 = 83/120.
    assert s["aiou"] == pytest.approx(83 / 120, abs=TOL)
    # SIM: p / 1.9 = [0, .3, .6, 1] / 1.9, g / 1.6 = [0, .2, .5, .9] / 1.6;
    # minima: [0, min(.157895, .125) = .125, min(.315789, .3125) = .3125, min(.526316, .5625)]
    # = 0.125 + 0.3125 + 1/1.9.
    assert s["sim"] == pytest.approx(0.125 + 0.3125 + 1.0 / 1.9, abs=1e-9)
    # MAE = (0 + 0.1 + 0.1 + 0.1) / 4 = 0.075.
    assert s["mae"] == pytest.approx(0.075, abs=TOL)
    assert s["auc"] == pytest.approx(1.0, abs=TOL)


def test_affordance_float32_thresholds_follow_pred_precision():
    # float32(3/19) is just below 3/19 (by 6e-9). torch compares a float32 tensor with the
    # threshold in float32, so a float32 prediction equal to float32(3/19) passes t = 3/19.
    t32 = np.float32(3 / 19)
    assert float(t32) < 3 / 19
    pred = np.array([0.0, t32, 1.0, 1.0], dtype=np.float32)
    gt = np.array([0.0, 0.0, 1.0, 1.0])
    s = affordance_scores(pred, gt)
    # t = 0: IoU 2/4; t = 1/19, 2/19, 3/19: {1, 2, 3}, 2/3; t >= 4/19 (16 thresholds): 1.
    assert s["aiou"] == pytest.approx((0.5 + 3 * 2 / 3 + 16) / 20, abs=1e-12)
    # The same prediction in float64 misses t = 3/19.
    s64 = affordance_scores(pred.astype(np.float64), gt)
    assert s64["aiou"] == pytest.approx((0.5 + 2 * 2 / 3 + 17) / 20, abs=1e-12)
    assert AIOU_THRESHOLDS.shape == (20,) and AIOU_THRESHOLDS[-1] == 1.0


def test_affordance_empty_prediction():
    s = affordance_scores(np.zeros(4), np.array([0.0, 0.0, 1.0, 1.0]))
    assert s["sim"] == 0.0
    assert s["mae"] == pytest.approx(0.5, abs=TOL)
    assert s["auc"] == pytest.approx(0.5, abs=TOL)  # all scores tied
    assert s["aiou"] == pytest.approx(0.5 / 20, abs=TOL)  # only t = 0 overlaps


def test_affordance_empty_gt_gives_nan_auc_and_aiou():
    s = affordance_scores(np.array([0.2, 0.4, 0.0, 0.6]), np.zeros(4))
    assert s["sim"] == 0.0
    assert s["mae"] == pytest.approx(0.3, abs=TOL)
    assert math.isnan(s["auc"]) and math.isnan(s["aiou"])
    full = affordance_scores(np.array([0.2, 0.4]), np.array([0.7, 1.0]))
    assert math.isnan(full["auc"]) and math.isnan(full["aiou"])


def test_affordance_disjoint():
    s = affordance_scores(np.array([1.0, 1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0, 1.0]))
    assert s["sim"] == 0.0
    assert s["mae"] == pytest.approx(1.0, abs=TOL)
    assert s["auc"] == 0.0
    assert s["aiou"] == pytest.approx(0.5 / 20, abs=TOL)


# ----------------------------------------------------------------------------- summarize


SAMPLES = [
    {"object_label": "cup", "sample_id": "a", "f1": 0.5, "sim": float("nan")},
    {"object_label": "cup", "sample_id": "b", "f1": 1.0, "sim": float("nan")},
    {"object_label": "chair", "sample_id": "c", "f1": 0.0, "auc": 0.8, "sim": None},
]


def test_summarize_groups_and_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Mean of empty slice" warning
        summary = summarize(SAMPLES)
    assert summary["overall"] == {"f1": pytest.approx(0.5), "sim": None, "auc": pytest.approx(0.8),
                                  "count": 3}
    assert list(summary["per_class"]) == ["chair", "cup"]
    assert summary["per_class"]["cup"] == {"f1": pytest.approx(0.75), "sim": None, "auc": None,
                                           "count": 2}
    assert summary["per_class"]["chair"] == {"f1": 0.0, "sim": None, "auc": pytest.approx(0.8),
                                             "count": 1}
    json.dumps(summary, allow_nan=False)  # strict JSON


def test_summarize_skips_nan_like_interactvlm_valid_samples():
    # AUC averages over the valid samples only (InteractVLM's valid_samples).
    samples = [{"object_label": "bag", "auc": 0.6}, {"object_label": "bag", "auc": float("nan")},
               {"object_label": "bag", "auc": 1.0}]
    assert summarize(samples)["overall"]["auc"] == pytest.approx(0.8, abs=TOL)
    assert summarize([]) == {"overall": {"count": 0}, "per_class": {}}


# ----------------------------------------------------------------------------- report


def test_write_report_and_sample_figure(tmp_path):
    from PIL import Image

    summary = summarize(SAMPLES)
    paths = write_report(tmp_path / "out", summary, SAMPLES, weights_are_random=True,
                         model_id="interactvlm-test")
    assert paths["report"].is_file() and paths["per_class"].is_file()
    document = json.loads(paths["report"].read_text(encoding="utf-8"))
    assert document["summary"] == summary  # exact numbers
    assert document["model_id"] == "interactvlm-test"
    assert document["weights_are_random"] is True
    assert "meaningless" in document["note"]
    assert document["per_sample"][0]["sim"] is None  # NaN stored as null
    assert document["per_sample"][2]["auc"] == 0.8
    with Image.open(paths["per_class"]) as png:
        assert png.size == per_class_size_px(len(summary["per_class"]) + 1)
        assert "RANDOM WEIGHTS" in png.text.get("Title", "")

    trained = write_report(tmp_path / "trained", summary, SAMPLES, weights_are_random=False,
                           model_id="m")
    assert "meaningless" not in json.loads(trained["report"].read_text())["note"]

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, size=(60, 80, 3), dtype=np.uint8)
    render = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    out = sample_figure(tmp_path / "figs" / "s.png", image, render, None, "sample a", True)
    assert out.is_file()
    with Image.open(out) as png:
        assert png.size == SAMPLE_FIGURE_SIZE_PX
        assert png.text.get("Title", "").startswith("RANDOM WEIGHTS")
    with pytest.raises(ValueError):
        sample_figure(tmp_path / "bad.png", image.astype(np.float32), None, None, "t", False)


def test_project_points_by_hand():
    """u = fx x / z + s y / z + cx, v = fy y / z + cy (CameraInfo's K); no image behind the camera."""
    k = [500.0, 0.0, 319.5, 0.0, 400.0, 239.5, 0.0, 0.0, 1.0]
    points = [[0.2, -0.1, 2.0], [0.0, 0.0, 1.0], [0.3, 0.3, 0.0], [0.1, 0.1, -1.0]]
    pixels = project_points(points, k)
    np.testing.assert_allclose(pixels[:2], [[369.5, 219.5], [319.5, 239.5]])
    assert np.isnan(pixels[2:]).all()  # on the camera's plane, behind it
    skewed = project_points([[0.2, -0.1, 2.0]], np.array([[500.0, 10.0, 319.5], [0.0, 400.0, 239.5], [0, 0, 1]]))
    np.testing.assert_allclose(skewed, [[369.0, 219.5]])
    for bad, message in (([1.0] * 8, "9 finite numbers"), ([0.0] * 9, "positive focal lengths"),
                         ([500.0, 0, 1, 0, 400.0, 1, 0, 1, 1], "last row"), ([np.nan] + k[1:], "finite")):
        with pytest.raises(ValueError, match=message):
            project_points(points, bad)
    with pytest.raises(ValueError, match=r"points must be \(N, 3\)"):
        project_points([[1.0, 2.0]], k)
