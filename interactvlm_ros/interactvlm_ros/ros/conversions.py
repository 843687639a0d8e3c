"""Conversions between numpy arrays and interactvlm_msgs / sensor_msgs messages.

Every builder validates its input and raises :class:`ValueError` with the reason instead of
publishing a wrong message: the consumers (grasp and handover planners) act on these values.
Array fields are filled through :mod:`array` buffers, which rclpy takes without a per-element
check (a 10k-vertex body costs microseconds, not milliseconds).
"""

from __future__ import annotations

import array
import sys
from typing import Mapping, NamedTuple, Sequence

import numpy as np
from geometry_msgs.msg import Point
from interactvlm_msgs.msg import HumanContact, Interaction, InteractionArray, ObjectAffordance, Person
from sensor_msgs.msg import Image, PointCloud2, PointField, RegionOfInterest
from vision_msgs.msg import Detection2DArray, Point2D
from std_msgs.msg import Header

from ..body.landmarks import LANDMARK_NAMES
from ..detection import Detection
from ..geometry.body_parts import part_contact_centroids
from ..validation import unit_interval

#: numpy dtype of each sensor_msgs/PointField datatype constant.
POINT_FIELD_DTYPES = {
    PointField.INT8: np.dtype(np.int8),
    PointField.UINT8: np.dtype(np.uint8),
    PointField.INT16: np.dtype(np.int16),
    PointField.UINT16: np.dtype(np.uint16),
    PointField.INT32: np.dtype(np.int32),
    PointField.UINT32: np.dtype(np.uint32),
    PointField.FLOAT32: np.dtype(np.float32),
    PointField.FLOAT64: np.dtype(np.float64),
}

#: Field names of ObjectAffordance.points, in memory order (4 x float32, 16 bytes a point).
AFFORDANCE_FIELDS = ("x", "y", "z", "affordance")
#: Optional per-point maps after ``affordance``, in this order: ``contact`` (where the human
#: touches the object in the image: InteractVLM's joint model) and ``robot_grasp_clearance``
#: (task "handover", see ``interactvlm_ros.handover.grasp_clearance``); both in [0, 1].
OPTIONAL_MAP_FIELDS = ("contact", "robot_grasp_clearance")
#: Field names of HumanContact.posed_body: a posed body's vertices and this object's contact
#: per vertex (4 x float32, 16 bytes a vertex).
POSED_CONTACT_FIELDS = ("x", "y", "z", "contact")
#: Field names of Person.posed_body: a posed body's vertices and unit vertex normals (6 x
#: float32, 24 bytes a vertex).
POSED_BODY_FIELDS = ("x", "y", "z", "normal_x", "normal_y", "normal_z")
#: How far from 1 a vertex normal's length may be (a normal of length 0, an isolated vertex's,
#: is accepted too).
NORMAL_LENGTH_TOLERANCE = 1e-3


def detections_to_msg(detections: Sequence[Detection], header: Header) -> Detection2DArray:
    """``vision_msgs/Detection2DArray`` of pipeline detections: per detection its id, one
    hypothesis (``class_id`` = label, ``score``) and the box as centre + size in image pixels
    (vision_msgs ``BoundingBox2D``), every one with ``header``.

    Raises:
        ValueError: a non-finite box or one whose max corner is below its min corner.
    """
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    msg = Detection2DArray(header=header)
    for detection in detections:
        x0, y0, x1, y1 = (float(v) for v in detection.bbox_xyxy)
        if not np.all(np.isfinite([x0, y0, x1, y1])) or x1 < x0 or y1 < y0:
            raise ValueError(f"detection {detection.id!r}: invalid box {detection.bbox_xyxy}")
        det = Detection2D(header=header, id=str(detection.id))
        hypothesis = ObjectHypothesisWithPose()
        hypothesis.hypothesis.class_id, hypothesis.hypothesis.score = str(detection.label), float(detection.score)
        det.results.append(hypothesis)
        det.bbox.center.position.x, det.bbox.center.position.y = (x0 + x1) / 2, (y0 + y1) / 2
        det.bbox.size_x, det.bbox.size_y = x1 - x0, y1 - y0
        msg.detections.append(det)
    return msg


