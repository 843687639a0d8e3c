"""InteractVLM's multi-view renders of bodies, object meshes and object point clouds.

Colours follow InteractVLM's public code: bodies are coloured by their vertex normals,
``(n + 1) / 2``; objects by their per-axis min-max normalised coordinates, ``* 0.8 + 0.1``.
Meshes are Phong-shaded with the view's point light (:class:`~.gl.PhongLighting`); point
clouds are splatted with radius 0.05 (NDC) and alpha-composited over their 10 nearest points
per pixel, PyTorch3D's ``PointsRenderer`` with an ``AlphaCompositor`` on a white background.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..geometry.camera import BODY_VIEWS, OBJECT_VIEWS, Camera, ViewSpec, view_camera
from ..geometry.mesh import TriangleMesh
from .fragments import MeshFragments, PointFragments
from .gl import GLRasterizer, PhongLighting, to_uint8

#: Splat radius (NDC) and points per pixel of InteractVLM's point-cloud renders.
POINT_RADIUS = 0.05
POINTS_PER_PIXEL = 10

#: Views of normalised point clouds (unit sphere): InteractVLM's object views at the
#: camera distance of its object camera parameters (2), as a unit-radius cloud needs.
POINT_VIEWS: tuple[ViewSpec, ...] = tuple(
    ViewSpec(v.name, 2.0, v.elev, v.azim, v.x, v.y, v.light) for v in OBJECT_VIEWS
)


@dataclass(frozen=True)
class ViewRender:
    """One rendered view.

    Attributes:
        view: the view's parameters; camera: the camera built from them.
        color: (S, S, 3) uint8 RGB render, white background (the model's input).
        fragments: per-pixel face ids + barycentrics (meshes) or point ids (point clouds).
    """

    view: ViewSpec
    camera: Camera
    color: np.ndarray
    fragments: MeshFragments | PointFragments


def normal_colors(mesh: TriangleMesh) -> np.ndarray:
    """(V, 3) float32 ``(n + 1) / 2`` of the area-weighted unit vertex normals."""
    return (mesh.vertex_normals() + 1.0) / 2.0


def xyz_colors(points: np.ndarray) -> np.ndarray:
    """(N, 3) float32 per-axis ``(x - min) / (max - min) * 0.8 + 0.1`` (0.5 on a flat axis)."""
    points = np.asarray(points, np.float64)
    lower, extent = points.min(axis=0), np.ptp(points, axis=0)
    unit = np.divide(points - lower, extent, out=np.full_like(points, 0.5), where=extent > 0)
    return (unit * 0.8 + 0.1).astype(np.float32)


def alpha_composite(
    layers: Sequence[PointFragments], points: np.ndarray, colors: np.ndarray, camera: Camera, radius: float
) -> np.ndarray:
    """PyTorch3D's alpha compositing of the K nearest splats per pixel.

    Point k of a pixel has weight ``alpha_k = 1 - d_k^2 / r^2`` (d_k its NDC distance to the
    pixel centre) and contributes ``alpha_k * prod_{j<k} (1 - alpha_j) * colour_k``; pixels
    without any point are white.

    Returns:
        (S, S, 3) uint8 RGB, truncated as InteractVLM's renders (:func:`~.gl.to_uint8`).
    """
    size = camera.image_size
    uv, _ = camera.project(points)
    centres = np.arange(size) + 0.5
    image = np.zeros((size, size, 3), np.float64)
    transmittance = np.ones((size, size), np.float64)
    for layer in layers:
        hit = layer.point_ids >= 0
        if not hit.any():
            break
        rows, cols = np.nonzero(hit)
        ids = layer.point_ids[rows, cols]
        d2 = ((centres[cols] - uv[ids, 0]) ** 2 + (centres[rows] - uv[ids, 1]) ** 2) * (2.0 / size) ** 2
        alpha = np.clip(1.0 - d2 / (radius * radius), 0.0, 1.0)
        image[rows, cols] += (transmittance[rows, cols] * alpha)[:, None] * colors[ids]
        transmittance[rows, cols] *= 1.0 - alpha
    image[~layers[0].mask] = 1.0
    return to_uint8(image)


class Renderer:
    """Renders bodies, object meshes and point clouds from InteractVLM's views.

    Args:
        rasterizer: a :class:`GLRasterizer` to share; one is created on first use otherwise.
    """

    def __init__(self, rasterizer: GLRasterizer | None = None):
        self._rasterizer = rasterizer

    @property
    def rasterizer(self) -> GLRasterizer:
        if self._rasterizer is None:
            self._rasterizer = GLRasterizer()
        return self._rasterizer

    def render_mesh(
        self, mesh: TriangleMesh, views: Sequence[ViewSpec], image_size: int, colors: np.ndarray
    ) -> list[ViewRender]:
        """Phong-shaded renders of ``mesh`` (in its own frame) with the given vertex colours."""
        normals = mesh.vertex_normals()
        renders = []
        for view in views:
            camera = view_camera(view, image_size)
            color, fragments = self.rasterizer.rasterize_mesh(
                mesh.vertices, mesh.faces, camera, colors, PhongLighting(view.light), normals
            )
            renders.append(ViewRender(view, camera, color, fragments))
        return renders

    def render_body(
        self, body: TriangleMesh, views: Sequence[ViewSpec] = BODY_VIEWS, image_size: int = 1024
    ) -> list[ViewRender]:
        """The body (canonical pose, model frame) from the body views, normal-coloured."""
        return self.render_mesh(body, views, image_size, normal_colors(body))

    def render_object(
        self, normalized: TriangleMesh, views: Sequence[ViewSpec] = OBJECT_VIEWS, image_size: int = 1024
    ) -> list[ViewRender]:
        """A normalised object mesh (see ``ObjectGeometry.normalized``) from the object
        views, coloured by normalised coordinates."""
        return self.render_mesh(normalized, views, image_size, xyz_colors(normalized.vertices))

    def render_points(
        self,
        points: np.ndarray,
        views: Sequence[ViewSpec] = POINT_VIEWS,
        image_size: int = 1024,
        radius: float = POINT_RADIUS,
        points_per_pixel: int = POINTS_PER_PIXEL,
    ) -> list[ViewRender]:
        """A normalised point cloud ((N, 3), unit sphere) from the point views, coloured by
        normalised coordinates; fragments hold each pixel's nearest point."""
        points = np.asarray(points, np.float32)
        colors = xyz_colors(points)
        renders = []
        for view in views:
            camera = view_camera(view, image_size)
            layers = self.rasterizer.rasterize_points(points, camera, radius, points_per_pixel)
            color = alpha_composite(layers, points, colors, camera, radius)
            renders.append(ViewRender(view, camera, color, layers[0]))
        return renders
