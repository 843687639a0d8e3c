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
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "DPI",
    "PEOPLE_FIGURE_SIZE_PX",
    "PER_CLASS_METRICS",
    "RANDOM_CONTACT_BANNER",
    "RANDOM_WEIGHTS_BANNER",
    "SAMPLE_FIGURE_SIZE_PX",
    "FigureObject",
    "FigurePerson",
    "people_figure",
    "per_class_size_px",
    "project_points",
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
#: Title text of :func:`people_figure` with randomly initialised weights: the pose and the
#: placement do not come from the model, the contact colours do.
RANDOM_CONTACT_BANNER = "RANDOM WEIGHTS: contact meaningless"
#: (width, height) in pixels of :func:`people_figure`'s PNG.
PEOPLE_FIGURE_SIZE_PX = (1400, 700)

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


# --------------------------------------------------------------------------------------------
# People in the camera frame


def project_points(points: Any, k: Any) -> np.ndarray:
    """Pixels of points in a camera's optical frame (x right, y down, z forward) through its
    intrinsic matrix: ``u = fx x / z + cx``, ``v = fy y / z + cy`` (plus K's skew term).

    Args:
        points: (N, 3) metres in the optical frame.
        k: (3, 3) or 9 values row-major, pixels (CameraInfo.k: a pixel's centre at integer
            coordinates).

    Returns:
        (N, 2) float64 pixels (x column, y row); NaN for points at or behind the camera
        (z <= 0), which have no image.

    Raises:
        ValueError: points not (N, 3); K not 9 finite numbers with positive focal lengths and
            last row (0, 0, 1).
    """
    xyz = np.asarray(points, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"points must be (N, 3), got shape {xyz.shape}")
    matrix = _check_k(k)
    z = xyz[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        pixels = (xyz @ matrix.T)[:, :2] / z[:, None]
    pixels[~(z > 0)] = np.nan
    return pixels


def _check_k(k: Any) -> np.ndarray:
    matrix = np.asarray(k, dtype=np.float64)
    if matrix.size != 9 or not np.isfinite(matrix).all():
        raise ValueError(f"K must be 9 finite numbers (3x3 row-major), got {matrix.size} values")
    matrix = matrix.reshape(3, 3)
    if not (matrix[0, 0] > 0 and matrix[1, 1] > 0) or not np.array_equal(matrix[2], [0.0, 0.0, 1.0]):
        raise ValueError(f"K must have positive focal lengths and last row (0, 0, 1), got {matrix.tolist()}")
    return matrix


@dataclass(frozen=True)
class FigurePerson:
    """One person of :func:`people_figure` (what interactvlm_msgs/Person and the contact of its
    objects carry).

    Attributes:
        detection_id: the person detection's id.
        landmark_pixels: (L, 2) pixels of the image; landmark_visibility: (L,) in [0, 1].
        placement_method: how the landmarks were placed ("depth", "pnp", ...; "" not placed).
        vertices: (V, 3) metres in the optical frame, the posed body, or None (not posed).
        faces: (F, 3) vertex ids of the body's triangles, or None (drawn as points then).
        contact: (V,) contact probability in [0, 1] per vertex, or None (no contact map).
        contact_of: what ``contact`` is the contact with (the object labels), for the caption.
    """

    detection_id: str
    landmark_pixels: np.ndarray
    landmark_visibility: np.ndarray
    placement_method: str = ""
    vertices: np.ndarray | None = None
    faces: np.ndarray | None = None
    contact: np.ndarray | None = None
    contact_of: str = ""


@dataclass(frozen=True)
class FigureObject:
    """One object of :func:`people_figure`.

    Attributes:
        detection_id, label: the object detection's id and class.
        box: its box, xyxy pixels of the image.
        points: (N, 3) metres in the optical frame (objects from registered depth, or placed by
            their contact), or None: its distance is unknown, the rays of its box are drawn
            instead.
        affordance: (N,) in [0, 1] per point, or None.
        placement: ``ObjectAffordance.placement`` ("depth", "contact_fit", "").
        fit_status: ``ObjectAffordance.fit_status`` (why a contact fit was not used), "" without.
    """

    detection_id: str
    label: str
    box: Sequence[float]
    points: np.ndarray | None = None
    affordance: np.ndarray | None = None
    placement: str = ""
    fit_status: str = ""


#: Colour of a posed body without a contact map, and of the landmarks.
_BODY_RGB = (0.3, 0.75, 1.0)
_LANDMARK_RGB = (0.2, 1.0, 0.3)
#: Posed vertices drawn at most in the 3D view (every n-th; matplotlib's 3D scatter is slow).
_MAX_3D_POINTS = 4000


def _contact_rgb(values: np.ndarray) -> np.ndarray:
    from matplotlib import colormaps

    return colormaps["inferno"](np.clip(np.nan_to_num(values), 0.0, 1.0))[:, :3]


def _vertex_rgb(person: FigurePerson) -> np.ndarray:
    if person.contact is None:
        return np.tile(_BODY_RGB, (len(person.vertices), 1))
    return _contact_rgb(person.contact)


def _check_person(person: FigurePerson) -> None:
    pixels = np.asarray(person.landmark_pixels)
    if pixels.ndim != 2 or pixels.shape[1] != 2 or len(np.asarray(person.landmark_visibility)) != len(pixels):
        raise ValueError(f"person {person.detection_id!r}: landmark_pixels must be (L, 2) with L visibilities, got "
                         f"{pixels.shape} and {np.shape(person.landmark_visibility)}")
    if person.vertices is None:
        return
    vertices = np.asarray(person.vertices)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or not np.isfinite(vertices).all():
        raise ValueError(f"person {person.detection_id!r}: vertices must be (V, 3) finite metres, got {vertices.shape}")
    if person.contact is not None and np.shape(person.contact) != (len(vertices),):
        raise ValueError(f"person {person.detection_id!r}: {np.shape(person.contact)} contact values for "
                         f"{len(vertices)} vertices")
    if person.faces is not None:
        faces = np.asarray(person.faces)
        if faces.ndim != 2 or faces.shape[1] != 3 or (faces.size and (faces.min() < 0 or faces.max() >= len(vertices))):
            raise ValueError(f"person {person.detection_id!r}: faces must be (F, 3) ids of its {len(vertices)} "
                             f"vertices, got {faces.shape}")


def _draw_body_on_image(axes, person: FigurePerson, k: np.ndarray) -> None:
    """The posed body through K: its triangles facing the camera, far ones first, translucent
    and shaded by their angle to the line of sight; points when the faces are unknown."""
    vertices = np.asarray(person.vertices, np.float64)
    colors = _vertex_rgb(person)
    pixels = project_points(vertices, k)
    if person.faces is None:
        seen = np.isfinite(pixels[:, 0])
        axes.scatter(pixels[seen, 0], pixels[seen, 1], s=0.5, c=colors[seen], alpha=0.5, linewidths=0)
        return
    from matplotlib.collections import PolyCollection

    faces = np.asarray(person.faces, np.int64)
    corners = vertices[faces]  # (F, 3, 3)
    centres = corners.mean(axis=1)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    lengths = np.linalg.norm(normals, axis=1) * np.linalg.norm(centres, axis=1)
    facing = -np.einsum("ij,ij->i", normals, centres) / np.where(lengths > 0, lengths, 1.0)  # cos to the camera
    keep = (facing > 0) & (centres[:, 2] > 0) & np.isfinite(pixels[faces]).all(axis=(1, 2))
    order = np.flatnonzero(keep)[np.argsort(-centres[keep, 2], kind="stable")]  # far first (painter's)
    shade = 0.45 + 0.55 * facing[order, None]
    rgba = np.concatenate([colors[faces[order]].mean(axis=1) * shade, np.full((len(order), 1), 0.55)], axis=1)
    axes.add_collection(PolyCollection(pixels[faces[order]], facecolors=rgba, edgecolors="none"))


def _image_panel(axes, image: np.ndarray, k: np.ndarray, persons, objects) -> None:
    from matplotlib.patches import Rectangle

    height, width = image.shape[:2]
    axes.imshow(image)
    for person in persons:
        if person.vertices is not None and len(person.vertices):
            _draw_body_on_image(axes, person, k)
        pixels, visible = np.asarray(person.landmark_pixels), np.asarray(person.landmark_visibility) >= 0.5
        if len(pixels):
            axes.scatter(pixels[visible, 0], pixels[visible, 1], s=14, color=_LANDMARK_RGB, edgecolors="black",
                         linewidths=0.4, label=f"landmarks of {person.detection_id} (visible)", zorder=3)
            axes.scatter(pixels[~visible, 0], pixels[~visible, 1], s=14, facecolors="none", edgecolors=_LANDMARK_RGB,
                         linewidths=0.8, label=f"landmarks of {person.detection_id} (hidden)", zorder=3)
    for obj in objects:
        x0, y0, x1, y1 = obj.box
        axes.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="yellow", linewidth=1.2,
                                 label=f"{obj.label} {obj.detection_id}"))
    axes.set_xlim(-0.5, width - 0.5)
    axes.set_ylim(height - 0.5, -0.5)
    axes.set_xticks([])
    axes.set_yticks([])
    if persons or objects:
        axes.legend(loc="lower left", fontsize=6, framealpha=0.6)


