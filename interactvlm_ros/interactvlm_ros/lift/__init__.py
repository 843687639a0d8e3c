"""Lift: per-view 2D logits -> per-vertex (or per-point) probabilities on the 3D geometry."""

from .lifting import Lifter, logits_to_probabilities

__all__ = ["Lifter", "logits_to_probabilities"]
