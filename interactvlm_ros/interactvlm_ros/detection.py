"""The 2D detection the pipeline reasons about (plain data, no torch, no ROS)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Detection:
    """One 2D detection, the project's only detection type (node, replay, bags, datasets).

    Attributes:
        label: class label (e.g. "cup").
        bbox_xyxy: (x_min, y_min, x_max, y_max) in image pixels (``ros.conversions`` converts
            to and from vision_msgs' centre + size).
        score: detector confidence in [0, 1].
        id: the detection's id (vision_msgs ``Detection2D.id``).
    """

    label: str
    bbox_xyxy: tuple[float, float, float, float]
    score: float = 1.0
    id: str = ""
