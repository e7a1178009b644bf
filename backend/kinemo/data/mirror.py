"""Left/right mirroring on the SMPL skeleton: reflection across the YZ plane (x -> -x).

A reflection M = diag(-1, 1, 1) turns a rotation R into M R M, which for a
quaternion (w, x, y, z) is (w, x, -y, -z); joints swap with their other-side twin.
Mirroring twice gives the clip back exactly.
"""
from __future__ import annotations

import numpy as np

from ..core.smpl import SMPL_JOINT_NAMES
from .clip import Clip

# joint index -> index of its mirror twin (itself for the centre line)
MIRROR_JOINTS = np.array([
    SMPL_JOINT_NAMES.index(n.replace("left_", "@").replace("right_", "left_").replace("@", "right_"))
    for n in SMPL_JOINT_NAMES])
# contacts are (left_ankle, right_ankle, left_foot, right_foot)
MIRROR_CONTACTS = np.array([1, 0, 3, 2])


def mirror_quats(q: np.ndarray) -> np.ndarray:
    """Reflect rotations across the YZ plane. ``(..., 4)`` -> ``(..., 4)``."""
    return q * np.array([1, 1, -1, -1], dtype=q.dtype)


def mirror_points(p: np.ndarray) -> np.ndarray:
    """Reflect points across the YZ plane. ``(..., 3)`` -> ``(..., 3)``."""
    return p * np.array([-1, 1, 1], dtype=p.dtype)


def mirror_motion(quats: np.ndarray, root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local rotations ``(T, 24, 4)`` and root ``(T, 3)`` of the mirrored motion (joints swapped with their twins);
    its own inverse."""
    return mirror_quats(quats[:, MIRROR_JOINTS]), mirror_points(root)


def mirror(clip: Clip) -> Clip:
    """The mirrored clip (left and right swapped). Assumes a left/right-symmetric rest skeleton."""
    return Clip(*mirror_motion(clip.quats, clip.root), mirror_points(clip.positions[:, MIRROR_JOINTS]),
                clip.contacts[:, MIRROR_CONTACTS], clip.fps)
