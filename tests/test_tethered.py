"""Tethered GPU layout on loopback: the camera in one process, interactvlm_node in another
(separate DDS participants), JPEG-compressed images with best-effort QoS as over a network."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import rclpy
from interactvlm_msgs.msg import InteractionArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage
from vision_msgs.msg import Detection2DArray

from interactvlm_ros.detection import Detection
from interactvlm_ros.ros.bags import detections_msg


def test_camera_and_node_in_separate_processes(tmp_path, ros_domain_id, ros_subprocess_env, tiny_checkpoint,
                                               monkeypatch, capsys):
    """JPEG over best-effort from a camera process to the node process; then the lifecycle
    shutdown transition (through ``interactvlm-ros lifecycle``, the wheel setup's ``ros2
    lifecycle set``) ends the node process with 0, as a launched lifecycle node should."""
    from interactvlm_ros.cli import main as cli_main

    monkeypatch.setenv("ROS_DOMAIN_ID", str(ros_domain_id))
    log = (tmp_path / "node.log").open("w")
    node = subprocess.Popen(
        [sys.executable, "-m", "interactvlm_ros.ros.node", "--ros-args", *_model(tiny_checkpoint),
         "-p", "use_compressed:=true", "-p", "render_size:=96", "-p", f"cache_dir:={tmp_path / 'cache'}",
         "-p", "publish_markers:=false", "-r", "image:=/camera/image_raw/compressed",
         "-r", "detections:=/detector/detections"],
        env=ros_subprocess_env, stdout=log, stderr=subprocess.STDOUT)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=ros_domain_id)
    camera = rclpy.create_node("tethered_camera", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(camera)
    lossy = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)  # what a camera over Wi-Fi uses
    images = camera.create_publisher(CompressedImage, "/camera/image_raw/compressed", lossy)
    detections = camera.create_publisher(Detection2DArray, "/detector/detections",
                                         QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    received = []
    camera.create_subscription(InteractionArray, "/interactvlm_node/interactions", received.append, 10)
    from skimage import data

    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    try:
        deadline = time.monotonic() + 120
        stamp = 1_700_000_000_000_000_000
        while not received and time.monotonic() < deadline and node.poll() is None:
            stamp += 100_000_000
            image = CompressedImage(format="jpeg", data=jpeg.tobytes())
            image.header.stamp.sec, image.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
            image.header.frame_id = "camera"
            images.publish(image)
            detections.publish(detections_msg([Detection("helmet", (345, 345, 495, 495), 0.9, "helmet")], stamp))
            end = time.monotonic() + 0.3
            while time.monotonic() < end and not received:
                executor.spin_once(timeout_sec=0.05)
        assert received, (tmp_path / "node.log").read_text()[-3000:]
        assert cli_main(["lifecycle", "/interactvlm_node", "get"]) == 0
        assert capsys.readouterr().out == "/interactvlm_node: active\n"
        assert cli_main(["lifecycle", "interactvlm_node", "configure"]) == 2  # not from active
        assert "cannot configure (available: deactivate, shutdown)" in capsys.readouterr().err
        assert cli_main(["lifecycle", "/interactvlm_node", "shutdown"]) == 0
        assert node.wait(timeout=30) == 0
    finally:
        node.terminate()
        node.wait(timeout=30)
        executor.shutdown()
        camera.destroy_node()
        context.try_shutdown()
        log.close()
    assert "shut down: the process exits" in (tmp_path / "node.log").read_text()
    message = received[0]
    assert message.weights_are_random and message.header.frame_id == "camera"
    assert message.interactions[0].detection.id == "helmet"
    assert message.interactions[0].object_affordance.geometry_source == "proxy:sphere"
    assert np.isfinite(message.inference_ms)


def _model(checkpoint) -> list[str]:
    """Node arguments loading the session's tiny RANDOM checkpoint (as a released checkpoint
    directory: nothing is written at start)."""
    return ["-p", f"contact_checkpoint_dir:={checkpoint}", "-p", f"affordance_checkpoint_dir:={checkpoint}",
            "-p", f"clip_dir:={checkpoint / 'clip'}"]


def _start_node(tmp_path, env, name: str, checkpoint):
    log_path = tmp_path / f"{name}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "interactvlm_ros.ros.node", "--ros-args", *_model(checkpoint),
         "-p", "render_size:=96", "-p", f"cache_dir:={tmp_path / 'cache'}"],
        env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    return process, log_path


def _wait_for_line(log_path, text: str, process, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if text in log_path.read_text():
            return True
        time.sleep(0.01)
    return text in log_path.read_text()


def test_the_node_process_stops_cleanly_on_signals(tmp_path, ros_subprocess_env, tiny_checkpoint):
    """SIGTERM (what ros2 launch sends after SIGINT) while the model loads, and SIGINT while
    running: exit code 0, no "could not configure" fatal error, no abort."""
    # "RANDOM weights" is logged once the model is loaded, before the body renders (warm-up).
    # Both processes start at once (two cores); each gets its signal at its own moment.
    cases = [("loading", "RANDOM weights", signal.SIGTERM), ("running", "activated", signal.SIGINT)]
    started = [(*_start_node(tmp_path, ros_subprocess_env, name, tiny_checkpoint), line, signum)
               for name, line, signum in cases]
    try:
        for process, log, line, signum in started:
            assert _wait_for_line(log, line, process), log.read_text()
            process.send_signal(signum)
        for process, log, _, _ in started:
            assert process.wait(timeout=60) == 0, log.read_text()
            text = log.read_text()
            assert "could not configure" not in text and "terminate called" not in text, text
    finally:
        for process, *_ in started:
            process.kill()


def test_a_signal_between_the_ok_check_and_the_wait_is_a_clean_stop(tmp_path, ros_subprocess_env):
    """The race a loaded machine hits: SIGINT shuts the context down after ``rclpy.ok()`` and
    before the executor builds its wait set, and rclpy raises RCLError ("the given context is not
    valid") instead of ExternalShutdownException. Made certain here: the executor's first wait
    shuts rclpy down and then runs, as the signal handler would. Exit code 0, no traceback."""
    script = tmp_path / "race.py"
    script.write_text(
        "import rclpy\n"
        "from rclpy.executors import SingleThreadedExecutor\n"
        "from interactvlm_ros.ros import node\n"
        "original = SingleThreadedExecutor.spin_once\n"
        "def spin_once(self, timeout_sec=None):\n"
        "    rclpy.shutdown()  # what SIGINT's handler does, between rclpy.ok() and the wait\n"
        "    return original(self, timeout_sec)\n"
        "SingleThreadedExecutor.spin_once = spin_once\n"
        "raise SystemExit(node.main(['interactvlm_node', '--ros-args', '-p', 'autostart:=false']))\n")
    done = subprocess.run([sys.executable, str(script)], env=ros_subprocess_env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


def test_configure_failures_say_why_in_one_line(tmp_path, ros_subprocess_env):
    """A malformed object map and a body-model pickle naming a refused global: the process
    exits 1 after one error line naming the parameter, the path and the cause."""
    bad_map = tmp_path / "objects.yaml"
    bad_map.write_text("meshes:\n  cup: [unclosed\n")
    body_dir = tmp_path / "body" / "smplh"
    body_dir.mkdir(parents=True)
    # A pickle that names scipy.sparse.save_npz (would write a file when called).
    (body_dir / "SMPLH_NEUTRAL.pkl").write_bytes(b"cscipy.sparse\nsave_npz\n(S'x'\ntR.")
    cases = [("map", ["-p", f"object_mesh_map:={bad_map}"],
              f"configure failed: object_mesh_map = '{bad_map}': ValueError: {bad_map}: not valid YAML"),
             ("pickle", ["-p", "body_model:=smplh", "-p", f"body_model_dir:={tmp_path / 'body'}"],
              f"configure failed: body_model_dir = '{tmp_path / 'body'}': ")]
    processes = [subprocess.Popen(  # both at once
        [sys.executable, "-m", "interactvlm_ros.ros.node", "--ros-args", "-p", "use_tiny_checkpoint:=true",
         "-p", "render_size:=64", "-p", f"cache_dir:={tmp_path / 'cache'}", *arguments],
        env=ros_subprocess_env, stdout=(tmp_path / f"{name}.log").open("w"), stderr=subprocess.STDOUT)
        for name, arguments, _ in cases]
    try:
        assert [process.wait(timeout=120) for process in processes] == [1, 1]
    finally:
        for process in processes:
            process.kill()
    for name, _, expected in cases:
        text = (tmp_path / f"{name}.log").read_text()
        errors = [line for line in text.splitlines() if "[ERROR]" in line]
        assert len(errors) == 1 and expected in errors[0], text
    assert "save_npz" in errors[0] and not list(tmp_path.rglob("x.npz"))
