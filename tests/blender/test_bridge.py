"""The bpy <-> arrays bridge on real rigs: Rigify's human metarig and a
BVH-imported skeleton. Blender itself evaluates every pose we compare with."""
from __future__ import annotations

import time

import addon_utils
import bpy
import numpy as np
import pytest

from kinemo.core import axes
from kinemo.core import rotations as R
from kinemo.core.bvh import read_bvh
from kinemo.core.skeleton import Motion, Skeleton
from kinemo.demo_motion import DEMO_BVH

TOL = 1e-5


# -- rigs -----------------------------------------------------------------------

def metarig():
    addon_utils.enable("rigify", default_set=True)
    assert bpy.ops.object.armature_human_metarig_add() == {"FINISHED"}
    return bpy.context.object


def bvh_rig():
    res = bpy.ops.import_anim.bvh(filepath=str(DEMO_BVH), global_scale=1.0, rotate_mode="NATIVE",
                                  update_scene_fps=False, use_fps_scale=False)
    assert res == {"FINISHED"}
    return bpy.context.object


def chain_rig(n_bones: int):
    """A rig of ``n_bones``: a root with three chains (a spine and two arms)."""
    arm = bpy.data.armatures.new("Chains")
    obj = bpy.data.objects.new("Chains", arm)
    bpy.context.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    root = arm.edit_bones.new("root")
    root.head, root.tail = (0, 0, 1), (0, 0, 1.1)
    per = (n_bones - 1) // 3
    for c, direction in enumerate([(0, 0, 1), (1, 0, 0.2), (-1, 0, 0.2)]):
        parent = root
        count = per + (1 if c < (n_bones - 1) % 3 else 0)
        for k in range(count):
            b = arm.edit_bones.new(f"c{c}.{k:03d}")
            b.head = parent.tail
            b.tail = np.array(b.head) + 0.05 * np.array(direction) / np.linalg.norm(direction)
            b.roll = 0.3 * k
            b.parent = parent
            b.use_connect = k > 0
            parent = b
    bpy.ops.object.mode_set(mode="OBJECT")
    assert len(arm.bones) == n_bones
    return obj


RIGS = {"metarig": metarig, "bvh": bvh_rig}


# -- what Blender evaluates ------------------------------------------------------

def evaluated_locals(obj, names, frames) -> tuple[np.ndarray, np.ndarray]:
    """Local rotations ``(T, J, 4)`` and translations ``(T, J, 3)`` (backend
    conventions) from Blender's evaluated pose matrices."""
    pbones = obj.pose.bones
    n = len(pbones)
    index = [pbones.find(nm) for nm in names]
    parent = [pbones.find(pbones[nm].parent.name) if pbones[nm].parent else -1 for nm in names]
    buf = np.empty(n * 16, np.float32)
    rot = np.empty((len(frames), len(names), 4))
    trans = np.empty((len(frames), len(names), 3))
    for t, f in enumerate(frames):
        bpy.context.scene.frame_set(int(f))
        pbones.foreach_get("matrix", buf)
        m = buf.reshape(n, 4, 4).transpose(0, 2, 1).astype(np.float64)  # Blender flattens column-major
        for j, (i, p) in enumerate(zip(index, parent)):
            local = np.linalg.inv(m[p]) @ m[i] if p >= 0 else axes.blender_to_backend_matrices(m[i])
            rot[t, j] = R.matrix_to_quat(local[:3, :3])
            trans[t, j] = local[:3, 3]
    return rot, trans


def evaluated_heads(obj, names, frames) -> np.ndarray:
    """``(T, J, 3)`` pose-bone heads in the world, backend axes."""
    pbones = obj.pose.bones
    index = [pbones.find(nm) for nm in names]
    buf = np.empty(len(pbones) * 3, np.float32)
    world = np.array(obj.matrix_world)
    out = np.empty((len(frames), len(names), 3))
    for t, f in enumerate(frames):
        bpy.context.scene.frame_set(int(f))
        pbones.foreach_get("head", buf)
        out[t] = buf.reshape(-1, 3)[index] @ world[:3, :3].T + world[:3, 3]
    return axes.blender_to_backend_points(out)


