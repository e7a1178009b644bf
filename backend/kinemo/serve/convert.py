"""Core values <-> the wire's plain data (rig descriptions and motions)."""
from __future__ import annotations

import numpy as np

from kinemo.core.skeleton import Motion, Skeleton


def rig_from_skeleton(skel: Skeleton, dtype=np.float32) -> dict:
    """The wire rig description: bone names, parents, rest matrices ``(J, 4, 4)``."""
    return {"names": list(skel.names), "parents": skel.parents.astype(np.int32),
            "rest_matrices": skel.rest_matrices().astype(dtype)}


def skeleton_from_rig(rig: dict) -> Skeleton:
    """A validated wire rig -> :class:`Skeleton` (scale in the matrices is dropped)."""
    return Skeleton.from_rest_matrices(rig["names"], rig["parents"], rig["rest_matrices"])


def motion_to_wire(motion: Motion, dtype=np.float32) -> dict:
    """A motion as ``{rotations (T, J, 4), translations (T, J, 3), fps}``; float32 by
    default (ample for animation, half the bytes)."""
    return {"rotations": motion.rotations.astype(dtype), "translations": motion.translations.astype(dtype),
            "fps": float(motion.fps)}


def motion_from_wire(m: dict) -> Motion:
    return Motion(m["rotations"], m["translations"], m["fps"])
