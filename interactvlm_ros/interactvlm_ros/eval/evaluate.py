"""Scoring pipeline outputs against ground truth, and pictures of a few samples.

No ROS imports: inputs are ``pipeline.EstimateResult`` objects keyed by image stamp, and
ground truth from :mod:`.groundtruth`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np

from ..geometry.camera import BODY_VIEWS, OBJECT_VIEWS, ViewSpec, view_camera
from ..geometry.mesh import TriangleMesh
from ..geometry.objects import normalize_points
from ..render.views import POINT_VIEWS, Renderer, alpha_composite
from .groundtruth import GroundTruthSample
from .metrics import (affordance_scores, contact_scores, geodesic_error, penetration_depth, point_cloud_chamfer,
                      reconstruction_chamfer, summarize)

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


#: Single-image joint reconstruction on BEHAVE (optimisation protocol; Chamfer distance cm human /
#: object after the combined similarity alignment, contact F1), from TeHOR (arXiv 2602.19679,
#: Table 4): what :func:`score_reconstruction`'s "aligned" figures compare with.
BEHAVE_REFERENCE = {
    "InteractVLM": {"chamfer_human_cm": 5.77, "chamfer_object_cm": 19.20, "f1": 0.379},
    "PHOSA": {"chamfer_human_cm": 5.76, "chamfer_object_cm": 46.00, "f1": 0.257},
    "TeHOR": {"chamfer_human_cm": 5.62, "chamfer_object_cm": 17.34, "f1": 0.412},
}


@dataclass(frozen=True, eq=False)
class Reconstruction:
    """What a pipeline output says about one object and its person, in the camera frame.

    Attributes:
        stamp_ns, detection_id: the image and the object detection (the ground truth's key).
        body_model: the posed body's model ("anny", "smplh"); body_vertices (V, 3) metres and
            body_faces (F, 3): the posed person (None when the person was not posed).
        object_vertices: (N, 3) metres, the object's points in the camera frame (None when not
            placed); object_faces: (G, 3) their triangles (a mesh or proxy), None for depth
            points.
        placement: ``ObjectAffordance.placement`` ("depth", "contact_fit", "").
    """

    stamp_ns: int
    detection_id: str
    body_model: str = ""
    body_vertices: np.ndarray | None = None
    body_faces: np.ndarray | None = None
    object_vertices: np.ndarray | None = None
    object_faces: np.ndarray | None = None
    placement: str = ""


def score_reconstruction(reconstructions: Sequence[Reconstruction],
                         ground_truth: Mapping[tuple[int, str], GroundTruthSample]) -> tuple[dict, list[dict]]:
    """Joint-reconstruction metrics of every output with a ground-truth body and object
    (BEHAVE's sidecar, ``ros.datasets.convert_behave``).

    Per sample, in centimetres:

    * ``chamfer_human_cm`` / ``chamfer_object_cm``: the Chamfer distance of the posed body and of
      the placed object to the ground truth as they are, in the camera frame (alignment "none":
      what a robot acts on);
    * ``chamfer_human_aligned_cm`` / ``chamfer_object_aligned_cm``: the reference protocol
      (``metrics.reconstruction_chamfer`` alignment "combined": one similarity transform of human
      and object together), only where it applies: the body is the ground truth's model (SMPL-H)
      and the object the ground truth's template (same vertices: replay fits the sidecar's template
      when it has one); compare with
      :data:`BEHAVE_REFERENCE`;
    * ``penetration_cm``: how deep the posed body reaches into the placed object mesh.

    Returns:
        (summary as ``metrics.summarize``, per-sample dicts; a sample that cannot be scored says
        why in ``not_scored``).
    """
    samples = []
    for item in reconstructions:
        truth = ground_truth.get((item.stamp_ns, item.detection_id))
        if truth is None or truth.body_vertices is None or truth.object_vertices is None:
            continue
        sample = {"stamp_ns": item.stamp_ns, "detection_id": item.detection_id, "object_label": truth.object_label,
                  "placement": item.placement}
        if item.body_vertices is None:
            sample["not_scored"] = "the person was not posed"
        elif item.object_vertices is None:
            sample["not_scored"] = "the object was not placed in the camera frame"
        else:
            gt_object = (truth.object_vertices.astype(np.float64) @ truth.object_pose[:3, :3].T.astype(np.float64)
                         + truth.object_pose[:3, 3])
            template = item.placement == "contact_fit" and len(item.object_vertices) == len(gt_object)
            if item.object_faces is None and template:  # the ground truth's template, placed by its contact
                item = replace(item, object_faces=truth.object_faces)
            if item.object_faces is not None:
                sample.update(reconstruction_chamfer(item.body_vertices, truth.body_vertices, truth.body_faces,
                                                     item.object_vertices, item.object_faces, gt_object,
                                                     truth.object_faces, alignment="none",
                                                     pred_human_faces=item.body_faces))
            else:  # depth points: the object's seen side, no triangles
                sample["chamfer_human_cm"] = reconstruction_chamfer(
                    item.body_vertices, truth.body_vertices, truth.body_faces, gt_object, truth.object_faces, gt_object,
                    truth.object_faces, alignment="none", pred_human_faces=item.body_faces)["chamfer_human_cm"]
                sample["chamfer_object_cm"] = point_cloud_chamfer(item.object_vertices, gt_object, truth.object_faces)
            same_body = _same_body(item.body_model, truth.body_model) and len(item.body_vertices) == len(
                truth.body_vertices)
            if same_body and item.object_faces is not None and len(item.object_vertices) == len(gt_object):
                aligned = reconstruction_chamfer(item.body_vertices, truth.body_vertices, truth.body_faces,
                                                 item.object_vertices, item.object_faces, gt_object,
                                                 truth.object_faces, alignment="combined")
                sample.update({f"{key[:-3]}_aligned_cm": value for key, value in aligned.items()})
            if item.object_faces is not None:
                sample["penetration_cm"] = penetration_depth(item.body_vertices, item.object_vertices,
                                                             item.object_faces)["penetration_cm"]
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