def detection_from_msg(det, index: int) -> Detection:
    """The pipeline detection of one ``vision_msgs/Detection2D``: its best-scoring hypothesis
    (label stripped of surrounding whitespace), the box as (x_min, y_min, x_max, y_max) pixels,
    and its id (``str(index)`` when empty).

    Raises:
        Rejected: no hypothesis or an empty class (``detection_without_class``), a non-finite
            score or box (``nan_in_detection``), a box of zero or negative size (``empty_box``).
    """
    import math

    from ..reasons import Reason, Rejected

    ident = det.id or str(index)  # one id in every message, as in the Detection
    if not det.results:
        raise Rejected(Reason.DETECTION_WITHOUT_CLASS, f"detection {ident!r} has no results")
    best = max(det.results, key=lambda r: r.hypothesis.score if math.isfinite(r.hypothesis.score) else -1)
    label, score = best.hypothesis.class_id.strip(), float(best.hypothesis.score)
    cx, cy = det.bbox.center.position.x, det.bbox.center.position.y
    w, h = det.bbox.size_x, det.bbox.size_y
    if not all(math.isfinite(v) for v in (score, cx, cy, w, h)):
        raise Rejected(Reason.NAN_IN_DETECTION, f"detection {ident!r} has a non-finite score or box")
    if not label:
        raise Rejected(Reason.DETECTION_WITHOUT_CLASS, f"detection {ident!r} has an empty class_id")
    if w <= 0 or h <= 0:
        raise Rejected(Reason.EMPTY_BOX, f"detection {ident!r} has a {w}x{h} box")
    return Detection(label, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), score, ident)


def object_frame_id(label: str) -> str:
    """The tf frame of an object's model points: ``<name>_model``, the name made of the
    label's ASCII letters and digits (accents dropped: "café" -> "cafe"), every other run of
    characters as one "_", lower case, prefixed with "_" if it starts with a digit: a valid
    ROS name whatever the label holds (e.g. "cup/../../x" -> "cup_x_model",
    "[SEG] cup" -> "seg_cup_model", "" -> "object_model").
    """
    import re
    import unicodedata

    ascii_label = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode("ascii")
    name = re.sub(r"[^a-z0-9]+", "_", ascii_label.lower()).strip("_") or "object"
    return f"{'_' if name[0].isdigit() else ''}{name}_model"


def _threshold(threshold: float) -> float:
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
    return float(threshold)


def _float32_array(values: np.ndarray) -> array.array:
    out = array.array("f")
    out.frombytes(np.ascontiguousarray(values, dtype=np.float32).tobytes())
    return out


def _uint32_array(values: np.ndarray) -> array.array:
    out = array.array("I")
    if out.itemsize != 4:  # pragma: no cover - 'I' is 4 bytes on every platform ROS 2 supports
        raise RuntimeError("array typecode 'I' is not 32-bit on this platform")
    out.frombytes(np.ascontiguousarray(values, dtype=np.uint32).tobytes())
    return out


def human_contact_msg(
    header: Header,
    body_model: str,
    vertex_probabilities,
    threshold: float,
    body_parts: Sequence[str],
    object_label: str,
    detection_id: str,
    *,
    posed_vertices=None,
    placement_method: str = "",
    part_vertex_ids: Mapping[str, np.ndarray] | None = None,
    posed_frame_id: str = "",
    object_distance=None,
) -> HumanContact:
    """Build an interactvlm_msgs/HumanContact.

    Args:
        header: stamp and frame_id of the source image.
        body_model: name of the body topology, e.g. ``"smplh"`` (6890 vertices).
        vertex_probabilities: (V,) contact probability per body vertex, in [0, 1].
        threshold: decision threshold in [0, 1]; ``contact_vertices`` lists the vertex ids
            with probability >= threshold, ascending.
        body_parts: body-part names parsed from the model's answer.
        object_label: class label of the object the contact is conditioned on.
        detection_id: ``vision_msgs/Detection2D.id`` of that object.
        posed_vertices: (V, 3) the associated person's posed body (the same body model),
            metres in the camera's optical frame, or None when the person was not posed (the
            three posed fields stay empty). With it, ``posed_body`` is
            :func:`posed_body_cloud` and ``part_contact_centroids`` the centroid of each
            named part's contact vertices
            (:func:`~interactvlm_ros.geometry.body_parts.part_contact_centroids`).
        placement_method: how the person was placed (``Placement.method``); required with
            ``posed_vertices``.
        part_vertex_ids: part name -> vertex ids of the body model
            (:func:`~interactvlm_ros.geometry.body_parts.part_vertex_ids`); required with
            ``posed_vertices``.
        posed_frame_id: frame_id of ``posed_body`` ("" = ``header.frame_id``).
        object_distance: optional (V,) metres from each posed vertex to the placed object
            (the ``object_distance`` field of ``posed_body``); only with ``posed_vertices``.

    Raises:
        ValueError: probabilities not 1-D, not finite or outside [0, 1]; threshold outside
            [0, 1]; empty body_model; posed vertices of another count than the probabilities
            or not finite; posed vertices without placement_method or part_vertex_ids, or
            either of those without posed vertices.
    """
    if not body_model:
        raise ValueError("body_model must name the body topology, e.g. 'smplh'")
    p = unit_interval(vertex_probabilities, "vertex_probabilities")
    t = _threshold(threshold)
    if posed_vertices is None and (placement_method or part_vertex_ids is not None):
        raise ValueError("placement_method and part_vertex_ids describe a posed body: pass posed_vertices too")
    if posed_vertices is not None and not (placement_method and part_vertex_ids is not None):
        raise ValueError("posed_vertices need the placement_method and the body model's part_vertex_ids")
    if object_distance is not None and posed_vertices is None:
        raise ValueError("object_distance is a field of the posed body: pass posed_vertices too")
    msg = HumanContact()
    msg.header = header
    msg.body_model = body_model
    msg.num_vertices = int(p.size)
    msg.vertex_probabilities = _float32_array(p)
    msg.threshold = t
    msg.contact_vertices = _uint32_array(np.flatnonzero(p >= np.float32(t)))
    msg.body_parts = [str(part) for part in body_parts]
    msg.object_label = object_label
    msg.detection_id = detection_id
    if posed_vertices is not None:
        cloud_header = Header(stamp=header.stamp, frame_id=posed_frame_id or header.frame_id)
        msg.posed_body = posed_body_cloud(cloud_header, posed_vertices, p, object_distance)
        msg.placement_method = placement_method
        msg.part_contact_centroids = points_msg(part_contact_centroids(posed_vertices, p, t, msg.body_parts,
                                                                       part_vertex_ids))
    return msg


