"""Ground truth that travels next to an evaluation bag (the *sidecar*), without ROS.

A lab evaluates with a ROS 2 bag of inputs (images + ``vision_msgs/Detection2DArray``) and one
sidecar file holding, per detection, what the node should have answered:

* human contact: a per-vertex contact value in [0, 1] on a body model's vertices;
* object affordance: a per-point affordance value in [0, 1] on the object points it refers to.

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
==========================  =======================================================

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

#: Version written to ``format_version``; :func:`load_ground_truth` rejects other versions.
FORMAT_VERSION = 1

#: Vertex count of each body model whose name fixes it. Other names (e.g. ``anny``) are accepted
#: with any vertex count. SMPL and SMPL-H share the 6890-vertex body topology.
BODY_MODEL_VERTICES = {"smpl": 6890, "smplh": 6890, "smplx": 10475}

#: Suffixes of bare rosbag2 storage files (their sidecar drops the suffix).
BAG_FILE_SUFFIXES = (".mcap", ".db3")

_SIDECAR_SUFFIX = ".groundtruth.npz"
_INDEX_KEYS = ("stamps", "ids", "labels", "body_models", "affordance_types")
_ARRAY_KEYS = ("contact", "affordance", "points")
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

    Arrays are converted to float32 on construction. Raises ValueError when a field is invalid:
    negative stamp, empty id, values outside [0, 1] or non-finite, contact without body model,
    length not matching the body model, affordance without points (or the reverse), N mismatch,
    or neither contact nor affordance.
    """

    image_stamp_ns: int
    detection_id: str
    object_label: str
    body_model: str = ""
    contact: np.ndarray | None = None
    affordance: np.ndarray | None = None
    points: np.ndarray | None = None
    affordance_type: str = ""

    def __post_init__(self) -> None:
        self._check_key()
        for name in ("object_label", "body_model", "affordance_type"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a str, got {type(getattr(self, name)).__name__}")
        if self.contact is None and self.affordance is None:
            raise ValueError(f"sample {self.key}: needs contact, affordance or both")
        self._check_contact()
        self._check_affordance()

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
    Returns the path written. Raises ValueError when an element is not a GroundTruthSample or
    two samples share a key ``(image_stamp_ns, detection_id)``.
    """
    samples = list(samples)
    seen: set[tuple[int, str]] = set()
    for sample in samples:
        if not isinstance(sample, GroundTruthSample):
            raise ValueError(f"expected GroundTruthSample, got {type(sample).__name__}")
        if sample.key in seen:
            raise ValueError(f"duplicate ground-truth key {sample.key}")
        seen.add(sample.key)
    arrays: dict[str, np.ndarray] = {"format_version": np.array(FORMAT_VERSION, dtype=np.int64)}
    arrays.update(_index_arrays(samples))
    for i, sample in enumerate(samples):
        for name in _ARRAY_KEYS:
            value = getattr(sample, name)
            if value is not None:
                arrays[f"{name}/{i}"] = np.ascontiguousarray(value, dtype=np.float32)
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
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {version}, this reader knows {FORMAT_VERSION}")
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
    for key in arrays:
        name, _, index = key.partition("/")
        if key in known:
            continue
        if name not in _ARRAY_KEYS or not index.isdigit() or int(index) >= count:
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
            )
        except ValueError as err:
            raise ValueError(f"{path}: sample {i}: {err}") from err
        if sample.key in samples:
            raise ValueError(f"{path}: duplicate ground-truth key {sample.key}")
        samples[sample.key] = sample
    return samples
