"""Evaluation: InteractVLM's contact / affordance metrics and their reports (no ROS imports)."""
