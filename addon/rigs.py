"""Building rigs in the scene: the canonical SMPL armature."""
from __future__ import annotations

import bpy
import numpy as np

from . import arrays as A
from . import smpl


def smpl_rest_positions() -> np.ndarray:
    """``(24, 3)`` SMPL joint positions at rest, Blender axes (Z up, facing -Y)."""
    pos = np.zeros((len(smpl.NAMES), 3))
    off = np.array(smpl.OFFSETS)
    for j, p in enumerate(smpl.PARENTS):
        pos[j] = off[j] + (pos[p] if p >= 0 else 0.0)
    return pos @ A.BLENDER_TO_BACKEND  # row vectors: (M^T)^T; M is orthogonal, so this is M^-1 p


def create_smpl_armature(context, name: str = "SMPL"):
    """A new armature object with SMPL's 24 joints as bones (heads at the joints,
    each tail at its main child), linked to the active collection and made active."""
    pos = smpl_rest_positions()
    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    context.collection.objects.link(obj)
    context.view_layer.objects.active = obj
    obj.select_set(True)
    children = {j: [c for c, p in enumerate(smpl.PARENTS) if p == j] for j in range(len(smpl.NAMES))}
    prev_mode = obj.mode
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        bones = []
        for j, n in enumerate(smpl.NAMES):
            b = arm.edit_bones.new(n)
            b.head = pos[j]
            kids = children[j]
            main = [c for c in kids if not smpl.NAMES[c].startswith(("left_", "right_"))] or kids
            if len(main) >= 1 and np.linalg.norm(pos[main[0]] - pos[j]) > 1e-3:
                tail = pos[main[0]]
            else:  # a leaf: continue the parent's direction
                p = smpl.PARENTS[j]
                d = pos[j] - pos[p] if p >= 0 else np.array([0.0, 0.0, 1.0])
                tail = pos[j] + d / max(np.linalg.norm(d), 1e-6) * max(0.5 * np.linalg.norm(d), 0.05)
            b.tail = tail
            if smpl.PARENTS[j] >= 0:
                b.parent = bones[smpl.PARENTS[j]]
            bones.append(b)
    finally:
        bpy.ops.object.mode_set(mode=prev_mode if prev_mode != "EDIT" else "OBJECT")
    for pb in obj.pose.bones:
        pb.rotation_mode = "QUATERNION"
    return obj
