"""Random key masks for training, so one model serves every way of keying.

A mask is ``(L, 25)`` bool: channel 0 keys the root position, channel
``1 + j`` keys joint ``j``'s rotation. The families mirror what animators do:
nothing keyed (free generation), context + target (in-betweening), sparse
whole poses, partial bodies (hands only, legs only, ...), a root path only.
One more family is what a chained window asks (a keyed motion longer than the
window, kinemo.model.stitch): it continues the one before, its first frames
keyed whole and nothing after them (``continue``; drawn by whole batches, see
TrainConfig.continuation, so it is not in the per-sample mixture). And one is
an animator's blocking pass: single whole poses every few frames, after such a
prefix or not (``every``; drawn by whole batches, TrainConfig.focus_every).
"""
from __future__ import annotations

import numpy as np

from ..core.smpl import SMPL_JOINT_NAMES
from .features import MASK_DIMS

_IDX = {n: i for i, n in enumerate(SMPL_JOINT_NAMES)}
BODY_PARTS: dict[str, tuple[int, ...]] = {
    "arms": tuple(_IDX[n] for n in SMPL_JOINT_NAMES
                  if any(k in n for k in ("collar", "shoulder", "elbow", "wrist", "hand"))),
    "hands": tuple(_IDX[n] for n in SMPL_JOINT_NAMES if any(k in n for k in ("elbow", "wrist", "hand"))),
    "legs": tuple(_IDX[n] for n in SMPL_JOINT_NAMES if any(k in n for k in ("hip", "knee", "ankle", "foot"))),
    "torso": tuple(_IDX[n] for n in ("pelvis", "spine1", "spine2", "spine3", "neck", "head")),
}

SHORT_GAP = 60   # frames
# family -> probability
FAMILIES = {"free": 0.2, "inbetween": 0.35, "sparse": 0.15, "partial": 0.15, "trajectory": 0.1, "dense": 0.05}
ALL_FAMILIES = (*FAMILIES, "continue", "every")


def _frames_inbetween(L: int, rng: np.random.Generator) -> np.ndarray:
    """Context at the start, a gap, and a target (one frame or a tail)."""
    keyed = np.zeros(L, bool)
    ctx = int(rng.integers(1, min(11, L - 1)))
    keyed[:ctx] = True
    # Animators key every 10-60 frames: most gaps are drawn there, the rest anywhere up to the window's end.
    longest = L - ctx - 1            # leaves room for the target
    gap = int(rng.integers(1, (min(longest, SHORT_GAP) if rng.random() < 0.6 else longest) + 1))
    end = ctx + gap
    if end < L:
        tail = 1 if rng.random() < 0.5 else int(rng.integers(1, L - end + 1))
        keyed[end:end + tail] = True
    return keyed


CONTINUE_CONTEXT = 45   # most frames a continuation's keyed prefix has (SamplerConfig.overlap is 30)


def _frames_continue(L: int, rng: np.random.Generator) -> np.ndarray:
    """A keyed prefix of 1 to ``min(CONTINUE_CONTEXT, L // 2)`` frames and nothing after it."""
    keyed = np.zeros(L, bool)
    keyed[:int(rng.integers(1, max(1, min(CONTINUE_CONTEXT, L // 2)) + 1))] = True
    return keyed


def _frames_every(L: int, rng: np.random.Generator) -> np.ndarray:
    """Single keys every 3-61 frames (each spacing within 25% of the window's own), after a keyed prefix of 1 to
    ``CONTINUE_CONTEXT`` frames as a chained window has, or (a third of the time) from a first key anywhere in
    the first spacing. The ``sparse`` family keys at most 9 frames at random, never an even beat of keys."""
    keyed = np.zeros(L, bool)
    spacing = int(rng.integers(3, 62))
    if rng.random() < 1 / 3:
        at = int(rng.integers(0, min(spacing, L)))
    else:
        at = int(rng.integers(1, max(1, min(CONTINUE_CONTEXT, L // 2)) + 1)) - 1
        keyed[:at] = True
    while at < L:
        keyed[at] = True
        at += max(2, int(round(spacing * rng.uniform(0.75, 1.25))))
    return keyed


def _frames_sparse(L: int, rng: np.random.Generator) -> np.ndarray:
    keyed = np.zeros(L, bool)
    keyed[rng.choice(L, size=int(rng.integers(1, min(9, L) + 1)), replace=False)] = True
    return keyed


def random_mask(L: int, rng: np.random.Generator, family: str | None = None) -> np.ndarray:
    """One training mask ``(L, 25)`` bool."""
    if family is None:
        family = rng.choice(list(FAMILIES), p=list(FAMILIES.values()))
    m = np.zeros((L, MASK_DIMS), bool)
    if family == "free":
        return m
    if family == "inbetween":
        m[_frames_inbetween(L, rng)] = True
    elif family == "continue":
        m[_frames_continue(L, rng)] = True
    elif family == "sparse":
        m[_frames_sparse(L, rng)] = True
    elif family == "every":
        m[_frames_every(L, rng)] = True
    elif family == "dense":
        keyed = rng.random(L) < rng.uniform(0.5, 0.95)
        m[keyed] = True
    elif family == "partial":
        frames = _frames_inbetween(L, rng) if rng.random() < 0.5 else _frames_sparse(L, rng)
        if rng.random() < 0.3:
            frames |= rng.random(L) < 0.5
        part = rng.choice(list(BODY_PARTS))
        joints = (np.array(BODY_PARTS[part]) if rng.random() < 0.7
                  else rng.choice(24, int(rng.integers(1, 12)), replace=False))
        m[np.ix_(frames, 1 + joints)] = True
        m[frames, 0] = rng.random() < 0.5
    elif family == "trajectory":
        frames = np.ones(L, bool) if rng.random() < 0.6 else (rng.random(L) < rng.uniform(0.05, 0.5))
        m[frames, 0] = True
        if rng.random() < 0.5:   # with the facing at the start, as a user's first key would give
            m[0, 1] = True
    else:
        raise ValueError(f"unknown mask family {family!r}")
    return m


def anchor_of(mask: np.ndarray) -> int:
    """The frame the window is canonicalised on: the first frame with anything keyed, else 0."""
    any_key = mask.any(-1)
    return int(np.argmax(any_key)) if any_key.any() else 0
