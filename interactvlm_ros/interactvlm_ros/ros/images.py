"""sensor_msgs Image / CompressedImage -> (H, W, 3) uint8 RGB, with reasons for rejection.

Raw images go through rosbags-image (encoding table, byte order, colour conversion with
OpenCV); compressed ones through OpenCV's decoder, after their size has been read from the
JPEG / PNG header with Pillow (no pixel decoded), so that an image over the pixel limit is
refused before it is decoded. Row padding (``step`` larger than a row) is removed first, since
rosbags-image assumes packed rows. No ROS 1 cv_bridge is involved.
"""

from __future__ import annotations

from io import BytesIO
from types import SimpleNamespace

import cv2
import numpy as np
from PIL import JpegImagePlugin, PngImagePlugin
from rosbags.image import ImageError, image_to_cvimage

from ..reasons import Reason, Rejected

#: Raw encodings accepted, with their bytes per pixel.
SUPPORTED_ENCODINGS = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4}
#: CompressedImage formats accepted (the start of the ``format`` field, as image_transport writes it).
SUPPORTED_COMPRESSED = ("jpeg", "jpg", "png")


class ImageRejected(Rejected):
    """An image that cannot be used; ``reason`` (a :class:`~interactvlm_ros.reasons.Reason`)
    is the key it is counted under."""


def check_pixels(width: int, height: int, max_pixels: int | None) -> None:
    """Refuse a ``width`` x ``height`` image of more than ``max_pixels`` pixels (None: no limit).

    Raises:
        ImageRejected: ``image_too_large``, naming the ``max_image_pixels`` parameter.
    """
    if max_pixels is not None and width * height > max_pixels:
        raise ImageRejected("image_too_large", f"{width}x{height} image ({width * height} px; max_image_pixels "
                                               f"{max_pixels})")


