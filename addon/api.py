"""The add-on's Python API: one function per feature, each returning a
:class:`jobs.Job` (not started). The operators are thin wrappers over these;
scripts may call them directly::

    job = api.retarget(settings, source, target)
    action = job.wait()          # blocking (background mode)

Everything read from the scene is read here, when the job is made, so the
scene may change while the backend works; results are written by the job's
``apply`` as new actions only.
"""
from __future__ import annotations

import os
from pathlib import Path

import bpy
import numpy as np

from . import bridge, results
from .connection import KinemoError, Settings
from .jobs import Job

AUDIO_FORMATS = {".wav": "wav", ".flac": "flac", ".ogg": "ogg", ".mp3": "mp3"}


def _rig(obj, what: str = "rig") -> dict:
    """The rig description, with rig problems in plain words."""
    if obj is None or getattr(obj, "type", None) != "ARMATURE":
        raise KinemoError(f"Select an armature as the {what} (got {getattr(obj, 'name', 'nothing')}).")
    try:
        d = bridge.rig_description(obj)
    except ValueError as e:
        raise KinemoError(f"Kinemo cannot use the {what} {obj.name!r}: {e}") from None
    d["rest_matrices"] = d["rest_matrices"].astype(np.float32)
    d["parents"] = np.asarray(d["parents"], np.int32)
    return {k: d[k] for k in ("names", "parents", "rest_matrices")}


def _range(frame_start: int, frame_end: int) -> tuple[int, int]:
    if frame_end < frame_start:
        raise KinemoError(f"The frame range {frame_start}-{frame_end} is empty.")
    return int(frame_start), int(frame_end)


def _motion_out(output: dict, obj, frame_start: int, name: str, assign: bool = True,
                exact: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None):
    """Write one result. ``exact = (frame indices (K,), mask (K, J), rotations, translations)``
    are the user's keyed poses, put back bit for bit after resampling."""
    m = output["motion"]
    rot, trans = results.motion_at_scene_fps(m)
    names = bridge.rig_description(obj)["names"]
    if rot.shape[1] != len(names):
        raise KinemoError(f"The backend answered with {rot.shape[1]} bones for a rig of {len(names)}.")
    if exact is not None:
        rot, trans = rot.copy(), trans.copy()
        idx, mask, k_rot, k_trans = exact
        inside = idx < len(rot)
        for k in np.flatnonzero(inside):
            j = mask[k]
            rot[idx[k], j] = k_rot[k, j]
            trans[idx[k], j] = k_trans[k, j]
    return results.write_result(obj, names, rot, trans, frame_start, name, assign)


# -- connection -------------------------------------------------------------------

def hello(settings: Settings) -> Job:
    """Ask the backend who it is; the result is its ``hello`` answer."""
    return Job("Connect", settings, [("hello", {"client": "kinemo-blender",
                                                "protocol_versions": [1]})], lambda outs: outs[0])


# -- retarget ---------------------------------------------------------------------

def bone_mapping(settings: Settings, source, target) -> Job:
    """The automatic bone pairs for ``source`` -> ``target``: ``[(source bone, target bone, role)]``."""
    body = {"source_rig": _rig(source, "source"), "target_rig": _rig(target, "target")}
    return Job("Bone mapping", settings, [("bonemap", body)],
               lambda outs: list(zip(outs[0]["source"], outs[0]["target"], outs[0]["role"])))


def retarget(settings: Settings, source, target, frame_start: int | None = None,
             frame_end: int | None = None, mapping: list[tuple[str, str]] | None = None) -> Job:
    """Carry ``source``'s action onto ``target`` as a new action there.

    The frame range defaults to the source action's; ``mapping`` (source bone,
    target bone) pairs replace the automatic pairing.
    """
    src_rig, tgt_rig = _rig(source, "source"), _rig(target, "target")
    if source == target:
        raise KinemoError("Source and target are the same armature.")
    ad = source.animation_data
    if ad is None or ad.action is None:
        raise KinemoError(f"The source {source.name!r} has no action to retarget.")
    if frame_start is None or frame_end is None:
        a, b = ad.action.frame_range
        frame_start, frame_end = int(round(a)), int(round(b))
    start, end = _range(frame_start, frame_end)
    m = bridge.read_action_motion(source, start, end)
    body = {"source_rig": src_rig, "target_rig": tgt_rig,
            "motion": {"rotations": m["rotations"].astype(np.float32),
                       "translations": m["translations"].astype(np.float32), "fps": float(m["fps"])}}
    if mapping:
        body["mapping"] = {"source": [s for s, _ in mapping], "target": [t for _, t in mapping]}
    name = results.action_name("retarget", source.name)
    return Job(f"Retarget {source.name} -> {target.name}", settings, [("retarget", body)],
               lambda outs: _motion_out(outs[0], target, start, name))


# -- in-between -------------------------------------------------------------------

def keyed_frames(obj, frame_start: int, frame_end: int, bones: set[str] | None = None) -> dict[str, set[int]]:
    """``{bone name: {frame}}`` of the keys in the rig's action within the range
    (only ``bones`` when given); keys on sub-frames count for the nearest frame."""
    out: dict[str, set[int]] = {}
    for (path, _), fc in bridge.action_fcurves(obj).items():
        if not path.startswith('pose.bones["'):
            continue
        name = bpy.utils.unescape_identifier(path[len('pose.bones["'):path.index('"]')])
        if bones is not None and name not in bones:
            continue
        co = np.empty(2 * len(fc.keyframe_points), np.float32)
        fc.keyframe_points.foreach_get("co", co)
        f = np.round(co[0::2]).astype(int)
        out.setdefault(name, set()).update(int(x) for x in f[(f >= frame_start) & (f <= frame_end)])
    return out


