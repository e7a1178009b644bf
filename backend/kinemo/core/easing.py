"""Easing curves on [0, 1], shared by the key correction and the foot lock."""
from __future__ import annotations

import numpy as np


def smoothstep(x: np.ndarray) -> np.ndarray:
    """``3u^2 - 2u^3`` of ``u = clip(x, 0, 1)``: 0 -> 1 with zero slope at both ends. Any shape."""
    u = np.clip(x, 0.0, 1.0)
    return u * u * (3 - 2 * u)