def image_to_rgb(msg, max_pixels: int | None = None) -> np.ndarray:
    """Decode a sensor_msgs/Image (rgb8, bgr8, mono8, rgba8, bgra8) to (H, W, 3) uint8 RGB.

    ``data`` must hold exactly ``step * height`` bytes, with ``step`` at least a row
    (``width`` x bytes per pixel); a longer or shorter buffer is refused, not truncated.

    Args:
        max_pixels: largest ``width * height`` accepted, checked before any conversion;
            None: no limit.

    Raises:
        ImageRejected: unsupported encoding, empty image, more than ``max_pixels`` pixels
            (``image_too_large``), or a data buffer inconsistent with height, width and step
            (``bad_image_size``).
    """
    encoding = msg.encoding
    if encoding not in SUPPORTED_ENCODINGS:
        raise ImageRejected("unsupported_encoding",
                            f"encoding {encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row = width * SUPPORTED_ENCODINGS[encoding]
    if height == 0 or width == 0:
        raise ImageRejected("empty_image", f"{width}x{height} image")
    check_pixels(width, height, max_pixels)
    if step < row or len(msg.data) != step * height:
        raise ImageRejected("bad_image_size", f"{len(msg.data)} bytes for {width}x{height} {encoding} with step {step} "
                                              f"(expected step * height = {step * height}, step at least {row})")
    data = np.frombuffer(msg.data, np.uint8).reshape(height, step)[:, :row]
    packed = SimpleNamespace(encoding=encoding, height=height, width=width, is_bigendian=msg.is_bigendian,
                             data=np.ascontiguousarray(data).reshape(-1))
    try:
        rgb = image_to_cvimage(packed, "rgb8")
    except (ImageError, cv2.error) as error:
        raise ImageRejected("unsupported_encoding", str(error)) from error
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def compressed_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels from the header of JPEG or PNG ``data``, without decoding
    the pixels (Pillow's JPEG / PNG readers, which stop at the first scan / IDAT chunk).

    Raises:
        ImageRejected: ``undecodable_image`` when ``data`` has no readable JPEG or PNG header.
    """
    errors = []
    for reader in (JpegImagePlugin.JpegImageFile, PngImagePlugin.PngImageFile):
        try:
            with reader(BytesIO(data)) as header:
                return header.size
        except (SyntaxError, OSError, ValueError) as error:  # Pillow's "not this format" / broken header
            errors.append(f"{reader.format}: {error}")
    raise ImageRejected("undecodable_image", f"{len(data)} bytes with no readable JPEG or PNG header "
                                             f"({'; '.join(errors)})")


def compressed_to_rgb(msg, max_pixels: int | None = None) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (jpeg or png) to (H, W, 3) uint8 RGB.

    The data must be a JPEG or a PNG (whatever ``format`` says of the two): its size is read
    from its header first, and an image of more than ``max_pixels`` pixels (None: no limit) is
    refused without being decoded.

    Raises:
        ImageRejected: another format (e.g. compressedDepth: ``unsupported_encoding``), data
            without a readable JPEG / PNG header or that cannot be decoded
            (``undecodable_image``), or more than ``max_pixels`` pixels (``image_too_large``).
    """
    fmt = msg.format.lower()  # "jpeg", "png", or image_transport's "rgb8; jpeg compressed bgr8"
    if "compresseddepth" in fmt or not any(f in fmt for f in SUPPORTED_COMPRESSED):
        raise ImageRejected("unsupported_encoding", f"compressed format {msg.format!r}; supported: jpeg, png")
    raw = bytes(msg.data)
    if not raw:
        raise ImageRejected("undecodable_image", f"empty {msg.format!r} data")
    check_pixels(*compressed_size(raw), max_pixels)
    data = np.frombuffer(raw, np.uint8)
    try:
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error as error:  # OpenCV asserts on some malformed headers instead of returning None
        raise ImageRejected("undecodable_image", f"{data.size} bytes of {msg.format!r}: {error}") from error
    if bgr is None:
        raise ImageRejected("undecodable_image", f"{len(msg.data)} bytes of {msg.format!r} could not be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_image(msg, min_side: int = 1, max_pixels: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a sensor_msgs/Image or CompressedImage.

    Args:
        min_side: smallest side accepted, pixels.
        max_pixels: most pixels (width * height) accepted, checked before decoding (from the
            header of a compressed image); None: no limit.

    Raises:
        Rejected: a negative stamp (``negative_stamp``), an image that cannot be decoded or has
            more than ``max_pixels`` pixels (``image_too_large``; see :func:`image_to_rgb`,
            :func:`compressed_to_rgb`), or one whose smaller side is below ``min_side`` pixels
            (``image_too_small``).
    """
    if msg.header.stamp.sec < 0:
        raise Rejected(Reason.NEGATIVE_STAMP, f"image stamp {msg.header.stamp.sec} s is negative")
    rgb = compressed_to_rgb(msg, max_pixels) if hasattr(msg, "format") else image_to_rgb(msg, max_pixels)
    if min(rgb.shape[:2]) < min_side:
        raise Rejected(Reason.IMAGE_TOO_SMALL, f"{rgb.shape[1]}x{rgb.shape[0]} image (smaller side at least "
                                               f"{min_side} px)")
    return rgb


#: Depth encodings accepted: bytes per pixel and numpy dtype (REP-118).
DEPTH_ENCODINGS = {"16UC1": np.dtype(np.uint16), "32FC1": np.dtype(np.float32)}


def depth_to_array(msg) -> np.ndarray:
    """A sensor_msgs/Image depth image (16UC1 millimetres or 32FC1 metres) as (H, W) in its
    own dtype and native byte order (row padding removed); convert with
    ``geometry.depth.depth_to_metres(array, msg.encoding)``.

    ``data`` must hold exactly ``step * height`` bytes, with ``step`` at least a row; a
    longer or shorter buffer is refused, not truncated.

    Raises:
        ImageRejected: another encoding (``unsupported_depth_encoding``), or an empty image or a
            buffer inconsistent with height/width/step (``bad_image_size``).
    """
    if msg.encoding not in DEPTH_ENCODINGS:
        raise ImageRejected("unsupported_depth_encoding",
                            f"depth encoding {msg.encoding!r}; supported: {', '.join(DEPTH_ENCODINGS)}")
    dtype = DEPTH_ENCODINGS[msg.encoding].newbyteorder(">" if msg.is_bigendian else "<")
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row = width * dtype.itemsize
    if height == 0 or width == 0 or step < row or len(msg.data) != step * height:
        raise ImageRejected("bad_image_size", f"{len(msg.data)} bytes for a {width}x{height} {msg.encoding} "
                                              f"depth image with step {step} (expected step * height = "
                                              f"{step * height}, step at least {row})")
    rows = np.frombuffer(msg.data, np.uint8).reshape(height, step)[:, :row]
    return np.ascontiguousarray(rows).view(dtype).reshape(height, width).astype(dtype.newbyteorder("="))
