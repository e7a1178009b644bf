"""Preferences (where the backend is) and the scene's Kinemo settings (what the panel edits)."""
from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, FloatProperty, IntProperty, PointerProperty,
                       StringProperty)

from . import connection, local_backend


def _is_armature(self, obj) -> bool:
    return obj.type == "ARMATURE"


class KinemoPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    address: StringProperty(name="Backend address", default=connection.DEFAULT_ADDRESS,
                            description="ZeroMQ address of `kinemo serve` (another machine: tcp://host:port "
                                        "and a token file)")
    token_file: StringProperty(name="Token file", subtype="FILE_PATH",
                               description="Shared secret of the backend (needed off this machine)")
    timeout: FloatProperty(name="Timeout", default=3.0, min=0.5, max=120.0, unit="TIME_ABSOLUTE",
                           description="Seconds without an answer before the backend counts as gone")
    python_path: StringProperty(name="Python", subtype="FILE_PATH",
                                description="The Python (or environment folder) where kinemo is installed, "
                                            "to start a local backend")
    device: bpy.props.EnumProperty(name="Device", items=[("cpu", "CPU", ""), ("cuda", "CUDA", "")])

    def draw(self, context):
        col = self.layout.column()
        col.prop(self, "address")
        col.prop(self, "token_file")
        col.prop(self, "timeout")
        box = col.box()
        box.label(text="Local backend")
        box.prop(self, "python_path")
        box.prop(self, "device")
        row = box.row()
        row.operator("kinemo.backend_start", icon="PLAY")
        row.operator("kinemo.backend_stop", icon="PAUSE")
        box.label(text=f"Status: {local_backend.status()}")
        tail = local_backend.log_tail(8)
        for line in tail.splitlines():
            box.label(text=line[:120])


def settings(context, address: str = "") -> connection.Settings:
    """The connection settings from the preferences (defaults when the add-on
    was registered without them, as in tests); ``address`` overrides."""
    entry = context.preferences.addons.get(__package__)
    if entry is None:
        s = connection.Settings()
    else:
        p = entry.preferences
        s = connection.Settings(p.address.strip() or connection.DEFAULT_ADDRESS,
                                bpy.path.abspath(p.token_file) if p.token_file else "", float(p.timeout))
    if address:
        s = connection.Settings(address, s.token_file, s.timeout, s.retries)
    return s


def preferences(context):
    entry = context.preferences.addons.get(__package__)
    return entry.preferences if entry is not None else None


class KinemoBonePair(bpy.types.PropertyGroup):
    source: StringProperty(name="Source bone")
    target: StringProperty(name="Target bone")
    role: StringProperty(name="Role", description="SMPL joint that paired them")


class KinemoSceneSettings(bpy.types.PropertyGroup):
    # shared
    frame_start: IntProperty(name="Start", default=1, min=0)
    frame_end: IntProperty(name="End", default=60, min=0)
    seed: IntProperty(name="Seed", default=0, min=0)
    # in-between
    selected_only: BoolProperty(name="Selected bones only",
                                description="Only the selected bones' keys count (partial-body keys)")
    # generate
    prompt: StringProperty(name="Prompt", default="a person walks forward")
    seconds: FloatProperty(name="Duration", default=4.0, min=0.2, max=600.0, unit="TIME_ABSOLUTE")
    variations: IntProperty(name="Variations", default=1, min=1, max=16)
    # dance
    audio_path: StringProperty(name="Audio", subtype="FILE_PATH",
                               description="Audio file; empty: the sound strip in the sequencer")
    dance_text: StringProperty(name="Style", description="Optional text, e.g. 'energetic hip hop'")
    # retarget
    source: PointerProperty(name="Source", type=bpy.types.Object, poll=_is_armature)
    target: PointerProperty(name="Target", type=bpy.types.Object, poll=_is_armature)
    mapping: CollectionProperty(type=KinemoBonePair)
    mapping_index: IntProperty()
    use_mapping: BoolProperty(name="Use this mapping", default=True,
                              description="Send the list below; off: the backend pairs bones itself")
    preset: StringProperty(name="Preset", default="my rig")


CLASSES = (KinemoPreferences, KinemoBonePair, KinemoSceneSettings)


def register() -> None:
    for c in CLASSES:
        bpy.utils.register_class(c)
    bpy.types.Scene.kinemo = PointerProperty(type=KinemoSceneSettings)


def unregister() -> None:
    del bpy.types.Scene.kinemo
    for c in reversed(CLASSES):
        bpy.utils.unregister_class(c)