def points_msg(xyz) -> list[Point]:
    """``geometry_msgs/Point`` list of (N, 3) coordinates (NaN kept: the "none" of
    ``HumanContact.part_contact_centroids``).

    Raises:
        ValueError: not (N, 3).
    """
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {xyz.shape}")
    return [Point(x=x, y=y, z=z) for x, y, z in xyz.tolist()]


def points_from_msg(points: Sequence[Point]) -> np.ndarray:
    """Inverse of :func:`points_msg`: (N, 3) float64 (N = 0 gives (0, 3))."""
    return np.array([(p.x, p.y, p.z) for p in points], dtype=np.float64).reshape(-1, 3)


def posed_body_cloud(header: Header, vertices, contact, object_distance=None) -> PointCloud2:
    """``HumanContact.posed_body``: a posed body's vertices with one object's contact, fields
    :data:`POSED_CONTACT_FIELDS` (float32) and ``object_distance`` when given, point i = vertex i.

    Args:
        header: stamp of the source image; frame_id the optical frame the vertices are in.
        vertices: (V, 3) metres; contact: (V,) probabilities in [0, 1].
        object_distance: optional (V,) metres from each vertex to the placed object.

    Raises:
        ValueError: wrong shapes, non-finite values, contact outside [0, 1], negative distances.
    """
    return probability_cloud(header, vertices, {"contact": contact},
                             {"object_distance": object_distance} if object_distance is not None else None)


def body_mesh_cloud(header: Header, vertices, normals) -> PointCloud2:
    """``Person.posed_body``: a posed body's vertices and unit vertex normals, fields
    :data:`POSED_BODY_FIELDS` (float32), point i = vertex i.

    Args:
        header: stamp of the source image; frame_id the optical frame the vertices are in.
        vertices: (V, 3) metres; normals: (V, 3), each of length 1 (or 0 for a vertex in no
            face) within :data:`NORMAL_LENGTH_TOLERANCE`.

    Raises:
        ValueError: wrong shapes, non-finite values, a normal of another length.
    """
    xyz = _finite_xyz(vertices, "vertices")
    n = _finite_xyz(normals, "normals")
    if n.shape != xyz.shape:
        raise ValueError(f"{xyz.shape[0]} vertices but {n.shape[0]} normals")
    length = np.linalg.norm(n.astype(np.float64), axis=1)
    bad = ~((np.abs(length - 1.0) <= NORMAL_LENGTH_TOLERANCE) | (length == 0.0))
    if bad.any():
        raise ValueError(f"normals must have length 1 (or 0): {int(bad.sum())} do not, e.g. vertex "
                         f"{int(np.flatnonzero(bad)[0])} has length {length[bad][0]:.4g}")
    return _float_cloud(header, POSED_BODY_FIELDS, np.concatenate([xyz, n], axis=1))


class PosedBodyCloud(NamedTuple):
    """What :func:`posed_body_from_cloud` reads: (V, 3) float32 ``vertices`` (metres, the
    cloud's frame), (V, 3) float32 ``normals`` or None, (V,) float32 ``contact`` or None."""

    vertices: np.ndarray
    normals: np.ndarray | None
    contact: np.ndarray | None


