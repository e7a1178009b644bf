"""Keys met exactly and without a pop.

During sampling the keyed features are imputed at every step; what is left
is the small difference between the network's last prediction and the keys.
Pasting keys over the prediction would leave a step there (a pop), so the
difference is spread over the neighbouring frames with a smooth fall-off
and the keys are then copied in bit-exactly (in quaternions, not 6D).
"""
from __future__ import annotations

import numpy as np

from ..core.easing import smoothstep


def _tangent(x: np.ndarray) -> np.ndarray:
    """Hermite basis of the start slope (0 with zero slope at both ends, slope 1 at 0): ``u (1 - u)^2``."""
    x = np.clip(x, 0.0, 1.0)
    return x * (1 - x) ** 2


def key_slopes(delta: np.ndarray, keyed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame slopes of ``delta`` ``(L, C)`` into and out of runs of keys.

    Returns (back, fwd) ``(L, C)``: ``delta[t] - delta[t-1]`` where frames t-1 and t are both keyed, and
    ``delta[t+1] - delta[t]`` where t and t+1 are, else 0. A lone key has slope 0 on both sides.
    """
    d = np.diff(delta, axis=0)
    both = keyed[1:] & keyed[:-1]
    z = np.zeros_like(delta[:1])
    back = np.concatenate([z, np.where(both, d, 0.0)])
    fwd = np.concatenate([np.where(both, d, 0.0), z])
    return back, fwd


def spread_correction(delta: np.ndarray, keyed: np.ndarray, radius: float = 8.0, runs: np.ndarray | None = None
                      ) -> np.ndarray:
    """Correction for every frame from per-key differences.

    delta ``(L, C)``: key minus prediction (used where ``keyed``); keyed ``(L, C)`` bool.
    Returns ``(L, C)``: equal to ``delta`` on keyed frames. Between two keys, a cubic (Hermite) blend of their
    differences: at full strength when they are at most ``2 * radius`` frames apart, else fading smoothly
    to zero within ``radius`` frames of either key. Before the first and after the last key, that key's
    difference fading smoothly to zero over ``radius`` frames. Where keys come in runs (a context of
    consecutive keyed frames), the correction leaves the run with the run's own slope, so the velocity does
    not jump at the seam (a fade that starts flat would halt the run's drift there: a pop in jerk).
    runs ``(L, C)`` bool or None: the keys whose runs carry their slope (None: all).
    """
    L, C = delta.shape
    t = np.arange(L, dtype=np.float64)[:, None]
    idx = np.where(keyed, np.arange(L)[:, None], -1)
    prev = np.maximum.accumulate(idx, axis=0)                                   # last key at or before t
    nxt = np.where(keyed, np.arange(L)[:, None], L)[::-1]
    nxt = np.minimum.accumulate(nxt, axis=0)[::-1]                               # first key at or after t
    has_p, has_n = prev >= 0, nxt < L
    cols = np.arange(C)[None]
    back, fwd = key_slopes(delta, keyed if runs is None else keyed & runs)
    pi, ni = np.clip(prev, 0, L - 1), np.clip(nxt, 0, L - 1)
    dp = np.where(has_p, delta[pi, cols], 0.0)
    dn = np.where(has_n, delta[ni, cols], 0.0)
    sp = np.where(has_p, back[pi, cols], 0.0)        # slope leaving the key before (from its run)
    sn = np.where(has_n, fwd[ni, cols], 0.0)         # slope entering the key after
    up, vn = (t - prev) / radius, (nxt - t) / radius
    wp = np.where(has_p, 1 - smoothstep(up), 0.0)
    wn = np.where(has_n, 1 - smoothstep(vn), 0.0)
    fade = dp * wp + sp * radius * _tangent(up) + dn * wn - sn * radius * _tangent(vn)
    # between two keys, blend their differences (and slopes) so the correction stays smooth
    both = has_p & has_n & (nxt > prev)
    gap = np.maximum(nxt - prev, 1)
    a = np.where(both, (t - prev) / gap, 0.0)
    blend = dp * (1 - smoothstep(a)) + dn * smoothstep(a) + gap * (sp * _tangent(a) - sn * _tangent(1 - a))
    near = np.maximum(wp, wn)
    out = np.where(both, blend * np.maximum(near, np.minimum(1.0, 2 * radius / gap)), fade)
    return np.where(keyed, delta, out)
