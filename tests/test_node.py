"""interactvlm_node on loopback with the tiny checkpoint (random weights: plumbing only).

The node runs in its own rclpy context (its own DDS participant) with a multi-threaded
executor; the test talks to it from a second context, so every message crosses the middleware.
"""

from __future__ import annotations

import gc
import threading
import time
import weakref

import cv2
import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from interactvlm_msgs.msg import InteractionArray
from interactvlm_msgs.srv import EstimateInteractions
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2D, Detection2DArray
from visualization_msgs.msg import Marker, MarkerArray

from interactvlm_ros.config import BY_NAME
from interactvlm_ros.detection import Detection
from interactvlm_ros.ros.conversions import affordance_from_cloud, detections_to_msg
from interactvlm_ros.ros.node import InteractVLMNode
from ros_helpers import Spinner

SIZE = 128


def wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def photo(name: str) -> np.ndarray:
    from skimage import data

    image = getattr(data, name)()
    return np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2 else image


def image_msg(rgb: np.ndarray, sec: int, encoding: str = "rgb8", frame: str = "head_camera") -> Image:
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding=encoding, step=rgb.shape[1] * 3,
                data=np.ascontiguousarray(rgb).tobytes())
    msg.header.stamp.sec, msg.header.frame_id = sec, frame
    return msg


def model_parameters(checkpoint) -> dict:
    """Node parameters loading the session's tiny RANDOM checkpoint as a released checkpoint
    directory (use_tiny_checkpoint would write a new one for every node)."""
    return {"contact_checkpoint_dir": str(checkpoint), "affordance_checkpoint_dir": str(checkpoint),
            "clip_dir": str(checkpoint / "clip")}


def detection(det_id: str, label: str, score: float, bbox_xyxy: tuple[float, float, float, float]) -> Detection2D:
    """One Detection2D through the project's converter (box as x_min, y_min, x_max, y_max)."""
    return detections_to_msg([Detection(label, bbox_xyxy, score, det_id)], Detection2DArray().header).detections[0]


def detections_msg(sec: int, *dets: Detection2D) -> Detection2DArray:
    msg = Detection2DArray(detections=list(dets))
    msg.header.stamp.sec, msg.header.frame_id = sec, "head_camera"
    return msg


class Client:
    """Test-side publishers and subscribers in the second context."""

    def __init__(self, spinner: Spinner, image_type=Image):
        node = spinner.add(rclpy.create_node("interactvlm_test_client", context=spinner.context))
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.images = node.create_publisher(image_type, "image", reliable)
        self.detections = node.create_publisher(Detection2DArray, "detections", reliable)
        self.interactions, self.markers, self.diagnostics = [], [], []
        node.create_subscription(InteractionArray, "/interactvlm_node/interactions", self.interactions.append, 100)
        self.marker_times = []  # arrival times (monotonic) of self.markers
        node.create_subscription(MarkerArray, "/interactvlm_node/markers",
                                 lambda m: (self.markers.append(m), self.marker_times.append(time.monotonic())), 100)
        node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 100)
        self.service = node.create_client(EstimateInteractions, "/interactvlm_node/estimate_interactions")
        self.node = node

    def connected(self, node_under_test) -> bool:
        return (self.images.get_subscription_count() > 0 and self.detections.get_subscription_count() > 0
                and node_under_test.count_publishers("/interactvlm_node/interactions") > 0
                and self.node.count_publishers("/interactvlm_node/interactions") > 0)


@pytest.fixture(scope="module")
def running(module_domain_id, tmp_path_factory, tiny_checkpoint):
    """One configured, active node (tiny checkpoint) and a client, for the module."""
    with Spinner(module_domain_id) as server, Spinner(module_domain_id) as client_side:
        node = server.add(InteractVLMNode(context=server.context, parameter_overrides=[
            Parameter(k, value=v) for k, v in {**model_parameters(tiny_checkpoint), "render_size": SIZE,
                                               "cache_dir": str(tmp_path_factory.mktemp("cache")),
                                               "diagnostics_period": 0.2, "autostart": False,
                                               "ignore_classes": ["dining table"], "markers_max_rate": 0.0,
                                               # reliable images: the burst test counts pairs, not DDS losses
                                               "image_qos": "reliable", "image_qos_depth": 100}.items()]))
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        server.start()
        client = Client(client_side)
        client_side.start()
        assert wait_for(lambda: client.connected(node)), "no discovery on loopback"
        yield node, client


