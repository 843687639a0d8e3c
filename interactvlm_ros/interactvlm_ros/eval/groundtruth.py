"""Ground truth that travels next to an evaluation bag (the *sidecar*), without ROS.

A lab evaluates with a ROS 2 bag of inputs (images + ``vision_msgs/Detection2DArray``) and one
sidecar file holding, per detection, what the node should have answered:

* human contact: a per-vertex contact value in [0, 1] on a body model's vertices;
* object affordance: a per-point affordance value in [0, 1] on the object points it refers to;
* optionally the scene in 3D (datasets with body and object fits, e.g. BEHAVE): the body's
  vertices in the image's camera frame (with the body model's faces) and the object's mesh
  with its pose in that frame.

Camera frame: the image's optical frame (x right, y down, z forward; metres), the frame of its
CameraInfo.

A sample is keyed by ``(image_stamp_ns, detection_id)``: the header stamp of the image (and of
its detections) in nanoseconds since the epoch, and ``Detection2D.id`` of the detection.

File format (one ``.npz``, readable with ``numpy.load(path, allow_pickle=False)``; no pickle):

==========================  =======================================================
key                         content
==========================  =======================================================
``format_version``          int64 scalar, :data:`FORMAT_VERSION`
``stamps``                  (M,) int64, image stamp of each sample [ns]
``ids``                     (M,) unicode, ``Detection2D.id``
``labels``                  (M,) unicode, object label (``results[0].hypothesis.class_id``)
``body_models``             (M,) unicode, body model of ``contact`` ("" when absent)
``affordance_types``        (M,) unicode, affordance word (``grasp``, ``sit``...), "" if none
``contact/<i>``             (V,) float32, sample i's per-vertex contact (absent if none)
``affordance/<i>``          (N,) float32, sample i's per-point affordance (absent if none)
``points/<i>``              (N, 3) float32, the points ``affordance/<i>`` lives on
``body_vertices/<i>``       (V, 3) float32, sample i's body in the camera frame [m]
``object_vertices/<i>``     (K, 3) float32, sample i's object mesh in its own frame [m]
``object_faces/<i>``        (G, 3) int32, that mesh's triangles
``object_pose/<i>``         (4, 4) float32, object frame -> camera frame (rigid)
``body_faces/<model>``      (F, 3) int32, the triangles of body model ``<model>``, stored once
                            for every sample with ``body_vertices`` of that model
==========================  =======================================================

Version 1 files (without the geometry keys) are read as well.

Convention: the sidecar of the bag ``run.mcap`` (a bare storage file) or of the bag folder
``run`` is ``run.groundtruth.npz`` beside it (:func:`sidecar_path`).
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from ..validation import unit_interval

#: Version written to ``format_version``; :func:`load_ground_truth` reads it and
#: :data:`READABLE_VERSIONS`, and rejects others.
FORMAT_VERSION = 2
#: Versions :func:`load_ground_truth` reads (1: no geometry keys).
READABLE_VERSIONS = (1, 2)

#: Vertex count of each body model whose name fixes it. Other names (e.g. ``anny``) are accepted
#: with any vertex count. SMPL and SMPL-H share the 6890-vertex body topology.
BODY_MODEL_VERTICES = {"smpl": 6890, "smplh": 6890, "smplx": 10475}

#: Suffixes of bare rosbag2 storage files (their sidecar drops the suffix).
BAG_FILE_SUFFIXES = (".mcap", ".db3")

_SIDECAR_SUFFIX = ".groundtruth.npz"
_INDEX_KEYS = ("stamps", "ids", "labels", "body_models", "affordance_types")
_ARRAY_KEYS = ("contact", "affordance", "points", "body_vertices", "object_vertices", "object_faces",
               "object_pose")
_INT_KEYS = ("object_faces",)
_BODY_FACES = "body_faces"
#: Largest deviation of an object pose's rotation from orthonormal (|R^T R - I|, max entry).
_POSE_TOLERANCE = 1e-4
_MAX_STAMP_NS = 2**63 - 1


@dataclass(eq=False)
class GroundTruthSample:
    """Ground truth for one detection of one image.

    Attributes:
        image_stamp_ns: header stamp of the image and its detections [ns since the epoch], >= 0.
        detection_id: ``Detection2D.id`` of the detection (non-empty).
        object_label: object class (``results[0].hypothesis.class_id``).
        body_model: body model that ``contact`` is defined on: ``smpl``/``smplh`` (6890 vertices,
            one topology), ``smplx`` (10475) or another name (any count); "" when no contact.
        contact: (V,) float32 per-vertex human contact in [0, 1], indexed by vertex id, or None.
        affordance: (N,) float32 per-point object affordance in [0, 1], or None.
        points: (N, 3) float32 object points ``affordance`` lives on (object frame, metres; a
            dataset's own normalised object coordinates where it has no metric scale), or None.
        affordance_type: affordance word the ground truth refers to (``grasp``, ``sit``...), "".
        body_vertices: (V, 3) float32 the body's vertices in the camera frame [m] (model
            ``body_model``; V as for ``contact``), or None.
        body_faces: (F, 3) int32 triangles of ``body_vertices`` (the body model's), or None.
        object_vertices: (K, 3) float32 the object's mesh in its own frame [m], or None.
        object_faces: (G, 3) int32 triangles of ``object_vertices``; with them.
        object_pose: (4, 4) float32 rigid transform object frame -> camera frame [m]; with them.

    Arrays are converted to float32 (faces int32) on construction. Raises ValueError when a
    field is invalid: negative stamp, empty id, values outside [0, 1] or non-finite, contact or
    body without body model, length not matching the body model (or each other), affordance
    without points (or the reverse), N mismatch, faces out of range, body faces without body
    vertices, object fields not all given, a pose that is not rigid, or neither contact nor
    affordance.
    """

    image_stamp_ns: int
    detection_id: str
    object_label: str
    body_model: str = ""
    contact: np.ndarray | None = None
    affordance: np.ndarray | None = None
    points: np.ndarray | None = None
    affordance_type: str = ""
    body_vertices: np.ndarray | None = None
    body_faces: np.ndarray | None = None
    object_vertices: np.ndarray | None = None
    object_faces: np.ndarray | None = None
    object_pose: np.ndarray | None = None

    def __post_init__(self) -> None:
        self._check_key()
        for name in ("object_label", "body_model", "affordance_type"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a str, got {type(getattr(self, name)).__name__}")
        if self.contact is None and self.affordance is None:
            raise ValueError(f"sample {self.key}: needs contact, affordance or both")
        self._check_contact()
        self._check_affordance()
        self._check_body()
        self._check_object()

    def object_vertices_in_camera(self) -> np.ndarray | None:
        """(K, 3) float32 the object's vertices in the camera frame [m] (``object_pose`` applied
        to ``object_vertices``), or None without an object."""
        if self.object_vertices is None:
            return None
        pose = self.object_pose.astype(np.float64)
        return (self.object_vertices @ pose[:3, :3].T + pose[:3, 3]).astype(np.float32)

    @property
    def key(self) -> tuple[int, str]:
        """``(image_stamp_ns, detection_id)``: the sample's key in :func:`load_ground_truth`."""
        return (self.image_stamp_ns, self.detection_id)

    def _check_key(self) -> None:
        stamp = self.image_stamp_ns
        if isinstance(stamp, (bool, np.bool_)) or not isinstance(stamp, (int, np.integer)):
            raise ValueError(f"image_stamp_ns must be an int [ns], got {type(stamp).__name__}")
        if not 0 <= int(stamp) <= _MAX_STAMP_NS:
            raise ValueError(f"image_stamp_ns must lie in [0, 2**63), got {stamp}")
        self.image_stamp_ns = int(stamp)
        if not isinstance(self.detection_id, str) or not self.detection_id:
            raise ValueError(f"detection_id must be a non-empty str, got {self.detection_id!r}")

    def _check_contact(self) -> None:
        if self.contact is None:
            return
        self.contact = unit_interval(self.contact, f"sample {self.key}: contact")
        if not self.body_model:
            raise ValueError(f"sample {self.key}: contact needs a body_model")
        expected = BODY_MODEL_VERTICES.get(self.body_model)
        if expected is not None and self.contact.shape[0] != expected:
            raise ValueError(f"sample {self.key}: body model {self.body_model} has {expected} "
                             f"vertices, contact has {self.contact.shape[0]}")

    def _check_affordance(self) -> None:
        if (self.affordance is None) != (self.points is None):
            raise ValueError(f"sample {self.key}: affordance and points go together")
        if self.affordance is None:
            return
        self.affordance = unit_interval(self.affordance, f"sample {self.key}: affordance")
        points = np.asarray(self.points, dtype=np.float32)
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"sample {self.key}: points must have shape (N, 3), got {points.shape}")
        if points.shape[0] != self.affordance.shape[0]:
            raise ValueError(f"sample {self.key}: {points.shape[0]} points but "
                             f"{self.affordance.shape[0]} affordance values")
        if not np.all(np.isfinite(points)):
            raise ValueError(f"sample {self.key}: points contain non-finite values")
        self.points = points

    def _vertices(self, name: str) -> np.ndarray:
        vertices = np.asarray(getattr(self, name), dtype=np.float32)
        if vertices.ndim != 2 or vertices.shape[1] != 3 or vertices.shape[0] == 0:
            raise ValueError(f"sample {self.key}: {name} must have shape (V, 3) with V >= 1, got {vertices.shape}")
        if not np.all(np.isfinite(vertices)):
            raise ValueError(f"sample {self.key}: {name} contain non-finite values")
        return vertices

    def _faces(self, name: str, num_vertices: int) -> np.ndarray:
        faces = np.asarray(getattr(self, name))
        if faces.ndim != 2 or faces.shape[1] != 3 or faces.shape[0] == 0 or not np.issubdtype(faces.dtype, np.integer):
            raise ValueError(f"sample {self.key}: {name} must be an (F, 3) integer array, got {faces.shape} "
                             f"{faces.dtype}")
        if faces.min() < 0 or faces.max() >= num_vertices:
            raise ValueError(f"sample {self.key}: {name} index vertices outside [0, {num_vertices})")
        return faces.astype(np.int32, copy=False)  # shared faces (one body model) stay one array

    def _check_body(self) -> None:
        if self.body_vertices is None:
            if self.body_faces is not None:
                raise ValueError(f"sample {self.key}: body_faces without body_vertices")
            return
        if not self.body_model:
            raise ValueError(f"sample {self.key}: body_vertices need a body_model")
        self.body_vertices = self._vertices("body_vertices")
        count = self.body_vertices.shape[0]
        expected = BODY_MODEL_VERTICES.get(self.body_model)
        if expected is not None and count != expected:
            raise ValueError(f"sample {self.key}: body model {self.body_model} has {expected} vertices, "
                             f"body_vertices has {count}")
        if self.contact is not None and self.contact.shape[0] != count:
            raise ValueError(f"sample {self.key}: {count} body vertices but {self.contact.shape[0]} contact values")
        if self.body_faces is not None:
            self.body_faces = self._faces("body_faces", count)

    def _check_object(self) -> None:
        given = [name for name in ("object_vertices", "object_faces", "object_pose") if getattr(self, name) is not None]
        if not given:
            return
        if len(given) != 3:
            raise ValueError(f"sample {self.key}: object_vertices, object_faces and object_pose go together "
                             f"(got only {given})")
        self.object_vertices = self._vertices("object_vertices")
        self.object_faces = self._faces("object_faces", self.object_vertices.shape[0])
        pose = np.asarray(self.object_pose, dtype=np.float64)
        if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
            raise ValueError(f"sample {self.key}: object_pose must be a finite (4, 4) matrix, got {pose.shape}")
        rotation = pose[:3, :3]
        if (np.abs(rotation.T @ rotation - np.eye(3)).max() > _POSE_TOLERANCE or np.linalg.det(rotation) <= 0
                or np.abs(pose[3] - (0, 0, 0, 1)).max() > 0):
            raise ValueError(f"sample {self.key}: object_pose is not a rigid transform (rotation + translation, "
                             "last row 0 0 0 1)")
        self.object_pose = pose.astype(np.float32)


