"""Operators under ``kinemo.``: thin wrappers over :mod:`api`.

Long operators share :class:`_JobOperator`:

- from the UI (``invoke``): modal, driven by a window timer; progress in the
  status bar and the panel; Esc or the panel's Cancel stops it;
- from scripts (``execute``): ``blocking=True`` waits for the result (the way
  to use them in background mode, where timers never fire); otherwise the job
  runs on ``bpy.app.timers`` and the call returns at once.

Every result is written when the job finishes, inside the operator when
modal or blocking, so Blender records one undo step for it.
"""
from __future__ import annotations

import bpy
from bpy.props import BoolProperty, IntProperty, StringProperty

from . import api, jobs, local_backend, presets, props, rigs
from .connection import KinemoError

# What the last hello said, for the panel's status line.
STATUS: dict = {"connected": False, "text": "not checked"}


def _redraw() -> None:
    wm = bpy.context.window_manager
    for win in getattr(wm, "windows", ()):
        for area in win.screen.areas:
            if area.type in ("VIEW_3D", "PREFERENCES"):
                area.tag_redraw()


def _set_status_from_hello(info: dict) -> None:
    model = info["model"]
    STATUS.update(connected=True, info=info,
                  text=f"{info['server']} on {info['device']}; model: "
                       f"{model['name'] if model['loaded'] else 'none (' + model['detail'] + ')'}")


class _JobOperator:
    """Mixin: subclasses implement ``make_job(context) -> jobs.Job``."""

    bl_options = {"REGISTER", "UNDO"}

    blocking: BoolProperty(name="Blocking", default=False, options={"SKIP_SAVE", "HIDDEN"},
                           description="Wait for the result (scripts and background mode)")
    address: StringProperty(name="Address", default="", options={"SKIP_SAVE", "HIDDEN"},
                            description="Backend address; empty: the preferences'")
    timeout: bpy.props.FloatProperty(name="Timeout", default=0.0, min=0.0, options={"SKIP_SAVE", "HIDDEN"},
                                     description="Blocking only: give up (and cancel) after this many "
                                                 "seconds; 0: no limit")

    def make_job(self, context) -> jobs.Job:
        raise NotImplementedError

    def finished(self, context, job: jobs.Job) -> None:
        """Called after a successful job (report, status)."""
        self.report({"INFO"}, f"{job.label}: done")

    def _job(self, context) -> jobs.Job | None:
        try:
            return self.make_job(context)
        except KinemoError as e:
            self.report({"ERROR"}, str(e))
            return None

    def _end(self, context, job: jobs.Job) -> set:
        _redraw()
        if job.state == "done":
            self.finished(context, job)
            return {"FINISHED"}
        if job.state == "cancelled":
            self.report({"WARNING"}, f"{job.label}: cancelled")
        else:
            self.report({"ERROR"}, job.error)
        return {"CANCELLED"}

    def execute(self, context):
        job = self._job(context)
        if job is None:
            return {"CANCELLED"}
        if self.blocking:
            try:
                job.wait(self.timeout or None)
            except KinemoError:
                pass  # job.state / job.error say what happened
            return self._end(context, job)
        job.start()
        jobs.ACTIVE.append(job)

        def step():
            if not job.poll():
                _redraw()
                return 0.1
            if job.state == "done":
                bpy.ops.ed.undo_push(message=job.label)
            _redraw()
            return None
        bpy.app.timers.register(step, first_interval=0.05)
        return {"FINISHED"}

    def invoke(self, context, event):
        job = self._job(context)
        if job is None:
            return {"CANCELLED"}
        self._job_ref = job.start()
        jobs.ACTIVE.append(job)
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = self._job_ref
        if event.type == "ESC" and event.value == "PRESS":
            job.cancel()
        elif event.type != "TIMER" and not job.finished:
            return {"PASS_THROUGH"}
        job.poll()
        wm = context.window_manager
        if not job.finished:
            wm.progress_update(int(100 * job.progress))
            context.workspace.status_text_set(
                f"Kinemo: {job.label}: {job.progress:.0%} {job.message} (Esc to cancel)")
            _redraw()
            return {"PASS_THROUGH"}
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        context.workspace.status_text_set(None)
        return self._end(context, job)


def _active_armature(context):
    obj = context.active_object
    if obj is None or obj.type != "ARMATURE":
        raise KinemoError("Select an armature first (or create an SMPL armature).")
    return obj


def _range(self, context) -> tuple[int, int]:
    if self.frame_start >= 0 and self.frame_end >= 0:
        return self.frame_start, self.frame_end
    k = context.scene.kinemo
    return k.frame_start, k.frame_end


