"""Write and read ROS 2 input bags for evaluation (images + detections), with rosbags.

An *input bag* holds what the node subscribes to:

* ``/camera/image_raw`` (``sensor_msgs/msg/Image``, ``rgb8``) or
  ``/camera/image_raw/compressed`` (``sensor_msgs/msg/CompressedImage``, ``jpeg``);
* ``/detections`` (``vision_msgs/msg/Detection2DArray``);
* optionally, for frames with intrinsics, ``/camera/camera_info`` (``sensor_msgs/msg/CameraInfo``, the
  colour camera's intrinsics: replay places people with it by PnP) and, for frames with depth,
  ``/camera/depth_registered/image_raw`` (``sensor_msgs/msg/Image``, ``16UC1`` millimetres or
  ``32FC1`` metres, registered to the colour image).

Each image, its detections and its depth share one header stamp, and each message's bag (receive)
timestamp equals that header stamp, so replaying the bag reproduces the pairing exactly.

Messages are built as rclpy message objects and serialised with
``rclpy.serialization.serialize_message`` (the CDR bytes a ROS 2 recorder would store), then
written with ``rosbags.rosbag2.Writer``. The connections carry full message definitions and
RIHS01 type hashes from :func:`project_typestore`, so ``ros2 bag play`` and rosbags readers
can decode them without the project installed.

rclpy and the message packages are imported only by the functions that build messages
(:func:`write_input_bag` and the ``*_msg`` builders); :func:`project_typestore` and
:func:`read_messages` need rosbags only.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

IMAGE_TOPIC = "/camera/image_raw"
COMPRESSED_IMAGE_TOPIC = "/camera/image_raw/compressed"
DETECTIONS_TOPIC = "/detections"
DEPTH_TOPIC = "/camera/depth_registered/image_raw"
CAMERA_INFO_TOPIC = "/camera/camera_info"

IMAGE_MSGTYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_MSGTYPE = "sensor_msgs/msg/CompressedImage"
DETECTIONS_MSGTYPE = "vision_msgs/msg/Detection2DArray"
CAMERA_INFO_MSGTYPE = "sensor_msgs/msg/CameraInfo"

#: rosbag2 metadata version written (9: Jazzy and later; rosbags writes 8 or 9).
BAG_VERSION = 9
#: storage name -> rosbags StoragePlugin member name.
STORAGES = {"mcap": "MCAP", "sqlite3": "SQLITE3"}

#: Interface packages the project's bags use beyond rosbags' built-in stores.
PROJECT_INTERFACES = ("vision_msgs", "interactvlm_msgs")


@dataclass
class Frame:
    """One camera frame and its detections, as written to an input bag.

    Attributes:
        stamp_ns: header stamp of the image and its detections [ns since the epoch], >= 0.
        rgb: (H, W, 3) uint8 image, RGB channel order.
        detections: :class:`~interactvlm_ros.detection.Detection` s, boxes in pixels of ``rgb``.
        frame_id: header frame_id of the image and the detections.
        jpeg: optional JPEG file bytes of ``rgb`` (e.g. a dataset's original file); written
            as-is to the compressed topic instead of re-encoding ``rgb``. Ignored when raw.
        depth: optional (H, W) depth registered to ``rgb`` (same size and intrinsics): uint16
            millimetres (written ``16UC1``) or float32 metres (``32FC1``); needs ``k``.
        k: the colour camera's 3x3 intrinsic matrix (row-major, 9 values, pixels), written as
            the frame's CameraInfo (with or without depth).
    """

    stamp_ns: int
    rgb: np.ndarray
    detections: list = field(default_factory=list)
    frame_id: str = "camera"
    jpeg: bytes | None = None
    depth: np.ndarray | None = None
    k: Sequence[float] | None = None


# --------------------------------------------------------------------------------------------
# Type store


def _msg_dir(package: str) -> Path:
    """The installed ``share/<package>/msg`` folder (ament index: the prefixes on
    ``AMENT_PREFIX_PATH``, e.g. /opt/ros/jazzy or this workspace's install space).

    Raises:
        FileNotFoundError: the package is not installed (source its setup file first).
    """
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return Path(get_package_share_directory(package)) / "msg"
    except PackageNotFoundError as error:
        raise FileNotFoundError(f"interface package {package} is not installed (no share/{package} on "
                                "AMENT_PREFIX_PATH): build the workspace and source its setup file") from error


@lru_cache(maxsize=None)
def _interface_types(package: str) -> tuple[tuple[str, object], ...]:
    """Parsed rosbags type definitions of every .msg file of ``package`` (first folder found)."""
    from rosbags.typesys import get_types_from_msg

    folder = _msg_dir(package)
    files = sorted(folder.glob("*.msg"))
    if not files:
        raise FileNotFoundError(f"no .msg files of {package} in {folder}")
    types: dict = {}
    for path in files:
        types.update(get_types_from_msg(path.read_text(), f"{package}/msg/{path.stem}"))
    return tuple(types.items())


def project_typestore():
    """A rosbags Typestore for the project's bags: ROS 2 Kilted (or the newest store rosbags
    has) plus ``vision_msgs`` and ``interactvlm_msgs``.

    The two packages are read from their installed ``share/<pkg>/msg/*.msg`` (ament index:
    the definitions rclpy serialises with). Each call returns a new store, so a caller may
    register more types. Raises FileNotFoundError when a package is not installed.
    """
    from rosbags.typesys import Stores, get_typestore

    store = getattr(Stores, "ROS2_KILTED", None) or Stores.LATEST
    typestore = get_typestore(store)
    types: dict = {}
    for package in PROJECT_INTERFACES:
        types.update(_interface_types(package))
    typestore.register(types)
    return typestore


# --------------------------------------------------------------------------------------------
# Message builders (rclpy message objects)


def _header(stamp_ns: int, frame_id: str):
    from std_msgs.msg import Header

    header = Header(frame_id=frame_id)
    header.stamp.sec, header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return header


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be an (H, W, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"rgb is empty: shape {rgb.shape}")
    return np.ascontiguousarray(rgb)


def image_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str = "camera"):
    """``sensor_msgs/Image`` (``rgb8``, row-major, step = 3 W) of an (H, W, 3) uint8 array."""
    from sensor_msgs.msg import Image

    rgb = _check_rgb(rgb)
    height, width = rgb.shape[:2]
    return Image(header=_header(stamp_ns, frame_id), height=height, width=width,
                 encoding="rgb8", is_bigendian=0, step=3 * width, data=rgb.tobytes())


def depth_image_msg(depth: np.ndarray, stamp_ns: int, frame_id: str = "camera"):
    """``sensor_msgs/Image`` of an (H, W) depth array: uint16 millimetres as ``16UC1`` or
    float32 metres as ``32FC1`` (REP-118), little endian, packed rows.

    Raises:
        ValueError: another shape or dtype.
    """
    from sensor_msgs.msg import Image

    depth = np.asarray(depth)
    encodings = {np.dtype(np.uint16): "16UC1", np.dtype(np.float32): "32FC1"}
    if depth.ndim != 2 or depth.dtype not in encodings or min(depth.shape) == 0:
        raise ValueError(f"depth must be (H, W) uint16 mm or float32 m, got {depth.shape} {depth.dtype}")
    little = np.ascontiguousarray(depth, dtype=depth.dtype.newbyteorder("<"))
    return Image(header=_header(stamp_ns, frame_id), height=depth.shape[0], width=depth.shape[1],
                 encoding=encodings[depth.dtype], is_bigendian=0, step=depth.shape[1] * depth.itemsize,
                 data=little.tobytes())


def camera_info_msg(k: Sequence[float], width: int, height: int, stamp_ns: int, frame_id: str = "camera"):
    """``sensor_msgs/CameraInfo`` of a pinhole camera without distortion: intrinsics ``k``
    (3x3 row-major, pixels), ``p`` = [K | 0], size ``width`` x ``height``."""
    from sensor_msgs.msg import CameraInfo

    k = [float(v) for v in np.asarray(k, float).reshape(9)]
    p = [k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, k[6], k[7], k[8], 0.0]
    return CameraInfo(header=_header(stamp_ns, frame_id), width=int(width), height=int(height),
                      distortion_model="plumb_bob", d=[0.0] * 5, k=k, r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                      p=p)


def encode_jpeg(rgb: np.ndarray, quality: int = 95) -> bytes:
    """JPEG bytes of an (H, W, 3) uint8 RGB image (OpenCV encoder)."""
    import cv2

    ok, buffer = cv2.imencode(".jpg", _check_rgb(rgb)[:, :, ::-1],
                              [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:  # pragma: no cover - OpenCV fails only on invalid input, checked above
        raise ValueError("JPEG encoding failed")
    return buffer.tobytes()


def compressed_image_msg(jpeg: bytes, stamp_ns: int, frame_id: str = "camera"):
    """``sensor_msgs/CompressedImage`` (``format = "jpeg"``) holding ``jpeg`` verbatim."""
    from sensor_msgs.msg import CompressedImage

    if not bytes(jpeg[:2]) == b"\xff\xd8":
        raise ValueError("jpeg does not start with the JPEG SOI marker")
    return CompressedImage(header=_header(stamp_ns, frame_id), format="jpeg", data=bytes(jpeg))


def detections_msg(detections: Sequence, stamp_ns: int, frame_id: str = "camera"):
    """``vision_msgs/Detection2DArray`` of :class:`~interactvlm_ros.detection.Detection` s
    (``conversions.detections_to_msg``, each detection with the array's header).

    Raises:
        ValueError: a duplicate id, a score outside [0, 1] or an invalid box.
    """
    from .conversions import detections_to_msg

    ids = [str(d.id) for d in detections]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate detection ids in {ids}")
    for detection in detections:
        if not 0.0 <= float(detection.score) <= 1.0:
            raise ValueError(f"detection {detection.id!r}: score must lie in [0, 1], got {detection.score}")
    return detections_to_msg(detections, _header(stamp_ns, frame_id))


def cdr_header_stamp_ns(raw: bytes) -> int:
    """Header stamp (ns) of a serialised message whose first field is a ``std_msgs/Header``
    (Image, CompressedImage, Detection2DArray...), read without deserialising the rest: after
    CDR's 4-byte encapsulation header come ``int32 sec`` and ``uint32 nanosec``, in the byte
    order the encapsulation names (0x0000 big endian, 0x0001 little endian).

    Raises:
        ValueError: fewer than 12 bytes, or an encapsulation other than plain CDR.
    """
    import struct

    raw = bytes(raw[:12])
    if len(raw) < 12 or raw[0] != 0 or raw[1] not in (0, 1):
        raise ValueError("not a CDR message with a header")
    sec, nanosec = struct.unpack_from("<iI" if raw[1] == 1 else ">iI", raw, 4)
    return sec * 1_000_000_000 + nanosec


# --------------------------------------------------------------------------------------------
# Writing and reading bags


def _check_stamp(stamp, previous: int) -> int:
    """``stamp`` as an int, checked >= 0 and > ``previous``."""
    if isinstance(stamp, bool) or not isinstance(stamp, (int, np.integer)) or stamp < 0:
        raise ValueError(f"stamp_ns must be an int >= 0 [ns], got {stamp!r}")
    if stamp <= previous:
        raise ValueError(f"frame stamps must increase strictly: {stamp} after {previous}")
    return int(stamp)


def write_input_bag(path: str | os.PathLike, frames: Iterable[Frame], compressed: bool = False,
                    storage: str = "mcap", *, jpeg_quality: int = 95) -> Path:
    """Write an input bag (images + detections) to the new bag folder ``path``.

    Args:
        path: bag folder to create (must not exist); rosbags writes ``metadata.yaml`` and one
            storage file (``<name>.mcap`` or ``<name>.db3``) into it.
        frames: frames in strictly increasing stamp order; any iterable (a generator streams a
            large dataset without holding every image in memory).
        compressed: write ``/camera/image_raw/compressed`` (JPEG: ``frame.jpeg`` if given, else
            ``rgb`` encoded at ``jpeg_quality``) instead of ``/camera/image_raw`` (``rgb8``).
        storage: ``"mcap"`` (default) or ``"sqlite3"``.

    Each frame gives one image and one ``/detections`` message (empty when the frame has no
    detections), with ``frame.k`` a CameraInfo and with ``frame.depth`` a depth image, all with
    header stamp = bag timestamp = ``frame.stamp_ns``. Returns the
    bag folder. Raises FileExistsError if ``path`` exists, ValueError on an unknown storage or
    invalid frame (stamps not increasing, bad image, box or score); on error nothing is left
    at ``path``.
    """
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer

    path = Path(path)
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
    if path.exists():
        raise FileExistsError(f"bag path exists: {path}")
    typestore = project_typestore()
    writer = Writer(path, version=BAG_VERSION, storage_plugin=getattr(StoragePlugin, STORAGES[storage]))
    try:
        _write_frames(writer, frames, compressed, typestore, jpeg_quality, serialize_message)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)  # created by this call: leave nothing half-written
        raise
    return path


def _write_frames(writer, frames, compressed, typestore, jpeg_quality, serialize) -> None:
    """Open ``writer``, write one image and one detections message per frame, close it."""
    image_topic, image_type = ((COMPRESSED_IMAGE_TOPIC, COMPRESSED_IMAGE_MSGTYPE) if compressed
                               else (IMAGE_TOPIC, IMAGE_MSGTYPE))
    with writer:
        image_conn = writer.add_connection(image_topic, image_type, typestore=typestore)
        det_conn = writer.add_connection(DETECTIONS_TOPIC, DETECTIONS_MSGTYPE, typestore=typestore)
        info_conn = depth_conn = None  # added with the first frame that has k / depth
        stamp = -1
        for frame in frames:
            stamp = _check_stamp(frame.stamp_ns, stamp)
            if compressed:
                jpeg = frame.jpeg if frame.jpeg is not None else encode_jpeg(frame.rgb, jpeg_quality)
                _check_rgb(frame.rgb)
                image = compressed_image_msg(jpeg, stamp, frame.frame_id)
            else:
                image = image_msg(frame.rgb, stamp, frame.frame_id)
            writer.write(image_conn, stamp, serialize(image))
            dets = detections_msg(frame.detections, stamp, frame.frame_id)
            writer.write(det_conn, stamp, serialize(dets))
            if frame.depth is not None and (frame.k is None or np.shape(frame.depth) != frame.rgb.shape[:2]):
                raise ValueError(f"frame {stamp}: depth needs k and the image's size {frame.rgb.shape[:2]}, got "
                                 f"{np.shape(frame.depth)}")
            if frame.k is not None:
                if info_conn is None:
                    info_conn = writer.add_connection(CAMERA_INFO_TOPIC, CAMERA_INFO_MSGTYPE, typestore=typestore)
                height, width = frame.rgb.shape[:2]
                info = camera_info_msg(frame.k, width, height, stamp, frame.frame_id)
                writer.write(info_conn, stamp, serialize(info))
            if frame.depth is not None:
                if depth_conn is None:
                    depth_conn = writer.add_connection(DEPTH_TOPIC, IMAGE_MSGTYPE, typestore=typestore)
                writer.write(depth_conn, stamp, serialize(depth_image_msg(frame.depth, stamp, frame.frame_id)))


def read_messages(path: str | os.PathLike, topics: Sequence[str] | None = None
                  ) -> Iterator[tuple[str, str, int, bytes]]:
    """Yield ``(topic, msgtype, timestamp_ns, rawdata)`` of a bag in timestamp order.

    ``path`` is a bag folder or a bare ``.mcap`` / ``.db3`` file; ``topics`` restricts the
    topics read (None: all). ``rawdata`` is the serialised CDR message: decode it with
    ``rclpy.serialization.deserialize_message`` or ``project_typestore().deserialize_cdr``.
    Raises FileNotFoundError if the bag does not exist.
    """
    from rosbags.rosbag2 import Reader

    with Reader(path) as reader:
        connections = [c for c in reader.connections if topics is None or c.topic in topics]
        if not connections:
            return
        for connection, timestamp, rawdata in reader.messages(connections=connections):
            yield connection.topic, connection.msgtype, timestamp, rawdata
