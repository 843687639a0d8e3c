"""The scene stage: every object with a posed person put in the camera's optical frame, with its
proximity to the person and how well the two contact maps agree. No ROS imports.

Per object result (:meth:`SceneEstimator.estimate`), after the people stage
(``body.people``):

* points from registered depth (``geometry_source`` "depth") are in the optical frame already:
  placement ``depth``; with a posed person the joint fit's contact and penetration terms are
  evaluated as a check (:func:`.fields.consistency`), not fitted;
* a library mesh or proxy is placed by its contact with the posed person
  (:func:`.placement.place_object`: InteractVLM's joint-reconstruction objective with the
  detection box for the mask): placement ``contact_fit`` when the fit converges, else not placed
  (``fit_status`` says why, counted ``object_fit_failed``);
* with a placed object and a posed person, the proximity fields (:func:`.fields.proximity_fields`):
  per object point the distance to the body, per body vertex the distance to the object.

The object's contact map for the fit is the joint model's object contact where it exists, else
the affordance map (where an interaction would touch the object). Everything that cannot be done
is a counted reason (:attr:`ObjectInScene.rejection`); the interaction is still published with
what is known.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from ..geometry.depth import Intrinsics
from ..geometry.objects import ObjectLibrary
from ..reasons import Reason, Rejected
from .fields import EmptyContactError, consistency, proximity_fields
from .placement import NO_HUMAN_CONTACT, NO_OBJECT_CONTACT, PlacementSettings, place_object

#: The size factor a proxy may take in the contact fit: a proxy's size is the class's typical
#: size, not the object's (a user's mesh keeps its own size: (1, 1)).
PROXY_SCALE_RANGE = (0.75, 1.33)

#: Placements (``ObjectAffordance.placement``).
PLACED_BY_DEPTH = "depth"
PLACED_BY_CONTACT = "contact_fit"


@dataclass(frozen=True, eq=False)
class ObjectInScene:
    """One object result through the scene stage.

    Attributes:
        placement: :data:`PLACED_BY_DEPTH`, :data:`PLACED_BY_CONTACT` or "" (not placed).
        points: (N, 3) float32 metres in the optical frame, point i = the object result's point
            i; None when not placed.
        rotation: (3, 3) float64, translation (3,) float64 metres, scale: model frame -> optical
            frame (``scale * rotation @ p + translation``); identity, 0 and 1 unless placed by
            contact.
        fit_status: "" (no fit run), "converged", or the fit's reason and detail.
        contact_distance, penetration_depth: metres (``fields.Consistency`` of the placed
            object, or the fit's residuals); box_iou: the fit's; NaN when not computed.
        body_distance: (N,) float32 metres from each placed point to the posed body, or None;
        object_distance: (V,) float32 metres from each body vertex to the object, or None.
        rejections: what could not be done, each a counted reason.
    """

    placement: str = ""
    points: np.ndarray | None = None
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    scale: float = 1.0
    fit_status: str = ""
    contact_distance: float = float("nan")
    penetration_depth: float = float("nan")
    box_iou: float = float("nan")
    body_distance: np.ndarray | None = None
    object_distance: np.ndarray | None = None
    rejections: tuple[Rejected, ...] = ()


@dataclass
class SceneResult:
    """Output of :meth:`SceneEstimator.estimate`.

    Attributes:
        objects: interaction index -> :class:`ObjectInScene` (objects with an affordance
            result only).
        timings_ms: "object_fit" and "proximity", milliseconds summed over objects.
    """

    objects: dict[int, ObjectInScene]
    timings_ms: dict[str, float] = field(default_factory=dict)

    def placed_by_contact(self) -> dict[int, np.ndarray]:
        """Interaction index -> (N, 3) points of the objects placed by their contact, in the
        optical frame (their results' own points are in the model frame)."""
        return {index: placed.points for index, placed in self.objects.items()
                if placed.placement == PLACED_BY_CONTACT}


class SceneEstimator:
    """Places the objects of an image relative to its posed people (module docstring).

    Args:
        objects: the object library (the meshes and proxies the affordance results are on).
        settings: the contact fit's numbers (``placement.PlacementSettings``).
    """

    def __init__(self, objects: ObjectLibrary, settings: PlacementSettings | None = None):
        self.objects = objects
        self.settings = settings or PlacementSettings()

    def estimate(self, interactions: Sequence, people, intrinsics: Intrinsics | None,
                 image_size: tuple[int, int], fit: bool = True, geometries=None) -> SceneResult:
        """Place every object result of ``interactions``.

        Args:
            interactions: ``pipeline.InteractionResult`` list.
            people: the image's ``body.people.PeopleResult`` (None: nobody posed).
            intrinsics: the image's intrinsics (the registered depth's or the CameraInfo's);
                None: no contact fit (``no_camera_info``).
            image_size: (width, height) of the image, pixels.
            fit: run the contact fit of objects without depth (``place_objects``); False: they
                stay in their model frame, nothing counted.
            geometries: detection id -> the geometry the estimator used instead of the class's
                (``InteractionEstimator.estimate``'s overrides, e.g. a dataset's object mesh):
                the mesh the object's results are on, and so the one fitted.

        Returns:
            :class:`SceneResult`.
        """
        timings = {"object_fit": 0.0, "proximity": 0.0}
        out = {}
        for index, interaction in enumerate(interactions):
            if interaction.object_affordance is not None:
                out[index] = self._one(interaction, people, intrinsics, image_size, timings, fit, geometries or {})
        return SceneResult(out, timings)

    def _one(self, interaction, people, intrinsics, image_size, timings, fit, geometries) -> ObjectInScene:
        affordance, contact, detection = interaction.object_affordance, interaction.human_contact, interaction.detection
        person = people.posed(interaction.person.id) if people is not None and interaction.person else None
        body = person.posed if person is not None else None
        on_body = contact is not None and body is not None and contact.body_model == body.body_model
        object_contact = affordance.contact if affordance.contact is not None else affordance.probabilities
        rejections = []
        name = f"detection {detection.id!r} ({detection.label})"
        if affordance.geometry_source == "depth":
            scene = ObjectInScene(placement=PLACED_BY_DEPTH, points=affordance.points)
            if on_body:
                try:
                    agree = consistency(body.vertices, body.normals, contact.vertex_probabilities, affordance.points,
                                        object_contact)
                    scene = replace(scene, contact_distance=agree.contact_distance_m,
                                     penetration_depth=agree.penetration_m)
                except EmptyContactError as error:
                    rejections.append(Rejected(Reason.NO_CONTACT_REGION, f"{name}: {error}"))
        elif not fit:
            scene = ObjectInScene()
        else:
            scene, why = ObjectInScene(), self._unfit_why(interaction, person, on_body, intrinsics)
            geometry = geometries.get(detection.id) or self.objects.get(detection.label)
            mesh = getattr(geometry, "mesh", None)
            if why is None and (mesh is None or geometry.source != affordance.geometry_source
                                or len(mesh.vertices) != len(affordance.points)):
                why = f"its points ({affordance.geometry_source}) are not a mesh or proxy of the object library"
            if why is not None:
                rejections.append(Rejected(Reason.OBJECT_NOT_PLACED, f"{name}: {why}"))
            else:
                if _at_border(detection.bbox_xyxy, image_size):
                    rejections.append(Rejected(Reason.OBJECT_BOX_AT_BORDER, f"{name}: its box touches the image's "
                                                                            "border; the fit uses it as clipped"))
                scale = PROXY_SCALE_RANGE if geometry.source.startswith("proxy:") else (1.0, 1.0)
                start = time.perf_counter()
                fit = place_object(body.vertices, body.normals, contact.vertex_probabilities, geometry.mesh,
                                   object_contact, detection.bbox_xyxy, intrinsics, min_scale=scale[0],
                                   max_scale=scale[1], settings=self.settings)
                timings["object_fit"] += (time.perf_counter() - start) * 1e3
                if fit.converged:
                    scene = ObjectInScene(PLACED_BY_CONTACT, fit.vertices, fit.rotation, fit.translation, fit.scale,
                                          "converged", fit.contact_distance_m, fit.penetration_m, fit.box_iou)
                else:
                    scene = ObjectInScene(fit_status=f"{fit.reason}: {fit.detail}")
                    empty = fit.reason in (NO_HUMAN_CONTACT, NO_OBJECT_CONTACT)  # nothing to fit to
                    rejections.append(Rejected(Reason.NO_CONTACT_REGION if empty else Reason.OBJECT_FIT_FAILED,
                                               f"{name}: {fit.reason}: {fit.detail}"))
        if scene.points is not None and body is not None:
            start = time.perf_counter()
            fields = proximity_fields(body.vertices, scene.points)
            timings["proximity"] += (time.perf_counter() - start) * 1e3
            scene = replace(scene, body_distance=fields.object_to_body, object_distance=fields.body_to_object)
        return replace(scene, rejections=tuple(rejections))

    @staticmethod
    def _unfit_why(interaction, person, on_body: bool, intrinsics) -> str | None:
        """Why a mesh object cannot be fitted, or None."""
        if interaction.person is None:
            return "no person detection is associated with it"
        if person is None:
            return f"its person {interaction.person.id!r} was not posed"
        if not on_body:
            return "no human contact on the posed body (no 3D contact model, or contact on another topology)"
        if intrinsics is None:
            return "no CameraInfo for the image"
        return None


def _at_border(box, image_size, margin: float = 1.0) -> bool:
    """Whether a box (xyxy pixels) reaches within ``margin`` pixels of the image's border."""
    x0, y0, x1, y1 = box
    width, height = image_size
    return x0 <= margin or y0 <= margin or x1 >= width - margin or y1 >= height - margin