def posed_body_from_cloud(msg: PointCloud2) -> PosedBodyCloud:
    """Inverse of :func:`posed_body_cloud` and :func:`body_mesh_cloud`: the vertices, and the
    normals and the contact when the cloud has those fields (looked up by name). The empty
    cloud of a person not posed (no points, no fields) gives (0, 3) vertices and None.

    Raises:
        ValueError: x, y or z missing, some but not all of the normal fields (or see
            :func:`cloud_fields`).
    """
    if not msg.fields and int(msg.width) * int(msg.height) == 0:
        return PosedBodyCloud(np.zeros((0, 3), np.float32), None, None)
    fields = cloud_fields(msg)
    missing = [name for name in ("x", "y", "z") if name not in fields]
    if missing:
        raise ValueError(f"PointCloud2 lacks fields {missing}; it has {sorted(fields)}")
    normal_names = POSED_BODY_FIELDS[3:]
    present = [name for name in normal_names if name in fields]
    if present and len(present) != len(normal_names):
        raise ValueError(f"PointCloud2 has {present} but not all of {list(normal_names)}")
    vertices = np.stack([fields[k] for k in ("x", "y", "z")], axis=1).astype(np.float32)
    normals = np.stack([fields[k] for k in normal_names], axis=1).astype(np.float32) if present else None
    contact = fields["contact"].astype(np.float32) if "contact" in fields else None
    return PosedBodyCloud(vertices, normals, contact)


def person_msg(
    header: Header,
    detection_id: str,
    landmark_pixels,
    landmark_visibility,
    *,
    landmarks=None,
    placement_method: str = "",
    body_model: str = "",
    vertices=None,
    normals=None,
    landmark_names: Sequence[str] = LANDMARK_NAMES,
) -> Person:
    """Build an interactvlm_msgs/Person: one person detection's landmarks and posed body.

    Args:
        header: stamp of the source image; frame_id the optical frame the landmarks and
            vertices are in.
        detection_id: ``vision_msgs/Detection2D.id`` of the person detection.
        landmark_pixels: (L, 2) landmark positions in the full image, pixels (K convention).
        landmark_visibility: (L,) in [0, 1].
        landmarks: (L, 3) placed landmarks, metres, or None when the person was not placed.
        placement_method: how they were placed (``Placement.method``); "" iff landmarks is None.
        body_model: the posed body's model ("anny", "smplh"); "" iff vertices is None.
        vertices, normals: (V, 3) the posed body (metres) and its unit vertex normals, or None.
        landmark_names: the L landmark names (BlazePose's 33 by default).

    Raises:
        ValueError: an empty detection_id; arrays of the wrong shape, non-finite or (the
            visibility) outside [0, 1]; L different from len(landmark_names); landmarks
            without a placement_method or the reverse; vertices without a body_model or the
            reverse; a posed body without placed landmarks (see also :func:`body_mesh_cloud`).
    """
    if not detection_id:
        raise ValueError("detection_id must name the person detection")
    names = [str(name) for name in landmark_names]
    pixels = np.asarray(landmark_pixels, dtype=np.float64)
    if pixels.shape != (len(names), 2) or not np.isfinite(pixels).all():
        raise ValueError(f"landmark_pixels must be ({len(names)}, 2) finite pixels, got shape {pixels.shape}")
    visibility = unit_interval(landmark_visibility, "landmark_visibility")
    if visibility.shape != (len(names),):
        raise ValueError(f"landmark_visibility must have {len(names)} values, got {visibility.size}")
    if (landmarks is None) != (not placement_method):
        raise ValueError("landmarks and placement_method come together: placed landmarks need the method that "
                         "placed them, an unplaced person has neither")
    if (vertices is None) != (not body_model):
        raise ValueError("vertices and body_model come together: a posed body needs its body model's name")
    if vertices is not None and landmarks is None:
        raise ValueError("a posed body needs placed landmarks (the body is posed to them)")
    msg = Person(header=header, detection_id=str(detection_id), landmark_names=names,
                 landmark_visibility=_float32_array(visibility), placement_method=placement_method,
                 body_model=body_model)
    msg.landmark_pixels = [Point2D(x=x, y=y) for x, y in pixels.tolist()]
    if landmarks is not None:
        xyz = _finite_xyz(landmarks, "landmarks", np.float64)
        if len(xyz) != len(names):
            raise ValueError(f"landmarks must have {len(names)} rows, got {len(xyz)}")
        msg.landmarks = points_msg(xyz)
    if vertices is not None:
        if normals is None:
            raise ValueError("a posed body needs its vertex normals")
        msg.posed_body = body_mesh_cloud(header, vertices, normals)
    elif normals is not None:
        raise ValueError("normals without vertices")
    return msg


