"""How a motion longer than the model's window is laid out in windows.

Keyed motions are chained: overlapping windows, each continuing the one before
from its last key (:func:`chain_windows`). Free motion (text, music, nothing
keyed) is stitched: independent windows joined by in-betweened transitions
(:func:`plan_segments`, :func:`place_after`).

Chained free motion let a small bias per window pile up: a minute from text
ended with the legs crossed (docs/model_history.md, long motions). Stitched, every
window is sampled on its own, so none inherits another's drift; each is turned
and moved to carry on where the one before stops, and the ``gap`` frames
between them are left for the model to in-between from ``context`` frames on
either side (the in-betweening query it was trained on). These are the pure
parts: the plans and the placement; kinemo.model.generator samples them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import rotations as R
from ..core.smpl import FLOOR, UP, heading


@dataclass(frozen=True)
class Window:
    start: int
    stop: int


def plan_windows(frames: int, size: int, overlap: int) -> list[Window]:
    """Cover ``frames`` with windows of at most ``size`` frames overlapping by ``overlap``: the layout
    :func:`chain_windows` gives a motion with no key in any window's second half."""
    if frames <= size:
        return [Window(0, frames)]
    out, s = [], 0
    while True:
        e = min(s + size, frames)
        out.append(Window(s, e))
        if e == frames:
            return out
        s = e - overlap


def chain_windows(keyed: np.ndarray, size: int, overlap: int, context: int = 10) -> list[tuple[Window, int]]:
    """Windows of at most ``size`` frames for a keyed motion, each with the end (exclusive) of the frames it
    hands on to the next as keys. keyed ``(T, C)`` or ``(T,)`` bool, the user's keys.

    Frames after a window's last key were made without the keys that come after the window; handed on, they
    would pin the next window's start, which would then have to reach its first key from them in however few
    frames were left (a pop at that key). So where the window's last key lies in its second half, the window
    hands on frames only up to that key, and the next one starts ``context`` frames before it (or ``overlap``
    frames before this window's end, if that is earlier) and makes the rest with its keys in view. Otherwise
    (no key there) the whole window is handed on and the next overlaps it by ``overlap`` frames, as
    :func:`plan_windows` lays them out.
    """
    k = np.asarray(keyed).reshape(len(keyed), -1).any(1)
    T, out, s = len(k), [], 0
    while True:
        e = min(s + size, T)
        if e == T:
            out.append((Window(s, e), e))
            return out
        inside = np.flatnonzero(k[s:e])
        last = s + int(inside[-1]) if len(inside) else -1
        if last >= e - size // 2 and last - context > s:
            out.append((Window(s, e), last + 1))
            s = min(e - overlap, last - context)
        else:
            out.append((Window(s, e), e))
            s = e - overlap


def plan_segments(frames: int, window: int, gap: int) -> list[Window]:
    """Free windows of at most ``window`` frames covering ``frames`` with ``gap`` frames between neighbours.

    As few windows as fit, of near-equal length (the first ones one frame longer where it does not divide).
    """
    if frames <= window:
        return [Window(0, frames)]
    n = -(-(frames + gap) // (window + gap))                 # ceil: n windows and n - 1 gaps cover frames
    body = frames - (n - 1) * gap
    sizes = [body // n + (i < body % n) for i in range(n)]
    out, s = [], 0
    for size in sizes:
        out.append(Window(s, s + size))
        s += size + gap
    return out


def yaw(pelvis: np.ndarray) -> np.ndarray:
    """Heading angle (radians about +Y, 0 facing +Z) of pelvis world rotations ``(N, 4)`` -> ``(N,)``, unwrapped."""
    return np.unwrap(heading(pelvis))


def trend(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares line through samples ``(n, ...)`` one frame apart: its values at the first and last
    sample and its slope per frame, each ``(...)``. With one sample the slope is 0."""
    n = len(y)
    if n < 2:
        return y[0], y[0], np.zeros_like(y[0])
    t = np.arange(n) - (n - 1) / 2
    mean = y.mean(0)
    slope = np.tensordot(t, y - mean, axes=(0, 0)) / (t @ t)
    return mean - slope * (n - 1) / 2, mean + slope * (n - 1) / 2, slope


def place_after(prev_q: np.ndarray, prev_r: np.ndarray, quats: np.ndarray, root: np.ndarray, gap: int,
                span: int) -> tuple[np.ndarray, np.ndarray]:
    """Turn and move a window so that it carries on ``gap`` frames after another ends.

    prev_q ``(P, 24, 4)``, prev_r ``(P, 3)``: the window before; quats ``(L, 24, 4)``, root ``(L, 3)``: the next
    one, anywhere. Returns the next one with its pelvis turned about +Y and its root moved on the floor (heights
    kept) so that its first frame is where the body would be after ``gap + 1`` frames at the mean of the
    turning rate and ground velocity that the last ``span`` frames before and the first ``span`` after have
    (so a walk keeps walking through the join, and a body standing still stays put).

    Facing and rates are read from least-squares lines over those frames, not from the end frames: a walking
    pelvis swings several degrees each way with every step, and aligning the swing's phase at two ends set each
    window off in its own direction (over 20 s a straight walk's heading changed 16-19 degrees net at the mean,
    9-10 now; docs/model.md).
    """
    k = max(1, min(span, len(prev_q), len(quats)))
    steps = gap + 1
    _, a_end, a_rate = trend(yaw(prev_q[-k:, 0]))
    b_start, _, b_rate = trend(yaw(quats[:k, 0]))
    turn = a_end - b_start + (a_rate + b_rate) / 2 * steps
    spin = R.axis_angle_to_quat(turn * UP)
    q = quats.copy()
    q[:, 0] = R.quat_mul(np.broadcast_to(spin, q[:, 0].shape), q[:, 0])
    rel = R.quat_apply(np.broadcast_to(spin, root.shape[:-1] + (4,)), (root - root[:1]) * FLOOR)
    _, a_pos, a_vel = trend(prev_r[-k:] * FLOOR)
    b_pos, _, b_vel = trend(rel[:k])
    # the window starts where the line through the last frames would be after `steps` frames, its own offset
    # from its line kept (the heights are the window's own)
    r = rel - b_pos + a_pos + (a_vel + b_vel) / 2 * steps
    r[:, 1] = root[:, 1]
    return q, r
