#!/usr/bin/env python3
"""Soak test: does interactvlm_node's memory level off under a 30 Hz camera?

The node runs in its own process on loopback (as in benchmarks/node_overhead.py) with the tiny
RANDOM checkpoint, a small render size and markers on at their default rate; 640x480 rgb8
images and one or two detections per image are published at ``--rate`` Hz for ``--duration``
seconds. Every ``--sample`` seconds the node process's RSS (VmRSS, split into anonymous /
file / shared-memory pages from /proc/<pid>/status) is sampled together with the node's
``pairs_processed`` and ``images_received`` (from its /diagnostics). Each pair allocates and
frees tens of MiB, so RSS swings within a pair: the figures use the RSS *floor*, the lowest
sample of each ``--window`` seconds. After the warm-up the floors are cut in two halves and the
growth per 1000 processed pairs is fitted (least squares) in each: a plateau shows a second-half
slope near 0, a leak a slope as large as the first's (the verdict is read on RssAnon: RssShmem,
Fast DDS's shared-memory segments, grows as their pages are touched, up to their fixed size). The
samples are saved as JSON (``--from-samples FILE`` analyses a saved run again).

The last line is machine-readable::

    RESULT rss_start_mib=... rss_mid_mib=... rss_end_mib=... growth_mib_per_1000_pairs_first_half=...
           growth_mib_per_1000_pairs_second_half=... pairs=...

``--profile`` runs the node in a driver process of this script instead (the same node class,
``InteractVLMNode``, spun as ``interactvlm_ros.ros.node.main`` does), with tracemalloc: it
prints the allocation sites that grew most between the end of the warm-up and each later
``--profile-every`` seconds, and the Python object counts by type that grew (gc). tracemalloc
slows the node down (fewer pairs per second); it sees Python and numpy allocations, not
torch's or the DDS middleware's (compare RssAnon with the traced total for those).

``--depth-delay MS`` also publishes, for every image, a registered 640x480 16UC1 depth image and
its CameraInfo (same stamp) ``MS`` milliseconds after the image, as an RGB-D camera's aligned depth
comes after its colour image; the node runs with ``use_depth``. It reports how many pairs got
their depth, how long they waited for it (the node's ``median_depth_wait_ms`` /
``max_depth_wait_ms``) and the ``no_depth_for_image`` count.

Random weights: memory and timing only.

    python benchmarks/soak.py [--duration 1800] [--rate 30] [--render-size 128] [--profile] [--depth-delay 33]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# ROS isolation (as the tests do): this machine only, a domain of our own (tests use 1..100),
# a temporary ROS_HOME / ROS_LOG_DIR. Set before rclpy is imported; the node process inherits them.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.pop("ROS_STATIC_PEERS", None)
os.environ.setdefault("ROS_DOMAIN_ID", "157")
if not os.environ.get("ROS_HOME", "").startswith(tempfile.gettempdir()):
    os.environ["ROS_HOME"] = tempfile.mkdtemp(prefix="interactvlm-soak-ros-home-")
os.environ["ROS_LOG_DIR"] = os.path.join(os.environ["ROS_HOME"], "log")
# Raw 640x480 images between two processes need a larger shared-memory segment (see
# launch/config/fastdds_large_images.xml); both processes use the same transports, with the
# profile's own UDP transport restricted to loopback (the discovery range does not confine it).
FASTDDS_PROFILE = """<?xml version="1.0" encoding="UTF-8"?>
<profiles xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">
  <transport_descriptors>
    <transport_descriptor><transport_id>large_shm</transport_id><type>SHM</type>
      <segment_size>16777216</segment_size></transport_descriptor>
    <transport_descriptor><transport_id>udp_loopback</transport_id><type>UDPv4</type>
      <interfaceWhiteList><address>127.0.0.1</address></interfaceWhiteList></transport_descriptor>
  </transport_descriptors>
  <participant profile_name="soak_large_images" is_default_profile="true">
    <rtps>
      <userTransports><transport_id>large_shm</transport_id><transport_id>udp_loopback</transport_id></userTransports>
      <useBuiltinTransports>false</useBuiltinTransports>
    </rtps>
  </participant>
