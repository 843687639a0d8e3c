"""Geometry: triangle meshes, body models, object meshes and cameras (no ROS imports)."""