def key_random_poses(obj, frames, seed=0) -> None:
    """Key moderate random rotations on every bone (in its own rotation mode) and
    root locations, as a user would with keyframe_insert."""
    rng = np.random.default_rng(seed)
    root = next(b for b in obj.pose.bones if b.parent is None)
    for f in frames:
        for pb in obj.pose.bones:
            q = R.axis_angle_to_quat(rng.normal(scale=0.35, size=3))
            if pb.rotation_mode == "QUATERNION":
                pb.rotation_quaternion = q
                pb.keyframe_insert("rotation_quaternion", frame=f)
            elif pb.rotation_mode == "AXIS_ANGLE":
                angle = 2 * np.arccos(np.clip(q[0], -1, 1))
                pb.rotation_axis_angle = [angle, *(q[1:] / max(np.linalg.norm(q[1:]), 1e-9))]
                pb.keyframe_insert("rotation_axis_angle", frame=f)
            else:
                pb.rotation_euler = R.quat_to_euler(q, pb.rotation_mode[::-1])[::-1]
                pb.keyframe_insert("rotation_euler", frame=f)
        root.location = rng.normal(scale=0.3, size=3)
        root.keyframe_insert("location", frame=f)


def snapshot(action) -> dict:
    """Every F-curve's keys (co and both handles, exact float32 bytes) and settings."""
    out = {}
    for fc in action.fcurves:
        kp = fc.keyframe_points
        data = []
        for prop in ("co", "handle_left", "handle_right"):
            buf = np.empty(len(kp) * 2, np.float32)
            kp.foreach_get(prop, buf)
            data.append(buf.tobytes())
        out[(fc.data_path, fc.array_index)] = (tuple(data), tuple(k.interpolation for k in kp))
    return out


MODES = ("QUATERNION", "XYZ", "ZXY", "YZX", "AXIS_ANGLE")


def play(obj, action) -> None:
    """Make ``action`` the rig's active action (in its first slot on Blender 4.4+)."""
    obj.animation_data.action = action
    if bpy.app.version >= (4, 4, 0):
        obj.animation_data.action_slot = action.slots[0]


def action_of(rig_name: str, obj):
    if rig_name == "metarig":  # every rotation mode a user may have set, bone by bone
        for k, pb in enumerate(obj.pose.bones):
            pb.rotation_mode = MODES[k % len(MODES)]
        key_random_poses(obj, (1, 8, 15, 22))
        return obj.animation_data.action, 1, 22
    action = obj.animation_data.action  # Blender's own import of the demo walk
    return action, 1, int(action.frame_range[1])


# -- tests -----------------------------------------------------------------------

@pytest.mark.parametrize("rig_name", RIGS)
def test_rig_description_reproduces_bone_heads_and_axes(bridge, rig_name):
    obj = RIGS[rig_name]()
    d = bridge.rig_description(obj)
    bones = obj.data.bones
    assert sorted(d["names"]) == sorted(b.name for b in bones)
    assert d["parents"][0] == -1 and all(0 <= p < j for j, p in enumerate(d["parents"][1:], 1))
    assert all(bones[n].parent.name == d["names"][p] for n, p in zip(d["names"][1:], d["parents"][1:]))

    skel = Skeleton.from_rest_matrices(d["names"], d["parents"], d["rest_matrices"])
    g_rot, g_pos = skel.rest_global()
    heads = axes.blender_to_backend_points(np.array([bones[n].head_local for n in d["names"]]))
    tails = axes.blender_to_backend_points(np.array([bones[n].tail_local for n in d["names"]]))
    assert np.abs(g_pos - heads).max() < 1e-6
    # The bone's own axes travel too: its Y axis points from head to tail.
    length = np.array([bones[n].length for n in d["names"]])
    y_axis = R.quat_to_matrix(g_rot)[:, :, 1]
    assert np.abs(heads + y_axis * length[:, None] - tails).max() < 1e-5

    if rig_name == "bvh":  # the same joints as kinemo's reader finds in the file
        ref = read_bvh(DEMO_BVH).skeleton
        _, ref_pos = ref.rest_global()
        assert np.abs(g_pos - ref_pos[[ref.index(n) for n in d["names"]]]).max() < 1e-6


