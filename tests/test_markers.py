"""RViz markers of posed bodies: exact contents on a small mesh."""

from __future__ import annotations

import numpy as np
import pytest
from geometry_msgs.msg import Pose
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from interactvlm_ros.ros.markers import MarkerBuilder

#: A 1 m x 1 m square, 2 m in front of the camera, as two triangles.
VERTICES = np.array([[0.0, 0.0, 2.0], [1.0, 0.0, 2.0], [1.0, 1.0, 2.5], [0.0, 1.0, 2.5]], np.float32)
FACES = np.array([[0, 1, 2], [0, 2, 3]])
HEADER = Header(frame_id="camera_color_optical_frame")


def _inferno(p: float):
    from matplotlib import colormaps

    r, g, b, _ = colormaps["inferno"](np.linspace(0.0, 1.0, 256))[int(np.round(p * 255))]
    return (r, g, b, 1.0)


def test_posed_body_marker_is_the_mesh_where_it_is_coloured_by_contact():
    contact = np.array([0.0, 1.0, 0.5, 0.25])
    marker = MarkerBuilder().posed_body_marker(HEADER, 3, VERTICES, FACES, contact)
    assert (marker.ns, marker.id, marker.type, marker.action) == ("posed_body", 3, Marker.TRIANGLE_LIST, Marker.ADD)
    assert marker.header.frame_id == "camera_color_optical_frame" and marker.pose == Pose()
    assert (marker.scale.x, marker.scale.y, marker.scale.z) == (1.0, 1.0, 1.0)
    corners = [(p.x, p.y, p.z) for p in marker.points]
    assert corners == [(0, 0, 2), (1, 0, 2), (1, 1, 2.5), (0, 0, 2), (1, 1, 2.5), (0, 1, 2.5)]
    colours = [(c.r, c.g, c.b, c.a) for c in marker.colors]
    assert colours == [_inferno(p) for p in (0.0, 1.0, 0.5, 0.0, 0.5, 0.25)]
    assert colours[0] != colours[1]  # the palette does tell contact from none
    # Without a contact map: one grey, no per-corner colours.
    grey = MarkerBuilder().posed_body_marker(HEADER, 0, VERTICES, FACES)
    assert list(grey.colors) == [] and (grey.color.r, grey.color.g, grey.color.b, grey.color.a) == (0.7, 0.7, 0.7, 1.0)
    assert len(grey.points) == 6


def test_posed_body_marker_is_rebuilt_for_every_pose():
    """Posed vertices change every frame, possibly in the same buffer (a new array may reuse
    a freed one's address): nothing is cached by array identity."""
    builder = MarkerBuilder()
    vertices = VERTICES.copy()
    first = builder.posed_body_marker(HEADER, 0, vertices, FACES)
    vertices[:, 2] += 1.0
    second = builder.posed_body_marker(HEADER, 0, vertices, FACES)
    assert [p.z for p in first.points][:3] == [2.0, 2.0, 2.5]
    assert [p.z for p in second.points][:3] == [3.0, 3.0, 3.5]


@pytest.mark.parametrize("index, vertices, faces, contact, reason", [
    (-1, VERTICES, FACES, None, "person_index must be >= 0"),
    (0, VERTICES[:, :2], FACES, None, r"vertices must be finite \(V, 3\)"),
    (0, VERTICES + np.nan, FACES, None, "vertices must be finite"),
    (0, VERTICES, FACES[:, :2], None, r"faces must be \(F, 3\) vertex ids"),
    (0, VERTICES, FACES + 1, None, r"face vertex ids must lie in \[0, 4\), got \[1, 4\]"),
    (0, VERTICES, FACES, np.zeros(3), "4 vertices but 3 contact values"),
    (0, VERTICES, FACES, np.full(4, 2.0), r"contact must lie in \[0, 1\]"),
])
def test_posed_body_marker_refuses_bad_input(index, vertices, faces, contact, reason):
    with pytest.raises(ValueError, match=reason):
        MarkerBuilder().posed_body_marker(HEADER, index, vertices, faces, contact)
