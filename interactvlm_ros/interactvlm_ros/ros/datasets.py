"""Convert public benchmarks (DAMON, PIAD, BEHAVE) into evaluation input bags + ground-truth sidecars.

Each converter writes an input bag with :func:`~interactvlm_ros.ros.bags.write_input_bag`
(one frame per dataset image, stamps ``start_ns + i * period_ns``) and its sidecar with
:func:`~interactvlm_ros.eval.groundtruth.save_ground_truth` at
:func:`~interactvlm_ros.eval.groundtruth.sidecar_path` of the bag. The datasets need
registration and are never shipped; the knowledge of their on-disk layout is kept in the
sections below (``DAMON layout``, ``PIAD layout``, ``BEHAVE layout``), each with its sources.

Common conventions:

* Image paths listed by a dataset are resolved by :func:`resolve_entry`: the path as given
  (absolute, or relative to each base folder), then with leading folders dropped one by one
  (``datasets/HOT-Annotated/images/a.jpg`` is also looked up as ``HOT-Annotated/images/a.jpg``,
  ``images/a.jpg`` and ``a.jpg``), so ``root`` may point at any level of a release.
* With ``compressed=True`` an original JPEG file is copied into the bag byte for byte (no
  second lossy encoding), unless its EXIF orientation asks for a rotation (then ``rgb``, as
  decoded without rotation, is re-encoded so both topics show the same pixels) or the converter
  changed the pixels (BEHAVE's undistortion), which are then encoded.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from ..safe_pickle import DATA_GLOBALS, RefusedGlobalError, load_npy, load_npz, load_pickle
from ..detection import Detection
from .bags import Frame, write_input_bag
from ..eval.groundtruth import GroundTruthSample, save_ground_truth, sidecar_path

#: Stamp of the first frame [ns] and spacing of frames [ns] (10 Hz) in converted bags.
DEFAULT_START_NS = 1_000_000_000
DEFAULT_PERIOD_NS = 100_000_000
#: Score of every converted detection (ground-truth boxes).
GT_SCORE = 1.0


@dataclass
class ConversionResult:
    """What a converter wrote.

    Attributes:
        bag: the input bag folder.
        sidecar: its ground-truth file.
        frames: images written (one frame each).
        samples: ground-truth samples written (one per detection).
        skipped: ``"<image entry>: <reason>"`` of each dataset entry left out.
    """

    bag: Path
    sidecar: Path
    frames: int = 0
    samples: int = 0
    skipped: list[str] = field(default_factory=list)


@dataclass
class _Object:
    """One detection of an item: id, label, box (x_min, y_min, x_max, y_max px; None: whole
    image), ground-truth fields (None: a detection without a ground-truth sample, e.g. the
    person beside an object)."""

    det_id: str
    label: str
    bbox_xyxy: tuple[float, float, float, float] | None
    truth: dict | None


@dataclass
class _Item:
    """One dataset image and its objects; ``rgb`` (H, W, 3) uint8 when the pixels to write are
    not the file's (e.g. undistorted), ``depth`` / ``k`` / ``frame_id`` as for
    :class:`~interactvlm_ros.ros.bags.Frame`."""

    image: Path
    objects: list[_Object]
    rgb: np.ndarray | None = None
    depth: np.ndarray | None = None
    k: tuple[float, ...] | None = None
    frame_id: str = "camera"


# --------------------------------------------------------------------------------------------
# Shared helpers


def resolve_entry(entry: str | os.PathLike, bases: Iterable[Path]) -> Path:
    """Find the file a dataset lists as ``entry`` (see the module docstring for the search).

    Raises FileNotFoundError naming the entry and the first candidates tried.
    """
    entry_path = Path(entry)
    if entry_path.is_absolute() and entry_path.is_file():
        return entry_path
    parts = entry_path.parts[1:] if entry_path.is_absolute() else entry_path.parts
    tried = []
    for start in range(len(parts)):
        for base in bases:
            candidate = Path(base).joinpath(*parts[start:])
            if candidate.is_file():
                return candidate
            tried.append(str(candidate))
    raise FileNotFoundError(f"dataset file {str(entry)!r} not found (tried {tried[:6]}...)")


def _load_rgb(path: Path) -> tuple[np.ndarray, bytes | None]:
    """(H, W, 3) uint8 RGB pixels of an image file, and its bytes when it is a plain JPEG."""
    from PIL import Image

    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        plain_jpeg = image.format == "JPEG" and image.getexif().get(0x0112, 1) == 1
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return rgb, (data if plain_jpeg else None)


def _whole_image(rgb: np.ndarray) -> tuple[float, float, float, float]:
    """Box ``(x_min, y_min, x_max, y_max)`` [px] covering the whole image."""
    height, width = rgb.shape[:2]
    return (0.0, 0.0, float(width), float(height))


def _convert(items: Iterable[_Item], out_bag, limit: int | None, skipped: list[str], *,
             compressed: bool, storage: str, start_ns: int, period_ns: int) -> ConversionResult:
    """Write ``items`` (at most ``limit`` images) as a bag and its sidecar."""
    out_bag = Path(out_bag)
    sidecar = sidecar_path(out_bag)
    if sidecar.exists():
        raise FileExistsError(f"ground-truth sidecar exists: {sidecar}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    if period_ns < 1:
        raise ValueError(f"period_ns must be >= 1, got {period_ns}")
    result = ConversionResult(bag=out_bag, sidecar=sidecar, skipped=skipped)
    samples: list[GroundTruthSample] = []

    def frames() -> Iterator[Frame]:
        iterator = iter(items)
        while limit is None or result.frames < limit:  # checked before the next item is read
            item = next(iterator, None)
            if item is None:
                return
            rgb, jpeg = _load_rgb(item.image) if item.rgb is None else (item.rgb, None)
            stamp = start_ns + result.frames * period_ns
            detections = []
            for obj in item.objects:
                box = obj.bbox_xyxy if obj.bbox_xyxy is not None else _whole_image(rgb)
                detections.append(Detection(obj.label, box, GT_SCORE, obj.det_id))
                if obj.truth is not None:
                    samples.append(GroundTruthSample(image_stamp_ns=stamp, detection_id=obj.det_id,
                                                     object_label=obj.label, **obj.truth))
            result.frames += 1
            yield Frame(stamp_ns=stamp, rgb=rgb, detections=detections, frame_id=item.frame_id, jpeg=jpeg,
                        depth=item.depth, k=item.k)

    write_input_bag(out_bag, frames(), compressed=compressed, storage=storage)
    if result.frames == 0:
        shutil.rmtree(out_bag, ignore_errors=True)
        raise ValueError(f"no convertible samples ({len(skipped)} skipped: {skipped[:3]})")
    save_ground_truth(sidecar, samples)
    result.samples = len(samples)
    return result


# --------------------------------------------------------------------------------------------
# DAMON layout
#
# Sources (read through the code search, 2025):
# * sha2nkt/deco README (same text in sha2nkt/pico README, "Download the DAMON dataset"): one
#   npz per split, ``datasets/Release_Datasets/damon/hot_dca_trainval.npz`` and
#   ``hot_dca_test.npz``; keys ``imgname`` ("relative path to the image file"),
#   ``contact_label`` ("3D contact annotations on the SMPL mesh"), ``contact_label_objectwise``
#   ("3D contact annotations split into separate object labels on the SMPL mesh"), ``*_smplx``
#   variants, pose/shape/cam_k...; "the order of values is the same for all the keys".
#   sha2nkt/deco data/base_dataset.py loads them with ``np.load(..., allow_pickle=True)`` and
#   reads ``contact_label[i]`` as a per-vertex array over 6890 SMPL vertices.
# * saidwivedi/InteractVLM datasets/hcontact_3d.py (``init_damon_hcontact``): its preprocessed
#   copy ``damon/{train,test}/imgname.npy``, ``contact_label.npy``,
#   ``contact_label_objectwise.npy`` with images in ``damon/{split}/images/<basename>``;
#   ``contact_label_objectwise[i]`` is a dict ``object name -> SMPL vertex ids in contact``;
#   objects without contact vertices are skipped; the object ``supporting`` is prompted as
#   "support object or ground"; binary (all-object) contact is prompted as
#   "all the objects or ground".
# Assumptions: (1) ``imgname`` entries are paths relative to the release root (the DECO repo
# root, up to three folders above the npz), the npz folder or an ``images`` folder beside it.
# (2) A contact entry of 6890 values in [0, 1] is a dense per-vertex label; any other list is
# vertex ids.
# (3) DAMON has no object boxes: each detection's box is the whole image. (4) DAMON's body is
# SMPL; SMPL and SMPL-H share the 6890-vertex body topology (same vertex ids), so the contact
# compares directly with InteractVLM's SMPL-H output. Loading these files needs pickle (object
# arrays of dicts): only the DAMON_KEYS arrays are read, object arrays through a restricted
# unpickler (interactvlm_ros.safe_pickle.DATA_GLOBALS: numpy arrays / dtypes / scalars and
# builtin containers); a file naming any other global is refused unless ``trust_pickle=True``.

DAMON_VERTICES = 6890
DAMON_BODY_MODEL = "smpl"
DAMON_NPZ_NAMES = ("hot_dca_{split}.npz", "damon_{split}.npz", "{split}.npz")
DAMON_NPZ_DIRS = (".", "damon", "Release_Datasets/damon", "datasets/Release_Datasets/damon")
DAMON_NPY_DIRS = ("{split}", "damon/{split}")
DAMON_KEYS = {"images": "imgname", "binary": "contact_label",
              "objectwise": "contact_label_objectwise"}
#: Detection id (and label) of the one all-object detection in binary mode (InteractVLM's).
DAMON_BINARY_OBJECT = "all the objects or ground"
#: Label under which an object name is prompted (InteractVLM's replacement); id stays verbatim.
DAMON_LABEL_ALIASES = {"supporting": "support object or ground"}


def _damon_tables(root: Path, split: str, trust_pickle: bool = False
                  ) -> tuple[dict[str, np.ndarray], list[Path]]:
    """The DAMON arrays (keys of DAMON_KEYS present) and the base folders of ``imgname``."""
    if root.is_file():
        return _damon_npz(root, trust_pickle), _npz_bases(root)
    for folder in DAMON_NPZ_DIRS:
        for name in DAMON_NPZ_NAMES:
            path = root / folder / name.format(split=split)
            if path.is_file():
                return _damon_npz(path, trust_pickle), [root] + _npz_bases(path)
    for folder in DAMON_NPY_DIRS:
        base = root / folder.format(split=split)
        if (base / f"{DAMON_KEYS['images']}.npy").is_file():
            tables = {key: (np.load(base / f"{key}.npy", allow_pickle=True) if trust_pickle
                            else load_npy(base / f"{key}.npy", hint=_TRUST_HINT))
                      for key in DAMON_KEYS.values() if (base / f"{key}.npy").is_file()}
            return tables, [base, base / "images", root]
    raise FileNotFoundError(
        f"no DAMON split {split!r} under {root}: expected one of "
        f"{[f'{d}/{n.format(split=split)}' for d in DAMON_NPZ_DIRS for n in DAMON_NPZ_NAMES]} "
        f"or {[d.format(split=split) + '/imgname.npy' for d in DAMON_NPY_DIRS]}")


def _npz_bases(npz: Path) -> list[Path]:
    """Folders ``imgname`` may be relative to: the npz folder, its ``images`` and three parents
    (the DECO repository root is the third parent of ``datasets/Release_Datasets/damon``)."""
    return [npz.parent, npz.parent / "images", *npz.parents[1:4]]


_TRUST_HINT = ("; DAMON object arrays may name only numpy arrays / dtypes / scalars and builtin "
               "containers. Pass trust_pickle=True to convert_damon to load a file you trust with "
               "numpy's allow_pickle=True (runs any code the file names)")


def _damon_npz(path: Path, trust_pickle: bool = False) -> dict[str, np.ndarray]:
    if trust_pickle:
        with np.load(path, allow_pickle=True) as data:
            tables = {key: data[key] for key in DAMON_KEYS.values() if key in data.files}
    else:
        tables = load_npz(path, DAMON_KEYS.values(), hint=_TRUST_HINT)
    if DAMON_KEYS["images"] not in tables:
        raise ValueError(f"{path}: no {DAMON_KEYS['images']!r} array (keys: {sorted(tables)})")
    return tables


def damon_contact(value) -> np.ndarray:
    """(6890,) float32 SMPL contact of one DAMON label: dense values or vertex ids.

    A 1-D entry of exactly 6890 values in [0, 1] is dense; anything else is a list of vertex
    ids (integers in [0, 6890)). Raises ValueError on ids that are not integers or out of range.
    """
    arr = np.asarray(value)
    if arr.dtype == object:
        arr = np.asarray(arr.tolist())
    if arr.size == DAMON_VERTICES and (arr.dtype == bool or (arr.min() >= 0 and arr.max() <= 1)):
        return arr.reshape(-1).astype(np.float32)
    ids = arr.reshape(-1)
    if ids.size and (not np.all(np.mod(ids, 1) == 0) or ids.min() < 0 or ids.max() >= DAMON_VERTICES):
        raise ValueError(f"contact vertex ids must be integers in [0, {DAMON_VERTICES}), "
                         f"got range [{ids.min()}, {ids.max()}]")
    contact = np.zeros(DAMON_VERTICES, dtype=np.float32)
    contact[ids.astype(np.int64)] = 1.0
    return contact


def _damon_objects(tables: dict[str, np.ndarray], index: int, mode: str) -> list[_Object]:
    """The detections of image ``index``: one per object in contact (or one all-object)."""
    truth = {"body_model": DAMON_BODY_MODEL}
    if mode == "objectwise":
        entry = tables[DAMON_KEYS["objectwise"]][index]
        if isinstance(entry, np.ndarray) and entry.ndim == 0:
            entry = entry.item()
        if not isinstance(entry, dict):
            raise ValueError(f"object-wise contact is a {type(entry).__name__}, expected a dict")
        objects = []
        for name, value in entry.items():
            contact = damon_contact(value)
            if contact.any():
                objects.append(_Object(str(name), DAMON_LABEL_ALIASES.get(str(name), str(name)),
                                       None, dict(truth, contact=contact)))
        return objects
    contact = damon_contact(tables[DAMON_KEYS["binary"]][index])
    if not contact.any():
        return []
    return [_Object(DAMON_BINARY_OBJECT, DAMON_BINARY_OBJECT, None, dict(truth, contact=contact))]


def _damon_items(tables, bases, mode: str, skipped: list[str]) -> Iterator[_Item]:
    for index, name in enumerate(tables[DAMON_KEYS["images"]]):
        try:
            objects = _damon_objects(tables, index, mode)
            if not objects:
                skipped.append(f"{name}: no contact")
                continue
            yield _Item(resolve_entry(str(name), bases), objects)
        except (ValueError, FileNotFoundError) as err:
            skipped.append(f"{name}: {err}")


def convert_damon(root, out_bag, limit: int | None = None, *, split: str = "test",
                  contact: str = "auto", compressed: bool = False, storage: str = "mcap",
                  start_ns: int = DEFAULT_START_NS, period_ns: int = DEFAULT_PERIOD_NS,
                  trust_pickle: bool = False) -> ConversionResult:
    """Convert a DAMON split (DECO release or InteractVLM's copy) to a bag + sidecar.

    Args:
        root: the release folder (any level that holds one of the layouts of the "DAMON
            layout" section) or the split's ``.npz`` file itself.
        out_bag: bag folder to create; the sidecar goes to ``sidecar_path(out_bag)``.
        limit: convert at most this many images (None: all).
        split: ``test`` (default), ``trainval`` / ``train``: picks ``hot_dca_{split}.npz``...
        contact: ``objectwise`` (one detection per object in contact: id = object name, label
            = object name with DAMON_LABEL_ALIASES applied), ``binary`` (one detection
            DAMON_BINARY_OBJECT with ``contact_label``), or ``auto`` (objectwise when the file
            has ``contact_label_objectwise``, else binary).
        compressed, storage: as for :func:`~interactvlm_ros.ros.bags.write_input_bag`.
        start_ns, period_ns: stamp of the first frame and frame spacing [ns].
        trust_pickle: False (default): object arrays (``contact_label_objectwise``...) are
            unpickled naming only numpy arrays / dtypes / scalars and builtin containers.
            True: numpy's ``allow_pickle=True``, which runs any code the file names; only for
            files you trust (e.g. verified copies of the official release).

    Every detection's box is the whole image (DAMON has no boxes) and score 1. Every sample has
    ``body_model = "smpl"`` and ``contact`` (6890,) float32 in {0, 1}. Images without any
    contact, with unreadable labels or missing files are skipped (listed in the result).
    Raises FileNotFoundError when no split is found, FileExistsError when the bag or sidecar
    exists, ValueError on an unknown ``contact`` mode or when nothing is convertible, and
    :class:`~interactvlm_ros.safe_pickle.RefusedGlobalError` (a ValueError and
    ``pickle.UnpicklingError``; names the file, the global and ``trust_pickle``) when an object
    array names any other global without ``trust_pickle=True``.
    """
    root = Path(root)
    tables, bases = _damon_tables(root, split, trust_pickle)
    if contact == "auto":
        contact = "objectwise" if DAMON_KEYS["objectwise"] in tables else "binary"
    if contact not in ("objectwise", "binary"):
        raise ValueError(f"contact must be 'auto', 'objectwise' or 'binary', got {contact!r}")
    if DAMON_KEYS[contact] not in tables:
        raise ValueError(f"{root}: no {DAMON_KEYS[contact]!r} labels for contact={contact!r}")
    skipped: list[str] = []
    items = _damon_items(tables, bases, contact, skipped)
    return _convert(items, out_bag, limit, skipped, compressed=compressed, storage=storage,
                    start_ns=start_ns, period_ns=period_ns)


# --------------------------------------------------------------------------------------------
# PIAD layout
#
# Sources (read through the code search, 2025):
# * yyvhang/IAGNet (the PIAD authors): config/config_seen.yaml lists ``Data/Seen/Img_Train.txt``,
#   ``Img_Test.txt``, ``Point_{Train,Test}.txt``, ``Box_{Train,Test}.txt``, ``N_raw: 2048``
#   points, 17 affordances; data_utils/dataset_PIAD.py reads each list as one path per line and,
#   for evaluation (``run_type == 'val'``), pairs line i of the image, point and box lists;
#   the image file name is ``Img_<Split>_<Object>_<affordance>_<n>.jpg`` (object = token -3,
#   affordance = token -2 of the '_' split); a point file line is
#   ``<shape id> <Object> x y z a_0 ... a_16`` (``data[2:]``: xyz then one column per affordance
#   in the order of PIAD_AFFORDANCES); a box file is labelme JSON whose ``shapes`` hold
#   rectangles labelled ``subject`` and ``object`` with ``points`` [[x1, y1], [x2, y2]] in
#   pixels (Demo/Img_Test_Bag_lift_1.json). In training the lists are not paired 1:1.
# * saidwivedi/InteractVLM datasets/ocontact_3d.py: evaluates on ``piad_ocontact_seen/Img_Test.txt``
#   paired line by line with ``Point_Test.txt``, object = token 2 and affordance = token 3 of the
#   image name, ground truth = the point file's column of that affordance.
# Assumptions: (1) Only a paired split (equal list lengths, i.e. Test) converts. (2) Point
# coordinates are PIAD's own normalised object coordinates (no metric scale); they are stored
# as given. (3) Leading non-numeric tokens of a point line (IAGNet: 2) are skipped; ``.npy``
# point files hold an (N, 3 + K) float array. (4) A missing box list or ``object`` rectangle
# falls back to the whole image (with a warning).

PIAD_AFFORDANCES = ("grasp", "contain", "lift", "open", "lay", "sit", "support", "wrapgrasp",
                    "pour", "move", "display", "push", "listen", "wear", "press", "cut", "stab")
PIAD_LISTS = {"images": "Img_{split}.txt", "points": "Point_{split}.txt", "boxes": "Box_{split}.txt"}
PIAD_POINTS = 2048
PIAD_OBJECT_SHAPE = "object"


def _read_list(path: Path) -> list[str]:
    """Non-empty, stripped lines of a PIAD list file."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def piad_names(image: str | os.PathLike) -> tuple[str, str]:
    """``(object, affordance)`` of a PIAD image from its file name (or, failing that, its
    folders ``.../<Object>/<affordance>/``). Raises ValueError when neither names a PIAD
    affordance."""
    path = Path(image)
    tokens = path.stem.split("_")
    if len(tokens) >= 3 and tokens[-2] in PIAD_AFFORDANCES:
        return tokens[-3], tokens[-2]
    if path.parent.name in PIAD_AFFORDANCES and path.parent.parent.name:
        return path.parent.parent.name, path.parent.name
    raise ValueError(f"cannot read object and affordance from PIAD image name {str(image)!r}")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_piad_points(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(points (N, 3) float32, affordances (N, K) float32)`` of a PIAD point file.

    ``.txt``: one point a line, ``[<shape id> <Object>] x y z a_0 ... a_{K-1}``; ``.npy``: an
    (N, 3 + K) array. Raises ValueError on ragged rows, non-numbers or fewer than 4 columns.
    """
    path = Path(path)
    if path.suffix == ".npy":
        table = np.load(path, allow_pickle=False)
    else:
        rows = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            tokens = line.split()
            if not tokens:
                continue
            skip = max((i + 1 for i, tok in enumerate(tokens[:2]) if not _is_number(tok)), default=0)
            try:
                rows.append([float(tok) for tok in tokens[skip:]])
            except ValueError as err:
                raise ValueError(f"{path}:{number}: {err}") from err
        if len({len(row) for row in rows}) > 1:
            raise ValueError(f"{path}: rows have different numbers of columns")
        table = np.array(rows, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] == 0 or table.shape[1] < 4:
        raise ValueError(f"{path}: expected an (N, 3 + K) table, got shape {table.shape}")
    return table[:, :3].astype(np.float32), table[:, 3:].astype(np.float32)


def read_piad_box(path: str | os.PathLike | None, width: int, height: int
                  ) -> tuple[float, float, float, float] | None:
    """Object box ``(x_min, y_min, x_max, y_max)`` [px] from a labelme JSON box file, clipped to the image;
    None (with a warning) when there is no file or no ``object`` rectangle."""
    if path is None:
        return None
    shapes = json.loads(Path(path).read_text()).get("shapes", [])
    corners = [s.get("points") for s in shapes if s.get("label") == PIAD_OBJECT_SHAPE]
    if not corners or not corners[0]:
        warnings.warn(f"{path}: no {PIAD_OBJECT_SHAPE!r} rectangle; using the whole image")
        return None
    xy = np.asarray(corners[0], dtype=np.float64).reshape(-1, 2)
    x0, x1 = np.clip([xy[:, 0].min(), xy[:, 0].max()], 0, width)
    y0, y1 = np.clip([xy[:, 1].min(), xy[:, 1].max()], 0, height)
    return (float(x0), float(y0), float(x1), float(y1))


def _piad_lists(root: Path, split: str) -> tuple[list[str], list[str], list[str] | None]:
    """Image, point and box entries of a split (boxes None when the box list is absent)."""
    paths = {kind: root / name.format(split=split) for kind, name in PIAD_LISTS.items()}
    for kind in ("images", "points"):
        if not paths[kind].is_file():
            raise FileNotFoundError(f"PIAD list {paths[kind]} not found")
    images, points = _read_list(paths["images"]), _read_list(paths["points"])
    boxes = _read_list(paths["boxes"]) if paths["boxes"].is_file() else None
    if boxes is None:
        warnings.warn(f"{paths['boxes']} not found; boxes cover the whole image")
    if len(points) != len(images) or (boxes is not None and len(boxes) != len(images)):
        raise ValueError(
            f"PIAD split {split!r} is not paired 1:1 ({len(images)} images, {len(points)} point "
            f"files, {len(boxes) if boxes is not None else 'no'} boxes): only the test split "
            "pairs image i with point file i")
    return images, points, boxes


def _piad_object(entries: tuple[str, str, str | None], bases: list[Path]) -> _Item:
    """The item of one (image, point file, box file) line triple."""
    from PIL import Image

    image = resolve_entry(entries[0], bases)
    obj, affordance = piad_names(entries[0])
    points, table = read_piad_points(resolve_entry(entries[1], bases))
    column = PIAD_AFFORDANCES.index(affordance)
    if table.shape[1] <= column:
        raise ValueError(f"{entries[1]}: {table.shape[1]} affordance columns, no {affordance!r}")
    with Image.open(image) as img:
        width, height = img.size
    box_file = resolve_entry(entries[2], bases) if entries[2] is not None else None
    box = read_piad_box(box_file, width, height)
    truth = {"affordance": table[:, column], "points": points, "affordance_type": affordance}
    return _Item(image, [_Object(obj, obj, box, truth)])


def _piad_items(rows, bases: list[Path], skipped: list[str]) -> Iterator[_Item]:
    for entries in rows:
        try:
            yield _piad_object(entries, bases)
        except (ValueError, FileNotFoundError) as err:
            skipped.append(f"{entries[0]}: {err}")


def convert_piad(root, out_bag, limit: int | None = None, *, split: str = "Test",
                 compressed: bool = False, storage: str = "mcap",
                 start_ns: int = DEFAULT_START_NS, period_ns: int = DEFAULT_PERIOD_NS
                 ) -> ConversionResult:
    """Convert a PIAD split (IAG-Net release layout) to a bag + sidecar.

    Args:
        root: folder holding ``Img_{split}.txt``, ``Point_{split}.txt`` and (optionally)
            ``Box_{split}.txt``, e.g. ``Data/Seen`` or ``Data/Unseen``; list entries are
            resolved against it and its two parents (see the module docstring).
        out_bag: bag folder to create; the sidecar goes to ``sidecar_path(out_bag)``.
        limit: convert at most this many images (None: all).
        split: ``Test`` (default; the only split whose lists pair 1:1).
        compressed, storage: as for :func:`~interactvlm_ros.ros.bags.write_input_bag`.
        start_ns, period_ns: stamp of the first frame and frame spacing [ns].

    Each image becomes one frame with one detection: id = label = the object class of the
    image name (``Bag``, ``Chair``... verbatim), box = the ``object`` rectangle of the box file,
    score 1. Its sample holds ``points`` (N, 3) (PIAD: N = 2048, dataset coordinates),
    ``affordance`` (N,) = the point file's column of the image's affordance and
    ``affordance_type`` = that affordance. Entries with missing files or unreadable content
    are skipped (listed in the result). Raises FileNotFoundError when the lists are missing,
    FileExistsError when the bag or sidecar exists, ValueError when the lists do not pair or
    nothing is convertible.
    """
    root = Path(root)
    images, points, boxes = _piad_lists(root, split)
    rows = zip(images, points, boxes if boxes is not None else [None] * len(images))
    bases = [root, root.parent, root.parent.parent]
    skipped: list[str] = []
    return _convert(_piad_items(rows, bases, skipped), out_bag, limit, skipped,
                    compressed=compressed, storage=storage, start_ns=start_ns,
                    period_ns=period_ns)


# --------------------------------------------------------------------------------------------
# BEHAVE layout
#
# Sources (xiexh20/behave-dataset, read through the code search, 2026: README "Dataset
# Structure" and "Parse object pose parameters", data/utils.py, data/kinect_calib.py,
# data/kinect_transform.py, data/seq_utils.py, data/frame_data.py, tools/parse_obj_pose.py,
# tools/smpl_params2mesh.py, libsmpl/smplpytorch/pytorch/smpl_layer.py, compute_contacts.py):
# * ``split.json``: {"train": [sequence names], "test": [...]}, beside ``sequences/``.
# * ``sequences/<Date>_<Sub>_<object>[_<action>]/info.json``: "cat" (the object name), "gender"
#   (``male`` / ``female``: the SMPL-H model of the fits), "config" / "intrinsic" (calibration
#   folders, relative to the sequence folder) and "kinects" (ids).
# * ``sequences/<seq>/t<seconds>.000/``: ``k<k>.color.jpg``; ``k<k>.depth.png`` (uint16
#   millimetres, "already pixel aligned with color images"); ``k<k>.person_mask.jpg`` and
#   ``k<k>.obj_rend_mask.jpg`` (the loader also accepts ``.png`` and ``k<k>.obj_mask.*``; a pixel
#   belongs to the mask when > 127).
# * ``calibs/intrinsics/<k>/calibration.json``: "color" with fx, fy, cx, cy [px], width, height
#   and "opencv", whose values from the fifth on are the OpenCV distortion coefficients the
#   loader projects into the colour image with (``cv2.projectPoints``).
# * ``calibs/<Date>/config/<k>/config.json``: "rotation" (9 values, row-major) and
#   "translation" (3, metres): Kinect k's colour camera -> the world frame, which is Kinect 1's
#   colour camera (x right, y down, z forward); world -> camera k is the inverse.
# * ``<frame>/person/fit02/person_fit.pkl``: "pose" (156 SMPL-H axis-angle values: 52 joints),
#   "betas" (10), "trans" (3), world frame: vertices = SMPL-H_<gender>(pose, betas) + trans
#   (MANO v1.2 model files; nothing recentred).
# * ``<frame>/<object>/fit01/<object>_fit.pkl`` (folder and file named after the object, or after
#   its detector class "chair" / "sports ball"): "angle" (3, axis-angle) and "trans" (3, m):
#   world vertex = R(angle) v + trans for the template's vertices v centred on their mean; the
#   template is the simplified mesh of :data:`BEHAVE_TEMPLATES` under ``objects/`` (the full
#   ``<name>.obj`` scan is centred with the same mean; it is not read here).
# Assumptions: (1) ``info.json`` paths that do not exist (e.g. absolute paths of the authors'
# machines) fall back to ``calibs/<Date>/config`` and ``calibs/intrinsics``. (2) Frames without
# both fits are skipped (not every frame has registrations); views without a colour image,
# depth or a non-empty person and object mask are skipped. (3) With non-zero distortion the
# colour image, depth and masks are undistorted onto the same intrinsics (colour bilinear,
# depth and masks nearest), so the CameraInfo (K, no distortion) and the ground truth in the
# camera frame describe the written pixels exactly.

BEHAVE_FITS = {"person": "person/fit02/person_fit.pkl", "object": "{folder}/fit01/{folder}_fit.pkl"}
#: Simplified object meshes the fits are registered with, under ``objects/``.
BEHAVE_TEMPLATES = {
    "backpack": "backpack/backpack_f1000.ply", "basketball": "basketball/basketball_f1000.ply",
    "boxlarge": "boxlarge/boxlarge_f1000.ply", "boxtiny": "boxtiny/boxtiny_f1000.ply",
    "boxlong": "boxlong/boxlong_f1000.ply", "boxsmall": "boxsmall/boxsmall_f1000.ply",
    "boxmedium": "boxmedium/boxmedium_f1000.ply", "chairblack": "chairblack/chairblack_f2500.ply",
    "chairwood": "chairwood/chairwood_f2500.ply", "monitor": "monitor/monitor_closed_f1000.ply",
    "keyboard": "keyboard/keyboard_f1000.ply", "plasticcontainer": "plasticcontainer/plasticcontainer_f1000.ply",
    "stool": "stool/stool_f1000.ply", "tablesquare": "tablesquare/tablesquare_f2000.ply",
    "toolbox": "toolbox/toolbox_f1000.ply", "suitcase": "suitcase/suitcase_f1000.ply",
    "tablesmall": "tablesmall/tablesmall_f1000.ply", "yogamat": "yogamat/yogamat_f1000.ply",
    "yogaball": "yogaball/yogaball_f1000.ply", "trashbin": "trashbin/trashbin_f1000.ply",
}
#: Detection label (a plain class word a detector or a prompt uses) of each BEHAVE object;
#: other object names are used as they are.
BEHAVE_LABELS = {
    "boxlarge": "box", "boxlong": "box", "boxmedium": "box", "boxsmall": "box", "boxtiny": "box",
    "chairblack": "chair", "chairwood": "chair", "tablesmall": "table", "tablesquare": "table",
    "plasticcontainer": "plastic container", "trashbin": "trash bin", "yogaball": "yoga ball",
    "yogamat": "yoga mat",
}
#: The fit folder BEHAVE's loader tries first for objects whose name holds these words.
BEHAVE_FIT_FOLDERS = {"chair": "chair", "ball": "sports ball"}
BEHAVE_BODY_MODEL = "smplh"
#: Detection id and label of the person in every converted frame.
BEHAVE_PERSON = "person"
#: A mask pixel belongs to the mask when its grey value exceeds this (BEHAVE's loader).
BEHAVE_MASK_LEVEL = 127

_FIT_HINT = "; BEHAVE fits may name only numpy arrays / dtypes / scalars and builtin containers"


def behave_label(name: str) -> str:
    """The detection label of BEHAVE object ``name`` (:data:`BEHAVE_LABELS`, else ``name``)."""
    return BEHAVE_LABELS.get(name, name)


@dataclass
class _BehaveCamera:
    """One Kinect's colour camera: intrinsics, distortion, size and pose in the world frame."""

    k: np.ndarray  # (3, 3) px
    distortion: np.ndarray  # OpenCV coefficients
    size: tuple[int, int]  # (width, height) px
    rotation: np.ndarray  # (3, 3) camera -> world
    translation: np.ndarray  # (3,) m
    maps: tuple[np.ndarray, np.ndarray] | None = None  # undistortion remap (None: no distortion)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) [m] in this camera's frame."""
        return (points - self.translation) @ self.rotation

    def pose_in_camera(self, world_from_object: np.ndarray) -> np.ndarray:
        """(4, 4) camera-from-object transform of a world-from-object one."""
        camera_from_world = np.eye(4)
        camera_from_world[:3, :3] = self.rotation.T
        camera_from_world[:3, 3] = -self.rotation.T @ self.translation
        return camera_from_world @ world_from_object


def _read_json(path: Path, what: str):
    if not path.is_file():
        raise FileNotFoundError(f"BEHAVE {what} {path} not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not JSON ({err})") from err


def _calibration_folder(seq_dir: Path, info: dict, key: str, fallback: Path) -> Path:
    """The calibration folder ``info[key]`` names (relative to the sequence), else ``fallback``."""
    named = info.get(key)
    if named:
        folder = Path(named) if Path(named).is_absolute() else seq_dir / named
        if folder.is_dir():
            return folder.resolve()
    return fallback


def _behave_camera(intrinsics: Path, config: Path, kinect: int) -> _BehaveCamera:
    import cv2

    calibration = _read_json(intrinsics / str(kinect) / "calibration.json", "calibration file")
    pose = _read_json(config / str(kinect) / "config.json", "camera pose file")
    try:
        color = calibration["color"]
        k = np.array([[color["fx"], 0.0, color["cx"]], [0.0, color["fy"], color["cy"]], [0.0, 0.0, 1.0]], np.float64)
        distortion = np.asarray(color.get("opencv", [])[4:], np.float64)
        size = (int(color["width"]), int(color["height"]))
        rotation = np.asarray(pose["rotation"], np.float64).reshape(3, 3)
        translation = np.asarray(pose["translation"], np.float64).reshape(3)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"Kinect {kinect} calibration in {intrinsics} / {config}: {err!r}") from err
    if abs(np.linalg.det(rotation) - 1.0) > 1e-3:
        raise ValueError(f"{config / str(kinect) / 'config.json'}: rotation is not a rotation matrix")
    camera = _BehaveCamera(k, distortion, size, rotation, translation)
    if np.any(distortion != 0):
        camera.maps = cv2.initUndistortRectifyMap(k, distortion, None, k, size, cv2.CV_32FC1)
    return camera


def _load_fit(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The ``keys`` arrays of a BEHAVE fit pickle (restricted unpickler, float64)."""
    data = load_pickle(path, DATA_GLOBALS, _FIT_HINT)
    if not isinstance(data, dict) or any(key not in data for key in keys):
        raise ValueError(f"{path}: expected a dict with {list(keys)}")
    return {key: np.asarray(data[key], np.float64).reshape(-1) for key in keys}


def _object_fit_path(frame_dir: Path, name: str) -> Path:
    folders = [f for word, f in BEHAVE_FIT_FOLDERS.items() if word in name] + [name]
    candidates = [frame_dir / BEHAVE_FITS["object"].format(folder=f) for f in folders]
    return next((c for c in candidates if c.is_file()), candidates[-1])


def _behave_template(root: Path, name: str):
    """(vertices centred on their mean (K, 3) float64 m, faces (G, 3) int32) of object ``name``."""
    import trimesh

    folder = root / "objects" / name
    path = root / "objects" / BEHAVE_TEMPLATES[name] if name in BEHAVE_TEMPLATES else None
    if path is None or not path.is_file():
        found = sorted(folder.glob(f"{name}*_f[0-9]*.ply"))
        if len(found) != 1:
            raise FileNotFoundError(f"BEHAVE object template of {name!r} not found: expected "
                                    f"{path or folder / (name + '_f<N>.ply')}")
        path = found[0]
    mesh = trimesh.load(path, process=False, force="mesh")
    vertices = np.asarray(mesh.vertices, np.float64)
    faces = np.asarray(mesh.faces, np.int32)
    if vertices.ndim != 2 or len(vertices) == 0 or len(faces) == 0:
        raise ValueError(f"{path}: not a triangle mesh")
    return vertices - vertices.mean(axis=0), faces


def _mask_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """Pixel-edge box ``(x_min, y_min, x_max, y_max)`` of a boolean mask; None when empty."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return None
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def _read_mask(frame_dir: Path, kinect: int, names: tuple[str, ...]) -> np.ndarray:
    import cv2

    for name in names:
        for ext in ("jpg", "png"):
            path = frame_dir / f"k{kinect}.{name}.{ext}"
            if path.is_file():
                grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
                if grey is None:
                    raise ValueError(f"{path}: unreadable mask")
                return grey
    raise FileNotFoundError(f"no k{kinect}.{names[0]}.jpg")


@dataclass
class _BehaveSequence:
    name: str
    folder: Path
    object_name: str
    model: dict  # SMPL-H arrays (geometry.smpl.load_model_arrays)
    template: tuple[np.ndarray, np.ndarray]
    cameras: dict[int, _BehaveCamera]


def _behave_sequence(root: Path, name: str, kinects: tuple[int, ...], body_model_dir, models: dict,
                     templates: dict) -> _BehaveSequence:
    """A sequence's object, SMPL-H model and cameras (errors name what is missing)."""
    from ..geometry.smpl import load_model_arrays

    folder = root / "sequences" / name
    if not folder.is_dir():
        raise FileNotFoundError(f"BEHAVE sequence folder {folder} not found")
    info_path = folder / "info.json"
    info = _read_json(info_path, "sequence info (the object and the subject's gender)")
    object_name = str(info.get("cat") or name.split("_")[2])
    gender = info.get("gender")
    if gender not in ("male", "female"):
        raise ValueError(f"{info_path}: gender must be 'male' or 'female' (the SMPL-H model), got {gender!r}")
    if gender not in models:
        model = load_model_arrays(BEHAVE_BODY_MODEL, body_model_dir, gender)
        if "shapedirs" not in model:
            raise ValueError(f"the SMPL-H {gender} model in {body_model_dir} has no shapedirs (BEHAVE's fits have betas)")
        model["faces"] = model["faces"].astype(np.int32)  # one array shared by every sample's body_faces
        models[gender] = model
    if object_name not in templates:
        templates[object_name] = _behave_template(root, object_name)
    date = name.split("_")[0]
    intrinsics = _calibration_folder(folder, info, "intrinsic", root / "calibs" / "intrinsics")
    config = _calibration_folder(folder, info, "config", root / "calibs" / date / "config")
    cameras = {k: _behave_camera(intrinsics, config, k) for k in kinects}
    return _BehaveSequence(name, folder, object_name, models[gender], templates[object_name], cameras)


def _behave_scene(sequence: _BehaveSequence, frame_dir: Path) -> dict:
    """World-frame body vertices, object pose and contact of one frame (FileNotFoundError when a
    fit is missing)."""
    from scipy.spatial.transform import Rotation

    from ..eval.metrics import proximity_contact
    from ..geometry.smpl import posed_vertices

    person_path = frame_dir / BEHAVE_FITS["person"]
    object_path = _object_fit_path(frame_dir, sequence.object_name)
    for path in (person_path, object_path):
        if not path.is_file():
            raise FileNotFoundError(f"no fit {path.relative_to(frame_dir)}")
    person = _load_fit(person_path, ("pose", "betas", "trans"))
    fit = _load_fit(object_path, ("angle", "trans"))
    body = posed_vertices(sequence.model, person["pose"], person["betas"], person["trans"])
    world_from_object = np.eye(4)
    world_from_object[:3, :3] = Rotation.from_rotvec(fit["angle"]).as_matrix()
    world_from_object[:3, 3] = fit["trans"]
    vertices, faces = sequence.template
    object_world = vertices @ world_from_object[:3, :3].T + world_from_object[:3, 3]
    return {"body": body, "world_from_object": world_from_object,
            "contact": proximity_contact(body, object_world, faces)}


def _behave_view(sequence: _BehaveSequence, frame_dir: Path, kinect: int, scene: dict) -> _Item:
    """The item of one Kinect's view of a frame (FileNotFoundError / ValueError: skipped)."""
    import cv2
    from PIL import Image

    camera = sequence.cameras[kinect]
    image = frame_dir / f"k{kinect}.color.jpg"
    depth_path = frame_dir / f"k{kinect}.depth.png"
    for path in (image, depth_path):
        if not path.is_file():
            raise FileNotFoundError(f"no {path.name}")
    with Image.open(image) as opened:
        size = opened.size
    if size != camera.size:
        raise ValueError(f"{image.name} is {size[0]} x {size[1]} px, its calibration {camera.size[0]} x "
                         f"{camera.size[1]}")
    depth = cv2.imread(str(depth_path), cv2.IMREAD_UNCHANGED)
    if depth is None or depth.dtype != np.uint16 or depth.shape != (size[1], size[0]):
        raise ValueError(f"{depth_path.name}: expected {size[0]} x {size[1]} uint16 millimetres, got "
                         f"{None if depth is None else (depth.shape, depth.dtype)}")
    person = _read_mask(frame_dir, kinect, ("person_mask",))
    obj = _read_mask(frame_dir, kinect, ("obj_rend_mask", "obj_mask"))
    rgb = None
    if camera.maps is not None:
        def remap(pixels, interpolation):
            return cv2.remap(pixels, *camera.maps, interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

        rgb = remap(_load_rgb(image)[0], cv2.INTER_LINEAR)
        depth, person, obj = (remap(a, cv2.INTER_NEAREST) for a in (depth, person, obj))
    person_box, object_box = _mask_box(person > BEHAVE_MASK_LEVEL), _mask_box(obj > BEHAVE_MASK_LEVEL)
    if person_box is None or object_box is None:
        raise ValueError(f"empty {'person' if person_box is None else 'object'} mask in view k{kinect}")
    vertices, faces = sequence.template
    truth = {"body_model": BEHAVE_BODY_MODEL, "contact": scene["contact"],
             "body_vertices": camera.to_camera(scene["body"]), "body_faces": sequence.model["faces"],
             "object_vertices": vertices, "object_faces": faces,
             "object_pose": camera.pose_in_camera(scene["world_from_object"])}
    objects = [_Object(BEHAVE_PERSON, BEHAVE_PERSON, person_box, None),
               _Object(sequence.object_name, behave_label(sequence.object_name), object_box, truth)]
    return _Item(image, objects, rgb=rgb, depth=depth, k=tuple(camera.k.reshape(-1)), frame_id=f"k{kinect}_color")


def _behave_items(root: Path, names: list[str], kinects: tuple[int, ...], body_model_dir,
                  skipped: list[str]) -> Iterator[_Item]:
    models: dict = {}
    templates: dict = {}
    for name in names:
        sequence = _behave_sequence(root, name, kinects, body_model_dir, models, templates)
        for frame_dir in sorted(d for d in sequence.folder.glob("t*.000") if d.is_dir()):
            where = f"{name}/{frame_dir.name}"
            try:
                scene = _behave_scene(sequence, frame_dir)
            except RefusedGlobalError:
                raise
            except (FileNotFoundError, ValueError) as err:
                skipped.append(f"{where}: {err}")
                continue
            for kinect in kinects:
                try:
                    yield _behave_view(sequence, frame_dir, kinect, scene)
                except (FileNotFoundError, ValueError) as err:
                    skipped.append(f"{where}/k{kinect}: {err}")


def behave_sequences(root, split: str | None = "test") -> list[str]:
    """The sequence names of a BEHAVE ``split`` (``split.json``), sorted; None: every folder in
    ``sequences/``. Raises FileNotFoundError without ``split.json`` / ``sequences/`` and
    ValueError for a split the file does not have."""
    root = Path(root)
    if split is None:
        folder = root / "sequences"
        if not folder.is_dir():
            raise FileNotFoundError(f"no BEHAVE sequences folder {folder}")
        return sorted(d.name for d in folder.iterdir() if d.is_dir())
    path = root / "split.json"
    splits = _read_json(path, "split file")
    if not isinstance(splits, dict) or not isinstance(splits.get(split), list):
        raise ValueError(f"{path}: no split {split!r} (has {sorted(splits) if isinstance(splits, dict) else '?'})")
    return sorted(str(name) for name in splits[split])


def convert_behave(root, out_bag, limit: int | None = None, *, body_model_dir, split: str | None = "test",
                   sequences: Iterable[str] | None = None, kinects: Iterable[int] = (0, 1, 2, 3),
                   compressed: bool = False, storage: str = "mcap", start_ns: int = DEFAULT_START_NS,
                   period_ns: int = DEFAULT_PERIOD_NS) -> ConversionResult:
    """Convert BEHAVE (the release layout of the "BEHAVE layout" section) to a bag + sidecar.

    Args:
        root: the release folder holding ``calibs/``, ``objects/``, ``sequences/`` and
            ``split.json``.
        out_bag: bag folder to create; the sidecar goes to ``sidecar_path(out_bag)``.
        limit: convert at most this many images (views) (None: all).
        body_model_dir: the user's SMPL-H model files (MANO v1.2 ``SMPLH_male`` /
            ``SMPLH_female``, ``.pkl`` or ``.npz``; a folder as ``geometry.smpl.resolve_model_path``
            searches, or one file): BEHAVE's fits are SMPL-H parameters of the subject's gender.
        split: ``test`` (default) or ``train`` from ``split.json``; None: every sequence folder.
        sequences: only these sequence names (of the split).
        kinects: Kinect ids whose views to write, each view one frame.
        compressed, storage: as for :func:`~interactvlm_ros.ros.bags.write_input_bag`.
        start_ns, period_ns: stamp of the first frame and frame spacing [ns].

    Each view of a frame with both fits becomes one frame, in sequence, frame and Kinect order:
    the colour image (undistorted when the calibration has distortion), its registered depth
    (uint16 mm, ``/camera/depth_registered/image_raw``) and CameraInfo (the colour
    intrinsics, no distortion), frame id ``k<k>_color``, and two detections with score 1:
    ``person`` (id and label :data:`BEHAVE_PERSON`, box of the person mask) and the object (id
    = BEHAVE's object name, label :func:`behave_label`, box of the object mask). The object
    detection's sample holds ``body_model = "smplh"``, the SMPL-H body posed with the fit in the
    view's camera frame (``body_vertices``, ``body_faces``), ``contact`` = its vertices whose
    signed distance to the object's surface is below 2 cm
    (:func:`~interactvlm_ros.eval.metrics.proximity_contact`: BEHAVE's own contact threshold),
    and the object's template (centred) with its pose in the camera frame. Frames without fits
    and views with missing files or an empty mask are skipped (listed in the result).

    Raises:
        FileNotFoundError: no split file / sequence / ``info.json`` / calibration / object
            template, or no SMPL-H model file (the message says where they come from).
        FileExistsError: the bag or sidecar exists.
        ValueError: an unknown split, a Kinect id outside 0-3, an invalid calibration or model,
            or nothing convertible.
        RefusedGlobalError: a fit pickle naming anything but numpy arrays and builtin
            containers (a ValueError and ``pickle.UnpicklingError``).
    """
    root = Path(root)
    kinects = tuple(int(k) for k in kinects)
    if not kinects or any(k not in range(4) for k in kinects) or len(set(kinects)) != len(kinects):
        raise ValueError(f"kinects must be distinct ids in 0-3, got {kinects}")
    if body_model_dir is None:
        raise ValueError("convert_behave needs body_model_dir: BEHAVE's human fits are SMPL-H parameters")
    names = behave_sequences(root, split)
    if sequences is not None:
        wanted = [str(s) for s in sequences]
        missing = [s for s in wanted if s not in names]
        if missing:
            raise ValueError(f"sequences {missing} are not in split {split!r} of {root}")
        names = [n for n in names if n in wanted]
    skipped: list[str] = []
    return _convert(_behave_items(root, names, kinects, body_model_dir, skipped), out_bag, limit, skipped,
                    compressed=compressed, storage=storage, start_ns=start_ns, period_ns=period_ns)
