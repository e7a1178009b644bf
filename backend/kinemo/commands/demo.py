"""``kinemo demo --out DIR``: the product's flow headless through ``bpy``, saved as
``DIR/demo.blend`` with preview PNGs.

Retargeting: the procedural walk shipped with Kinemo, and, when the shared
research data is beside the repository (or named by ``KINEMO_SHARED``), one
Bandai-Namco take as well. Each clip gets its own metarig, retargeted by
``kinemo.core.retarget`` and written through the add-on's bridge as a new
action, exactly as the add-on does.

The model (when the shipped checkpoint is installed; ``--no-model`` skips it):
the add-on starts a local backend itself, a few poses of the walk are keyed on
another metarig and the add-on's in-between operator fills the rest
(``preview_inbetween.png``); a further metarig gets motion generated from a
sentence (``preview_generate.png``). The previews are drawn from the pose
Blender evaluates on every frame, so they show what Blender plays.
"""
from __future__ import annotations

import argparse
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import axes
from ..core.bvh import read_bvh
from ..core.resample import resample
from ..core.skeleton import Motion, Skeleton
from ..demo_motion import DEMO_BVH
from ..errors import UserError

DEFAULT_TAKE = "dataset-2_wave-left-hand_elderly_001.bvh"
RIG_SPACING_M = 1.5  # metarigs stand side by side along X
OUTPUTS = ("demo.blend", "preview.png", "preview_bandai.png", "preview_inbetween.png", "preview_generate.png")
DEMO_KEYS = (1, 30, 60, 90)          # frames of the shipped walk keyed as the "user's" poses
DEMO_PROMPT = "a person waves with the left hand"


@dataclass
class Clip:
    name: str
    skeleton: Skeleton
    motion: Motion


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--take", default=DEFAULT_TAKE,
                   help=f"Bandai take to add when ../shared is present (default {DEFAULT_TAKE})")
    p.add_argument("--no-shared", action="store_true", help="use only the shipped demo walk")
    p.add_argument("--fps", type=float, default=30.0, help="scene frame rate (clips are resampled)")
    p.add_argument("--force", action="store_true", help=f"replace existing {', '.join(OUTPUTS)} in --out")
    p.add_argument("--no-model", action="store_true", help="skip the model steps (in-between, text)")


# -- clips --------------------------------------------------------------------------

