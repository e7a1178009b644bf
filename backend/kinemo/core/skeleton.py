"""Skeletons and motions as plain values.

A joint's *local transform* is its full transform relative to its parent:
rotation ``local_rot[j]`` and translation ``local_pos[j]`` (in the parent's
frame). The rest pose is one such transform per joint (``rest_rotations``,
``offsets``); a motion stores full local transforms per frame, so the rest
pose is simply the motion whose frames equal the rest transforms. BVH skeletons
have identity rest rotations; Blender rigs carry bone rolls in them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import rotations as R


@dataclass(frozen=True, eq=False)
class Skeleton:
    """Joint hierarchy with a rest pose. Parents precede children.

    names: ``J`` unique joint names.
    parents: ``(J,)`` int, ``-1`` for the root (exactly one root).
    offsets: ``(J, 3)`` rest translation of each joint in its parent's frame
        (the root's is its rest position in the world), metres.
    rest_rotations: ``(J, 4)`` rest rotation of each joint relative to its parent.
    end_sites: joint index -> ``(3,)`` offset of a BVH End Site below it.
    """

    names: tuple[str, ...]
    parents: np.ndarray
    offsets: np.ndarray
    rest_rotations: np.ndarray = None  # type: ignore[assignment]
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        parents = np.asarray(self.parents, dtype=np.int64).reshape(-1)
        offsets = np.asarray(self.offsets, dtype=np.float64).reshape(-1, 3)
        J = len(names)
        rest = (R.quat_identity((J,)) if self.rest_rotations is None
                else R.quat_normalize(np.asarray(self.rest_rotations, np.float64).reshape(-1, 4)))
        if J == 0:
            raise ValueError("a skeleton needs at least one joint")
        if len(set(names)) != J:
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"duplicate joint names: {dup}")
        if parents.shape != (J,) or offsets.shape != (J, 3) or rest.shape != (J, 4):
            raise ValueError(f"skeleton arrays disagree with {J} names: parents {parents.shape}, "
                             f"offsets {offsets.shape}, rest_rotations {rest.shape}")
        if parents[0] != -1 or np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, J)):
            raise ValueError("parents must list one root first (-1) and every parent before its child")
        if not (np.all(np.isfinite(offsets)) and np.all(np.isfinite(rest))):
            raise ValueError("skeleton rest pose contains NaN or infinite values")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "parents", parents)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "rest_rotations", rest)
        object.__setattr__(self, "end_sites", {int(k): np.asarray(v, np.float64) for k, v in self.end_sites.items()})

    # -- queries --------------------------------------------------------------
    @property
    def num_joints(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no joint named {name!r} in skeleton") from None

    def children(self, j: int) -> list[int]:
        return [int(c) for c in np.flatnonzero(self.parents == j)]

    def descendants(self, j: int) -> list[int]:
        out, stack = [], self.children(j)
        while stack:
            c = stack.pop()
            out.append(c)
            stack.extend(self.children(c))
        return sorted(out)

    def chain_to_root(self, j: int) -> list[int]:
        """``[j, parent(j), ..., root]``."""
        out = [j]
        while self.parents[out[-1]] >= 0:
            out.append(int(self.parents[out[-1]]))
        return out

    def rest_global(self) -> tuple[np.ndarray, np.ndarray]:
        """Rest pose in world space: rotations ``(J, 4)``, positions ``(J, 3)``."""
        from .fk import forward_kinematics
        g_rot, g_pos = forward_kinematics(self.parents, self.rest_rotations[None], self.offsets[None])
        return g_rot[0], g_pos[0]

    def bone_lengths(self) -> np.ndarray:
        """``(J,)`` length of each joint's offset from its parent (root: 0)."""
        lengths = np.linalg.norm(self.offsets, axis=-1)
        lengths[0] = 0.0
        return lengths

    def rest_motion(self, frames: int = 1, fps: float = 30.0) -> "Motion":
        """A motion holding the rest pose for ``frames`` frames."""
        return Motion(np.repeat(self.rest_rotations[None], frames, 0),
                      np.repeat(self.offsets[None], frames, 0), fps)

    def scaled(self, factor: float) -> "Skeleton":
        return Skeleton(self.names, self.parents, self.offsets * factor, self.rest_rotations,
                        {k: v * factor for k, v in self.end_sites.items()})

    @staticmethod
    def from_rest_matrices(names, parents, matrices) -> "Skeleton":
        """Build from rest transforms in world/armature space, ``(J, 4, 4)``.

        This is how a Blender rig travels (bone head = joint position). Scale
        in the matrices is removed: only rotation and translation are kept.
        """
        m = np.asarray(matrices, np.float64).reshape(-1, 4, 4)
        rot = m[:, :3, :3] / np.maximum(np.linalg.norm(m[:, :3, :3], axis=1, keepdims=True), 1e-12)
        g_rot = R.matrix_to_quat(rot)
        g_pos = m[:, :3, 3]
        parents = np.asarray(parents, np.int64)
        from .fk import global_to_local
        l_rot, l_pos = global_to_local(parents, g_rot[None], g_pos[None])
        return Skeleton(tuple(names), parents, l_pos[0], l_rot[0])

    def rest_matrices(self) -> np.ndarray:
        """Rest transforms in world space, ``(J, 4, 4)`` (inverse of :meth:`from_rest_matrices`)."""
        g_rot, g_pos = self.rest_global()
        m = np.tile(np.eye(4), (self.num_joints, 1, 1))
        m[:, :3, :3] = R.quat_to_matrix(g_rot)
        m[:, :3, 3] = g_pos
        return m


@dataclass(eq=False)
class Motion:
    """Animation of a skeleton: full local transforms per frame.

    rotations: ``(T, J, 4)`` local rotations (relative to the parent, rest included).
    translations: ``(T, J, 3)`` local translations; the root's is its world position.
    fps: frames per second.
    """

    rotations: np.ndarray
    translations: np.ndarray
    fps: float = 30.0

    def __post_init__(self) -> None:
        self.rotations = np.asarray(self.rotations, np.float64)
        self.translations = np.asarray(self.translations, np.float64)
        if self.rotations.ndim != 3 or self.rotations.shape[-1] != 4:
            raise ValueError(f"rotations must be (T, J, 4), got {self.rotations.shape}")
        if self.translations.shape != self.rotations.shape[:2] + (3,):
            raise ValueError(f"translations must be {self.rotations.shape[:2] + (3,)}, "
                             f"got {self.translations.shape}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        self.fps = float(self.fps)

    @property
    def num_frames(self) -> int:
        return self.rotations.shape[0]

    @property
    def num_joints(self) -> int:
        return self.rotations.shape[1]

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @property
    def root_positions(self) -> np.ndarray:
        """``(T, 3)`` world position of the root joint."""
        return self.translations[:, 0]

    def global_transforms(self, skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
        """World rotations ``(T, J, 4)`` and positions ``(T, J, 3)``."""
        self.check(skeleton)
        from .fk import forward_kinematics
        return forward_kinematics(skeleton.parents, self.rotations, self.translations)

    def positions(self, skeleton: Skeleton) -> np.ndarray:
        """World joint positions ``(T, J, 3)``."""
        return self.global_transforms(skeleton)[1]

    def check(self, skeleton: Skeleton) -> None:
        if self.num_joints != skeleton.num_joints:
            raise ValueError(f"motion has {self.num_joints} joints, skeleton has {skeleton.num_joints}")

    def slice(self, start: int, stop: int | None = None) -> "Motion":
        return Motion(self.rotations[start:stop].copy(), self.translations[start:stop].copy(), self.fps)

    def copy(self) -> "Motion":
        return Motion(self.rotations.copy(), self.translations.copy(), self.fps)
