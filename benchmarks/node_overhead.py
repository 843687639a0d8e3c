#!/usr/bin/env python3
"""Node overhead and behaviour under a fast camera, on loopback, with the node in its own
process (as on a robot: the camera driver and interactvlm_node are separate processes).

1. Overhead: end-to-end latency (detections published -> InteractionArray received) minus the
   pipeline's own time (InteractionArray.inference_ms), for 640x480 rgb8 images, with the tiny
   checkpoint, markers off, on with every output (markers_max_rate 0) and on at 0.5 Hz.
   Markers are published after the interactions, so they delay the *next* pair when the worker
   is still publishing them; pairs are sent one after the other's output here, about as often
   as the tiny CPU model answers (~3 Hz), which the default 2 Hz limit barely thins. Target:
   median overhead under 5 ms with markers off.
2. A 30 Hz camera with a slow model (the "small" random preset, ~200 MB): the output rate
   should equal the model rate, and latency should not grow over the run (newest pair only).

Random weights: timing only.

    python benchmarks/node_overhead.py [--frames 40] [--seconds 15] [--render-size 256]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", "57")
# Raw 640x480 images between two processes need a shared-memory segment larger than Fast DDS's
# default (launch/config/fastdds_large_images.xml explains); both processes use this profile.
os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(
    Path(__file__).resolve().parents[1] / "launch" / "config" / "fastdds_large_images.xml"))

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from interactvlm_msgs.msg import InteractionArray  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

from interactvlm_ros.detection import Detection  # noqa: E402
from interactvlm_ros.localize.tiny import write_tiny_checkpoint  # noqa: E402
from interactvlm_ros.ros.bags import detections_msg, image_msg  # noqa: E402


def messages(stamp_ns: int, image: np.ndarray):
    """An rgb8 image and its detections (one cup), built with the project's message builders."""
    return (image_msg(image, stamp_ns, "camera"),
            detections_msg([Detection("cup", (280.0, 200.0, 360.0, 280.0), 0.9, "cup-1")], stamp_ns, "camera"))


class Camera:
    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("bench_camera", context=self.context)
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.images = self.node.create_publisher(Image, "image", qos)
        self.detections = self.node.create_publisher(Detection2DArray, "detections", qos)
        self.received: list[tuple[float, InteractionArray]] = []
        self.node.create_subscription(InteractionArray, "/interactvlm_node/interactions",
                                      lambda m: self.received.append((time.perf_counter(), m)), 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        while not self._stop.is_set() and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def close(self):
        # Joined before the executor goes: a thread still in rclpy's wait at interpreter exit aborts
        # the process ("terminate called without an active exception").
        self._stop.set()
        self._thread.join(timeout=10)
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def start_node(parameters: dict, log: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "interactvlm_ros.ros.node", "--ros-args"]
    for key, value in parameters.items():
        args += ["-p", f"{key}:={str(value).lower() if isinstance(value, bool) else value}"]
    return subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_connected(camera: Camera, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (camera.images.get_subscription_count() and camera.detections.get_subscription_count()
                and camera.node.count_publishers("/interactvlm_node/interactions")):
            return
        time.sleep(0.1)
    raise RuntimeError("interactvlm_node did not come up; see its log")


def key(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def overhead(camera: Camera, image: np.ndarray, frames: int) -> list[float]:
    values, sent = [], {}
    for _ in range(frames):
        image_msg, dets = messages(time.time_ns(), image)
        camera.images.publish(image_msg)
        time.sleep(0.01)
        count = len(camera.received)
        sent[key(image_msg)] = time.perf_counter()
        camera.detections.publish(dets)
        deadline = time.perf_counter() + 60
        while len(camera.received) == count and time.perf_counter() < deadline:
            time.sleep(0.0005)
        if len(camera.received) > count:
            arrival, msg = camera.received[-1]
            if key(msg) in sent:
                values.append((arrival - sent[key(msg)]) * 1e3 - msg.inference_ms)
    return values[1:]  # the first frame renders the object's views


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--render-size", type=int, default=256)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="interactvlm-bench-"))
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    common = {"render_size": args.render_size, "cache_dir": str(work / "cache"), "diagnostics_period": 1.0}
    camera = Camera()
    print(f"640x480 rgb8 images, render {args.render_size}px, node in its own process; weights are RANDOM")
    try:
        for label, markers, rate in (("off", False, 0.0), ("on, every output", True, 0.0),
                                     ("on, at most 0.5 Hz", True, 0.5)):
            node = start_node({**common, "use_tiny_checkpoint": True, "publish_markers": markers,
                               "markers_max_rate": rate}, work / f"node-markers-{markers}-{rate}.log")
            try:
                wait_connected(camera)
                values = overhead(camera, image, args.frames)
            finally:
                node.terminate()
                node.wait(timeout=30)
            model_ms = statistics.median(m.inference_ms for _, m in camera.received[-len(values):])
            print(f"tiny model ({model_ms:.0f} ms per image), markers {label}: overhead median "
                  f"{statistics.median(values):6.2f} ms, p90 {np.percentile(values, 90):6.2f} ms over "
                  f"{len(values)} frames (target: median < 5 ms with markers off)")

        small = write_tiny_checkpoint(work / "small", preset="small")
        node = start_node({**common, "contact_checkpoint_dir": str(small), "affordance_checkpoint_dir": str(small),
                           "clip_dir": str(small / "clip"), "publish_markers": False}, work / "node-small.log")
        try:
            wait_connected(camera)
            warm = overhead(camera, image, 5)  # warm up (object renders, SAM embeddings)
            model_ms = statistics.median(m.inference_ms for _, m in camera.received[-4:])
            camera.received.clear()
            sent, frame, start = {}, 0, time.perf_counter()
            while time.perf_counter() - start < args.seconds:
                image_msg, dets = messages(time.time_ns(), image)
                camera.images.publish(image_msg)
                sent[key(image_msg)] = time.perf_counter()
                camera.detections.publish(dets)
                frame += 1
                time.sleep(max(0.0, start + frame / 30.0 - time.perf_counter()))
            time.sleep(2 * model_ms / 1e3)
        finally:
            node.terminate()
            node.wait(timeout=30)
        latencies = [(t - sent[key(m)]) * 1e3 for t, m in camera.received if key(m) in sent]
        half = len(latencies) // 2
        print(f"small model ({model_ms:.0f} ms per image, {len(warm)} warm-up frames), 30 Hz camera for "
              f"{args.seconds:.0f} s: {frame} frames sent ({frame / args.seconds:.1f} Hz), {len(latencies)} outputs, "
              f"output rate {len(latencies) / args.seconds:.2f} Hz vs model rate {1e3 / model_ms:.2f} Hz")
        print(f"  latency median first half {statistics.median(latencies[:half]):.0f} ms, second half "
              f"{statistics.median(latencies[half:]):.0f} ms (a queue would make the second much larger)")
    finally:
        camera.close()


if __name__ == "__main__":
    main()
