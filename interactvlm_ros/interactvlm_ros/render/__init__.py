"""Multi-view rasterisation: colour renders plus the pixel-to-face (or pixel-to-point) maps
that lifting needs. No ROS imports."""

from .fragments import MeshFragments, PointFragments

__all__ = ["MeshFragments", "PointFragments"]
