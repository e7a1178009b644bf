"""kinemo's BVH reader + FK agree with Blender's own BVH importer on real takes.

Blender imports each Bandai sample take; every frame's pose-bone head
positions (world space, converted to the backend's axes) must match the global
joint positions from ``read_bvh`` + forward kinematics to 0.1 mm.
"""
from __future__ import annotations

import bpy
import numpy as np
import pytest

from kinemo.core import axes
from kinemo.core.bvh import read_bvh

TOL_M = 1e-4


def blender_import(path, global_scale: float):
    """Import with Blender's BVH importer, settings spelled out: Y-up file
    (forward -Z), native Euler orders, one key per file frame from frame 1."""
    res = bpy.ops.import_anim.bvh(
        filepath=str(path), global_scale=global_scale, frame_start=1, use_fps_scale=False,
        update_scene_fps=False, update_scene_duration=False, use_cyclic=False,
        rotate_mode="NATIVE", axis_forward="-Z", axis_up="Y")
    assert res == {"FINISHED"}
    return bpy.context.object


def blender_head_positions(obj, names, frames) -> np.ndarray:
    """``(T, J, 3)`` world positions of the named pose bones' heads, backend axes."""
    scene = bpy.context.scene
    pbones = obj.pose.bones
    index = [pbones.find(n) for n in names]
    missing = [n for n, i in zip(names, index) if i < 0]
    assert not missing, f"Blender made no bones for joints {missing}"
    heads = np.empty(len(pbones) * 3, np.float32)
    out = np.empty((len(frames), len(names), 3))
    world = np.array(obj.matrix_world)
    for t, f in enumerate(frames):
        scene.frame_set(int(f))
        pbones.foreach_get("head", heads)
        h = heads.reshape(-1, 3)[index].astype(np.float64)
        out[t] = h @ world[:3, :3].T + world[:3, 3]
    return axes.blender_to_backend_points(out)


def test_every_frame_matches_blender(bandai_files):
    for path in bandai_files:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        bvh = read_bvh(path)
        assert bvh.scale == pytest.approx(0.01), f"{path.name}: Bandai takes are in centimetres"
        obj = blender_import(path, global_scale=bvh.scale)
        T = bvh.motion.num_frames
        start, end = obj.animation_data.action.frame_range
        assert (start, end) == (1, T), f"{path.name}: Blender keyed frames {start}..{end}, file has {T}"

        ours = bvh.motion.positions(bvh.skeleton)
        theirs = blender_head_positions(obj, bvh.skeleton.names, np.arange(1, T + 1))
        err = np.linalg.norm(ours - theirs, axis=-1)
        t, j = np.unravel_index(np.argmax(err), err.shape)
        assert err.max() < TOL_M, (f"{path.name}: joint {bvh.skeleton.names[j]} frame {t} is "
                                   f"{err.max() * 1000:.3f} mm away from Blender's")
        # Not a vacuous match: the takes move.
        assert np.ptp(ours, axis=0).max() > 0.2, f"{path.name}: the take barely moves"