class PersonFields(NamedTuple):
    """What :func:`person_from_msg` reads. Arrays: ``landmark_pixels`` (L, 2) float64,
    ``landmark_visibility`` (L,) float32, ``landmarks`` (L, 3) float64 or None (not placed),
    ``vertices`` / ``normals`` (V, 3) float32 or None (not posed)."""

    detection_id: str
    landmark_names: tuple[str, ...]
    landmark_pixels: np.ndarray
    landmark_visibility: np.ndarray
    placement_method: str
    landmarks: np.ndarray | None
    body_model: str
    vertices: np.ndarray | None
    normals: np.ndarray | None


def person_from_msg(msg: Person) -> PersonFields:
    """Inverse of :func:`person_msg`.

    Raises:
        ValueError: landmark arrays of different lengths, a placement_method without
            landmarks (or the reverse), a body_model without a posed body with normals (or
            the reverse).
    """
    names = tuple(msg.landmark_names)
    pixels = np.array([(p.x, p.y) for p in msg.landmark_pixels], dtype=np.float64).reshape(-1, 2)
    visibility = np.asarray(msg.landmark_visibility, dtype=np.float32)
    landmarks = points_from_msg(msg.landmarks)
    lengths = {"landmark_names": len(names), "landmark_pixels": len(pixels), "landmark_visibility": len(visibility)}
    if msg.placement_method:
        lengths["landmarks"] = len(landmarks)
    if len(set(lengths.values())) > 1:
        raise ValueError(f"Person {msg.detection_id!r}: landmark arrays of different lengths {lengths}")
    if bool(msg.placement_method) != bool(len(landmarks)):
        raise ValueError(f"Person {msg.detection_id!r}: placement_method {msg.placement_method!r} with "
                         f"{len(landmarks)} landmarks")
    vertices = normals = None
    if msg.body_model or msg.posed_body.width:
        body = posed_body_from_cloud(msg.posed_body)
        if not msg.body_model or not len(body.vertices) or body.normals is None:
            raise ValueError(f"Person {msg.detection_id!r}: body_model {msg.body_model!r} with a posed body of "
                             f"{len(body.vertices)} vertices and {'no ' if body.normals is None else ''}normals")
        vertices, normals = body.vertices, body.normals
    return PersonFields(msg.detection_id, names, pixels, visibility, msg.placement_method,
                        landmarks if msg.placement_method else None, msg.body_model, vertices, normals)


def affordance_cloud(header: Header, points, affordance, contact=None, robot_grasp_clearance=None,
                     body_distance=None) -> PointCloud2:
    """Pack object points and their maps into a PointCloud2 (fields x, y, z, affordance, then
    contact, robot_grasp_clearance and body_distance when given; see :func:`probability_cloud`).

    Args:
        header: stamp of the source image; frame_id of the frame the points are in.
        points: (N, 3) positions in metres in ``header.frame_id``; must be finite.
        affordance: (N,) affordance probability per point, in [0, 1].
        contact: optional (N,) probability in [0, 1] that the human touches the point now.
        robot_grasp_clearance: optional (N,) clearance in [0, 1] from the human's contact.
        body_distance: optional (N,) metres from each point to the posed person's body.

    Raises:
        ValueError: wrong shapes, non-finite values, values outside [0, 1], negative distances.
    """
    maps = {"affordance": affordance, "contact": contact, "robot_grasp_clearance": robot_grasp_clearance}
    return probability_cloud(header, points, {k: v for k, v in maps.items() if v is not None},
                             {"body_distance": body_distance} if body_distance is not None else None)


def probability_cloud(header: Header, points, maps: dict, distances: dict | None = None) -> PointCloud2:
    """Pack points and per-point values in [0, 1] into a PointCloud2: float32 fields x, y, z,
    then one per entry of ``maps`` (in its order), then one per entry of ``distances``.

    Args:
        header: stamp of the source image; frame_id of the frame the points are in.
        points: (N, 3) positions in metres in ``header.frame_id``; must be finite.
        maps: field name -> (N,) values in [0, 1].
        distances: field name -> (N,) distances in metres (finite, >= 0), e.g. the proximity
            fields ``body_distance`` / ``object_distance``.

    Returns:
        An unorganised cloud (height 1, width N, is_dense true), 4 bytes per field and point,
        in the machine's byte order.

    Raises:
        ValueError: wrong shapes, non-finite values, maps outside [0, 1], negative distances.
    """
    xyz = _finite_xyz(points, "points")
    columns, names = [xyz], ["x", "y", "z"]
    checked = [(name, unit_interval(values, name)) for name, values in maps.items()]
    for name, values in (distances or {}).items():
        d = np.asarray(values, dtype=np.float32)
        if d.ndim != 1 or not np.isfinite(d).all() or (d < 0).any():
            raise ValueError(f"{name} must be finite distances >= 0 (metres), one per point")
        checked.append((name, d))
    for name, values in checked:
        if values.shape[0] != xyz.shape[0]:
            raise ValueError(f"{xyz.shape[0]} points but {values.shape[0]} {name} values")
        columns.append(np.asarray(values, np.float32)[:, None])
        names.append(name)
    return _float_cloud(header, names, np.concatenate(columns, axis=1))


