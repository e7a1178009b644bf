"""Rotation representations and conversions (numpy, batched over leading dims).

Conventions, for the whole of Kinemo:

- Quaternions are ``(w, x, y, z)``, w first, shape ``(..., 4)``; functions that
  return quaternions return unit quaternions with ``w >= 0`` where noted.
- Matrices act on column vectors: ``v' = R @ v``; shape ``(..., 3, 3)``.
  Composition ``R_a @ R_b`` applies ``R_b`` first.
- Right-handed frames, metres; inside the backend Y is up (Z-up only at the
  Blender boundary, see :func:`kinemo.core.axes`).
- Axis-angle is a rotation vector ``axis * angle`` (radians), ``(..., 3)``.
- 6D is the first two *columns* of the matrix, concatenated: ``(..., 6)``
  (Zhou et al. 2019); Gram-Schmidt turns any 6 numbers back into a rotation.
- Euler angles take an ``order`` string such as ``"ZXY"``: the rotation is
  ``R = R_Z(a[0]) @ R_X(a[1]) @ R_Y(a[2])``, i.e. intrinsic rotations in the
  order written, which is how BVH channel lists read. Angles in radians.
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-12


def _f(x) -> np.ndarray:
    a = np.asarray(x)
    return a if a.dtype.kind == "f" else a.astype(np.float64)


# --- quaternions -------------------------------------------------------------

def quat_identity(shape: tuple[int, ...] = ()) -> np.ndarray:
    """Identity quaternions of shape ``shape + (4,)``."""
    q = np.zeros(tuple(shape) + (4,))
    q[..., 0] = 1.0
    return q


def quat_normalize(q: np.ndarray) -> np.ndarray:
    """``(..., 4)`` -> unit quaternions ``(..., 4)``."""
    q = _f(q)
    return q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), _EPS)


def quat_canonical(q: np.ndarray) -> np.ndarray:
    """Flip sign so that ``w >= 0`` (same rotation). ``(..., 4)``."""
    q = _f(q)
    return np.where(q[..., :1] < 0, -q, q)


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """Inverse of a unit quaternion. ``(..., 4)``."""
    q = _f(q)
    return q * np.array([1.0, -1.0, -1.0, -1.0], dtype=q.dtype)


quat_inverse = quat_conjugate


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` (apply ``b`` first). ``(..., 4) x (..., 4) -> (..., 4)``."""
    a, b = _f(a), _f(b)
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], axis=-1)


def quat_apply(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors: ``(..., 4), (..., 3) -> (..., 3)``."""
    q, v = _f(q), _f(v)
    w, u = q[..., :1], q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """``(..., 4)`` -> ``(..., 3, 3)``. The quaternion need not be normalised."""
    q = quat_normalize(q)
    w, x, y, z = np.moveaxis(q, -1, 0)
    m = np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=-1)
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotation matrices -> unit quaternions ``(..., 4)`` with ``w >= 0``.

    Picks the numerically best of the four Shepperd candidates per matrix.
    """
    m = _f(m)
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # 4*q_i^2 for each component; the largest gives the stable candidate.
    sq = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                   1 - m00 + m11 - m22, 1 - m00 - m11 + m22], axis=-1)
    r = np.sqrt(np.maximum(sq, 0.0))
    cands = np.stack([
        np.stack([r[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], -1),
        np.stack([m21 - m12, r[..., 1] ** 2, m10 + m01, m02 + m20], -1),
        np.stack([m02 - m20, m10 + m01, r[..., 2] ** 2, m21 + m12], -1),
        np.stack([m10 - m01, m02 + m20, m21 + m12, r[..., 3] ** 2], -1),
    ], axis=-2)  # (..., 4 candidates, 4)
    best = np.argmax(sq, axis=-1)
    q = np.take_along_axis(cands, best[..., None, None], axis=-2)[..., 0, :]
    denom = 2.0 * np.take_along_axis(r, best[..., None], axis=-1)
    q = q / np.maximum(denom, _EPS)
    return quat_canonical(quat_normalize(q))


def axis_angle_to_quat(aa: np.ndarray) -> np.ndarray:
    """Rotation vectors ``(..., 3)`` -> quaternions ``(..., 4)``."""
    aa = _f(aa)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(x/2)/x with its Taylor series near zero.
    small = angle < 1e-6
    k = np.where(small, 0.5 - angle ** 2 / 48.0, np.sin(half) / np.where(small, 1.0, angle))
    return np.concatenate([np.cos(half), aa * k], axis=-1)


def quat_to_axis_angle(q: np.ndarray) -> np.ndarray:
    """Quaternions ``(..., 4)`` -> rotation vectors ``(..., 3)`` with angle in ``[0, pi]``."""
    q = quat_canonical(quat_normalize(q))
    s = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., :1])
    small = s < 1e-8
    k = np.where(small, 2.0 + angle ** 2 / 12.0, angle / np.where(small, 1.0, s))
    return q[..., 1:] * k


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """``(..., 3)`` -> ``(..., 3, 3)``."""
    return quat_to_matrix(axis_angle_to_quat(aa))


