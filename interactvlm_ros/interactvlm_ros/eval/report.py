"""Evaluation reports: ``report.json``, a per-class bar chart and per-sample figures.

Matplotlib is used headless and without global state: every figure is a
``matplotlib.figure.Figure`` with its own ``FigureCanvasAgg`` (no ``pyplot``, no
``matplotlib.use``), so this module is safe inside a ROS node or alongside other plotting.
Pixel sizes are fixed (:data:`SAMPLE_FIGURE_SIZE_PX`, :func:`per_class_size_px`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "DPI",
    "PER_CLASS_METRICS",
    "RANDOM_WEIGHTS_BANNER",
    "SAMPLE_FIGURE_SIZE_PX",
    "per_class_size_px",
    "sample_figure",
    "to_json_compatible",
    "write_report",
]

#: Dots per inch of every figure (sizes below are chosen so inches * DPI is exact).
DPI = 100
#: (width, height) in pixels of :func:`sample_figure`'s PNG.
SAMPLE_FIGURE_SIZE_PX = (1200, 450)
#: Metrics drawn in ``per_class.png``, with their legend names, when any group has them.
PER_CLASS_METRICS = (("f1", "contact F1"), ("sim", "affordance SIM"), ("auc", "affordance AUC"))
#: Title text of every figure made from randomly initialised weights.
RANDOM_WEIGHTS_BANNER = "RANDOM WEIGHTS \u2014 meaningless"

_NOTE_RANDOM = ("The model weights are RANDOM (no trained InteractVLM checkpoint was loaded): "
                "every prediction and metric in this report is meaningless; it only shows that "
                "the pipeline runs end to end.")
_NOTE_TRAINED = ("Metrics follow InteractVLM's utils/eval_utils.py (see "
                 "interactvlm_ros.eval.metrics for formulas and deviations); means skip NaN "
                 "samples and null marks a metric with no valid sample.")


def to_json_compatible(value: Any) -> Any:
    """``value`` with numpy scalars / arrays, Paths and tuples made JSON types; NaN / inf -> None.

    Mapping keys become strings. The result serialises with ``json.dumps(allow_nan=False)``.
    """
    if isinstance(value, Mapping):
        return {str(k): to_json_compatible(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_compatible(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json_compatible(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in a JSON report")


def per_class_size_px(num_groups: int) -> tuple[int, int]:
    """(width, height) in pixels of ``per_class.png`` for ``num_groups`` bar groups.

    ``num_groups`` counts the classes plus the "overall" group. The width grows by 50 px per
    group from a minimum of 900 px up to 6000 px; the height is 500 px.
    """
    width = min(max(900, 200 + 50 * int(num_groups)), 6000)
    return width, 500


def _new_figure(size_px: tuple[int, int]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(size_px[0] / DPI, size_px[1] / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path, title: str) -> None:
    # No bbox_inches="tight": the PNG keeps exactly the figure's pixel size.
    figure.savefig(path, format="png", dpi=DPI, metadata={"Title": title})


def _per_class_figure(path: Path, summary: Mapping[str, Any], weights_are_random: bool,
                      model_id: str) -> None:
    per_class = dict(summary.get("per_class") or {})
    groups = list(per_class.items())
    if summary.get("overall") is not None:
        groups.append(("overall", summary["overall"]))

    def value(group: Mapping[str, Any], key: str) -> float | None:
        v = group.get(key)
        if v is None or isinstance(v, bool):
            return None
        v = float(v)
        return v if math.isfinite(v) else None

    metrics = [(key, name) for key, name in PER_CLASS_METRICS
               if any(value(g, key) is not None for _, g in groups)]
    title = f"Per-class metrics \u2014 {model_id}"
    if weights_are_random:
        title = f"{RANDOM_WEIGHTS_BANNER}: {title}"

    figure = _new_figure(per_class_size_px(len(groups)))
    axes = figure.add_subplot(1, 1, 1)
    if not metrics or not groups:
        axes.text(0.5, 0.5, "no contact F1 / affordance SIM / AUC values", ha="center",
                  va="center", transform=axes.transAxes)
        axes.set_axis_off()
    else:
        x = np.arange(len(groups), dtype=np.float64)
        width = 0.8 / len(metrics)
        for i, (key, name) in enumerate(metrics):
            heights = [value(g, key) for _, g in groups]
            axes.bar(x + (i - (len(metrics) - 1) / 2.0) * width,
                     [np.nan if h is None else h for h in heights], width, label=name)
        axes.set_xticks(x)
        axes.set_xticklabels([f"{label}\n(n={g.get('count', '?')})" for label, g in groups],
                             rotation=45 if len(groups) > 8 else 0,
                             ha="right" if len(groups) > 8 else "center", fontsize=8)
        axes.set_ylim(0.0, 1.05)
        axes.set_ylabel("mean over samples")
        axes.grid(axis="y", alpha=0.3)
        axes.legend(loc="upper right", fontsize=8)
    figure.suptitle(title, color="red" if weights_are_random else "black")
    figure.subplots_adjust(bottom=0.25, top=0.88, left=0.08, right=0.98)
    _save(figure, path, title)


def write_report(directory: str | Path, summary: Mapping[str, Any],
                 per_sample: Sequence[Mapping[str, Any]], weights_are_random: bool,
                 model_id: str) -> dict[str, Path]:
    """Write ``report.json`` and ``per_class.png`` into ``directory`` (created if missing).

    Args:
        directory: output folder.
        summary: :func:`interactvlm_ros.eval.metrics.summarize`'s result
            (``{"overall": {...}, "per_class": {label: {...}}}``).
        per_sample: one mapping per sample (ids, object label, metric values).
        weights_are_random: True when the model ran with random weights (no checkpoint).
        model_id: the model / checkpoint name, stored verbatim.

    ``report.json`` holds ``{"model_id", "weights_are_random", "note", "summary",
    "per_sample"}``; ``note`` says the outputs are meaningless when the weights are random.
    Values go through :func:`to_json_compatible` (NaN / inf become null), so the file is strict
    JSON. ``per_class.png`` (:func:`per_class_size_px` pixels) is a grouped bar chart of the
    mean contact F1 and affordance SIM / AUC (those present) per class and overall; its title
    starts with :data:`RANDOM_WEIGHTS_BANNER` when ``weights_are_random``.

    Returns:
        ``{"report": <directory>/report.json, "per_class": <directory>/per_class.png}``.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "model_id": str(model_id),
        "weights_are_random": bool(weights_are_random),
        "note": _NOTE_RANDOM if weights_are_random else _NOTE_TRAINED,
        "summary": to_json_compatible(summary),
        "per_sample": to_json_compatible(list(per_sample)),
    }
    report_path = out / "report.json"
    report_path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n",
                           encoding="utf-8")
    chart_path = out / "per_class.png"
    _per_class_figure(chart_path, summary, bool(weights_are_random), str(model_id))
    return {"report": report_path, "per_class": chart_path}


