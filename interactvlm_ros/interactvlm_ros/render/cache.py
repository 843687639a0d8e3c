"""On-disk cache of renders that never change (the body views; an object's views per mesh).

Entries are keyed by the geometry's content hash, the kind of render, the views and the
image size, plus :data:`RENDER_VERSION` (bumped whenever rendering changes its output), and
stored as compressed ``.npz`` files written atomically (a crash never leaves a half entry).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ..geometry.camera import ViewSpec, view_camera
from .fragments import MeshFragments, PointFragments
from .views import ViewRender

#: Part of every cache key; bump when a change alters rendered pixels or fragments.
RENDER_VERSION = 1


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/interactvlm_ros/renders`` (``~/.cache/...`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "interactvlm_ros" / "renders"


def cache_key(kind: str, geometry_hash: str, views: Sequence[ViewSpec], image_size: int, **options) -> str:
    """Hex SHA-256 naming one cache entry (kind: "body", "object", "points"...)."""
    description = {
        "version": RENDER_VERSION,
        "kind": kind,
        "geometry": geometry_hash,
        "views": [dataclasses.asdict(v) for v in views],
        "image_size": int(image_size),
        "options": options,
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


class RenderCache:
    """A folder of cached renders.

    Args:
        directory: where entries live (created on first store); None disables the disk cache.
    """

    def __init__(self, directory: str | os.PathLike | None):
        self.directory = Path(directory) if directory is not None else None

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.npz"

    def load(self, key: str, views: Sequence[ViewSpec], image_size: int) -> list[ViewRender] | None:
        """The cached renders for ``key``, or None when absent or unreadable (then re-render)."""
        if self.directory is None or not self._path(key).is_file():
            return None
        try:
            with np.load(self._path(key)) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError):
            return None
        renders = []
        for i, view in enumerate(views):
            if "barycentric" in arrays:
                fragments = MeshFragments(arrays["ids"][i], arrays["barycentric"][i], arrays["depth"][i])
            else:
                fragments = PointFragments(arrays["ids"][i], arrays["depth"][i])
            renders.append(ViewRender(view, view_camera(view, image_size), arrays["color"][i], fragments))
        return renders

    def store(self, key: str, renders: Sequence[ViewRender]) -> None:
        """Write an entry atomically; does nothing when the cache is disabled."""
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        arrays = {
            "color": np.stack([r.color for r in renders]),
            "depth": np.stack([r.fragments.depth for r in renders]),
        }
        if isinstance(renders[0].fragments, MeshFragments):
            arrays["ids"] = np.stack([r.fragments.face_ids for r in renders])
            arrays["barycentric"] = np.stack([r.fragments.barycentric for r in renders])
        else:
            arrays["ids"] = np.stack([r.fragments.point_ids for r in renders])
        handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".npz.tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez_compressed(stream, **arrays)
            os.replace(temporary, self._path(key))
        except BaseException:
            os.unlink(temporary)
            raise
