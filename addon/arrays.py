"""Small numpy helpers for the bridge: the axis change and rotation conversions.

The add-on runs inside Blender, where the ``kinemo`` package (and torch) is
not installed, so it carries these few functions itself. They follow the
backend's conventions (quaternions w-first, column vectors) and are tested
against ``kinemo.core.rotations`` and ``kinemo.core.axes``. No bpy here.
"""
from __future__ import annotations

import numpy as np

# Blender (Z-up, facing -Y) -> backend (Y-up, facing +Z): (x, y, z) -> (x, z, -y).
# Same numbers as kinemo.core.axes.BLENDER_TO_BACKEND.
BLENDER_TO_BACKEND = np.array([[1.0, 0.0, 0.0],
                               [0.0, 0.0, 1.0],
                               [0.0, -1.0, 0.0]])


def to_backend(m: np.ndarray) -> np.ndarray:
    """Blender-world transforms ``(..., 4, 4)`` -> backend world (bone axes kept)."""
    out = np.array(m, np.float64)
    out[..., :3, :] = np.einsum("ab,...bc->...ac", BLENDER_TO_BACKEND, out[..., :3, :])
    return out


def from_backend(m: np.ndarray) -> np.ndarray:
    """Backend-world transforms ``(..., 4, 4)`` -> Blender world."""
    out = np.array(m, np.float64)
    out[..., :3, :] = np.einsum("ba,...bc->...ac", BLENDER_TO_BACKEND, out[..., :3, :])
    return out


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """``(..., 4)`` w-first (normalised here) -> ``(..., 3, 3)``."""
    q = np.asarray(q, np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
    w, x, y, z = np.moveaxis(q, -1, 0)
    m = np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                  2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                  2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1)
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` -> unit quaternions ``(..., 4)``, w-first.

    For each matrix the largest of ``|w|, |x|, |y|, |z|`` is solved first, which
    keeps the division well away from zero.
    """
    m = np.asarray(m, np.float64)
    t = np.stack([1 + m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2],
                  1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                  1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
                  1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], -1)  # 4 * component^2
    a = m[..., 2, 1] - m[..., 1, 2]
    b = m[..., 0, 2] - m[..., 2, 0]
    c = m[..., 1, 0] - m[..., 0, 1]
    d = m[..., 0, 1] + m[..., 1, 0]
    e = m[..., 0, 2] + m[..., 2, 0]
    f = m[..., 1, 2] + m[..., 2, 1]
    cand = np.stack([np.stack([t[..., 0], a, b, c], -1),
                     np.stack([a, t[..., 1], d, e], -1),
                     np.stack([b, d, t[..., 2], f], -1),
                     np.stack([c, e, f, t[..., 3]], -1)], -2)
    k = np.argmax(t, -1)
    q = np.take_along_axis(cand, k[..., None, None], -2)[..., 0, :]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def quat_continuous(q: np.ndarray) -> np.ndarray:
    """Flip signs along axis 0 (time) so consecutive quaternions agree. ``(T, ..., 4)``."""
    q = np.array(q, np.float64)
    for t in range(1, len(q)):
        flip = np.sum(q[t] * q[t - 1], -1, keepdims=True) < 0
        q[t] = np.where(flip, -q[t], q[t])
    return q


def _axis_rotation(axis: int, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    m = np.zeros(angle.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m[..., axis, axis] = 1.0
    m[..., i, i] = c
    m[..., j, j] = c
    m[..., i, j] = -s
    m[..., j, i] = s
    return m


def euler_to_matrix(angles: np.ndarray, mode: str) -> np.ndarray:
    """Blender Euler angles ``(..., 3)`` (x, y, z in radians) -> ``(..., 3, 3)``.

    ``mode`` is a pose bone's ``rotation_mode`` such as ``"XYZ"``: Blender
    rotates about the first letter's axis first, so ``"XYZ"`` is ``Rz @ Ry @ Rx``.
    """
    if sorted(mode) != ["X", "Y", "Z"]:
        raise ValueError(f"not an Euler rotation mode: {mode!r}")
    angles = np.asarray(angles, np.float64)
    out = None
    for letter in mode:
        axis = "XYZ".index(letter)
        r = _axis_rotation(axis, angles[..., axis])
        out = r if out is None else r @ out
    return out


def axis_angle_to_matrix(angle: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Angle ``(...)`` radians about ``axis`` ``(..., 3)`` (normalised here) -> ``(..., 3, 3)``.

    A zero axis means no rotation, as in Blender.
    """
    axis = np.asarray(axis, np.float64)
    n = np.linalg.norm(axis, axis=-1, keepdims=True)
    half = 0.5 * np.asarray(angle, np.float64)[..., None]
    xyz = np.where(n > 1e-12, axis / np.maximum(n, 1e-12), 0.0) * np.sin(half)
    w = np.where(n > 1e-12, np.cos(half), 1.0)
    return quat_to_matrix(np.concatenate([w, xyz], -1))


def matrix_to_euler(m: np.ndarray, mode: str) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` -> Blender Euler angles ``(..., 3)`` (x, y, z) in ``mode``.

    The inverse of :func:`euler_to_matrix`, with the middle angle in
    [-pi/2, pi/2]; use :func:`euler_continuous` for a curve that plays smoothly.
    """
    if sorted(mode) != ["X", "Y", "Z"]:
        raise ValueError(f"not an Euler rotation mode: {mode!r}")
    i, j, k = ("XYZ".index(c) for c in mode)      # axes in the order they are applied
    s = 1.0 if (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0
    m = np.asarray(m, np.float64)
    out = np.empty(m.shape[:-2] + (3,))
    out[..., i] = np.arctan2(s * m[..., k, j], m[..., k, k])
    out[..., j] = np.arcsin(np.clip(-s * m[..., k, i], -1.0, 1.0))
    out[..., k] = np.arctan2(s * m[..., j, i], m[..., i, i])
    return out


def euler_continuous(angles: np.ndarray, mode: str) -> np.ndarray:
    """Euler angles ``(T, ..., 3)`` made continuous along axis 0 (time), as Blender's compatible Euler does:
    per frame, of the two equivalent triples (first + pi, pi - middle, last + pi) and their 2 pi turns, the one
    nearest the previous frame's. Keyed per frame, such curves play the same rotations without spins."""
    i, j, k = ("XYZ".index(c) for c in mode)
    e = np.array(angles, np.float64)
    alt = e.copy()
    alt[..., i] += np.pi
    alt[..., j] = np.pi - alt[..., j]
    alt[..., k] += np.pi
    two_pi = 2.0 * np.pi
    for t in range(1, len(e)):
        prev = e[t - 1]
        a = e[t] + two_pi * np.round((prev - e[t]) / two_pi)
        b = alt[t] + two_pi * np.round((prev - alt[t]) / two_pi)
        use_b = np.abs(b - prev).sum(-1, keepdims=True) < np.abs(a - prev).sum(-1, keepdims=True)
        e[t] = np.where(use_b, b, a)
    return e


