"""Virtual cameras in PyTorch3D's conventions, as InteractVLM renders its views.

Frames and conventions (PyTorch3D, ``pytorch3d.renderer.cameras``):

* world: the mesh's frame (metres), +Y up;
* view: camera at the origin, +X left, +Y up, +Z along the viewing direction; a world point
  maps to ``X_view = X_world @ R + T`` (row vectors, R of shape (3, 3), T of shape (3,));
* NDC: ``x_ndc = x_view / (z_view * tan(fov / 2))`` and likewise for y (square images),
  +X left, +Y up, (+1, +1) the top-left corner;
* pixels: column ``c`` and row ``r`` (row 0 at the top) have their centre at
  ``x_ndc = 1 - (2c + 1) / S``, ``y_ndc = 1 - (2r + 1) / S`` for an S x S image, i.e. the
  continuous pixel coordinate of a point is ``u = S / 2 * (1 - x_ndc)``, ``v = S / 2 * (1 - y_ndc)``
  (pixel centres at half-integers).

``look_at_view_transform`` follows PyTorch3D's function of the same name: the camera sits at
``dist * (cos(elev) sin(azim), sin(elev), cos(elev) cos(azim))`` and looks at the origin with
+Y up. InteractVLM then shifts the camera by an (x, y) offset in the image plane (see
:func:`view_camera`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: InteractVLM's field of view for every render, degrees.
FOV_DEGREES = 60.0


@dataclass(frozen=True)
class ViewSpec:
    """One virtual view: distance (mesh units), elevation and azimuth (degrees), the (x, y)
    image-plane offset (view-frame units) InteractVLM applies after the look-at, and the
    world position of the point light its Phong-shaded render uses."""

    name: str
    dist: float
    elev: float
    azim: float
    x: float = 0.0
    y: float = 0.0
    light: tuple[float, float, float] = (0.0, 0.0, 3.0)


# Views and lights as in InteractVLM's public code (preprocess_data/constants.py
# HUMAN_VIEW_DICT['4MV-Z_Vitru'] and OBJS_VIEW_DICT; the body lights of its human-mask
# generation script, the object lights of utils/demo_utils.py).

#: Body views (SMPL-H in the Vitruvian pose), in the model's view order.
BODY_VIEWS: tuple[ViewSpec, ...] = (
    ViewSpec("topfront", 2.0, 45.0, 315.0, 0.0, 0.0, (0.0, 0.0, 3.0)),
    ViewSpec("bottomfront", 2.0, 315.0, 315.0, 0.0, 0.3, (0.0, 0.0, -3.0)),
    ViewSpec("topback", 2.0, 45.0, 135.0, 0.0, 0.0, (0.0, 0.0, -3.0)),
    ViewSpec("bottomback", 2.0, 315.0, 135.0, 0.0, 0.3, (0.0, 0.0, 3.0)),
)

#: Object views (mesh centred and scaled to a unit bounding box), rendered at dist 1.5.
OBJECT_VIEWS: tuple[ViewSpec, ...] = (
    ViewSpec("frontleft", 1.5, 45.0, 315.0, light=(0.0, 0.0, 3.0)),
    ViewSpec("frontright", 1.5, 45.0, 45.0, light=(0.0, 0.0, 3.0)),
    ViewSpec("backleft", 1.5, 330.0, 135.0, light=(0.0, 0.0, -3.0)),
    ViewSpec("backright", 1.5, 330.0, 225.0, light=(0.0, 0.0, -3.0)),
)

#: The camera distance InteractVLM's camera encoder is given for the object views: its
#: conditioning parameters say 2 although the object renders use 1.5.
OBJECT_CONDITIONING_DIST = 2.0


def look_at_view_transform(dist: float, elev: float, azim: float) -> tuple[np.ndarray, np.ndarray]:
    """World-to-view rotation and translation of a camera looking at the origin.

    Args:
        dist: distance of the camera from the origin (mesh units).
        elev: elevation in degrees: angle between the origin-to-camera vector and the xz-plane.
        azim: azimuth in degrees, measured from +Z towards +X in the xz-plane.

    Returns:
        R: (3, 3) float64 rotation, T: (3,) float64 translation, with
        ``X_view = X_world @ R + T`` (PyTorch3D's ``look_at_view_transform`` with up = +Y).

    Raises:
        ValueError: ``dist`` not positive, or a camera on the Y axis (elev = +-90 degrees),
            where "up" is undefined.
    """
    if not dist > 0:
        raise ValueError(f"dist must be positive, got {dist}")
    e, a = math.radians(elev), math.radians(azim)
    centre = dist * np.array([math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)])
    z_axis = -centre / np.linalg.norm(centre)
    x_axis = np.cross([0.0, 1.0, 0.0], z_axis)
    if np.linalg.norm(x_axis) < 5e-3:
        raise ValueError(f"elevation {elev} puts the camera on the up axis; the view is undefined")
    x_axis /= np.linalg.norm(x_axis)
    y_axis = np.cross(z_axis, x_axis)
    rotation = np.stack([x_axis, y_axis, z_axis], axis=1)  # columns are the view axes in world
    translation = -centre @ rotation
    return rotation, translation


@dataclass(frozen=True)
class Camera:
    """A square pinhole camera with PyTorch3D's FoV perspective model.

    Attributes:
        rotation: (3, 3) world-to-view rotation R (``X_view = X_world @ R + T``).
        translation: (3,) world-to-view translation T (mesh units).
        image_size: S, the image is S x S pixels.
        fov_degrees: full field of view, degrees.
    """

    rotation: np.ndarray
    translation: np.ndarray
    image_size: int
    fov_degrees: float = FOV_DEGREES

    @property
    def centre(self) -> np.ndarray:
        """(3,) camera centre in world coordinates: ``-T @ R.T``."""
        return -np.asarray(self.translation) @ np.asarray(self.rotation).T

    @property
    def tan_half_fov(self) -> float:
        return math.tan(math.radians(self.fov_degrees) / 2.0)

    def world_to_view(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N, 3) float64 view-frame points."""
        return np.asarray(points, dtype=np.float64) @ self.rotation + self.translation

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project world points to continuous pixel coordinates.

        Returns:
            uv: (N, 2) float64 (column, row) with pixel centres at half-integers (the pixel
            holding uv is ``floor(uv)``); depth: (N,) float64 view-frame z (points with
            depth <= 0 are behind the camera and their uv is meaningless).
        """
        view = self.world_to_view(points)
        depth = view[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            ndc = view[:, :2] / (depth[:, None] * self.tan_half_fov)
        uv = self.image_size / 2.0 * (1.0 - ndc)
        return uv, depth

    def pixel_rays(self) -> tuple[np.ndarray, np.ndarray]:
        """Rays through every pixel centre, row-major (row 0 at the top).

        Returns:
            origin: (3,) camera centre in world; directions: (S * S, 3) float64 world
            directions with unit view-frame z component (so a hit at parameter t has view
            depth t).
        """
        s = self.image_size
        centres = 1.0 - (2.0 * np.arange(s) + 1.0) / s  # ndc of pixel centres, left/top first
        y_ndc, x_ndc = np.meshgrid(centres, centres, indexing="ij")
        view_dirs = np.stack(
            [x_ndc.ravel() * self.tan_half_fov, y_ndc.ravel() * self.tan_half_fov, np.ones(s * s)], axis=1
        )
        return self.centre, view_dirs @ np.asarray(self.rotation).T


def view_camera(view: ViewSpec, image_size: int, fov_degrees: float = FOV_DEGREES) -> Camera:
    """The camera of an InteractVLM view: look-at from (dist, elev, azim), then the (x, y)
    offset added to the view-frame translation, ``T' = T + (x, y, 0)``, which moves the
    rendered mesh by (x, y) in the view frame (+x to the image's left, +y up)."""
    rotation, translation = look_at_view_transform(view.dist, view.elev, view.azim)
    translation = translation + np.array([view.x, view.y, 0.0])
    return Camera(rotation=rotation, translation=translation, image_size=int(image_size), fov_degrees=fov_degrees)
