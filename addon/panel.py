"""The 3D View sidebar tab "Kinemo"."""
from __future__ import annotations

import bpy

from . import bridge, jobs, operators


class KINEMO_UL_bone_pairs(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        k = context.scene.kinemo
        row = layout.row(align=True)
        if k.source is not None:
            row.prop_search(item, "source", k.source.data, "bones", text="")
        else:
            row.prop(item, "source", text="")
        row.label(text="", icon="FORWARD")
        if k.target is not None:
            row.prop_search(item, "target", k.target.data, "bones", text="")
        else:
            row.prop(item, "target", text="")


class KINEMO_PT_main(bpy.types.Panel):
    bl_label = "Kinemo"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Kinemo"

    def draw(self, context):
        layout = self.layout
        st = operators.STATUS
        row = layout.row()
        row.label(text=st["text"], icon="LINKED" if st["connected"] else "UNLINKED")
        row.operator("kinemo.connect", text="", icon="FILE_REFRESH")
        for job in jobs.ACTIVE:
            box = layout.box()
            box.progress(factor=job.progress, text=f"{job.label}: {job.message}")
            box.operator("kinemo.cancel", icon="CANCEL")
        if jobs.LAST["state"] in ("failed", "cancelled"):
            layout.label(text=jobs.LAST["message"][:200], icon="ERROR")
        obj = context.active_object
        if obj is not None and obj.type == "ARMATURE":
            try:
                n = len(bridge.bone_order(obj))
                layout.label(text=f"{obj.name}: {n} bones", icon="ARMATURE_DATA")
            except ValueError as e:
                layout.label(text=str(e), icon="ERROR")
        else:
            layout.label(text="Select an armature", icon="INFO")
        layout.operator("kinemo.create_smpl_armature", icon="OUTLINER_OB_ARMATURE")


class _Sub:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Kinemo"
    bl_parent_id = "KINEMO_PT_main"


class KINEMO_PT_inbetween(_Sub, bpy.types.Panel):
    bl_label = "In-between"

    def draw(self, context):
        k = context.scene.kinemo
        col = self.layout.column()
        row = col.row(align=True)
        row.prop(k, "frame_start")
        row.prop(k, "frame_end")
        col.prop(k, "selected_only")
        col.prop(k, "seed")
        col.operator("kinemo.inbetween", icon="IPO_BEZIER")


class KINEMO_PT_generate(_Sub, bpy.types.Panel):
    bl_label = "Generate from Text"

    def draw(self, context):
        k = context.scene.kinemo
        col = self.layout.column()
        col.prop(k, "prompt", text="")
        col.prop(k, "seconds")
        col.prop(k, "seed")
        col.prop(k, "variations")
        col.operator("kinemo.generate", icon="OUTLINER_OB_FONT")


class KINEMO_PT_dance(_Sub, bpy.types.Panel):
    bl_label = "Dance"

    def draw(self, context):
        k = context.scene.kinemo
        col = self.layout.column()
        col.prop(k, "audio_path")
        if not k.audio_path:
            col.label(text="Empty: the sequencer's sound strip", icon="SOUND")
        row = col.row(align=True)
        row.prop(k, "frame_start")
        row.prop(k, "frame_end")
        col.prop(k, "dance_text")
        col.operator("kinemo.dance", icon="SOUND")


class KINEMO_PT_retarget(_Sub, bpy.types.Panel):
    bl_label = "Retarget"

    def draw(self, context):
        k = context.scene.kinemo
        col = self.layout.column()
        col.prop(k, "source")
        col.prop(k, "target")
        col.operator("kinemo.map_bones", icon="BONE_DATA")
        col.prop(k, "use_mapping")
        row = col.row()
        row.template_list("KINEMO_UL_bone_pairs", "", k, "mapping", k, "mapping_index", rows=4)
        side = row.column(align=True)
        side.operator("kinemo.mapping_edit", text="", icon="ADD").action = "ADD"
        side.operator("kinemo.mapping_edit", text="", icon="REMOVE").action = "REMOVE"
        row = col.row(align=True)
        row.prop(k, "preset", text="")
        row.operator("kinemo.preset_load", text="", icon="IMPORT")
        row.operator("kinemo.preset_save", text="", icon="EXPORT")
        col.operator("kinemo.retarget", icon="ARMATURE_DATA")


CLASSES = (KINEMO_UL_bone_pairs, KINEMO_PT_main, KINEMO_PT_inbetween, KINEMO_PT_generate, KINEMO_PT_dance,
           KINEMO_PT_retarget)
