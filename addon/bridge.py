"""bpy <-> arrays: what travels between a Blender rig and the Kinemo backend.

Everything that leaves Blender is plain data in the backend's conventions
(Y-up, facing +Z, metres, quaternions w-first); see ``arrays.py`` for the
axis change. Joints are the armature's bones in depth-first order, so every
parent precedes its children, and all transforms are in armature space (the
object's own transform is not part of the rig).

A joint's *local transform* is its full transform relative to its parent
bone, as in ``kinemo.core.skeleton``. With Blender's default bone settings
(inherit rotation, local location) a pose bone's armature-space matrix is
``parent_pose @ rest_local @ basis``, where ``rest_local = parent_rest^-1 @
rest`` and ``basis`` is the pose bone's location/rotation channels. Hence
``local = rest_local @ basis`` and, when writing, ``basis = rest_local^-1 @
local``. For the root bone the parent is the world, converted between the
two axis conventions. Scale channels are neither read nor written.
"""
from __future__ import annotations

import bpy
import numpy as np

from . import arrays as A

# A location smaller than this (metres) on every frame is not keyed.
STILL_LOCATION = 1e-6


def _armature(obj) -> "bpy.types.Object":
    if obj is None or getattr(obj, "type", None) != "ARMATURE":
        raise ValueError(f"{getattr(obj, 'name', obj)!r} is not an armature object")
    return obj


def bone_order(obj) -> list:
    """The armature's bones depth-first from its one root bone (parents first)."""
    bones = _armature(obj).data.bones
    roots = [b for b in bones if b.parent is None]
    if len(roots) != 1:
        names = ", ".join(b.name for b in roots) or "none"
        raise ValueError(f"armature {obj.name!r} needs exactly one root bone, it has {len(roots)}: {names}")
    order, stack = [], roots
    while stack:
        b = stack.pop()
        order.append(b)
        stack.extend(reversed(b.children))
    return order


def _rest_matrices(bones) -> np.ndarray:
    """``(J, 4, 4)`` ``bone.matrix_local`` (armature space, Blender axes)."""
    return np.array([np.array(b.matrix_local) for b in bones], np.float64).reshape(-1, 4, 4)


def _rest_local(bones) -> np.ndarray:
    """``(J, 4, 4)`` each bone's rest transform relative to its parent bone (root: armature).

    Built the way Blender's pose evaluation builds it (``Bone.matrix`` and the
    head offset from the parent's tail), not from ``inverse(parent.matrix_local)
    @ matrix_local``: Blender's rest rotations can be off-orthogonal by ~3e-5
    (bones turned ~180 degrees from their parent), and only its own numbers
    reproduce its poses to 1e-5.
    """
    out = np.zeros((len(bones), 4, 4))
    out[:, 3, 3] = 1.0
    for j, b in enumerate(bones):
        out[j, :3, :3] = np.array(b.matrix)
        out[j, :3, 3] = np.array(b.head) + ((0.0, b.parent.length, 0.0) if b.parent else 0.0)
    return out


def rig_description(obj) -> dict:
    """The rig as plain data for the backend.

    Returns ``{"name": str, "names": [J str], "parents": [J int] (-1 for the
    root), "rest_matrices": (J, 4, 4) float64}``; rest matrices are the bones'
    ``matrix_local`` (head position and bone axes) in the backend's world frame.
    ``kinemo.core.skeleton.Skeleton.from_rest_matrices`` builds the skeleton.
    """
    bones = bone_order(obj)
    index = {b.name: i for i, b in enumerate(bones)}
    return {
        "name": obj.name,
        "names": [b.name for b in bones],
        "parents": [index[b.parent.name] if b.parent else -1 for b in bones],
        "rest_matrices": A.to_backend(_rest_matrices(bones)),
    }


# -- reading ------------------------------------------------------------------

def action_fcurves(obj) -> dict:
    """``{(data_path, index): FCurve}`` of the action playing on ``obj`` (its slot on 4.4+)."""
    ad = obj.animation_data
    if ad is None or ad.action is None:
        return {}
    if bpy.app.version >= (4, 4, 0):
        from bpy_extras import anim_utils
        bag = anim_utils.action_get_channelbag_for_slot(ad.action, ad.action_slot)
        curves = bag.fcurves if bag is not None else ()
    else:
        curves = ad.action.fcurves
    return {(fc.data_path, fc.array_index): fc for fc in curves}


