"""Resampling a motion to another frame rate: slerp for rotations, linear for translations."""
from __future__ import annotations

import numpy as np

from . import rotations as R
from .skeleton import Motion


def resample_times(num_frames: int, fps: float, new_fps: float) -> np.ndarray:
    """Source-frame coordinates ``(T',)`` of the new frames spanning the same duration.

    The first and last frames are kept: ``T' = round((T - 1) * new_fps / fps) + 1``.
    """
    if num_frames < 1:
        raise ValueError("cannot resample an empty motion")
    if not (new_fps > 0 and np.isfinite(new_fps)):
        raise ValueError(f"fps must be positive, got {new_fps}")
    n = int(round((num_frames - 1) * new_fps / fps)) + 1
    return np.minimum(np.arange(n) * (fps / new_fps), num_frames - 1)


def sample(motion: Motion, frames: np.ndarray) -> Motion:
    """Motion at fractional source frames ``(T',)`` (clamped to the clip)."""
    frames = np.clip(np.asarray(frames, np.float64), 0, motion.num_frames - 1)
    i0 = np.floor(frames).astype(int)
    i1 = np.minimum(i0 + 1, motion.num_frames - 1)
    w = frames - i0
    rot = R.quat_slerp(motion.rotations[i0], motion.rotations[i1], w[:, None])
    trans = (1 - w)[:, None, None] * motion.translations[i0] + w[:, None, None] * motion.translations[i1]
    return Motion(rot, trans, motion.fps)


def resample(motion: Motion, new_fps: float) -> Motion:
    """The same motion at ``new_fps`` (same duration, first and last frames kept)."""
    if abs(new_fps - motion.fps) < 1e-9:
        return motion.copy()
    out = sample(motion, resample_times(motion.num_frames, motion.fps, new_fps))
    out.fps = float(new_fps)
    return out
