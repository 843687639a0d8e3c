"""One image + its detections -> InteractionArray (+ markers): the work the node does per pair,
shared with offline rosbag replay.

Detections are validated here (class, finite score and box, non-empty box inside the image,
ignored classes, minimum score, the max_detections highest scores); each one not used is
reported to ``report(reason, detail)`` so the caller can count and log it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from interactvlm_msgs.msg import HumanContact, Interaction, InteractionArray, ObjectAffordance
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray
from visualization_msgs.msg import MarkerArray

from ..pipeline import Detection, InteractionEstimator
from ..reasons import Reason, Rejected
from .conversions import affordance_cloud, human_contact_msg, object_affordance_msg, object_frame_id
from .images import compressed_to_rgb, image_to_rgb
from .markers import MarkerBuilder


@dataclass(frozen=True)
class ProcessingSettings:
    """Per-call settings (the node reads them from its parameters each time)."""

    threshold: float = 0.5
    max_detections: int = 5
    min_score: float = 0.0
    ignore_classes: tuple[str, ...] = ()
    markers: bool = True
    markers_frame_id: str = "interactvlm"
    geometry_preference: str = "depth"  # with depth available: "depth" or "mesh" (library mesh/proxy)
    depth_points: int = 2048
    depth_cluster_gap: float = 0.05
    min_image_size: int = 32

    @classmethod
    def from_parameters(cls, get: Callable[[str], object]) -> "ProcessingSettings":
        """From node parameter values, ``get(name)`` (see ros/parameters.py)."""
        return cls(threshold=float(get("threshold")), max_detections=int(get("max_detections")),
                   min_score=float(get("min_score")), ignore_classes=tuple(c for c in get("ignore_classes") if c),
                   markers=bool(get("publish_markers")), markers_frame_id=str(get("markers_frame_id")),
                   geometry_preference=str(get("geometry_preference")), depth_points=int(get("depth_points")),
                   depth_cluster_gap=float(get("depth_cluster_gap")), min_image_size=int(get("min_image_size")))


def stamp_ns(stamp) -> int:
    """A builtin_interfaces/Time as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


@dataclass(frozen=True)
class DepthFrame:
    """A registered depth image for the colour image being processed.

    Attributes:
        metres: (H, W) float32 depth in metres, NaN where invalid; intrinsics: the colour
        camera's (registered depth); frame_id: the optical frame the points are expressed in.
    """

    metres: np.ndarray
    intrinsics: object
    frame_id: str


#: Smallest box side accepted, pixels.
MIN_BOX_SIDE = 2.0


def validate_detections(msg: Detection2DArray, width: int, height: int, settings: ProcessingSettings,
                        validate_label: Callable[[str], str]) -> tuple[list, list[tuple[Reason, str]]]:
    """Which detections of a message can be processed, for a ``width`` x ``height`` image.

    A detection is used when it has a class (the best-scoring hypothesis), a finite score and
    box, a label ``validate_label`` accepts, a class not in ``ignore_classes``, a score >=
    ``min_score``, a box of at least 2 x 2 px that overlaps the image and is not larger than
    the image by more than the image's own size, and an id not used by an earlier detection
    of the message; of those, the ``max_detections`` highest scores (input order kept).

    Args:
        msg: vision_msgs/Detection2DArray (boxes: centre + size in image pixels).
        validate_label: label -> prompt name, raising ``Rejected`` (the estimator's).

    Returns:
        (kept, rejections): kept = [(pipeline Detection (box as xyxy pixels), Detection2D)],
        rejections = [(Reason, detail)] one per detection not used.
    """
    kept, rejections, seen_ids = [], [], set()
    for index, det in enumerate(msg.detections):
        if not det.results:
            rejections.append((Reason.DETECTION_WITHOUT_CLASS, f"detection {det.id!r} has no results"))
            continue
        best = max(det.results, key=lambda r: r.hypothesis.score if math.isfinite(r.hypothesis.score) else -1)
        label, score = best.hypothesis.class_id.strip(), float(best.hypothesis.score)
        cx, cy = det.bbox.center.position.x, det.bbox.center.position.y
        w, h = det.bbox.size_x, det.bbox.size_y
        if not all(math.isfinite(v) for v in (score, cx, cy, w, h)):
            rejections.append((Reason.NAN_IN_DETECTION, f"detection {det.id!r} has a non-finite score or box"))
            continue
        if not label:
            rejections.append((Reason.DETECTION_WITHOUT_CLASS, f"detection {det.id!r} has an empty class_id"))
            continue
        if label in settings.ignore_classes:
            rejections.append((Reason.IGNORED_CLASS, label))
            continue
        try:
            validate_label(label)
        except Rejected as error:
            rejections.append((error.reason, f"detection {det.id!r}: {error.detail}"))
            continue
        if score < settings.min_score:
            rejections.append((Reason.LOW_SCORE, f"{label} {score:.2f}"))
            continue
        if w <= 0 or h <= 0:
            rejections.append((Reason.EMPTY_BOX, f"detection {det.id!r} has a {w}x{h} box"))
            continue
        if w < MIN_BOX_SIDE or h < MIN_BOX_SIDE:
            rejections.append((Reason.BOX_TOO_SMALL, f"detection {det.id!r} has a {w}x{h} box (sides of at least "
                                                     f"{MIN_BOX_SIDE:g} px)"))
            continue
        if w > 2 * width or h > 2 * height:
            rejections.append((Reason.BOX_TOO_LARGE, f"detection {det.id!r} has a {w}x{h} box for a {width}x{height} "
                                                     "image"))
            continue
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        if box[2] <= 0 or box[3] <= 0 or box[0] >= width or box[1] >= height:
            rejections.append((Reason.BOX_OUTSIDE_IMAGE, f"detection {det.id!r} box {box} lies outside the "
                                                         f"{width}x{height} image"))
            continue
        detection_id = det.id or str(index)
        if detection_id in seen_ids:
            rejections.append((Reason.DUPLICATE_DETECTION_ID, f"detection id {detection_id!r} appears more than "
                                                              "once in the message; the first is used"))
            continue
        seen_ids.add(detection_id)
        kept.append((score, index, Detection(label, box, score, detection_id), det))
    if len(kept) > settings.max_detections:
        for _ in range(len(kept) - settings.max_detections):
            rejections.append((Reason.DETECTIONS_OVER_LIMIT, f"more than {settings.max_detections} detections"))
        kept = sorted(sorted(kept, key=lambda k: -k[0])[: settings.max_detections], key=lambda k: k[1])
    return [(k[2], k[3]) for k in kept], rejections


