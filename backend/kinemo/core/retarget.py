"""Retargeting: move a motion from one humanoid skeleton to another.

Method (world-space deltas through a canonical T-pose):

1. Each skeleton gets a *reference pose*: its rest pose when that is an
   upright T/A-pose, else (e.g. Bandai's BVH, whose zero pose lies flat) the
   most upright frame of a motion on it.
2. For every mapped joint, a world rotation ``A_j`` turns the reference pose
   into a canonical T-pose facing +Z (legs down, spine up, arms along +-X,
   feet forward keeping their pitch). Joints where the body branches (pelvis,
   chest) are aligned on two directions (up and left-right), chain joints on
   their bone direction (shortest arc), leaves inherit their parent's ``A``.
   ``C_j = A_j R_ref_j`` is the joint's orientation in that T-pose; T vs A
   pose, bone rolls and axis conventions all end up inside ``C``.
3. A source frame's world rotation relative to its T-pose, ``G_s C_s^-1``,
   is applied to the target's T-pose: ``G_t = G_s C_s^-1 C_t``. Unmapped
   target joints keep their rest rotation relative to their parent.
4. The root (pelvis) moves by the source's displacement scaled by the ratio
   of leg lengths; bone lengths are always the target's own. Height is set
   from the ground, not the pelvis: the clip's lowest foot contact lands on
   the target's sole height (a rig's lowest foot joint when standing: from an
   upright rest, else the lowest the feet go in the reference motion), so no
   choice of reference frame can make the feet float or sink.
5. Ground: where the target's feet would go below the floor further than
   the source's (scaled), the root is lifted just enough.

Round trips A -> B -> A give back A's world rotations exactly for joints
mapped both ways, so joint positions return to within numerical noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import rotations as R
from .bonemap import BoneMap, auto_map
from .fk import global_to_local
from .skeleton import Motion, Skeleton
from .smpl import UP

_FEET = ("left_ankle", "right_ankle", "left_foot", "right_foot")
_LEFT = np.array([1.0, 0.0, 0.0])
_DOWN = -UP

# chain role -> (child roles by preference, canonical direction or "foot")
_CHAIN: dict[str, tuple[tuple[str, ...], object]] = {}
for _s, _x in (("left", 1.0), ("right", -1.0)):
    _CHAIN.update({
        f"{_s}_hip": ((f"{_s}_knee",), _DOWN),
        f"{_s}_knee": ((f"{_s}_ankle",), _DOWN),
        f"{_s}_ankle": ((f"{_s}_foot",), "foot"),
        f"{_s}_collar": ((f"{_s}_shoulder",), _LEFT * _x),
        f"{_s}_shoulder": ((f"{_s}_elbow",), _LEFT * _x),
        f"{_s}_elbow": ((f"{_s}_wrist",), _LEFT * _x),
        f"{_s}_wrist": ((f"{_s}_hand",), _LEFT * _x),
    })
_CHAIN.update({
    "spine1": (("spine2", "spine3", "neck"), UP),
    "spine2": (("spine3", "neck"), UP),
    "neck": (("head",), UP),
})
# branch role -> (up-direction targets by preference, (left, right) pairs by preference)
_BRANCH = {
    "pelvis": (("spine3", "spine2", "spine1", "neck"), (("left_hip", "right_hip"),)),
    "spine3": (("neck", "head"), (("left_shoulder", "right_shoulder"), ("left_collar", "right_collar"))),
}


@dataclass
class Rig:
    """A skeleton prepared for retargeting: its mapping, reference pose and T-pose frames."""

    skeleton: Skeleton
    bonemap: BoneMap
    ref_rot: np.ndarray   # (J, 4) world rotations of the reference pose
    ref_pos: np.ndarray   # (J, 3) world positions of the reference pose
    canon: np.ndarray     # (J, 4) world rotations C_j in the canonical T-pose
    leg_length: float
    upright_rest: bool
    sole: float           # height of the lowest foot joint when the feet are on the floor


def _frame(up: np.ndarray, lateral: np.ndarray) -> np.ndarray:
    """Orthonormal frame (3, 3) with columns (lateral', up, forward)."""
    y = up / np.linalg.norm(up)
    x = lateral - (lateral @ y) * y
    x /= max(np.linalg.norm(x), 1e-12)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def _upright_score(pos: np.ndarray, idx: dict[str, int]) -> np.ndarray:
    """How far a pose is from standing upright, radians. pos: ``(..., J, 3)`` -> ``(...)``."""
    def ang(a, b, ref):
        d = pos[..., idx[b], :] - pos[..., idx[a], :]
        d = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-12)
        return np.arccos(np.clip(d @ ref, -1.0, 1.0))
    top = next(r for r in ("head", "neck", "spine3", "spine2", "spine1") if r in idx)
    score = ang("pelvis", top, UP)
    for s in ("left", "right"):
        score = score + 0.5 * ang(f"{s}_hip", f"{s}_ankle", _DOWN)
    return score


