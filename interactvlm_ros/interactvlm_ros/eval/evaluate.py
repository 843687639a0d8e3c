"""Scoring pipeline outputs against ground truth, and pictures of a few samples.

No ROS imports: inputs are ``pipeline.EstimateResult`` objects keyed by image stamp, and
ground truth from :mod:`.groundtruth`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..geometry.camera import BODY_VIEWS, OBJECT_VIEWS, ViewSpec, view_camera
from ..geometry.mesh import TriangleMesh
from ..geometry.objects import normalize_points
from ..render.views import POINT_VIEWS, Renderer, alpha_composite
from .groundtruth import GroundTruthSample
from .metrics import affordance_scores, contact_scores, geodesic_error, summarize

#: Body topologies that share vertex ids (SMPL's 6890-vertex body is SMPL-H's).
SAME_TOPOLOGY = ({"smpl", "smplh"},)


def _same_body(predicted: str, truth: str) -> bool:
    return predicted == truth or any({predicted, truth} <= group for group in SAME_TOPOLOGY)


def score(outputs: Sequence[tuple[int, object]], ground_truth: Mapping[tuple[int, str], GroundTruthSample],
          geodesic_distances: np.ndarray | None = None, threshold: float = 0.5) -> tuple[dict, list[dict]]:
    """Per-sample metrics for every prediction with ground truth, then the summary.

    Args:
        outputs: (image stamp ns, EstimateResult) per processed image.
        ground_truth: from ``load_ground_truth``, keyed by (stamp, detection id).
        geodesic_distances: optional (V, V) metres on the body, for the geodesic error.
        threshold: contact decision threshold (InteractVLM: 0.5).

    Returns:
        (summary as ``metrics.summarize``, per-sample dicts with ids, label, metrics and, when
        a part could not be scored, a ``not_scored`` reason).
    """
    samples = []
    for stamp, estimate in outputs:
        for interaction in estimate.interactions:
            truth = ground_truth.get((stamp, interaction.detection.id))
            if truth is None:
                continue
            sample = {"stamp_ns": stamp, "detection_id": interaction.detection.id, "object_label": truth.object_label}
            reasons = []
            contact = interaction.human_contact
            if truth.contact is not None:
                if contact is None:
                    reasons.append("no contact model")
                elif not _same_body(contact.body_model, truth.body_model) or len(
                        contact.vertex_probabilities) != len(truth.contact):
                    reasons.append(f"contact predicted on {contact.body_model!r} ({len(contact.vertex_probabilities)} "
                                   f"vertices), ground truth on {truth.body_model!r} ({len(truth.contact)})")
                else:
                    sample.update(contact_scores(contact.vertex_probabilities, truth.contact, threshold))
                    if geodesic_distances is not None:
                        sample.update(geodesic_error(contact.vertex_probabilities, truth.contact, geodesic_distances,
                                                     threshold))
            affordance = interaction.object_affordance
            if truth.affordance is not None:
                if affordance is None:
                    reasons.append("no affordance model or no geometry")
                elif len(affordance.probabilities) != len(truth.affordance):
                    reasons.append(f"affordance on {len(affordance.probabilities)} points, ground truth on "
                                   f"{len(truth.affordance)}")
                else:
                    sample.update(affordance_scores(affordance.probabilities, truth.affordance))
            if reasons:
                sample["not_scored"] = "; ".join(reasons)
            samples.append(sample)
    return summarize(samples), samples


def _colormap(values: np.ndarray) -> np.ndarray:
    from matplotlib import colormaps

    return colormaps["inferno"](np.clip(np.nan_to_num(values), 0.0, 1.0))[:, :3].astype(np.float32)


def body_picture(renderer: Renderer, body: TriangleMesh, probabilities: np.ndarray, size: int = 384,
                 view: ViewSpec = BODY_VIEWS[0]) -> np.ndarray:
    """(size, size, 3) uint8: the body from ``view`` coloured by contact probability (inferno)."""
    return renderer.render_mesh(body, [view], size, _colormap(probabilities))[0].color


def object_picture(renderer: Renderer, points: np.ndarray, probabilities: np.ndarray, faces: np.ndarray | None,
                   size: int = 384) -> np.ndarray:
    """(size, size, 3) uint8: the object coloured by affordance probability: a mesh (faces given)
    from the first object view, or a point cloud as splats from the first point view."""
    normalized = normalize_points(points)[0]
    colors = _colormap(probabilities)
    if faces is not None and len(faces):
        mesh = TriangleMesh(normalized * 0.5, faces)  # unit radius -> fits the object views like a unit box
        return renderer.render_mesh(mesh, [OBJECT_VIEWS[0]], size, colors)[0].color
    camera = view_camera(POINT_VIEWS[0], size)
    layers = renderer.rasterizer.rasterize_points(normalized, camera, 0.02, 4)
    return alpha_composite(layers, normalized, colors, camera, 0.02)


def contact_overlay(image: np.ndarray, probabilities: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """A 2D contact map drawn on its image: each pixel blended towards red by ``alpha`` times
    its probability. image: (H, W, 3) uint8 RGB; probabilities: (H, W) in [0, 1]. Returns
    (H, W, 3) uint8."""
    weight = alpha * np.clip(np.asarray(probabilities, np.float32), 0.0, 1.0)[..., None]
    red = np.array([255.0, 38.0, 25.0], np.float32)  # InteractVLM's demo mask colour (1.0, 0.15, 0.10)
    return np.round(image.astype(np.float32) * (1.0 - weight) + red * weight).astype(np.uint8)


def sample_pictures(renderer: Renderer, estimator, interaction, size: int = 384, image: np.ndarray | None = None):
    """(contact picture or None, object picture or None) of one pipeline interaction: the body
    rendered with its contact, or for a 2D contact model its map on ``image`` (None without
    the image)."""
    body = None
    contact = interaction.human_contact
    if contact is not None and contact.image_probabilities is not None:
        if image is not None:
            body = contact_overlay(image, contact.image_probabilities)
    elif contact is not None and estimator.smplx_matrix is None:
        body = body_picture(renderer, estimator.body, contact.vertex_probabilities, size)
    picture = None
    affordance = interaction.object_affordance
    if affordance is not None and len(affordance.points):
        picture = object_picture(renderer, affordance.points, affordance.probabilities,
                                 _object_faces(estimator, interaction), size)
    return body, picture


def _object_faces(estimator, interaction):
    geometry = estimator.objects.get(interaction.detection.label)
    affordance = interaction.object_affordance
    if geometry is not None and affordance is not None and geometry.source == affordance.geometry_source:
        return geometry.mesh.faces
    return None


def object_map_pictures(renderer: Renderer, estimator, interaction, size: int = 384) -> list[tuple[str, np.ndarray]]:
    """(title, picture) of the object's further maps, drawn as its affordance is: the human's
    contact on it now (joint model) and the grasp clearance (task handover); [] without them."""
    affordance = interaction.object_affordance
    if affordance is None or not len(affordance.points):
        return []
    faces = _object_faces(estimator, interaction)
    maps = [("object contact (now)", affordance.contact), ("robot grasp clearance", affordance.grasp_clearance)]
    return [(title, object_picture(renderer, affordance.points, values, faces, size))
            for title, values in maps if values is not None]