def shared_dir() -> Path:
    """``$KINEMO_SHARED``, else ``shared/`` beside the repository checkout."""
    env = os.environ.get("KINEMO_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared"


def bandai_take(name: str) -> Clip | None:
    """One take from the shared Bandai archive, or None when the archive is absent."""
    tar_path = shared_dir() / "data" / "bandai-namco-motion" / "bandai-namco-motion.tar.xz"
    if not tar_path.is_file():
        return None
    with tarfile.open(tar_path, "r:xz") as tf, tempfile.TemporaryDirectory() as tmp:
        member = next((m for m in tf if m.isfile() and os.path.basename(m.name) == name), None)
        if member is None:
            raise UserError(f"no take named {name!r} in {tar_path}")
        path = Path(tmp) / name
        path.write_bytes(tf.extractfile(member).read())
        bvh = read_bvh(path)
    return Clip(f"Bandai {Path(name).stem}", bvh.skeleton, bvh.motion)


def demo_clips(take: str | None) -> list[Clip]:
    walk = read_bvh(DEMO_BVH)
    clips = [Clip("demo walk", walk.skeleton, walk.motion)]
    if take:
        extra = bandai_take(take)
        if extra is not None:
            clips.append(extra)
    return clips


def retarget_clip(clip: Clip, target: Skeleton, fps: float) -> Motion:
    """The clip on the target skeleton at the scene's frame rate."""
    from ..core.retarget import retarget
    motion = clip.motion
    if abs(motion.fps - fps) > 1e-3 * fps:
        motion = resample(motion, fps)
    return retarget(clip.skeleton, motion, target)


# -- Blender ------------------------------------------------------------------------

def _bpy():
    try:
        import bpy
    except ImportError:
        raise UserError("kinemo demo needs bpy (Blender as a Python module): "
                        "pip install -e '.[blender]'") from None
    return bpy


def new_scene(bpy, fps: float) -> None:
    """An empty file with Rigify enabled and the scene at ``fps``."""
    import addon_utils
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("rigify", default_set=True)
    scene = bpy.context.scene
    scene.render.fps = max(1, int(round(fps)))
    scene.render.fps_base = scene.render.fps / fps


def add_metarig(bpy, name: str, x: float):
    if bpy.ops.object.armature_human_metarig_add() != {"FINISHED"}:
        raise UserError("could not add Rigify's human metarig")
    obj = bpy.context.object
    obj.name = name
    obj.location.x = x
    bpy.context.view_layer.update()
    return obj


def evaluated_bones(bpy, obj, frames) -> tuple[np.ndarray, np.ndarray]:
    """World heads and tails of every pose bone on each frame, backend axes:
    ``(T, B, 3)`` each, bones in ``obj.pose.bones`` order."""
    pbones = obj.pose.bones
    n = len(pbones)
    head, tail = np.empty(n * 3, np.float32), np.empty(n * 3, np.float32)
    heads, tails = np.empty((len(frames), n, 3)), np.empty((len(frames), n, 3))
    for t, f in enumerate(frames):
        bpy.context.scene.frame_set(int(f))
        world = np.array(obj.matrix_world)
        pbones.foreach_get("head", head)
        pbones.foreach_get("tail", tail)
        heads[t] = head.reshape(n, 3) @ world[:3, :3].T + world[:3, 3]
        tails[t] = tail.reshape(n, 3) @ world[:3, :3].T + world[:3, 3]
    return axes.blender_to_backend_points(heads), axes.blender_to_backend_points(tails)


def _drawn_bones(obj, skeleton: Skeleton) -> list[int]:
    """Pose-bone indices worth drawing: all but the face rig under the head bone."""
    from ..core.bonemap import auto_map
    head = auto_map(skeleton, require=False).joints.get("head")
    face = set(skeleton.descendants(skeleton.index(head))) if head else set()
    hidden = {skeleton.names[j] for j in face}
    return [i for i, pb in enumerate(obj.pose.bones) if pb.name not in hidden]


def key_user_poses(bpy, obj, names, motion: Motion, frames) -> None:
    """Key the motion's poses at ``frames`` (1-based) as a user would: an action with keys on those frames only."""
    from kinemo_addon import bridge
    idx = np.asarray(frames) - 1
    bridge.write_motion_action(obj, names, motion.rotations[idx], motion.translations[idx],
                               frame_start=1, name="user keys")
    # written on frames 1..K; move each key to its frame in one bulk write per curve
    remap = dict(zip(range(1, len(idx) + 1), frames))
    for fc in bridge.action_fcurves(obj).values():   # the action just written plays on obj
        kp = fc.keyframe_points
        co = np.empty(2 * len(kp), np.float32)
        kp.foreach_get("co", co)
        co[0::2] = [remap[int(round(x))] for x in co[0::2]]
        kp.foreach_set("co", co)
        for k in kp:
            k.handle_left_type = k.handle_right_type = "AUTO_CLAMPED"
        fc.update()


def start_backend(out: Path):
    """The add-on's own "start a local backend" with this Python; waits until it listens."""
    import socket
    import sys
    import time

    from kinemo_addon import local_backend
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    local_backend.start(sys.executable, address, out / "backend.log")
    deadline = time.monotonic() + 120
    while not local_backend.ready():
        if local_backend.status().startswith("stopped") or time.monotonic() > deadline:
            raise UserError(f"the backend did not start; see {out / 'backend.log'}:\n{local_backend.log_tail()}")
        time.sleep(0.2)
    return address, local_backend


def model_flow(bpy, out: Path, fps: float, x: float) -> list[tuple[object, str, str]]:
    """Key poses + in-between, and generate from text, through the add-on's operators and a live backend.
    Returns ``(rig, preview file, title)`` per result."""
    from ..model.generator import DEFAULT_CHECKPOINT
    if not DEFAULT_CHECKPOINT.exists():
        print(f"no shipped model at {DEFAULT_CHECKPOINT}: skipping in-between and text")
        return []
    from kinemo_addon import bridge
    address, backend = start_backend(out)
    try:
        walk = demo_clips(None)[0]
        obj = add_metarig(bpy, "metarig in-between", x)
        desc = bridge.rig_description(obj)
        target = Skeleton.from_rest_matrices(desc["names"], desc["parents"], desc["rest_matrices"])
        key_user_poses(bpy, obj, desc["names"], retarget_clip(walk, target, fps), DEMO_KEYS)
        k = bpy.context.scene.kinemo
        k.frame_start, k.frame_end = DEMO_KEYS[0], DEMO_KEYS[-1]
        bpy.context.view_layer.objects.active = obj
        if bpy.ops.kinemo.inbetween(blocking=True, address=address) != {"FINISHED"}:
            raise UserError("the in-between operator failed")
        print(f"in-between: keys at frames {list(DEMO_KEYS)} filled on {obj.name!r} "
              f"-> action {obj.animation_data.action.name!r}")
        gen = add_metarig(bpy, "metarig text", x + RIG_SPACING_M)
        bpy.context.view_layer.objects.active = gen
        k.prompt, k.seconds = DEMO_PROMPT, 4.0
        if bpy.ops.kinemo.generate(blocking=True, address=address) != {"FINISHED"}:
            raise UserError("the generate operator failed")
        print(f"generate: {DEMO_PROMPT!r} -> action {gen.animation_data.action.name!r} on {gen.name!r}")
        return [(obj, "preview_inbetween.png", f"in-between of 4 keyed walk poses (keys at {list(DEMO_KEYS)})"),
                (gen, "preview_generate.png", f"generated from text: {DEMO_PROMPT!r}")]
    finally:
        backend.stop()


def draw_preview(bpy, obj, png: Path, fps: float, title: str) -> None:
    from kinemo_addon import bridge

    from .. import preview
    desc = bridge.rig_description(obj)
    target = Skeleton.from_rest_matrices(desc["names"], desc["parents"], desc["rest_matrices"])
    a, b = obj.animation_data.action.frame_range
    frames = np.arange(int(a), int(b) + 1)
    heads, tails = evaluated_bones(bpy, obj, frames)
    order = [obj.pose.bones.find(n) for n in desc["names"]]
    drawn = _drawn_bones(obj, target)
    preview.filmstrip(png, np.stack([heads[:, drawn], tails[:, drawn]], axis=2),
                      [preview.side_of(obj.pose.bones[i].name) for i in drawn], heads[:, order[0]],
                      fps=fps, title=title)
    print(f"preview {png}")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    taken = [n for n in OUTPUTS if (out / n).exists()]
    if taken and not args.force:
        raise UserError(f"{out} already holds {', '.join(taken)}; pass --force to replace them")
    if not args.fps > 0:
        raise UserError(f"--fps must be positive, got {args.fps}")
    bpy = _bpy()
    from kinemo.addon_loader import load_addon
    addon = load_addon()
    from kinemo_addon import bridge

    from .. import preview

    clips = demo_clips(None if args.no_shared else args.take)
    out.mkdir(parents=True, exist_ok=True)
    new_scene(bpy, args.fps)
    addon.register()          # the operators and the scene's Kinemo settings
    try:
        return _build(bpy, bridge, preview, clips, out, args)
    finally:
        addon.unregister()


def _build(bpy, bridge, preview, clips, out: Path, args) -> int:
    last_frame = 1
    for k, clip in enumerate(clips):
        obj = add_metarig(bpy, f"metarig {clip.name}", k * RIG_SPACING_M)
        desc = bridge.rig_description(obj)
        target = Skeleton.from_rest_matrices(desc["names"], desc["parents"], desc["rest_matrices"])
        motion = retarget_clip(clip, target, args.fps)
        action = bridge.write_motion_action(obj, desc["names"], motion.rotations, motion.translations,
                                            frame_start=1, name=f"Kinemo {clip.name}")
        frames = np.arange(1, motion.num_frames + 1)
        last_frame = max(last_frame, int(frames[-1]))

        heads, tails = evaluated_bones(bpy, obj, frames)
        # Blender must play what the retargeter produced (armature space + the rig's offset).
        order = [obj.pose.bones.find(n) for n in desc["names"]]
        expected = motion.positions(target) + axes.blender_to_backend_points(np.array(obj.matrix_world)[:3, 3])
        err_mm = 1000 * np.abs(heads[:, order] - expected).max()
        png = out / ("preview.png" if k == 0 else "preview_bandai.png")
        drawn = _drawn_bones(obj, target)
        preview.filmstrip(png, np.stack([heads[:, drawn], tails[:, drawn]], axis=2),
                          [preview.side_of(obj.pose.bones[i].name) for i in drawn], heads[:, order[0]],
                          fps=args.fps, title=f"{clip.name} on Rigify's human metarig, as Blender plays it")
        print(f"{clip.name}: {motion.num_frames} frames at {args.fps:g} fps -> action {action.name!r} "
              f"on {obj.name!r} ({len(desc['names'])} bones); Blender matches the retargeted motion to "
              f"{err_mm:.3f} mm; preview {png}")

    if not args.no_model:
        for obj, png, title in model_flow(bpy, out, args.fps, len(clips) * RIG_SPACING_M):
            draw_preview(bpy, obj, out / png, args.fps, title)
            last_frame = max(last_frame, int(obj.animation_data.action.frame_range[1]))
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, last_frame
    scene.frame_set(1)
    blend = out / "demo.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend.resolve()), check_existing=False, compress=True)
    print(f"saved {blend}")
    return 0
