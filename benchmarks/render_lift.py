#!/usr/bin/env python3
"""Render and lift timings: the body (4 body views) and a 10k-face object (4 object views)
at 512 and 1024 pixels, uncached (render + build the lifter), from the disk cache (load +
build the lifter) and the per-frame lift alone; prints the ratios measured in this run.

    python benchmarks/render_lift.py [--sizes 512 1024] [--repeats 3]

Ratios, not absolute times, are the figures to compare between machines. Medians of
--repeats runs. The body is the open body shipped with the package (SMPL-H files are not
needed); the exact ray caster (the tests' oracle) is timed at 512 for comparison.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import sys
import time
from pathlib import Path

import numpy as np
import trimesh

from interactvlm_ros.geometry.camera import BODY_VIEWS, OBJECT_VIEWS, view_camera
from interactvlm_ros.geometry.mesh import TriangleMesh
from interactvlm_ros.geometry.open_body import load_open_body
from interactvlm_ros.multiview import prepare_body_views, prepare_object_views
from interactvlm_ros.render.cache import RenderCache
from interactvlm_ros.render.views import Renderer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the ray-casting oracle is test code
from raycast_oracle import raycast_mesh  # noqa: E402


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    renderer = Renderer()
    body = load_open_body()
    sphere = trimesh.creation.uv_sphere(radius=0.5, count=[50, 51])
    obj = TriangleMesh(sphere.vertices, sphere.faces, name="uv_sphere")
    print(f"renderer: {renderer.rasterizer.renderer_name}")
    print(f"body: {body.name}, {body.num_vertices} vertices, {body.num_faces} faces; "
          f"object: {obj.num_vertices} vertices, {obj.num_faces} faces")
    print(f"{'geometry':<8} {'size':>5} {'uncached s':>11} {'cached s':>9} {'lift ms':>8} "
          f"{'uncached/cached':>16} {'uncached/lift':>14}")
    for size in args.sizes:
        for name, geometry, prepare, views in (
            ("body", body, prepare_body_views, BODY_VIEWS),
            ("object", obj, prepare_object_views, OBJECT_VIEWS),
        ):
            with tempfile.TemporaryDirectory() as directory:
                uncached = median_seconds(lambda: prepare(geometry, renderer, None, views, size), args.repeats)
                cache = RenderCache(directory)
                prepared = prepare(geometry, renderer, cache, views, size)  # fills the cache
                cached = median_seconds(lambda: prepare(geometry, renderer, cache, views, size), args.repeats)
            logits = np.random.default_rng(0).normal(size=(len(views), size, size)).astype(np.float32)
            lift = median_seconds(lambda: prepared.lift(logits), args.repeats)
            print(f"{name:<8} {size:>5} {uncached:>11.3f} {cached:>9.3f} {lift * 1e3:>8.1f} "
                  f"{uncached / cached:>16.1f} {uncached / lift:>14.0f}")
    camera = view_camera(BODY_VIEWS[0], 512)
    gl = median_seconds(lambda: renderer.rasterizer.rasterize_mesh(body.vertices, body.faces, camera), args.repeats)
    try:
        ray = median_seconds(lambda: raycast_mesh(body.vertices, body.faces, camera), args.repeats)
    except ImportError as error:  # the oracle needs embreex
        print(f"one body view at 512: OpenGL {gl * 1e3:.1f} ms (ray casting not available: {error})")
        return
    print(f"one body view at 512: OpenGL {gl * 1e3:.1f} ms, ray casting {ray * 1e3:.1f} ms, ratio {ray / gl:.1f}")


if __name__ == "__main__":
    main()
