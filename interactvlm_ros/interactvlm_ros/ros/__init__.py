"""The ROS 2 layer: conversions between interactvlm_msgs / sensor_msgs and numpy, and the node.

Importing this package needs rclpy and the built interfaces (``interactvlm_msgs``,
``vision_msgs``) on the path: ``source ros2_ws/env.sh`` after ``make setup``.
"""
