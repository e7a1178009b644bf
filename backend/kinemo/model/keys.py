"""Keys met exactly and without a pop.

During sampling the keyed features are imputed at every step; what is left
is the small difference between the network's last prediction and the keys.
Pasting keys over the prediction would leave a step there (a pop), so the
difference is spread over the neighbouring frames with a smooth fall-off
and the keys are then copied in bit-exactly (in quaternions, not 6D).
"""
from __future__ import annotations

import numpy as np


def _smooth(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def spread_correction(delta: np.ndarray, keyed: np.ndarray, radius: float = 8.0) -> np.ndarray:
    """Correction for every frame from per-key differences.

    delta ``(L, C)``: key minus prediction (used where ``keyed``); keyed ``(L, C)`` bool.
    Returns ``(L, C)``: equal to ``delta`` on keyed frames. Between two keys, the linear blend of their
    differences: at full strength when they are at most ``2 * radius`` frames apart, else fading smoothly
    to zero within ``radius`` frames of either key. Before the first and after the last key, that key's
    difference fading smoothly to zero over ``radius`` frames.
    """
    L, C = delta.shape
    t = np.arange(L, dtype=np.float64)[:, None]
    idx = np.where(keyed, np.arange(L)[:, None], -1)
    prev = np.maximum.accumulate(idx, axis=0)                                   # last key at or before t
    nxt = np.where(keyed, np.arange(L)[:, None], L)[::-1]
    nxt = np.minimum.accumulate(nxt, axis=0)[::-1]                               # first key at or after t
    has_p, has_n = prev >= 0, nxt < L
    cols = np.arange(C)[None]
    dp = np.where(has_p, delta[np.clip(prev, 0, L - 1), cols], 0.0)
    dn = np.where(has_n, delta[np.clip(nxt, 0, L - 1), cols], 0.0)
    wp = np.where(has_p, 1 - _smooth((t - prev) / radius), 0.0)
    wn = np.where(has_n, 1 - _smooth((nxt - t) / radius), 0.0)
    # between two close keys, blend their differences so the correction stays smooth
    both = has_p & has_n & (nxt > prev)
    a = np.where(both, (t - prev) / np.maximum(nxt - prev, 1), 0.0)
    lerp = dp * (1 - a) + dn * a
    near = np.maximum(wp, wn)
    out = np.where(both, lerp * np.maximum(near, np.minimum(1.0, 2 * radius / np.maximum(nxt - prev, 1))), dp * wp + dn * wn)
    return np.where(keyed, delta, out)
