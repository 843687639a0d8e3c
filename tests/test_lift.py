"""Lifting 2D logits to the geometry: analytic cases and an independent per-pixel reference."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from interactvlm_ros.geometry.camera import OBJECT_VIEWS, view_camera
from interactvlm_ros.geometry.mesh import TriangleMesh
from interactvlm_ros.lift import Lifter, logits_to_probabilities
from interactvlm_ros.render.gl import GLRasterizer

SIZE = 96


@pytest.fixture(scope="module")
def rasterizer():
    gl = GLRasterizer()
    yield gl
    gl.release()


def shell_with_hidden_core() -> tuple[TriangleMesh, np.ndarray]:
    """A ball (radius 0.45) enclosing a smaller ball (0.2): the core's vertices are invisible."""
    outer = trimesh.creation.icosphere(subdivisions=2, radius=0.45)
    inner = trimesh.creation.icosphere(subdivisions=1, radius=0.2)
    both = trimesh.util.concatenate([outer, inner])
    hidden = np.arange(len(outer.vertices), len(both.vertices))
    return TriangleMesh(both.vertices, both.faces), hidden


def fragments_of(rasterizer, mesh, views=OBJECT_VIEWS, size=SIZE):
    return [rasterizer.rasterize_mesh(mesh.vertices, mesh.faces, view_camera(v, size))[1] for v in views]


def reference_lift(fragments, faces, num_vertices, probabilities, vote_threshold=None):
    """The lifting formula pixel by pixel, with Python loops (independent of the sparse code)."""
    per_view = []
    for fragment, p in zip(fragments, probabilities):
        numerator, denominator = np.zeros(num_vertices), np.zeros(num_vertices)
        for row, col in np.argwhere(fragment.face_ids >= 0):
            if vote_threshold is not None and not p[row, col] > vote_threshold:
                continue
            for vertex, weight in zip(faces[fragment.face_ids[row, col]], fragment.barycentric[row, col]):
                numerator[vertex] += weight * p[row, col]
                denominator[vertex] += weight
        per_view.append((numerator, denominator))
    result = np.zeros(num_vertices)
    for vertex in range(num_vertices):
        values = [n[vertex] / d[vertex] for n, d in per_view if d[vertex] > 0]
        result[vertex] = np.mean(values) if values else 0.0
    return np.clip(result, 0, 1)


def test_probabilities_are_sigmoid_of_clamped_logits():
    logits = np.array([-1000.0, -20.0, 0.0, 2.0, 20.0, 1000.0])
    expected = 1 / (1 + np.exp(-np.clip(logits, -20, 20)))
    np.testing.assert_allclose(logits_to_probabilities(logits), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="NaN"):
        logits_to_probabilities(np.array([0.0, np.nan]))


@pytest.mark.parametrize("logit", [-3.0, 0.0, 1.5])
def test_constant_logit_lifts_to_its_probability_on_visible_vertices_only(rasterizer, logit):
    mesh, hidden = shell_with_hidden_core()
    lifter = Lifter.for_mesh(fragments_of(rasterizer, mesh), mesh.faces, mesh.num_vertices)
    lifted = lifter.lift(np.full((4, SIZE, SIZE), logit))
    visible = lifter.visible.any(axis=0)
    assert not visible[hidden].any()
    np.testing.assert_allclose(lifted[visible], 1 / (1 + np.exp(-logit)), rtol=1e-5)
    assert np.all(lifted[hidden] == 0)