def test_rig_description_rejects_non_armatures_and_several_roots(bridge):
    bpy.ops.mesh.primitive_cube_add()
    with pytest.raises(ValueError, match="not an armature"):
        bridge.rig_description(bpy.context.object)
    obj = chain_rig(7)
    bpy.ops.object.mode_set(mode="EDIT")
    obj.data.edit_bones["c1.000"].parent = None
    bpy.ops.object.mode_set(mode="OBJECT")
    with pytest.raises(ValueError, match="exactly one root bone"):
        bridge.rig_description(obj)


@pytest.mark.parametrize("rig_name", RIGS)
def test_read_action_matches_blender_on_every_frame(bridge, rig_name):
    obj = RIGS[rig_name]()
    _, first, last = action_of(rig_name, obj)
    d = bridge.rig_description(obj)
    skel = Skeleton.from_rest_matrices(d["names"], d["parents"], d["rest_matrices"])
    m = bridge.read_action_motion(obj, first, last)
    assert m["names"] == d["names"] and m["parents"] == d["parents"]
    ours = Motion(m["rotations"], m["translations"], m["fps"]).positions(skel)
    frames = np.arange(first, last + 1)  # keys and the interpolated frames between them
    theirs = evaluated_heads(obj, d["names"], frames)
    assert np.abs(ours - theirs).max() < TOL
    assert np.ptp(theirs, axis=0).max() > 0.1  # the poses really differ


@pytest.mark.parametrize("rig_name", RIGS)
def test_write_reproduces_motion_and_leaves_user_action_untouched(bridge, rig_name):
    obj = RIGS[rig_name]()
    user_action, first, last = action_of(rig_name, obj)
    user_name = user_action.name
    before = snapshot(user_action)
    m = bridge.read_action_motion(obj, first, last)
    names = m["names"]
    T = last - first + 1
    modes = {pb.name: pb.rotation_mode for pb in obj.pose.bones}
    width = {"QUATERNION": 4, "AXIS_ANGLE": 4}

    action = bridge.write_motion_action(obj, names, m["rotations"], m["translations"],
                                        frame_start=101, name="Kinemo result")
    assert action is not user_action and obj.animation_data.action == action
    if bpy.app.version >= (4, 4, 0):
        assert obj.animation_data.action_slot == action.slots[0]
        assert action.slots[0].target_id_type == "OBJECT"
    keyed = {(fc.data_path, fc.array_index) for fc in action.fcurves}
    root_loc = obj.pose.bones[names[0]].path_from_id("location")
    assert {p for p, _ in keyed if p.endswith(".location")} == {root_loc}
    assert len(keyed) == sum(width.get(modes[n], 3) for n in names) + 3
    assert {pb.name: pb.rotation_mode for pb in obj.pose.bones} == modes  # keyed in the rig's own modes
    assert all(len(fc.keyframe_points) == T for fc in action.fcurves)

    rot, trans = evaluated_locals(obj, names, np.arange(101, 101 + T))
    assert R.quat_angle(rot, m["rotations"]).max() < TOL
    assert np.abs(trans - m["translations"]).max() < TOL

    # The user's action: still there, keys bit-identical, kept alive by a fake user, and it still plays
    # the same poses when the user assigns it back.
    assert bpy.data.actions.get(user_name) is user_action
    assert snapshot(user_action) == before
    assert user_action.use_fake_user
    play(obj, user_action)
    rot, trans = evaluated_locals(obj, names, np.arange(first, last + 1))
    assert R.quat_angle(rot, m["rotations"]).max() < TOL
    assert np.abs(trans - m["translations"]).max() < TOL
    play(obj, action)

    # Writing again makes another action; the first one is not touched either.
    first_keys = snapshot(action)
    again = bridge.write_motion_action(obj, names, m["rotations"], m["translations"], name="Kinemo result")
    assert again != action and again.name != action.name
    assert snapshot(action) == first_keys


