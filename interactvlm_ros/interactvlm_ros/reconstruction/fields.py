"""Distances between a posed body and an object in the same frame (numpy + scipy, no torch).

Every function here takes points in one metric frame (the camera's optical frame in the
pipeline) and measures with nearest neighbours (``scipy.spatial.cKDTree``): distances are to
the nearest *given* point (mesh vertices, depth points), so they carry the sampling's spacing
(the open body's vertices lie about 1 cm apart, a depth cloud's points a few mm to cm).

* :func:`proximity_fields`: per body vertex the distance to the object, per object point the
  distance to the body.
* :func:`body_signed_distances`: per point the signed distance to the body surface, from the
  nearest body vertex and its outward normal (negative inside).
* :func:`consistency`: for an object already in the body's frame (points from depth, or a
  placed mesh), how far the human's contact region is from the object and the object's
  contact region from the body, and how deep the object enters the body; no fitting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.spatial import cKDTree

from ..validation import unit_interval

#: Default contact thresholds: InteractVLM's joint fit takes the human vertices with contact
#: probability above 0.5 and the object vertices above 0.3.
HUMAN_CONTACT_THRESHOLD = 0.5
OBJECT_CONTACT_THRESHOLD = 0.3
#: Metres: an object point counts as inside the body when its signed distance is below minus
#: this (a tolerance for the vertex sampling of a curved surface and depth noise).
INSIDE_TOLERANCE_M = 0.005


class EmptyContactError(ValueError):
    """A contact map with no point above its threshold: there is no contact region to measure
    from (the message names the map and the threshold)."""


def points_array(points, name: str) -> np.ndarray:
    """``points`` as a (N, 3) float64 array, checked.

    Raises:
        ValueError: not (N, 3), no points, or non-finite values; the message names ``name``.
    """
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(f"{name} must have shape (N, 3), got {array.shape}")
    if len(array) == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(array)):
        bad = int(np.sum(~np.all(np.isfinite(array), axis=1)))
        raise ValueError(f"{name} has {bad} rows with non-finite values")
    return array


def probabilities_array(values, count: int, name: str, of: str) -> np.ndarray:
    """``values`` as a (count,) float64 array of probabilities, checked.

    Raises:
        ValueError: not 1-D, a length other than ``count`` (``of`` names what it must match),
            non-finite values or values outside [0, 1]; the message names ``name``.
    """
    array = unit_interval(values, name)
    if len(array) != count:
        raise ValueError(f"{name} has {len(array)} values, {of} has {count}")
    return array.astype(np.float64)


class ProximityFields(NamedTuple):
    """Output of :func:`proximity_fields`.

    Attributes:
        body_to_object: (V,) float32 metres, per body vertex the distance to the nearest
            object point.
        object_to_body: (N,) float32 metres, per object point the distance to the nearest
            body vertex.
    """

    body_to_object: np.ndarray
    object_to_body: np.ndarray


def proximity_fields(body_vertices, object_points) -> ProximityFields:
    """Per body vertex the distance to the nearest object point, and per object point the
    distance to the nearest body vertex (unsigned, Euclidean, metres).

    Args:
        body_vertices: (V, 3) metres, V >= 1, finite (a posed body's vertices).
        object_points: (N, 3) metres in the same frame, N >= 1, finite (object surface
            points: mesh vertices or depth points).

    Returns:
        :class:`ProximityFields` ``(body_to_object (V,), object_to_body (N,))``, float32.
        Distances are to the nearest given point, not to the surface between points: on a
        surface sampled every ``h`` metres they exceed the distance to the surface by at most
        about ``h / 2``.

    Raises:
        ValueError: wrong shapes, no points or non-finite values (the argument is named).
    """
    body = points_array(body_vertices, "body_vertices")
    points = points_array(object_points, "object_points")
    body_to_object, _ = cKDTree(points).query(body)
    object_to_body, _ = cKDTree(body).query(points)
    return ProximityFields(body_to_object.astype(np.float32), object_to_body.astype(np.float32))


def body_signed_distances(points: np.ndarray, body_vertices: np.ndarray, body_normals: np.ndarray,
                          tree: cKDTree | None = None) -> np.ndarray:
    """Signed distance of each point to the body: positive outside, negative inside (metres).

    With ``b`` the nearest body vertex and ``n`` its outward unit normal, a point ``x`` with
    ``(x - b) . n >= 0`` is outside at ``|x - b|``; otherwise inside at ``(x - b) . n`` (the
    depth along the normal, exact for a point under a locally flat surface). The nearest
    vertex's normal decides the side: reliable within a few centimetres of the surface and
    inside limbs and torso; a point past a body part thinner than the vertex spacing (a
    finger) can be judged outside.

    Args:
        points: (N, 3) float64 metres; body_vertices, body_normals: (V, 3) metres and unit
            outward normals in the same frame (checked by the public callers);
        tree: a ``cKDTree`` of ``body_vertices`` to reuse.

    Returns:
        (N,) float64 metres.
    """
    tree = tree if tree is not None else cKDTree(body_vertices)
    distance, nearest = tree.query(points)
    along = np.einsum("ij,ij->i", points - body_vertices[nearest], body_normals[nearest])
    return np.where(along >= 0.0, distance, along)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The smallest value at which the cumulative weight reaches half the total (values and
    weights 1-D of the same length, weights >= 0 with a positive sum)."""
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


@dataclass(frozen=True)
class Consistency:
    """How well an object in the body's frame agrees with the contact maps (:func:`consistency`).

    Attributes:
        contact_distance_m: the distance between the two contact regions, metres: the mean of
            ``human_to_object_m`` and ``object_to_human_m`` (``human_to_object_m`` alone
            without an object contact map). 0 when the object touches the body where both maps
            say; the gap when the object is held off by a gap.
        human_to_object_m: median distance (weighted by probability) from the human's contact
            vertices (probability > the human threshold) to the nearest object point.
        object_to_human_m: median distance (weighted by probability) from the object's
            contact points (probability > the object threshold) to the nearest body vertex;
            NaN when no object contact map was given.
        penetration_m: the largest depth of an object point inside the body (metres, >= 0;
            :func:`body_signed_distances`).
        inside_fraction: the fraction of object points deeper inside the body than
            :data:`INSIDE_TOLERANCE_M`.
    """

    contact_distance_m: float
    human_to_object_m: float
    object_to_human_m: float
    penetration_m: float
    inside_fraction: float


def consistency(body_vertices, body_normals, human_contact, object_points, object_contact=None, *,
                human_threshold: float = HUMAN_CONTACT_THRESHOLD,
                object_threshold: float = OBJECT_CONTACT_THRESHOLD) -> Consistency:
    """The contact and penetration terms of the joint fit for an object already placed in the
    body's frame (e.g. its points from registered depth), without fitting anything.

    Args:
        body_vertices: (V, 3) metres (a posed body's vertices, optical frame).
        body_normals: (V, 3) unit outward vertex normals.
        human_contact: (V,) contact probability per body vertex, in [0, 1].
        object_points: (N, 3) metres, the object's surface points in the same frame.
        object_contact: (N,) contact probability per object point in [0, 1], or None (then
            only the human side is measured).
        human_threshold, object_threshold: a vertex / point belongs to a contact region when its
            probability is above these (defaults: InteractVLM's 0.5 and 0.3).

    Returns:
        :class:`Consistency`. Distances are to the nearest given point (see
        :func:`proximity_fields`); a partial cloud seen from one side (the side the hand covers
        often hidden) measures the distance to what was seen.

    Raises:
        ValueError: wrong shapes, non-finite values, probabilities outside [0, 1], lengths
            that do not match (the argument is named).
        EmptyContactError: no body vertex above ``human_threshold``, or an object contact map
            with no point above ``object_threshold``.
    """
    body = points_array(body_vertices, "body_vertices")
    normals = points_array(body_normals, "body_normals")
    if normals.shape != body.shape:
        raise ValueError(f"body_normals has shape {normals.shape}, body_vertices {body.shape}")
    human = probabilities_array(human_contact, len(body), "human_contact", "body_vertices")
    points = points_array(object_points, "object_points")
    in_human = human > human_threshold
    if not in_human.any():
        raise EmptyContactError(f"human_contact has no vertex above {human_threshold}: no contact region")
    body_tree = cKDTree(body)
    to_object, _ = cKDTree(points).query(body[in_human])
    human_side = weighted_median(to_object, human[in_human])
    object_side = float("nan")
    if object_contact is not None:
        on_object = probabilities_array(object_contact, len(points), "object_contact", "object_points")
        in_object = on_object > object_threshold
        if not in_object.any():
            raise EmptyContactError(f"object_contact has no point above {object_threshold}: no contact region")
        to_body, _ = body_tree.query(points[in_object])
        object_side = weighted_median(to_body, on_object[in_object])
    signed = body_signed_distances(points, body, normals, body_tree)
    distance = human_side if object_contact is None else 0.5 * (human_side + object_side)
    return Consistency(
        contact_distance_m=float(distance), human_to_object_m=human_side, object_to_human_m=object_side,
        penetration_m=float(max(0.0, -signed.min())),
        inside_fraction=float(np.mean(signed < -INSIDE_TOLERANCE_M)),
    )