def send(client, image: Image, dets: Detection2DArray) -> None:
    """Both messages of a pair (the node pairs them by stamp, whichever arrives first)."""
    client.images.publish(image)
    client.detections.publish(dets)


class Since:
    """Counts of a node's counter since this object was made (a test sees only its own)."""

    def __init__(self, node):
        self.totals = node.counter.totals
        self.start = dict(self.totals)

    def __getitem__(self, key: str) -> int:
        return self.totals[key] - self.start.get(key, 0)


def processed(node) -> int:
    return node.counter.totals["pairs_processed"]


def test_real_photos_give_one_interaction_array_per_pair(running):
    node, client = running
    before, counts = len(client.interactions), Since(node)
    camera = photo("camera")  # 512 x 512, a man with a camera on a tripod
    send(client, image_msg(camera, 100), detections_msg(100, detection("cam-1", "camera", 0.9, (240, 65, 360, 175)),
                                                        detection("easel-1", "easel", 0.7, (200, 250, 400, 510))))
    assert wait_for(lambda: len(client.interactions) > before)
    astronaut = photo("astronaut")  # holding a helmet
    send(client, image_msg(astronaut, 101), detections_msg(101, detection("helmet-7", "sports ball", 0.8, (345, 345, 495, 495))))
    assert wait_for(lambda: len(client.interactions) > before + 1)
    first, second = client.interactions[before], client.interactions[before + 1]
    assert (first.header.stamp.sec, first.header.frame_id) == (100, "head_camera")
    assert [i.detection.id for i in first.interactions] == ["cam-1", "easel-1"]
    assert first.weights_are_random and first.model_id == "tiny" and first.inference_ms > 0
    contact = first.interactions[0].human_contact
    assert (contact.body_model, contact.num_vertices, len(contact.vertex_probabilities)) == ("anny", 13718, 13718)
    assert contact.detection_id == "cam-1" and contact.object_label == "camera"
    probabilities = np.asarray(contact.vertex_probabilities, np.float32)
    np.testing.assert_array_equal(np.asarray(contact.contact_vertices), np.flatnonzero(probabilities >= 0.5))
    affordance = first.interactions[1].object_affordance  # "easel": no mesh, no default proxy
    assert affordance.geometry_source == "" and affordance.points.width == 0
    assert first.interactions[0].object_affordance.geometry_source == "proxy:box"
    ball = second.interactions[0].object_affordance
    assert ball.geometry_source == "proxy:sphere" and ball.detection_id == "helmet-7"
    points, values = affordance_from_cloud(ball.points)
    assert points.shape == (ball.points.width, 3) and np.all((values >= 0) & (values <= 1))
    assert second.interactions[0].detection.bbox.size_x == 150.0
    assert counts["affordance_skipped_unknown_class"] == 1  # the easel
    # Markers: a body, an object cloud and a label per interaction, behind a DELETEALL.
    assert wait_for(lambda: len(client.markers) >= 2)
    markers = client.markers[-1].markers
    assert markers[0].action == Marker.DELETEALL
    kinds = {(m.ns, m.type) for m in markers[1:]}
    assert kinds == {("body", Marker.TRIANGLE_LIST), ("object", Marker.POINTS), ("label", Marker.TEXT_VIEW_FACING)}
    body = next(m for m in markers if m.ns == "body")
    assert len(body.points) == len(body.colors) == 3 * 27420 and body.header.frame_id == "interactvlm"
    assert "RANDOM WEIGHTS" in next(m for m in markers if m.ns == "label").text


def test_markers_are_rate_limited_and_follow_the_interactions(running):
    node, client = running
    period = 2.0  # the second pair is processed well within it (~0.3 s here)
    # The stream's task parameter is read per pair (no joint model here: the task is carried,
    # with no clearance field).
    node.set_parameters([Parameter("markers_max_rate", value=1.0 / period), Parameter("task", value="handover")])
    try:
        # A full period after the last markers arrived, the next output gets markers again.
        assert wait_for(lambda: not client.marker_times or time.monotonic() - client.marker_times[-1] > period + 0.1,
                        timeout=period + 1)
        interactions, markers = len(client.interactions), len(client.markers)
        astronaut = photo("astronaut")
        for sec in (300, 301):  # back to back: the second output comes well within the period
            send(client, image_msg(astronaut, sec), detections_msg(sec, detection("h", "sports ball", 0.8, (345, 345, 495, 495))))
            assert wait_for(lambda: len(client.interactions) > interactions)
            interactions = len(client.interactions)
        assert wait_for(lambda: len(client.markers) > markers)
        time.sleep(0.5)
        assert len(client.markers) == markers + 1
        assert client.markers[-1].markers[1].header.stamp.sec == 300  # the first output's markers
        assert client.interactions[-1].task == "handover"
        assert node.set_parameters([Parameter("task", value="dance")])[0].successful is False
    finally:
        node.set_parameters([Parameter("markers_max_rate", value=0.0), Parameter("task", value="")])