def _finite_xyz(values, name: str, dtype=np.float32) -> np.ndarray:
    """``values`` as (N, 3) ``dtype``, checked finite."""
    xyz = np.asarray(values, dtype=dtype)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"{name} must have shape (N, 3), got {xyz.shape}")
    if not np.all(np.isfinite(xyz)):
        raise ValueError(f"{name} contain non-finite coordinates")
    return xyz


def _float_cloud(header: Header, names: Sequence[str], columns: np.ndarray) -> PointCloud2:
    """An unorganised PointCloud2 (height 1, is_dense true) of (N, len(names)) values as
    float32 fields ``names``, 4 bytes each, in the machine's byte order."""
    packed = np.ascontiguousarray(columns, dtype=np.float32)
    msg = PointCloud2()
    msg.header = header
    msg.height = 1
    msg.width = int(packed.shape[0])
    msg.fields = [PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                  for i, name in enumerate(names)]
    msg.is_bigendian = sys.byteorder == "big"
    msg.point_step = 4 * len(names)
    msg.row_step = msg.point_step * msg.width
    data = array.array("B")
    data.frombytes(packed.tobytes())
    msg.data = data
    msg.is_dense = True
    return msg


def probability_image(header: Header, probabilities) -> Image:
    """A per-pixel probability map as ``sensor_msgs/Image`` 32FC1 (row-major, machine byte
    order, step 4 * width).

    Args:
        header: the source image's header; probabilities: (H, W) values in [0, 1].

    Raises:
        ValueError: not 2-D, non-finite or outside [0, 1].
    """
    p = np.asarray(probabilities, dtype=np.float32)
    if p.ndim != 2:
        raise ValueError(f"probabilities must have shape (H, W), got {p.shape}")
    unit_interval(p.reshape(-1), "probabilities")
    msg = Image(header=header, height=int(p.shape[0]), width=int(p.shape[1]), encoding="32FC1",
                is_bigendian=sys.byteorder == "big", step=4 * int(p.shape[1]))
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(p).tobytes())
    msg.data = data
    return msg


def cloud_fields(msg: PointCloud2) -> dict[str, np.ndarray]:
    """Read every scalar field of a PointCloud2 into a flat array (height * width,).

    Honours field offsets, point_step, row_step padding and is_bigendian; returns arrays in
    native byte order, each with the field's own dtype.

    Raises:
        ValueError: unknown PointField datatype, a field with count != 1, or a data buffer
            shorter than height * row_step.
    """
    n_rows, n_cols = int(msg.height), int(msg.width)
    if len(msg.data) < n_rows * int(msg.row_step) or int(msg.row_step) < n_cols * int(msg.point_step):
        raise ValueError(
            f"PointCloud2 data has {len(msg.data)} bytes, expected height*row_step = "
            f"{n_rows}*{msg.row_step} with row_step >= width*point_step"
        )
    byte_order = ">" if msg.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for field in msg.fields:
        if field.datatype not in POINT_FIELD_DTYPES:
            raise ValueError(f"field {field.name!r} has unknown datatype {field.datatype}")
        if field.count != 1:
            raise ValueError(f"field {field.name!r} has count {field.count}; only scalar fields are read")
        names.append(field.name)
        formats.append(POINT_FIELD_DTYPES[field.datatype].newbyteorder(byte_order))
        offsets.append(field.offset)
    point = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": msg.point_step})
    buffer = np.frombuffer(msg.data, dtype=np.uint8, count=n_rows * int(msg.row_step))
    rows = buffer.reshape(n_rows, int(msg.row_step))[:, : n_cols * int(msg.point_step)]
    structured = np.ascontiguousarray(rows).view(point).reshape(-1)
    return {name: structured[name].astype(structured[name].dtype.newbyteorder("=")) for name in names}