def prepare_rig(skel: Skeleton, bonemap: BoneMap | None = None, motion: Motion | None = None) -> Rig:
    """Mapping, reference pose and canonical frames for a skeleton.

    ``motion`` (optional) supplies a reference pose when the rest pose is not upright.
    """
    bm = bonemap or auto_map(skel)
    idx = bm.indices(skel)
    ref_rot, ref_pos = skel.rest_global()
    upright = bool(_upright_score(ref_pos, idx) < np.radians(40))
    feet = [idx[r] for r in _FEET if r in idx]
    sole = max(0.0, float(ref_pos[feet, 1].min()))
    if not upright and motion is not None:
        g_rot, g_pos = motion.global_transforms(skel)
        t = int(np.argmin(_upright_score(g_pos, idx)))
        ref_rot, ref_pos = g_rot[t], g_pos[t]
        sole = max(0.0, float(g_pos[:, feet, 1].min()))
    A = _alignments(skel, idx, ref_pos)
    canon = R.quat_normalize(R.quat_mul(A, ref_rot))
    legs = [np.linalg.norm(ref_pos[idx[f"{s}_hip"]] - ref_pos[idx[f"{s}_knee"]]) +
            np.linalg.norm(ref_pos[idx[f"{s}_knee"]] - ref_pos[idx[f"{s}_ankle"]])
            for s in ("left", "right")]
    return Rig(skel, bm, ref_rot, ref_pos, canon, float(np.mean(legs)), upright, sole)


def _alignments(skel: Skeleton, idx: dict[str, int], pos: np.ndarray) -> np.ndarray:
    """World rotation per joint taking the reference pose to the canonical T-pose, ``(J, 4)``."""
    J = skel.num_joints
    A = np.empty((J, 4))
    role_of = {j: r for r, j in idx.items()}
    for j in range(J):
        p = skel.parents[j]
        inherited = A[p] if p >= 0 else R.quat_identity()
        r = role_of.get(j)
        A[j] = inherited
        if r in _BRANCH:
            ups, pairs = _BRANCH[r]
            top = next((idx[u] for u in ups if u in idx), None)
            pair = next(((idx[a], idx[b]) for a, b in pairs if a in idx and b in idx), None)
            if top is not None and pair is not None:
                actual = _frame(pos[top] - pos[j], pos[pair[0]] - pos[pair[1]])
                A[j] = R.matrix_to_quat(_frame(UP, _LEFT) @ actual.T)
        elif r in _CHAIN:
            kids, canon = _CHAIN[r]
            child = next((idx[k] for k in kids if k in idx), None)
            if child is not None:
                d = pos[child] - pos[j]
                if np.linalg.norm(d) > 1e-6:
                    if isinstance(canon, str):  # foot: face forward, keep its pitch
                        d_n = d / np.linalg.norm(d)
                        canon = np.array([0.0, d_n[1], np.hypot(d_n[0], d_n[2])])
                    A[j] = R.quat_between(d, canon)
    return A


def retarget(src_skel: Skeleton, src_motion: Motion, tgt_skel: Skeleton,
             src_map: BoneMap | None = None, tgt_map: BoneMap | None = None, *,
             pairs: dict[str, str | None] | None = None,
             tgt_motion: Motion | None = None, fix_ground: bool = True) -> Motion:
    """Retarget ``src_motion`` (on ``src_skel``) onto ``tgt_skel``.

    pairs: optional overrides ``{source joint: target joint or None}``; a
        ``None`` value unmaps that source joint.
    tgt_motion: any motion on the target, used only for its reference pose
        when the target's rest pose is not upright.
    Returns a motion on ``tgt_skel`` with the source's frame count and fps.
    """
    src_motion.check(src_skel)
    if not (np.all(np.isfinite(src_motion.rotations)) and np.all(np.isfinite(src_motion.translations))):
        raise ValueError("source motion contains NaN or infinite values")
    src = prepare_rig(src_skel, src_map, src_motion)
    tgt = prepare_rig(tgt_skel, tgt_map, tgt_motion)
    return retarget_rigs(src, src_motion, tgt, pairs=pairs, fix_ground=fix_ground)


