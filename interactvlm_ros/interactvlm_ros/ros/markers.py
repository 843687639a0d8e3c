"""RViz markers for estimated interactions.

Per interaction i, in ``frame_id`` (default "interactvlm"; set RViz's Fixed Frame to it):

* ``body``: the body mesh (TRIANGLE_LIST) with vertex colours from the contact probability,
  at (0, 2 i, 0), turned so the body stands along +Z and faces +X (REP-103);
* ``object``: the object's points (POINTS, 1 cm) coloured by affordance, at (0.8, 2 i, 0),
  turned the same way; points from depth are drawn where they are instead, in the camera's
  optical frame (RViz then needs the camera's TF to the fixed frame);
* ``contact_points``: for the 2D contact model with depth, the touching body parts' points
  (POINTS, 1 cm) coloured by contact probability, where they are in the camera's optical frame;
* ``label``: a text above the body: class, detection id, affordance word, body parts, and
  "RANDOM WEIGHTS" when the model's weights are random.

Per posed person (:meth:`MarkerBuilder.posed_body_marker`): ``posed_body``, the person's body
mesh (TRIANGLE_LIST) where it is in the camera's optical frame, coloured by contact, id = the
person's index in the frame.

Colours come from matplotlib's "inferno" colour map, quantised to 256 levels (probability 0
dark, 1 bright yellow). The body's triangle points are built once per body and reused.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from ..validation import unit_interval

#: Turns SMPL's frame (+Y up, facing +Z, +X the body's left) into REP-103's (+Z up, +X
#: forward, +Y left): a 120 degree rotation about (1, 1, 1) mapping x->y, y->z, z->x.
SMPL_TO_ROS = Quaternion(x=0.5, y=0.5, z=0.5, w=0.5)
SPACING = 2.0  # metres between interactions


def _palette() -> list[ColorRGBA]:
    from matplotlib import colormaps

    rgba = colormaps["inferno"](np.linspace(0.0, 1.0, 256))
    return [ColorRGBA(r=float(r), g=float(g), b=float(b), a=1.0) for r, g, b, _ in rgba]


def _corner_points(vertices: np.ndarray, faces: np.ndarray) -> list[Point]:
    """The corners of every face, face by face: ``3 F`` points (a TRIANGLE_LIST's points)."""
    corners = np.asarray(vertices)[np.asarray(faces).reshape(-1)].astype(float).tolist()
    return [Point(x=x, y=y, z=z) for x, y, z in corners]


class MarkerBuilder:
    """Builds MarkerArrays; keeps the palette and the body's triangle points between calls."""

    def __init__(self):
        self._palette = _palette()
        self._body_key = None
        self._body_points: list[Point] = []

    def _colors(self, probabilities: np.ndarray) -> list[ColorRGBA]:
        levels = np.clip(np.round(np.nan_to_num(probabilities) * 255), 0, 255).astype(np.int64)
        palette = self._palette
        return [palette[i] for i in levels.tolist()]

    def _points_marker(self, ns: str, marker_id: int, points: np.ndarray, probabilities: np.ndarray, header: Header,
                       pose: Pose) -> Marker:
        """A POINTS marker of 1 cm points, (N, 3) ``points`` in ``header.frame_id`` placed by
        ``pose``, coloured by ``probabilities`` (N,)."""
        marker = Marker(header=header, ns=ns, id=marker_id, type=Marker.POINTS, action=Marker.ADD, pose=pose,
                        scale=Vector3(x=0.01, y=0.01, z=0.01), lifetime=Duration())
        marker.points = [Point(x=px, y=py, z=pz) for px, py, pz in np.asarray(points, float).tolist()]
        marker.colors = self._colors(probabilities)
        return marker

    def _triangle_points(self, vertices: np.ndarray, faces: np.ndarray) -> list[Point]:
        key = (vertices.ctypes.data, vertices.shape, faces.shape)
        if key != self._body_key:
            self._body_points = _corner_points(vertices, faces)
            self._body_key = key
        return self._body_points

    def posed_body_marker(self, header: Header, person_index: int, vertices, faces, contact=None) -> Marker:
        """The posed body of one person as a TRIANGLE_LIST in ``header.frame_id`` (the
        camera's optical frame the vertices are in; identity pose), namespace ``posed_body``,
        id ``person_index``: three points per face (corners in face order), each corner
        coloured by its vertex's contact (the palette of the other markers); uniform grey
        (``color``, no per-corner colours) without a contact map.

        Args:
            header: stamp of the source image; frame_id the optical frame of ``vertices``.
            person_index: the person's index in the frame (the marker id), >= 0.
            vertices: (V, 3) metres; faces: (F, 3) vertex ids; contact: (V,) in [0, 1] (e.g.
                the elementwise maximum of the person's contact maps over its objects) or None.

        Raises:
            ValueError: a negative index, wrong shapes, non-finite vertices, face ids outside
                [0, V), contact not in [0, 1].
        """
        xyz = np.asarray(vertices, dtype=np.float64)
        tri = np.asarray(faces)
        if person_index < 0:
            raise ValueError(f"person_index must be >= 0, got {person_index}")
        if xyz.ndim != 2 or xyz.shape[1] != 3 or not np.isfinite(xyz).all():
            raise ValueError(f"vertices must be finite (V, 3), got shape {xyz.shape}")
        if tri.ndim != 2 or tri.shape[1] != 3 or (tri.size and not np.issubdtype(tri.dtype, np.integer)):
            raise ValueError(f"faces must be (F, 3) vertex ids, got {tri.dtype} {tri.shape}")
        if tri.size and (tri.min() < 0 or tri.max() >= len(xyz)):
            raise ValueError(f"face vertex ids must lie in [0, {len(xyz)}), got [{tri.min()}, {tri.max()}]")
        marker = Marker(header=header, ns="posed_body", id=int(person_index), type=Marker.TRIANGLE_LIST,
                        action=Marker.ADD, pose=Pose(), scale=Vector3(x=1.0, y=1.0, z=1.0), lifetime=Duration(),
                        color=ColorRGBA(r=0.7, g=0.7, b=0.7, a=1.0))
        marker.points = _corner_points(xyz, tri)
        if contact is not None:
            p = unit_interval(contact, "contact")
            if p.shape != (len(xyz),):
                raise ValueError(f"{len(xyz)} vertices but {p.size} contact values")
            marker.colors = self._colors(p[tri.reshape(-1)])
        return marker

    def build(self, header: Header, interactions, body_vertices: np.ndarray, body_faces: np.ndarray,
              weights_are_random: bool, camera_frame: str = "", placed: dict | None = None) -> MarkerArray:
        """MarkerArray for pipeline results.

        Args:
            header: stamp of the source image and the markers' display frame.
            interactions: ``pipeline.InteractionResult`` list.
            body_vertices: (V, 3), body_faces: (F, 3) of the body the contact lives on.
            camera_frame: the optical frame of depth points and placed objects.
            placed: interaction index -> (N, 3) the object's points placed in ``camera_frame``
                by the scene stage (drawn there instead of beside the body).
        """
        placed = placed or {}
        markers = [Marker(header=header, action=Marker.DELETEALL)]
        faces = np.asarray(body_faces)
        for i, interaction in enumerate(interactions):
            y = SPACING * i
            det_id = interaction.detection.id or str(i)
            contact = interaction.human_contact
            if contact is not None and len(contact.vertex_probabilities) == len(body_vertices):
                body = Marker(header=header, ns="body", id=i, type=Marker.TRIANGLE_LIST, action=Marker.ADD,
                              pose=Pose(position=Point(y=y), orientation=SMPL_TO_ROS),
                              scale=Vector3(x=1.0, y=1.0, z=1.0), lifetime=Duration())
                body.points = self._triangle_points(body_vertices, faces)
                body.colors = self._colors(contact.vertex_probabilities[faces.reshape(-1)])
                markers.append(body)
            if contact is not None and contact.contact_points is not None and len(contact.contact_points):
                markers.append(self._points_marker(
                    "contact_points", i, contact.contact_points, contact.contact_point_probabilities,
                    header=Header(stamp=header.stamp, frame_id=camera_frame or header.frame_id), pose=Pose()))
            affordance = interaction.object_affordance
            if affordance is not None and len(affordance.points):
                points = placed.get(i, affordance.points)
                if (affordance.geometry_source == "depth" or i in placed) and camera_frame:
                    where = dict(header=Header(stamp=header.stamp, frame_id=camera_frame), pose=Pose())
                else:
                    where = dict(header=header, pose=Pose(position=Point(x=0.8, y=y), orientation=SMPL_TO_ROS))
                markers.append(self._points_marker("object", i, points, affordance.probabilities, **where))
            words = [f"{interaction.detection.label} ({det_id})"]
            if affordance is not None and affordance.affordance:
                words.append(f"affordance: {affordance.affordance}")
            if contact is not None and contact.body_parts:
                words.append("contact: " + ", ".join(contact.body_parts))
            if weights_are_random:
                words.append("RANDOM WEIGHTS")
            markers.append(Marker(header=header, ns="label", id=i, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                                  pose=Pose(position=Point(y=y, z=1.2)), scale=Vector3(z=0.12),
                                  color=ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0), text="\n".join(words),
                                  lifetime=Duration()))
        return MarkerArray(markers=markers)
