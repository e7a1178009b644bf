"""Retargeting onto real Blender rigs: Rigify's human metarig and a BVH-imported
skeleton map to SMPL without manual edits, and motion carried onto them and
back keeps every mapped joint in place."""
from __future__ import annotations

import addon_utils
import bpy
import numpy as np
import pytest

from kinemo.core.bonemap import auto_map
from kinemo.core.bvh import read_bvh
from kinemo.core.retarget import retarget
from kinemo.core.skeleton import Skeleton
from kinemo.core.smpl import smpl_skeleton
from kinemo.demo_motion import DEMO_BVH


def _metarig():
    addon_utils.enable("rigify", default_set=True)
    assert bpy.ops.object.armature_human_metarig_add() == {"FINISHED"}
    return bpy.context.object


def _bvh_rig():
    assert bpy.ops.import_anim.bvh(filepath=str(DEMO_BVH), update_scene_fps=False, use_fps_scale=False) == {"FINISHED"}
    return bpy.context.object


def _skeleton(bridge, obj) -> Skeleton:
    d = bridge.rig_description(obj)
    return Skeleton.from_rest_matrices(d["names"], d["parents"], d["rest_matrices"])


EXPECTED_METARIG = {
    "pelvis": "spine", "spine1": "spine.001", "spine2": "spine.002", "spine3": "spine.003",
    "neck": "spine.004", "head": "spine.006", "left_hip": "thigh.L", "left_knee": "shin.L",
    "left_ankle": "foot.L", "left_foot": "toe.L", "right_hip": "thigh.R", "left_collar": "shoulder.L",
    "left_shoulder": "upper_arm.L", "left_elbow": "forearm.L", "left_wrist": "hand.L",
    "right_wrist": "hand.R", "left_hand": "f_middle.01.L",
}


def test_rigify_metarig_maps_without_edits(bridge):
    skel = _skeleton(bridge, _metarig())
    bm = auto_map(skel)
    assert {r: bm.joints[r] for r in EXPECTED_METARIG} == EXPECTED_METARIG
    assert bm.unmapped == []


@pytest.mark.parametrize("make_rig", [_metarig, _bvh_rig], ids=["rigify-metarig", "bvh-import"])
def test_motion_onto_blender_rig_and_back(bridge, make_rig):
    smpl = smpl_skeleton()
    walk = read_bvh(DEMO_BVH)
    src = retarget(walk.skeleton, walk.motion, smpl)
    rig = _skeleton(bridge, make_rig())
    on_rig = retarget(smpl, src, rig)
    # the rig's own bone lengths are kept on every frame
    p = on_rig.positions(rig)
    lengths = np.linalg.norm(p[:, 1:] - p[:, rig.parents[1:]], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(rig.bone_lengths()[1:], lengths.shape), atol=1e-7)
    back = retarget(rig, on_rig, smpl, fix_ground=False)
    idx = auto_map(rig).indices(rig)
    shared = [smpl.index(r) for r in idx]
    p0, p1 = src.positions(smpl), back.positions(smpl)
    rel = lambda q: q[:, shared] - q[:, :1]  # noqa: E731
    assert np.abs(rel(p1) - rel(p0)).max() < 0.01
