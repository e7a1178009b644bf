"""The one change of axes between Blender and the backend.

Blender is Z-up with characters facing -Y; the backend is Y-up with
characters facing +Z. Both are right-handed metres with the character's left
on +X, so the change is a rotation by -90 degrees about X:
``(x, y, z)_blender -> (x, z, -y)_backend``. Blender's own BVH importer uses
the same rotation with its default axes (forward -Z, up Y), so a BVH read by
the backend and the same file imported into Blender differ by exactly this.

Only the world frame changes: a bone's own axes (Blender's bone roll) travel
unchanged inside its rest rotation, so local transforms of non-root joints
are the same numbers on both sides. The Blender add-on cannot import kinemo
and carries a copy of :data:`BLENDER_TO_BACKEND`; a test checks they agree.
"""
from __future__ import annotations

import numpy as np

# Rows: backend x, y, z written in Blender coordinates.
BLENDER_TO_BACKEND = np.array([[1.0, 0.0, 0.0],
                               [0.0, 0.0, 1.0],
                               [0.0, -1.0, 0.0]])
BACKEND_TO_BLENDER = BLENDER_TO_BACKEND.T.copy()
# The same rotation as a w-first quaternion: -90 degrees about X.
BLENDER_TO_BACKEND_QUAT = np.array([np.sqrt(0.5), -np.sqrt(0.5), 0.0, 0.0])


def _points(a: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, np.float64)
    if p.shape[-1] != 3:
        raise ValueError(f"points must be (..., 3), got {p.shape}")
    return p @ a.T


def _matrices(a: np.ndarray, m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    if m.shape[-2:] != (4, 4):
        raise ValueError(f"matrices must be (..., 4, 4), got {m.shape}")
    out = m.copy()
    out[..., :3, :] = np.einsum("ab,...bc->...ac", a, m[..., :3, :])
    return out


def blender_to_backend_points(p: np.ndarray) -> np.ndarray:
    """Positions or directions ``(..., 3)`` from Blender's frame to the backend's."""
    return _points(BLENDER_TO_BACKEND, p)


def backend_to_blender_points(p: np.ndarray) -> np.ndarray:
    """Positions or directions ``(..., 3)`` from the backend's frame to Blender's."""
    return _points(BACKEND_TO_BLENDER, p)


def blender_to_backend_matrices(m: np.ndarray) -> np.ndarray:
    """World transforms ``(..., 4, 4)`` (e.g. ``bone.matrix_local``) into the backend's world.

    Left-multiplies by the axis change, keeping each bone's own axes.
    """
    return _matrices(BLENDER_TO_BACKEND, m)


def backend_to_blender_matrices(m: np.ndarray) -> np.ndarray:
    """Inverse of :func:`blender_to_backend_matrices`. ``(..., 4, 4)``."""
    return _matrices(BACKEND_TO_BLENDER, m)
