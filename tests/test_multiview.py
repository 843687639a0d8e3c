"""Prepared views: renders cached on disk, InteractVLM's official body assets as input."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from PIL import Image

from interactvlm_ros.geometry.camera import BODY_VIEWS
from interactvlm_ros.geometry.mesh import TriangleMesh
from interactvlm_ros.multiview import (
    OBJECT_VOTE_THRESHOLD,
    load_official_body_views,
    prepare_body_views,
    prepare_object_views,
    prepare_point_views,
)
from interactvlm_ros.render.cache import RenderCache, cache_key
from interactvlm_ros.render.views import Renderer

SIZE = 64


@pytest.fixture(scope="module")
def renderer():
    return Renderer()


def capsule_body() -> TriangleMesh:
    capsule = trimesh.creation.capsule(height=1.2, radius=0.2)
    capsule.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0]))
    return TriangleMesh(capsule.vertices, capsule.faces, name="capsule")


def test_body_views_are_rendered_once_then_read_from_the_cache(tmp_path, renderer):
    body = capsule_body()
    cache = RenderCache(tmp_path / "cache")
    first = prepare_body_views(body, renderer, cache, image_size=SIZE)
    second = prepare_body_views(body, renderer, cache, image_size=SIZE)
    assert (first.source, second.source) == ("rendered", "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    np.testing.assert_array_equal(first.images, second.images)
    assert first.images.shape == (4, SIZE, SIZE, 3) and first.images.dtype == np.uint8
    logits = np.random.default_rng(2).normal(size=(4, SIZE, SIZE))
    np.testing.assert_array_equal(first.lift(logits), second.lift(logits))
    assert first.vote_threshold is None
    # No cache: always rendered.
    assert prepare_body_views(body, renderer, None, image_size=SIZE).source == "rendered"


def test_object_and_point_views(renderer, tmp_path):
    mesh = capsule_body()
    prepared = prepare_object_views(mesh, renderer, RenderCache(tmp_path), image_size=SIZE)
    assert prepared.vote_threshold == OBJECT_VOTE_THRESHOLD
    lifted = prepared.lift(np.full((4, SIZE, SIZE), 2.0))
    seen = prepared.lifter.visible.any(axis=0)
    np.testing.assert_allclose(lifted[seen], 1 / (1 + np.exp(-2.0)), rtol=1e-5)
    points = np.asarray(trimesh.sample.sample_surface(trimesh.creation.icosphere(radius=0.9), 500, seed=1)[0])
    cloud = prepare_point_views(points, renderer, image_size=SIZE)
    assert cloud.lift(np.zeros((4, SIZE, SIZE))).shape == (500,)
    assert cloud.images.shape == (4, SIZE, SIZE, 3)


def _write_official_assets(directory, prepared, size):
    """InteractVLM's layout: one PNG per view, two npz files keyed by view name."""
    vertex_maps, bary_maps = {}, {}
    for view, image, render_ids, weights in zip(
        prepared.views, prepared.images, prepared.vertex_ids, prepared.barycentric
    ):
        Image.fromarray(image).save(directory / f"body_render_norm_{view.name}.png")
        vertex_maps[view.name] = render_ids
        bary_maps[view.name] = weights
    np.savez(directory / f"pixel_to_vertex_map_{size}.npz", **vertex_maps)
    np.savez(directory / f"bary_coords_map_{size}.npz", **bary_maps)


def test_official_assets_load_and_lift_like_our_renders(tmp_path, renderer):
    body = capsule_body()
    renders = renderer.render_body(body, BODY_VIEWS, SIZE)

    class Exported:  # what InteractVLM's preprocessing writes, built from our renders
        views = BODY_VIEWS
        images = [r.color for r in renders]
        vertex_ids = [r.fragments.vertex_ids(body.faces) for r in renders]
        barycentric = [r.fragments.barycentric for r in renders]

    _write_official_assets(tmp_path, Exported, SIZE)
    official = load_official_body_views(tmp_path, num_vertices=body.num_vertices, image_size=SIZE)
    ours = prepare_body_views(body, renderer, None, image_size=SIZE)
    assert official.source == f"official:{tmp_path}"
    np.testing.assert_array_equal(official.images, ours.images)
    logits = np.random.default_rng(4).normal(size=(4, SIZE, SIZE))
    np.testing.assert_allclose(official.lift(logits), ours.lift(logits), atol=1e-6)


def test_official_assets_errors(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_official_body_views(tmp_path, image_size=SIZE)
    message = str(error.value)
    assert "body_render_norm_topfront.png" in message and f"bary_coords_map_{SIZE}.npz" in message
    for view in BODY_VIEWS:
        Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8)).save(tmp_path / f"body_render_norm_{view.name}.png")
    ids = np.full((SIZE, SIZE, 3), -1, np.int64)
    np.savez(tmp_path / f"pixel_to_vertex_map_{SIZE}.npz", topfront=ids)
    np.savez(tmp_path / f"bary_coords_map_{SIZE}.npz", topfront=np.zeros((SIZE, SIZE, 3), np.float32))
    with pytest.raises(ValueError, match="bottomfront"):
        load_official_body_views(tmp_path, image_size=SIZE)


def test_cache_keys_and_corrupt_entries(tmp_path, renderer):
    body = capsule_body()
    key = cache_key("body", body.content_hash(), BODY_VIEWS, SIZE)
    # The key depends on everything that changes pixels.
    assert key != cache_key("body", body.content_hash(), BODY_VIEWS, 2 * SIZE)
    assert key != cache_key("body", body.content_hash(), BODY_VIEWS[:3], SIZE)
    assert key != cache_key("object", body.content_hash(), BODY_VIEWS, SIZE)
    moved = TriangleMesh(body.vertices + 1e-3, body.faces)
    assert key != cache_key("body", moved.content_hash(), BODY_VIEWS, SIZE)
    cache = RenderCache(tmp_path)
    assert cache.load(key) is None
    prepare_body_views(body, renderer, cache, image_size=SIZE)
    assert set(cache.load(key)) >= {"images", "votes0_data", "votes3_indptr"}
    # A corrupt entry reads as a miss and is rewritten, not an error.
    (tmp_path / f"{key}.npz").write_bytes(b"not an npz")
    assert cache.load(key) is None
    assert prepare_body_views(body, renderer, cache, image_size=SIZE).source == "rendered"
    assert prepare_body_views(body, renderer, cache, image_size=SIZE).source == "cache"
    # Disabled cache: nothing stored.
    RenderCache(None).store(key, {"a": np.zeros(1)})
    assert RenderCache(None).load(key) is None