def inbetween(settings: Settings, obj, frame_start: int, frame_end: int, selected_only: bool = False,
              seed: int = 0, steps: int | None = None) -> Job:
    """Fill the frames between the rig's keys in the range (a new action).

    ``selected_only``: only the selected bones' keys count, as partial-body
    keys; the model fills every other bone.
    """
    rig = _rig(obj)
    start, end = _range(frame_start, frame_end)
    bones = {b.name for b in obj.data.bones if b.select} if selected_only else None
    if selected_only and not bones:
        raise KinemoError("No bones are selected; select the bones whose keys should count.")
    keyed = keyed_frames(obj, start, end, bones)
    frames = sorted(set().union(*keyed.values())) if keyed else []
    if not frames:
        raise KinemoError(f"{obj.name!r} has no keys in frames {start}-{end}"
                          + (" on the selected bones" if selected_only else "") + "; key some poses first.")
    m = bridge.read_action_motion(obj, start, end)
    idx = np.array(frames) - start
    names = rig["names"]
    mask = np.zeros((len(idx), len(names)), bool)
    for j, n in enumerate(names):
        if bones is None:
            mask[:, j] = True
        elif n in keyed:
            mask[:, j] = np.isin(frames, sorted(keyed[n]))
    k_rot, k_trans = m["rotations"][idx], m["translations"][idx]
    keys = {"frames": idx.astype(np.int32), "rotations": k_rot.astype(np.float32),
            "translations": k_trans.astype(np.float32)}
    if bones is not None:
        keys["mask"] = mask
    body = {"rig": rig, "keys": keys, "frames": end - start + 1, "fps": results.scene_fps(), "seed": int(seed)}
    if steps:
        body["steps"] = int(steps)
    name = results.action_name("in-between", obj.name)
    exact = (idx, mask, k_rot, k_trans)
    return Job(f"In-between {obj.name}", settings, [("inbetween", body)],
               lambda outs: _motion_out(outs[0], obj, start, name, exact=exact))


# -- generate ---------------------------------------------------------------------

def generate(settings: Settings, obj, text: str, seconds: float, seed: int = 0, count: int = 1,
             frame_start: int = 1, steps: int | None = None) -> Job:
    """``count`` variations of ``text`` (seeds ``seed .. seed+count-1``), each a new
    action; the first plays on the rig, the others are kept to choose from.
    The result is the list of actions."""
    text = text.strip()
    if not text:
        raise KinemoError("Type a description of the motion first.")
    if not 1 <= count <= 16:
        raise KinemoError("Ask for 1 to 16 variations.")
    fps = results.scene_fps()
    frames = int(round(seconds * fps))
    if frames < 2:
        raise KinemoError(f"{seconds} s is too short.")
    rig = _rig(obj)
    reqs = []
    for i in range(count):
        body = {"text": text, "frames": frames, "fps": fps, "rig": rig, "seed": int(seed) + i}
        if steps:
            body["steps"] = int(steps)
        reqs.append(("generate", body))

    def apply(outs):
        return [_motion_out(o, obj, frame_start, results.action_name(text, f"seed {int(seed) + i}"),
                            assign=(i == 0)) for i, o in enumerate(outs)]
    return Job(f"Generate {text[:30]!r}", settings, reqs, apply)


# -- dance ------------------------------------------------------------------------

def sound_strip(scene):
    """The first sound strip in the scene's sequencer (or None)."""
    se = scene.sequence_editor
    if se is None:
        return None
    strips = getattr(se, "strips_all", None) or getattr(se, "sequences_all", ())
    return next((s for s in strips if s.type == "SOUND"), None)


def dance(settings: Settings, obj, frame_start: int, frame_end: int, audio_path: str = "",
          text: str = "", seed: int = 0, steps: int | None = None) -> Job:
    """Dance to an audio file (or, without one, the scene's sound strip) over the range."""
    rig = _rig(obj)
    start, end = _range(frame_start, frame_end)
    if not audio_path:
        strip = sound_strip(bpy.context.scene)
        if strip is None or strip.sound is None:
            raise KinemoError("Choose an audio file or add a sound strip to the sequencer.")
        audio_path = strip.sound.filepath
    path = Path(bpy.path.abspath(audio_path))
    fmt = AUDIO_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise KinemoError(f"{path.name}: Kinemo reads {', '.join(AUDIO_FORMATS)} audio files.")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KinemoError(f"Cannot read the audio file {path}: {e.strerror or e}") from None
    if not data:
        raise KinemoError(f"The audio file {path} is empty.")
    body = {"audio": data, "audio_format": fmt, "frames": end - start + 1, "fps": results.scene_fps(),
            "rig": rig, "seed": int(seed)}
    if text.strip():
        body["text"] = text.strip()
    if steps:
        body["steps"] = int(steps)
    name = results.action_name("dance", path.stem)
    return Job(f"Dance to {path.name}", settings, [("dance", body)],
               lambda outs: _motion_out(outs[0], obj, start, name))


def config_dir() -> Path:
    """Where presets and the backend log live: ``$KINEMO_ADDON_CONFIG``, else the
    extension's user directory, else Blender's config directory."""
    env = os.environ.get("KINEMO_ADDON_CONFIG")
    if env:
        path = Path(env)
    elif __package__.startswith("bl_ext."):
        path = Path(bpy.utils.extension_path_user(__package__, create=True))
    else:
        path = Path(bpy.utils.user_resource("CONFIG", path="kinemo"))
    path.mkdir(parents=True, exist_ok=True)
    return path