def matrix_to_axis_angle(m: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` -> ``(..., 3)``."""
    return quat_to_axis_angle(matrix_to_quat(m))


# --- 6D ----------------------------------------------------------------------

def matrix_to_sixd(m: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` -> ``(..., 6)``: first column then second column."""
    m = _f(m)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def sixd_to_matrix(d6: np.ndarray) -> np.ndarray:
    """``(..., 6)`` -> ``(..., 3, 3)`` by Gram-Schmidt (any 6 numbers give a rotation)."""
    d6 = _f(d6)
    a, b = d6[..., :3], d6[..., 3:]
    c0 = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), _EPS)
    b = b - np.sum(c0 * b, axis=-1, keepdims=True) * c0
    c1 = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), _EPS)
    c2 = np.cross(c0, c1)
    return np.stack([c0, c1, c2], axis=-1)


def quat_to_sixd(q: np.ndarray) -> np.ndarray:
    """``(..., 4)`` -> ``(..., 6)``."""
    return matrix_to_sixd(quat_to_matrix(q))


def sixd_to_quat(d6: np.ndarray) -> np.ndarray:
    """``(..., 6)`` -> ``(..., 4)``."""
    return matrix_to_quat(sixd_to_matrix(d6))


# --- Euler -------------------------------------------------------------------

_AXES = {"X": 0, "Y": 1, "Z": 2}


def _check_order(order: str) -> str:
    order = order.upper()
    if len(order) != 3 or any(c not in _AXES for c in order) or len(set(order)) != 3:
        raise ValueError(f"Euler order must be a permutation of 'XYZ', got {order!r}")
    return order


def _axis_matrix(axis: int, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(angle), np.zeros_like(angle)
    if axis == 0:
        rows = [o, z, z, z, c, -s, z, s, c]
    elif axis == 1:
        rows = [c, z, s, z, o, z, -s, z, c]
    else:
        rows = [c, -s, z, s, c, z, z, z, o]
    return np.stack(rows, axis=-1).reshape(angle.shape + (3, 3))


def euler_to_matrix(angles: np.ndarray, order: str = "XYZ") -> np.ndarray:
    """``(..., 3)`` radians -> ``(..., 3, 3)``; ``R = R_{o0}(a0) R_{o1}(a1) R_{o2}(a2)``."""
    order = _check_order(order)
    angles = _f(angles)
    m = _axis_matrix(_AXES[order[0]], angles[..., 0])
    for i in (1, 2):
        m = m @ _axis_matrix(_AXES[order[i]], angles[..., i])
    return m


def matrix_to_euler(m: np.ndarray, order: str = "XYZ") -> np.ndarray:
    """``(..., 3, 3)`` -> ``(..., 3)`` radians, inverse of :func:`euler_to_matrix`.

    The middle angle lies in ``[-pi/2, pi/2]``; at gimbal lock the last angle is 0.
    """
    order = _check_order(order)
    m = _f(m)
    i, j, k = (_AXES[c] for c in order)
    # sign of the permutation (i, j, k): +1 for cyclic (XYZ, YZX, ZXY)
    sign = 1.0 if (j - i) % 3 == 1 else -1.0
    sin_b = np.clip(sign * m[..., i, k], -1.0, 1.0)
    b = np.arcsin(sin_b)
    cos_b = np.sqrt(np.maximum(1.0 - sin_b ** 2, 0.0))
    locked = cos_b < 1e-7
    a = np.arctan2(-sign * m[..., j, k], m[..., k, k])
    c = np.arctan2(-sign * m[..., i, j], m[..., i, i])
    # gimbal lock: fold the last angle into the first
    a_locked = np.arctan2(sign * m[..., k, j], m[..., j, j])
    a = np.where(locked, a_locked, a)
    c = np.where(locked, 0.0, c)
    return np.stack([a, b, c], axis=-1)


def euler_to_quat(angles: np.ndarray, order: str = "XYZ") -> np.ndarray:
    """``(..., 3)`` radians -> ``(..., 4)``."""
    return matrix_to_quat(euler_to_matrix(angles, order))


def quat_to_euler(q: np.ndarray, order: str = "XYZ") -> np.ndarray:
    """``(..., 4)`` -> ``(..., 3)`` radians."""
    return matrix_to_euler(quat_to_matrix(q), order)


# --- interpolation and helpers ------------------------------------------------

def quat_slerp(a: np.ndarray, b: np.ndarray, t) -> np.ndarray:
    """Spherical interpolation along the shorter arc.

    ``a, b``: ``(..., 4)``; ``t``: scalar or array broadcastable to ``(...)``.
    Returns ``(..., 4)``; ``t=0`` gives ``a``, ``t=1`` gives ``b`` (up to sign).
    """
    a, b = quat_normalize(a), quat_normalize(b)
    t = np.asarray(t, dtype=a.dtype)[..., None]
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0, -b, b)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_t = np.sin(theta)
    near = sin_t < 1e-6
    safe = np.where(near, 1.0, sin_t)
    wa = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    wb = np.where(near, t, np.sin(t * theta) / safe)
    return quat_normalize(wa * a + wb * b)


def quat_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shortest-arc rotation taking direction ``u`` to direction ``v``. ``(..., 3) -> (..., 4)``.

    Antiparallel inputs rotate by pi about an axis perpendicular to ``u``.
    """
    u = _f(u) / np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), _EPS)
    v = _f(v) / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), _EPS)
    w = 1.0 + np.sum(u * v, axis=-1, keepdims=True)
    axis = np.cross(u, v)
    anti = w[..., 0] < 1e-8
    if np.any(anti):
        # any perpendicular: cross with the coordinate axis least aligned with u
        helper = np.eye(3)[np.argmin(np.abs(u), axis=-1)]
        perp = np.cross(u, helper)
        perp /= np.maximum(np.linalg.norm(perp, axis=-1, keepdims=True), _EPS)
        axis = np.where(anti[..., None], perp, axis)
        w = np.where(anti[..., None], 0.0, w)
    return quat_canonical(quat_normalize(np.concatenate([w, axis], axis=-1)))


def quat_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic angle between rotations, radians in ``[0, pi]``. ``(..., 4) -> (...)``."""
    # atan2 of the relative rotation's parts stays exact near 0, where arccos(dot) loses ~1e-8 rad
    rel = quat_mul(quat_conjugate(quat_normalize(a)), quat_normalize(b))
    return 2.0 * np.arctan2(np.linalg.norm(rel[..., 1:], axis=-1), np.abs(rel[..., 0]))


def quat_continuous(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along ``axis`` (time) so consecutive quaternions stay in one hemisphere."""
    q = np.moveaxis(_f(q).copy(), axis, 0)
    for t in range(1, q.shape[0]):
        flip = np.sum(q[t] * q[t - 1], axis=-1, keepdims=True) < 0
        q[t] = np.where(flip, -q[t], q[t])
    return np.moveaxis(q, 0, axis)
