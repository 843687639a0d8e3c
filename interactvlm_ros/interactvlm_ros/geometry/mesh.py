"""Triangle meshes as plain arrays: the currency of the render, lift and geometry modules."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class TriangleMesh:
    """A triangle mesh with optional per-vertex part labels.

    Attributes:
        vertices: (V, 3) float32 positions, metres, in the mesh's own frame.
        faces: (F, 3) int64 vertex ids per triangle, counter-clockwise seen from outside.
        part_labels: (V,) int16 index into ``part_names`` per vertex, or None.
        part_names: names of the parts ``part_labels`` index (e.g. "right hand").
        name: what the mesh is ("smplh", "anny", "mesh:cup.obj", "proxy:cylinder"...).

    Raises:
        ValueError: (from the constructor) wrong shapes, non-finite vertices, face ids out of
            range, part labels of the wrong length or out of range.
    """

    vertices: np.ndarray
    faces: np.ndarray
    part_labels: np.ndarray | None = None
    part_names: tuple[str, ...] = ()
    name: str = ""
    _hash: list = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        vertices = np.ascontiguousarray(self.vertices, dtype=np.float32)
        faces = np.ascontiguousarray(self.faces, dtype=np.int64)
        if vertices.ndim != 2 or vertices.shape[1] != 3:
            raise ValueError(f"vertices must have shape (V, 3), got {vertices.shape}")
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"faces must have shape (F, 3), got {faces.shape}")
        if not np.all(np.isfinite(vertices)):
            raise ValueError("vertices contain non-finite values")
        if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
            raise ValueError(f"face vertex ids must lie in [0, {len(vertices)}), got [{faces.min()}, {faces.max()}]")
        vertices.setflags(write=False)
        faces.setflags(write=False)
        object.__setattr__(self, "vertices", vertices)
        object.__setattr__(self, "faces", faces)
        object.__setattr__(self, "part_names", tuple(self.part_names))
        if self.part_labels is not None:
            labels = np.ascontiguousarray(self.part_labels, dtype=np.int16)
            if labels.shape != (len(vertices),):
                raise ValueError(f"part_labels must have shape ({len(vertices)},), got {labels.shape}")
            if labels.size and (labels.min() < 0 or labels.max() >= len(self.part_names)):
                raise ValueError(f"part_labels must index part_names (0..{len(self.part_names) - 1})")
            labels.setflags(write=False)
            object.__setattr__(self, "part_labels", labels)

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    def content_hash(self) -> str:
        """SHA-256 (hex) of the vertex and face arrays: the cache key of anything derived
        from this geometry (renders, lifting matrices). Names and labels do not enter it."""
        if not self._hash:
            digest = hashlib.sha256()
            digest.update(np.asarray(self.vertices.shape, np.int64).tobytes())
            digest.update(self.vertices.astype("<f4").tobytes())
            digest.update(self.faces.astype("<i8").tobytes())
            self._hash.append(digest.hexdigest())
        return self._hash[0]

    def vertex_normals(self) -> np.ndarray:
        """(V, 3) float32 unit vertex normals: area-weighted mean of the adjacent face normals
        (faces counter-clockwise from outside). Isolated vertices get (0, 0, 0)."""
        v = self.vertices.astype(np.float64)
        tri = v[self.faces]
        face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # length = 2 * area
        normals = np.zeros_like(v)
        for corner in range(3):
            np.add.at(normals, self.faces[:, corner], face_normals)
        length = np.linalg.norm(normals, axis=1, keepdims=True)
        return np.divide(normals, length, out=np.zeros_like(normals), where=length > 0).astype(np.float32)