_RANGE = dict(
    frame_start=IntProperty(name="Start", default=-1, options={"SKIP_SAVE"},
                            description="-1: the panel's range"),
    frame_end=IntProperty(name="End", default=-1, options={"SKIP_SAVE"}, description="-1: the panel's range"),
)


class KINEMO_OT_connect(_JobOperator, bpy.types.Operator):
    """Ask the backend for its version, device and model"""

    bl_idname = "kinemo.connect"
    bl_label = "Check Backend"
    bl_options = {"REGISTER"}

    def make_job(self, context):
        return api.hello(props.settings(context, self.address))

    def finished(self, context, job):
        _set_status_from_hello(job.result)
        self.report({"INFO"}, f"Kinemo backend: {STATUS['text']}")

    def _end(self, context, job):
        if job.state == "failed":
            STATUS.update(connected=False, text=job.error)
        return super()._end(context, job)


class KINEMO_OT_inbetween(_JobOperator, bpy.types.Operator):
    """Fill the frames between the active armature's keys in the range (new action)"""

    bl_idname = "kinemo.inbetween"
    bl_label = "In-between"
    frame_start: _RANGE["frame_start"]
    frame_end: _RANGE["frame_end"]
    selected_only: BoolProperty(name="Selected bones only", default=False, options={"SKIP_SAVE"})
    seed: IntProperty(name="Seed", default=-1, options={"SKIP_SAVE"}, description="-1: the panel's")

    def make_job(self, context):
        k = context.scene.kinemo
        start, end = _range(self, context)
        return api.inbetween(props.settings(context, self.address), _active_armature(context), start, end,
                             selected_only=self.selected_only or k.selected_only,
                             seed=k.seed if self.seed < 0 else self.seed)


class KINEMO_OT_generate(_JobOperator, bpy.types.Operator):
    """Generate motion from a text prompt on the active armature (new actions)"""

    bl_idname = "kinemo.generate"
    bl_label = "Generate"
    prompt: StringProperty(name="Prompt", default="", options={"SKIP_SAVE"}, description="empty: the panel's")

    def make_job(self, context):
        k = context.scene.kinemo
        return api.generate(props.settings(context, self.address), _active_armature(context),
                            self.prompt or k.prompt, k.seconds, seed=k.seed, count=k.variations,
                            frame_start=k.frame_start)


class KINEMO_OT_dance(_JobOperator, bpy.types.Operator):
    """Dance to an audio file or the sequencer's sound strip on the active armature (new action)"""

    bl_idname = "kinemo.dance"
    bl_label = "Dance"
    frame_start: _RANGE["frame_start"]
    frame_end: _RANGE["frame_end"]

    def make_job(self, context):
        k = context.scene.kinemo
        start, end = _range(self, context)
        return api.dance(props.settings(context, self.address), _active_armature(context), start, end,
                         audio_path=k.audio_path, text=k.dance_text, seed=k.seed)


def _mapping_pairs(k) -> list[tuple[str, str]] | None:
    if not (k.use_mapping and len(k.mapping)):
        return None
    return [(p.source, p.target) for p in k.mapping if p.source and p.target]


class KINEMO_OT_retarget(_JobOperator, bpy.types.Operator):
    """Carry the source armature's action onto the target rig (new action on the target)"""

    bl_idname = "kinemo.retarget"
    bl_label = "Retarget"
    source: StringProperty(name="Source", default="", options={"SKIP_SAVE"}, description="empty: the panel's")
    target: StringProperty(name="Target", default="", options={"SKIP_SAVE"}, description="empty: the panel's")
    frame_start: _RANGE["frame_start"]
    frame_end: _RANGE["frame_end"]

    def make_job(self, context):
        k = context.scene.kinemo
        src = bpy.data.objects.get(self.source) if self.source else k.source
        tgt = bpy.data.objects.get(self.target) if self.target else k.target
        if src is None or tgt is None:
            raise KinemoError("Choose a source armature (with an action) and a target rig.")
        a, b = (self.frame_start, self.frame_end) if self.frame_start >= 0 and self.frame_end >= 0 else (None, None)
        return api.retarget(props.settings(context, self.address), src, tgt, a, b, _mapping_pairs(k))


class KINEMO_OT_map_bones(_JobOperator, bpy.types.Operator):
    """Fill the bone mapping list with the backend's automatic pairing"""

    bl_idname = "kinemo.map_bones"
    bl_label = "Auto Map Bones"
    bl_options = {"REGISTER", "UNDO"}

    def make_job(self, context):
        k = context.scene.kinemo
        if k.source is None or k.target is None:
            raise KinemoError("Choose a source and a target armature first.")
        return api.bone_mapping(props.settings(context, self.address), k.source, k.target)

    def finished(self, context, job):
        _fill_mapping(context.scene.kinemo, job.result)
        self.report({"INFO"}, f"{len(job.result)} bone pairs")


