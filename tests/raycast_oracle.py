"""Exact CPU ray casting (trimesh + Embree): the test oracle for ``interactvlm_ros.render.gl``
(test-only, like embreex, which it needs).

For every pixel centre a ray leaves the camera centre; the first triangle it hits gives the
face id, the barycentric coordinates of the hit point and its view depth. Slow (about 8x
the OpenGL path on a CPU) but independent of any rasterisation rule.
"""

from __future__ import annotations

import numpy as np
import trimesh

from interactvlm_ros.geometry.camera import Camera
from interactvlm_ros.render.fragments import MeshFragments, PointFragments


def raycast_mesh(vertices: np.ndarray, faces: np.ndarray, camera: Camera) -> MeshFragments:
    """Fragments of a mesh seen by ``camera``, by ray casting through pixel centres.

    Raises:
        ImportError: embreex is missing (trimesh would fall back to a much slower caster).
    """
    from trimesh.ray.ray_pyembree import RayMeshIntersector

    mesh = trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(faces, np.int64), process=False)
    origin, directions = camera.pixel_rays()
    origins = np.broadcast_to(origin, directions.shape)
    locations, ray_ids, face_ids = RayMeshIntersector(mesh).intersects_location(
        origins, directions, multiple_hits=False
    )
    s = camera.image_size
    ids = np.full(s * s, -1, np.int32)
    barycentric = np.zeros((s * s, 3), np.float32)
    depth = np.full(s * s, np.inf, np.float32)
    ids[ray_ids] = face_ids
    barycentric[ray_ids] = trimesh.triangles.points_to_barycentric(mesh.triangles[face_ids], locations)
    depth[ray_ids] = camera.world_to_view(locations)[:, 2]
    return MeshFragments(ids.reshape(s, s), barycentric.reshape(s, s, 3), depth.reshape(s, s))


def splat_points(points: np.ndarray, camera: Camera, radius: float) -> PointFragments:
    """Fragments of a point cloud by brute force: every pixel centre within ``radius`` (NDC)
    of a projected point in front of the camera takes the nearest such point."""
    s = camera.image_size
    uv, depth = camera.project(points)
    ids = np.full((s, s), -1, np.int32)
    best = np.full((s, s), np.inf, np.float32)
    radius_px = radius * s / 2.0
    centres = np.arange(s) + 0.5
    for index in np.argsort(-depth):  # far to near: nearer points overwrite
        if depth[index] <= 0:
            continue
        u, v = uv[index]
        cols = np.flatnonzero(np.abs(centres - u) < radius_px)
        rows = np.flatnonzero(np.abs(centres - v) < radius_px)
        if cols.size == 0 or rows.size == 0:
            continue
        du, dv = np.meshgrid(centres[cols] - u, centres[rows] - v)
        inside = du * du + dv * dv < radius_px * radius_px
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        ids[rr[inside], cc[inside]] = index
        best[rr[inside], cc[inside]] = depth[index]
    return PointFragments(ids, best)
