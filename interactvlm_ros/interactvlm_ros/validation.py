"""Input checks shared by the library and the ROS layer (no ROS imports)."""

from __future__ import annotations

import numpy as np


def unit_interval(values, name: str) -> np.ndarray:
    """``values`` as a 1-D float32 array, checked to be finite and within [0, 1].

    Raises:
        ValueError: not 1-D, non-finite values (counted), or values outside [0, 1].
    """
    array = np.asarray(values, dtype=np.float32)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains {int(np.sum(~np.isfinite(array)))} non-finite values")
    if array.size and (array.min() < 0.0 or array.max() > 1.0):
        raise ValueError(f"{name} must lie in [0, 1], got [{array.min()}, {array.max()}]")
    return array
