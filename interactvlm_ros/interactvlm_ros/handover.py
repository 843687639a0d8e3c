"""Tasks: what the per-point maps of an object are for (pure numpy/scipy, no torch, no ROS).

* ``""`` (default): the maps the models give, affordance (and, with InteractVLM's joint model,
  the human's contact on the object);
* ``"handover"``: for a robot taking an object from a person, the object's points also carry
  :func:`grasp_clearance`: how far each point is from where the person touches the object.
  Grasp planners for human-to-robot handover (ContactHandover-style) down-rank grasps near the
  human's hand; this field is the score they need, in [0, 1]. It comes from the human's
  contact on the object (:func:`grasp_clearance`, InteractVLM's joint model), from the person's
  posed body in the same frame (:func:`body_clearance`: hands and contact vertices), or the
  smaller of the two (:func:`combined_clearance`).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .validation import unit_interval

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


class NoBodyPointsError(ValueError):
    """A posed person with neither hand points nor contact points: the body gives nothing to
    keep a grasp away from, so it gives no clearance (never "all clear")."""


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
    return _linear_clearance(points, points[touched], distance)


def _linear_clearance(points: np.ndarray, near: np.ndarray, distance: float) -> np.ndarray:
    """``min(1, d_i / distance)`` as float32, ``d_i`` the Euclidean distance from point i of
    ``points`` (N, 3) to the nearest of ``near`` (M >= 1, 3): the clearance both sources share."""
    nearest, _ = cKDTree(near).query(points)
    return np.minimum(1.0, nearest / distance).astype(np.float32)


def _points(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape == (0,):  # an empty list
        return array.reshape(0, 3)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(f"{name} must have shape (N, 3), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contain non-finite coordinates")
    return array


def body_clearance(points: np.ndarray, hand_points: np.ndarray, contact_points: np.ndarray,
                   distance: float = CLEARANCE_DISTANCE) -> np.ndarray:
    """Clearance of each object point from a posed person's hands and contact.

    ``clearance_i = min(1, d_i / distance)`` with ``d_i`` the Euclidean distance (metres) from
    point i to the nearest of ``hand_points`` and ``contact_points`` (the person's posed hand
    vertices and the vertices whose contact with this object reaches the threshold), all in
    the same frame (the camera's optical frame); 0 on the hand, 1 at ``distance`` and beyond.
    Unlike :func:`grasp_clearance` it needs no object-contact model: any affordance model's
    points in the camera frame get it. Either set may be empty (hands hidden, or no contact
    vertex), not both.

    Args:
        points: (N, 3) object points, metres.
        hand_points: (H, 3) the person's hand vertices, metres; H may be 0.
        contact_points: (C, 3) the person's contact vertices, metres; C may be 0.
        distance: metres, > 0.

    Returns:
        (N,) float32 in [0, 1].

    Raises:
        NoBodyPointsError: H = C = 0.
        ValueError: arrays not (., 3) or not finite, or a non-positive distance.
    """
    points = _points(points, "points")
    body = np.concatenate([_points(hand_points, "hand_points"), _points(contact_points, "contact_points")])
    if not (distance > 0.0 and np.isfinite(distance)):
        raise ValueError(f"distance must be > 0, got {distance}")
    if not len(body):
        raise NoBodyPointsError("the posed person has no hand points and no contact points: no clearance from "
                                "the body")
    if not len(points):
        return np.zeros(0, np.float32)
    return _linear_clearance(points, body, distance)


def combined_clearance(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """The clearance of two sources together (e.g. :func:`grasp_clearance` from the object
    contact and :func:`body_clearance` from the posed body): their elementwise minimum when
    both exist (a point is only as clear as the nearer of the two says), the one that exists
    otherwise, None when neither does.

    Args:
        a, b: (N,) clearances in [0, 1], or None.

    Returns:
        (N,) float32 in [0, 1], or None.

    Raises:
        ValueError: an array not 1-D, not finite or outside [0, 1]; two arrays of different
            lengths.
    """
    given = [unit_interval(c, name) for c, name in ((a, "clearance a"), (b, "clearance b")) if c is not None]
    if not given:
        return None
    if len(given) == 2 and given[0].shape != given[1].shape:
        raise ValueError(f"the clearances have {given[0].size} and {given[1].size} points")
    return np.minimum(given[0], given[1]) if len(given) == 2 else given[0]