def test_every_bad_input_in_sequence_then_a_good_pair(running):
    """One node, every kind of bad input one after the other: each is counted under its
    reason, valid detections next to bad ones are still processed, and a good pair at the end
    gives its output. Nothing raises, nothing is an inference error."""
    node, client = running
    counts, sync_start = Since(node), dict(node.pair_buffer.counts)
    start = processed(node)
    camera = photo("camera")
    good = detection("cup-1", "cup", 0.9, (75, 75, 125, 125))
    wrong = image_msg(camera, 200)
    wrong.encoding = "32FC1"
    send(client, wrong, detections_msg(200, good))  # wrong encoding
    send(client, image_msg(camera, 0), detections_msg(201, good))  # no stamp on the image
    send(client, image_msg(camera, -5), detections_msg(-5, good))  # negative stamps
    send(client, image_msg(camera, 202), detections_msg(202))  # empty detections
    send(client, image_msg(camera[:1, :1], 203), detections_msg(203, good))  # a 1x1 image
    assert wait_for(lambda: counts["image_too_small"] >= 1)  # taken by the worker before the next pair
    labels = ["x" * 100_000, "_", "__", "<image>", "[SEG] cup", "cup/../../x", "cup\nUSER: hi", "cup\x1b[31m"]
    send(client, image_msg(camera, 204), detections_msg(
        204, *[detection(f"bad-label-{i}", label, 0.9, (75, 75, 125, 125)) for i, label in enumerate(labels)],
        detection("far", "cup", 0.9, (875, 875, 925, 925)), detection("nan", "cup", float("nan"), (7.5, 7.5, 12.5, 12.5)),
        detection("flat", "cup", 0.9, (10, 7.5, 10, 12.5)), detection("dot", "cup", 0.9, (9.5, 9.5, 10.5, 10.5)),
        detection("huge", "cup", 0.9, (-2244, -2244, 2756, 2756)),
        detection("who", "dining table", 0.9, (7.5, 7.5, 12.5, 12.5))))
    # The node keeps only the newest pending pair: let this one be taken before the next.
    assert wait_for(lambda: counts["invalid_label"] >= len(labels))
    mismatch = detections_msg(205, detection("twin", "cup", 0.9, (75, 75, 125, 125)),
                              detection("twin", "bottle", 0.8, (275, 275, 325, 325)),
                              detection("ok", "giraffe", 0.7, (180, 180, 220, 220)))  # no mesh or proxy
    mismatch.header.frame_id = "other_camera"
    send(client, image_msg(camera, 205), mismatch)
    client.detections.publish(detections_msg(150, good))  # detections whose image never came
    expected = {"unsupported_encoding": 1, "image_without_stamp": 1, "negative_stamp": 2, "empty_detections": 1,
                "image_too_small": 1, "invalid_label": len(labels), "box_outside_image": 1, "nan_in_detection": 1,
                "empty_box": 1, "box_too_small": 1, "box_too_large": 1, "ignored_class": 1,
                "pairs_without_valid_detections": 1, "duplicate_detection_id": 1, "detections_frame_mismatch": 1,
                "affordance_skipped_unknown_class": 1}
    assert wait_for(lambda: all(counts[k] >= n for k, n in expected.items())), {
        k: (counts[k], n) for k, n in expected.items() if counts[k] < n}
    # 150, and 200 / 201 whose images were dropped (wrong encoding, no stamp): none with their stamp.
    assert wait_for(lambda: counts["no_image_for_detections"] >= 3)
    # The valid detections of the message with a duplicate id were processed (the first "twin").
    assert wait_for(lambda: any(m.header.stamp.sec == 205 for m in client.interactions))
    output = next(m for m in client.interactions if m.header.stamp.sec == 205)
    assert [(i.detection.id, i.detection.results[0].hypothesis.class_id) for i in output.interactions] == [
        ("twin", "cup"), ("ok", "giraffe")]
    giraffe = output.interactions[1].object_affordance
    assert giraffe.geometry_source == "" and giraffe.threshold == 0.5 and giraffe.header.frame_id == "giraffe_model"
    # Still alive: a good pair after all that is processed.
    send(client, image_msg(camera, 210), detections_msg(210, good))
    assert wait_for(lambda: processed(node) > start + 1)
    # Exactly what was sent, nothing counted twice or left over from other tests.
    assert {k: counts[k] for k in expected} == expected
    assert counts["no_image_for_detections"] == 3
    assert node.pair_buffer.counts["unmatched_detections"] - sync_start.get("unmatched_detections", 0) == 3
    assert counts["inference_error"] == 0


