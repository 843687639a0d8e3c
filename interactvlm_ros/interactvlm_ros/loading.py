"""Building an :class:`~interactvlm_ros.pipeline.InteractionEstimator` from settings named as
the node's parameters (:mod:`.config`), so the node, rosbag replay and the demo load models,
body and objects the same way. No ROS imports.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Mapping

from .config import BY_NAME, default_settings, expectation, refusal


class ConfigurationError(ValueError):
    """A configuration that cannot be loaded, with the parameter and value responsible.

    The message is one line: ``"<parameter> = <value>: <cause>"``; ``cause`` is the original
    exception (also chained as ``__cause__``).
    """

    def __init__(self, parameter: str, value: Any, cause: BaseException):
        text = " ".join(str(cause).split()) or type(cause).__name__
        super().__init__(f"{parameter} = {value!r}: {type(cause).__name__}: {text}")
        self.parameter, self.value, self.cause = parameter, value, cause


class _Step:
    """Context: an exception in the block becomes a ConfigurationError naming the parameter.

    ``only``: the exception types this parameter answers for (others pass through), for the
    inner of nested steps: ``with _Step("render_size", size), _Step("cache_dir", d,
    only=(RenderCacheError,)):`` names cache_dir for the cache's errors and render_size for
    the rest. A ConfigurationError (named by an inner step) passes through unchanged.
    """

    def __init__(self, parameter: str, value: Any, only: tuple[type[BaseException], ...] = (Exception,)):
        self.parameter, self.value, self.only = parameter, value, only

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if isinstance(error, self.only) and not isinstance(error, ConfigurationError):
            raise ConfigurationError(self.parameter, self.value, error) from error
        return False


def build_estimator(settings: Mapping[str, Any], log=print):
    """Load models, body, object map and render cache as configured.

    Args:
        settings: parameter values by name (missing names take their defaults), checked
            against the table (``config.refusal``).
        log: called with one line of text for the user (e.g. the RANDOM WEIGHTS warning).

    Returns:
        (estimator, keepalive): keep ``keepalive`` (a temporary directory holding a tiny
        checkpoint, or None) alive as long as the estimator.

    Raises:
        ConfigurationError: a value outside the table's types / ranges / choices, or anything
            that cannot be loaded; its message names the parameter at fault, its value (the
            path) and the cause (a missing file, a checkpoint that does not match, a CLIP tower
            that does not, a malformed object map or mesh, a refused pickle, a cache directory
            that cannot be written, quantisation off CUDA, too little GPU memory...), and the
            original exception is its ``cause``.
    """
    from .geometry.body import load_body_model
    from .geometry.objects import ObjectLibrary
    from .geometry.smpl import load_conversion_matrix
    from .localize.builder import ClipTowerError, load_mvloc
    from .localize.quantization import QuantizationError
    from .multiview import load_official_body_views
    from .pipeline import SCENE_VIEW_TYPES, InteractionEstimator
    from .render.cache import RenderCache, RenderCacheError, default_cache_dir

    for name, value in settings.items():
        parameter = BY_NAME.get(name)
        if parameter is None:
            raise ConfigurationError(name, value, ValueError("not a parameter (`interactvlm-ros params` lists them)"))
        if refusal(parameter, value) is not None:
            raise ConfigurationError(name, value, ValueError(f"expected {expectation(parameter)}"))
    s = {**default_settings(), **settings}
    device, dtype = s["device"], s["dtype"]
    device_map, max_memory = s["device_map"], s["max_memory"]
    # Each input is checked in a step of its own before the steps that use it, so that an
    # error names the parameter at fault: devices before any checkpoint, the cache before
    # the renders. Errors the library can only find while loading come typed (quantisation,
    # CLIP tower, cache) and are named by nested steps (``only``).
    from .localize.placement import check_devices_exist, gpu_budgets, parse_device_map, parse_max_memory

    with _Step("device", device):
        check_devices_exist([device])
    with _Step("device_map", device_map):
        parsed = parse_device_map(device_map) if device_map else None
        if parsed == "auto":
            gpu_budgets({})  # refuses when there is no CUDA device
        else:
            check_devices_exist(parsed.values() if parsed else [])
    with _Step("max_memory", max_memory):
        memory = parse_max_memory(max_memory) if max_memory else {}
        if memory and parsed != "auto":
            raise ValueError("max_memory applies to device_map auto only")
        check_devices_exist(memory)
    body_name = s["body_model"]
    # The folder is read for SMPL-H only (the open body ships with the package).
    with _Step(*(("body_model_dir", s["body_model_dir"]) if body_name == "smplh" else ("body_model", body_name))):
        body = load_body_model(body_name, s["body_model_dir"] or None)
    matrix = None
    with _Step("contact_topology", s["contact_topology"]):
        if s["contact_topology"] == "smplx" and body_name != "smplh":
            raise ValueError("SMPL-X contact is converted from SMPL-H: set body_model smplh")
    if s["contact_topology"] == "smplx":
        with _Step("smplx_conversion_matrix", s["smplx_conversion_matrix"]):
            if not s["smplx_conversion_matrix"]:
                raise FileNotFoundError("contact_topology smplx needs smplx_conversion_matrix (an SMPL-H -> SMPL-X "
                                        "matrix)")
            matrix = load_conversion_matrix(s["smplx_conversion_matrix"])
    with _Step("object_mesh_map", s["object_mesh_map"]):
        objects = (ObjectLibrary.from_yaml(s["object_mesh_map"]) if s["object_mesh_map"]
                   else ObjectLibrary(use_default_proxies=s["use_default_proxies"]))
    size = int(s["render_size"])
    official = s["official_body_assets_dir"]
    with _Step("official_body_assets_dir", official):
        body_views = load_official_body_views(official, body.num_vertices, image_size=size) if official else None
    with _Step("scene_contact", s["scene_contact"]):
        if s["scene_contact"] and not (s["use_tiny_checkpoint"] or s["contact_checkpoint_dir"]):
            raise ValueError("scene contact is human contact: set contact_checkpoint_dir (InteractVLM's "
                             "interactvlm-3d-hcontact-wScene-damon-lemon-rich)")
    with _Step("compile_decode", s["compile_decode"]):
        if s["compile_decode"] and s["decode_cache"] != "static":
            raise ValueError("compile_decode needs decode_cache static (the dynamic cache changes shape every step)")
    cache = RenderCache(s["cache_dir"] or default_cache_dir())
    with _Step("cache_dir", s["cache_dir"]):
        cache.check()
    # The models last: checking everything else first fails fast, before minutes of loading.
    keepalive = None
    quantization = _Step("quantization", s["quantization"], only=(QuantizationError,))
    if s["use_tiny_checkpoint"]:
        from .localize.tiny import write_tiny_checkpoint

        with _Step("use_tiny_checkpoint", True), quantization:
            keepalive = tempfile.TemporaryDirectory(prefix="interactvlm-tiny-")
            variant = s["tiny_checkpoint_variant"]
            tiny = write_tiny_checkpoint(Path(keepalive.name) / f"tiny-random-{variant}", variant=variant)
            contact = affordance = load_mvloc(tiny, tiny / "clip", device, dtype, s["quantization"], device_map,
                                              max_memory)
            if contact.spec.multiview_channels == 1:  # the 2D model has no object views
                affordance = None
        log("use_tiny_checkpoint: the model has RANDOM weights; outputs are meaningless")
    else:
        contact_dir, affordance_dir = s["contact_checkpoint_dir"], s["affordance_checkpoint_dir"]
        if not (contact_dir or affordance_dir):
            raise ConfigurationError("contact_checkpoint_dir", contact_dir, FileNotFoundError(
                "no model: set contact_checkpoint_dir and/or affordance_checkpoint_dir (or use_tiny_checkpoint "
                "for a random plumbing model)"))
        clip = s["clip_dir"] or None

        def load(parameter, checkpoint):
            with _Step(parameter, checkpoint), quantization, _Step("clip_dir", s["clip_dir"], only=(ClipTowerError,)):
                return load_mvloc(checkpoint, clip, device, dtype, s["quantization"], device_map, max_memory)

        contact = load("contact_checkpoint_dir", contact_dir) if contact_dir else None
        affordance = contact if affordance_dir == contact_dir else (
            load("affordance_checkpoint_dir", affordance_dir) if affordance_dir else None)
        with _Step("affordance_checkpoint_dir", affordance_dir):
            if affordance is not None and affordance.spec.multiview_channels == 1:
                raise ValueError(f"{affordance.model_id} is a 2D model (multiview_channels 1): it segments the camera "
                                 "image, not object views; set it as contact_checkpoint_dir")
        random = sorted({m.model_id for m in (contact, affordance) if m is not None and m.weights_are_random})
        if random:
            log(f"checkpoint {', '.join(random)} has RANDOM weights (make-tiny-checkpoint); outputs are meaningless")
    for model in {id(m): m for m in (contact, affordance) if m is not None}.values():
        model.decode_cache, model.compile_decode = s["decode_cache"], s["compile_decode"]
    if s["vision_backend"] != "torch":
        _use_onnx(s, contact, affordance, keepalive)
    if s["scene_contact"]:
        if not contact.weights_are_random and contact.config.get("hC_sam_view_type") not in SCENE_VIEW_TYPES:
            log(f"scene_contact: {contact.model_id} was not trained on scene contact (its hC_sam_view_type is "
                f"{contact.config.get('hC_sam_view_type')!r}, not one of {', '.join(SCENE_VIEW_TYPES)}); its "
                "\"scene\" answers are outside its training")
    # Every input the estimator checks was checked above (its errors would be bugs, not settings).
    estimator = InteractionEstimator(contact, affordance, body, objects, cache=cache, render_size=size,
                                     threshold=float(s["threshold"]), max_new_tokens=int(s["max_new_tokens"]),
                                     body_views=body_views, smplx_matrix=matrix,
                                     max_label_length=int(s["max_label_length"]))
    # Body renders (OpenGL) and their SAM embeddings; writing them to the cache may still fail.
    with _Step("render_size", size), _Step("cache_dir", s["cache_dir"], only=(RenderCacheError,)):
        estimator.warm_up()
    return estimator, keepalive


def build_people(settings: Mapping[str, Any], log=print):
    """The people stage as configured (``body.people.PeopleEstimator``), or None with
    ``body_pose_source: none``. Cheap next to :func:`build_estimator` (the open body, or SMPL-H
    from ``body_model_dir``, and BlazePose's graph): call it first, so that a missing mediapipe
    fails before minutes of model loading.

    Args:
        settings: parameter values by name (missing names take their defaults).
        log: called with one line of text for the user.

    Raises:
        ConfigurationError: naming ``body_pose_source`` (unknown source, mediapipe not
            installed: the message gives the install command, a machine the wheel does not
            exist for), ``body_model_dir`` (no SMPL-H model there) or ``max_posed_persons``.
    """
    from .body.fit import BodyFitter
    from .body.people import PeopleEstimator
    from .body.pose_source import make_pose_source
    from .body.skinning import OpenBodyRig, SmplhRig
    from .geometry.body import load_body_model

    s = {**default_settings(), **settings}
    source = make_pose_source(s["body_pose_source"])
    if source is None:
        return None
    body_name = s["body_model"]
    try:
        with _Step(*(("body_model_dir", s["body_model_dir"]) if body_name == "smplh" else ("body_model", body_name))):
            body = load_body_model(body_name, s["body_model_dir"] or None)
            rig = SmplhRig(s["body_model_dir"]) if body_name == "smplh" else OpenBodyRig.load()
        with _Step("max_posed_persons", s["max_posed_persons"]):
            people = PeopleEstimator(source, BodyFitter(rig), body, int(s["max_posed_persons"]))
    except BaseException:
        source.close()
        raise
    if s["contact_topology"] == "smplx":
        log("contact_topology smplx: the persons' bodies are posed as SMPL-H; HumanContact's posed fields stay empty "
            "for SMPL-X contact maps")
    return people


def _use_onnx(s: Mapping[str, Any], contact, affordance, keepalive) -> None:
    """The vision backend of each model (see ``vision_backend`` in :mod:`.config`).

    ``onnxruntime``: the graphs of each model's export directory (``<checkpoint>/onnx`` unless
    the ``*_onnx_dir`` parameter names one). The tiny checkpoint's graphs are exported at the
    first use (about 20 s) into ``<cache_dir>/onnx/`` and reused while their fingerprints match
    (the tiny checkpoint of a variant is the same every time).

    ``auto``: onnxruntime for a model whose ``*_onnx_dir`` is set, or whose CLIP and SAM run on
    the CPU and whose ``<checkpoint>/onnx`` holds an export (on the CPU onnxruntime measured
    faster for every stage: docs/performance.md); torch otherwise (on a GPU it is not measured).
    The tiny checkpoint stays in torch. An export that does not belong to the checkpoint is an
    error either way."""
    from .localize.onnx_vision import MANIFEST, export_onnx, load_vision_modules
    from .render.cache import default_cache_dir

    backend = s["vision_backend"]
    engines = Path(s["cache_dir"] or default_cache_dir()) / "tensorrt"
    if contact is not None and contact is affordance and s["affordance_onnx_dir"] != s["contact_onnx_dir"]:
        raise ConfigurationError("affordance_onnx_dir", s["affordance_onnx_dir"], ValueError(
            "the contact and affordance checkpoints are the same model: set contact_onnx_dir only (or both alike)"))
    done = set()
    for parameter, model, checkpoint in (("contact_onnx_dir", contact, s["contact_checkpoint_dir"]),
                                         ("affordance_onnx_dir", affordance, s["affordance_checkpoint_dir"])):
        if model is None or id(model) in done:
            continue
        done.add(id(model))
        if s["use_tiny_checkpoint"]:
            if backend == "auto":
                continue
            variant = s["tiny_checkpoint_variant"]
            directory = Path(s["cache_dir"] or default_cache_dir()) / "onnx" / f"tiny-random-{variant}"
            with _Step("vision_backend", "onnxruntime"):
                try:
                    model.use_onnx(directory, engines)
                except (FileNotFoundError, ValueError):  # not exported yet, or by another version
                    tiny = Path(keepalive.name) / f"tiny-random-{variant}"
                    export_onnx(load_vision_modules(tiny, tiny / "clip"), directory, log=lambda line: None)
                    model.use_onnx(directory, engines)
            continue
        directory = s[parameter] or str(Path(checkpoint) / "onnx")
        if backend == "auto" and not s[parameter]:
            on_cpu = all(model.device_map[block] == "cpu" for block in ("vision_tower", "sam"))
            if not (on_cpu and (Path(directory) / MANIFEST).is_file()):
                continue
        with _Step(parameter, directory):
            model.use_onnx(directory, engines)