def _channel(curves: dict, pbone, prop: str, frames: np.ndarray) -> np.ndarray:
    """``(T, n)`` values of a pose bone property: its F-curves where keyed, else its current value."""
    current = np.array(getattr(pbone, prop), np.float64)
    out = np.tile(current, (len(frames), 1))
    path = pbone.path_from_id(prop)
    for i in range(len(current)):
        fc = curves.get((path, i))
        if fc is not None:
            out[:, i] = [fc.evaluate(float(f)) for f in frames]
    return out


def _basis_rotation(curves: dict, pbone, frames: np.ndarray) -> np.ndarray:
    """``(T, 3, 3)`` the pose bone's rotation channels in its own rotation mode."""
    mode = pbone.rotation_mode
    if mode == "QUATERNION":
        return A.quat_to_matrix(_channel(curves, pbone, "rotation_quaternion", frames))
    if mode == "AXIS_ANGLE":
        aa = _channel(curves, pbone, "rotation_axis_angle", frames)
        return A.axis_angle_to_matrix(aa[:, 0], aa[:, 1:])
    return A.euler_to_matrix(_channel(curves, pbone, "rotation_euler", frames), mode)


def read_action_motion(obj, frame_start: int, frame_end: int) -> dict:
    """The rig's action (keys only: no constraints, drivers or NLA) on frames
    ``frame_start..frame_end`` inclusive, as full local transforms.

    Returns ``{"names": [J], "parents": [J], "rotations": (T, J, 4),
    "translations": (T, J, 3), "fps": float}`` in the backend's conventions and
    joint order (that of :func:`rig_description`). Unkeyed channels hold the
    pose bone's current value, as Blender plays them.
    """
    if frame_end < frame_start:
        raise ValueError(f"frame range {frame_start}..{frame_end} is empty")
    bones = bone_order(obj)
    frames = np.arange(frame_start, frame_end + 1, dtype=np.float64)
    curves = action_fcurves(obj)
    basis = np.empty((len(frames), len(bones), 4, 4))
    for j, b in enumerate(bones):
        pb = obj.pose.bones[b.name]
        basis[:, j] = A.rigid(_basis_rotation(curves, pb, frames), _channel(curves, pb, "location", frames))
    local = _rest_local(bones)[None] @ basis
    local[:, 0] = A.to_backend(local[:, 0])  # bone_order puts the root first
    desc_index = {b.name: i for i, b in enumerate(bones)}
    scene = bpy.context.scene
    return {
        "names": [b.name for b in bones],
        "parents": [desc_index[b.parent.name] if b.parent else -1 for b in bones],
        "rotations": A.matrix_to_quat(local[..., :3, :3]),
        "translations": local[..., :3, 3].copy(),
        "fps": scene.render.fps / scene.render.fps_base,
    }


# -- writing ------------------------------------------------------------------

def _check_motion(names, rotations, translations) -> tuple[np.ndarray, np.ndarray]:
    rot = np.asarray(rotations, np.float64)
    trans = np.asarray(translations, np.float64)
    J = len(names)
    if rot.ndim != 3 or rot.shape[1:] != (J, 4) or rot.shape[0] < 1:
        raise ValueError(f"local_rotations must be (T, {J}, 4) with T >= 1, got {rot.shape}")
    if trans.shape != rot.shape[:2] + (3,):
        raise ValueError(f"local_translations must be {rot.shape[:2] + (3,)}, got {trans.shape}")
    if not (np.all(np.isfinite(rot)) and np.all(np.isfinite(trans))):
        raise ValueError("motion contains NaN or infinite values")
    if np.any(np.linalg.norm(rot, axis=-1) < 1e-6):
        raise ValueError("motion contains a zero quaternion")
    if len(set(names)) != J:
        raise ValueError("bone names repeat")
    return rot, trans


def _new_curves(action, obj, bone_channels: list) -> tuple[list, object]:
    """Create the F-curves for ``[(bone_name, data_path, n_components)]`` in a new action.

    On Blender 4.4+ they go into a slot made for ``obj``; returns the curves in
    order (one per component) and the slot (None before 4.4).
    """
    curves, slot = [], None
    if bpy.app.version >= (4, 4, 0):
        slot = action.slots.new(id_type="OBJECT", name=obj.name)
        strip = action.layers.new("Kinemo").strips.new(type="KEYFRAME")
        bag = strip.channelbag(slot, ensure=True)
        groups = {}
        for bone, path, n in bone_channels:
            group = groups.get(bone) or groups.setdefault(bone, bag.groups.new(bone))
            for i in range(n):
                fc = bag.fcurves.new(path, index=i)
                fc.group = group
                curves.append(fc)
    else:
        for bone, path, n in bone_channels:
            curves.extend(action.fcurves.new(path, index=i, action_group=bone) for i in range(n))
    return curves, slot


