"""Render-Localize-Lift in one call: an RGB image and its detections in, per detection the
human contact on the body's vertices and the affordance on the object's geometry out.

No ROS imports: the node (``interactvlm_ros.ros``), rosbag replay and the benchmarks all call
:meth:`InteractionEstimator.estimate`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch

from .association import Association, associate
from .detection import Detection
from .geometry.camera import BODY_VIEWS, OBJECT_CONDITIONING_DIST, OBJECT_VIEWS
from .geometry.mesh import TriangleMesh
from .handover import CLEARANCE_DISTANCE, NoContactError, check_task, grasp_clearance
from .geometry.objects import ObjectGeometry, ObjectLibrary, PointCloudGeometry
from .localize.predictor import MAX_NEW_TOKENS, MVLoc
from .localize.prompts import (HUMAN_CONTACT_2D_PROMPT, HUMAN_CONTACT_PROMPT, IMAGE_TOKEN, MAX_LABEL_LENGTH, OBJECT_AFFORDANCE_PROMPT,
                               OBJECT_CONTACT_PROMPT, object_name, parse_answer)
from .multiview import PreparedViews, prepare_body_views, prepare_object_views, prepare_point_views
from .render.views import POINT_VIEWS
from .render.cache import RenderCache
from .render.views import Renderer


#: The class name InteractVLM's scene-contact training data uses for "the scene" (floor,
#: seats, walls: RICH, ``datasets/hcontactScene_3d.py``).
SCENE_LABEL = "scene"
#: ``hC_sam_view_type`` of the scene-contact model's training: "4MV-Z_Vitru_wScene" in its
#: training script, renamed "4MV-Z_Vitru_FootGround" in InteractVLM's code since (same cameras
#: as "4MV-Z_Vitru"; the contact labels include foot-ground contact).
SCENE_VIEW_TYPES = ("4MV-Z_Vitru_FootGround", "4MV-Z_Vitru_wScene")


#: Start of the note an object gets under ``task: handover`` without a grasp clearance (the ROS
#: layer counts those notes as ``no_object_contact_for_handover``).
HANDOVER_NOTE = "task handover: "


@dataclass(frozen=True)
class HumanContactResult:
    """Contact on the body, conditioned on one object.

    Attributes:
        body_model: "smplh", "smplx" or "anny"; vertex_probabilities: (V,) float32 in [0, 1];
        contact_vertices: (K,) int64 ids with probability >= threshold, ascending;
        threshold: the decision threshold; body_parts: parts named in the answer;
        answer: the model's text; has_mask: False when the answer produced no [SEG] (then all
        probabilities are 0); stop_reason: "seg", "eos" or "max_new_tokens" (see
        ``localize.predictor.Answer``).
        image_probabilities: for InteractVLM's 2D contact model, (H, W) float32 contact
            probability per pixel of the source image (sigmoid of SAM's mask logits; 0 outside
            the region the model was shown); body_model is then "" and the vertex arrays
            empty. None for 3D models.
        contact_points, contact_point_probabilities: (N, 3) float32 metres in the camera's
            optical frame and (N,) float32: the pixels of ``image_probabilities`` >= threshold
            back-projected with registered depth (filled by the caller that has depth, e.g.
            ``ros.processing``; see ``geometry.depth.contact_points_from_depth``), else None.
    """

    body_model: str
    vertex_probabilities: np.ndarray
    contact_vertices: np.ndarray
    threshold: float
    body_parts: tuple[str, ...]
    answer: str
    has_mask: bool
    stop_reason: str = "seg"
    image_probabilities: np.ndarray | None = None
    contact_points: np.ndarray | None = None
    contact_point_probabilities: np.ndarray | None = None


@dataclass(frozen=True)
class ObjectAffordanceResult:
    """Affordance on one object's geometry.

    Attributes:
        geometry_source: "mesh:<uri>" or "proxy:<shape>"; points: (N, 3) float32 vertices in
        the object's own frame (metres); probabilities: (N,) float32 in [0, 1]; threshold;
        affordance: the affordance word of the answer ("" if none); answer; has_mask;
        stop_reason: as for :class:`HumanContactResult`.
        contact: (N,) float32 in [0, 1], where the human touches the object in this image (the
            joint model's object-contact answer), or None when no model estimates it or its
            answer had no mask token (see ``contact_stop_reason``).
            Object *contact* is what happens now; *affordance* where an interaction would
            touch the object.
        contact_answer, contact_stop_reason: that answer's text and stop reason ("" without).
        grasp_clearance: (N,) float32 in [0, 1] for task "handover" (see
            ``handover.grasp_clearance``: 1 = at least ``clearance_distance`` from every point of
            human contact), None otherwise.
    """

    geometry_source: str
    points: np.ndarray
    probabilities: np.ndarray
    threshold: float
    affordance: str
    answer: str
    has_mask: bool
    stop_reason: str = "seg"
    contact: np.ndarray | None = None
    contact_answer: str = ""
    contact_stop_reason: str = ""
    grasp_clearance: np.ndarray | None = None


@dataclass(frozen=True)
class InteractionResult:
    """Everything estimated for one detection; a part is None when its model is not loaded
    or (affordance) no geometry is known for the class, with the reason in ``notes``.

    Attributes:
        person: the person detection associated with the object (see :mod:`.association`),
            None when there is none or the whole image was used by choice.
        image_region: (x0, y0, x1, y1) integer pixel bounds of the image region the models
            were shown (the whole image: (0, 0, W, H)).
    """

    detection: Detection
    human_contact: HumanContactResult | None
    object_affordance: ObjectAffordanceResult | None
    notes: tuple[str, ...] = ()
    person: Detection | None = None
    image_region: tuple[int, int, int, int] | None = None


@dataclass
class EstimateResult:
    """Output of one :meth:`InteractionEstimator.estimate` call.

    Attributes:
        interactions: one per detection, input order.
        timings_ms: wall time per stage (milliseconds), summed over detections.
        weights_are_random: True if any model used has random weights (outputs meaningless).
        model_id: see :attr:`InteractionEstimator.model_id`.
    """

    interactions: list[InteractionResult]
    timings_ms: dict[str, float] = field(default_factory=dict)
    weights_are_random: bool = False
    model_id: str = ""


class _Timer:
    def __init__(self, timings: dict[str, float]):
        self.timings = timings

    def __call__(self, stage: str):
        timer = self

        class _Stage:
            def __enter__(self):
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                elapsed = (time.perf_counter() - self.start) * 1e3
                timer.timings[stage] = timer.timings.get(stage, 0.0) + elapsed

        return _Stage()


class InteractionEstimator:
    """Runs RLL for the detections of an image.

    Args:
        contact_model: an MV-Loc human-contact checkpoint (None: no human contact).
        affordance_model: an MV-Loc object-affordance checkpoint (None: no affordance); may be
            the same object as ``contact_model``.
        body: the body mesh rendered and lifted to (see ``geometry.body.load_body_model``).
        objects: class -> object geometry.
        renderer: shared renderer (one is created if None); cache: disk cache of renders.
        render_size: S of the renders and of the lifted masks (InteractVLM: 1024).
        threshold: decision threshold of the reported contact vertices (InteractVLM: 0.5).
        max_new_tokens: generation limit per answer (InteractVLM's 512; generation stops
            earlier at [SEG]).
        body_views: prepared body views to use instead of rendering ``body`` (e.g. the
            official InteractVLM assets from ``multiview.load_official_body_views``).
        smplx_matrix: optional (10475, 6890) SMPL-H -> SMPL-X matrix; contact is then
            reported on SMPL-X.
        max_label_length: longest detection label accepted (see :meth:`validate_label`).
        batch_detections: generate the answers of all detections (and questions) of an image
            in one batch per model (``MVLoc.generate_batch``: same answers, faster); False:
            one at a time.

    Raises:
        ValueError: neither model given, a 2D model as affordance model, a threshold outside
            [0, 1], body views or an SMPL-X matrix that do not match the body.
    """

    def __init__(self, contact_model: MVLoc | None, affordance_model: MVLoc | None, body: TriangleMesh,
                 objects: ObjectLibrary, renderer: Renderer | None = None, cache: RenderCache | None = None,
                 render_size: int = 1024, threshold: float = 0.5, max_new_tokens: int = MAX_NEW_TOKENS,
                 body_views: PreparedViews | None = None, smplx_matrix=None,
                 max_label_length: int = MAX_LABEL_LENGTH, batch_detections: bool = True):
        if contact_model is None and affordance_model is None:
            raise ValueError("at least one of the human-contact and object-affordance models is needed")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
        if affordance_model is not None and affordance_model.spec.multiview_channels == 1:
            raise ValueError(f"{affordance_model.model_id} is a 2D model (multiview_channels 1): it segments the camera "
                             "image, not object views; use it as the contact model")
        self.contact_model = contact_model
        self.affordance_model = affordance_model
        self.body = body
        self.objects = objects
        self.renderer = renderer or Renderer()
        self.cache = cache
        self.render_size = int(render_size)
        self.threshold = float(threshold)
        self.max_new_tokens = int(max_new_tokens)
        self.max_label_length = int(max_label_length)
        self.batch_detections = bool(batch_detections)
        self.smplx_matrix = smplx_matrix
        if smplx_matrix is not None and (body.name != "smplh" or smplx_matrix.shape[1] != body.num_vertices):
            raise ValueError(f"an SMPL-H -> SMPL-X matrix of shape {smplx_matrix.shape} needs the SMPL-H body "
                             f"({body.num_vertices}-vertex {body.name!r} given)")
        self._body_views = body_views
        if body_views is not None and body_views.lifter.num_targets != body.num_vertices:
            raise ValueError(f"body views lift to {body_views.lifter.num_targets} vertices, the body has "
                             f"{body.num_vertices}")
        self._object_views: dict[str, PreparedViews] = {}
        self._embeddings: dict[tuple[int, int], torch.Tensor] = {}

    @property
    def models(self) -> list[MVLoc]:
        return [m for m in dict.fromkeys([self.contact_model, self.affordance_model]) if m is not None]

    @property
    def weights_are_random(self) -> bool:
        return any(m.weights_are_random for m in self.models)

    @property
    def model_id(self) -> str:
        """The models' ids: one when a single model serves both tasks or only one is loaded,
        else "<contact model>+<affordance model>"."""
        return "+".join(dict.fromkeys(m.model_id for m in (self.contact_model, self.affordance_model) if m is not None))

    @property
    def reserved_tokens(self) -> tuple[str, ...]:
        """Strings no label may contain: ``<image>`` and every added or special token of the
        models' tokenizers (``[SEG]``, ``<im_start>``, ``<im_end>``, ``<s>``, ``</s>``...)."""
        tokens = {IMAGE_TOKEN}
        for model in self.models:
            tokens.update(model.tokenizer.added_tokens)
            tokens.update(model.tokenizer.all_special_tokens)
        return tuple(sorted(tokens))

    def validate_label(self, label: str) -> str:
        """The object name a detection label becomes in the prompts (see
        ``localize.prompts.object_name``), checked against :attr:`max_label_length` and
        :attr:`reserved_tokens`.

        Raises:
            Rejected: reason ``invalid_label`` with what is wrong.
        """
        return object_name(label, self.max_label_length, self.reserved_tokens)

    @property
    def body_model_name(self) -> str:
        return "smplx" if self.smplx_matrix is not None else self.body.name

    def body_views(self) -> PreparedViews:
        """The body's prepared views (rendered or loaded once)."""
        if self._body_views is None:
            self._body_views = prepare_body_views(self.body, self.renderer, self.cache, BODY_VIEWS, self.render_size)
        return self._body_views

    def object_views(self, geometry: ObjectGeometry | PointCloudGeometry) -> PreparedViews:
        """A mesh's prepared object views (rendered or loaded once per mesh), or a point
        cloud's splat views (rendered for every call: clouds change with every frame)."""
        if isinstance(geometry, PointCloudGeometry):
            return prepare_point_views(geometry.normalized(), self.renderer, POINT_VIEWS, self.render_size)
        normalized = geometry.normalized()
        key = normalized.content_hash()
        if key not in self._object_views:
            self._object_views[key] = prepare_object_views(normalized, self.renderer, self.cache, OBJECT_VIEWS,
                                                           self.render_size)
        return self._object_views[key]

    def _view_embeddings(self, model: MVLoc, prepared: PreparedViews) -> torch.Tensor:
        return self._views_embeddings(model, [prepared])[0]

    def _views_embeddings(self, model: MVLoc, views: Sequence[PreparedViews]) -> list[torch.Tensor]:
        """SAM image embeddings (V, C, h, w) of each prepared view set. Body and mesh views live
        as long as the estimator (held in _body_views / _object_views), so they are encoded once
        and kept; point-cloud views are new every call (a depth cloud per detection and frame):
        those of all detections are encoded in one SAM batch."""
        kept = (self._body_views, *self._object_views.values())
        unique = [p for p in {id(p): p for p in views}.values() if (id(model), id(p)) not in self._embeddings]
        fresh = [p for p in unique if not any(p is k for k in kept)]
        for prepared in (p for p in unique if any(p is k for k in kept)):
            self._embeddings[(id(model), id(prepared))] = model.image_embeddings(prepared.images)
        encoded = {}
        if fresh:
            embeddings = model.image_embeddings(np.concatenate([p.images for p in fresh]))
            sizes = np.cumsum([0] + [len(p.images) for p in fresh])
            encoded = {id(p): embeddings[sizes[i]:sizes[i + 1]] for i, p in enumerate(fresh)}
        return [self._embeddings.get((id(model), id(p)), encoded.get(id(p))) for p in views]

    def warm_up(self) -> None:
        """Prepare the body views and their SAM embeddings now instead of on the first image."""
        if self.contact_model is not None and not self.contact_is_2d:
            self._view_embeddings(self.contact_model, self.body_views())

    def _generate(self, questions) -> dict:
        """Answers to (model, image features, question, key) tuples, by key: one
        ``generate_batch`` per model (all detections and questions of the image at once), or
        one ``generate`` per question when :attr:`batch_detections` is off."""
        answers = {}
        for model in self.models:
            mine = [q for q in questions if q[0] is model]
            if self.batch_detections:
                batch = model.generate_batch([(f, q) for _, f, q, _ in mine], self.max_new_tokens)
            else:
                batch = [model.generate(f, q, self.max_new_tokens) for _, f, q, _ in mine]
            answers.update({key: answer for (_, _, _, key), answer in zip(mine, batch)})
        return answers

    def _lifted_masks(self, masks, answers: dict, timer: _Timer) -> dict:
        """Per key, the answer's masks on its prepared views lifted to their vertices / points
        (None without a mask token). ``masks``: (key, model, prepared views, views, camera
        distance) tuples; with :attr:`batch_detections` the answers of one model and kind of
        view are decoded in one SAM decoder call."""
        groups: dict[tuple, list] = {}
        for job in masks:
            key, model, prepared, views, dist = job
            group = (id(model), dist) if self.batch_detections else (key,)
            groups.setdefault(group, []).append(job)
        lifted = {}
        for jobs in groups.values():
            _, model, _, views, dist = jobs[0]
            with_mask = [job for job in jobs if answers[job[0]].seg_embedding is not None]
            lifted.update({job[0]: None for job in jobs})
            if not with_mask:
                continue
            with timer("sam_encode"):
                embeddings = self._views_embeddings(model, [job[2] for job in with_mask])
            logits = model.answers_masks([answers[job[0]] for job in with_mask], embeddings,
                                         model.cameras(list(views), dist), self.render_size, timer.timings)
            with timer("lift"):
                for job, job_logits in zip(with_mask, logits):
                    lifted[job[0]] = job[2].lift(job_logits)
        return lifted

    def estimate(self, image: np.ndarray, detections: Sequence[Detection],
                 geometries: Mapping[str, ObjectGeometry | PointCloudGeometry] | None = None,
                 threshold: float | None = None, persons: Sequence[Detection] = (),
                 image_region: str = "person_object", region_margin: float = 0.1,
                 scene_contact: bool = False, task: str = "",
                 clearance_distance: float = CLEARANCE_DISTANCE) -> EstimateResult:
        """Human contact and object affordance for every detection of one image.

        Each object detection is associated with a person detection and the models see the
        square region around the pair (see :mod:`.association`); without a person detection
        (or with ``image_region`` "full") they see the whole image, as in InteractVLM's demo.

        Args:
            image: (H, W, 3) uint8 RGB.
            detections: the objects to reason about.
            geometries: per detection id, geometry overriding the class map: a mesh
                (``ObjectGeometry``) or a point cloud (``PointCloudGeometry``, lifted with
                the point-cloud variant onto its points).
            threshold: decision threshold of the reported contact vertices, in [0, 1]; None:
                the estimator's ``threshold``.
            persons: the person detections of the image (never estimated themselves).
            image_region: "person_object" or "full" (see :func:`.association.associate`).
            region_margin: margin around the pair's boxes, a fraction of their union's longer
                side (>= 0).
            scene_contact: also estimate each person's contact with the scene (floor, seat,
                wall: the class name "scene" of InteractVLM's RICH training data, answered by
                its ``interactvlm-3d-hcontact-wScene-damon-lemon-rich`` model), one result per
                person detection in that person's region, after the objects' results; one
                for the whole image when there is no person or ``image_region`` is "full"
                (every person would see the same image); see :meth:`scene_detections`.
            task: "" (the models' maps) or "handover": object results also carry
                ``grasp_clearance`` when the object-side model estimates object contact
                (:attr:`estimates_object_contact`; otherwise a note says it is missing).
            clearance_distance: metres at which a point is fully clear of the human's contact
                (see ``handover.grasp_clearance``).

        Raises:
            ValueError: an image that is not (H, W, 3) uint8, a threshold outside [0, 1], an
                unknown ``image_region``, a negative margin, ``scene_contact`` without a
                human-contact model, an unsupported ``task`` or a non-positive
                ``clearance_distance``.
            Rejected: a detection label that cannot be used (see :meth:`validate_label`);
                nothing is estimated then.
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
        threshold = self.threshold if threshold is None else float(threshold)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
        if scene_contact and self.contact_model is None:
            raise ValueError("scene_contact needs a human-contact model")
        check_task(task)
        if not clearance_distance > 0.0:
            raise ValueError(f"clearance_distance must be > 0, got {clearance_distance}")
        names = [self.validate_label(d.label) for d in detections]
        height, width = image.shape[:2]
        associations = associate(detections, persons, width, height, image_region, region_margin)
        if scene_contact:  # a scene pseudo-detection has its person's box: that person, their region
            scene_persons = persons if image_region == "person_object" else ()
            scenes = self.scene_detections(scene_persons, width, height)
            associations += associate(scenes, scene_persons, width, height, image_region, region_margin)
            names += [SCENE_LABEL] * len(scenes)
        timings: dict[str, float] = {}
        timer = _Timer(timings)
        start = time.perf_counter()
        features: dict[tuple[int, tuple[int, int, int, int]], torch.Tensor] = {}

        def image_features(model: MVLoc, association: Association) -> torch.Tensor:
            # CLIP features once per model and distinct region (the whole image: once).
            key = (id(model), association.region)
            if key not in features:
                x0, y0, x1, y1 = association.region
                with timer("image_encode"):
                    features[key] = model.encode_image(np.ascontiguousarray(image[y0:y1, x0:x1]))
            return features[key]

        # 1. Every question of every detection, per model; 2. the answers (one batch per model
        # unless batch_detections is off); 3. masks, lifting and results per detection.
        questions: list[tuple[MVLoc, torch.Tensor, str, tuple[int, str]]] = []
        object_geometry = {}
        for index, (association, name) in enumerate(zip(associations, names)):
            if self.contact_model is not None:
                prompt = HUMAN_CONTACT_2D_PROMPT if self.contact_is_2d else HUMAN_CONTACT_PROMPT
                questions.append((self.contact_model, image_features(self.contact_model, association),
                                  prompt.format(object=name), (index, "contact")))
            detection = association.detection
            # The scene has no geometry of its own: human contact only.
            if self.affordance_model is not None and index < len(detections):
                geometry = (geometries or {}).get(detection.id) or self.objects.get(detection.label)
                if geometry is None:
                    continue
                with timer("render"):
                    object_geometry[index] = (geometry, self.object_views(geometry))
                object_features = image_features(self.affordance_model, association)
                questions.append((self.affordance_model, object_features, OBJECT_AFFORDANCE_PROMPT.format(object=name),
                                  (index, "affordance")))
                if self.object_contact_model is not None:
                    questions.append((self.object_contact_model, image_features(self.object_contact_model, association),
                                      OBJECT_CONTACT_PROMPT.format(object=name), (index, "object_contact")))
        with timer("generate"):
            answers = self._generate(questions)
        # Masks on the views, decoded in one batch per model and kind of view, then lifted.
        masks = []
        if self.contact_model is not None and not self.contact_is_2d:
            with timer("render"):
                body_views = self.body_views()
            masks += [(key, self.contact_model, body_views, BODY_VIEWS, None) for key in answers if key[1] == "contact"]
        for index, (_, prepared) in object_geometry.items():
            masks += [((index, kind), model, prepared, OBJECT_VIEWS, OBJECT_CONDITIONING_DIST)
                      for kind, model in (("affordance", self.affordance_model),
                                          ("object_contact", self.object_contact_model)) if (index, kind) in answers]
        lifted = self._lifted_masks(masks, answers, timer)
        results = []
        sam_embeddings: dict[tuple[int, int, int, int], tuple] = {}
        for index, (association, name) in enumerate(zip(associations, names)):
            detection = association.detection
            notes = []
            if image_region == "person_object" and association.person is None:
                notes.append("no person detection in the image: the whole image was used")
            contact = affordance = None
            if self.contact_model is not None:
                answer = answers[(index, "contact")]
                contact = (self._image_contact(answer, image, association.region, threshold, timer, sam_embeddings)
                           if self.contact_is_2d else self._human_contact(answer, lifted[(index, "contact")],
                                                                          threshold))
            if index in object_geometry:
                affordance = self._affordance(object_geometry[index][0], answers, lifted, index, threshold, task,
                                              clearance_distance)
                if task == "handover" and affordance.grasp_clearance is None:
                    notes.append(self._no_clearance_note(affordance))
            elif self.affordance_model is not None and index < len(detections):
                notes.append(f"no mesh or proxy for class {detection.label!r}: affordance skipped")
            elif task == "handover" and index < len(detections):
                notes.append(self._no_clearance_note(None))
            results.append(InteractionResult(detection, contact, affordance, tuple(notes), association.person,
                                             association.region))
        timings["total"] = (time.perf_counter() - start) * 1e3
        return EstimateResult(results, timings, self.weights_are_random, self.model_id)

    @staticmethod
    def scene_detections(persons: Sequence[Detection], width: int, height: int) -> list[Detection]:
        """The pseudo-detections scene contact is estimated for: per person detection one with
        label "scene", the person's box and score and id ``"scene/<person id>"``; without
        persons one for the whole image, id "scene"."""
        if not persons:
            return [Detection(SCENE_LABEL, (0.0, 0.0, float(width), float(height)), 1.0, SCENE_LABEL)]
        return [Detection(SCENE_LABEL, p.bbox_xyxy, p.score, f"{SCENE_LABEL}/{p.id}") for p in persons]

    @property
    def contact_is_2d(self) -> bool:
        """Whether the human-contact model is InteractVLM's 2D model (``multiview_channels``
        1: SAM segments the camera image itself, no body views)."""
        return self.contact_model is not None and self.contact_model.spec.multiview_channels == 1

    def _image_contact(self, answer, image: np.ndarray, region: tuple[int, int, int, int],
                       threshold: float, timer: _Timer, sam_embeddings: dict) -> HumanContactResult:
        """2D human contact on the region of ``image`` the model was shown, as a per-pixel
        probability map of the whole image (0 outside the region). ``sam_embeddings`` caches
        SAM's embedding of each region for the image (detections sharing a region share it)."""
        x0, y0, x1, y1 = region
        crop = np.ascontiguousarray(image[y0:y1, x0:x1])
        if answer.seg_embedding is not None and region not in sam_embeddings:
            with timer("sam_encode"):
                sam_embeddings[region] = self.contact_model.image_embedding(crop)
        logits = self.contact_model.image_answer_masks(answer, crop, timer.timings, sam_embeddings.get(region))
        probabilities = np.zeros(image.shape[:2], np.float32)
        if logits is not None:  # sigmoid of SAM's mask logits, pasted back at the region
            probabilities[y0:y1, x0:x1] = torch.sigmoid(logits.float()).cpu().numpy()
        return _contact_result(answer, "", np.zeros(0, np.float32), threshold, probabilities)

    def _human_contact(self, answer, probabilities: np.ndarray | None, threshold: float) -> HumanContactResult:
        if probabilities is None:
            probabilities = np.zeros(self.body_views().lifter.num_targets, np.float32)
        if self.smplx_matrix is not None:
            from .geometry.smpl import smplh_to_smplx

            probabilities = smplh_to_smplx(probabilities, self.smplx_matrix)
        return _contact_result(answer, self.body_model_name, probabilities, threshold)

    def _no_clearance_note(self, affordance: ObjectAffordanceResult | None) -> str:
        """The note (starting with :data:`HANDOVER_NOTE`) of an object without grasp clearance."""
        if affordance is not None and affordance.contact is not None:
            why = (f"no point of the object-contact map reaches the threshold {affordance.threshold:g} (largest "
                   f"{float(affordance.contact.max(initial=0.0)):.3f}): the person's hold on the object was not found")
        elif affordance is not None and affordance.contact_stop_reason:
            why = f"the object-contact answer ended without a mask ({affordance.contact_stop_reason})"
        elif self.affordance_model is None:
            why = "no affordance model is loaded (objects need one for their geometry)"
        else:
            why = (f"{self.affordance_model.model_id} does not estimate the human's contact on the object "
                   "(InteractVLM's joint model does)")
        return f"{HANDOVER_NOTE}no grasp clearance: {why}"

    @property
    def object_contact_model(self) -> MVLoc | None:
        """The model that answers where the human touches an object now ([OSEG] of its
        object-contact question): InteractVLM's joint model, as affordance model or else as
        contact model (objects need an affordance model for their geometry); None without."""
        if self.affordance_model is None:
            return None
        joint = [m for m in (self.affordance_model, self.contact_model) if m is not None and m.spec.has_splitter]
        return joint[0] if joint else None

    @property
    def estimates_object_contact(self) -> bool:
        """Whether object results carry the human's contact on the object (see
        :attr:`object_contact_model`)."""
        return self.object_contact_model is not None

    def _affordance(self, geometry: ObjectGeometry | PointCloudGeometry, answers: dict, lifted: dict, index: int,
                    threshold: float, task: str, clearance_distance: float) -> ObjectAffordanceResult:
        answer, contact_answer = answers[(index, "affordance")], answers.get((index, "object_contact"))
        probabilities = lifted[(index, "affordance")]
        points = np.asarray(geometry.points if isinstance(geometry, PointCloudGeometry) else geometry.mesh.vertices,
                            np.float32)
        if probabilities is None:
            probabilities = np.zeros(len(points), np.float32)
        contact = clearance = None
        contact_stop = ""
        if contact_answer is not None:
            # No mask token: no contact map at all (zeros would claim "untouched" and make the
            # clearance 1 everywhere, the unsafe answer for a handover).
            contact = lifted[(index, "object_contact")]
            contact_stop = contact_answer.stop_reason
            if contact is not None and task == "handover":
                try:
                    clearance = grasp_clearance(points, contact, threshold, clearance_distance)
                except NoContactError:  # the person's hold was not found: no clearance (noted)
                    clearance = None
        parsed = parse_answer(answer.text)
        return ObjectAffordanceResult(
            geometry_source=geometry.source,
            points=points,
            probabilities=probabilities,
            threshold=threshold,
            affordance=parsed.affordance,
            answer=answer.text,
            has_mask=answer.seg_embedding is not None,
            stop_reason=answer.stop_reason,
            contact=contact,
            contact_answer=contact_answer.text if contact_answer is not None else "",
            contact_stop_reason=contact_stop,
            grasp_clearance=clearance,
        )


def _contact_result(answer, body_model: str, vertex_probabilities: np.ndarray, threshold: float,
                    image_probabilities: np.ndarray | None = None) -> HumanContactResult:
    """A :class:`HumanContactResult` of one answer and its lifted (or 2D) probabilities."""
    return HumanContactResult(
        body_model=body_model,
        vertex_probabilities=vertex_probabilities,
        contact_vertices=np.flatnonzero(vertex_probabilities >= np.float32(threshold)),
        threshold=threshold,
        body_parts=parse_answer(answer.text).body_parts,
        answer=answer.text,
        has_mask=answer.seg_embedding is not None,
        stop_reason=answer.stop_reason,
        image_probabilities=image_probabilities,
    )