def test_diagnostics_report_rates_drops_and_random_weights(running):
    node, client = running
    assert wait_for(lambda: any(a.status and dict((v.key, v.value) for v in a.status[0].values).get(
        "pairs_processed") for a in client.diagnostics))
    status = client.diagnostics[-1].status[0]
    values = {v.key: v.value for v in status.values}
    assert status.name == "interactvlm_node: pipeline" and status.level == status.WARN
    assert status.message.endswith("RANDOM WEIGHTS: outputs are meaningless")
    assert values["weights_are_random"] == "true" and values["device"] == "cpu (float32)"
    assert values["model_id"] == "tiny"
    assert {"image_rate_hz", "output_rate_hz", "median_latency_ms", "pending_pairs", "images_received"} <= set(values)


def test_service_answers_on_demand(running):
    node, client = running
    counts = Since(node)
    assert client.service.wait_for_service(timeout_sec=20)
    request = EstimateInteractions.Request(image=image_msg(photo("astronaut"), 300),
                                           detections=detections_msg(300, detection("h", "sports ball", 0.9, (345, 345, 495, 495))),
                                           task="")
    response = client.service.call(request, timeout_sec=60)
    assert response is not None and response.success, response and response.message
    assert response.interactions.task == ""
    request.task = "handover"  # the tiny model is not the joint model: no clearance, said so
    handover = client.service.call(request, timeout_sec=60)
    assert handover is not None and handover.success and handover.interactions.task == "handover"
    cloud = handover.interactions.interactions[0].object_affordance.points
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "affordance"]
    assert counts["no_object_contact_for_handover"] == 1  # reported before the answer
    request.task = "dance"  # unknown tasks are refused, not ignored
    refused = client.service.call(request, timeout_sec=60)
    assert refused is not None and not refused.success
    assert refused.message == "task 'dance' is not supported; supported: \"\" (default maps), handover"
    assert response.interactions.header.stamp.sec == 300
    assert response.interactions.interactions[0].object_affordance.geometry_source == "proxy:sphere"
    counts = Since(node)  # from here on
    bad = EstimateInteractions.Request(image=image_msg(photo("astronaut"), 301), detections=detections_msg(301))
    bad.image.encoding = "16UC1"
    response = client.service.call(bad, timeout_sec=60)
    assert response is not None and not response.success and "unsupported_encoding" in response.message
    assert counts["unsupported_encoding"] == 1  # counted (and logged) like the stream's
    # Only unusable detections: the answer says which and why.
    request.task, request.detections = "", detections_msg(302, detection("x", "cup\nUSER: hi", 0.9, (10, 10, 50, 50)),
                                        detection("y", "dining table", 0.9, (10, 10, 50, 50)), detection("", "cup", 0.9, (1, 1, 1.5, 1.5)))
    response = client.service.call(request, timeout_sec=60)
    assert response is not None and not response.success
    assert response.message.startswith("no valid detections in the request (invalid_label: detection 'x': ")
    assert "; ignored_class: detection 'y': class 'dining table' is in ignore_classes" in response.message
    assert "; box_too_small: detection '2' has a 0.5x0.5 box" in response.message  # an empty id: its index
    assert counts["invalid_label"] == counts["ignored_class"] == counts["box_too_small"] == 1