def test_the_views_cover_every_vertex_a_camera_sees(rasterizer):
    """On a convex shell a face is seen by a camera iff it faces the camera. A vertex of a
    face that clearly faces a camera must get votes from it; a vertex whose faces all face
    clearly away must not."""
    mesh, hidden = shell_with_hidden_core()
    size = 256
    lifter = Lifter.for_mesh(fragments_of(rasterizer, mesh, size=size), mesh.faces, mesh.num_vertices)
    outer_faces = mesh.faces[np.all(mesh.faces < hidden[0], axis=1)]
    triangles = mesh.vertices[outer_faces].astype(np.float64)
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    for view, visible in zip(OBJECT_VIEWS, lifter.visible):
        to_camera = view_camera(view, size).centre - triangles.mean(axis=1)
        cosine = (normals * to_camera).sum(axis=1) / np.linalg.norm(to_camera, axis=1)
        facing = np.zeros(mesh.num_vertices, bool)
        facing[outer_faces[cosine > 0.1].ravel()] = True
        not_away = np.zeros(mesh.num_vertices, bool)
        not_away[outer_faces[cosine > -0.1].ravel()] = True
        assert np.all(visible[facing]), view.name
        assert not np.any(visible[: hidden[0]][~not_away[: hidden[0]]]), view.name
    # InteractVLM's four object views leave the front-bottom of a ball unseen.
    assert 0 < (~lifter.visible[:, : hidden[0]].any(axis=0)).sum() < 10


def test_painted_faces_lift_to_their_vertices(rasterizer):
    mesh, hidden = shell_with_hidden_core()
    fragments = fragments_of(rasterizer, mesh)
    # Paint the faces whose centroid has x > 0.1: logit +20 there, -20 everywhere else.
    painted = np.flatnonzero(mesh.vertices[mesh.faces].mean(axis=1)[:, 0] > 0.1)
    logits = np.stack([np.where(np.isin(f.face_ids, painted), 20.0, -20.0) for f in fragments])
    lifted = Lifter.for_mesh(fragments, mesh.faces, mesh.num_vertices).lift(logits)

    in_painted = np.zeros(mesh.num_vertices, bool)
    in_painted[mesh.faces[painted].ravel()] = True
    in_other = np.zeros(mesh.num_vertices, bool)
    in_other[mesh.faces[np.setdiff1d(np.arange(mesh.num_faces), painted)].ravel()] = True
    assert np.all(lifted[~in_painted] < 1e-8)  # no painted face touches them
    seen = Lifter.for_mesh(fragments, mesh.faces, mesh.num_vertices).visible.any(axis=0)
    assert np.all(lifted[in_painted & ~in_other & seen] > 1 - 1e-6)  # only painted faces touch them
    assert np.all(lifted[~seen] == 0)
    border = in_painted & in_other & seen
    assert border.any() and np.all(lifted[border] > 1e-8)
    assert np.any(lifted[border] < 0.99)  # seen through painted and unpainted faces: mixed
    assert set(np.flatnonzero(lifted > 0.5)) <= set(np.flatnonzero(in_painted))
    # And the exact values, against the per-pixel reference.
    expected = reference_lift(fragments, mesh.faces, mesh.num_vertices, logits_to_probabilities(logits))
    np.testing.assert_allclose(lifted, expected, atol=1e-5)


def test_random_logits_match_the_reference(rasterizer):
    mesh, _ = shell_with_hidden_core()
    fragments = fragments_of(rasterizer, mesh, size=48)
    logits = np.random.default_rng(0).normal(0, 3, (4, 48, 48))
    lifter = Lifter.for_mesh(fragments, mesh.faces, mesh.num_vertices)
    p = logits_to_probabilities(logits)
    np.testing.assert_allclose(lifter.lift(logits), reference_lift(fragments, mesh.faces, mesh.num_vertices, p),
                               atol=1e-5)
    np.testing.assert_allclose(lifter.lift(logits, vote_threshold=0.3),
                               reference_lift(fragments, mesh.faces, mesh.num_vertices, p, 0.3), atol=1e-5)


