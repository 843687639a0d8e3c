"""The people stage: every person detection of an image becomes a body posed in the image's
optical frame, and the interactions take what they need from it. No ROS imports.

Per person detection (:meth:`PeopleEstimator.estimate`): the pose source's landmarks
(:mod:`.pose_source`) -> placed in metres (:func:`.placement.place_person`: registered depth,
or PnP with the CameraInfo intrinsics) -> the contact body posed to them (:class:`.fit.BodyFitter`,
warm-started per detection id). A person that stops short at any step keeps what was found
and the reason (:attr:`PersonEstimate.rejection`); the rest of the frame goes on.

Per interaction (:func:`with_people`): the object's ``grasp_clearance`` under ``task:
handover`` also comes from the posed person (``handover.body_clearance``: distance to the
person's hands and contact vertices), combined with the joint model's object-contact clearance
by the elementwise minimum (``handover.combined_clearance``). The body clearance needs the
object's points in the optical frame (registered depth); objects in their model frame are
placed in a later stage.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..detection import Detection
from ..geometry.body_parts import part_vertex_ids
from ..geometry.depth import DepthFrame, Intrinsics
from ..geometry.mesh import TriangleMesh
from ..handover import NoBodyPointsError, body_clearance, combined_clearance
from ..reasons import Reason, Rejected
from .fit import BodyFitter, PosedBody
from .landmarks import PersonLandmarks
from .placement import Placement, place_person
from .pose_source import BodyPoseSource

#: Default of ``max_posed_persons``: person detections posed per image (the highest-scoring).
MAX_POSED_PERSONS = 5

#: Body parts whose posed vertices are "the person's hands" of the body clearance.
HAND_PARTS = ("left hand", "right hand")


@dataclass(frozen=True, eq=False)
class PersonEstimate:
    """One person detection through the people stage.

    Attributes:
        detection: the person detection (box: xyxy pixels of the full image).
        landmarks: the pose source's landmarks, None when it found none.
        placement: the landmarks in metres in the optical frame, None when not placed.
        posed: the contact body posed to the placement, None when not posed.
        rejection: why the person stopped short (``reason``: a :class:`~..reasons.Reason`,
            ``detail``), None when posed.
    """

    detection: Detection
    landmarks: PersonLandmarks | None = None
    placement: Placement | None = None
    posed: PosedBody | None = None
    rejection: Rejected | None = None

    @property
    def placement_method(self) -> str:
        """``Placement.method``, "" when not placed."""
        return self.placement.method if self.placement is not None else ""


@dataclass
class PeopleResult:
    """Output of :meth:`PeopleEstimator.estimate`.

    Attributes:
        persons: one per person detection given, input order.
        timings_ms: milliseconds per step summed over persons: "body_pose", "placement",
            "body_fit".
    """

    persons: list[PersonEstimate]
    timings_ms: dict[str, float] = field(default_factory=dict)

    def posed(self, detection_id: str) -> PersonEstimate | None:
        """The estimate of the person detection ``detection_id`` if its body was posed, else None."""
        return next((p for p in self.persons if p.detection.id == detection_id and p.posed is not None), None)


class PeopleEstimator:
    """Poses the body the contact maps are on to every person detection of an image.

    Args:
        source: the body pose source (``pose_source.make_pose_source``).
        fitter: poses ``body``'s rig (``BodyFitter(OpenBodyRig.load())`` for the open body,
            ``BodyFitter(SmplhRig(...))`` for SMPL-H).
        body: the body the contact maps are on (``InteractionEstimator.body``): its vertex
            count and name must be the fitter's, its part labels give the hands.
        max_persons: person detections posed per image, >= 1: the highest-scoring; the others
            are reported ``persons_over_limit``.

    Raises:
        ValueError: a fitter of another body model or vertex count than ``body``, a body
            without part labels, ``max_persons`` < 1.
    """

    def __init__(self, source: BodyPoseSource, fitter: BodyFitter, body: TriangleMesh,
                 max_persons: int = MAX_POSED_PERSONS):
        rig_vertices = len(fitter.rig.rest_vertices)
        if fitter.body_model != body.name or rig_vertices != body.num_vertices:
            raise ValueError(f"the fitter poses the {rig_vertices}-vertex {fitter.body_model!r} body, the contact maps "
                             f"are on the {body.num_vertices}-vertex {body.name!r} body")
        if body.part_labels is None:
            raise ValueError(f"the {body.name!r} body has no part labels (its hands are needed)")
        if int(max_persons) != max_persons or max_persons < 1:
            raise ValueError(f"max_persons must be an integer >= 1, got {max_persons}")
        self.source = source
        self.fitter = fitter
        self.body = body
        self.max_persons = int(max_persons)
        self.part_vertex_ids = part_vertex_ids(body.part_labels, body.part_names)
        self.hand_vertex_ids = np.concatenate([self.part_vertex_ids[name] for name in HAND_PARTS])

    @property
    def body_model(self) -> str:
        return self.fitter.body_model

    def estimate(self, rgb: np.ndarray, persons: Sequence[Detection], depth: DepthFrame | None = None,
                 intrinsics: Intrinsics | None = None, stamp: float | None = None) -> PeopleResult:
        """Pose every person detection (module docstring).

        Args:
            rgb: (H, W, 3) uint8 image.
            persons: the person detections (boxes xyxy, pixels).
            depth: registered depth of the image (its intrinsics are used), or None.
            intrinsics: the colour camera's intrinsics (CameraInfo) when there is no depth, or
                None (then nobody is placed: ``no_camera_info``).
            stamp: the image's time, seconds (warm starts expire by it); None: monotonic time.

        Returns:
            :class:`PeopleResult`; a person that stops short carries its rejection, with one
            of the reasons ``persons_over_limit``, ``person_box_too_small``,
            ``no_person_found``, ``bad_camera_info`` (intrinsics of another size than the
            image), ``no_camera_info``, ``too_few_landmarks``, ``no_depth_at_landmarks``,
            ``person_behind_camera``, ``person_too_far``.

        Raises:
            ValueError: ``rgb`` not (H, W, 3) uint8.
        """
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"rgb must be (H, W, 3) uint8, got {rgb.dtype} {rgb.shape}")
        height, width = rgb.shape[:2]
        if depth is not None:
            intrinsics = None  # the registered depth's own (place_person)
        camera_problem = None
        if intrinsics is not None and (intrinsics.width, intrinsics.height) != (width, height):
            camera_problem = Rejected(Reason.BAD_CAMERA_INFO, f"CameraInfo of a {intrinsics.width}x{intrinsics.height} "
                                                              f"image for a {width}x{height} image")
        chosen = set(sorted(range(len(persons)), key=lambda i: -persons[i].score)[: self.max_persons])
        timings = {"body_pose": 0.0, "placement": 0.0, "body_fit": 0.0}
        out = []
        for index, person in enumerate(persons):
            if index not in chosen:
                out.append(PersonEstimate(person, rejection=Rejected(
                    Reason.PERSONS_OVER_LIMIT, f"person {person.id!r}: more than max_posed_persons "
                                               f"({self.max_persons}) person detections in the image")))
                continue
            out.append(self._one(rgb, person, depth, intrinsics, camera_problem, stamp, timings))
        return PeopleResult(out, timings)

    def _one(self, rgb, person: Detection, depth, intrinsics, camera_problem, stamp, timings) -> PersonEstimate:
        landmarks = placement = None
        try:
            start = time.perf_counter()
            try:
                landmarks = self.source.estimate(rgb, person.bbox_xyxy, person.id)
            finally:
                timings["body_pose"] += (time.perf_counter() - start) * 1e3
            if camera_problem is not None:
                raise camera_problem
            start = time.perf_counter()
            try:
                placement = place_person(landmarks.image_xy, landmarks.visibility, landmarks.world_xyz, landmarks.box,
                                         depth, intrinsics)
            finally:
                timings["placement"] += (time.perf_counter() - start) * 1e3
            start = time.perf_counter()
            try:
                posed = self.fitter.fit(placement.camera_xyz, landmarks.visibility, person_id=person.id, stamp=stamp)
            finally:
                timings["body_fit"] += (time.perf_counter() - start) * 1e3
        except Rejected as error:
            named = error.detail.startswith(f"person {person.id!r}")
            detail = error.detail if named else f"person {person.id!r}: {error.detail}"
            return PersonEstimate(person, landmarks, placement, rejection=Rejected(error.reason, detail))
        return PersonEstimate(person, landmarks, placement, posed)

    def hand_points(self, posed: PosedBody) -> np.ndarray:
        """(H, 3) float32 the posed hands' vertices, metres in the optical frame."""
        return posed.vertices[self.hand_vertex_ids]

    def clearance(self, interaction, person: PersonEstimate | None, distance: float,
                  points: np.ndarray | None = None) -> tuple[np.ndarray | None, str]:
        """The clearance of one interaction's object points from its posed person.

        Args:
            interaction: a ``pipeline.InteractionResult`` with an object result.
            person: the associated person's estimate (None: no person associated).
            distance: metres, > 0 (``handover.body_clearance``).
            points: (N, 3) the object's points in the optical frame when a later stage placed
                them (``reconstruction.scene``); None: the result's own points, in the optical
                frame only when they come from depth.

        Returns:
            ((N,) float32 clearance, "") or (None, why there is none).
        """
        affordance, contact = interaction.object_affordance, interaction.human_contact
        if person is None:
            return None, "no person detection is associated with the object"
        if person.posed is None:
            return None, f"the person {person.detection.id!r} was not posed ({person.rejection.reason})"
        if points is None and affordance.geometry_source != "depth":
            return None, (f"the object's points ({affordance.geometry_source}) are in its model frame, not the camera's "
                          "(it has no depth, and it was not placed by contact)")
        points = affordance.points if points is None else points
        contact_points = np.zeros((0, 3), np.float32)
        if contact is not None and contact.image_probabilities is not None:
            if contact.contact_points is not None:  # 2D contact with depth: already in the optical frame
                contact_points = contact.contact_points
        elif contact is not None and contact.body_model == person.posed.body_model:
            contact_points = person.posed.vertices[contact.contact_vertices]
        try:
            return body_clearance(points, self.hand_points(person.posed), contact_points, distance), ""
        except NoBodyPointsError as error:
            return None, str(error)


