"""One image + its detections -> InteractionArray (+ markers): the work the node does per pair,
shared with offline rosbag replay.

:class:`FrameProcessor` orchestrates: decode the image (``images.decode_image``), validate the
detections (:func:`validate_detections`, pure), objects' points from depth
(``geometry.depth``), estimate (the library's ``InteractionEstimator``), pose the people
(``body.people.PeopleEstimator``, when a body pose source is configured) and place the objects
relative to them (``reconstruction.scene.SceneEstimator``), build the messages
(``conversions``) and the markers (``markers``). Every input not used, and every caveat, is
reported to ``report(reason, detail)`` (a :class:`~interactvlm_ros.reasons.Reason`) so the
caller can count and log it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from interactvlm_msgs.msg import InteractionArray
from std_msgs.msg import Header
from vision_msgs.msg import Detection2DArray
from visualization_msgs.msg import MarkerArray

from ..body.people import PeopleEstimator, PeopleResult, with_people
from ..handover import CLEARANCE_DISTANCE
from ..pipeline import HANDOVER_NOTE, EstimateResult, InteractionEstimator
from ..reconstruction.scene import SceneEstimator, SceneResult
from ..reasons import Reason, Rejected
from ..geometry.depth import (DepthFrame, Intrinsics, check_registered, contact_points_from_depth,
                              object_geometries_from_depth)
from .conversions import detection_from_msg, detections_to_msg, interaction_array_msg
from .images import check_pixels, decode_image, depth_to_array
from .markers import MarkerBuilder


@dataclass(frozen=True)
class ProcessingSettings:
    """Per-call settings (the node reads them from its parameters each time).

    Raises:
        ValueError: an empty ``markers_frame_id`` (markers need a frame to be displayed in).
    """

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
    max_image_pixels: int = 50_000_000
    person_classes: tuple[str, ...] = ("person",)
    image_region: str = "person_object"
    region_margin: float = 0.1
    scene_contact: bool = False
    task: str = ""
    clearance_distance: float = CLEARANCE_DISTANCE
    place_objects: bool = True

    def __post_init__(self):
        if not self.markers_frame_id:
            raise ValueError("markers_frame_id must not be empty (the frame the markers are displayed in)")

    @classmethod
    def from_parameters(cls, get: Callable[[str], object]) -> "ProcessingSettings":
        """From node parameter values, ``get(name)`` (see :mod:`interactvlm_ros.config`)."""
        return cls(threshold=float(get("threshold")), max_detections=int(get("max_detections")),
                   min_score=float(get("min_score")), ignore_classes=tuple(c for c in get("ignore_classes") if c),
                   markers=bool(get("publish_markers")), markers_frame_id=str(get("markers_frame_id")),
                   geometry_preference=str(get("geometry_preference")), depth_points=int(get("depth_points")),
                   depth_cluster_gap=float(get("depth_cluster_gap")), min_image_size=int(get("min_image_size")),
                   max_image_pixels=int(get("max_image_pixels")),
                   person_classes=tuple(c for c in get("person_classes") if c), image_region=str(get("image_region")),
                   region_margin=float(get("region_margin")), scene_contact=bool(get("scene_contact")),
                   task=str(get("task")), clearance_distance=float(get("handover_clearance_distance")),
                   place_objects=bool(get("place_objects")))


def stamp_ns(stamp) -> int:
    """A builtin_interfaces/Time as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def depth_frame(depth_msg, info_msg, image_frame_id: str = "", max_pixels: int | None = None) -> DepthFrame:
    """The registered depth of an image: a sensor_msgs/Image depth (16UC1 mm or 32FC1 m) and
    the colour camera's sensor_msgs/CameraInfo as a :class:`~..geometry.depth.DepthFrame` in
    metres, in the depth image's frame (the image's when the depth has none). ``max_pixels``
    (``max_image_pixels``) is checked before anything is converted.

    Raises:
        Rejected: an unsupported depth encoding (``unsupported_depth_encoding``); a buffer that
            does not match its size, more than ``max_pixels`` pixels or unusable intrinsics
            (``bad_depth``: the image itself is still processed, without depth).
    """
    from ..geometry.depth import Intrinsics, depth_to_metres

    try:
        check_pixels(int(depth_msg.width), int(depth_msg.height), max_pixels)
        metres = depth_to_metres(depth_to_array(depth_msg), depth_msg.encoding)
        intrinsics = Intrinsics.from_camera_info(list(info_msg.k), int(info_msg.width), int(info_msg.height))
    except Rejected as error:
        if error.reason is Reason.UNSUPPORTED_DEPTH_ENCODING:
            raise
        raise Rejected(Reason.BAD_DEPTH, f"depth image: {error.reason}: {error.detail}") from error
    except ValueError as error:
        raise Rejected(Reason.BAD_DEPTH, str(error)) from error
    return DepthFrame(metres, intrinsics, depth_msg.header.frame_id or image_frame_id)