</profiles>
"""
if "SOAK_FASTDDS_PROFILE" not in os.environ:
    os.environ["SOAK_FASTDDS_PROFILE"] = os.path.join(os.environ["ROS_HOME"], "fastdds_soak.xml")
    Path(os.environ["SOAK_FASTDDS_PROFILE"]).write_text(FASTDDS_PROFILE)
os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = os.environ["SOAK_FASTDDS_PROFILE"]

MIB = 1024 * 1024


# ---------------------------------------------------------------------------------- driver
def driver(argv: list[str]) -> int:
    """The node, in-process, with tracemalloc and gc type counts (``--profile``).

    argv: ``warmup every top -- <ros args>``. Reports are printed to stdout (the node's log).
    """
    import collections
    import gc
    import tracemalloc

    warmup, every, top = float(argv[0]), float(argv[1]), int(argv[2])
    ros_args = argv[argv.index("--") + 1:]

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.lifecycle import TransitionCallbackReturn

    from interactvlm_ros.ros.node import InteractVLMNode

    def type_counts() -> collections.Counter:
        gc.collect()
        return collections.Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())

    def report(label: str, base: tracemalloc.Snapshot, base_types: collections.Counter, pairs_at: int) -> None:
        snapshot = tracemalloc.take_snapshot().filter_traces((tracemalloc.Filter(False, tracemalloc.__file__),
                                                               tracemalloc.Filter(False, "<frozen importlib._*>")))
        pairs = node.counter.totals.get("pairs_processed", 0) - pairs_at
        traced, peak = tracemalloc.get_traced_memory()
        growth = sum(stat.size_diff for stat in snapshot.compare_to(base, "filename"))
        print(f"PROFILE {label}: +{pairs} pairs since the baseline; traced {traced / MIB:.1f} MiB "
              f"(peak {peak / MIB:.1f}), {growth / MIB:+.2f} MiB since the baseline "
              f"({growth / MIB / max(pairs, 1) * 1000:+.2f} MiB/1000 pairs); sites that grew most:", flush=True)
        for stat in snapshot.compare_to(base, "traceback")[:top]:
            if stat.size_diff <= 0:
                break
            per_k = stat.size_diff / MIB / max(pairs, 1) * 1000
            print(f"  {stat.size_diff / 1024:+10.1f} KiB ({per_k:+.3f} MiB/1000 pairs) {stat.count_diff:+7d} blocks, "
                  f"now {stat.size / 1024:.1f} KiB", flush=True)
            for line in stat.traceback.format(limit=6, most_recent_first=True):
                print(f"      {line}", flush=True)
        grown = [(k, v - base_types.get(k, 0)) for k, v in type_counts().items()]
        grown = sorted((g for g in grown if g[1] > 0), key=lambda g: -g[1])[:top]
        print("  object counts grown by type: " + ", ".join(f"{k} +{n}" for k, n in grown), flush=True)

    rclpy.init(args=["soak_driver", "--ros-args", *ros_args])
    node = InteractVLMNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if node.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            print("PROFILE could not configure", flush=True)
            return 1
        node.trigger_activate()
        start = time.monotonic()
        base = None
        last = start
        # One spin loop throughout, so that a block allocated before and after the baseline has
        # the same traceback. Tracing starts half-way through the warm-up, so that the bounded
        # buffers (the image ring, the pending pair...) hold traced blocks at the baseline.
        while rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
            now = time.monotonic()
            if not tracemalloc.is_tracing() and now - start >= warmup / 2:
                tracemalloc.start(12)
            elif base is None and now - start >= warmup:
                base_types = type_counts()
                base = tracemalloc.take_snapshot()
                pairs_at = node.counter.totals.get("pairs_processed", 0)
                last = now
                print(f"PROFILE baseline after {warmup:.0f} s warm-up ({pairs_at} pairs, traced "
                      f"{tracemalloc.get_traced_memory()[0] / MIB:.1f} MiB)", flush=True)
            elif base is not None and now - last >= every:
                last = now
                report(f"t+{now - start - warmup:.0f}s", base, base_types, pairs_at)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    except RuntimeError:  # a message taken while SIGINT shuts the context down
        if rclpy.ok():
            raise
    finally:
        if tracemalloc.is_tracing() and base is not None:
            try:
                report("final", base, base_types, pairs_at)
            except Exception as error:  # noqa: BLE001 - a report at shutdown is best effort
                print(f"PROFILE final report failed: {error!r}", flush=True)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


# ------------------------------------------------------------------------------------ load
def stop_node(node: subprocess.Popen, timeout: float = 60.0) -> None:
    """SIGINT (a clean shutdown), then SIGKILL if the node is still there after ``timeout``."""
    if node.poll() is not None:
        return
    node.send_signal(signal.SIGINT)
    deadline = time.monotonic() + timeout
    while node.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if node.poll() is None:
        node.kill()
        node.wait()


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS, RssAnon, RssFile, RssShmem, VmHWM (MiB) and Threads of a process."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                values[name] = int(rest.split()[0]) / 1024
            elif name == "Threads":
                values[name] = int(rest)
    return values


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (x, y) points (0 with fewer than two distinct x)."""
    if len(points) < 2:
        return 0.0
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--driver":
        raise SystemExit(driver(sys.argv[2:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=1800.0, help="seconds of load (after connecting)")
    parser.add_argument("--rate", type=float, default=30.0, help="images (and detections) per second")
    parser.add_argument("--render-size", type=int, default=128)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the start sample")
    parser.add_argument("--sample", type=float, default=1.0, help="seconds between RSS samples")
    parser.add_argument("--window", type=float, default=60.0, help="seconds per RSS floor (see the analysis)")
    parser.add_argument("--profile", action="store_true", help="tracemalloc + gc counts in the node (see above)")
    parser.add_argument("--profile-every", type=float, default=300.0)
    parser.add_argument("--profile-top", type=int, default=12)
    parser.add_argument("--log", type=Path, default=None, help="the node's output (default: a temporary file)")
    parser.add_argument("--from-samples", type=Path, default=None, help="analyse the samples.json of a run")
    parser.add_argument("--depth-delay", type=float, default=None, metavar="MS",
                        help="also publish registered depth + CameraInfo MS ms after each image (use_depth)")
    args = parser.parse_args()
    if args.from_samples:
        saved = json.loads(args.from_samples.read_text())
        analyse(saved["samples"], saved["final"], saved["sent"], saved["elapsed"], saved["cpu_used"],
                saved["load_start"], args.warmup, args.window)
        return
    if args.duration < args.warmup + 3 * args.window:
        parser.error("--duration must exceed --warmup by at least three --window")

    import numpy as np
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from interactvlm_msgs.msg import InteractionArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray

    from interactvlm_ros.detection import Detection
    from interactvlm_ros.ros.bags import camera_info_msg, depth_image_msg, detections_msg, image_msg

    work = Path(tempfile.mkdtemp(prefix="interactvlm-soak-"))
    log = args.log or work / "node.log"
    parameters = {"use_tiny_checkpoint": "true", "render_size": args.render_size, "cache_dir": str(work / "cache"),
                  "publish_markers": "true", "diagnostics_period": 1.0}
    if args.depth_delay is not None:
        parameters["use_depth"] = "true"
    ros_args = [a for k, v in parameters.items() for a in ("-p", f"{k}:={v}")]
    if args.profile:
        command = [sys.executable, str(Path(__file__).resolve()), "--driver", str(args.warmup),
                   str(args.profile_every), str(args.profile_top), "--", *ros_args]
    else:
        command = [sys.executable, "-m", "interactvlm_ros.ros.node", "--ros-args", *ros_args]

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(4)]

    def messages(index: int, stamp_ns: int):
        """An rgb8 image and its detections (the project's builders): one cup every frame, a
        bottle on every other frame, boxes moving a little."""
        boxes = (Detection("cup", (280.0 + index % 7, 200.0, 360.0 + index % 7, 280.0), 0.9, "cup-1"),
                 Detection("bottle", (120.0 + index % 7, 200.0, 200.0 + index % 7, 280.0), 0.9, "bottle-2"))
        return (image_msg(images[index % len(images)], stamp_ns, "camera"),
                detections_msg(boxes[: 1 + index % 2], stamp_ns, "camera"))

    context = rclpy.Context()
    rclpy.init(context=context)
    camera = rclpy.create_node("soak_camera", context=context)
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    image_pub = camera.create_publisher(Image, "image", qos)
    detections_pub = camera.create_publisher(Detection2DArray, "detections", qos)
    depth_pubs = None
    if args.depth_delay is not None:
        from sensor_msgs.msg import CameraInfo

        depth_pubs = (camera.create_publisher(Image, "depth", qos), camera.create_publisher(CameraInfo, "camera_info", qos))
        depth_mm = np.full((480, 640), 2500, np.uint16)
        depth_mm[200:280, 120:360] = 900  # the cup and the bottle, 0.9 m away
        k = [525.0, 0.0, 319.5, 0.0, 525.0, 239.5, 0.0, 0.0, 1.0]
    delayed: list = []  # (due monotonic time, stamp) of depth frames still to publish
    state = {"outputs": 0, "diag": {}}
    camera.create_subscription(InteractionArray, "/interactvlm_node/interactions",
                               lambda m: state.__setitem__("outputs", state["outputs"] + 1), 10)

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith("interactvlm_node"):
                state["diag"] = {kv.key: kv.value for kv in status.values}

    camera.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(camera)
    stop_spinning = threading.Event()

    def spin() -> None:
        while not stop_spinning.is_set() and context.ok():
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()

    load_start = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load_start[0]:.2f} {load_start[1]:.2f} "
          f"{load_start[2]:.2f} at start; ROS_DOMAIN_ID {os.environ['ROS_DOMAIN_ID']}", flush=True)
    print(f"node: tiny RANDOM checkpoint, render {args.render_size}px, markers on (default rate), in its own "
          f"process{' under tracemalloc (--profile)' if args.profile else ''}; log {log}", flush=True)
    print(f"load: 640x480 rgb8 + 1-2 detections at {args.rate:g} Hz for {args.duration:.0f} s, RSS every "
          f"{args.sample:g} s, warm-up {args.warmup:.0f} s", flush=True)
    node = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    samples: list[dict] = []
    sent = 0
    try:
        deadline = time.monotonic() + 300
        while not (image_pub.get_subscription_count() and detections_pub.get_subscription_count()
                   and camera.count_publishers("/interactvlm_node/interactions")
                   and all(p.get_subscription_count() for p in depth_pubs or ())):
            if node.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"interactvlm_node did not come up; see {log}")
            time.sleep(0.1)
        start = time.monotonic()
        cpu_start = cpu_seconds(node.pid)
        next_sample = start
        while True:
            now = time.monotonic()
            if now - start >= args.duration:
                break
            if node.poll() is not None:
                raise RuntimeError(f"interactvlm_node exited with {node.returncode}; see {log}")
            if now >= next_sample:
                diag = state["diag"]
                samples.append({"t": now - start, **proc_status(node.pid), "sent": sent, "outputs": state["outputs"],
                                "pairs": int(diag.get("pairs_processed", 0)),
                                "images": int(diag.get("images_received", 0)),
                                "no_depth": int(diag.get("no_depth_for_image", 0)),
                                "depth_wait_ms": (float(diag["median_depth_wait_ms"]), float(diag["max_depth_wait_ms"]))
                                if diag.get("median_depth_wait_ms") else None})
                next_sample += args.sample
                s = samples[-1]
                if len(samples) % max(1, int(60 / args.sample)) == 1:
                    print(f"  t={s['t']:6.0f}s RSS {s['VmRSS']:7.1f} MiB (anon {s['RssAnon']:.1f}, file "
                          f"{s['RssFile']:.1f}, shm {s['RssShmem']:.1f}), pairs {s['pairs']}, images {s['images']}, "
                          f"sent {s['sent']}, threads {s['Threads']:.0f}", flush=True)
            while delayed and delayed[0][0] <= time.monotonic():
                _, depth_stamp = delayed.pop(0)
                depth_pubs[0].publish(depth_image_msg(depth_mm, depth_stamp, "camera"))
                depth_pubs[1].publish(camera_info_msg(k, 640, 480, depth_stamp, "camera"))
            if time.monotonic() < start + sent / args.rate:
                time.sleep(max(0.0, min([start + sent / args.rate] + [d for d, _ in delayed[:1]]) - time.monotonic()))
                continue
            stamp = time.time_ns()
            image, detections = messages(sent, stamp)
            image_pub.publish(image)
            detections_pub.publish(detections)
            if depth_pubs is not None:
                delayed.append((time.monotonic() + args.depth_delay / 1e3, stamp))
            sent += 1
        elapsed = time.monotonic() - start
        cpu_used = cpu_seconds(node.pid) - cpu_start
        for _, depth_stamp in delayed:  # the last frames' depth, so that no pair waits for it in vain
            depth_pubs[0].publish(depth_image_msg(depth_mm, depth_stamp, "camera"))
            depth_pubs[1].publish(camera_info_msg(k, 640, 480, depth_stamp, "camera"))
        time.sleep(2.0)  # the last diagnostics
        final = {"t": time.monotonic() - start, **proc_status(node.pid), "sent": sent, "outputs": state["outputs"],
                 "pairs": int(state["diag"].get("pairs_processed", 0)),
                 "images": int(state["diag"].get("images_received", 0)), "load_end": os.getloadavg(),
                 "no_depth": int(state["diag"].get("no_depth_for_image", 0))}
    finally:
        (work / "samples-partial.json").write_text(json.dumps(samples))  # whatever happens
        stop_node(node)
        # Joined before the executor goes: a thread still in rclpy's wait at interpreter exit
        # aborts the process ("terminate called without an active exception").
        stop_spinning.set()
        spinner.join(timeout=10)
        executor.shutdown()
        camera.destroy_node()
        context.try_shutdown()

    path = work / "samples.json"
    path.write_text(json.dumps({"samples": samples, "final": final, "sent": sent, "elapsed": elapsed,
                                "cpu_used": cpu_used, "load_start": load_start}))
    print(f"samples: {path}", flush=True)
    analyse(samples, final, sent, elapsed, cpu_used, load_start, args.warmup, args.window)


