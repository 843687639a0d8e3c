"""Object geometry: library meshes, primitive proxies and InteractVLM's normalisation.

InteractVLM renders an object mesh after centring it on the mean of its vertices and
dividing by its largest bounding-box side (``normalize_mesh`` in its utils/demo_utils.py). :class:`ObjectGeometry` keeps that
similarity transform so that affordance values computed on the normalised mesh are reported
on the vertices in the object's own frame (the mesh file's coordinates, metres).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import trimesh
import yaml

from .mesh import TriangleMesh

#: Mesh file types loaded through trimesh.
MESH_SUFFIXES = (".obj", ".ply", ".glb", ".gltf", ".stl", ".off")


@dataclass(frozen=True)
class ObjectGeometry:
    """An object mesh in its own frame plus the normalisation InteractVLM renders it with.

    Attributes:
        mesh: the mesh in the object's frame (metres, as in the file).
        source: ``"mesh:<uri>"`` or ``"proxy:<shape>"`` (ObjectAffordance.geometry_source).
        centre: (3,) float64 mean of the vertices, in the object's frame.
        scale: the largest bounding-box side (metres); normalised = (x - centre) / scale.
    """

    mesh: TriangleMesh
    source: str
    centre: np.ndarray
    scale: float

    @classmethod
    def from_mesh(cls, mesh: TriangleMesh, source: str) -> "ObjectGeometry":
        """Wrap a mesh, computing its normalisation.

        Raises:
            ValueError: an empty or degenerate mesh (zero extent).
        """
        if mesh.num_vertices == 0 or mesh.num_faces == 0:
            raise ValueError(f"{source}: the mesh has no faces")
        lower, upper = mesh.vertices.min(axis=0).astype(np.float64), mesh.vertices.max(axis=0).astype(np.float64)
        scale = float((upper - lower).max())
        if not scale > 0:
            raise ValueError(f"{source}: the mesh has zero extent")
        centre = mesh.vertices.astype(np.float64).mean(axis=0)
        return cls(mesh=mesh, source=source, centre=centre, scale=scale)

    def normalized(self) -> TriangleMesh:
        """The mesh with its vertex mean at the origin and its largest bounding-box side 1
        (what is rendered)."""
        vertices = (self.mesh.vertices - self.centre) / self.scale
        return TriangleMesh(vertices, self.mesh.faces, name=self.mesh.name)

    def to_object_frame(self, normalized_points: np.ndarray) -> np.ndarray:
        """(N, 3) points of the normalised frame -> (N, 3) float32 in the object's frame."""
        return (np.asarray(normalized_points, np.float64) * self.scale + self.centre).astype(np.float32)


