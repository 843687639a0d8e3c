"""The node's QoS profiles, by the names its parameters use (``image_qos``, ``detections_qos``)."""

from __future__ import annotations

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data


def qos_profile(name: str, depth: int) -> QoSProfile:
    """"sensor_data" (best effort, volatile: rclpy's sensor-data profile), "reliable" or
    "best_effort", keeping the last ``depth`` messages."""
    if name == "sensor_data":
        profile = QoSProfile(**{k: getattr(qos_profile_sensor_data, k) for k in ("reliability", "durability")},
                             history=HistoryPolicy.KEEP_LAST, depth=depth)
        return profile
    reliability = ReliabilityPolicy.RELIABLE if name == "reliable" else ReliabilityPolicy.BEST_EFFORT
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=reliability)
