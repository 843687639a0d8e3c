"""Render + lift preparation for one geometry: the images the model looks at and the
:class:`~interactvlm_ros.lift.Lifter` that brings its 2D masks back to the geometry.

Body views never change and an object's views change only with its mesh, so renders are
cached on disk (:class:`~interactvlm_ros.render.cache.RenderCache`). Users who have
InteractVLM's official precomputed body renders and lifting maps can load those instead
(:func:`load_official_body_views`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from .geometry.camera import BODY_VIEWS, OBJECT_VIEWS, ViewSpec
from .geometry.mesh import TriangleMesh
from .lift import Lifter
from .render.cache import RenderCache, cache_key
from .render.views import POINT_RADIUS, POINT_VIEWS, POINTS_PER_PIXEL, Renderer

#: InteractVLM's vote threshold for object meshes (pixels with p <= 0.3 do not vote).
OBJECT_VOTE_THRESHOLD = 0.3


@dataclass(frozen=True)
class PreparedViews:
    """Everything constant about one geometry's views.

    Attributes:
        views: the views, in the model's order.
        images: (num_views, S, S, 3) uint8 RGB renders (the model's input).
        lifter: maps (num_views, S, S) logits to per-vertex/per-point probabilities.
        vote_threshold: the lifter's pixel vote threshold (None: every pixel votes).
        source: "rendered", "cache" or "official:<dir>".
    """

    views: tuple[ViewSpec, ...]
    images: np.ndarray
    lifter: Lifter
    vote_threshold: float | None
    source: str

    def lift(self, logits) -> np.ndarray:
        """(num_views, S, S) logits -> (num_targets,) float32 probabilities."""
        return self.lifter.lift(logits, self.vote_threshold)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The images and the lifter's vote matrices (CSR buffers), for the disk cache."""
        arrays = {"images": self.images}
        for i, vote in enumerate(self.lifter.votes):
            arrays[f"votes{i}_data"], arrays[f"votes{i}_indices"] = vote.data, vote.indices
            arrays[f"votes{i}_indptr"] = vote.indptr
        return arrays

    @classmethod
    def from_arrays(cls, arrays, views, num_targets, vote_threshold, source) -> "PreparedViews":
        image_size = arrays["images"].shape[1]
        votes = [
            sp.csr_matrix((arrays[f"votes{i}_data"], arrays[f"votes{i}_indices"], arrays[f"votes{i}_indptr"]),
                          shape=(num_targets, image_size * image_size))
            for i in range(len(views))
        ]
        return cls(tuple(views), arrays["images"], Lifter(votes, image_size), vote_threshold, source)


def _prepare_mesh(kind, mesh, views, image_size, cache, render, vote_threshold) -> PreparedViews:
    views = tuple(views)
    key = cache_key(kind, mesh.content_hash(), views, image_size)
    arrays = cache.load(key) if cache is not None else None
    if arrays is not None:
        return PreparedViews.from_arrays(arrays, views, mesh.num_vertices, vote_threshold, "cache")
    renders = render(mesh, views, image_size)
    lifter = Lifter.for_mesh([r.fragments for r in renders], mesh.faces, mesh.num_vertices)
    prepared = PreparedViews(views, np.stack([r.color for r in renders]), lifter, vote_threshold, "rendered")
    if cache is not None:
        cache.store(key, prepared.to_arrays())
    return prepared


def prepare_body_views(body: TriangleMesh, renderer: Renderer, cache: RenderCache | None = None,
                       views: Sequence[ViewSpec] = BODY_VIEWS, image_size: int = 1024) -> PreparedViews:
    """Body renders and their lifter (every pixel votes), from the cache when there."""
    return _prepare_mesh("body", body, views, image_size, cache, renderer.render_body, None)


def prepare_object_views(normalized: TriangleMesh, renderer: Renderer, cache: RenderCache | None = None,
                         views: Sequence[ViewSpec] = OBJECT_VIEWS, image_size: int = 1024) -> PreparedViews:
    """Renders of a normalised object mesh and their lifter with the 0.3 vote, from the cache
    when there."""
    return _prepare_mesh("object", normalized, views, image_size, cache, renderer.render_object,
                         OBJECT_VOTE_THRESHOLD)


def prepare_point_views(points: np.ndarray, renderer: Renderer, views: Sequence[ViewSpec] = POINT_VIEWS,
                        image_size: int = 1024, radius: float = POINT_RADIUS,
                        points_per_pixel: int = POINTS_PER_PIXEL) -> PreparedViews:
    """Splat renders of a normalised point cloud ((N, 3), unit sphere) and their lifter
    (nearest point per pixel, unweighted). Not cached: clouds from depth change every frame."""
    views = tuple(views)
    renders = renderer.render_points(points, views, image_size, radius, points_per_pixel)
    lifter = Lifter.for_points([r.fragments for r in renders], len(points))
    return PreparedViews(views, np.stack([r.color for r in renders]), lifter, None, "rendered")


def load_official_body_views(directory: str | os.PathLike, num_vertices: int = 6890,
                             views: Sequence[ViewSpec] = BODY_VIEWS, image_size: int = 1024) -> PreparedViews:
    """InteractVLM's precomputed SMPL-H body renders and lifting maps.

    Expects in ``directory``: ``body_render_norm_{view}.png`` per view and
    ``pixel_to_vertex_map_{S}.npz`` / ``bary_coords_map_{S}.npz``, whose arrays are keyed by
    view name, (S, S, 3) vertex ids (-1 background) and barycentric weights.

    Raises:
        FileNotFoundError: a file is missing (all missing files are listed).
        ValueError: a map lacks a view or has the wrong shape.
    """
    from PIL import Image

    directory = Path(directory)
    views = tuple(views)
    images = [directory / f"body_render_norm_{v.name}.png" for v in views]
    maps = [directory / f"pixel_to_vertex_map_{image_size}.npz", directory / f"bary_coords_map_{image_size}.npz"]
    missing = [str(p) for p in images + maps if not p.is_file()]
    if missing:
        raise FileNotFoundError("official body render assets missing: " + ", ".join(missing))
    rgb = []
    for path in images:
        image = np.asarray(Image.open(path).convert("RGB"))
        if image.shape != (image_size, image_size, 3):
            raise ValueError(f"{path}: expected a {image_size}x{image_size} image, got {image.shape}")
        rgb.append(image)
    with np.load(maps[0]) as vertex_maps, np.load(maps[1]) as bary_maps:
        absent = [f"{m}:{v.name}" for m, d in zip(maps, (vertex_maps, bary_maps)) for v in views if v.name not in d.files]
        if absent:
            raise ValueError("official lifting maps lack views: " + ", ".join(absent))
        lifter = Lifter.from_vertex_maps([vertex_maps[v.name] for v in views], [bary_maps[v.name] for v in views],
                                         num_vertices)
    return PreparedViews(views, np.stack(rgb), lifter, None, f"official:{directory}")
