"""The canonical skeleton: SMPL's 24-joint topology, names and order.

Inside the backend every motion lives on this skeleton (Y up, facing +Z,
the body's left on +X, metres). ``smpl_skeleton()`` gives a T-pose with the
proportions of the Bandai-Namco mocap actors, the corpus the model learns from
(measured by :mod:`kinemo.core.smpl_rest`); :mod:`kinemo.core.smpl_model` builds
the exact one for a body shape from an official SMPL model file when the user
has one.
"""
from __future__ import annotations

import numpy as np

from . import rotations as R
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
FORWARD = np.array([0.0, 0.0, 1.0])   # the way the canonical skeleton faces in its rest pose
UP = np.array([0.0, 1.0, 0.0])
FLOOR = np.array([1.0, 0.0, 1.0])     # multiply by it to keep a vector's floor (x, z) part


def heading(pelvis: np.ndarray) -> np.ndarray:
    """Facing angle (radians about +Y, 0 = facing +Z) of pelvis world rotations ``(..., 4)`` -> ``(...,)``:
    the direction its rotated +Z points along the floor (0 when that points straight up or down)."""
    fwd = R.quat_apply(pelvis, np.broadcast_to(FORWARD, np.shape(pelvis)[:-1] + (3,)))
    return np.arctan2(fwd[..., 0], fwd[..., 2])

# The default T-pose: facing +Z, left on +X, Y up, floor at y = 0, metres.
# Measured on the Bandai-Namco mocap corpus (CC BY-NC 4.0; bone lengths and
# heights are facts about it) and laid out by kinemo.core.smpl_rest, whose
# docstring says how and which joints are estimates. Regenerate with
#   PYTHONPATH=backend python -m kinemo.core.smpl_rest <extracted bandai dataset dir>
# (3076 takes, 416845 frames). _HEAD_TOP is the End Site above the head joint.
_REST_POSITIONS = np.array([
    [ 0.0000, 0.9403,  0.0000],  # pelvis
    [ 0.0647, 0.9184,  0.0000],  # left_hip
    [-0.0647, 0.9184,  0.0000],  # right_hip
    [ 0.0000, 1.0976,  0.0000],  # spine1
    [ 0.0647, 0.5275,  0.0000],  # left_knee
    [-0.0647, 0.5275,  0.0000],  # right_knee
    [ 0.0000, 1.1426,  0.0000],  # spine2
    [ 0.0647, 0.1177,  0.0000],  # left_ankle
    [-0.0647, 0.1177,  0.0000],  # right_ankle
    [ 0.0000, 1.1876,  0.0000],  # spine3
    [ 0.0647, 0.0428,  0.0906],  # left_foot
    [-0.0647, 0.0428,  0.0906],  # right_foot
    [ 0.0000, 1.3514,  0.0000],  # neck
    [ 0.0498, 1.3175,  0.0000],  # left_collar
    [-0.0498, 1.3175,  0.0000],  # right_collar
    [ 0.0000, 1.4159,  0.0000],  # head
    [ 0.1033, 1.3175,  0.0000],  # left_shoulder
    [-0.1033, 1.3175,  0.0000],  # right_shoulder
    [ 0.3466, 1.3175,  0.0000],  # left_elbow
    [-0.3466, 1.3175,  0.0000],  # right_elbow
    [ 0.5695, 1.3175,  0.0000],  # left_wrist
    [-0.5695, 1.3175,  0.0000],  # right_wrist
    [ 0.6438, 1.3175,  0.0000],  # left_hand
    [-0.6438, 1.3175,  0.0000],  # right_hand
])
_HEAD_TOP = np.array([0.0000, 0.2116, 0.0000])


def skeleton_from_positions(positions: np.ndarray, names=SMPL_JOINT_NAMES,
                            parents=SMPL_PARENTS) -> Skeleton:
    """A skeleton with identity rest rotations whose rest joints sit at ``positions`` ``(J, 3)``."""
    positions = np.asarray(positions, np.float64)
    par = np.asarray(parents)
    offsets = positions - np.where(par[:, None] < 0, 0.0, positions[np.maximum(par, 0)])
    return Skeleton(tuple(names), par, offsets)


def smpl_skeleton() -> Skeleton:
    """The canonical SMPL-topology skeleton in its default T-pose (1.63 m tall)."""
    skel = skeleton_from_positions(_REST_POSITIONS)
    head = SMPL_JOINT_NAMES.index("head")
    return Skeleton(skel.names, skel.parents, skel.offsets, skel.rest_rotations, {head: _HEAD_TOP})