def sidecar_path(bag_path: str | os.PathLike) -> Path:
    """Path of the ground-truth sidecar of a bag.

    ``run.mcap`` / ``run.db3`` (bare storage files) and the bag folder ``run`` all map to
    ``run.groundtruth.npz`` in the same parent folder. The bag need not exist.
    """
    path = Path(bag_path)
    if path.suffix in BAG_FILE_SUFFIXES:
        path = path.with_suffix("")
    if not path.name:
        raise ValueError(f"not a bag path: {str(bag_path)!r}")
    return path.with_name(path.name + _SIDECAR_SUFFIX)


def _index_arrays(samples: list[GroundTruthSample]) -> dict[str, np.ndarray]:
    """The index arrays (one entry per sample) of the file format."""
    def text(values: list[str]) -> np.ndarray:
        return np.array(values, dtype=np.str_) if values else np.zeros(0, dtype="<U1")

    return {
        "stamps": np.array([s.image_stamp_ns for s in samples], dtype=np.int64),
        "ids": text([s.detection_id for s in samples]),
        "labels": text([s.object_label for s in samples]),
        "body_models": text([s.body_model for s in samples]),
        "affordance_types": text([s.affordance_type for s in samples]),
    }


def save_ground_truth(path: str | os.PathLike, samples: Iterable[GroundTruthSample]) -> Path:
    """Write ``samples`` to one compressed ``.npz`` file (format in the module docstring).

    The file is written to a temporary name and renamed, so a reader never sees half a file.
    Returns the path written. Raises ValueError when an element is not a GroundTruthSample, two
    samples share a key ``(image_stamp_ns, detection_id)``, or two samples of one body model
    carry different ``body_faces`` (a file stores one set per model).
    """
    samples = list(samples)
    seen: set[tuple[int, str]] = set()
    body_faces: dict[str, np.ndarray] = {}
    for sample in samples:
        if not isinstance(sample, GroundTruthSample):
            raise ValueError(f"expected GroundTruthSample, got {type(sample).__name__}")
        if sample.key in seen:
            raise ValueError(f"duplicate ground-truth key {sample.key}")
        seen.add(sample.key)
        if sample.body_faces is not None:
            known = body_faces.setdefault(sample.body_model, sample.body_faces)
            if known is not sample.body_faces and not np.array_equal(known, sample.body_faces):
                raise ValueError(f"sample {sample.key}: body_faces differ from another {sample.body_model!r} sample's")
    arrays: dict[str, np.ndarray] = {"format_version": np.array(FORMAT_VERSION, dtype=np.int64)}
    arrays.update(_index_arrays(samples))
    for i, sample in enumerate(samples):
        for name in _ARRAY_KEYS:
            value = getattr(sample, name)
            if value is not None:
                dtype = np.int32 if name in _INT_KEYS else np.float32
                arrays[f"{name}/{i}"] = np.ascontiguousarray(value, dtype=dtype)
    for model, faces in body_faces.items():
        arrays[f"{_BODY_FACES}/{model}"] = np.ascontiguousarray(faces, dtype=np.int32)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """All arrays of ``path`` (no pickle); ValueError when it is not a plain-array .npz."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise ValueError(f"{path}: not a ground-truth .npz file ({err})") from err


def _check_index(path: Path, arrays: Mapping[str, np.ndarray]) -> int:
    """Validate version and index arrays; return the sample count."""
    if "format_version" not in arrays:
        raise ValueError(f"{path}: no format_version: not a ground-truth sidecar")
    version = int(arrays["format_version"])
    if version not in READABLE_VERSIONS:
        raise ValueError(f"{path}: format_version {version}, this reader knows {list(READABLE_VERSIONS)}")
    missing = [key for key in _INDEX_KEYS if key not in arrays]
    if missing:
        raise ValueError(f"{path}: missing index arrays {missing}")
    count = arrays["stamps"].shape[0] if arrays["stamps"].ndim == 1 else -1
    for key in _INDEX_KEYS:
        if arrays[key].ndim != 1 or arrays[key].shape[0] != count:
            raise ValueError(f"{path}: index array {key} has shape {arrays[key].shape}, "
                             f"expected ({count},)")
    if not np.issubdtype(arrays["stamps"].dtype, np.integer):
        raise ValueError(f"{path}: stamps must be integers, got {arrays['stamps'].dtype}")
    known = set(_INDEX_KEYS) | {"format_version"}
    models = set(arrays["body_models"].tolist())
    for key in arrays:
        name, _, index = key.partition("/")
        if key in known or (version > 1 and name == _BODY_FACES and index in models):
            continue
        if (name not in _ARRAY_KEYS or (version == 1 and name not in _ARRAY_KEYS[:3]) or not index.isdigit()
                or int(index) >= count):
            raise ValueError(f"{path}: unexpected array {key!r}")
    return count


def load_ground_truth(path: str | os.PathLike) -> dict[tuple[int, str], GroundTruthSample]:
    """Read a sidecar written by :func:`save_ground_truth`.

    Returns ``{(image_stamp_ns, detection_id): GroundTruthSample}`` in file order. Raises
    FileNotFoundError when ``path`` does not exist and ValueError when the file is not a
    sidecar of this version, is inconsistent, holds an invalid sample or a duplicate key.
    """
    path = Path(path)
    arrays = _read_npz(path)
    count = _check_index(path, arrays)
    samples: dict[tuple[int, str], GroundTruthSample] = {}
    for i in range(count):
        try:
            sample = GroundTruthSample(
                image_stamp_ns=int(arrays["stamps"][i]),
                detection_id=str(arrays["ids"][i]),
                object_label=str(arrays["labels"][i]),
                body_model=str(arrays["body_models"][i]),
                contact=arrays.get(f"contact/{i}"),
                affordance=arrays.get(f"affordance/{i}"),
                points=arrays.get(f"points/{i}"),
                affordance_type=str(arrays["affordance_types"][i]),
                body_vertices=arrays.get(f"body_vertices/{i}"),
                body_faces=(arrays.get(f"{_BODY_FACES}/{arrays['body_models'][i]}")
                            if f"body_vertices/{i}" in arrays else None),
                object_vertices=arrays.get(f"object_vertices/{i}"),
                object_faces=arrays.get(f"object_faces/{i}"),
                object_pose=arrays.get(f"object_pose/{i}"),
            )
        except ValueError as err:
            raise ValueError(f"{path}: sample {i}: {err}") from err
        if sample.key in samples:
            raise ValueError(f"{path}: duplicate ground-truth key {sample.key}")
        samples[sample.key] = sample
    return samples
