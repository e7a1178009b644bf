"""The canonical clip stored in the corpus: SMPL 24 joints at 30 fps, Y up, metres.

quats (T, 24, 4) float32 local rotations (w first), root (T, 3) pelvis world
position, positions (T, 24, 3) global joint positions, contacts (T, 4) bool for
(left_ankle, right_ankle, left_foot, right_foot).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import rotations as R
from ..core.fk import forward_kinematics
from ..core.skeleton import Motion, Skeleton
from ..core.smpl import SMPL_JOINT_NAMES

FPS = 30.0
CONTACT_JOINTS = tuple(SMPL_JOINT_NAMES.index(n) for n in ("left_ankle", "right_ankle", "left_foot", "right_foot"))


@dataclass(frozen=True)
class ContactConfig:
    height: float = 0.05   # metres above the joint's own rest height
    speed: float = 0.6     # metres per second


@dataclass(eq=False)
class Clip:
    quats: np.ndarray
    root: np.ndarray
    positions: np.ndarray
    contacts: np.ndarray
    fps: float = FPS

    @property
    def num_frames(self) -> int:
        return self.quats.shape[0]

    def sixd(self) -> np.ndarray:
        """Local rotations as 6D, ``(T, 24, 6)`` (the model's rotation representation)."""
        return R.quat_to_sixd(self.quats).astype(np.float32)


def foot_contacts(positions: np.ndarray, rest_heights: np.ndarray, fps: float,
                  cfg: ContactConfig = ContactConfig()) -> np.ndarray:
    """Feet touching the floor: low and nearly still. positions ``(T, 24, 3)`` -> ``(T, 4)`` bool.

    rest_heights: ``(4,)`` height of each contact joint above the floor in the rest pose.
    """
    p = positions[:, CONTACT_JOINTS]
    vel = np.zeros(p.shape[:2])
    if len(p) > 1:
        v = np.linalg.norm(np.diff(p, axis=0), axis=-1) * fps
        vel[1:], vel[0] = v, v[0]
    return (p[..., 1] < rest_heights + cfg.height) & (vel < cfg.speed)


def clip_from_motion(skel: Skeleton, motion: Motion, cfg: ContactConfig = ContactConfig()) -> Clip:
    """Store a motion on the canonical skeleton as a clip (positions by FK, contacts derived)."""
    _, pos = forward_kinematics(skel.parents, motion.rotations, motion.translations)
    _, rest = skel.rest_global()
    contacts = foot_contacts(pos, rest[list(CONTACT_JOINTS), 1], motion.fps, cfg)
    return Clip(R.quat_normalize(motion.rotations).astype(np.float32), motion.translations[:, 0].astype(np.float32),
                pos.astype(np.float32), contacts, motion.fps)


def clip_positions(skel: Skeleton, quats: np.ndarray, root: np.ndarray) -> np.ndarray:
    """FK of stored local rotations ``(T, 24, 4)`` and root ``(T, 3)`` -> ``(T, 24, 3)``."""
    trans = np.repeat(skel.offsets[None], len(quats), 0)
    trans[:, 0] = root
    return forward_kinematics(skel.parents, np.asarray(quats, np.float64), trans)[1]