class FrameProcessor:
    """Runs the estimator on one (image, detections) pair and builds the messages.

    Args:
        estimator: the loaded pipeline.
        report: called as ``report(reason, detail)`` for every input not used.
    """

    def __init__(self, estimator: InteractionEstimator, report: Callable[[str, str], None]):
        self.estimator = estimator
        self.report = report
        self.marker_builder = MarkerBuilder()

    def select(self, msg: Detection2DArray, width: int, height: int, settings: ProcessingSettings):
        """(Detection, Detection2D) pairs to process (see :func:`validate_detections`); every
        other detection is reported with its reason."""
        kept, rejections = validate_detections(msg, width, height, settings, self.estimator.validate_label)
        for reason, detail in rejections:
            self.report(reason, detail)
        return kept

    @staticmethod
    def decode(image_msg, min_side: int = 1) -> np.ndarray:
        """(H, W, 3) uint8 RGB of an Image or CompressedImage.

        Raises:
            Rejected: a negative stamp, an image that cannot be decoded, or one whose smaller
                side is below ``min_side`` pixels (``image_too_small``).
        """
        if image_msg.header.stamp.sec < 0:
            raise Rejected(Reason.NEGATIVE_STAMP, f"image stamp {image_msg.header.stamp.sec} s is negative")
        rgb = compressed_to_rgb(image_msg) if isinstance(image_msg, CompressedImage) else image_to_rgb(image_msg)
        if min(rgb.shape[:2]) < min_side:
            raise Rejected(Reason.IMAGE_TOO_SMALL, f"{rgb.shape[1]}x{rgb.shape[0]} image (smaller side at least "
                                                   f"{min_side} px)")
        return rgb

    def depth_geometries(self, selected, depth: DepthFrame, settings: ProcessingSettings) -> dict:
        """Per detection id, the object's points from depth (camera optical frame), when the
        settings prefer depth or no mesh/proxy exists for the class; too few valid points are
        reported (``too_few_depth_points``) and the detection falls back to the class map."""
        from ..geometry.depth import object_points_from_depth
        from ..geometry.objects import PointCloudGeometry

        geometries = {}
        for detection, _ in selected:
            if settings.geometry_preference != "depth" and self.estimator.objects.get(detection.label) is not None:
                continue
            points = object_points_from_depth(depth.metres, depth.intrinsics, detection.box,
                                              count=settings.depth_points, gap=settings.depth_cluster_gap)
            if points is None:
                self.report(Reason.TOO_FEW_DEPTH_POINTS, f"detection {detection.id!r}: not enough valid depth in its box")
                continue
            geometries[detection.id] = PointCloudGeometry(points, "depth")
        return geometries

    def process(self, image_msg, detections_msg: Detection2DArray, settings: ProcessingSettings,
                geometries=None, depth: DepthFrame | None = None):
        """Returns (InteractionArray, pipeline EstimateResult), or None when no detection is
        valid (reported as ``pairs_without_valid_detections``); :meth:`markers` builds the RViz
        markers from them. ``geometries`` maps detection ids to geometry overrides (see
        ``InteractionEstimator.estimate``); ``depth`` (registered to the image) gives objects
        their points from depth.

        Raises:
            Rejected: an image that cannot be used (see :meth:`decode`); nothing else is
                reported then.
        """
        rgb = self.decode(image_msg, settings.min_image_size)
        height, width = rgb.shape[:2]
        frames = (detections_msg.header.frame_id, image_msg.header.frame_id)
        if all(frames) and frames[0] != frames[1]:
            self.report(Reason.DETECTIONS_FRAME_MISMATCH, f"detections in frame {frames[0]!r} for an image in "
                                                          f"{frames[1]!r}; boxes are used as image pixels")
        selected = self.select(detections_msg, width, height, settings)
        if not selected:
            self.report(Reason.PAIRS_WITHOUT_VALID_DETECTIONS, "no valid detection in the pair")
            return None
        if depth is not None:
            from ..geometry.depth import check_registered

            check_registered(depth.metres.shape, rgb.shape[:2])
            geometries = {**self.depth_geometries(selected, depth, settings), **(geometries or {})}
        result = self.estimator.estimate(rgb, [d for d, _ in selected], geometries=geometries,
                                         threshold=settings.threshold)
        header = Header(stamp=image_msg.header.stamp, frame_id=image_msg.header.frame_id)
        camera_frame = depth.frame_id if depth is not None and depth.frame_id else header.frame_id
        message = InteractionArray(header=header, model_id=result.model_id,
                                   weights_are_random=result.weights_are_random,
                                   inference_ms=float(result.timings_ms.get("total", 0.0)))
        for (_, det_msg), interaction in zip(selected, result.interactions):
            message.interactions.append(self.interaction_msg(header, det_msg, interaction, settings.threshold,
                                                             camera_frame))
            if interaction.object_affordance is None and self.estimator.affordance_model is not None:
                self.report(Reason.AFFORDANCE_SKIPPED_UNKNOWN_CLASS, interaction.detection.label)
            self.report_answers(interaction)
        return message, result

    def report_answers(self, interaction) -> None:
        """Report the answers of one detection that ended without [SEG] (no mask): at the
        generation limit (``answer_limit_reached``: raise ``max_new_tokens``) or at the end of
        the sequence (``answer_without_seg``)."""
        for kind, part in (("contact", interaction.human_contact), ("affordance", interaction.object_affordance)):
            if part is None or part.stop_reason == "seg":
                continue
            detection = interaction.detection
            if part.stop_reason == "max_new_tokens":
                self.report(Reason.ANSWER_LIMIT_REACHED, f"{kind} answer for {detection.label!r} ({detection.id}) reached "
                                                    f"max_new_tokens ({self.estimator.max_new_tokens}) without [SEG]")
            else:
                self.report(Reason.ANSWER_WITHOUT_SEG, f"{kind} answer for {detection.label!r} ({detection.id}) ended "
                                                  "without [SEG]")

    def markers(self, message: InteractionArray, result, settings: ProcessingSettings) -> MarkerArray:
        """RViz markers of a processed pair (see ``markers.py``), in ``settings.markers_frame_id``
        (the image's frame when empty); object points from depth stay in their optical frame.
        Separate from :meth:`process` so the node can publish the interactions first: the
        markers of a full body mesh take tens of milliseconds to convert and publish."""
        depth_frames = [i.object_affordance.header.frame_id for i in message.interactions
                        if i.object_affordance.geometry_source == "depth"]
        camera_frame = depth_frames[0] if depth_frames else message.header.frame_id
        body = self.estimator.body
        header = Header(stamp=message.header.stamp, frame_id=settings.markers_frame_id or message.header.frame_id)
        return self.marker_builder.build(header, result.interactions, body.vertices, body.faces,
                                         result.weights_are_random, camera_frame)

    @staticmethod
    def interaction_msg(header: Header, det_msg, interaction, threshold: float, camera_frame: str = "") -> Interaction:
        """interactvlm_msgs/Interaction of one pipeline result. A missing part (no model, or no
        geometry for the class) becomes an empty HumanContact / ObjectAffordance (body_model
        or geometry_source "", ``threshold`` the configured one). Affordance points from depth
        are in ``camera_frame`` (the depth image's optical frame); mesh points in the frame
        ``conversions.object_frame_id(label)`` ("<name>_model")."""
        det = interaction.detection
        out = Interaction(detection=det_msg)
        contact = interaction.human_contact
        if contact is not None:
            out.human_contact = human_contact_msg(header, contact.body_model, contact.vertex_probabilities,
                                                  contact.threshold, contact.body_parts, det.label, det.id)
            out.contact_answer = contact.answer
        else:
            out.human_contact = HumanContact(header=header, object_label=det.label, detection_id=det.id,
                                             threshold=float(threshold))
        affordance = interaction.object_affordance
        from_depth = affordance is not None and affordance.geometry_source == "depth"
        object_header = Header(stamp=header.stamp, frame_id=(camera_frame or header.frame_id) if from_depth
                               else object_frame_id(det.label))
        if affordance is not None:
            out.object_affordance = object_affordance_msg(object_header, det.id, det.label, affordance.affordance,
                                                          affordance.geometry_source, affordance.points,
                                                          affordance.probabilities, affordance.threshold)
            out.affordance_answer = affordance.answer
        else:
            out.object_affordance = ObjectAffordance(header=object_header, detection_id=det.id,
                                                     object_label=det.label, threshold=float(threshold),
                                                     points=affordance_cloud(object_header, np.zeros((0, 3)),
                                                                             np.zeros(0)))
        return out
