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

Colours come from matplotlib's "inferno" colour map, quantised to 256 levels (probability 0
dark, 1 bright yellow). The body's triangle points are built once per body and reused.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

#: Turns SMPL's frame (+Y up, facing +Z, +X the body's left) into REP-103's (+Z up, +X
#: forward, +Y left): a 120 degree rotation about (1, 1, 1) mapping x->y, y->z, z->x.
SMPL_TO_ROS = Quaternion(x=0.5, y=0.5, z=0.5, w=0.5)
SPACING = 2.0  # metres between interactions


def _palette() -> list[ColorRGBA]:
    from matplotlib import colormaps

    rgba = colormaps["inferno"](np.linspace(0.0, 1.0, 256))
    return [ColorRGBA(r=float(r), g=float(g), b=float(b), a=1.0) for r, g, b, _ in rgba]


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
            corners = vertices[faces.reshape(-1)].astype(float).tolist()
            self._body_points = [Point(x=x, y=y, z=z) for x, y, z in corners]
            self._body_key = key
        return self._body_points

    def build(self, header: Header, interactions, body_vertices: np.ndarray, body_faces: np.ndarray,
              weights_are_random: bool, camera_frame: str = "") -> MarkerArray:
        """MarkerArray for pipeline results.

        Args:
            header: stamp of the source image and the markers' display frame.
            interactions: ``pipeline.InteractionResult`` list.
            body_vertices: (V, 3), body_faces: (F, 3) of the body the contact lives on.
        """
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
                if affordance.geometry_source == "depth" and camera_frame:
                    where = dict(header=Header(stamp=header.stamp, frame_id=camera_frame), pose=Pose())
                else:
                    where = dict(header=header, pose=Pose(position=Point(x=0.8, y=y), orientation=SMPL_TO_ROS))
                markers.append(self._points_marker("object", i, affordance.points, affordance.probabilities, **where))
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