def load_mesh(path: str | os.PathLike, name: str | None = None) -> TriangleMesh:
    """Load a triangle mesh file (obj, ply, glb/gltf, stl, off) with trimesh.

    Multi-part files (glTF scenes) are flattened into one mesh with their node transforms
    applied. Vertices keep the file's units, assumed to be metres.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: unsupported suffix, a file trimesh cannot parse (the parser's error is
            named), or a file without triangles or with non-finite vertices.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"object mesh file not found: {path}")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise ValueError(f"{path}: unsupported mesh type {path.suffix!r}; use one of {', '.join(MESH_SUFFIXES)}")
    try:
        loaded = trimesh.load(path, force="mesh", process=False)
    except Exception as error:  # noqa: BLE001 - trimesh's parsers raise many types on malformed files
        raise ValueError(f"{path}: not a readable {path.suffix[1:]} mesh ({type(error).__name__}: {error})") from error
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise ValueError(f"{path}: no triangles in the file")
    if not np.all(np.isfinite(loaded.vertices)):
        raise ValueError(f"{path}: non-finite vertex coordinates")
    return TriangleMesh(loaded.vertices, loaded.faces, name=name or path.name)


#: Primitive proxy shapes, used when no mesh is configured for a class.
PROXY_SHAPES = ("box", "cylinder", "sphere", "capsule")

#: Default proxy per common detector class (COCO names): (shape, largest side in metres).
DEFAULT_PROXIES: Mapping[str, tuple[str, float]] = {
    "cup": ("cylinder", 0.10), "bottle": ("cylinder", 0.25), "wine glass": ("cylinder", 0.18),
    "vase": ("cylinder", 0.30), "bowl": ("cylinder", 0.15), "sports ball": ("sphere", 0.22),
    "apple": ("sphere", 0.08), "orange": ("sphere", 0.08), "baseball bat": ("capsule", 0.85),
    "umbrella": ("capsule", 0.90), "tennis racket": ("capsule", 0.68), "toothbrush": ("capsule", 0.19),
    "book": ("box", 0.24), "laptop": ("box", 0.35), "cell phone": ("box", 0.15), "remote": ("box", 0.18),
    "keyboard": ("box", 0.45), "suitcase": ("box", 0.65), "backpack": ("box", 0.50),
    "handbag": ("box", 0.35), "chair": ("box", 0.90), "bench": ("box", 1.50), "couch": ("box", 2.00),
    "bed": ("box", 2.00), "dining table": ("box", 1.60), "microwave": ("box", 0.50),
    "skateboard": ("box", 0.80), "surfboard": ("box", 2.00), "knife": ("box", 0.25),
    "scissors": ("box", 0.20),
    # Not COCO classes, but common in open-vocabulary detectors and in the demo photos.
    "camera": ("box", 0.15), "helmet": ("sphere", 0.30), "mug": ("cylinder", 0.10), "tripod": ("capsule", 1.50),
}


def proxy_mesh(shape: str, size: float = 1.0) -> TriangleMesh:
    """A primitive centred at the origin with its largest side ``size`` metres, long axis +Y,
    named ``proxy:<shape>``.

    Raises:
        ValueError: unknown shape (see :data:`PROXY_SHAPES`) or a size that is not positive.
    """
    if not size > 0:
        raise ValueError(f"proxy size must be positive, got {size}")
    upright = trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0])  # +Z axis -> +Y
    if shape == "box":
        mesh = trimesh.creation.box(extents=(0.6, 1.0, 0.6)).subdivide().subdivide().subdivide()
    elif shape == "cylinder":
        mesh = trimesh.creation.cylinder(radius=0.35, height=1.0, sections=48)
        mesh.apply_transform(upright)
        mesh = mesh.subdivide().subdivide()
    elif shape == "sphere":
        mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    elif shape == "capsule":
        mesh = trimesh.creation.capsule(height=0.8, radius=0.1, count=(32, 32))
        mesh.apply_transform(upright)
    else:
        raise ValueError(f"unknown proxy shape {shape!r}; known: {', '.join(PROXY_SHAPES)}")
    return TriangleMesh(mesh.vertices * size, mesh.faces, name=f"proxy:{shape}")


class ObjectLibrary:
    """Detection class -> object geometry, from a YAML map plus proxies.

    YAML format (paths relative to the YAML file's folder)::

        meshes:
          cup: meshes/mug.obj
          chair: /data/meshes/chair.glb
        proxies:            # optional: class -> [shape, largest side in metres]
          drill: [capsule, 0.3]
        use_default_proxies: true   # optional, default true

    Meshes are loaded when the library is built (at configure), so a bad file is reported
    once, naming it, not on every frame of its class. :meth:`get` returns None for a class
    with neither a mesh nor a proxy (the caller counts and reports it as an unknown class).

    Args:
        meshes: class -> mesh file path.
        proxies: class -> (shape, largest side in metres), added to / overriding the defaults.
        use_default_proxies: start from :data:`DEFAULT_PROXIES`.
        sources: class -> the ``geometry_source`` name of its mesh (default: the path as given);
            :meth:`from_yaml` uses the path relative to the map's folder, so messages never
            carry the robot's absolute paths.

    Raises:
        FileNotFoundError: a mesh file that does not exist; ValueError: a mesh that cannot be
            read, or a malformed proxy.
    """

    def __init__(self, meshes: Mapping[str, str] | None = None, proxies: Mapping[str, tuple] | None = None,
                 use_default_proxies: bool = True, sources: Mapping[str, str] | None = None):
        self._paths = {str(k): str(v) for k, v in (meshes or {}).items()}
        self._proxies = dict(DEFAULT_PROXIES) if use_default_proxies else {}
        for label, spec in (proxies or {}).items():
            if not (isinstance(spec, (list, tuple)) and len(spec) == 2 and spec[0] in PROXY_SHAPES
                    and isinstance(spec[1], (int, float)) and spec[1] > 0):
                raise ValueError(
                    f"class {label!r}: proxy must be [shape, size_m] with shape in {PROXY_SHAPES}, got {spec!r}")
            self._proxies[str(label)] = (str(spec[0]), float(spec[1]))
        self._loaded: dict[str, ObjectGeometry] = {}
        for label, mesh_path in self._paths.items():
            source = f"mesh:{(sources or {}).get(label, mesh_path)}"
            self._loaded[label] = ObjectGeometry.from_mesh(load_mesh(mesh_path, name=source), source)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "ObjectLibrary":
        """Read the YAML map; mesh paths are resolved against the YAML file's folder.

        Raises:
            FileNotFoundError: the YAML file or a mesh file it names does not exist.
            ValueError: malformed YAML (the parser's message with line and column), unknown
                keys, or a mesh file that cannot be read (named).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"object mesh map not found: {path}")
        try:
            content = yaml.safe_load(path.read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from error
        if not isinstance(content, dict) or not set(content) <= {"meshes", "proxies", "use_default_proxies"}:
            raise ValueError(f"{path}: expected keys 'meshes', 'proxies', 'use_default_proxies'")
        if not isinstance(content.get("meshes") or {}, dict) or not isinstance(content.get("proxies") or {}, dict):
            raise ValueError(f"{path}: 'meshes' and 'proxies' must map class names to entries")
        meshes, sources = {}, {}
        for label, mesh_path in (content.get("meshes") or {}).items():
            resolved = (path.parent / str(mesh_path)).resolve()
            if not resolved.is_file():
                raise FileNotFoundError(f"{path}: mesh for class {label!r} not found: {resolved}")
            meshes[label] = str(resolved)
            sources[label] = os.path.relpath(resolved, path.parent.resolve())
        return cls(meshes, content.get("proxies"), bool(content.get("use_default_proxies", True)), sources)

    @property
    def classes(self) -> list[str]:
        return sorted(set(self._paths) | set(self._proxies))

    def get(self, label: str) -> ObjectGeometry | None:
        """The geometry of a class (a loaded mesh, or its proxy built on first use), or None."""
        if label not in self._loaded:
            if label in self._proxies:
                shape, size = self._proxies[label]
                self._loaded[label] = ObjectGeometry.from_mesh(proxy_mesh(shape, size), f"proxy:{shape}")
            else:
                return None
        return self._loaded[label]


@dataclass(frozen=True)
class PointCloudGeometry:
    """An object given as points (e.g. PIAD's 2048-point clouds, or back-projected depth).

    Attributes:
        points: (N, 3) float32 positions in the object's (or camera's) frame, metres.
        source: ObjectAffordance.geometry_source, e.g. "depth" or "points:<name>".
    """

    points: np.ndarray
    source: str

    def normalized(self) -> np.ndarray:
        """(N, 3) float32: InteractVLM's point-cloud normalisation (:func:`normalize_points`)."""
        return normalize_points(self.points)[0]


def normalize_points(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """InteractVLM's point-cloud normalisation: centre on the mean, divide by the largest
    distance from it (the cloud then fits the unit sphere).

    Args:
        points: (N, 3) positions (metres, any frame), N >= 1, finite.

    Returns:
        normalized: (N, 3) float32; centre: (3,) float64; scale: the largest radius, so that
        ``points = normalized * scale + centre``.

    Raises:
        ValueError: wrong shape, no points, non-finite values, or all points coincide.
    """
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise ValueError(f"points must have shape (N, 3) with N >= 1, got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError("points contain non-finite values")
    centre = points.mean(axis=0)
    scale = float(np.linalg.norm(points - centre, axis=1).max())
    if not scale > 0:
        raise ValueError("all points coincide; the cloud has no extent")
    return ((points - centre) / scale).astype(np.float32), centre, scale
