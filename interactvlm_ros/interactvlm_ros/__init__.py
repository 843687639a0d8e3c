"""interactvlm_ros: InteractVLM's Render-Localize-Lift inference for ROS 2.

The library (everything outside :mod:`interactvlm_ros.ros`) is plain Python + numpy/torch and
never imports rclpy; :mod:`interactvlm_ros.ros` holds the thin ROS layer (message conversions,
the node).
"""

__version__ = "0.1.0"