def _fill_mapping(k, pairs) -> None:
    k.mapping.clear()
    for s, t, r in pairs:
        item = k.mapping.add()
        item.source, item.target, item.role = s, t, r


class KINEMO_OT_mapping_edit(bpy.types.Operator):
    """Add or remove a bone pair"""

    bl_idname = "kinemo.mapping_edit"
    bl_label = "Edit Bone Pair"
    bl_options = {"REGISTER", "UNDO"}
    action: bpy.props.EnumProperty(items=[("ADD", "Add", ""), ("REMOVE", "Remove", "")])

    def execute(self, context):
        k = context.scene.kinemo
        if self.action == "ADD":
            k.mapping.add()
            k.mapping_index = len(k.mapping) - 1
        elif 0 <= k.mapping_index < len(k.mapping):
            k.mapping.remove(k.mapping_index)
            k.mapping_index = min(k.mapping_index, len(k.mapping) - 1)
        return {"FINISHED"}


class KINEMO_OT_preset_save(bpy.types.Operator):
    """Save the bone mapping as a preset (JSON in the user's config directory)"""

    bl_idname = "kinemo.preset_save"
    bl_label = "Save Preset"
    name: StringProperty(name="Name", default="", options={"SKIP_SAVE"}, description="empty: the panel's")

    def execute(self, context):
        k = context.scene.kinemo
        try:
            path = presets.save(api.config_dir(), self.name or k.preset,
                                [(p.source, p.target, p.role) for p in k.mapping])
        except (KinemoError, OSError) as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Saved {path}")
        return {"FINISHED"}


class KINEMO_OT_preset_load(bpy.types.Operator):
    """Load a bone-mapping preset into the list"""

    bl_idname = "kinemo.preset_load"
    bl_label = "Load Preset"
    bl_options = {"REGISTER", "UNDO"}
    name: StringProperty(name="Name", default="", options={"SKIP_SAVE"}, description="empty: the panel's")

    def execute(self, context):
        k = context.scene.kinemo
        try:
            pairs = presets.load(api.config_dir(), self.name or k.preset)
        except KinemoError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        _fill_mapping(k, pairs)
        return {"FINISHED"}


class KINEMO_OT_create_smpl(bpy.types.Operator):
    """Add an armature with SMPL's 24 joints"""

    bl_idname = "kinemo.create_smpl_armature"
    bl_label = "Create SMPL Armature"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        if context.mode != "OBJECT":
            bpy.ops.object.mode_set(mode="OBJECT")
        rigs.create_smpl_armature(context)
        return {"FINISHED"}


class KINEMO_OT_cancel(bpy.types.Operator):
    """Cancel the running Kinemo jobs"""

    bl_idname = "kinemo.cancel"
    bl_label = "Cancel"

    def execute(self, context):
        for job in list(jobs.ACTIVE):
            job.cancel()
        _redraw()
        return {"FINISHED"}


class KINEMO_OT_backend_start(bpy.types.Operator):
    """Start `kinemo serve` with the Python set in the preferences"""

    bl_idname = "kinemo.backend_start"
    bl_label = "Start Local Backend"
    python: StringProperty(default="", options={"SKIP_SAVE", "HIDDEN"}, description="empty: the preferences'")
    address: StringProperty(default="", options={"SKIP_SAVE", "HIDDEN"}, description="empty: the preferences'")

    def execute(self, context):
        p = props.preferences(context)
        s = props.settings(context, self.address)
        try:
            proc = local_backend.start(self.python or (bpy.path.abspath(p.python_path) if p else ""), s.address,
                                       api.config_dir() / "backend.log", token_file=s.token_file,
                                       device=p.device if p else "cpu")
        except KinemoError as e:
            self.report({"ERROR"}, str(e))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Started the backend (process {proc.proc.pid}); log: {proc.log}")
        return {"FINISHED"}


class KINEMO_OT_backend_stop(bpy.types.Operator):
    """Stop the backend started from Blender"""

    bl_idname = "kinemo.backend_stop"
    bl_label = "Stop Local Backend"

    def execute(self, context):
        rc = local_backend.stop()
        self.report({"INFO"}, "No local backend was started" if rc is None else f"Backend stopped ({rc})")
        return {"FINISHED"}


CLASSES = (KINEMO_OT_connect, KINEMO_OT_inbetween, KINEMO_OT_generate, KINEMO_OT_dance, KINEMO_OT_retarget,
           KINEMO_OT_map_bones, KINEMO_OT_mapping_edit, KINEMO_OT_preset_save, KINEMO_OT_preset_load,
           KINEMO_OT_create_smpl, KINEMO_OT_cancel, KINEMO_OT_backend_start, KINEMO_OT_backend_stop)
