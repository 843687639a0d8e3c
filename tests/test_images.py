"""Image message decoding: encodings, row padding, compressed formats, rejections, the pixel
limit (checked before decoding)."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2DArray

from interactvlm_ros.config import BY_NAME, default_settings
from interactvlm_ros.reasons import Rejected
from interactvlm_ros.ros import images
from interactvlm_ros.ros.images import ImageRejected, compressed_to_rgb, decode_image, depth_to_array, image_to_rgb
from interactvlm_ros.ros.processing import FrameProcessor, ProcessingSettings

RGB = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)


def raw(pixels: np.ndarray, encoding: str, padding: int = 0, bigendian: int = 0) -> Image:
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    data = np.concatenate([rows, np.full((height, padding), 7, np.uint8)], axis=1)
    return Image(height=height, width=width, encoding=encoding, is_bigendian=bigendian,
                 step=rows.shape[1] + padding, data=data.tobytes())


@pytest.mark.parametrize("encoding, pixels", [
    ("rgb8", RGB), ("bgr8", RGB[:, :, ::-1]),
    ("rgba8", np.dstack([RGB, np.full(RGB.shape[:2], 9, np.uint8)])),
    ("bgra8", np.dstack([RGB[:, :, ::-1], np.full(RGB.shape[:2], 9, np.uint8)])),
])
def test_colour_encodings(encoding, pixels):
    np.testing.assert_array_equal(image_to_rgb(raw(np.ascontiguousarray(pixels), encoding)), RGB)
    np.testing.assert_array_equal(image_to_rgb(raw(np.ascontiguousarray(pixels), encoding, padding=3)), RGB)


def test_mono8_becomes_grey_rgb():
    grey = RGB[:, :, 0]
    out = image_to_rgb(raw(np.ascontiguousarray(grey), "mono8", padding=1))
    assert out.shape == (6, 5, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[:, :, channel], grey)


@pytest.mark.parametrize("message, reason", [
    (raw(RGB[:, :, :1].astype(np.uint8), "32FC1"), "unsupported_encoding"),
    (raw(RGB, "yuv422"), "unsupported_encoding"),
    (Image(height=0, width=5, encoding="rgb8", step=15), "empty_image"),
    (Image(height=6, width=5, encoding="rgb8", step=15, data=bytes(20)), "bad_image_size"),
    (Image(height=6, width=5, encoding="rgb8", step=10, data=bytes(90)), "bad_image_size"),
])
def test_rejections(message, reason):
    with pytest.raises(ImageRejected) as error:
        image_to_rgb(message)
    assert error.value.reason == reason


def test_compressed_png_is_lossless_and_jpeg_close():
    ok, png = cv2.imencode(".png", cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR))
    assert ok
    np.testing.assert_array_equal(compressed_to_rgb(CompressedImage(format="png", data=png.tobytes())), RGB)
    smooth = np.dstack([np.tile(np.arange(0, 160, 10, dtype=np.uint8), (16, 1))] * 3)
    ok, jpeg = cv2.imencode(".jpg", smooth, [cv2.IMWRITE_JPEG_QUALITY, 95])
    decoded = compressed_to_rgb(CompressedImage(format="rgb8; jpeg compressed bgr8", data=jpeg.tobytes()))
    assert decoded.shape == (16, 16, 3) and np.abs(decoded.astype(int) - smooth).max() <= 8


def test_compressed_rejections():
    with pytest.raises(ImageRejected, match="unsupported_encoding"):
        compressed_to_rgb(CompressedImage(format="16UC1; compressedDepth png", data=b"x"))
    with pytest.raises(ImageRejected, match="undecodable_image"):
        compressed_to_rgb(CompressedImage(format="jpeg", data=b"not a jpeg"))
    # Empty data made OpenCV assert (counted as an inference error); a truncated PNG header too.
    ok, png = cv2.imencode(".png", RGB)
    for data in (b"", png.tobytes()[:40], b"\x89PNG\r\n\x1a\n" + bytes(64)):
        with pytest.raises(ImageRejected) as error:
            compressed_to_rgb(CompressedImage(format="png", data=data))
        assert error.value.reason == "undecodable_image"


def test_unreadable_header_is_not_decoded(monkeypatch):
    """OpenCV would decode a BMP sent as "png", but its size cannot be read before decoding."""
    calls = spy_imdecode(monkeypatch)
    ok, bmp = cv2.imencode(".bmp", RGB)
    assert ok
    with pytest.raises(ImageRejected) as error:
        compressed_to_rgb(CompressedImage(format="png", data=bmp.tobytes()))
    assert error.value.reason == "undecodable_image" and calls == []


def spy_imdecode(monkeypatch) -> list:
    """Record the calls to OpenCV's decoder made by images.py, which then fails as on bad data
    (the real one would fill a 20000 x 20000 image from a 16 x 16 JPEG: 1.2 GB)."""
    calls = []

    def imdecode(*args):
        calls.append(args)
        return None

    monkeypatch.setattr(images.cv2, "imdecode", imdecode)
    return calls


def jpeg_claiming(width: int, height: int) -> bytes:
    """A 16x16 JPEG whose frame header (SOF0) says ``width`` x ``height``."""
    ok, jpeg = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    assert ok
    data = bytearray(jpeg.tobytes())
    sof = data.index(b"\xff\xc0")  # marker, length (2), precision (1), height, width
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def png_claiming(width: int, height: int) -> bytes:
    """A 16x16 PNG whose IHDR chunk says ``width`` x ``height`` (with a valid CRC)."""
    ok, png = cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))
    assert ok
    data = bytearray(png.tobytes())
    data[16:24] = struct.pack(">II", width, height)  # signature (8), length (4), "IHDR", width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


DEFAULT_MAX = BY_NAME["max_image_pixels"].default


@pytest.mark.parametrize("fmt, claiming", [("jpeg", jpeg_claiming), ("png", png_claiming)])
def test_compressed_bomb_is_refused_from_its_header(monkeypatch, fmt, claiming):
    calls = spy_imdecode(monkeypatch)
    bomb = CompressedImage(format=fmt, data=claiming(20000, 20000))
    with pytest.raises(Rejected) as error:
        decode_image(bomb, max_pixels=DEFAULT_MAX)
    assert error.value.reason == "image_too_large" and "20000x20000" in str(error.value)
    assert calls == []  # refused before OpenCV saw it
    # Without a limit the same bytes reach the decoder.
    with pytest.raises(Rejected) as error:
        decode_image(bomb)
    assert error.value.reason == "undecodable_image" and len(calls) == 1


def test_raw_image_over_the_limit_is_refused_before_its_buffer_is_read():
    huge = Image(height=20000, width=20000, encoding="rgb8", step=60000, data=b"")
    with pytest.raises(Rejected) as error:
        decode_image(huge, max_pixels=DEFAULT_MAX)
    assert error.value.reason == "image_too_large" and "max_image_pixels" in str(error.value)


def test_default_limit_admits_8k_uhd_and_45_mp_sensors():
    images.check_pixels(7680, 4320, DEFAULT_MAX)  # 8K UHD, 33.2 MP
    images.check_pixels(8192, 5460, DEFAULT_MAX)  # 44.7 MP machine-vision sensor


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_limit_boundary(fmt):
    smooth = np.dstack([np.tile(np.arange(0, 160, 10, dtype=np.uint8), (12, 1))] * 3)  # 16 x 12
    ok, data = cv2.imencode(f".{fmt}", smooth)
    assert ok
    msg = CompressedImage(format=fmt, data=data.tobytes())
    assert decode_image(msg, max_pixels=16 * 12).shape == (12, 16, 3)
    with pytest.raises(Rejected) as error:
        decode_image(msg, max_pixels=16 * 12 - 1)
    assert error.value.reason == "image_too_large"


def test_raw_limit_boundary():
    msg = raw(RGB, "rgb8", padding=2)  # 5 x 6
    np.testing.assert_array_equal(decode_image(msg, max_pixels=30), RGB)
    with pytest.raises(Rejected) as error:
        decode_image(msg, max_pixels=29)
    assert error.value.reason == "image_too_large"


@pytest.mark.parametrize("padding", [0, 3])
@pytest.mark.parametrize("extra", [-1, 1])
def test_colour_buffer_one_byte_off_is_refused(padding, extra):
    msg = raw(RGB, "rgb8", padding=padding)
    data = bytes(msg.data)
    msg.data = data[:-1] if extra < 0 else data + b"\x07"
    with pytest.raises(ImageRejected) as error:
        image_to_rgb(msg)
    assert error.value.reason == "bad_image_size" and f"{len(data) + extra} bytes" in str(error.value)


DEPTH = np.arange(30, dtype=np.uint16).reshape(6, 5) * 100


@pytest.mark.parametrize("encoding, values", [("16UC1", DEPTH), ("32FC1", DEPTH.astype(np.float32) / 1000)])
@pytest.mark.parametrize("padding", [0, 2])
def test_depth_buffer_must_be_exactly_step_times_height(encoding, values, padding):
    rows = values.view(np.uint8).reshape(6, -1)
    data = np.concatenate([rows, np.zeros((6, padding), np.uint8)], axis=1).tobytes()
    msg = Image(height=6, width=5, encoding=encoding, is_bigendian=0, step=rows.shape[1] + padding, data=data)
    np.testing.assert_array_equal(depth_to_array(msg), values)
    for wrong in (data[:-1], data + b"\x00"):
        msg.data = wrong
        with pytest.raises(ImageRejected) as error:
            depth_to_array(msg)
        assert error.value.reason == "bad_image_size"


def test_settings_from_parameters_carry_the_image_limits():
    assert ProcessingSettings.from_parameters(default_settings().__getitem__) == ProcessingSettings()
    changed = {**default_settings(), "max_image_pixels": 1234, "min_image_size": 7}
    settings = ProcessingSettings.from_parameters(changed.__getitem__)
    assert (settings.max_image_pixels, settings.min_image_size) == (1234, 7)


def test_frame_processor_applies_the_settings_limit():
    """The node's stream and service and rosbag replay all decode through FrameProcessor."""
    processor = FrameProcessor(estimator=None, report=lambda reason, detail: None)  # refused before estimating
    settings = ProcessingSettings(min_image_size=1, max_image_pixels=29)
    with pytest.raises(Rejected) as error:
        processor.process(raw(RGB, "rgb8"), Detection2DArray(), settings)
    assert error.value.reason == "image_too_large"
