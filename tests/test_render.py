"""The OpenGL renderer against the exact ray-casting oracle, and the render-level details
(colours, lighting switch, splats, cache)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from interactvlm_ros.geometry.camera import BODY_VIEWS, OBJECT_VIEWS, ViewSpec, view_camera
from interactvlm_ros.geometry.mesh import TriangleMesh
from interactvlm_ros.render.gl import GLRasterizer
from raycast_oracle import raycast_mesh, splat_points
from interactvlm_ros.render.views import Renderer, alpha_composite, normal_colors, xyz_colors

EDGE_TOLERANCE = 2e-3  # barycentric distance from an edge that still counts as "on" it


@pytest.fixture(scope="module")
def rasterizer():
    gl = GLRasterizer()
    yield gl
    gl.release()


def torus_and_ball() -> TriangleMesh:
    """A non-convex scene: a torus with a ball through its hole (self-occlusion everywhere)."""
    torus = trimesh.creation.torus(major_radius=0.32, minor_radius=0.12, major_sections=48, minor_sections=24)
    ball = trimesh.creation.icosphere(subdivisions=3, radius=0.18)
    ball.apply_translation([0.0, 0.1, 0.05])
    both = trimesh.util.concatenate([torus, ball])
    return TriangleMesh(both.vertices, both.faces)


def _explain_disagreements(gl_fragments, oracle, faces):
    """Every pixel where the two disagree must be a tie on an edge or vertex the faces share,
    or a silhouette pixel whose centre lies on the hit face's boundary."""
    unexplained = []
    differ = np.argwhere(gl_fragments.face_ids != oracle.face_ids)
    for row, col in differ:
        a, b = gl_fragments.face_ids[row, col], oracle.face_ids[row, col]
        if a < 0 or b < 0:  # silhouette: the hitting renderer's point must be on the face's rim
            hit = gl_fragments if a >= 0 else oracle
            if hit.barycentric[row, col].min() > EDGE_TOLERANCE:
                unexplained.append((row, col, "silhouette"))
            continue
        shared = set(faces[a]) & set(faces[b])
        weights = dict(zip(faces[b], oracle.barycentric[row, col]))
        off_edge = sum(w for v, w in weights.items() if v not in shared)
        if not shared or off_edge > EDGE_TOLERANCE:
            unexplained.append((row, col, f"faces {a} and {b}"))
    return differ.shape[0], unexplained


@pytest.mark.parametrize("view", OBJECT_VIEWS + BODY_VIEWS[1:2], ids=lambda v: v.name)
def test_gl_matches_ray_casting(rasterizer, view):
    mesh = torus_and_ball()
    camera = view_camera(view, 256)
    _, fragments = rasterizer.rasterize_mesh(mesh.vertices, mesh.faces, camera)
    oracle = raycast_mesh(mesh.vertices, mesh.faces, camera)
    assert oracle.mask.sum() > 2_000  # the mesh covers a good part of the image
    assert np.mean(fragments.face_ids == oracle.face_ids) >= 0.995
    count, unexplained = _explain_disagreements(fragments, oracle, mesh.faces)
    assert unexplained == [], f"{len(unexplained)} of {count} disagreeing pixels are not ties: {unexplained[:5]}"
    same = (fragments.face_ids == oracle.face_ids) & oracle.mask
    np.testing.assert_allclose(fragments.depth[same], oracle.depth[same], rtol=1e-4)
    np.testing.assert_allclose(fragments.barycentric[same], oracle.barycentric[same], atol=2e-3)
    np.testing.assert_allclose(fragments.barycentric[same].sum(axis=1), 1.0, atol=1e-3)
    assert np.all(np.isinf(fragments.depth[~fragments.mask]))
    assert np.all(fragments.barycentric[~fragments.mask] == 0)


def test_a_small_triangle_lands_on_the_projected_pixel(rasterizer):
    """Camera conventions end to end: a tiny triangle around a known point covers exactly
    the pixel its projection falls in."""
    camera = view_camera(BODY_VIEWS[0], 64)
    point = np.array([0.21, -0.13, 0.07])
    uv, depth = camera.project(point[None])
    col, row = np.floor(uv[0]).astype(int)
    # Build the triangle in the view frame around the pixel centre, 0.3 px across.
    right, up = -camera.rotation[:, 0], camera.rotation[:, 1]  # world directions of image right/up
    pixel = 2.0 * camera.tan_half_fov * depth[0] / 64
    centre = point + ((col + 0.5 - uv[0, 0]) * right - (row + 0.5 - uv[0, 1]) * up) * pixel
    corners = np.stack([centre + 0.15 * pixel * d for d in (right, up - right, -up - right)])
    _, fragments = rasterizer.rasterize_mesh(corners, np.array([[0, 1, 2]]), camera)
    assert np.argwhere(fragments.mask).tolist() == [[row, col]]
    assert fragments.depth[row, col] == pytest.approx(depth[0], rel=1e-5)


