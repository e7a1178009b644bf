"""Forward kinematics and global <-> local conversion (numpy).

Vectorised over frames; the loop is over joints, which are few and ordered
parent-before-child.
"""
from __future__ import annotations

import numpy as np

from . import rotations as R


def forward_kinematics(parents: np.ndarray, local_rot: np.ndarray,
                       local_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local transforms -> world transforms.

    parents: ``(J,)``; local_rot: ``(..., J, 4)``; local_pos: ``(..., J, 3)``.
    Returns world rotations ``(..., J, 4)`` and positions ``(..., J, 3)``.
    """
    local_rot = np.asarray(local_rot, np.float64)
    local_pos = np.asarray(local_pos, np.float64)
    # Matrices are faster than quaternion products when reused for positions.
    lm = R.quat_to_matrix(local_rot)
    gm = np.empty_like(lm)
    gp = np.empty(local_pos.shape, np.float64)
    for j, p in enumerate(parents):
        if p < 0:
            gm[..., j, :, :] = lm[..., j, :, :]
            gp[..., j, :] = local_pos[..., j, :]
        else:
            gm[..., j, :, :] = gm[..., p, :, :] @ lm[..., j, :, :]
            gp[..., j, :] = gp[..., p, :] + np.einsum("...ab,...b->...a", gm[..., p, :, :], local_pos[..., j, :])
    return R.matrix_to_quat(gm), gp


def global_to_local(parents: np.ndarray, global_rot: np.ndarray,
                    global_pos: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """World transforms -> local transforms (inverse of :func:`forward_kinematics`).

    global_rot: ``(..., J, 4)``; global_pos: ``(..., J, 3)`` or None.
    Returns local rotations ``(..., J, 4)`` and local translations ``(..., J, 3)`` (or None).
    """
    global_rot = np.asarray(global_rot, np.float64)
    parents = np.asarray(parents)
    par = np.where(parents < 0, 0, parents)
    root = parents < 0
    pinv = R.quat_conjugate(global_rot[..., par, :])
    local_rot = np.where(root[:, None], global_rot, R.quat_mul(pinv, global_rot))
    local_rot = R.quat_canonical(R.quat_normalize(local_rot))
    if global_pos is None:
        return local_rot, None
    global_pos = np.asarray(global_pos, np.float64)
    rel = global_pos - global_pos[..., par, :]
    local_pos = np.where(root[:, None], global_pos, R.quat_apply(pinv, rel))
    return local_rot, local_pos


def local_to_global_rotations(parents: np.ndarray, local_rot: np.ndarray) -> np.ndarray:
    """Rotations only: ``(..., J, 4)`` local -> ``(..., J, 4)`` world."""
    local_rot = np.asarray(local_rot, np.float64)
    out = np.empty_like(local_rot)
    for j, p in enumerate(parents):
        out[..., j, :] = local_rot[..., j, :] if p < 0 else R.quat_mul(out[..., p, :], local_rot[..., j, :])
    return out
