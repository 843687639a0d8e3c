"""One person's body landmarks as a pose source gives them (plain numpy, no ROS imports).

BlazePose's 33 landmarks (:data:`LANDMARK_NAMES`, MediaPipe's ``PoseLandmark`` order), each
twice: its position in the full image and its metric position in a frame centred on the
person's hips. "left" and "right" are the person's own sides (the person's left wrist is on
the image's right when they face the camera).

Conventions: image positions follow the ROS CameraInfo / OpenCV K convention (pixel (u, v)'s
centre is the point (u, v); the full image spans [-0.5, W - 0.5] x [-0.5, H - 0.5]); boxes
follow the detectors' continuous coordinates (the image spans [0, W] x [0, H]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: BlazePose's landmarks, in MediaPipe's order (``mediapipe.solutions.pose.PoseLandmark``).
LANDMARK_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
NUM_LANDMARKS = len(LANDMARK_NAMES)
#: Index of each landmark name in :data:`LANDMARK_NAMES`.
LANDMARK_INDEX = {name: index for index, name in enumerate(LANDMARK_NAMES)}


@dataclass(frozen=True, eq=False)
class PersonLandmarks:
    """The landmarks of one person detection.

    Attributes:
        image_xy: (33, 2) float32, pixels of the full image (not of a crop), K convention
            (module docstring); a landmark may lie outside the image (a hand cut off by the
            frame's edge): its visibility is then low.
        visibility: (33,) float32 in [0, 1], the source's likelihood that the landmark is
            in view and not occluded.
        world_xyz: (33, 3) float32, metres, MediaPipe's world frame: origin midway between
            the hips, x to the image's right, y down, z away from the camera (roughly the
            camera's axes; its size is the source's estimate of the person's size).
        person_id: the person detection's id (vision_msgs ``Detection2D.id``).
        box: the person's box the landmarks were estimated in, ``(x_min, y_min, x_max,
            y_max)`` continuous pixel coordinates of the full image (clipped to it).

    Raises:
        ValueError: (at construction) an array of another shape, a non-finite value, a
            visibility outside [0, 1] or a box that is not 4 finite numbers with
            ``x_min < x_max`` and ``y_min < y_max``, naming the field.
    """

    image_xy: np.ndarray
    visibility: np.ndarray
    world_xyz: np.ndarray
    person_id: str
    box: tuple[float, float, float, float]

    def __post_init__(self):
        for name, shape in (("image_xy", (NUM_LANDMARKS, 2)), ("visibility", (NUM_LANDMARKS,)),
                            ("world_xyz", (NUM_LANDMARKS, 3))):
            value = np.asarray(getattr(self, name), dtype=np.float32)
            if value.shape != shape:
                raise ValueError(f"PersonLandmarks.{name}: shape {value.shape}, expected {shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"PersonLandmarks.{name}: non-finite values")
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        if ((self.visibility < 0) | (self.visibility > 1)).any():
            raise ValueError(f"PersonLandmarks.visibility: values outside [0, 1] (min {self.visibility.min():g}, "
                             f"max {self.visibility.max():g})")
        box = tuple(float(v) for v in self.box)
        if len(box) != 4 or not np.isfinite(box).all() or not (box[0] < box[2] and box[1] < box[3]):
            raise ValueError(f"PersonLandmarks.box: {self.box!r} is not (x_min, y_min, x_max, y_max) with "
                             "x_min < x_max, y_min < y_max")
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "person_id", str(self.person_id))

    def point(self, name: str) -> np.ndarray:
        """(2,) float32 image position (pixels) of the landmark ``name`` (a
        :data:`LANDMARK_NAMES` entry; KeyError otherwise)."""
        return self.image_xy[LANDMARK_INDEX[name]]
