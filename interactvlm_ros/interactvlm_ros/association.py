"""Which person an object detection interacts with, and the image region the model sees for
the pair (plain numpy-free Python, no torch, no ROS).

InteractVLM's demo gives the model the whole photo and the class name, so two cups held by two
people get the same answer. Here each object detection is paired with one person detection
and the model is shown the region around that pair:

* **association** (:func:`associate_person`): among the person detections, the one whose box
  overlaps the object's box the most (intersection area, pixels^2); when none overlaps, the
  nearest (smallest gap between the two boxes, then smallest distance between their centres);
  ties go to the higher score, then to the earlier detection;
* **region** (:func:`pair_region`): the union of the two boxes, grown on every side by
  ``margin`` times its longer side, made square around its centre (CLIP's preprocessing
  centre-crops to a square: a square region keeps all of it in view), moved inside the image
  where it fits and clipped where it does not.

Boxes are ``(x_min, y_min, x_max, y_max)`` in image pixels (float, continuous coordinates:
pixel ``i`` covers ``[i, i + 1)``); regions are integer pixel bounds ``(x0, y0, x1, y1)``
with ``0 <= x0 < x1 <= width`` (the crop ``image[y0:y1, x0:x1]``), i.e. a
``sensor_msgs/RegionOfInterest`` with ``x_offset = x0``, ``width = x1 - x0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from .detection import Detection

#: ``image_region`` modes: the pair's region ("person_object") or the whole image ("full",
#: InteractVLM's demo).
IMAGE_REGIONS = ("person_object", "full")

#: Smallest side of a region, pixels (the node's default ``min_image_size``): a tiny box pair
#: still gives CLIP (224 px) and SAM some context.
MIN_REGION_SIDE = 32

Box = tuple[float, float, float, float]
Region = tuple[int, int, int, int]


@dataclass(frozen=True)
class Association:
    """The person and image region used for one object detection.

    Attributes:
        detection: the object detection.
        person: the associated person detection, or None (no person detection in the image,
            or ``image_region`` "full").
        region: (x0, y0, x1, y1) integer pixel bounds of the region given to the model.
        full_image: True when ``region`` is the whole image.
    """

    detection: Detection
    person: Detection | None
    region: Region
    full_image: bool


def intersection_area(a: Box, b: Box) -> float:
    """Area (pixels^2) of the intersection of two xyxy boxes; 0.0 when they do not overlap."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def box_gap(a: Box, b: Box) -> float:
    """Euclidean distance (pixels) between the closest points of two xyxy boxes; 0.0 when
    they touch or overlap."""
    dx = max(0.0, max(a[0], b[0]) - min(a[2], b[2]))
    dy = max(0.0, max(a[1], b[1]) - min(a[3], b[3]))
    return math.hypot(dx, dy)


def _centre_distance(a: Box, b: Box) -> float:
    return math.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)


def associate_person(detection: Detection, persons: Sequence[Detection]) -> Detection | None:
    """The person detection ``detection`` is most likely interacting with (see the module
    docstring), or None when ``persons`` is empty."""
    if not persons:
        return None
    box = detection.bbox_xyxy

    def rank(item):
        index, person = item
        overlap = intersection_area(box, person.bbox_xyxy)
        # Overlapping persons first (largest overlap), then the nearest; ties: score, order.
        return (-overlap, box_gap(box, person.bbox_xyxy) if overlap == 0.0 else 0.0,
                _centre_distance(box, person.bbox_xyxy), -person.score, index)

    return min(enumerate(persons), key=rank)[1]


def pair_region(boxes: Sequence[Box], width: int, height: int, margin: float,
                min_side: int = MIN_REGION_SIDE) -> Region:
    """The square region around the union of ``boxes`` (see the module docstring), at least
    ``min_side`` pixels wide where the image allows.

    Args:
        boxes: one or more xyxy boxes (pixels); width, height: the image size (pixels);
        margin: added on every side, as a fraction of the union's longer side (>= 0);
        min_side: smallest side of the region (pixels).

    Raises:
        ValueError: no box, a non-positive image size or a negative margin.
    """
    if not boxes:
        raise ValueError("pair_region needs at least one box")
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if not margin >= 0.0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[2] for b in boxes)
    y1 = max(b[3] for b in boxes)
    side = max(max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin), min_side)
    (left, right), (top, bottom) = _span((x0 + x1) / 2, side, width), _span((y0 + y1) / 2, side, height)
    return left, top, right, bottom


def _span(centre: float, side: float, size: int) -> tuple[int, int]:
    """Integer [start, end) of length ``ceil(side)`` (at least 1) around ``centre``, moved
    inside [0, size) where it fits, clipped to it otherwise."""
    length = min(max(1, math.ceil(side)), size)
    start = min(max(math.floor(centre - length / 2), 0), size - length)
    return start, start + length


def associate(detections: Sequence[Detection], persons: Sequence[Detection], width: int, height: int,
              image_region: str = "person_object", margin: float = 0.1) -> list[Association]:
    """One :class:`Association` per object detection (input order).

    Args:
        detections: the object detections; persons: the person detections of the same image.
        width, height: the image size (pixels).
        image_region: "person_object" (the pair's region when a person is found, else the whole
            image) or "full" (always the whole image, no person associated).
        margin: see :func:`pair_region`.

    Raises:
        ValueError: an unknown ``image_region`` or a negative margin.
    """
    if image_region not in IMAGE_REGIONS:
        raise ValueError(f"image_region must be one of {', '.join(IMAGE_REGIONS)}, got {image_region!r}")
    if not margin >= 0.0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    full = (0, 0, int(width), int(height))
    result = []
    for detection in detections:
        person = associate_person(detection, persons) if image_region == "person_object" else None
        if person is None:
            result.append(Association(detection, None, full, True))
            continue
        region = pair_region([detection.bbox_xyxy, person.bbox_xyxy], width, height, margin)
        result.append(Association(detection, person, region, region == full))
    return result