def quat_to_axis_angle(q: np.ndarray) -> np.ndarray:
    """Quaternions ``(..., 4)`` -> Blender's axis-angle channels ``(..., 4)``: (angle, x, y, z).

    Signs are kept (pass sign-continuous quaternions for continuous angles);
    a rotation of no angle gets the Y axis, Blender's default.
    """
    q = np.asarray(q, np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    n = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(n, q[..., :1])
    axis = np.where(n > 1e-12, q[..., 1:] / np.maximum(n, 1e-12), [0.0, 1.0, 0.0])
    return np.concatenate([angle, axis], -1)


def rigid(rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Rotation ``(..., 3, 3)`` and translation ``(..., 3)`` -> ``(..., 4, 4)``."""
    rot = np.asarray(rot, np.float64)
    m = np.zeros(rot.shape[:-2] + (4, 4))
    m[..., :3, :3] = rot
    m[..., :3, 3] = trans
    m[..., 3, 3] = 1.0
    return m


def rigid_inverse(m: np.ndarray) -> np.ndarray:
    """Inverse of rigid transforms ``(..., 4, 4)`` (rotation + translation only)."""
    r = np.swapaxes(np.asarray(m, np.float64)[..., :3, :3], -1, -2)
    return rigid(r, -np.einsum("...ab,...b->...a", r, m[..., :3, 3]))


def quat_slerp(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Shortest-arc interpolation of unit quaternions ``(..., 4)`` at weights ``w`` ``(..., 1)``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    dot = np.sum(a * b, -1, keepdims=True)
    b = np.where(dot < 0, -b, b)
    dot = np.clip(np.abs(dot), 0.0, 1.0)
    theta = np.arccos(dot)
    s = np.sin(theta)
    near = s < 1e-6  # nearly equal: linear is exact enough and avoids 0/0
    wa = np.where(near, 1 - w, np.sin((1 - w) * theta) / np.where(near, 1.0, s))
    wb = np.where(near, w, np.sin(w * theta) / np.where(near, 1.0, s))
    q = wa * a + wb * b
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def resample_motion(rotations: np.ndarray, translations: np.ndarray, fps: float,
                    new_fps: float) -> tuple[np.ndarray, np.ndarray]:
    """A motion ``(T, J, 4)`` / ``(T, J, 3)`` at ``fps`` -> the same duration at ``new_fps``.

    First and last frames are kept: ``T' = round((T - 1) * new_fps / fps) + 1``
    (as ``kinemo.core.resample``); slerp for rotations, linear for translations.
    """
    rot, trans = np.asarray(rotations, np.float64), np.asarray(translations, np.float64)
    T = len(rot)
    if abs(new_fps - fps) < 1e-9:
        return rot, trans
    n = int(round((T - 1) * new_fps / fps)) + 1
    t = np.minimum(np.arange(n) * (fps / new_fps), T - 1)
    i0 = np.floor(t).astype(int)
    i1 = np.minimum(i0 + 1, T - 1)
    w = (t - i0)[:, None, None]
    return quat_slerp(rot[i0], rot[i1], w), (1 - w) * trans[i0] + w * trans[i1]
