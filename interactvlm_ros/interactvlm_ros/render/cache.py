"""On-disk cache for what never changes between frames: the body's prepared views, and an
object's per mesh (see :mod:`interactvlm_ros.multiview`).

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

from ..geometry.camera import ViewSpec

#: Part of every cache key; bump when a change alters rendered pixels or fragments.
RENDER_VERSION = 2  # 2: colours truncated to 8 bit, barycentrics clamped to >= 0


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


class RenderCacheError(OSError):
    """The cache directory cannot be created or written in (the OSError is chained)."""


class RenderCache:
    """A folder of cached arrays, one compressed ``.npz`` per key.

    Args:
        directory: where entries live (created by :meth:`check` or the first store); None
            disables the disk cache.
    """

    def __init__(self, directory: str | os.PathLike | None):
        self.directory = Path(directory) if directory is not None else None

    def _error(self, error: OSError) -> RenderCacheError:
        return RenderCacheError(f"render cache {self.directory} cannot be created or written: {error}")

    def check(self) -> None:
        """Create the directory and write (and delete) a file in it, so a directory that cannot
        be used is refused before anything is rendered. Does nothing when the cache is disabled.

        Raises:
            RenderCacheError: e.g. a path under an existing file, or no permission.
        """
        if self.directory is None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.directory):
                pass
        except OSError as error:
            raise self._error(error) from error

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.npz"

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``key``, or None when absent or unreadable (then recompute)."""
        if self.directory is None or not self._path(key).is_file():
            return None
        try:
            with np.load(self._path(key), allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError):
            return None

    def store(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        """Write an entry atomically; does nothing when the cache is disabled.

        Raises:
            RenderCacheError: the directory cannot be created or written in (full disk...).
        """
        if self.directory is None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=".npz.tmp")
        except OSError as error:
            raise self._error(error) from error
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez_compressed(stream, **arrays)
            os.replace(temporary, self._path(key))
        except BaseException as error:
            os.unlink(temporary)
            if isinstance(error, OSError):
                raise self._error(error) from error
            raise
