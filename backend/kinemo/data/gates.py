"""Quality gates: reasons to leave a take out of the corpus.

Each check returns a reason (a short sentence with the measured number) or None.
Thresholds live in :class:`GateConfig`; the build report lists every drop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.skeleton import Skeleton
from .clip import CONTACT_JOINTS, Clip


@dataclass(frozen=True)
class GateConfig:
    min_seconds: float = 1.0        # shorter clips carry too little motion to learn from
    bone_tolerance: float = 0.10    # relative change of a source bone's length over the take
    bone_tolerance_m: float = 0.02  # ... and at least this many metres
    max_penetration: float = 0.10   # metres a foot may sink below the floor
    max_float_seconds: float = 1.0  # longest time with both feet well above the floor
    float_height: float = 0.25      # metres above rest height counting as "in the air"
    max_root_speed: float = 12.0    # m/s between two frames; faster is a teleport


def check_finite(*arrays: np.ndarray) -> str | None:
    for a in arrays:
        if not np.all(np.isfinite(a)):
            return "NaN or infinite values in the motion"
    return None


def check_bone_lengths(skel: Skeleton, positions: np.ndarray, cfg: GateConfig, pelvis: int = 0) -> str | None:
    """Bones of the body (below ``pelvis``) must keep their length over the take.

    positions: ``(T, J, 3)`` of ``skel``. Joints above the pelvis (e.g. a ground-projection
    root) legitimately move relative to it and are not checked.
    """
    par = skel.parents
    child = np.array(skel.descendants(pelvis), dtype=np.int64)
    if child.size == 0:
        return None
    lengths = np.linalg.norm(positions[:, child] - positions[:, par[child]], axis=-1)  # (T, B)
    ref = np.median(lengths, axis=0)
    dev = np.abs(lengths - ref).max(axis=0)
    bad = dev > np.maximum(cfg.bone_tolerance * ref, cfg.bone_tolerance_m)
    if np.any(bad):
        b = int(np.argmax(np.where(bad, dev, -1)))
        return (f"broken bone length: {skel.names[child[b]]} changes by {dev[b] * 100:.1f} cm "
                f"(median {ref[b] * 100:.1f} cm)")
    return None


def check_clip(clip: Clip, rest_heights: np.ndarray, cfg: GateConfig) -> str | None:
    """Gates on the canonical clip. rest_heights: ``(4,)`` rest heights of the contact joints."""
    if clip.num_frames < cfg.min_seconds * clip.fps:
        return f"too short: {clip.num_frames / clip.fps:.2f} s (minimum {cfg.min_seconds:g} s)"
    bad = check_finite(clip.quats, clip.root, clip.positions)
    if bad:
        return bad
    feet = clip.positions[:, CONTACT_JOINTS, 1] - rest_heights  # (T, 4) height above standing
    lowest = feet.min(axis=1)
    if -lowest.min() > cfg.max_penetration:
        return f"foot penetration: {-lowest.min() * 100:.1f} cm below the floor"
    air = lowest > cfg.float_height
    run = _longest_run(air)
    if run > cfg.max_float_seconds * clip.fps:
        return f"floating: feet {cfg.float_height * 100:.0f}+ cm above the floor for {run / clip.fps:.1f} s"
    if clip.num_frames > 1:
        speed = np.linalg.norm(np.diff(clip.root, axis=0), axis=-1) * clip.fps
        if speed.max() > cfg.max_root_speed:
            return f"teleporting root: {speed.max():.1f} m/s at frame {int(np.argmax(speed)) + 1}"
    return None


def _longest_run(mask: np.ndarray) -> int:
    best = cur = 0
    for v in mask:
        cur = cur + 1 if v else 0
        best = max(best, cur)
    return best
