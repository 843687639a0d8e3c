"""Convert public benchmarks (DAMON, PIAD) into evaluation input bags + ground-truth sidecars.

Each converter writes an input bag with :func:`~interactvlm_ros.ros.bags.write_input_bag`
(one frame per dataset image, stamps ``start_ns + i * period_ns``) and its sidecar with
:func:`~interactvlm_ros.eval.groundtruth.save_ground_truth` at
:func:`~interactvlm_ros.eval.groundtruth.sidecar_path` of the bag. The datasets need
registration and are never shipped; the knowledge of their on-disk layout is kept in the two
sections below (``DAMON layout`` and ``PIAD layout``), each with its sources.

Common conventions:

* Image paths listed by a dataset are resolved by :func:`resolve_entry`: the path as given
  (absolute, or relative to each base folder), then with leading folders dropped one by one
  (``datasets/HOT-Annotated/images/a.jpg`` is also looked up as ``HOT-Annotated/images/a.jpg``,
  ``images/a.jpg`` and ``a.jpg``), so ``root`` may point at any level of a release.
* With ``compressed=True`` an original JPEG file is copied into the bag byte for byte (no
  second lossy encoding), unless its EXIF orientation asks for a rotation (then ``rgb``, as
  decoded without rotation, is re-encoded so both topics show the same pixels).
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

from ..safe_pickle import load_npy, load_npz
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
    image), ground-truth fields."""

    det_id: str
    label: str
    bbox_xyxy: tuple[float, float, float, float] | None
    truth: dict


@dataclass
class _Item:
    """One dataset image and its objects."""

    image: Path
    objects: list[_Object]


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
        for item in items:
            if limit is not None and result.frames >= limit:
                return
            rgb, jpeg = _load_rgb(item.image)
            stamp = start_ns + result.frames * period_ns
            detections = []
            for obj in item.objects:
                box = obj.bbox_xyxy if obj.bbox_xyxy is not None else _whole_image(rgb)
                detections.append(Detection(obj.label, box, GT_SCORE, obj.det_id))
                samples.append(GroundTruthSample(image_stamp_ns=stamp, detection_id=obj.det_id,
                                                 object_label=obj.label, **obj.truth))
            result.frames += 1
            yield Frame(stamp_ns=stamp, rgb=rgb, detections=detections, jpeg=jpeg)

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