def test_write_rejects_bad_input_and_creates_nothing(bridge):
    obj = metarig()
    d = bridge.rig_description(obj)
    J = len(d["names"])
    good_rot = np.tile([1.0, 0, 0, 0], (3, J, 1))
    good_trans = np.zeros((3, J, 3))
    n_actions = len(bpy.data.actions)
    cases = [
        (KeyError, "no bones named", dict(names=d["names"][:-1] + ["nope"])),
        (ValueError, r"\(T, %d, 4\)" % J, dict(local_rotations=good_rot[:, :-1])),
        (ValueError, "local_translations", dict(local_translations=good_trans[:2])),
        (ValueError, "NaN", dict(local_translations=np.full_like(good_trans, np.nan))),
        (ValueError, "zero quaternion", dict(local_rotations=np.zeros_like(good_rot))),
    ]
    for exc, match, override in cases:
        kwargs = dict(names=d["names"], local_rotations=good_rot, local_translations=good_trans)
        kwargs.update(override)
        with pytest.raises(exc, match=match):
            bridge.write_motion_action(obj, **kwargs)
    # A connected bone cannot be moved by its location channel: refuse, don't drop it.
    trans = np.repeat(d["rest_matrices"][None, :, :3, 3], 3, 0)
    trans[:, 1:] = bridge.read_action_motion(obj, 1, 3)["translations"][:, 1:]
    connected = next(j for j, n in enumerate(d["names"]) if obj.data.bones[n].use_connect)
    trans[:, connected] += 0.1
    with pytest.raises(ValueError, match="connected"):
        bridge.write_motion_action(obj, d["names"], good_rot, trans)
    with pytest.raises(ValueError, match="not an armature"):
        bpy.ops.mesh.primitive_cube_add()
        bridge.write_motion_action(bpy.context.object, d["names"], good_rot, good_trans)
    assert len(bpy.data.actions) == n_actions


def test_write_one_minute_at_30fps_on_a_60_bone_rig(bridge):
    obj = chain_rig(60)
    for k, pb in enumerate(obj.pose.bones):   # half the bones Euler: their curves get the continuity pass
        pb.rotation_mode = "XYZ" if k % 2 else "QUATERNION"
    d = bridge.rig_description(obj)
    T, J = 60 * 30, len(d["names"])
    t = np.arange(T)[:, None, None] / 30.0
    rng = np.random.default_rng(5)
    freq, phase = rng.uniform(0.2, 1.5, (1, J, 3)), rng.uniform(0, 6.3, (1, J, 3))
    rot = R.axis_angle_to_quat(0.6 * np.sin(2 * np.pi * freq * t + phase))
    skel = Skeleton.from_rest_matrices(d["names"], d["parents"], d["rest_matrices"])
    trans = np.repeat(skel.offsets[None], T, 0)
    trans[:, 0] += np.sin(np.arange(T) / 50.0)[:, None] * [1.0, 0.0, 0.5]

    start = time.perf_counter()
    action = bridge.write_motion_action(obj, d["names"], rot, trans, frame_start=1, name="minute")
    elapsed = time.perf_counter() - start
    print(f"\nwrite_motion_action: {T} frames x {J} bones ({len(action.fcurves)} F-curves, "
          f"{T * len(action.fcurves)} keys) in {elapsed:.3f} s")

    check = np.array([0, 1, 899, T - 1])
    e_rot, e_trans = evaluated_locals(obj, d["names"], check + 1)
    assert R.quat_angle(e_rot, rot[check]).max() < TOL
    assert np.abs(e_trans - trans[check]).max() < TOL
