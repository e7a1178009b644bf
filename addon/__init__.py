"""Kinemo for Blender: AI motion from a local backend, written to new actions on your rig.

This package is the Blender extension (see ``blender_manifest.toml`` beside
it). It never imports torch or the ``kinemo`` backend package; motion math it
needs at the boundary lives in ``arrays.py`` and the bpy side in ``bridge.py``.
Outside Blender the same code is importable as ``kinemo_addon`` (see
pyproject.toml), which the demo and the tests use.
"""
from __future__ import annotations

import bpy

from . import bridge


class KINEMO_PT_rig(bpy.types.Panel):
    """Shows whether the active object is a rig Kinemo can drive."""

    bl_label = "Kinemo"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Kinemo"

    def draw(self, context):
        obj = context.active_object
        col = self.layout.column()
        if obj is None or obj.type != "ARMATURE":
            col.label(text="Select an armature", icon="INFO")
            return
        try:
            bones = bridge.bone_order(obj)
        except ValueError as e:
            col.label(text=str(e), icon="ERROR")
            return
        col.label(text=f"{obj.name}: {len(bones)} bones, root {bones[0].name}", icon="ARMATURE_DATA")


_CLASSES = (KINEMO_PT_rig,)


def register() -> None:
    for cls in _CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
