"""Offline replay of a ROS 2 bag through the pipeline: ``interactvlm-ros replay IN_BAG OUT_BAG``.

Unlike the node, replay drops nothing: every detections message is paired with the image of
its stamp (exact, or nearest within ``slop``) and processed, or reported with the reason
(no image with that stamp, no valid detection, undecodable image, inference error). With a
depth topic, each image's registered depth and CameraInfo are paired by the same rule
(``sync.pair_stamps``, the node's ``nearest_stamp``) wherever they lie in the bag. The
output bag (mcap by default) holds ``/interactvlm/interactions`` (InteractionArray, stamped
with the image) and ``/interactvlm/markers``; its connections carry the message definitions,
so standard tools (rosbags, ros2 bag, Foxglove) can read it.

Bags are read and written with ``rosbags``; messages are (de)serialised with rclpy so that the
same processing code as the node's runs on them.

Robustness: :func:`check_outputs` and :func:`check_inputs` refuse, before any model is loaded,
outputs that exist (unless ``force``) or cannot be written and inputs that cannot be opened.
The output bag is written into a hidden sibling folder and renamed into place when complete,
so an interrupted run leaves no ``OUT_BAG``. A bag that breaks off mid-way is processed up to
the break (``ReplayResult.error`` says where); an mcap file cut off before its end (which
rosbags refuses to open) is read record by record up to the cut (:class:`_CutOffMcap`).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Mapping, NamedTuple

import numpy as np
from interactvlm_msgs.msg import InteractionArray
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from vision_msgs.msg import Detection2DArray

from .bags import cdr_header_stamp_ns, project_typestore
from ..reasons import Reason, Rejected
from .processing import FrameProcessor, ProcessingSettings, stamp_ns
from .images import decode_image
from .sync import pair_stamps

IMAGE_TYPES = {"sensor_msgs/msg/Image": Image, "sensor_msgs/msg/CompressedImage": CompressedImage}
DETECTIONS_TYPE = "vision_msgs/msg/Detection2DArray"
DEPTH_TYPES = {"sensor_msgs/msg/Image": Image}
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
INTERACTIONS_TOPIC = "/interactvlm/interactions"
MARKERS_TOPIC = "/interactvlm/markers"
#: Files of a rosbag2 bag (besides metadata.yaml): the only things ``force`` replaces.
BAG_STORAGE_SUFFIXES = (".mcap", ".db3")
_MCAP_MAGIC = b"\x89MCAP0\r\n"


@dataclass
class ReplayResult:
    """What happened to every input.

    Attributes:
        counts: by outcome ("processed", and one key per reason an input was not used).
        records: one dict per detections message: stamp_ns, outcome, detection ids.
        outputs: (stamp_ns, InteractionArray, pipeline EstimateResult) per processed pair.
        images: stamp_ns -> (H, W, 3) uint8 RGB of the first ``keep_images`` processed pairs
            (for figures).
        camera_infos: stamp_ns -> the sensor_msgs/CameraInfo paired with each image of
            ``images`` (absent when it had none), for figures in the image's optical frame.
        messages_read: messages read from the input bag.
        error: None, or ``{"message", "messages_read"}`` when the input bag broke off mid-way
            (everything read before the break was processed).
    """

    counts: Counter = field(default_factory=Counter)
    records: list[dict] = field(default_factory=list)
    outputs: list = field(default_factory=list)
    images: dict = field(default_factory=dict)
    camera_infos: dict = field(default_factory=dict)
    messages_read: int = 0
    error: dict | None = None


class BagReadError(RuntimeError):
    """The input bag broke off mid-way; what was read before the break was processed and its
    outputs written (``paths``)."""

    def __init__(self, message: str, paths: dict):
        super().__init__(message)
        self.paths = paths


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _pick(connections, wanted_types, topic: str | None, what: str):
    candidates = [c for c in connections if c.msgtype in wanted_types]
    if topic is not None:
        candidates = [c for c in candidates if c.topic == topic]
    topics = sorted({c.topic for c in candidates})
    if len(topics) != 1:
        available = ", ".join(sorted(f"{c.topic} ({c.msgtype})" for c in connections)) or "none"
        raise ValueError(f"need exactly one {what} topic{f' named {topic}' if topic else ''}; "
                         f"found {topics or 'none'} among: {available}")
    return [c for c in candidates if c.topic == topics[0]]


def _writable_dir(directory: Path, what: str, path: Path) -> None:
    """Prove that this process can make ``directory`` (where missing) and write in it, by doing
    so: its missing folders are created, a temporary file is written in it, and all of that
    removed again (``os.access`` is no proof: it says yes to root everywhere and to /proc, which
    refuses; the render cache's check does the same).

    Raises:
        ValueError: one line naming ``what`` ``path`` (the user's path) and the folder at fault.
    """
    existing = next(p for p in (directory, *directory.parents) if os.path.exists(p))
    if not existing.is_dir():
        raise ValueError(f"{what} {path}: {existing} is not a directory")
    missing = [directory, *directory.parents][:[directory, *directory.parents].index(existing)]
    created = []
    try:
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except OSError as error:
                raise ValueError(f"{what} {path}: cannot create {folder} ({error.strerror or error})") from None
            created.append(folder)
        try:
            with tempfile.TemporaryFile(dir=directory):
                pass
        except OSError as error:
            raise ValueError(f"{what} {path}: cannot write in {directory} ({error.strerror or error})") from None
    finally:
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                pass  # something else wrote there meanwhile: left as it is


def _is_bag(path: Path) -> bool:
    """A rosbag2 bag: an .mcap / .db3 file, or a folder of metadata.yaml and such files only."""
    if path.is_file():
        return path.suffix in BAG_STORAGE_SUFFIXES
    return path.is_dir() and (path / "metadata.yaml").is_file() and all(
        p.is_file() and (p.name == "metadata.yaml" or p.suffix in BAG_STORAGE_SUFFIXES) for p in path.iterdir())


def remove_bag(path: str | Path) -> None:
    """Delete the bag at ``path`` (checked with :func:`check_outputs` and ``force``)."""
    path = Path(path)
    if not _is_bag(path):
        raise ValueError(f"{path} is not a rosbag2 bag; not removing it")
    shutil.rmtree(path) if path.is_dir() else path.unlink()


def check_outputs(out_bag: str | Path, report_dir: str | Path | None = None, force: bool = False,
                  in_bag: str | Path | None = None) -> None:
    """Fail fast, before any model is loaded, on outputs that cannot be written.

    ``out_bag`` must not exist (with ``force`` it may be a rosbag2 bag, replaced once the new one
    is complete; never anything else, nor ``in_bag`` or a folder holding it) and its folder must
    be writable (missing folders are created). ``report_dir`` must be a writable directory (or
    creatable) and empty unless ``force`` (then the files a replay writes are overwritten,
    nothing else is deleted). Writability is proven by writing (:func:`_writable_dir`): missing
    folders and a probe are created and removed again, so nothing stays behind.

    Raises:
        ValueError: one line naming the path given (``out_bag`` or ``report_dir``) and the
            problem.
    """
    out_bag = Path(out_bag)
    if os.path.lexists(out_bag):
        if not force:
            raise ValueError(f"output bag {out_bag} exists; choose a new path or pass --force to replace it")
        if not _is_bag(out_bag):
            raise ValueError(f"output bag {out_bag} exists and is not a rosbag2 bag (metadata.yaml and "
                             f"{'/'.join(BAG_STORAGE_SUFFIXES)} files only); not replacing it, even with --force")
        if in_bag is not None and out_bag.resolve() in (Path(in_bag).resolve(), *Path(in_bag).resolve().parents):
            raise ValueError(f"output bag {out_bag} would replace the input bag {in_bag}")
    _writable_dir(out_bag.parent, "output bag", out_bag)
    if report_dir is None:
        return
    report_dir = Path(report_dir)
    _writable_dir(report_dir, "report directory", report_dir)
    if report_dir.is_dir() and any(report_dir.iterdir()) and not force:
        raise ValueError(f"report directory {report_dir} is not empty; choose another --report-dir or pass "
                         f"--force to overwrite it")


class _Topic(NamedTuple):
    """The part of a rosbags Connection that replay uses."""

    id: int
    topic: str
    msgtype: str
    msgcount: int


class _CutOffMcap:
    """The complete records of an mcap file cut off before its end (a recorder killed, a partial
    copy), in file order, like ``mcap recover``.

    rosbags (0.11.9) refuses such a file when it opens it (``AnyReaderError: File end magic is
    invalid.``: it starts from the footer and summary). This reads from the start instead,
    inside chunks too (an uncompressed chunk up to its last complete record, a compressed one
    only if complete), and raises rosbags' ``ReaderError`` at the cut, after every message
    before it. It offers what replay uses of AnyReader: ``connections`` and ``messages``.
    """

    def __init__(self, path: Path):
        from rosbags.rosbag2 import ReaderError
        from rosbags.rosbag2.storage_mcap import read_string

        self.path = path
        schemas, channels, counts = {}, {}, Counter()
        try:
            for op, body in self._records():
                record = BytesIO(body)
                if op == 0x03:  # schema: id, name, ...
                    (key,) = struct.unpack("<H", record.read(2))
                    schemas[key] = read_string(record)
                elif op == 0x04:  # channel: id, schema id, topic, ...
                    key, schema = struct.unpack("<HH", record.read(4))
                    channels[key] = (read_string(record), schemas.get(schema, ""))
                elif op == 0x05:
                    counts[struct.unpack_from("<H", body)[0]] += 1
        except ReaderError:
            pass  # messages() reaches the cut again and raises it there
        self.connections = [_Topic(key, topic, msgtype, counts[key]) for key, (topic, msgtype) in channels.items()]

    def _records(self):
        """(opcode, body) of every complete record, those inside chunks instead of the chunks."""
        from rosbags.rosbag2 import ReaderError

        with self.path.open("rb") as bio:
            size = os.fstat(bio.fileno()).st_size
            bio.seek(len(_MCAP_MAGIC))
            yield from _mcap_records(bio, size, self.path.name)
        raise ReaderError(f"{self.path.name}: cut off after its last complete record (no mcap end magic)")

    def messages(self, connections):
        wanted = {c.id: c for c in connections}
        for op, body in self._records():
            if op == 0x05:  # message: channel id, sequence, log time, publish time, data
                channel, _, log_time, _ = struct.unpack_from("<HIQQ", body)
                if channel in wanted:
                    yield wanted[channel], log_time, body[22:]

    def close(self) -> None:
        pass


def _mcap_records(bio, size: int, where: str):
    """(opcode, body) of the complete mcap records in ``bio`` (``size`` bytes), descending into
    chunks; rosbags' ReaderError where ``bio`` ends inside a record."""
    from rosbags.rosbag2 import ReaderError
    from rosbags.rosbag2.storage_mcap import decompress, read_exact, read_string

    while head := bio.read(9):
        offset = bio.tell() - len(head)
        length = struct.unpack("<Q", head[1:])[0] if len(head) == 9 else 0
        body = bio.read(min(length, size - offset))
        if head[0] == 0x06 and len(body) > 28:  # chunk: times, sizes, crc, compression, records
            chunk = BytesIO(body)
            _, _, raw_size, crc = struct.unpack("<QQQI", read_exact(chunk, 28))
            compression = read_string(chunk)
            (records_size,) = struct.unpack("<Q", read_exact(chunk, 8))
            records = chunk.read(records_size)
            if len(records) == records_size:
                records = decompress(records, compression, raw_size, crc)
            elif compression:
                raise ReaderError(f"{where}: cut off inside a {compression} chunk at byte {offset}")
            yield from _mcap_records(BytesIO(records), len(records), f"{where}: chunk at byte {offset}")
        if len(head) < 9 or len(body) < length:
            raise ReaderError(f"{where}: cut off inside a record at byte {offset}")
        if head[0] == 0x02:  # footer: the file is complete
            return
        if head[0] != 0x06:
            yield head[0], body


def _cut_off_mcap(path: Path) -> Path | None:
    """The mcap file of ``path`` (a file or a bag folder with one) if it starts as mcap but does
    not end as one."""
    files = [path] if path.is_file() else sorted(path.glob("*.mcap"))
    if len(files) != 1 or files[0].suffix != ".mcap":
        return None
    with files[0].open("rb") as bio:
        head = bio.read(len(_MCAP_MAGIC))
        bio.seek(max(bio.seek(0, os.SEEK_END) - len(_MCAP_MAGIC), 0))
        return files[0] if head == _MCAP_MAGIC and bio.read() != _MCAP_MAGIC else None


@contextmanager
def open_bag(in_bag: str | Path):
    """A rosbags AnyReader on ``in_bag`` or, for an mcap file cut off before its end, a
    :class:`_CutOffMcap`.

    Raises:
        FileNotFoundError: ``in_bag`` does not exist.
        ValueError: the bag cannot be opened (one line: the path and rosbags' reason).
    """
    from rosbags.highlevel import AnyReader, AnyReaderError

    in_bag = Path(in_bag)
    try:
        reader = AnyReader([in_bag])
        reader.open()
    except AnyReaderError as error:  # what rosbags raises for every bag it cannot open
        cut = _cut_off_mcap(in_bag)
        reader = _CutOffMcap(cut) if cut else None
        if reader is None or not any(c.msgcount for c in reader.connections):
            detail = " (cut off before its first message)" if cut else ""
            raise ValueError(f"cannot open input bag {in_bag}: {_one_line(error)}{detail}") from None
    try:
        yield reader
    finally:
        reader.close()


def _read_errors() -> tuple:
    """What reading the messages of a bag that breaks off mid-way raises (rosbags 0.11.9, found
    by experiment): rosbags.rosbag2.ReaderError for a corrupt mcap chunk or record (and from
    :class:`_CutOffMcap` at the cut); apsw.Error (CorruptError, "database disk image is
    malformed") for a damaged sqlite3 page; OSError and ValueError for I/O and decoding."""
    import apsw
    from rosbags.rosbag2 import ReaderError

    return ReaderError, apsw.Error, OSError, ValueError


def _messages(reader, connections, result: ReplayResult):
    """``reader.messages(connections)`` until the bag breaks off; the break is recorded in
    ``result.error`` (the first one) and ends the iteration."""
    try:
        for message in reader.messages(connections=connections):
            result.messages_read += 1
            yield message
    except _read_errors() as error:
        result.error = result.error or {"message": f"{type(error).__name__}: {_one_line(error)}"}


def check_inputs(in_bag: str | Path, image_topic: str | None = None, detections_topic: str | None = None,
                 depth_topic: str | None = None, camera_info_topic: str | None = None) -> None:
    """Fail fast, before any model is loaded: the input must open and have exactly one image
    and one detections topic (or the named ones) and, with ``depth_topic``, that depth topic
    and exactly one CameraInfo topic (or the named one).

    Raises:
        FileNotFoundError, ValueError: see above and :func:`open_bag`.
    """
    with open_bag(in_bag) as reader:
        _topics(reader.connections, image_topic, detections_topic, depth_topic, camera_info_topic)


def _topics(connections, image_topic, detections_topic, depth_topic, camera_info_topic,
            people: bool = False) -> dict[str, list]:
    """The connections of each input: "image", "detections"; with ``depth_topic``, "depth" and
    "camera_info" (the depth topic is never taken for the colour image); without it
    "camera_info" when ``camera_info_topic`` is named, or with ``people`` when the bag has
    exactly one CameraInfo topic (the people stage places persons with it)."""
    chosen = {}
    if depth_topic is not None:
        chosen["depth"] = _pick(connections, DEPTH_TYPES, depth_topic, "depth")
        chosen["camera_info"] = _pick(connections, {CAMERA_INFO_TYPE}, camera_info_topic, "CameraInfo")
        connections = [c for c in connections if c.topic != depth_topic]
    elif camera_info_topic is not None:
        chosen["camera_info"] = _pick(connections, {CAMERA_INFO_TYPE}, camera_info_topic, "CameraInfo")
    elif people and len({c.topic for c in connections if c.msgtype == CAMERA_INFO_TYPE}) == 1:
        chosen["camera_info"] = _pick(connections, {CAMERA_INFO_TYPE}, None, "CameraInfo")
    chosen["image"] = _pick(connections, IMAGE_TYPES, image_topic, "image")
    chosen["detections"] = _pick(connections, {DETECTIONS_TYPE}, detections_topic, "detections")
    return chosen


@contextmanager
def _staged(out_bag: Path, force: bool):
    """A path to write the bag to, in a hidden sibling folder, moved to ``out_bag`` (replacing
    an old bag with ``force``) when the block ends normally and deleted when it raises."""
    try:
        out_bag.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_bag.name}.", suffix=".partial", dir=out_bag.parent))
    except OSError as error:  # (checked before: the folder changed since)
        raise ValueError(f"output bag {out_bag}: cannot write in {out_bag.parent} "
                         f"({error.strerror or error})") from None
    try:
        yield staging / out_bag.name  # the storage file inside is named after its folder
        check_outputs(out_bag, force=force)  # nothing else appeared there meanwhile
        if os.path.lexists(out_bag):
            remove_bag(out_bag)
        os.rename(staging / out_bag.name, out_bag)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def replay(in_bag: str | Path, out_bag: str | Path, estimator, settings: ProcessingSettings,
           image_topic: str | None = None, detections_topic: str | None = None, slop_ns: int = 0,
           geometries=None, storage: str = "mcap", progress: bool = True, keep_images: int = 6,
           force: bool = False, depth_topic: str | None = None, camera_info_topic: str | None = None,
           people=None) -> ReplayResult:
    """Run every (image, detections) pair of ``in_bag`` through ``estimator`` into ``out_bag``.

    A bag that breaks off mid-way (see :func:`_read_errors`) is processed up to the break, the
    output bag written and closed, and ``result.error`` set.

    Args:
        in_bag: a ROS 2 bag (folder with metadata.yaml, or an .mcap / .db3 file).
        out_bag: the bag to write (must not exist, unless ``force``: see :func:`check_outputs`);
            it appears only when complete.
        estimator: a loaded ``InteractionEstimator``; settings: detection filtering etc.
        image_topic / detections_topic: needed only when the bag has several candidates.
        slop_ns: largest stamp difference paired (0: exact), for detections and depth alike.
        geometries: optional callable (stamp_ns, detection_id) -> geometry override or None
            (e.g. a dataset's object point cloud).
        storage: "mcap" or "sqlite3".
        keep_images: how many processed images to keep in the result (figures).
        depth_topic: a registered depth image topic (16UC1 mm / 32FC1 m): objects get their points
            from depth, as in the node with ``use_depth``; an image without depth (or
            CameraInfo) within ``slop_ns`` is processed without it and counted
            ``no_depth_for_image``. camera_info_topic: needed when the bag has several; without
            ``depth_topic`` it places the people by PnP (taken by itself when the bag has one).
        people: the people stage (``loading.build_people``), or None.

    Raises:
        ValueError: the topics cannot be chosen, the input cannot be opened, or the output
            cannot be written.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer
    from tqdm import tqdm

    out_bag = Path(out_bag)
    check_outputs(out_bag, force=force, in_bag=in_bag)
    result = ReplayResult()
    # Caveats (answers without [SEG], frame mismatches...) are counted as such; drops as "skipped:<reason>".
    processor = FrameProcessor(estimator, lambda reason, detail: result.counts.update(
        [f"skipped:{reason}" if Reason(reason).drops else str(reason)]), people)
    typestore = project_typestore()
    with open_bag(in_bag) as reader, _staged(out_bag, force) as staged:
        topics = _topics(reader.connections, image_topic, detections_topic, depth_topic, camera_info_topic,
                         people is not None)
        image_connections = topics["image"]
        image_type = IMAGE_TYPES[image_connections[0].msgtype]
        detections = [deserialize_message(bytes(raw), Detection2DArray)
                      for _, _, raw in _messages(reader, topics["detections"], result)]
        # The node's rule (sync.nearest_stamp) on the whole bag: each detections message goes
        # to the image nearest in stamp within the slop, and each such image to its depth.
        image_stamps = sorted(set(_header_stamps(reader, image_connections)))
        matches = pair_stamps([stamp_ns(d.header.stamp) for d in detections], image_stamps, slop_ns)
        pending: dict[int, list[Detection2DArray]] = {}
        for msg, index in zip(detections, matches):
            key = image_stamps[index] if index is not None else -1 - len(pending)  # unmatched: own key
            pending.setdefault(key, []).append(msg)
        companions = _Companions(reader, topics, sorted(k for k in pending if k >= 0), slop_ns)
        total = sum(c.msgcount for c in image_connections)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        with Writer(staged, version=Writer.VERSION_LATEST if hasattr(Writer, "VERSION_LATEST") else 9,
                    storage_plugin=plugin) as writer:
            interactions = writer.add_connection(INTERACTIONS_TOPIC, "interactvlm_msgs/msg/InteractionArray",
                                                 typestore=typestore)
            markers = writer.add_connection(MARKERS_TOPIC, "visualization_msgs/msg/MarkerArray", typestore=typestore)

            def finish(image, stamp: int) -> None:
                depth = intrinsics = None
                depth_msg, info_msg = companions.take(stamp) if companions else (None, None)
                if "depth" in topics:
                    depth = processor.depth(image, depth_msg, info_msg, settings.max_image_pixels,
                                            "none within the slop in the bag")
                elif people is not None:
                    intrinsics = processor.intrinsics(info_msg)
                for detections_msg in pending.pop(stamp, []):
                    _process(processor, settings, image, detections_msg, stamp, geometries, result, writer,
                             interactions, markers, depth, intrinsics)
                if result.outputs and result.outputs[-1][0] == stamp and len(result.images) < keep_images:
                    result.images[stamp] = decode_image(image, settings.min_image_size, settings.max_image_pixels)
                    if info_msg is not None:
                        result.camera_infos[stamp] = info_msg

            waiting: dict[int, object] = {}  # images read before their depth: processed once it is read
            used: set[int] = set()  # stamps of the images taken for their detections
            connections = image_connections + companions.connections
            image_topics = {c.topic for c in image_connections}
            bar = tqdm(total=total, unit="image", desc="replay", disable=not progress)
            for connection, _, raw in _messages(reader, connections, result):
                if connection.topic not in image_topics:
                    for stamp in companions.add(connection, raw):
                        if stamp in waiting:
                            finish(waiting.pop(stamp), stamp)
                    continue
                bar.update()
                stamp = cdr_header_stamp_ns(raw)
                if stamp in used:  # a second image of a stamp already used: the first is kept, as the node does
                    processor.report(Reason.DUPLICATE_STAMP, f"a second image message with stamp {stamp / 1e9:.9f} s; "
                                                             "the first one is used")
                    continue
                if stamp not in pending:
                    continue
                used.add(stamp)
                image = deserialize_message(bytes(raw), image_type)
                if companions.complete(stamp):
                    finish(image, stamp)
                else:
                    waiting[stamp] = image
            for stamp in sorted(waiting):  # their depth is not in the bag (or the bag broke off)
                finish(waiting.pop(stamp), stamp)
            bar.close()
    for left in pending.values():
        for detections_msg in left:
            result.counts[str(Reason.NO_IMAGE_FOR_DETECTIONS)] += 1
            result.records.append({"stamp_ns": stamp_ns(detections_msg.header.stamp),
                                   "outcome": str(Reason.NO_IMAGE_FOR_DETECTIONS),
                                   "detections": [d.id for d in detections_msg.detections]})
    result.records.sort(key=lambda record: record["stamp_ns"])
    if result.error:
        result.error["messages_read"] = result.messages_read
    return result


class _Companions:
    """The depth and CameraInfo of the images replay processes, paired by ``pair_stamps`` and
    held only from when they are read until their image is processed (bounded memory).

    Args:
        topics: :func:`_topics`' connections (neither "depth" nor "camera_info": no companions, the
            object is falsy).
        image_stamps: the stamps of the images that have detections, increasing.
    """

    TYPES = {"depth": Image, "camera_info": CameraInfo}

    def __init__(self, reader, topics: dict, image_stamps: list[int], slop_ns: int):
        self.connections = [c for name in self.TYPES for c in topics.get(name, [])]
        self._name = {c.topic: name for name in self.TYPES for c in topics.get(name, [])}
        self._wanted: dict[str, dict[int, int]] = {}  # name -> image stamp -> its companion's stamp
        self._wanting: dict[str, dict[int, set[int]]] = {}  # name -> companion stamp -> image stamps
        self._held: dict[str, dict[int, object]] = {name: {} for name in self.TYPES}
        for name in (name for name in self.TYPES if topics.get(name)):
            stamps = sorted(set(_header_stamps(reader, topics[name])))
            found = pair_stamps(image_stamps, stamps, slop_ns)
            self._wanted[name] = {image: stamps[i] for image, i in zip(image_stamps, found) if i is not None}
            self._wanting[name] = {}
            for image, stamp in self._wanted[name].items():
                self._wanting[name].setdefault(stamp, set()).add(image)

    def __bool__(self) -> bool:
        return bool(self.connections)

    def add(self, connection, raw) -> list[int]:
        """Keep a companion message if an image wants it; returns the image stamps now complete."""
        name = self._name[connection.topic]
        stamp = cdr_header_stamp_ns(raw)
        wanting = self._wanting[name].get(stamp)
        if not wanting or stamp in self._held[name]:
            return []
        self._held[name][stamp] = deserialize_message(bytes(raw), self.TYPES[name])
        return sorted(image for image in wanting if self.complete(image))

    def complete(self, image_stamp: int) -> bool:
        """Whether every companion the image has in the bag has been read."""
        return all(wanted.get(image_stamp) is None or wanted[image_stamp] in self._held[name]
                   for name, wanted in self._wanted.items())

    def take(self, image_stamp: int) -> tuple:
        """(depth Image or None, CameraInfo or None) of the image; releases what no other image
        wants."""
        messages = []
        for name in self.TYPES:
            stamp = self._wanted.get(name, {}).pop(image_stamp, None)
            messages.append(self._held[name].get(stamp))
            if stamp is not None:
                self._wanting[name][stamp].discard(image_stamp)
                if not self._wanting[name][stamp]:
                    self._held[name].pop(stamp, None)
        return tuple(messages)


def _header_stamps(reader, connections) -> list[int]:
    """Header stamps of a topic's messages (read from their CDR bytes), up to a read error (the
    main pass reaches it again and records it)."""
    stamps = []
    try:
        for _, _, raw in reader.messages(connections=connections):
            stamps.append(cdr_header_stamp_ns(raw))
    except _read_errors():
        pass
    return stamps


def _process(processor, settings, image, detections, stamp, geometries, result, writer, interactions, markers,
             depth=None, intrinsics=None):
    ids = [d.id for d in detections.detections]
    record = {"stamp_ns": stamp, "detections": ids}
    before = Counter(result.counts)
    try:
        overrides = None
        if geometries is not None:
            overrides = {i: g for i in ids if (g := geometries(stamp, i)) is not None}
        output = processor.process(image, detections, settings, geometries=overrides, depth=depth,
                                   intrinsics=intrinsics)
    except Rejected as error:
        result.counts[f"image_rejected:{error.reason}"] += 1
        record["outcome"] = f"image_rejected:{error.reason}"
        result.records.append(record)
        return
    except Exception as error:  # noqa: BLE001 - reported per input, replay goes on
        result.counts[Reason.INFERENCE_ERROR] += 1
        record.update(outcome=str(Reason.INFERENCE_ERROR), error=repr(error))
        result.records.append(record)
        return
    skipped = {k: v - before.get(k, 0) for k, v in result.counts.items() if v - before.get(k, 0)}
    if output is None:
        record["outcome"] = "no_valid_detection"
        record["skipped"] = skipped
        result.counts["no_valid_detection"] += 1
        result.records.append(record)
        return
    message, estimate = output.message, output.estimate
    writer.write(interactions, stamp, serialize_message(message))
    if settings.markers:
        writer.write(markers, stamp, serialize_message(processor.markers(output, settings)))
    result.counts["processed"] += 1
    record.update(outcome="processed", skipped=skipped, inference_ms=round(message.inference_ms, 1))
    result.records.append(record)
    result.outputs.append((stamp, message, estimate))


def reconstructions(stamp: int, message, body_faces: Mapping[str, np.ndarray], objects) -> list:
    """The joint reconstruction an output message states, per object detection
    (``eval.evaluate.Reconstruction``, for ``score_reconstruction``): its person's posed body
    (``Person.posed_body``) and the object's points where they are in the optical frame
    (``ObjectAffordance.placement``), with the triangles of a library mesh or proxy.

    Args:
        stamp: the image's stamp (ns); message: its InteractionArray.
        body_faces: body model name -> (F, 3) triangles (the posed bodies' models).
        objects: the ``geometry.objects.ObjectLibrary`` the estimator used (for the triangles
            of a mesh or proxy placed by contact).
    """
    from ..eval.evaluate import Reconstruction
    from .conversions import cloud_fields, person_from_msg

    persons = {p.detection_id: person_from_msg(p) for p in message.persons}
    out = []
    for interaction in message.interactions:
        person = persons.get(interaction.person_detection_id)
        body = {}
        if person is not None and person.vertices is not None and person.body_model in body_faces:
            body = dict(body_model=person.body_model, body_vertices=person.vertices,
                        body_faces=body_faces[person.body_model])
        affordance = interaction.object_affordance
        placed = {}
        if affordance.placement and affordance.points.width:
            fields = cloud_fields(affordance.points)
            faces = None
            geometry = objects.get(affordance.object_label) if affordance.placement == "contact_fit" else None
            if geometry is not None and len(geometry.mesh.vertices) == affordance.points.width:
                faces = geometry.mesh.faces
            placed = dict(object_vertices=np.stack([fields["x"], fields["y"], fields["z"]], axis=1), object_faces=faces,
                          placement=affordance.placement)
        out.append(Reconstruction(stamp, interaction.detection.id, **body, **placed))
    return out


def write_summary(path: Path, result: ReplayResult, in_bag, out_bag, model_id: str, weights_are_random: bool) -> None:
    """JSON account of every input (what was processed, what was not and why) and, when the
    input bag broke off mid-way, the ``error`` (else null)."""
    path.write_text(json.dumps({
        "input_bag": str(in_bag), "output_bag": str(out_bag), "model_id": model_id,
        "weights_are_random": weights_are_random, "error": result.error, "counts": dict(result.counts),
        "inputs": result.records,
    }, indent=2))


def read_interactions(bag: str | Path) -> list[InteractionArray]:
    """Every InteractionArray of a bag written by :func:`replay`, in order."""
    from rosbags.highlevel import AnyReader

    with AnyReader([Path(bag)]) as reader:
        connections = [c for c in reader.connections if c.topic == INTERACTIONS_TOPIC]
        return [deserialize_message(bytes(raw), InteractionArray) for _, _, raw in reader.messages(connections)]

