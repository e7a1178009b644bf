"""Analytic two-bone IK (hip-knee-ankle, shoulder-elbow-wrist), vectorised over frames.

The chain keeps its own bend direction: the middle joint moves in the plane of
the root-target line and the way the chain bends now, so a knee that points
forward keeps pointing forward wherever the target goes. Rotations are
returned as world-space deltas, which the caller pre-multiplies onto the
chain's world rotations.
"""
from __future__ import annotations

import numpy as np

from . import rotations as R

_EPS = 1e-9


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), _EPS)


def _perpendicular(v: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """The part of ``v`` ``(..., 3)`` square to the unit ``axis`` ``(..., 3)``."""
    return v - np.sum(v * axis, -1, keepdims=True) * axis


def two_bone(a: np.ndarray, b: np.ndarray, c: np.ndarray, target: np.ndarray,
             reach: float | np.ndarray = 0.999) -> tuple[np.ndarray, np.ndarray]:
    """World rotations that bring the chain's end ``c`` onto ``target``.

    a, b, c: ``(..., 3)`` positions of the root, middle and end joints; target ``(..., 3)``.
    Returns ``(dq_root, dq_mid)``, each ``(..., 4)``: the root joint's world rotation becomes
    ``dq_root * G_root`` and the middle joint's ``dq_mid * G_mid``. A target beyond reach is met as
    nearly as the bones allow (stretched to ``reach`` of full length, short of a locked joint); bone
    lengths never change.
    """
    l1 = np.linalg.norm(b - a, axis=-1)
    l2 = np.linalg.norm(c - b, axis=-1)
    to_t = target - a
    dist = np.clip(np.linalg.norm(to_t, axis=-1), np.abs(l1 - l2) + 1e-6, reach * (l1 + l2))
    u = _unit(to_t)
    # the middle joint's side: the way the chain bends now (its offset from its own root-end line), made square
    # to the root-target line. Its offset from the root-target line instead swung a nearly straight leg's knee
    # round towards a target moved sideways, and flipped it across once that offset passed through zero
    # (a 20 cm knee jump in one frame, jerk 10,000 m/s^3, under the foot lock).
    bend = _perpendicular(b - a, _unit(c - a))
    side = _perpendicular(bend, u)
    own = _perpendicular(b - a, u)              # a straight chain has no bend of its own: as before
    side = np.where(np.linalg.norm(side, axis=-1, keepdims=True) > 1e-6, side, own)
    fallback = _unit(np.cross(u, np.where(np.abs(u[..., :1]) < 0.9, [1.0, 0, 0], [0, 1.0, 0])))
    side = np.where(np.linalg.norm(side, axis=-1, keepdims=True) > 1e-6, _unit(side), fallback)
    along = (l1 ** 2 - l2 ** 2 + dist ** 2) / (2 * dist)
    up = np.sqrt(np.maximum(l1 ** 2 - along ** 2, 0.0))
    b_new = a + along[..., None] * u + up[..., None] * side
    c_new = a + dist[..., None] * u
    dq_root = R.quat_between(b - a, b_new - a)
    c_moved = b_new + R.quat_apply(dq_root, c - b)
    dq_mid = R.quat_mul(R.quat_between(c_moved - b_new, c_new - b_new), dq_root)
    return dq_root, dq_mid


def soft_reach(a: np.ndarray, target: np.ndarray, length: np.ndarray, start: float = 0.95,
               limit: float = 0.995) -> np.ndarray:
    """Targets ``(..., 3)`` pulled towards the chain root ``a`` ``(..., 3)`` where they near the chain's full
    ``length`` ``(...)``: distances up to ``start * length`` are kept, longer ones approach ``limit * length``
    smoothly (tanh). A hard clamp at full reach leaves a kink where the target crosses it, and a knee snapping
    straight there shows as a pop; with this the knee straightens gradually.
    """
    d = np.linalg.norm(target - a, axis=-1)
    lo, hi = start * length, limit * length
    far = d > lo
    soft = lo + (hi - lo) * np.tanh((d - lo) / np.maximum(hi - lo, _EPS))
    scale = np.where(far, soft / np.maximum(d, _EPS), 1.0)
    return a + (target - a) * scale[..., None]
