"""Offline replay of a ROS 2 bag through the pipeline: ``interactvlm-ros replay IN_BAG OUT_BAG``.

Unlike the node, replay drops nothing: every detections message is paired with the image of
its stamp (exact, or nearest within ``slop``) and processed, or reported with the reason
(no image with that stamp, no valid detection, undecodable image, inference error). The
output bag (mcap by default) holds ``/interactvlm/interactions`` (InteractionArray, stamped
with the image) and ``/interactvlm/markers``; its connections carry the message definitions,
so standard tools (rosbags, ros2 bag, Foxglove) can read it.

Bags are read and written with ``rosbags``; messages are (de)serialised with rclpy so that the
same processing code as the node's runs on them.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from interactvlm_msgs.msg import InteractionArray
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2DArray

from ..eval.bags import project_typestore
from .images import ImageRejected
from .processing import FrameProcessor, ProcessingSettings, stamp_ns

IMAGE_TYPES = {"sensor_msgs/msg/Image": Image, "sensor_msgs/msg/CompressedImage": CompressedImage}
DETECTIONS_TYPE = "vision_msgs/msg/Detection2DArray"
INTERACTIONS_TOPIC = "/interactvlm/interactions"
MARKERS_TOPIC = "/interactvlm/markers"


@dataclass
class ReplayResult:
    """What happened to every input.

    Attributes:
        counts: by outcome ("processed", and one key per reason an input was not used).
        records: one dict per detections message: stamp_ns, outcome, detection ids.
        outputs: (stamp_ns, InteractionArray, pipeline EstimateResult) per processed pair.
        images: stamp_ns -> (H, W, 3) uint8 RGB of the first ``keep_images`` processed pairs
            (for figures).
    """

    counts: Counter = field(default_factory=Counter)
    records: list[dict] = field(default_factory=list)
    outputs: list = field(default_factory=list)
    images: dict = field(default_factory=dict)


def _pick(connections, wanted_types, topic: str | None, what: str):
    candidates = [c for c in connections if c.msgtype in wanted_types]
    if topic is not None:
        candidates = [c for c in candidates if c.topic == topic]
    topics = sorted({c.topic for c in candidates})
    if len(topics) != 1:
        available = ", ".join(sorted(f"{c.topic} ({c.msgtype})" for c in connections)) or "none"
        raise ValueError(f"need exactly one {what} topic{f' named {topic}' if topic else ''}; "
                         f"found {topics or 'none'} among: {available}")
    return [c for c in candidates if c.topic == topics[0]]


def check_inputs(in_bag: str | Path, out_bag: str | Path, image_topic: str | None = None,
                 detections_topic: str | None = None) -> None:
    """Fail fast, before any model is loaded: the output must not exist and the input must
    have exactly one image and one detections topic (or the named ones).

    Raises:
        ValueError: see above.
    """
    from rosbags.highlevel import AnyReader

    if Path(out_bag).exists():
        raise ValueError(f"output bag {out_bag} exists; choose a new path")
    with AnyReader([Path(in_bag)]) as reader:
        _pick(reader.connections, IMAGE_TYPES, image_topic, "image")
        _pick(reader.connections, {DETECTIONS_TYPE}, detections_topic, "detections")


def replay(in_bag: str | Path, out_bag: str | Path, estimator, settings: ProcessingSettings,
           image_topic: str | None = None, detections_topic: str | None = None, slop_ns: int = 0,
           geometries=None, storage: str = "mcap", progress: bool = True, keep_images: int = 6) -> ReplayResult:
    """Run every (image, detections) pair of ``in_bag`` through ``estimator`` into ``out_bag``.

    Args:
        in_bag: a ROS 2 bag (folder with metadata.yaml, or an .mcap / .db3 file).
        out_bag: the bag to write (must not exist).
        estimator: a loaded ``InteractionEstimator``; settings: detection filtering etc.
        image_topic / detections_topic: needed only when the bag has several candidates.
        slop_ns: largest stamp difference paired (0: exact).
        geometries: optional callable (stamp_ns, detection_id) -> geometry override or None
            (e.g. a dataset's object point cloud).
        storage: "mcap" or "sqlite3".
        keep_images: how many processed images to keep in the result (figures).

    Raises:
        ValueError: the topics cannot be chosen, or the output exists.
    """
    from rosbags.highlevel import AnyReader
    from rosbags.rosbag2 import StoragePlugin, Writer
    from tqdm import tqdm

    out_bag = Path(out_bag)
    if out_bag.exists():
        raise ValueError(f"output bag {out_bag} exists; choose a new path")
    result = ReplayResult()
    # Answers without [SEG] are processed (no mask); everything else reported was not used.
    processor = FrameProcessor(estimator, lambda reason, detail: result.counts.update(
        [reason if reason.startswith("answer_") else f"skipped:{reason}"]))
    typestore = project_typestore()
    with AnyReader([Path(in_bag)]) as reader:
        image_connections = _pick(reader.connections, IMAGE_TYPES, image_topic, "image")
        detection_connections = _pick(reader.connections, {DETECTIONS_TYPE}, detections_topic, "detections")
        image_type = IMAGE_TYPES[image_connections[0].msgtype]
        pending: dict[int, list[Detection2DArray]] = {}
        for _, _, raw in reader.messages(connections=detection_connections):
            msg = deserialize_message(bytes(raw), Detection2DArray)
            pending.setdefault(stamp_ns(msg.header.stamp), []).append(msg)
        total = sum(c.msgcount for c in image_connections)
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        with Writer(out_bag, version=Writer.VERSION_LATEST if hasattr(Writer, "VERSION_LATEST") else 9,
                    storage_plugin=plugin) as writer:
            interactions = writer.add_connection(INTERACTIONS_TOPIC, "interactvlm_msgs/msg/InteractionArray",
                                                 typestore=typestore)
            markers = writer.add_connection(MARKERS_TOPIC, "visualization_msgs/msg/MarkerArray", typestore=typestore)
            for _, _, raw in tqdm(reader.messages(connections=image_connections), total=total, unit="image",
                                  desc="replay", disable=not progress):
                image = deserialize_message(bytes(raw), image_type)
                stamp = stamp_ns(image.header.stamp)
                matches = [s for s in pending if abs(s - stamp) <= slop_ns]
                for match in sorted(matches, key=lambda s: abs(s - stamp))[:1]:
                    for detections in pending.pop(match):
                        _process(processor, settings, image, detections, stamp, geometries, result, writer,
                                 interactions, markers)
                if result.outputs and result.outputs[-1][0] == stamp and len(result.images) < keep_images:
                    result.images[stamp] = processor.decode(image)
    for stamp, left in sorted(pending.items()):
        for detections in left:
            result.counts["no_image_with_this_stamp"] += 1
            result.records.append({"stamp_ns": stamp, "outcome": "no_image_with_this_stamp",
                                   "detections": [d.id for d in detections.detections]})
    return result


def _process(processor, settings, image, detections, stamp, geometries, result, writer, interactions, markers):
    ids = [d.id for d in detections.detections]
    record = {"stamp_ns": stamp, "detections": ids}
    before = Counter(result.counts)
    try:
        overrides = None
        if geometries is not None:
            overrides = {i: g for i in ids if (g := geometries(stamp, i)) is not None}
        output = processor.process(image, detections, settings, geometries=overrides)
    except ImageRejected as error:
        result.counts[f"image_rejected:{error.reason}"] += 1
        record["outcome"] = f"image_rejected:{error.reason}"
        result.records.append(record)
        return
    except Exception as error:  # noqa: BLE001 - reported per input, replay goes on
        result.counts["inference_error"] += 1
        record.update(outcome="inference_error", error=repr(error))
        result.records.append(record)
        return
    skipped = {k: v - before.get(k, 0) for k, v in result.counts.items() if v - before.get(k, 0)}
    if output is None:
        record["outcome"] = "no_valid_detection"
        record["skipped"] = skipped
        result.counts["no_valid_detection"] += 1
        result.records.append(record)
        return
    message, estimate = output
    writer.write(interactions, stamp, serialize_message(message))
    if settings.markers:
        writer.write(markers, stamp, serialize_message(processor.markers(message, estimate, settings)))
    result.counts["processed"] += 1
    record.update(outcome="processed", skipped=skipped, inference_ms=round(message.inference_ms, 1))
    result.records.append(record)
    result.outputs.append((stamp, message, estimate))


def write_summary(path: Path, result: ReplayResult, in_bag, out_bag, model_id: str, weights_are_random: bool) -> None:
    """JSON account of every input (what was processed, what was not and why)."""
    path.write_text(json.dumps({
        "input_bag": str(in_bag), "output_bag": str(out_bag), "model_id": model_id,
        "weights_are_random": weights_are_random, "counts": dict(result.counts), "inputs": result.records,
    }, indent=2))


def read_interactions(bag: str | Path) -> list[InteractionArray]:
    """Every InteractionArray of a bag written by :func:`replay`, in order."""
    from rosbags.highlevel import AnyReader

    with AnyReader([Path(bag)]) as reader:
        connections = [c for c in reader.connections if c.topic == INTERACTIONS_TOPIC]
        return [deserialize_message(bytes(raw), InteractionArray) for _, _, raw in reader.messages(connections)]

