"""Image message decoding: encodings, row padding, compressed formats, rejections."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from interactvlm_ros.ros.images import ImageRejected, compressed_to_rgb, image_to_rgb

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