def test_colours_and_background(rasterizer):
    mesh = torus_and_ball()
    renderer = Renderer(rasterizer)
    render = renderer.render_object(mesh, OBJECT_VIEWS[:1], image_size=128)[0]
    background = ~render.fragments.mask
    assert np.all(render.color[background] == 255)
    # Unlit, the colour of a pixel is the barycentric blend of its face's vertex colours.
    colors = xyz_colors(mesh.vertices)
    color, fragments = rasterizer.rasterize_mesh(mesh.vertices, mesh.faces, render.camera, colors)
    hit = np.argwhere(fragments.mask)
    ids = fragments.vertex_ids(mesh.faces)
    for row, col in hit[:: max(1, len(hit) // 200)]:
        expected = (fragments.barycentric[row, col, :, None] * colors[ids[row, col]]).sum(axis=0)
        np.testing.assert_allclose(color[row, col] / 255.0, expected, atol=1.5 / 255)


def test_colour_formulas():
    points = np.array([[0.0, 2.0, 5.0], [1.0, 4.0, 5.0], [0.5, 3.0, 5.0]])
    np.testing.assert_allclose(xyz_colors(points), [[0.1, 0.1, 0.5], [0.9, 0.9, 0.5], [0.5, 0.5, 0.5]], atol=1e-7)
    # A regular icosahedron: by symmetry every vertex normal is the radial direction.
    ico = trimesh.creation.icosahedron()
    mesh = TriangleMesh(ico.vertices * 0.7, ico.faces)
    radial = ico.vertices / np.linalg.norm(ico.vertices, axis=1, keepdims=True)
    np.testing.assert_allclose(normal_colors(mesh), (radial + 1) / 2, atol=1e-6)


def test_phong_lighting_follows_the_light(rasterizer):
    """A sphere lit from +Z is brighter on its +Z side than on its -Z side; ambient alone
    (0.5) is the floor of the shaded colour."""
    ball = trimesh.creation.icosphere(subdivisions=3, radius=0.4)
    mesh = TriangleMesh(ball.vertices, ball.faces)
    view = ViewSpec("side", 1.5, 0.0, 90.0, light=(0.0, 0.0, 3.0))  # camera on +X
    render = Renderer(rasterizer).render_mesh(mesh, [view], 96, np.ones((mesh.num_vertices, 3)))[0]
    gray = render.color[..., 0].astype(float)
    hit = render.fragments.mask
    # Camera on +X: world +Z is on the image's left.
    left, right = gray[:, :40][hit[:, :40]], gray[:, 56:][hit[:, 56:]]
    assert left.mean() > right.mean() + 20
    assert gray[hit].min() >= 0.5 * 255 - 1


def test_point_splats_match_brute_force(rasterizer):
    rng = np.random.default_rng(3)
    points = rng.normal(size=(300, 3)) * 0.3
    camera = view_camera(OBJECT_VIEWS[0], 96)
    layers = rasterizer.rasterize_points(points, camera, radius=0.05, layers=3)
    oracle = splat_points(points, camera, radius=0.05)
    assert oracle.mask.sum() > 1000
    assert np.mean(layers[0].point_ids == oracle.point_ids) >= 0.995
    # Deeper layers hold farther points than the layer in front of them.
    for front, back in zip(layers, layers[1:]):
        both = front.mask & back.mask
        assert both.any() and np.all(back.depth[both] > front.depth[both])
        assert not np.any(back.mask & ~front.mask)


def test_alpha_compositing_of_one_splat(rasterizer):
    """One point: alpha = 1 - d^2 / r^2 over its colour; white where no splat."""
    camera = view_camera(ViewSpec("front", 2.0, 0.0, 0.0), 64)
    points = np.zeros((1, 3))
    layers = rasterizer.rasterize_points(points, camera, radius=0.25, layers=2)
    image = alpha_composite(layers, points, np.array([[0.2, 0.4, 0.6]]), camera, 0.25)
    row = col = 32  # pixel centre at ndc (-1/64, -1/64): d^2 = 2 / 64^2
    alpha = 1 - (2 / 64**2) / 0.25**2
    np.testing.assert_allclose(image[row, col], np.round(np.array([0.2, 0.4, 0.6]) * alpha * 255), atol=1)
    assert np.all(image[0, 0] == 255)
    assert not layers[1].mask.any()


def test_colours_are_truncated_to_8_bit_like_interactvlm(rasterizer):
    """InteractVLM stores renders as ``(image * 255).astype(np.uint8)``: 0.3 * 255 = 76.5 must
    become 76 (rounding would give 77), white background 255; the splat compositor too."""
    from interactvlm_ros.render.gl import to_uint8

    assert to_uint8(np.array([0.3, 0.5, 1.0, 0.0, 1.2, -0.1, 0.999], np.float32)).tolist() == [76, 127, 255, 0, 255,
                                                                                              0, 254]
    camera = view_camera(ViewSpec("front", 2.0, 0.0, 0.0), 64)
    big = TriangleMesh(np.array([[-5.0, -5.0, 0.0], [5.0, -5.0, 0.0], [0.0, 8.0, 0.0]]), np.array([[0, 1, 2]]))
    color, fragments = rasterizer.rasterize_mesh(big.vertices, big.faces, camera, np.full((3, 3), 0.3))
    assert (fragments.face_ids == 0).all() and (color == 76).all()
    color, fragments = rasterizer.rasterize_mesh(big.vertices * 0.1, big.faces, camera, np.full((3, 3), 0.3))
    assert set(np.unique(color)) == {76, 255} and (color[fragments.face_ids < 0] == 255).all()
    points = np.zeros((1, 3), np.float32)
    layers = rasterizer.rasterize_points(points, camera, 0.2, 1)
    image = alpha_composite(layers, points, np.full((1, 3), 0.3, np.float32), camera, 0.2)
    # PyTorch3D composites covered pixels without the background: 0.3 * alpha, alpha = 1 - d^2/r^2
    # at the pixel centres nearest the point (d^2 = 2 half-pixels^2 in NDC): 75.57 -> 75.
    centre_alpha = 1.0 - ((0.5 * 2 / 64) ** 2 * 2) / 0.04
    assert image[31, 31, 0] == 75 == int(np.float32(0.3 * centre_alpha) * np.float32(255))


def test_barycentrics_are_non_negative_and_renormalised():
    from interactvlm_ros.render.fragments import clamp_barycentric

    raw = np.array([[[-3.3e-3, 0.5, 0.5033], [0.2, 0.3, 0.5]], [[0.7, 0.3, 0.0], [0.1, 0.1, 0.1]]], np.float32)
    hit = np.array([[True, True], [True, False]])
    clamped = clamp_barycentric(raw, hit)
    np.testing.assert_allclose(clamped[0, 0], [0.0, 0.5 / 1.0033, 0.5033 / 1.0033], rtol=1e-6)
    np.testing.assert_allclose(clamped[0, 1], raw[0, 1], rtol=1e-6)
    np.testing.assert_array_equal(clamped[1, 1], [0, 0, 0])  # background


def test_face_seen_edge_on(rasterizer):
    """Two triangles sharing an edge: one faces the camera at (0, 0, 2), the other lies in the
    plane y = 0, which contains the camera centre (seen exactly edge-on). The edge-on face
    covers no pixel, every weight is >= 0 and sums to 1, and its own vertex (3) is not seen
    from this view: the lift does not count the view for it (InteractVLM: weight sum <= 0)."""
    from interactvlm_ros.lift.lifting import Lifter

    vertices = np.array([[0, 0, 0], [0.5, 0, 0], [0, -0.5, 0], [0, 0, 1.0]])
    faces = np.array([[0, 1, 2], [0, 1, 3]])
    camera = view_camera(ViewSpec("front", 2.0, 0.0, 0.0), 128)
    _, fragments = rasterizer.rasterize_mesh(vertices, faces, camera)
    assert (fragments.face_ids == 0).sum() > 300 and not (fragments.face_ids == 1).any()
    hit = fragments.mask
    assert (fragments.barycentric >= 0).all()
    np.testing.assert_allclose(fragments.barycentric[hit].sum(axis=1), 1.0, atol=1e-6)
    lifter = Lifter.for_mesh([fragments], faces, 4)
    assert lifter.visible[0].tolist() == [True, True, True, False]
    lifted = lifter.lift(np.full((1, 128, 128), 20.0, np.float32))
    np.testing.assert_allclose(lifted, [1, 1, 1, 0], atol=1e-6)


def test_body_barycentrics_at_full_size(rasterizer):
    """On the open body at InteractVLM's 1024 px (where the GL interpolation gave weights down
    to -3.3e-3 before clamping) every weight is >= 0 and each hit pixel's sum is 1."""
    from interactvlm_ros.geometry.open_body import load_open_body

    body = load_open_body()
    _, fragments = rasterizer.rasterize_mesh(body.vertices, body.faces, view_camera(BODY_VIEWS[0], 1024))
    weights = fragments.barycentric[fragments.mask]
    assert len(weights) > 50_000 and weights.min() >= 0.0
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)


def test_two_renderers_in_one_thread():
    """Each call makes its renderer's context current: a second renderer (another estimator
    in the same thread) used in between must not make the first one draw into its context."""
    camera = view_camera(ViewSpec("front", 2.0, 0.0, 0.0), 64)
    big = TriangleMesh(np.array([[-5.0, -5.0, 0.0], [5.0, -5.0, 0.0], [0.0, 8.0, 0.0]]), np.array([[0, 1, 2]]))
    first, second = GLRasterizer(), GLRasterizer()
    try:
        for rasterizer, level in ((first, 0.3), (second, 0.6), (first, 0.3)):
            color, fragments = rasterizer.rasterize_mesh(big.vertices, big.faces, camera, np.full((3, 3), level))
            assert (fragments.face_ids == 0).all() and (color == int(np.float32(level) * np.float32(255))).all()
    finally:
        second.release()
        first.release()
