"""Camera conventions (PyTorch3D) against hand-computed projections."""

from __future__ import annotations

import math

import numpy as np
import pytest

from interactvlm_ros.geometry.camera import (
    BODY_VIEWS,
    OBJECT_VIEWS,
    Camera,
    ViewSpec,
    look_at_view_transform,
    view_camera,
)

TAN30 = math.tan(math.radians(30.0))


def test_front_camera_matches_hand_computation():
    rotation, translation = look_at_view_transform(2.0, 0.0, 0.0)
    # Camera at +Z looking at the origin: view +X (left in the image) is world -X.
    np.testing.assert_allclose(rotation, [[-1, 0, 0], [0, 1, 0], [0, 0, -1]], atol=1e-12)
    np.testing.assert_allclose(translation, [0, 0, 2], atol=1e-12)
    camera = Camera(rotation, translation, image_size=100)
    np.testing.assert_allclose(camera.centre, [0, 0, 2], atol=1e-12)
    uv, depth = camera.project(np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 1.0]]))
    np.testing.assert_allclose(depth, [2, 2, 2, 1])
    # World +X appears on the image's right, +Y at the top.
    np.testing.assert_allclose(uv[0], [50, 50])
    np.testing.assert_allclose(uv[1], [50 * (1 + 0.5 / (2 * TAN30)), 50])  # 71.65
    np.testing.assert_allclose(uv[2], [50, 50 * (1 - 0.5 / (2 * TAN30))])  # 28.35
    np.testing.assert_allclose(uv[3], [50, 50])


def test_side_and_elevated_cameras():
    # azim 90: camera at +X; world +Z then appears on the image's left.
    camera = Camera(*look_at_view_transform(2.0, 0.0, 90.0), image_size=100)
    np.testing.assert_allclose(camera.centre, [2, 0, 0], atol=1e-12)
    uv, _ = camera.project(np.array([[0.0, 0.0, 0.5]]))
    np.testing.assert_allclose(uv[0], [50 * (1 - 0.5 / (2 * TAN30)), 50], atol=1e-9)
    # elev 45, azim 315 (InteractVLM's topfront): camera at dist*(cos45 sin315, sin45, cos45 cos315).
    camera = Camera(*look_at_view_transform(2.0, 45.0, 315.0), image_size=100)
    np.testing.assert_allclose(camera.centre, [-1.0, math.sqrt(2.0), 1.0], atol=1e-12)
    # A point on the optical axis halfway to the camera projects to the centre at depth 1.
    uv, depth = camera.project(camera.centre[None] / 2.0)
    np.testing.assert_allclose(uv[0], [50, 50], atol=1e-9)
    np.testing.assert_allclose(depth, [1.0])


@pytest.mark.parametrize("view", BODY_VIEWS + OBJECT_VIEWS, ids=lambda v: v.name)
def test_rotations_are_proper_and_look_at_the_origin(view):
    rotation, translation = look_at_view_transform(view.dist, view.elev, view.azim)
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    np.testing.assert_allclose(translation, [0, 0, view.dist], atol=1e-12)
    # The image's up direction (view +Y) has a non-negative world-Y component.
    assert rotation[1, 1] > 0


def test_view_offset_shifts_the_image():
    plain = view_camera(ViewSpec("v", 2.0, 0.0, 0.0), 100)
    shifted = view_camera(ViewSpec("v", 2.0, 0.0, 0.0, x=0.0, y=0.3), 100)
    np.testing.assert_allclose(shifted.translation - plain.translation, [0, 0.3, 0])
    uv, _ = shifted.project(np.zeros((1, 3)))
    np.testing.assert_allclose(uv[0], [50, 50 * (1 - 0.3 / (2 * TAN30))])  # the origin moves up


def test_pixel_rays_pass_through_pixel_centres():
    camera = view_camera(BODY_VIEWS[1], 8)
    origin, directions = camera.pixel_rays()
    points = origin + directions * 1.7  # view depth 1.7 along every ray
    uv, depth = camera.project(points)
    rows, cols = np.divmod(np.arange(64), 8)
    np.testing.assert_allclose(uv, np.stack([cols + 0.5, rows + 0.5], axis=1), atol=1e-9)
    np.testing.assert_allclose(depth, 1.7)


def test_degenerate_views_are_rejected():
    with pytest.raises(ValueError, match="up axis"):
        look_at_view_transform(2.0, 90.0, 0.0)
    with pytest.raises(ValueError, match="positive"):
        look_at_view_transform(0.0, 10.0, 0.0)