def test_object_vote_threshold(rasterizer):
    """Only pixels with p > 0.3 vote, in numerator and denominator: a vertex touched by any
    confident pixel gets exactly their probability, however many unconfident pixels hit it."""
    mesh, _ = shell_with_hidden_core()
    fragments = fragments_of(rasterizer, mesh)
    lifter = Lifter.for_mesh(fragments, mesh.faces, mesh.num_vertices)
    confident_logit = np.log(0.9 / 0.1)  # p = 0.9
    painted = np.flatnonzero(mesh.vertices[mesh.faces].mean(axis=1)[:, 1] > 0.2)
    logits = np.stack([np.where(np.isin(f.face_ids, painted), confident_logit, -2.0) for f in fragments])
    lifted = lifter.lift(logits, vote_threshold=0.3)
    in_painted = np.zeros(mesh.num_vertices, bool)
    in_painted[mesh.faces[painted].ravel()] = True
    touched = in_painted & lifter.visible.any(axis=0)
    np.testing.assert_allclose(lifted[touched], 0.9, rtol=1e-5)
    assert np.all(lifted[~in_painted] == 0)
    # Below the threshold nothing votes at all.
    assert np.all(lifter.lift(np.full((4, SIZE, SIZE), -1.0), vote_threshold=0.3) == 0)


def test_vertex_maps_are_equivalent_to_fragments(rasterizer):
    mesh, _ = shell_with_hidden_core()
    fragments = fragments_of(rasterizer, mesh)
    from_fragments = Lifter.for_mesh(fragments, mesh.faces, mesh.num_vertices)
    from_maps = Lifter.from_vertex_maps(
        [f.vertex_ids(mesh.faces) for f in fragments], [f.barycentric for f in fragments], mesh.num_vertices
    )
    logits = np.random.default_rng(1).normal(size=(4, SIZE, SIZE))
    np.testing.assert_array_equal(from_fragments.lift(logits), from_maps.lift(logits))


def test_point_lifting_is_the_mean_over_pixels_and_views(rasterizer):
    rng = np.random.default_rng(5)
    points = rng.normal(size=(200, 3)) * 0.25
    layers = [rasterizer.rasterize_points(points, view_camera(v, SIZE), 0.05)[0] for v in OBJECT_VIEWS]
    lifter = Lifter.for_points(layers, len(points))
    logits = rng.normal(0, 2, (4, SIZE, SIZE))
    p = logits_to_probabilities(logits)
    expected = np.zeros(len(points))
    for point in range(len(points)):
        means = [p[v][layers[v].point_ids == point].mean() for v in range(4) if (layers[v].point_ids == point).any()]
        expected[point] = np.mean(means) if means else 0.0
    np.testing.assert_allclose(lifter.lift(logits), expected, atol=1e-6)


def test_bad_logits_are_rejected(rasterizer):
    mesh, _ = shell_with_hidden_core()
    lifter = Lifter.for_mesh(fragments_of(rasterizer, mesh), mesh.faces, mesh.num_vertices)
    with pytest.raises(ValueError, match=r"expected \(4, 96, 96\)"):
        lifter.lift(np.zeros((3, SIZE, SIZE)))
    logits = np.zeros((4, SIZE, SIZE))
    logits[2, 5, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        lifter.lift(logits)


def test_torch_tensors_lift_like_numpy(rasterizer):
    """The torch sparse path (used on the GPU the masks come from) gives the scipy results."""
    import torch

    mesh, _ = shell_with_hidden_core()
    lifter = Lifter.for_mesh(fragments_of(rasterizer, mesh), mesh.faces, mesh.num_vertices)
    logits = np.random.default_rng(7).normal(0, 3, (4, SIZE, SIZE)).astype(np.float32)
    for threshold in (None, 0.3):
        expected = lifter.lift(logits, threshold)
        got = lifter.lift(torch.from_numpy(logits), threshold)
        assert isinstance(got, np.ndarray) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-6)
    bad = torch.from_numpy(logits.copy())
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        lifter.lift(bad)
    with pytest.raises(ValueError, match="expected"):
        lifter.lift(torch.zeros(3, SIZE, SIZE))
