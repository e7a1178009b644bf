"""The canonical skeleton: SMPL's 24-joint topology, names and order.

Inside the backend every motion lives on this skeleton (Y up, facing +Z,
the body's left on +X, metres). ``smpl_skeleton()`` gives a T-pose of plausible
adult proportions; :mod:`kinemo.core.smpl_model` builds the exact one for a body
shape from an official SMPL model file when the user has one.
"""
from __future__ import annotations

import numpy as np

from .skeleton import Skeleton

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee",
    "spine2", "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot",
    "neck", "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)
SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)
NUM_JOINTS = 24

# Rest positions of the default T-pose, world frame, metres, floor at y = 0.
# Replaced by measured numbers in smpl_model.DEFAULT_REST_POSITIONS when present.
_REST_POSITIONS = np.array([
    [0.000, 0.940, 0.000],   # pelvis
    [0.085, 0.850, 0.000],   # left_hip
    [-0.085, 0.850, 0.000],  # right_hip
    [0.000, 1.050, -0.010],  # spine1
    [0.095, 0.480, 0.010],   # left_knee
    [-0.095, 0.480, 0.010],  # right_knee
    [0.000, 1.180, -0.010],  # spine2
    [0.095, 0.080, -0.020],  # left_ankle
    [-0.095, 0.080, -0.020], # right_ankle
    [0.000, 1.230, -0.005],  # spine3
    [0.100, 0.020, 0.120],   # left_foot
    [-0.100, 0.020, 0.120],  # right_foot
    [0.000, 1.460, -0.020],  # neck
    [0.075, 1.380, -0.010],  # left_collar
    [-0.075, 1.380, -0.010], # right_collar
    [0.000, 1.540, 0.020],   # head
    [0.180, 1.400, -0.020],  # left_shoulder
    [-0.180, 1.400, -0.020], # right_shoulder
    [0.440, 1.400, -0.030],  # left_elbow
    [-0.440, 1.400, -0.030], # right_elbow
    [0.690, 1.400, -0.020],  # left_wrist
    [-0.690, 1.400, -0.020], # right_wrist
    [0.770, 1.395, -0.020],  # left_hand
    [-0.770, 1.395, -0.020], # right_hand
])


def skeleton_from_positions(positions: np.ndarray, names=SMPL_JOINT_NAMES,
                            parents=SMPL_PARENTS) -> Skeleton:
    """A skeleton with identity rest rotations whose rest joints sit at ``positions`` ``(J, 3)``."""
    positions = np.asarray(positions, np.float64)
    par = np.asarray(parents)
    offsets = positions - np.where(par[:, None] < 0, 0.0, positions[np.maximum(par, 0)])
    return Skeleton(tuple(names), par, offsets)


def smpl_skeleton() -> Skeleton:
    """The canonical SMPL-topology skeleton in its default T-pose."""
    return skeleton_from_positions(_REST_POSITIONS)
