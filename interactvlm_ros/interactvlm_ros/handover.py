"""Tasks: what the per-point maps of an object are for (pure numpy/scipy, no torch, no ROS).

* ``""`` (default): the maps the models give, affordance (and, with InteractVLM's joint model,
  the human's contact on the object);
* ``"handover"``: for a robot taking an object from a person, the object's points also carry
  :func:`grasp_clearance`: how far each point is from where the person touches the object.
  Grasp planners for human-to-robot handover (ContactHandover-style) down-rank grasps near the
  human's hand; this field is the score they need, in [0, 1].
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

#: Supported values of ``task`` (service request field and stream parameter).
TASKS = ("", "handover")

#: Default of ``handover_clearance_distance``: distance (metres) from the nearest human contact
#: at which a point counts as fully clear (about a hand's half width plus a gripper finger).
CLEARANCE_DISTANCE = 0.05


def check_task(task: str) -> str:
    """``task`` if supported.

    Raises:
        ValueError: any other value, with the supported ones listed.
    """
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not supported; supported: \"\" (default maps), "
                         + ", ".join(t for t in TASKS if t))
    return task


class NoContactError(ValueError):
    """An object-contact map with no point at or above the threshold: in a handover the person
    holds the object, so this is a failed estimate, not a clear object (no clearance is given)."""


def grasp_clearance(points: np.ndarray, contact: np.ndarray, threshold: float,
                    distance: float = CLEARANCE_DISTANCE) -> np.ndarray:
    """Clearance of each point from the human's contact on the object.

    ``clearance_i = min(1, d_i / distance)`` with ``d_i`` the Euclidean distance (metres, in
    the points' frame) from point i to the nearest point whose contact probability is >=
    ``threshold``; 0 on the contact itself, rising linearly to 1 at ``distance`` and beyond.
    A map without any contact point is refused (:class:`NoContactError`): calling every point
    clear would be the unsafe answer for a handover. Euclidean, not geodesic: clouds from depth are
    partial surfaces on which geodesic distance is not defined; on a thin object (a mug's wall)
    a point just behind the contact counts as near, which is the safe side for a handover.

    Args:
        points: (N, 3) float positions, metres; contact: (N,) probabilities in [0, 1].
        threshold: contact decision threshold in [0, 1]; distance: metres, > 0.

    Returns:
        (N,) float32 in [0, 1].

    Raises:
        NoContactError: no point has ``contact >= threshold``.
        ValueError: mismatched shapes, non-finite input, a threshold outside [0, 1] or a
            non-positive distance.
    """
    points = np.asarray(points, dtype=np.float64)
    contact = np.asarray(contact, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or contact.shape != (points.shape[0],):
        raise ValueError(f"points (N, 3) and contact (N,) expected, got {points.shape} and {contact.shape}")
    if not (np.all(np.isfinite(points)) and np.all(np.isfinite(contact))):
        raise ValueError("points and contact must be finite")
    if not distance > 0.0:
        raise ValueError(f"distance must be > 0, got {distance}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    touched = contact >= threshold
    if not touched.any():
        raise NoContactError(f"no point of the object-contact map reaches the threshold {threshold:g} "
                             f"(largest {contact.max(initial=0.0):.3f})")
    nearest, _ = cKDTree(points[touched]).query(points)
    return np.minimum(1.0, nearest / distance).astype(np.float32)