def affordance_from_cloud(msg: PointCloud2) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`affordance_cloud`, for any cloud carrying x, y, z and affordance.

    Returns:
        points: (N, 3) float32 metres in ``msg.header.frame_id``; affordance: (N,) float32.

    Raises:
        ValueError: a field of :data:`AFFORDANCE_FIELDS` is missing (or see :func:`cloud_fields`).
    """
    fields = cloud_fields(msg)
    missing = [name for name in AFFORDANCE_FIELDS if name not in fields]
    if missing:
        raise ValueError(f"PointCloud2 lacks fields {missing}; it has {sorted(fields)}")
    points = np.stack([fields["x"], fields["y"], fields["z"]], axis=1).astype(np.float32)
    return points, fields["affordance"].astype(np.float32)


def object_affordance_msg(
    header: Header,
    detection_id: str,
    object_label: str,
    affordance: str,
    geometry_source: str,
    points,
    point_affordance,
    threshold: float,
    contact=None,
    robot_grasp_clearance=None,
    body_distance=None,
) -> ObjectAffordance:
    """Build an interactvlm_msgs/ObjectAffordance.

    Args:
        header: stamp of the source image; frame_id of the frame ``points`` are in (the
            object's model frame for meshes and proxies, the camera optical frame for depth).
        detection_id: ``vision_msgs/Detection2D.id`` of the object.
        object_label: class label of the object.
        affordance: the affordance word from the model's answer ("" when it named none).
        geometry_source: ``"mesh:<uri>"``, ``"proxy:<shape>"``, ``"points:<uri>"`` or ``"depth"``.
        points: (N, 3) metres; point_affordance: (N,) probabilities in [0, 1].
        threshold: decision threshold in [0, 1].
        contact, robot_grasp_clearance: optional (N,) maps in [0, 1] (see :func:`affordance_cloud`).
        body_distance: optional (N,) metres from each point to the posed person's body.

    Raises:
        ValueError: geometry_source of another form, or see :func:`affordance_cloud`.
    """
    if not (geometry_source == "depth" or geometry_source.startswith(("mesh:", "proxy:", "points:"))):
        raise ValueError("geometry_source must be 'mesh:<uri>', 'proxy:<shape>', 'points:<uri>' or 'depth', "
                         f"got {geometry_source!r}")
    msg = ObjectAffordance()
    msg.header = header
    msg.detection_id = detection_id
    msg.object_label = object_label
    msg.affordance = affordance
    msg.geometry_source = geometry_source
    msg.points = affordance_cloud(header, points, point_affordance, contact, robot_grasp_clearance, body_distance)
    msg.threshold = _threshold(threshold)
    return _not_placed(msg)


def _placed(msg: ObjectAffordance, scene) -> None:
    """Fill ``msg``'s placement fields from an ``ObjectInScene``: pose (the rotation as a unit
    quaternion, scipy's (x, y, z, w) order) and scale, fit status and residuals."""
    from scipy.spatial.transform import Rotation

    msg.placement, msg.fit_status, msg.scale = scene.placement, scene.fit_status, float(scene.scale)
    x, y, z, w = Rotation.from_matrix(np.asarray(scene.rotation, np.float64)).as_quat()
    msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z, msg.pose.orientation.w = (
        float(x), float(y), float(z), float(w))
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in scene.translation)
    msg.contact_distance, msg.penetration_depth, msg.box_iou = (
        float(scene.contact_distance), float(scene.penetration_depth), float(scene.box_iou))


def _not_placed(msg: ObjectAffordance) -> ObjectAffordance:
    """``msg`` with the placement fields of an object that is not placed by a fit: scale 1,
    identity pose, the residuals NaN (not computed)."""
    msg.scale = 1.0
    msg.contact_distance = msg.penetration_depth = msg.box_iou = float("nan")
    return msg