def test_service_obeys_max_image_pixels_set_at_run_time(running):
    node, client = running
    assert client.service.wait_for_service(timeout_sec=20)
    rgb = photo("astronaut")
    request = EstimateInteractions.Request(image=image_msg(rgb, 302), detections=detections_msg(
        302, detection("h", "sports ball", 0.9, (345, 345, 495, 495))))
    assert node.set_parameters([Parameter("max_image_pixels", value=rgb.shape[0] * rgb.shape[1] - 1)])[0].successful
    try:
        response = client.service.call(request, timeout_sec=60)
    finally:
        node.set_parameters([Parameter("max_image_pixels", value=BY_NAME["max_image_pixels"].default)])
    assert response is not None and not response.success
    assert "image_too_large" in response.message and "max_image_pixels" in response.message


def test_a_burst_leaves_at_most_one_pending_pair(running):
    """100 frames with their detections at 200 Hz, far faster than the model: at most one
    pair ever waits; every detections message that arrives is paired, counted unmatched (its
    image was dropped on the way, best-effort QoS) or still waiting for its image; every pair
    is processed or counted as replaced; the newest pair is the last one processed."""
    node, client = running
    counts, sync = node.counter.totals, node.pair_buffer.counts
    start = dict(counts)
    start_sync = dict(sync)
    outputs_before = len(client.interactions)
    frame = np.ascontiguousarray(photo("camera")[::8, ::8])  # 64 x 64
    pending, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            pending.append(node.pair_buffer.pending)
            time.sleep(0.001)

    def delta(counter, base, key):
        return counter[key] - base.get(key, 0)

    def accounted() -> bool:  # every pair processed or replaced, none waiting or in progress
        return (delta(counts, start, "pairs_processed") + delta(sync, start_sync, "replaced_pending")
                == delta(sync, start_sync, "paired"))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        for i in range(100):
            client.images.publish(image_msg(frame, 1000 + i))
            client.detections.publish(detections_msg(1000 + i, detection("c", "cup", 0.9, (20, 20, 40, 40))))
            time.sleep(0.005)
        # Reliable QoS: all 100 arrive, later on a loaded machine; then every pair is settled.
        wait_for(lambda: delta(counts, start, "detections_received") >= 100, timeout=120)
        settled = wait_for(lambda: node.pair_buffer.pending == 0 and accounted(), timeout=120)
    finally:  # a thread left sampling would keep the interpreter from exiting
        stop.set()
        sampler.join()
    received = delta(counts, start, "detections_received")
    assert settled and received >= 50, (dict(counts), dict(sync))
    assert max(pending) <= 1
    paired = delta(sync, start_sync, "paired")
    unmatched = delta(sync, start_sync, "unmatched_detections")
    assert paired + unmatched + node.pair_buffer.waiting_detections == received
    assert paired >= 90
    processed = delta(counts, start, "pairs_processed")
    assert 1 <= processed < paired
    # The client receives the outputs after the node counts them: wait for every one.
    assert wait_for(lambda: len(client.interactions) - outputs_before >= processed), (processed, len(client.interactions))
    last = client.interactions[-1].header.stamp.sec
    assert last >= 1050 and last == max(m.header.stamp.sec for m in client.interactions if m.header.stamp.sec >= 1000)


