"""Publisher process for the transport tests: publishes one message from tests/messages.py.

    python tests/ros_publisher.py TYPE TOPIC [--seconds S]

TYPE is a key of messages.FACTORIES. The message is published with reliable, transient-local
QoS (a late subscriber still gets it) and republished every 0.2 s until S seconds have passed
(default 30) or stdin closes, so the process always ends by itself. It runs in its own
process, hence its own DDS participant: what the test receives crossed the middleware.
"""

from __future__ import annotations

import argparse
import os
import select
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rclpy  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

import messages  # noqa: E402

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("type", choices=sorted(messages.FACTORIES))
    parser.add_argument("topic")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()

    msg = messages.FACTORIES[args.type]()
    rclpy.init()
    node = rclpy.create_node("interactvlm_test_publisher")
    publisher = node.create_publisher(type(msg), args.topic, LATCHED)
    deadline = time.monotonic() + args.seconds
    try:
        while time.monotonic() < deadline:
            publisher.publish(msg)
            readable, _, _ = select.select([sys.stdin], [], [], 0.2)
            if readable and not sys.stdin.read(1):
                break  # the test closed our stdin: done
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
