"""Is a motion one a body could perform? Cheap checks on joint positions, and one score.

A small generative network sometimes draws a free window no body would perform:
a limb flung across the frame (joint jerk in the tens of thousands of m/s^3)
or knees that swap sides. These functions measure that on the canonical SMPL
skeleton; the sampler draws such a window again (kinemo.model.generator), and
the benches use the same measures (kinemo.eval.metrics re-exports them).
Positions ``(T, J, 3)`` in metres, Y up.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .footlock import SMPL_LEGS

# (left, right) joint pairs of the SMPL legs, from the foot lock's (hip, knee, ankle, foot) per leg
HIPS, KNEES, ANKLES = tuple(zip(*(leg[:3] for leg in SMPL_LEGS)))


def jerk(positions: np.ndarray, fps: float) -> np.ndarray:
    """Magnitude of the third time derivative: ``(T, J, 3)`` -> ``(T-3, J)`` in m/s^3.

    Row ``i`` uses frames ``i .. i+3``.
    """
    d3 = positions[3:] - 3 * positions[2:-1] + 3 * positions[1:-2] - positions[:-3]
    return np.linalg.norm(d3, axis=-1) * fps ** 3


def crossed_legs(positions: np.ndarray) -> np.ndarray:
    """Frames whose knees have swapped sides: ``(T, J, 3)`` -> ``(T,)`` bool.

    Seen from above, the line from the right knee to the left one points against the line between the hips
    (their angle is over 90 degrees). A real body does this only in a deep cross-step: 0.04% of the real test
    takes' frames (docs/benchmarks/long.json).
    """
    return (_across(positions, *HIPS) * _across(positions, *KNEES)).sum(-1) < 0


def ankle_span(positions: np.ndarray) -> np.ndarray:
    """Signed distance (m) from the right ankle to the left one along the hips' left direction, seen from above:
    ``(T, J, 3)`` -> ``(T,)``; negative when the feet have swapped sides."""
    hips = _across(positions, *HIPS)
    hips /= np.maximum(np.linalg.norm(hips, axis=-1, keepdims=True), 1e-8)
    return (_across(positions, *ANKLES) * hips).sum(-1)


def _across(positions: np.ndarray, left: int, right: int) -> np.ndarray:
    """Horizontal vector ``(T, 2)`` (x, z) from joint ``right`` to joint ``left``."""
    return (positions[:, left] - positions[:, right])[:, [0, 2]]


@dataclass(frozen=True)
class PlausibilityConfig:
    # Limits just above every real 6 s window of the val split (215 windows, 90 frames apart): the largest joint
    # jerk there is 1,533 m/s^3 in the median window, 3,723 at the 99th percentile and 5,999 at most; knees cross
    # in at most 3.3% of a window's frames (0.6% at the 99th percentile). Of the shipped model's free windows
    # (156 val captions, seeds 0 and 1), sampled before the foot lock's knee fix and the guidance floor, 13% went
    # over 5,000 m/s^3 (5% over 32,000) and 4.5% crossed the knees in more than 5% of their frames.
    max_jerk: float = 6000.0       # m/s^3, the largest joint jerk anywhere in the window
    max_crossed: float = 0.05      # share of the window's frames with crossed legs

    def __post_init__(self):
        if not (self.max_jerk > 0 and self.max_crossed > 0):     # NaN fails too
            raise ValueError(f"plausibility limits must be positive; got max_jerk={self.max_jerk}, "
                             f"max_crossed={self.max_crossed}")


def measures(positions: np.ndarray, fps: float) -> tuple[float, float]:
    """The window's largest joint jerk (m/s^3) and its share of frames with crossed legs: ``(T, J, 3)`` ->
    (float, float)."""
    worst_jerk = float(jerk(positions, fps).max()) if len(positions) > 3 else 0.0
    return worst_jerk, float(crossed_legs(positions).mean())


def implausibility(positions: np.ndarray, fps: float, cfg: PlausibilityConfig = PlausibilityConfig()) -> float:
    """The worst of the window's :func:`measures` as a multiple of its limit: ``(T, J, 3)`` -> float. At most 1
    is plausible; a NaN or infinite position is infinitely implausible."""
    if not np.isfinite(positions).all():
        return float("inf")
    worst_jerk, crossed = measures(positions, fps)
    return max(worst_jerk / cfg.max_jerk, crossed / cfg.max_crossed)