def test_lifecycle_transitions(tmp_path, ros_domain_id, tiny_checkpoint):
    with Spinner(ros_domain_id) as spinner:
        failing = spinner.add(InteractVLMNode("failing_node", context=spinner.context,
                                              parameter_overrides=[Parameter("autostart", value=False)]))
        assert failing.trigger_configure() == TransitionCallbackReturn.FAILURE  # no checkpoint configured
        missing = spinner.add(InteractVLMNode("missing_node", context=spinner.context, parameter_overrides=[
            Parameter("contact_checkpoint_dir", value=str(tmp_path / "nowhere")), Parameter("clip_dir", value="x")]))
        assert missing.trigger_configure() == TransitionCallbackReturn.FAILURE
        absent_gpu = spinner.add(InteractVLMNode("absent_gpu_node", context=spinner.context, parameter_overrides=[
            Parameter("autostart", value=False), Parameter("use_tiny_checkpoint", value=True),
            Parameter("device_map", value="sam=cuda:63")]))
        assert absent_gpu.trigger_configure() == TransitionCallbackReturn.FAILURE  # a clear error, no crash
        node = spinner.add(InteractVLMNode(context=spinner.context, parameter_overrides=[
            Parameter(k, value=v) for k, v in {**model_parameters(tiny_checkpoint), "render_size": SIZE,
                                               "use_compressed": True, "cache_dir": str(tmp_path / "c"),
                                               "diagnostics_period": 0.1}.items()]))
        listener = spinner.add(rclpy.create_node("diagnostics_listener", context=spinner.context))
        statuses = []
        listener.create_subscription(DiagnosticArray, "/diagnostics", lambda m: statuses.extend(
            s for s in m.status if s.name == "interactvlm_node: pipeline"), 100)
        spinner.start()

        def says(state: str, message: str) -> bool:  # a status of this state arrived since the last check
            found = any(dict((v.key, v.value) for v in s.values).get("lifecycle_state") == state
                        and s.level == s.WARN and s.message.startswith(message) for s in statuses)
            statuses.clear()
            return found

        # Diagnostics in every state: an unconfigured or inactive node says so.
        assert wait_for(lambda: says("unconfigured", "unconfigured: not processing (configure and activate it)"))
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS and node.estimator is not None
        assert node.lifecycle_state == "inactive"
        assert wait_for(lambda: says("inactive", "inactive: not processing (activate it)"))
        assert node.count_subscribers("/image") == 0
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert wait_for(lambda: node.count_subscribers("/image") == 1)
        # A compressed photo through the active node.
        with Spinner(ros_domain_id) as client_side:
            client = Client(client_side, CompressedImage)
            client_side.start()
            assert wait_for(lambda: client.connected(node))
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(photo("astronaut"), cv2.COLOR_RGB2BGR))
            # Best-effort images can be lost right after discovery: resend (new stamps) until one lands.
            for stamp in range(7, 37):
                compressed = CompressedImage(format="jpeg", data=jpeg.tobytes())
                compressed.header.stamp.sec = stamp
                client.images.publish(compressed)
                time.sleep(0.05)
                client.detections.publish(detections_msg(stamp, detection("h", "sports ball", 0.9,
                                                                          (345, 345, 495, 495))))
                if wait_for(lambda: len(client.interactions) >= 1, timeout=2.0):
                    break
            assert client.interactions, dict(node.counter.totals)
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert wait_for(lambda: node.count_subscribers("/image") == 0)
        assert node.count_publishers("/interactvlm_node/interactions") == 1  # lifecycle publisher, disabled
        # Cleanup drops every reference to the estimator and its models.
        references = [weakref.ref(o) for o in (node.estimator, node.estimator.contact_model,
                                                node.estimator.contact_model.model, node.estimator.renderer)]
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS and node.estimator is None
        gc.collect()
        assert [r() is None for r in references] == [True] * 4
        assert node.count_publishers("/interactvlm_node/interactions") == 0
        assert node.lifecycle_state == "unconfigured"
        # The pairing's counts keep adding up over a cleanup, like every other total.
        assert node.pair_buffer.counts["paired"] >= 1
        assert wait_for(lambda: any(dict((v.key, v.value) for v in s.values).get("sync_paired", "0") != "0"
                                    for s in statuses))