def with_people(interactions: Sequence, people: PeopleResult, estimator: PeopleEstimator, task: str,
                distance: float, handover_note: str, placed: dict | None = None) -> list:
    """The interactions with their clearance from the posed person (module docstring).

    Under ``task`` "handover", for each object: the clearance from its associated person's posed
    body combined with the object-contact clearance (their elementwise minimum; the one that
    exists). The note starting with ``handover_note`` (the estimator's: no object-contact
    clearance) is dropped when the body gives a clearance and the object-side model does not
    estimate object contact; when that model's map failed (no mask, or no point at the
    threshold) the note stays, saying the clearance is the body's only; when neither gives a
    clearance the note also says why the body gave none. Other tasks: unchanged.

    Args:
        interactions: ``pipeline.InteractionResult`` list (objects, then scene pseudo-detections).
        people: this image's :class:`PeopleResult`; estimator: the stage that made it.
        task: "" or "handover"; distance: the clearance distance, metres.
        handover_note: ``pipeline.HANDOVER_NOTE``.
        placed: interaction index -> (N, 3) the object's points placed in the optical frame by a
            later stage (``reconstruction.scene``), for objects without depth.

    Returns:
        A new list; changed interactions are copies.
    """
    if task != "handover":
        return list(interactions)
    out = []
    for index, interaction in enumerate(interactions):
        affordance = interaction.object_affordance
        if affordance is None:
            out.append(interaction)
            continue
        person = interaction.person and next((p for p in people.persons if p.detection.id == interaction.person.id),
                                             None)
        from_body, why = estimator.clearance(interaction, person, distance, (placed or {}).get(index))
        clearance = combined_clearance(affordance.grasp_clearance, from_body)
        notes = list(interaction.notes)
        at = next((i for i, note in enumerate(notes) if note.startswith(handover_note)), None)
        if at is not None:
            failed_map = affordance.contact is not None or bool(affordance.contact_stop_reason)
            if from_body is None:
                notes[at] += f"; no clearance from the body either: {why}"
            elif failed_map:
                notes[at] = notes[at].replace("no grasp clearance:", "clearance from the posed body only:", 1)
            else:
                del notes[at]
        out.append(dataclasses.replace(interaction, notes=tuple(notes),
                                       object_affordance=dataclasses.replace(affordance, grasp_clearance=clearance)))
    return out