def _rotation_channels(modes: list, basis: np.ndarray, quats: np.ndarray) -> list:
    """``[(pose-bone property, (T, n) values)]`` per bone keying rotations ``basis`` ``(T, J, 3, 3)``
    (``quats`` ``(T, J, 4)``: the same, sign-continuous) in each bone's rotation mode ``modes`` ``[J]``.
    Bones of one mode are converted together (the continuity pass walks the frames once per mode)."""
    out: list = [None] * len(modes)
    for mode in set(modes):
        js = [j for j, m in enumerate(modes) if m == mode]
        if mode == "QUATERNION":
            prop, v = "rotation_quaternion", quats[:, js]
        elif mode == "AXIS_ANGLE":
            prop, v = "rotation_axis_angle", A.quat_to_axis_angle(quats[:, js])
        else:
            prop, v = "rotation_euler", A.euler_continuous(A.matrix_to_euler(basis[:, js], mode), mode)
        for c, j in enumerate(js):
            out[j] = (prop, v[:, c])
    return out


def write_motion_action(obj, names, local_rotations, local_translations,
                        frame_start: int = 1, name: str = "Kinemo"):
    """Write a motion to a NEW action on the rig and make it the rig's active action.

    names: ``J`` bone names; local_rotations ``(T, J, 4)`` and local_translations
    ``(T, J, 3)`` are full local transforms in the backend's conventions (as
    :func:`read_action_motion` returns them). Frame ``t`` is keyed at
    ``frame_start + t``. Rotations are keyed in each bone's own rotation mode
    (quaternion, Euler or axis-angle; continuous curves), so the rig's settings
    stay as they were and the user's actions still play right on it; locations
    are keyed only for bones that move away from their rest position. Existing
    actions are never modified; the one that was playing keeps a fake user so
    it survives saving. Returns the action.
    """
    _armature(obj)
    rot, trans = _check_motion(names, local_rotations, local_translations)
    bones_by_name = obj.data.bones
    missing = [n for n in names if n not in bones_by_name]
    if missing:
        raise KeyError(f"rig {obj.name!r} has no bones named {missing}")
    bones = [bones_by_name[n] for n in names]
    for b in bones:
        if not b.use_inherit_rotation:
            raise ValueError(f"bone {b.name!r} does not inherit its parent's rotation; "
                             "Kinemo writes only bones that do")

    pbones = obj.pose.bones
    local = A.rigid(A.quat_to_matrix(rot), trans)  # (T, J, 4, 4)
    is_root = np.array([b.parent is None for b in bones])
    local[:, is_root] = A.from_backend(local[:, is_root])
    basis = np.linalg.inv(_rest_local(bones))[None] @ local
    quats = A.quat_continuous(A.matrix_to_quat(basis[..., :3, :3]))
    rotation_channels = _rotation_channels([pbones[b.name].rotation_mode for b in bones], basis[..., :3, :3], quats)
    locs = basis[..., :3, 3]
    moving = np.abs(locs).max(axis=0).max(axis=-1) > STILL_LOCATION
    for j in np.flatnonzero(moving):
        b = bones[j]
        if b.use_connect or not b.use_local_location:
            raise ValueError(f"bone {b.name!r} must move but is connected to its parent or uses "
                             "armature-space location; disconnect it or key only its rotation")

    channels, values = [], []
    for j, b in enumerate(bones):
        pb = pbones[b.name]
        if moving[j]:
            channels.append((b.name, pb.path_from_id("location"), 3))
            values.extend(locs[:, j].T)
        prop, v = rotation_channels[j]
        channels.append((b.name, pb.path_from_id(prop), v.shape[1]))
        values.extend(v.T)

    action = bpy.data.actions.new(name)  # Blender suffixes the name if it is taken
    curves, slot = _new_curves(action, obj, channels)
    frames = frame_start + np.arange(rot.shape[0], dtype=np.float64)
    co = np.empty((len(frames), 2), np.float32)
    co[:, 0] = frames
    for fc, v in zip(curves, values):
        co[:, 1] = v
        fc.keyframe_points.add(len(frames))
        fc.keyframe_points.foreach_set("co", co.ravel())
        fc.update()  # sorts and computes the Bezier handles

    ad = obj.animation_data or obj.animation_data_create()
    previous = ad.action
    if previous is not None and previous.users <= 1 and not previous.use_fake_user:
        previous.use_fake_user = True  # otherwise saving the file would drop the user's action
    ad.action = action
    if slot is not None:
        ad.action_slot = slot
    return action