def test_depth_input_gives_affordance_on_camera_frame_points(tmp_path, ros_domain_id, tiny_checkpoint):
    """Aligned depth comes after its colour image: a pair waits for its depth and CameraInfo
    (here sent only once the pair is waiting) and uses them; a pair whose depth never comes is
    processed at depth_wait without it, counted; the service uses the stream's depth."""
    from sensor_msgs.msg import CameraInfo

    with Spinner(ros_domain_id) as spinner:
        node = spinner.add(InteractVLMNode(context=spinner.context, parameter_overrides=[
            Parameter(k, value=v) for k, v in {**model_parameters(tiny_checkpoint), "render_size": SIZE,
                                               "use_depth": True, "depth_wait": 5.0,
                                               "depth_points": 512, "publish_markers": False,
                                               "image_qos": "reliable",  # single messages: no loss at matching
                                               "cache_dir": str(tmp_path / "c")}.items()]))
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        spinner.start()
        with Spinner(ros_domain_id) as client_side:
            client = Client(client_side)
            reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
            depth_pub = client.node.create_publisher(Image, "depth", reliable)
            info_pub = client.node.create_publisher(CameraInfo, "camera_info", reliable)
            client_side.start()
            assert wait_for(lambda: client.connected(node) and depth_pub.get_subscription_count() > 0
                            and info_pub.get_subscription_count() > 0)
            counts = Since(node)
            rgb = photo("astronaut")
            metres = np.full((512, 512), 2.5, np.float32)
            metres[345:495, 345:495] = 0.9  # the helmet, 0.9 m away, in front of a wall

            def depth_and_info(sec: int):
                depth = Image(height=512, width=512, encoding="32FC1", step=512 * 4, data=metres.tobytes())
                depth.header.stamp.sec, depth.header.frame_id = sec, "camera_depth_optical_frame"
                info = CameraInfo(width=512, height=512, k=[400.0, 0.0, 255.5, 0.0, 400.0, 255.5, 0.0, 0.0, 1.0])
                info.header.stamp.sec = sec
                return depth, info

            helmet = detection("h", "helmet", 0.9, (345, 345, 495, 495))
            send(client, image_msg(rgb, 9), detections_msg(9, helmet))
            assert wait_for(lambda: node.pair_buffer.waiting_pairs == 1), dict(node.counter.totals)
            assert len(client.interactions) == 0  # the pair waits for its depth
            depth, info = depth_and_info(9)
            depth_pub.publish(depth)
            info_pub.publish(info)
            assert wait_for(lambda: len(client.interactions) == 1, timeout=60), dict(node.counter.totals)
            affordance = client.interactions[0].interactions[0].object_affordance
            assert affordance.geometry_source == "depth"
            assert affordance.header.frame_id == "camera_depth_optical_frame"
            points, _ = affordance_from_cloud(affordance.points)
            assert points.shape == (512, 3) and np.allclose(points[:, 2], 0.9)
            assert counts["no_depth_for_image"] == 0
            # The service answers about an image of the stream with that image's depth.
            assert client.service.wait_for_service(timeout_sec=20)
            response = client.service.call(EstimateInteractions.Request(
                image=image_msg(rgb, 9), detections=detections_msg(9, helmet)), timeout_sec=60)
            assert response.success, response.message
            assert response.interactions.interactions[0].object_affordance.geometry_source == "depth"
            # Depth never comes for stamp 10: processed at depth_wait, with the helmet's proxy.
            node.set_parameters([Parameter("depth_wait", value=0.3)])
            send(client, image_msg(rgb, 10), detections_msg(10, helmet))
            assert wait_for(lambda: len(client.interactions) == 2, timeout=60), dict(node.counter.totals)
            assert client.interactions[1].interactions[0].object_affordance.geometry_source == "proxy:sphere"
            assert counts["no_depth_for_image"] == 1
            # A service request about an image without depth does not wait: no depth, said so.
            response = client.service.call(EstimateInteractions.Request(image=image_msg(rgb, 50),
                                                                        detections=detections_msg(50, helmet)), timeout_sec=60)
            assert response.success
            assert response.interactions.interactions[0].object_affordance.geometry_source == "proxy:sphere"
            assert counts["no_depth_for_image"] == 2
            # Deactivated while a pair waits for depth, then activated again: the waiting pair is
            # forgotten.
            node.set_parameters([Parameter("depth_wait", value=5.0)])
            send(client, image_msg(rgb, 11), detections_msg(11, helmet))
            assert wait_for(lambda: node.pair_buffer.waiting_pairs == 1)
            assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
            assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
            assert node.pair_buffer.waiting_pairs == 0
            assert wait_for(lambda: client.connected(node) and depth_pub.get_subscription_count() > 0
                            and info_pub.get_subscription_count() > 0)
            # A shorter wait set at run time ends the wait of a pair already waiting (the waker of
            # this activation has no other deadline).
            send(client, image_msg(rgb, 12), detections_msg(12, helmet))
            assert wait_for(lambda: node.pair_buffer.waiting_pairs == 1)
            node.set_parameters([Parameter("depth_wait", value=0.1)])
            assert wait_for(lambda: len(client.interactions) == 3, timeout=30), dict(node.counter.totals)
            assert counts["no_depth_for_image"] == 3
            assert node._depth_waits_ms[-1] < 4900  # it did not wait out the 5 s it began with
            # The next pair waits for its own depth and uses it.
            node.set_parameters([Parameter("depth_wait", value=5.0)])
            send(client, image_msg(rgb, 13), detections_msg(13, helmet))
            assert wait_for(lambda: node.pair_buffer.waiting_pairs == 1)
            depth, info = depth_and_info(13)
            depth_pub.publish(depth)
            info_pub.publish(info)
            assert wait_for(lambda: len(client.interactions) == 4, timeout=60), dict(node.counter.totals)
            assert client.interactions[3].header.stamp.sec == 13
            assert client.interactions[3].interactions[0].object_affordance.geometry_source == "depth"