#: Smallest box side accepted, pixels.
MIN_BOX_SIDE = 2.0


def validate_detections(msg: Detection2DArray, width: int, height: int, settings: ProcessingSettings,
                        validate_label: Callable[[str], str]) -> tuple[list, list[tuple[Reason, str]]]:
    """Which detections of a message can be processed, for a ``width`` x ``height`` image.

    A detection is used when it has a class (the best-scoring hypothesis), a finite score and
    box, a label ``validate_label`` accepts, a class not in ``ignore_classes``, a score >=
    ``min_score``, a box of at least 2 x 2 px that overlaps the image and is not larger than
    the image by more than the image's own size, and an id not used by an earlier detection
    of the message; of those, the ``max_detections`` highest-scoring objects (input order
    kept). Detections of ``person_classes`` are checked the same way except for the label
    (it never reaches a prompt), are never ignored (``ignore_classes`` does not apply) and do
    not count towards ``max_detections``: they are kept for association (see
    ``interactvlm_ros.association``).

    Args:
        msg: vision_msgs/Detection2DArray (boxes: centre + size in image pixels).
        validate_label: label -> prompt name, raising ``Rejected`` (the estimator's).

    Returns:
        (kept, rejections): kept = [(pipeline Detection (box as xyxy pixels), Detection2D)],
        rejections = [(Reason, detail)] one per detection not used.
    """
    kept, persons, rejections, seen_ids = [], [], [], set()
    for index, det in enumerate(msg.detections):
        try:
            detection = detection_from_msg(det, index)
        except Rejected as error:
            rejections.append((error.reason, error.detail))
            continue
        label, score, (x0, y0, x1, y1) = detection.label, detection.score, detection.bbox_xyxy
        is_person = label in settings.person_classes
        if label in settings.ignore_classes and not is_person:
            rejections.append((Reason.IGNORED_CLASS, f"detection {detection.id!r}: class {label!r} is in ignore_classes"))
            continue
        try:
            if not is_person:
                validate_label(label)
        except Rejected as error:
            rejections.append((error.reason, f"detection {detection.id!r}: {error.detail}"))
            continue
        if score < settings.min_score:
            rejections.append((Reason.LOW_SCORE, f"detection {detection.id!r} ({label}): score {score:.2f} < min_score "
                                                  f"{settings.min_score:g}"))
            continue
        w, h = x1 - x0, y1 - y0
        if w < MIN_BOX_SIDE or h < MIN_BOX_SIDE:
            rejections.append((Reason.BOX_TOO_SMALL, f"detection {detection.id!r} has a {w}x{h} box (sides of at "
                                                     f"least {MIN_BOX_SIDE:g} px)"))
            continue
        if w > 2 * width or h > 2 * height:
            rejections.append((Reason.BOX_TOO_LARGE, f"detection {detection.id!r} has a {w}x{h} box for a "
                                                     f"{width}x{height} image"))
            continue
        if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
            rejections.append((Reason.BOX_OUTSIDE_IMAGE, f"detection {detection.id!r} box {detection.bbox_xyxy} lies "
                                                         f"outside the {width}x{height} image"))
            continue
        if detection.id in seen_ids:
            rejections.append((Reason.DUPLICATE_DETECTION_ID, f"detection id {detection.id!r} appears more than "
                                                              "once in the message; the first is used"))
            continue
        seen_ids.add(detection.id)
        (persons if is_person else kept).append((score, index, detection, det))
    if len(kept) > settings.max_detections:
        ranked = sorted(kept, key=lambda k: -k[0])
        for _, _, detection, _ in ranked[settings.max_detections:]:
            rejections.append((Reason.DETECTIONS_OVER_LIMIT, f"detection {detection.id!r}: more than "
                                                             f"max_detections ({settings.max_detections}) in the message"))
        kept = ranked[: settings.max_detections]
    return [(k[2], k[3]) for k in sorted(kept + persons, key=lambda k: k[1])], rejections