def _check_rgb(name: str, image: Any) -> np.ndarray | None:
    if image is None:
        return None
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"{name} must be (H, W, 3) uint8, got {array.shape} {array.dtype}")
    return array


def sample_figure(path: str | Path, image: Any, body_render: Any | None,
                  object_render: Any | None, title: str, weights_are_random: bool,
                  boxes: Sequence[tuple[Sequence[float], str, str]] = (), contact_title: str = "human contact",
                  extra_panels: Sequence[tuple[str, Any]] = ()) -> Path:
    """Lay out one sample as a 1x3 panel PNG: input image, body render, object render (and
    one panel more per ``extra_panels`` entry).

    Args:
        path: output PNG path (its folder is created if missing).
        image: (H, W, 3) uint8 RGB input image.
        body_render: (S, S, 3) uint8 RGB render of the body with the predicted contact (or, for
            a 2D contact model, the image with its contact map), or None (the panel then says
            "not available").
        object_render: (S, S, 3) uint8 RGB render of the object with the predicted
            affordance, or None.
        title: figure title; prefixed with :data:`RANDOM_WEIGHTS_BANNER` (in red) when
            ``weights_are_random``.
        weights_are_random: True when the model ran with random weights.
        boxes: rectangles drawn on the input image: (xyxy in its pixels, matplotlib colour,
            legend label), e.g. the detection, its person and the region the model saw.
        contact_title: the second panel's title.
        extra_panels: (title, (S, S, 3) uint8 RGB picture) drawn after the object render, e.g.
            the object's contact map and its grasp clearance.

    The renders are made by the caller; this function only lays them out. The PNG is
    :data:`SAMPLE_FIGURE_SIZE_PX` pixels, 400 wider per extra panel. Returns the written path.
    """
    panels = [("input image", _check_rgb("image", image)),
              (contact_title, _check_rgb("body_render", body_render)),
              ("object affordance", _check_rgb("object_render", object_render))]
    panels += [(name, _check_rgb(name, array)) for name, array in extra_panels]
    if panels[0][1] is None:
        raise ValueError("image is required")
    full_title = f"{RANDOM_WEIGHTS_BANNER}: {title}" if weights_are_random else title
    figure = _new_figure((SAMPLE_FIGURE_SIZE_PX[0] + 400 * len(extra_panels), SAMPLE_FIGURE_SIZE_PX[1]))
    for i, (name, array) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), i + 1)
        if array is None:
            axes.text(0.5, 0.5, "not available", ha="center", va="center",
                      transform=axes.transAxes, color="gray")
        else:
            axes.imshow(array)
        if i == 0 and boxes:
            from matplotlib.patches import Rectangle

            for (x0, y0, x1, y1), color, label in boxes:
                axes.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=color, linewidth=1.5,
                                         label=label))
            axes.legend(loc="lower left", fontsize=6, framealpha=0.6)
        axes.set_title(name, fontsize=10)
        axes.set_xticks([])
        axes.set_yticks([])
    figure.suptitle(full_title, color="red" if weights_are_random else "black")
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.85, wspace=0.04)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    _save(figure, out, full_title)
    return out