def interaction_msg(header: Header, det_msg, interaction, threshold: float, camera_frame: str = "",
                    person=None, part_vertex_ids: Mapping[str, np.ndarray] | None = None,
                    scene=None) -> Interaction:
    """interactvlm_msgs/Interaction of one pipeline result. A missing part (no model, or no
    geometry for the class) becomes an empty HumanContact / ObjectAffordance (body_model
    or geometry_source "", ``threshold`` the configured one); the associated person's id and
    the image region shown to the model are copied. Affordance points from depth, and objects
    the scene stage placed, are in ``camera_frame`` (the depth image's optical frame, else the
    image's); mesh points not placed in the frame :func:`object_frame_id` of the label
    ("<name>_model").

    Args:
        header: the image's header; det_msg: the input ``vision_msgs/Detection2D``;
        interaction: the pipeline's ``InteractionResult``; threshold: the decision threshold.
        person: the associated person's ``body.people.PersonEstimate`` when its body was
            posed: a 3D contact map on the same body model then also fills ``posed_body``,
            ``placement_method`` and ``part_contact_centroids`` (in ``camera_frame``).
        part_vertex_ids: the body model's part -> vertex ids (needed with ``person``).
        scene: the object's ``reconstruction.scene.ObjectInScene`` (None: not through the scene
            stage): its placement, pose, fit status and residuals, and the proximity fields
            (``body_distance`` on the object's points, ``object_distance`` on the posed body).
    """
    det = interaction.detection
    out = Interaction(detection=det_msg, person_detection_id=interaction.person.id if interaction.person else "")
    if interaction.image_region is not None:
        x0, y0, x1, y1 = interaction.image_region
        out.image_region = RegionOfInterest(x_offset=int(x0), y_offset=int(y0), width=int(x1 - x0),
                                            height=int(y1 - y0), do_rectify=False)
    contact = interaction.human_contact
    if contact is not None and contact.image_probabilities is not None:  # 2D contact model
        out.human_contact = HumanContact(header=header, object_label=det.label, detection_id=det.id,
                                         threshold=_threshold(contact.threshold),
                                         body_parts=[str(part) for part in contact.body_parts],
                                         contact_image=probability_image(header, contact.image_probabilities))
        if contact.contact_points is not None:
            cloud_header = Header(stamp=header.stamp, frame_id=camera_frame or header.frame_id)
            out.human_contact.contact_points = probability_cloud(cloud_header, contact.contact_points,
                                                                 {"contact": contact.contact_point_probabilities})
        out.contact_answer = contact.answer
    elif contact is not None:
        posed = {}
        if person is not None and person.posed is not None and person.posed.body_model == contact.body_model:
            posed = dict(posed_vertices=person.posed.vertices, placement_method=person.placement_method,
                         part_vertex_ids=part_vertex_ids, posed_frame_id=camera_frame,
                         object_distance=scene.object_distance if scene is not None else None)
        out.human_contact = human_contact_msg(header, contact.body_model, contact.vertex_probabilities,
                                              contact.threshold, contact.body_parts, det.label, det.id, **posed)
        out.contact_answer = contact.answer
    else:
        out.human_contact = HumanContact(header=header, object_label=det.label, detection_id=det.id,
                                         threshold=float(threshold))
    affordance = interaction.object_affordance
    from_depth = affordance is not None and affordance.geometry_source == "depth"
    placed = from_depth or (scene is not None and bool(scene.placement))
    object_header = Header(stamp=header.stamp, frame_id=(camera_frame or header.frame_id) if placed
                           else object_frame_id(det.label))
    if affordance is not None:
        points = scene.points if scene is not None and scene.points is not None else affordance.points
        out.object_affordance = object_affordance_msg(object_header, det.id, det.label, affordance.affordance,
                                                      affordance.geometry_source, points,
                                                      affordance.probabilities, affordance.threshold,
                                                      affordance.contact, affordance.grasp_clearance,
                                                      scene.body_distance if scene is not None else None)
        if scene is not None:
            _placed(out.object_affordance, scene)
        elif from_depth:
            out.object_affordance.placement = "depth"
        out.affordance_answer = affordance.answer
        out.object_contact_answer = affordance.contact_answer
    else:
        out.object_affordance = _not_placed(ObjectAffordance(
            header=object_header, detection_id=det.id, object_label=det.label, threshold=float(threshold),
            points=affordance_cloud(object_header, np.zeros((0, 3)), np.zeros(0))))
    return out


def interaction_array_msg(header: Header, detection_msgs, result, threshold: float,
                          camera_frame: str = "", task: str = "", people=None,
                          part_vertex_ids: Mapping[str, np.ndarray] | None = None,
                          scene=None) -> InteractionArray:
    """``interactvlm_msgs/InteractionArray`` of one estimate: the image's header, one
    :func:`interaction_msg` per detection (input order), model id, random-weights flag, the
    task the maps were made for and the total inference time (ms); with ``people`` (a
    ``body.people.PeopleResult``) one :func:`person_msg` per person the pose source found
    (input order), in ``camera_frame``, and each object's contact on its posed person.

    Args:
        part_vertex_ids: the body model's part -> vertex ids (needed with ``people``).
        scene: the scene stage's result (``reconstruction.scene.SceneResult``: objects by
            interaction index), or None.
    """
    message = InteractionArray(header=header, model_id=result.model_id, weights_are_random=result.weights_are_random,
                               inference_ms=float(result.timings_ms.get("total", 0.0)), task=task)
    persons = people.persons if people is not None else []
    for index, (det_msg, interaction) in enumerate(zip(detection_msgs, result.interactions)):
        person = people.posed(interaction.person.id) if people is not None and interaction.person else None
        placed = scene.objects.get(index) if scene is not None else None
        message.interactions.append(interaction_msg(header, det_msg, interaction, threshold, camera_frame, person,
                                                    part_vertex_ids, placed))
    optical = Header(stamp=header.stamp, frame_id=camera_frame or header.frame_id)
    for person in persons:
        if person.landmarks is None:
            continue
        placed = person.placement is not None
        body = person.posed
        message.persons.append(person_msg(
            optical, person.detection.id, person.landmarks.image_xy, person.landmarks.visibility,
            landmarks=person.placement.camera_xyz if placed else None, placement_method=person.placement_method,
            body_model=body.body_model if body is not None else "", vertices=body.vertices if body is not None else None,
            normals=body.normals if body is not None else None))
    return message