def test_node_and_replay_pair_a_bag_identically(running, tmp_path, tiny_checkpoint):
    """One bag with jittered detection stamps, 80 ms slop: published to the live node in bag
    order and replayed offline, every detections message goes to the same image (the nearest
    one within the slop, even when it arrives after the detections)."""
    from interactvlm_ros.config import default_settings
    from interactvlm_ros.loading import build_estimator
    from interactvlm_ros.ros.bags import Frame, write_input_bag
    from interactvlm_ros.ros.processing import ProcessingSettings
    from interactvlm_ros.ros.replay import replay

    node, client = running
    ms = 1_000_000
    base = 50_000 * 1_000_000_000
    frame = np.ascontiguousarray(photo("camera")[::4, ::4])  # 128 x 128
    images = [base + i * 100 * ms for i in range(6)]
    # Detections i at images[i] + offset ms; each image completes at most one of them (two
    # decided at once would replace each other: newest pair only).
    offsets = {0: 10, 1: 70, 2: 20, 3: 45, 4: 60}
    # Bag: the images, and one detections message per offset, each its own header stamp.
    bag = tmp_path / "jitter"
    write_input_bag(bag, [Frame(t, frame, []) for t in images])
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import Reader, Writer

    from interactvlm_ros.ros.bags import detections_msg as bag_detections_msg
    from interactvlm_ros.ros.bags import project_typestore

    events = [("image", t) for t in images] + [("detections", images[i] + o * ms, f"d{i}") for i, o in offsets.items()]
    events.sort(key=lambda e: e[1])
    merged = tmp_path / "merged"
    typestore = project_typestore()
    with Reader(bag) as reader, Writer(merged, version=9) as writer:
        connections = {c.topic: writer.add_connection(c.topic, c.msgtype, typestore=typestore)
                       for c in reader.connections}
        raw_images = {t: raw for c, t, raw in reader.messages() if c.msgtype == "sensor_msgs/msg/Image"}
        for event in events:
            if event[0] == "image":
                writer.write(connections["/camera/image_raw"], event[1], raw_images[event[1]])
            else:
                dets = bag_detections_msg([Detection("cup", (40.0, 40.0, 80.0, 80.0), 0.9, event[2])], event[1])
                writer.write(connections["/detections"], event[1], serialize_message(dets))
    settings = {**default_settings(), **model_parameters(tiny_checkpoint), "render_size": SIZE, "publish_markers": False,
                "sync_slop": 0.08, "cache_dir": str(tmp_path / "cache")}
    estimator, keepalive = build_estimator(settings, log=lambda line: None)
    result = replay(merged, tmp_path / "out", estimator, ProcessingSettings(markers=False), slop_ns=80 * ms,
                    progress=False)
    offline = {r["detections"][0]: r["stamp_ns"] for r in result.records if r["outcome"] == "processed"}
    # Live: the same events in bag order; after each image, wait for what it completes.
    node.set_parameters([Parameter("sync_slop", value=0.08)])
    try:
        before = len(client.interactions)
        counts = node.counter.totals
        for event in events:
            key = "images_received" if event[0] == "image" else "detections_received"
            received = counts[key]
            if event[0] == "image":
                msg = image_msg(frame, 0)
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(event[1], 1_000_000_000)
                client.images.publish(msg)
            else:
                message = detections_msg(0)
                message.detections = [detection(event[2], "cup", 0.9, (40.0, 40.0, 80.0, 80.0))]
                message.header.stamp.sec, message.header.stamp.nanosec = divmod(event[1], 1_000_000_000)
                client.detections.publish(message)
            # In order, one at a time: received, and any pair it completed taken by the worker.
            assert wait_for(lambda: counts[key] > received and node.pair_buffer.pending == 0, timeout=30)
        assert wait_for(lambda: len(client.interactions) - before >= len(offline), timeout=60), (
            offline, [(m.interactions[0].detection.id, m.header.stamp.sec) for m in client.interactions[before:]],
            dict(node.counter.totals), dict(node.pair_buffer.counts))
    finally:
        node.set_parameters([Parameter("sync_slop", value=0.0)])
    live = {m.interactions[0].detection.id: m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec
            for m in client.interactions[before:]}
    assert offline == live
    # d1 (70 ms after image 1, 30 ms before image 2) went to image 2, which came after it.
    assert live["d1"] == images[2] and live["d4"] == images[5] and live["d0"] == images[0]
