"""The node's parameters: one table, read by the node (declarations with descriptors), by
``launch/config/interactvlm.yaml`` and by the launch-file test (every name in the YAML must be
declared here). No rclpy import: the table is plain data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Parameter:
    """A node parameter: name, default (its type is the parameter's type), description,
    whether it can change at run time, and an optional (min, max) range for numbers or the
    allowed values for strings."""

    name: str
    default: Any
    description: str
    read_only: bool = True
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] = ()


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("autostart", True, "configure and activate right after start (lifecycle transitions otherwise)"),
    # Model and assets (read at configure).
    Parameter("contact_checkpoint_dir", "", "InteractVLM human-contact checkpoint directory (e.g. "
              "interactvlm-3d-hcontact-damon); empty: no human contact"),
    Parameter("affordance_checkpoint_dir", "", "InteractVLM object-affordance checkpoint directory (e.g. "
              "interactvlm-3d-oafford-lemon-piad); empty: no affordance"),
    Parameter("clip_dir", "", "local copy of openai/clip-vit-large-patch14 (not part of InteractVLM checkpoints)"),
    Parameter("use_tiny_checkpoint", False, "ignore the checkpoint parameters and use a tiny checkpoint with "
              "RANDOM weights (plumbing only; outputs are flagged weights_are_random)"),
    Parameter("body_model", "anny", "body the contact is lifted to", choices=("anny", "smplh", "smplx")),
    Parameter("body_model_dir", "", "folder with SMPL-H / SMPL-X model files (smplh/SMPLH_NEUTRAL.npz...)"),
    Parameter("smplx_conversion_matrix", "", "SMPL-H -> SMPL-X matrix file (needed for body_model smplx)"),
    Parameter("official_body_assets_dir", "", "InteractVLM's data/hcontact_vitruvian (precomputed SMPL-H renders "
              "and lifting maps) to use instead of rendering the body; empty: render"),
    Parameter("object_mesh_map", "", "YAML file mapping detection classes to object meshes (see README)"),
    Parameter("use_default_proxies", True, "use primitive proxy meshes for common classes without a mesh"),
    Parameter("cache_dir", "", "render cache folder; empty: $XDG_CACHE_HOME/interactvlm_ros/renders"),
    Parameter("device", "cpu", "torch device, e.g. cuda:0"),
    Parameter("dtype", "float32", "model precision", choices=("float32", "bfloat16", "float16")),
    Parameter("quantization", "none", "8-bit or 4-bit (NF4) LLaMA decoder layers with bitsandbytes (CUDA only; "
              "pip install bitsandbytes)", choices=("none", "8bit", "4bit")),
    Parameter("device_map", "", "split each model over devices: '' (all on device), 'auto' (balanced over the "
              "CUDA devices by free memory) or 'block=device,...', e.g. 'sam=cuda:1,vision_tower=cuda:1' "
              "(unnamed blocks on device; see README)"),
    Parameter("max_memory", "", "with device_map auto: the devices to use and a cap on each one's parameters, "
              "e.g. 'cuda:0=20GiB,cuda:1=10GiB'; '': every visible GPU, free memory / 1.25"),
    Parameter("render_size", 1024, "render and mask resolution in pixels (InteractVLM: 1024)", range=(64, 2048)),
    Parameter("max_new_tokens", 512, "generation limit per answer (InteractVLM's 512; generation stops at [SEG] "
              "long before, so a large limit costs nothing; answers reaching it have no mask and are counted as "
              "answer_limit_reached)", range=(1, 2048)),
    Parameter("max_label_length", 64, "longest detection class label accepted, characters; longer labels, labels "
              "with characters outside letters/digits/space/_-'.,&+() or with the model's special tokens are "
              "dropped per detection (invalid_label)", range=(1, 256)),
    # Behaviour (may change at run time).
    Parameter("threshold", 0.5, "contact / affordance decision threshold", read_only=False, range=(0.0, 1.0)),
    Parameter("sync_slop", 0.0, "largest |image stamp - detections stamp| paired, seconds (0: exact)",
              read_only=False, range=(0.0, 1.0)),
    Parameter("image_buffer_size", 10, "images kept for pairing with later detections", range=(1, 100)),
    Parameter("min_image_size", 32, "images whose smaller side is below this (pixels) are dropped "
              "(image_too_small)", read_only=False, range=(1, 4096)),
    Parameter("max_detections", 5, "detections processed per image (highest scores first)", read_only=False,
              range=(1, 100)),
    Parameter("min_score", 0.0, "detections scoring lower are skipped", read_only=False, range=(0.0, 1.0)),
    Parameter("ignore_classes", [""], "detection classes never processed (e.g. person)", read_only=False),
    Parameter("publish_markers", True, "publish visualization_msgs/MarkerArray on ~/markers", read_only=False),
    Parameter("markers_max_rate", 2.0, "most marker publications per second, Hz (a body mesh costs ~45 ms "
              "to convert and publish, on the worker, after the interactions); 0: with every output",
              read_only=False, range=(0.0, 100.0)),
    Parameter("markers_frame_id", "interactvlm", "frame of the markers, a display frame independent of the "
              "camera (set RViz's Fixed Frame to it)", read_only=False),
    # Topics and QoS (read at activate).
    Parameter("image_topic", "image", "colour image topic (sensor_msgs/Image or CompressedImage)"),
    Parameter("use_compressed", False, "subscribe to sensor_msgs/CompressedImage (jpeg/png) on image_topic"),
    Parameter("detections_topic", "detections", "vision_msgs/Detection2DArray topic"),
    Parameter("image_qos", "sensor_data", "QoS profile of the image subscription",
              choices=("sensor_data", "reliable", "best_effort")),
    Parameter("image_qos_depth", 5, "history depth of the image subscription", range=(1, 100)),
    Parameter("detections_qos", "reliable", "QoS profile of the detections subscription",
              choices=("sensor_data", "reliable", "best_effort")),
    Parameter("diagnostics_period", 1.0, "seconds between /diagnostics messages", range=(0.1, 60.0)),
    Parameter("diagnostics_window", 30.0, "seconds of recent inputs the /diagnostics level is computed from "
              "(totals are reported too)", range=(1.0, 3600.0)),
    # Object geometry from depth.
    Parameter("use_depth", False, "subscribe to a registered depth image and its CameraInfo; object affordance "
              "is then estimated on the object's points in the camera optical frame"),
    Parameter("depth_topic", "depth", "registered depth image (16UC1 mm or 32FC1 m), aligned to the colour image"),
    Parameter("camera_info_topic", "camera_info", "sensor_msgs/CameraInfo of the colour (= registered depth) camera"),
    Parameter("geometry_preference", "depth", "with depth: use the depth points ('depth') or the class's mesh or "
              "proxy when there is one ('mesh')", read_only=False, choices=("depth", "mesh")),
    Parameter("depth_points", 2048, "points sampled from an object's depth (PIAD uses 2048)", read_only=False,
              range=(64, 20000)),
    Parameter("depth_cluster_gap", 0.05, "depth jump (metres) that separates an object from its background "
              "inside its box", read_only=False, range=(0.005, 1.0)),
)

BY_NAME = {p.name: p for p in PARAMETERS}
