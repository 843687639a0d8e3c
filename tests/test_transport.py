"""Messages cross the middleware intact: a publisher in another process (its own DDS
participant) on loopback, and a service answered from a second rclpy context."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from interactvlm_msgs.msg import InteractionArray
from interactvlm_msgs.srv import EstimateInteractions
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from vision_msgs.msg import Detection2DArray

import messages

HERE = os.path.dirname(os.path.abspath(__file__))
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def spin_until(executor, condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    return condition()


def receive_from_subprocess(context, env, type_name, msg_type, topic):
    import rclpy

    node = rclpy.create_node("interactvlm_test_subscriber", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    received = []
    node.create_subscription(msg_type, topic, received.append, LATCHED)
    log = tempfile.TemporaryFile()
    publisher = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "ros_publisher.py"), type_name, topic, "--seconds", "60"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        got = spin_until(executor, lambda: len(received) > 0, timeout_s=45.0)
    finally:
        publisher.stdin.close()  # tells the publisher to stop
        try:
            publisher.wait(timeout=15)
        except subprocess.TimeoutExpired:
            publisher.kill()
            publisher.wait()
        executor.shutdown()
        node.destroy_node()
        log.seek(0)
        output = log.read().decode(errors="replace")
        log.close()
    assert got, f"nothing received on {topic}; publisher said:\n{output}"
    assert publisher.returncode == 0, output
    return received[0]


def test_detection_array_from_another_process(ros_context, ros_subprocess_env):
    msg = receive_from_subprocess(
        ros_context, ros_subprocess_env, "Detection2DArray", Detection2DArray, "/camera/detections"
    )
    assert msg == messages.detections()
    cup = msg.detections[0]
    assert (cup.id, cup.results[0].hypothesis.class_id) == ("track-17", "cup")
    assert (cup.bbox.center.position.x, cup.bbox.center.position.y, cup.bbox.size_x, cup.bbox.size_y) == (
        412.5, 233.0, 64.0, 88.0)
    assert msg.header.frame_id == messages.IMAGE_FRAME


def test_interaction_array_from_another_process(ros_context, ros_subprocess_env):
    msg = receive_from_subprocess(
        ros_context, ros_subprocess_env, "InteractionArray", InteractionArray, "/interactvlm/interactions"
    )
    assert repr(msg) == repr(messages.interaction_array())  # field-wise, NaN ("not computed") equal to itself
    np.testing.assert_array_equal(
        np.asarray(msg.interactions[1].human_contact.vertex_probabilities, np.float32),
        messages.contact_probabilities(),
    )


def test_estimate_interactions_service_across_contexts(ros_domain_id):
    import rclpy

    contexts = [rclpy.Context(), rclpy.Context()]
    for context in contexts:
        rclpy.init(context=context, domain_id=ros_domain_id)
    server_node = rclpy.create_node("interactvlm_test_server", context=contexts[0])
    client_node = rclpy.create_node("interactvlm_test_client", context=contexts[1])
    executors = [SingleThreadedExecutor(context=c) for c in contexts]
    executors[0].add_node(server_node)
    executors[1].add_node(client_node)
    requests = []

    def answer(request, response):
        requests.append(request)
        response.success = True
        response.interactions = messages.interaction_array()
        response.interactions.header = request.image.header
        return response

    try:
        server_node.create_service(EstimateInteractions, "estimate_interactions", answer)
        client = client_node.create_client(EstimateInteractions, "estimate_interactions")
        assert spin_until(executors[0], client.service_is_ready, 30.0), "service never discovered"
        future = client.call_async(messages.estimate_request())

        def done():
            executors[0].spin_once(timeout_sec=0.05)
            return future.done()

        assert spin_until(executors[1], done, 30.0), "no response"
        response = future.result()
    finally:
        for executor in executors:
            executor.shutdown()
        server_node.destroy_node()
        client_node.destroy_node()
        for context in contexts:
            context.try_shutdown()

    assert requests == [messages.estimate_request()]
    assert repr(response) == repr(messages.estimate_response())