def analyse(samples: list[dict], final: dict, sent: int, elapsed: float, cpu_used: float, load_start,
            warmup: float, window_s: float) -> None:
    # Each pair allocates (and frees) tens of MiB, so RSS swings within a pair; the RSS a run keeps
    # is the floor: the lowest sample of each --window seconds. Start / middle / end are the floors
    # of the first, middle and last windows after the warm-up; the slopes are fitted on the floors.
    steady = [s for s in samples if s["t"] >= warmup]
    windows: list[list[dict]] = []
    for sample in steady:
        index = int((sample["t"] - warmup) // window_s)
        while len(windows) <= index:
            windows.append([])
        windows[index].append(sample)
    floors = []
    for window in (w for w in windows if w):
        low = min(window, key=lambda s: s["VmRSS"])
        floors.append({**low, "pairs": window[-1]["pairs"], "images": window[-1]["images"], "t": window[-1]["t"],
                       "peak": max(s["VmRSS"] for s in window)})
    if len(floors) < 3:
        raise SystemExit(f"only {len(floors)} windows of {window_s:g} s after the warm-up: run longer")
    first, mid, last = floors[0], floors[len(floors) // 2], floors[-1]
    halves = (floors[: len(floors) // 2 + 1], floors[len(floors) // 2:])

    def fitted(x: str, y: str, per: float) -> list[float]:
        return [per * slope([(s[x], s[y]) for s in half]) for half in halves]

    growth, growth_anon = fitted("pairs", "VmRSS", 1000), fitted("pairs", "RssAnon", 1000)
    per_images, per_minute = fitted("images", "VmRSS", 1000), fitted("t", "VmRSS", 60)
    pairs = last["pairs"] - first["pairs"]
    load_end = final.get("load_end") or os.getloadavg()
    print(f"sent {sent} images in {elapsed:.0f} s ({sent / elapsed:.1f} Hz); node received {final['images']}, "
          f"processed {final['pairs']} pairs ({final['pairs'] / elapsed:.2f} Hz output), {final['outputs']} "
          f"InteractionArrays seen; node CPU {cpu_used / elapsed:.2f} cores")
    print(f"RSS floors (lowest sample of each {window_s:g} s window; in brackets the window's highest):")
    for label, s in (("start", first), ("middle", mid), ("end", last)):
        print(f"  {label:6s} (t={s['t']:5.0f}s, {s['pairs']:6d} pairs): {s['VmRSS']:7.1f} MiB [{s['peak']:.1f}] "
              f"(anon {s['RssAnon']:.1f}, file {s['RssFile']:.1f}, shm {s['RssShmem']:.1f}), "
              f"threads {s['Threads']:.0f}")
    print(f"peak RSS (VmHWM) {final['VmHWM']:.1f} MiB; floor growth start->end "
          f"{last['VmRSS'] - first['VmRSS']:+.1f} MiB over {pairs} pairs, {last['images'] - first['images']} images")
    for i, (name, half) in enumerate((("first half", halves[0]), ("second half", halves[1]))):
        a, b = half[0], half[-1]
        print(f"  {name}: {b['VmRSS'] - a['VmRSS']:+.1f} MiB over {b['pairs'] - a['pairs']} pairs (end floors); "
              f"fitted {growth[i]:+.3f} MiB/1000 pairs (anon {growth_anon[i]:+.3f}), {per_images[i]:+.4f} MiB/1000 "
              f"images received, {per_minute[i]:+.3f} MiB/min")
    # The verdict is read on the process's private anonymous memory (RssAnon): RssShmem grows while
    # Fast DDS touches more pages of its shared-memory segments (16 MiB each, mapped once), which
    # is bounded. A second-half slope under a quarter of the first half's, or under 0.5 MiB per
    # 1000 pairs, is read as a plateau.
    levels = growth_anon[1] < max(0.25 * abs(growth_anon[0]), 0.5)
    print(f"growth {'levels off' if levels else 'does NOT level off'}: RssAnon second-half slope "
          f"{growth_anon[1]:+.3f} vs first-half {growth_anon[0]:+.3f} MiB/1000 pairs (RssShmem, the DDS segments: "
          f"{first['RssShmem']:.1f} -> {last['RssShmem']:.1f} MiB)")
    waits = [s["depth_wait_ms"] for s in steady if s.get("depth_wait_ms")]
    if waits:
        medians = sorted(m for m, _ in waits)
        print(f"depth: {final.get('no_depth', 0)} of {final['pairs']} pairs without depth (no_depth_for_image); "
              f"wait for depth, median of the node's 50-pair medians {medians[len(medians) // 2]:.1f} ms, largest "
              f"50-pair maximum {max(m for _, m in waits):.1f} ms")
    print(f"machine: {os.cpu_count()} CPUs, load average {load_start[0]:.2f} at start, {load_end[0]:.2f} "
          f"{load_end[1]:.2f} {load_end[2]:.2f} at end")
    print(f"RESULT rss_start_mib={first['VmRSS']:.1f} rss_mid_mib={mid['VmRSS']:.1f} rss_end_mib={last['VmRSS']:.1f} "
          f"growth_mib_per_1000_pairs_first_half={growth[0]:.3f} growth_mib_per_1000_pairs_second_half={growth[1]:.3f} "
          f"pairs={pairs}", flush=True)


if __name__ == "__main__":
    main()
