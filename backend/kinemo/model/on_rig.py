"""Model requests on a user's rig: keys retargeted onto SMPL, motion made there, and brought back.

The way back must not move anything relative to the keys: retargeting is a
rotation transfer plus a scaled root, so after the round trip the pelvis is
shifted by one constant offset; it is measured on the keyed frames and
removed, and the keyed frames are then copied in bit-exactly. The model
works at 30 fps; other rates are resampled at this boundary.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..core import rotations as R
from ..core.bonemap import auto_map
from ..core.resample import sample
from ..core.retarget import Rig, joint_pairs, place_joint, prepare_rig, retarget_rigs
from ..core.skeleton import Motion, Skeleton
from ..core.smpl import smpl_skeleton
from ..errors import UserError
from .generator import Generator

MODEL_FPS = 30.0


def model_frames(frames: int, fps: float) -> int:
    """How many 30 fps frames span ``frames`` frames at ``fps`` (first and last frame kept)."""
    return int(round((frames - 1) * MODEL_FPS / fps)) + 1


def _smpl_rig() -> Rig:
    return prepare_rig(smpl_skeleton())


def _rig(skel: Skeleton, motion: Motion | None = None) -> Rig:
    try:
        return prepare_rig(skel, auto_map(skel), motion)
    except ValueError as e:
        raise UserError(f"the rig is not usable for retargeting: {e}") from e


def inbetween_on_rig(gen: Generator, skel: Skeleton, key_frames: np.ndarray, key_rot: np.ndarray,
                     key_trans: np.ndarray, frames: int, fps: float, *, key_mask: np.ndarray | None = None,
                     text: str | None = None, seed: int = 0, steps: int | None = None,
                     progress: Callable[[float], None] | None = None,
                     cancelled: Callable[[], bool] | None = None) -> Motion:
    """In-between keyed poses of a rig.

    key_frames ``(K,)`` strictly increasing in ``[0, frames)``; key_rot ``(K, J, 4)`` and key_trans ``(K, J, 3)``
    local, as on the rig; key_mask ``(K, J)`` bool (default all) for partial-body keys; fps of the rig's
    timeline. Returns a motion of ``frames`` frames at ``fps`` on ``skel`` with every keyed value exact.
    """
    key_frames = np.asarray(key_frames, int)
    K, Jr = len(key_frames), skel.num_joints
    if K == 0:
        raise UserError("no keys given")
    if np.any(np.diff(key_frames) <= 0) or key_frames[0] < 0 or key_frames[-1] >= frames:
        raise UserError(f"key frames must be strictly increasing and within [0, {frames})")
    mask = np.ones((K, Jr), bool) if key_mask is None else np.asarray(key_mask, bool)
    if mask.shape != (K, Jr) or key_rot.shape != (K, Jr, 4) or key_trans.shape != (K, Jr, 3):
        raise UserError("key arrays do not match the rig's joint count")
    if not (np.isfinite(key_rot).all() and np.isfinite(key_trans).all()):
        raise UserError("keyed poses contain NaN or infinite values")
    keys_motion = Motion(R.quat_normalize(key_rot), key_trans.astype(np.float64), fps)
    src = _rig(skel, keys_motion)
    smpl = _smpl_rig()
    on_smpl = retarget_rigs(src, keys_motion, smpl, fix_ground=False)
    # the keys on the model's 30 fps timeline
    T30 = model_frames(frames, fps)
    f30 = np.clip(np.round(key_frames * MODEL_FPS / fps).astype(int), 0, T30 - 1)
    f30, first = np.unique(f30, return_index=True)
    q = np.tile(np.array([1.0, 0, 0, 0]), (T30, 24, 1))
    r = np.zeros((T30, 3))
    q[f30] = on_smpl.rotations[first]
    r[f30] = on_smpl.translations[first, 0]
    pairs = joint_pairs(src, smpl)                      # smpl joint -> rig joint
    jm = np.zeros((T30, 24), bool)
    for j_smpl, j_rig in pairs.items():
        jm[f30, j_smpl] = mask[first, j_rig]
    pel = src.bonemap.indices(skel)["pelvis"]
    rk = np.zeros(T30, bool)
    rk[f30] = mask[first, pel]
    if not jm.any() and not rk.any():
        raise UserError("none of the keyed bones maps to the body (check the bone mapping)")
    gq, gr = gen.inbetween(q, r, jm, root_keys=rk, text=text, seed=seed, steps=steps, progress=progress,
                           cancelled=cancelled)
    made = Motion(gq, np.repeat(smpl.skeleton.offsets[None], T30, 0), MODEL_FPS)
    made.translations[:, 0] = gr
    back = retarget_rigs(smpl, made, src, fix_ground=False)
    out = sample(back, np.arange(frames) * (MODEL_FPS / fps))
    out.fps = float(fps)
    # remove the round trip's constant pelvis offset, measured on the frames whose pelvis is keyed
    # (on every key frame when none is, so the motion still stands where the user's poses are)
    _, want = keys_motion.global_transforms(skel)
    _, got = out.global_transforms(skel)
    rows = mask[:, pel] if mask[:, pel].any() else np.ones(K, bool)
    offset = (want[rows, pel] - got[key_frames[rows], pel]).mean(0)
    place_joint(skel, out.rotations, out.translations, pel, got[:, pel] + offset)
    _interpolate_unmapped(out, key_frames, key_rot, key_trans, sorted(set(range(Jr)) - set(pairs.values()) - {pel}))
    out.rotations[key_frames] = np.where(mask[..., None], key_rot, out.rotations[key_frames])
    out.translations[key_frames] = np.where(mask[..., None], key_trans, out.translations[key_frames])
    return out


def _interpolate_unmapped(out: Motion, key_frames: np.ndarray, key_rot: np.ndarray, key_trans: np.ndarray,
                         joints: list[int]) -> None:
    """Bones the body model does not drive (fingers, toes, props, extra spine) follow their own keys:
    slerp between keys, held before the first and after the last (so they never pop at a key)."""
    if not joints:
        return
    T = out.num_frames
    t = np.arange(T)
    i1 = np.clip(np.searchsorted(key_frames, t, side="right"), 1, len(key_frames) - 1) if len(key_frames) > 1 else None
    for j in joints:
        if i1 is None:
            out.rotations[:, j] = key_rot[0, j]
            out.translations[:, j] = key_trans[0, j]
            continue
        a, b = key_frames[i1 - 1], key_frames[i1]
        w = np.clip((t - a) / np.maximum(b - a, 1), 0.0, 1.0)
        out.rotations[:, j] = R.quat_slerp(key_rot[i1 - 1, j], key_rot[i1, j], w)
        out.translations[:, j] = (1 - w)[:, None] * key_trans[i1 - 1, j] + w[:, None] * key_trans[i1, j]


def smpl_to_rig(quats: np.ndarray, root: np.ndarray, skel: Skeleton | None,
                rest_motion: Motion | None = None, fps: float = MODEL_FPS, frames: int | None = None) -> Motion:
    """A canonical SMPL motion (30 fps) on ``skel`` (or on SMPL itself when ``skel`` is None), at ``fps``,
    with ``frames`` frames (default: the same duration)."""
    smpl = smpl_skeleton()
    made = Motion(np.asarray(quats, np.float64), np.repeat(smpl.offsets[None], len(quats), 0), MODEL_FPS)
    made.translations[:, 0] = root
    if skel is not None:
        made = retarget_rigs(_smpl_rig(), made, _rig(skel, rest_motion))
    n = frames if frames is not None else int(round((made.num_frames - 1) * fps / MODEL_FPS)) + 1
    if abs(fps - MODEL_FPS) > 1e-9 or n != made.num_frames:
        made = sample(made, np.arange(n) * (MODEL_FPS / fps))
        made.fps = float(fps)
    return made