def _box_rays(box: Sequence[float], k: np.ndarray) -> np.ndarray:
    """(4, 3) unit directions from the camera through the corners of a box (xyxy pixels)."""
    x0, y0, x1, y1 = box
    corners = np.array([[x0, y0, 1.0], [x1, y0, 1.0], [x1, y1, 1.0], [x0, y1, 1.0]])
    rays = corners @ np.linalg.inv(k).T
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def _space_panel(axes, image_size: tuple[int, int], k: np.ndarray, persons, objects) -> list[str]:
    """The optical frame in 3D: plot axes (x, z, y) so that forward goes into the picture and
    y (down) is drawn downwards. Returns the notes for the caption."""
    width, height = image_size
    notes = []
    drawn = [np.zeros((1, 3))]
    posed = [p for p in persons if p.vertices is not None and len(p.vertices)]
    far = max((float(np.max(p.vertices[:, 2])) for p in posed), default=2.0)
    for person in posed:
        step = -(-len(person.vertices) // _MAX_3D_POINTS)  # ceil: at most _MAX_3D_POINTS
        points, colors = np.asarray(person.vertices)[::step], _vertex_rgb(person)[::step]
        axes.scatter(points[:, 0], points[:, 2], points[:, 1], s=1.5, c=colors, depthshade=False, linewidths=0,
                     label=f"person {person.detection_id} ({person.placement_method})")
        drawn.append(points)
    for obj in objects:
        if obj.points is not None and len(obj.points):
            points = np.asarray(obj.points)
            colors = _contact_rgb(obj.affordance) if obj.affordance is not None else "yellow"
            axes.scatter(points[:, 0], points[:, 2], points[:, 1], s=4.0, c=colors, depthshade=False, linewidths=0,
                         label=f"{obj.label} {obj.detection_id} ({obj.placement or 'depth'})")
            drawn.append(points)
            continue
        ends = _box_rays(obj.box, k) * far * 1.2
        for index, end in enumerate(ends):
            axes.plot([0, end[0]], [0, end[2]], [0, end[1]], color="gold", linewidth=0.8, linestyle="--",
                      label=f"{obj.label} {obj.detection_id}: rays of its box" if index == 0 else None)
        drawn.append(ends)
        why = f"contact fit {obj.fit_status}" if obj.fit_status else "no depth, no contact fit"
        notes.append(f"{obj.label} {obj.detection_id}: not placed ({why[:90]}): the rays of its box")
    # The camera: a small frustum at the origin, a tenth of the scene's depth deep.
    depth = max(0.1, 0.1 * far)
    corners = _box_rays((-0.5, -0.5, width - 0.5, height - 0.5), k)
    corners = corners / corners[:, 2:3] * depth
    for corner in corners:
        axes.plot([0, corner[0]], [0, corner[2]], [0, corner[1]], color="black", linewidth=1.0)
    loop = np.vstack([corners, corners[:1]])
    axes.plot(loop[:, 0], loop[:, 2], loop[:, 1], color="black", linewidth=1.0, label="camera (origin)")
    everything = np.vstack(drawn)
    centre = (everything.max(axis=0) + everything.min(axis=0)) / 2
    half = max(float((everything.max(axis=0) - everything.min(axis=0)).max()) / 2, 0.5)
    axes.set_xlim(centre[0] - half, centre[0] + half)
    axes.set_ylim(centre[2] - half, centre[2] + half)
    axes.set_zlim(centre[1] + half, centre[1] - half)  # y grows downwards
    axes.set_box_aspect((1, 1, 1))
    axes.set_xlabel("x (m, right)", fontsize=8)
    axes.set_ylabel("z (m, forward)", fontsize=8)
    axes.set_zlabel("y (m, down)", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.view_init(elev=20, azim=-60)
    axes.legend(loc="upper left", fontsize=6, framealpha=0.6)
    return notes


def people_figure(path: str | Path, image: Any, k: Any, persons: Sequence[FigurePerson],
                  objects: Sequence[FigureObject], title: str, weights_are_random: bool, note: str = "") -> Path:
    """The people of one image in its camera's optical frame, as a two-panel PNG: the image with
    each posed body projected through ``k`` (translucent triangles facing the camera, or points
    without faces; coloured by its contact, inferno, else light blue), its landmarks (filled:
    visibility >= 0.5) and the boxes; and a 3D view (metres; x right, y down, z forward) of the
    posed bodies (every n-th vertex, at most 4000), the camera at the origin as a small
    frustum, and each object: its points where they are in the optical frame (objects from
    depth), otherwise the rays of its box from the camera (its distance is unknown).

    Args:
        path: output PNG path (its folder is created if missing).
        image: (H, W, 3) uint8 RGB.
        k: the image's 3x3 intrinsic matrix (pixels, CameraInfo.k).
        persons / objects: what to draw (:class:`FigurePerson`, :class:`FigureObject`).
        title: figure title; prefixed with :data:`RANDOM_CONTACT_BANNER` (in red) when
            ``weights_are_random`` (the contact colours are then noise; pose and placement are
            not the model's).
        note: a caption line (e.g. where the intrinsics came from).

    The PNG is :data:`PEOPLE_FIGURE_SIZE_PX` pixels. Returns the written path.

    Raises:
        ValueError: an image that is not (H, W, 3) uint8, a bad K (see :func:`project_points`),
            a person's arrays of inconsistent shapes.
    """
    image = _check_rgb("image", image)
    if image is None:
        raise ValueError("image is required")
    matrix = _check_k(k)
    for person in persons:
        _check_person(person)
    full_title = f"{RANDOM_CONTACT_BANNER}: {title}" if weights_are_random else title
    figure = _new_figure(PEOPLE_FIGURE_SIZE_PX)
    left = figure.add_axes((0.01, 0.1, 0.47, 0.8))
    _image_panel(left, image, matrix, persons, objects)
    left.set_title("posed bodies through K, landmarks, boxes", fontsize=10)
    right = figure.add_axes((0.5, 0.06, 0.49, 0.86), projection="3d")
    notes = _space_panel(right, (image.shape[1], image.shape[0]), matrix, persons, objects)
    right.set_title("camera optical frame (metres)", fontsize=10)
    contact_with = sorted({p.contact_of for p in persons if p.vertices is not None and p.contact is not None})
    notes.append("body colour: contact with " + ", ".join(contact_with) + " (inferno: 0 black, 1 yellow)"
                 if contact_with else "body colour: no contact map")
    unposed = [p.detection_id for p in persons if p.vertices is None]
    if unposed:
        notes.append("not posed: " + ", ".join(unposed))
    if note:
        notes.insert(0, note)
    figure.text(0.01, 0.01, "\n".join(notes), fontsize=8, va="bottom")
    figure.suptitle(full_title, color="red" if weights_are_random else "black")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    _save(figure, out, full_title)
    return out
