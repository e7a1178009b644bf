"""Valid request bodies for each request type, built from real skeletons.

Used by the tests (round trips from both ends, fuzzing seeds) and by the
server benchmark; also a concrete reference next to ``docs/protocol.md``.
"""
from __future__ import annotations

import numpy as np

from kinemo.core import rotations as R
from kinemo.core.skeleton import Motion, Skeleton
from kinemo.core.smpl import smpl_skeleton

from .convert import motion_to_wire, rig_from_skeleton


def chain_skeleton(joints: int, bone: float = 0.1) -> Skeleton:
    """A simple upright chain of ``joints`` bones, names ``bone_000``..."""
    offsets = np.zeros((joints, 3))
    offsets[1:, 1] = bone
    return Skeleton(tuple(f"bone_{i:03d}" for i in range(joints)), np.arange(joints) - 1, offsets)


_MIXAMO = ("Hips", "LeftUpLeg", "RightUpLeg", "Spine", "LeftLeg", "RightLeg", "Spine1", "LeftFoot",
           "RightFoot", "Spine2", "LeftToeBase", "RightToeBase", "Neck", "LeftShoulder", "RightShoulder",
           "Head", "LeftArm", "RightArm", "LeftForeArm", "RightForeArm", "LeftHand", "RightHand",
           "LeftHandMiddle1", "RightHandMiddle1")


def mixamo_skeleton(scale: float = 1.1) -> Skeleton:
    """A humanoid retarget target: SMPL's layout under Mixamo-style names, another size."""
    smpl = smpl_skeleton()
    return Skeleton(tuple(f"mixamorig:{n}" for n in _MIXAMO), smpl.parents, smpl.offsets * scale)


def wave_motion(skel: Skeleton, frames: int, fps: float = 30.0, seed: int = 0) -> Motion:
    """A smooth motion: every joint swings about its own axis around its rest rotation."""
    rng = np.random.default_rng(seed)
    J = skel.num_joints
    axes = rng.normal(size=(J, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    t = np.arange(frames)[:, None] / fps
    swing = R.axis_angle_to_quat(axes[None] * (0.4 * np.sin(2.0 * t + rng.uniform(0, 6, J)))[..., None])
    rot = R.quat_mul(skel.rest_rotations[None], swing)
    trans = np.repeat(skel.offsets[None], frames, 0)
    trans[:, 0] += np.stack([0.5 * t[:, 0], 0.02 * np.sin(4 * t[:, 0]), np.zeros(frames)], -1)
    return Motion(rot, trans, fps)


def example_request(msg_type: str, frames: int = 60) -> dict:
    """A valid body for ``msg_type`` (a protocol request type)."""
    smpl = smpl_skeleton()
    if msg_type == "hello":
        return {"client": "kinemo-tests", "protocol_versions": [1]}
    if msg_type == "ping":
        return {}
    if msg_type == "cancel":
        return {"target": "0123abcd"}
    if msg_type == "selftest":
        return {"frames": frames, "joints": 24, "chunk_frames": 16, "seed": 7, "return_positions": True}
    if msg_type == "retarget":
        return {"source_rig": rig_from_skeleton(smpl), "motion": motion_to_wire(wave_motion(smpl, frames)),
                "target_rig": rig_from_skeleton(mixamo_skeleton())}
    if msg_type == "bonemap":
        return {"source_rig": rig_from_skeleton(smpl), "target_rig": rig_from_skeleton(mixamo_skeleton())}
    human = mixamo_skeleton()      # the model requests need a humanoid rig
    if msg_type == "inbetween":
        keys = wave_motion(human, frames)
        idx = np.array([0, frames // 2, frames - 1], np.int64)
        return {"rig": rig_from_skeleton(human),
                "keys": {"frames": idx, "rotations": keys.rotations[idx].astype(np.float32),
                         "translations": keys.translations[idx].astype(np.float32)},
                "frames": frames, "fps": 30.0, "seed": 1, "steps": 10}
    if msg_type == "generate":
        return {"text": "a person waves with the left hand", "frames": frames, "fps": 30.0,
                "rig": rig_from_skeleton(human), "seed": 2}
    if msg_type == "dance":
        from kinemo.data.music import pseudo_music
        feats = pseudo_music(np.arange(0, frames * 2, 30), frames * 2, 60.0)   # a 120 bpm beat grid
        return {"features": feats, "features_fps": 60.0, "frames": frames, "rig": rig_from_skeleton(human)}
    raise KeyError(f"no example for request type {msg_type!r}")
