"""Body-part vocabulary shared by every body model.

Per-vertex part labels are derived from linear-blend-skinning weights: a vertex belongs to
the part of the joint that moves it most. The part names are the plain words a VLM answer
uses ("right hand"), one per SMPL body joint, with finger joints folded into their hand and
the jaw and eyes into the head. :func:`part_contact_centroids` says where, on a posed body,
each part named in an answer touches.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..validation import unit_interval

#: Part names, in label order (a part label is an index into this tuple).
BODY_PARTS: tuple[str, ...] = (
    "hips",
    "left upper leg",
    "right upper leg",
    "lower back",
    "left lower leg",
    "right lower leg",
    "abdomen",
    "left foot",
    "right foot",
    "chest",
    "left toes",
    "right toes",
    "neck",
    "left shoulder",
    "right shoulder",
    "head",
    "left upper arm",
    "right upper arm",
    "left forearm",
    "right forearm",
    "left hand",
    "right hand",
)

#: The 22 body joints shared by SMPL, SMPL-H and SMPL-X, in their kinematic-tree order;
#: joint i of that order maps to BODY_PARTS[i].
SMPL_BODY_JOINTS: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)


def part_of_smpl_joint(joint: int, num_body_joints: int = 22, hand_joints_per_side: int = 15) -> int:
    """Part label of an SMPL-family joint index.

    Joints 0..21 are the body joints above. SMPL-H orders 15 left-hand then 15 right-hand
    finger joints after them (22..36 left, 37..51 right). SMPL-X inserts jaw, left eye and
    right eye (22, 23, 24) before the hands; pass ``num_body_joints=25`` for SMPL-X.

    Raises:
        ValueError: a joint index outside the model's joints.
    """
    if 0 <= joint < 22:
        return joint
    if joint < num_body_joints:  # SMPL-X jaw and eyes
        return BODY_PARTS.index("head")
    hand = joint - num_body_joints
    if 0 <= hand < hand_joints_per_side:
        return BODY_PARTS.index("left hand")
    if hand_joints_per_side <= hand < 2 * hand_joints_per_side:
        return BODY_PARTS.index("right hand")
    raise ValueError(f"joint {joint} is not a joint of this model ({num_body_joints} body joints + hands)")


def part_vertex_ids(part_labels, part_names: Sequence[str] = BODY_PARTS) -> dict[str, np.ndarray]:
    """The vertices of each part, from per-vertex part labels (``TriangleMesh.part_labels``).

    Args:
        part_labels: (V,) int, index into ``part_names`` per vertex.
        part_names: the names the labels index (:data:`BODY_PARTS` for every body model here).

    Returns:
        part name -> (K,) int64 vertex ids, ascending; every name of ``part_names`` is a key
        (K may be 0).

    Raises:
        ValueError: labels not 1-D integers, or a label outside ``part_names``.
    """
    labels = np.asarray(part_labels)
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"part_labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(part_names)):
        raise ValueError(f"part_labels must index part_names (0..{len(part_names) - 1}), "
                         f"got [{labels.min()}, {labels.max()}]")
    return {name: np.flatnonzero(labels == index) for index, name in enumerate(part_names)}


def part_contact_centroids(vertices, probabilities, threshold: float, body_parts: Sequence[str],
                           part_vertex_ids: Mapping[str, np.ndarray]) -> np.ndarray:
    """Where each named body part touches: the centroid of its contact vertices on a posed body.

    For each name of ``body_parts`` (an answer's parts, e.g. "right hand"): the mean position
    of the vertices of that part (``part_vertex_ids[name]``) whose contact probability is
    >= ``threshold`` (compared in float32, as ``HumanContact.contact_vertices`` is made).

    Args:
        vertices: (V, 3) float positions of the posed body, metres (any frame: the result is
            in the same one).
        probabilities: (V,) contact probability per vertex, in [0, 1].
        threshold: decision threshold in [0, 1].
        body_parts: the part names, in the order of the result's rows.
        part_vertex_ids: part name -> vertex ids of ``vertices`` (:func:`part_vertex_ids`).

    Returns:
        (P, 3) float32, P = len(body_parts); a row is NaN when the part has no contact vertex
        or ``part_vertex_ids`` has no part of that name (an answer may name a part the body
        model does not label, e.g. "hands").

    Raises:
        ValueError: vertices not (V, 3) or not finite, probabilities not (V,) in [0, 1], a
            threshold outside [0, 1], or vertex ids outside [0, V) (naming the part).
    """
    xyz = np.asarray(vertices, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {xyz.shape}")
    if not np.isfinite(xyz).all():
        raise ValueError("vertices contain non-finite coordinates")
    p = unit_interval(probabilities, "probabilities")
    if p.shape[0] != xyz.shape[0]:
        raise ValueError(f"{xyz.shape[0]} vertices but {p.shape[0]} probabilities")
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    touching = p >= np.float32(threshold)
    centroids = np.full((len(body_parts), 3), np.nan, dtype=np.float32)
    for row, name in enumerate(body_parts):
        if name not in part_vertex_ids:
            continue
        ids = np.asarray(part_vertex_ids[name], dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(xyz)):
            raise ValueError(f"part {name!r}: vertex ids must lie in [0, {len(xyz)}), got [{ids.min()}, {ids.max()}]")
        ids = ids[touching[ids]]
        if ids.size:
            centroids[row] = xyz[ids].mean(axis=0)
    return centroids