def camera_intrinsics(info_msg) -> Intrinsics:
    """The intrinsics of a sensor_msgs/CameraInfo (K and the image size).

    Raises:
        Rejected: ``bad_camera_info``: K not 9 finite numbers, non-positive focal lengths (an
            uncalibrated camera's all-zero K) or sizes.
    """
    try:
        return Intrinsics.from_camera_info(list(info_msg.k), int(info_msg.width), int(info_msg.height))
    except (ValueError, TypeError) as error:
        raise Rejected(Reason.BAD_CAMERA_INFO, f"CameraInfo stamped {stamp_ns(info_msg.header.stamp) / 1e9:.3f} s: "
                                               f"{error}") from error


class Processed(NamedTuple):
    """What :meth:`FrameProcessor.process` gives: the ``InteractionArray``, the estimator's
    ``EstimateResult`` (interactions with the people's clearance applied), the people stage's
    ``PeopleResult`` and the scene stage's ``SceneResult`` (None without a body pose source)."""

    message: InteractionArray
    estimate: EstimateResult
    people: PeopleResult | None
    scene: SceneResult | None = None


class FrameProcessor:
    """Runs the estimator on one (image, detections) pair and builds the messages.

    Args:
        estimator: the loaded pipeline.
        report: called as ``report(reason, detail)`` for every input not used.
        people: the people stage (``loading.build_people``), or None (``body_pose_source: none``).
    """

    def __init__(self, estimator: InteractionEstimator, report: Callable[[str, str], None],
                 people: PeopleEstimator | None = None):
        self.estimator = estimator
        self.report = report
        self.people = people
        self.scene = SceneEstimator(estimator.objects) if people is not None else None
        self.marker_builder = MarkerBuilder()

    def select(self, msg: Detection2DArray, width: int, height: int, settings: ProcessingSettings):
        """(Detection, Detection2D) pairs to process (see :func:`validate_detections`); every
        other detection is reported with its reason."""
        kept, rejections = validate_detections(msg, width, height, settings, self.estimator.validate_label)
        for reason, detail in rejections:
            self.report(reason, detail)
        return kept

    def process(self, image_msg, detections_msg: Detection2DArray, settings: ProcessingSettings,
                geometries=None, depth: DepthFrame | None = None, notes: list | None = None,
                intrinsics: Intrinsics | None = None) -> Processed | None:
        """The outputs of one pair (:class:`Processed`), or None when no detection is valid
        (reported as ``pairs_without_valid_detections``); :meth:`markers` builds the RViz
        markers from them. ``geometries`` maps detection ids to geometry overrides (see
        ``InteractionEstimator.estimate``); ``depth`` (registered to the image) gives objects
        their points from depth and places the people; ``intrinsics`` (the image's CameraInfo,
        :func:`camera_intrinsics`) places them without depth. ``notes``, when given, also
        receives every ``(reason, detail)`` reported during the call (the service answers with
        them).

        Raises:
            Rejected: an image that cannot be used (see ``images.decode_image``); nothing else
                is reported then.
        """
        if notes is not None:
            return self._collecting(notes).process(image_msg, detections_msg, settings, geometries, depth,
                                                   intrinsics=intrinsics)
        rgb = decode_image(image_msg, settings.min_image_size, settings.max_image_pixels)
        height, width = rgb.shape[:2]
        frames = (detections_msg.header.frame_id, image_msg.header.frame_id)
        if all(frames) and frames[0] != frames[1]:
            self.report(Reason.DETECTIONS_FRAME_MISMATCH, f"detections in frame {frames[0]!r} for an image in "
                                                          f"{frames[1]!r}; boxes are used as image pixels")
        selected = self.select(detections_msg, width, height, settings)
        persons = [d for d, _ in selected if d.label in settings.person_classes]
        selected = [(d, m) for d, m in selected if d.label not in settings.person_classes]
        if not selected and not (settings.scene_contact and persons):  # people alone: their scene contact
            self.report(Reason.PAIRS_WITHOUT_VALID_DETECTIONS, "no valid object detection in the pair")
            return None
        detections = [d for d, _ in selected]
        if depth is not None:
            try:
                check_registered(depth.metres.shape, rgb.shape)
            except ValueError as error:  # the outputs without depth, not a lost frame
                self.report(Reason.BAD_DEPTH, str(error))
                depth = None
        if depth is not None and self.estimator.affordance_model is not None:
            preferred = [d for d in detections if settings.geometry_preference == "depth"
                         or self.estimator.objects.get(d.label) is None]
            from_depth, missing = object_geometries_from_depth(preferred, depth, rgb.shape[:2], settings.depth_points,
                                                               settings.depth_cluster_gap)
            for detection in missing:  # falls back to the class's mesh or proxy
                self.report(Reason.TOO_FEW_DEPTH_POINTS, f"detection {detection.id!r}: not enough valid depth in its box")
            geometries = {**from_depth, **(geometries or {})}
        result = self.estimator.estimate(rgb, detections, geometries=geometries, threshold=settings.threshold,
                                         persons=persons, image_region=settings.image_region,
                                         region_margin=settings.region_margin,
                                         scene_contact=settings.scene_contact, task=settings.task,
                                         clearance_distance=settings.clearance_distance)
        if depth is not None:  # 2D contact maps -> the touching body parts' points
            for index, interaction in enumerate(result.interactions):
                contact = interaction.human_contact
                if contact is not None and contact.image_probabilities is not None:
                    points, values = contact_points_from_depth(contact.image_probabilities, depth, contact.threshold)
                    result.interactions[index] = dataclasses.replace(interaction, human_contact=dataclasses.replace(
                        contact, contact_points=points, contact_point_probabilities=values))
        people = placements = None
        if self.people is not None:  # people, then the objects placed relative to them
            people = self.people.estimate(rgb, persons, depth, intrinsics, stamp_ns(image_msg.header.stamp) / 1e9)
            rejections = [p.rejection for p in people.persons if p.rejection is not None]
            placements = self.scene.estimate(result.interactions, people, depth.intrinsics if depth is not None
                                             else intrinsics, (width, height), fit=settings.place_objects,
                                             geometries=geometries)
            rejections += [r for placed in placements.objects.values() for r in placed.rejections]
            for rejection in rejections:
                self.report(rejection.reason, rejection.detail)
            result.interactions = with_people(result.interactions, people, self.people, settings.task,
                                              settings.clearance_distance, HANDOVER_NOTE,
                                              placements.placed_by_contact())
            stages = {**people.timings_ms, **placements.timings_ms}
            result.timings_ms.update(stages)
            result.timings_ms["total"] = result.timings_ms.get("total", 0.0) + sum(stages.values())
        header = Header(stamp=image_msg.header.stamp, frame_id=image_msg.header.frame_id)
        camera_frame = depth.frame_id if depth is not None and depth.frame_id else header.frame_id
        # Scene contact (settings.scene_contact) comes after the objects, for pseudo-detections.
        scene = detections_to_msg([i.detection for i in result.interactions[len(selected):]], header).detections
        message = interaction_array_msg(header, [m for _, m in selected] + list(scene), result, settings.threshold,
                                        camera_frame, settings.task, people,
                                        self.people.part_vertex_ids if self.people is not None else None, placements)
        for index, interaction in enumerate(result.interactions):
            is_object = index < len(selected)
            handover_note = next((n for n in interaction.notes if n.startswith(HANDOVER_NOTE)), None)
            if is_object and interaction.person is None and settings.image_region == "person_object":
                self.report(Reason.NO_PERSON_FOR_OBJECT, f"detection {interaction.detection.id!r}: no person detection "
                                                         "(person_classes) in the image; the whole image was used")
            if is_object and interaction.object_affordance is None and self.estimator.affordance_model is not None:
                self.report(Reason.AFFORDANCE_SKIPPED_UNKNOWN_CLASS, interaction.detection.label)
            elif is_object and settings.task == "handover" and handover_note is not None:
                self.report(Reason.NO_OBJECT_CONTACT_FOR_HANDOVER,
                            f"detection {interaction.detection.id!r}: {handover_note.removeprefix(HANDOVER_NOTE)}")
            self.report_answers(interaction)
        return Processed(message, result, people, placements)

    def depth(self, image_msg, depth_msg, info_msg, max_pixels: int | None, missing: str) -> DepthFrame | None:
        """The registered depth of ``image_msg`` (:func:`depth_frame` of its depth image and
        CameraInfo), or None, reported: ``no_depth_for_image`` when ``depth_msg`` or ``info_msg``
        is None (``missing`` says why none came), else the reason the depth is unusable."""
        if depth_msg is None or info_msg is None:
            absent = " and ".join(what for what, msg in (("depth image", depth_msg), ("CameraInfo", info_msg))
                                  if msg is None)
            self.report(Reason.NO_DEPTH_FOR_IMAGE, f"no {absent} for the image stamped "
                                                   f"{stamp_ns(image_msg.header.stamp) / 1e9:.3f} s: {missing}")
            return None
        try:
            return depth_frame(depth_msg, info_msg, image_msg.header.frame_id, max_pixels)
        except Rejected as error:
            self.report(error.reason, error.detail)
            return None

    def intrinsics(self, info_msg) -> Intrinsics | None:
        """The intrinsics of an image's CameraInfo (:func:`camera_intrinsics`), None when
        ``info_msg`` is None or unusable (reported ``bad_camera_info``)."""
        if info_msg is None:
            return None
        try:
            return camera_intrinsics(info_msg)
        except Rejected as error:
            self.report(error.reason, error.detail)
            return None

    def _collecting(self, notes: list) -> "FrameProcessor":
        """A processor of the same estimator whose reports also go to ``notes``."""
        def report(reason, detail):
            notes.append((Reason(reason), detail))
            self.report(reason, detail)

        return FrameProcessor(self.estimator, report, self.people)

    def report_answers(self, interaction) -> None:
        """Report the answers of one detection that ended without [SEG] (no mask): at the
        generation limit (``answer_limit_reached``: raise ``max_new_tokens``) or at the end of
        the sequence (``answer_without_seg``)."""
        affordance = interaction.object_affordance
        answers = [("contact", interaction.human_contact and interaction.human_contact.stop_reason),
                   ("affordance", affordance and affordance.stop_reason),
                   ("object contact", affordance and affordance.contact_stop_reason)]
        for kind, stop_reason in answers:
            if not stop_reason or stop_reason == "seg":
                continue
            detection = interaction.detection
            if stop_reason == "max_new_tokens":
                self.report(Reason.ANSWER_LIMIT_REACHED, f"{kind} answer for {detection.label!r} ({detection.id}) reached "
                                                    f"max_new_tokens ({self.estimator.max_new_tokens}) without [SEG]")
            else:
                self.report(Reason.ANSWER_WITHOUT_SEG, f"{kind} answer for {detection.label!r} ({detection.id}) ended "
                                                  "without [SEG]")

    def markers(self, processed: Processed, settings: ProcessingSettings) -> MarkerArray:
        """RViz markers of a processed pair (see ``markers.py``), in ``settings.markers_frame_id``;
        object points from depth and the posed bodies (namespace ``posed_body``, coloured by
        the largest contact over the person's objects) stay in their optical frame.
        Separate from :meth:`process` so the node can publish the interactions first: the
        markers of a full body mesh take tens of milliseconds to convert and publish."""
        message, result, people, scene = processed
        depth_frames = [i.object_affordance.header.frame_id for i in message.interactions
                        if i.object_affordance.geometry_source == "depth"]
        depth_frames += [i.human_contact.contact_points.header.frame_id for i in message.interactions
                         if i.human_contact.contact_points.width]
        camera_frame = depth_frames[0] if depth_frames else message.header.frame_id
        body = self.estimator.body
        header = Header(stamp=message.header.stamp, frame_id=settings.markers_frame_id)
        markers = self.marker_builder.build(header, result.interactions, body.vertices, body.faces,
                                            result.weights_are_random, camera_frame,
                                            scene.placed_by_contact() if scene is not None else None)
        posed = [p for p in (people.persons if people is not None else ()) if p.posed is not None]
        optical = Header(stamp=message.header.stamp, frame_id=message.persons[0].header.frame_id
                         if message.persons else camera_frame)
        for index, person in enumerate(posed):
            maps = [i.human_contact.vertex_probabilities for i in result.interactions
                    if i.person is not None and i.person.id == person.detection.id and i.human_contact is not None
                    and i.human_contact.body_model == person.posed.body_model]
            contact = np.max(maps, axis=0) if maps else None
            markers.markers.append(self.marker_builder.posed_body_marker(optical, index, person.posed.vertices,
                                                                         person.posed.faces, contact))
        return markers