def joint_pairs(src: Rig, tgt: Rig, pairs: dict[str, str | None] | None = None) -> dict[int, int]:
    """Target joint index -> source joint index, by shared role, then user overrides."""
    s_idx, t_idx = src.bonemap.indices(src.skeleton), tgt.bonemap.indices(tgt.skeleton)
    out = {t_idx[r]: s_idx[r] for r in t_idx if r in s_idx}
    for s_name, t_name in (pairs or {}).items():
        s = src.skeleton.index(s_name)
        for t, s2 in list(out.items()):
            if s2 == s:
                del out[t]
        if t_name is not None:
            out[tgt.skeleton.index(t_name)] = s
    return out


def retarget_rigs(src: Rig, motion: Motion, tgt: Rig, *, pairs=None, fix_ground: bool = True) -> Motion:
    """:func:`retarget` on prepared rigs (prepare once, retarget many clips)."""
    ts = tgt.skeleton
    T = motion.num_frames
    g_rot, g_pos = motion.global_transforms(src.skeleton)
    mapping = joint_pairs(src, tgt, pairs)
    # delta of each source joint from its canonical T-pose, in world space
    t_rot = np.empty((T, ts.num_joints, 4))
    for j in range(ts.num_joints):
        i = mapping.get(j)
        if i is not None:
            delta = R.quat_mul(g_rot[:, i], R.quat_conjugate(src.canon[i]))
            t_rot[:, j] = R.quat_mul(delta, tgt.canon[j])
        elif ts.parents[j] >= 0:
            t_rot[:, j] = R.quat_mul(t_rot[:, ts.parents[j]], ts.rest_rotations[j])
        else:
            t_rot[:, j] = ts.rest_rotations[j]
    local_rot, _ = global_to_local(ts.parents, t_rot)
    trans = np.repeat(ts.offsets[None], T, axis=0)

    s_pel = src.bonemap.indices(src.skeleton)["pelvis"]
    t_pel = tgt.bonemap.indices(ts)["pelvis"]
    scale = tgt.leg_length / src.leg_length
    root = scale * g_pos[:, s_pel]
    place_joint(ts, local_rot, trans, t_pel, root)
    out = Motion(R.quat_continuous(local_rot), trans, motion.fps)
    # height from the ground: the clip's lowest foot contact goes to the target's sole
    src_low = g_pos[:, _foot_joints(src), 1].min()
    tgt_low = out.positions(ts)[:, _foot_joints(tgt), 1].min()
    root[:, 1] += tgt.sole + scale * (src_low - src.sole) - tgt_low
    place_joint(ts, out.rotations, out.translations, t_pel, root)
    if fix_ground:
        _lift_feet(src, g_pos, tgt, out, scale)
    return out


def place_joint(skel: Skeleton, local_rot: np.ndarray, trans: np.ndarray, j: int, world: np.ndarray) -> None:
    """Set joint ``j``'s local translation so that it sits at ``world`` ``(T, 3)``."""
    p = skel.parents[j]
    if p < 0:
        trans[:, j] = world
        return
    chain = skel.chain_to_root(p)[::-1]
    rot = R.quat_identity((local_rot.shape[0],))
    pos = np.zeros_like(world)
    for k in chain:
        pos = pos + R.quat_apply(rot, trans[:, k]) if k != chain[0] else trans[:, k].copy()
        rot = R.quat_mul(rot, local_rot[:, k])
    trans[:, j] = R.quat_apply(R.quat_conjugate(rot), world - pos)


def _foot_joints(rig: Rig) -> list[int]:
    idx = rig.bonemap.indices(rig.skeleton)
    return [idx[r] for r in _FEET if r in idx]


def _lift_feet(src: Rig, src_pos: np.ndarray, tgt: Rig, motion: Motion, scale: float) -> None:
    """Lift the root where the target's feet sink below the floor beyond the source's."""
    t_pos = motion.positions(tgt.skeleton)
    src_low = scale * src_pos[:, _foot_joints(src), 1].min(axis=1)
    tgt_low = t_pos[:, _foot_joints(tgt), 1].min(axis=1)
    lift = np.maximum(0.0, np.minimum(src_low, 0.0) - tgt_low)
    if np.any(lift > 0):
        t_pel = tgt.bonemap.indices(tgt.skeleton)["pelvis"]
        g_rot, g_pos = motion.global_transforms(tgt.skeleton)
        world = g_pos[:, t_pel] + lift[:, None] * UP
        place_joint(tgt.skeleton, motion.rotations, motion.translations, t_pel, world)
