"""Inverse kinematics from the dance-music data's 23 marker-like points onto the canonical SMPL skeleton.

Each SMPL joint's world rotation is the rotation that takes its rest frame (bone direction
plus a second, "twist" direction) onto a frame measured from the points:

- pelvis: left axis from the hip points, up from the waist point and the torso;
- spine1-3: a slerp from the pelvis frame to the chest frame (left from the shoulder points,
  up from mid-hip to mid-shoulder); neck halfway to the head frame (up from mid-shoulder to
  the two head points, left from head_R to head_L);
- limbs: two-bone IK from the *fitted* hip/shoulder (SMPL lengths) puts the ankle/wrist on its
  point whenever it is in reach, with the knee/elbow in the bend plane of the three points
  (the source's knee and elbow points sit 5-8 cm off the joint centres, so they only give the
  plane); when the limb is straight the plane is undefined and the twist falls back to the
  twist-free swing from the torso;
- collars aim at the shoulder points; ankles take the heel->toe line as the foot's forward
  and the heel-ankle-toe plane for roll (a flat sole gives a flat SMPL foot);
- wrists/hands stay at rest relative to the forearm: the two extra "hand direction" points are
  not consistent between sides (one sits near the hand, the other near mid-forearm).

The points are first scaled to SMPL size (one factor per clip, from limb and torso lengths).
All functions are vectorised over frames; rotations are matrices ``(T, 3, 3)`` inside.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import rotations as R
from ..core.fk import global_to_local
from ..core.skeleton import Motion, Skeleton
from ..core.smpl import SMPL_JOINT_NAMES

# dance-music point indices (see its README; names inferred by the data's curator)
HEAD_R, HEAD_L, WAIST = 0, 1, 2
SH_R, EL_R, FORE_R, HAND_R, HIP_R, KNEE_R, ANKLE_R, HEEL_R, TOE_R = range(3, 12)
SH_L, EL_L, FORE_L, HAND_L, HIP_L, KNEE_L, ANKLE_L, HEEL_L, TOE_L = range(12, 21)
NUM_POINTS = 23

J = SMPL_JOINT_NAMES.index
# SMPL joint -> the point it should sit on (used for scaling and the fit error)
JOINT_POINTS: dict[str, int] = {
    "left_hip": HIP_L, "right_hip": HIP_R, "left_knee": KNEE_L, "right_knee": KNEE_R,
    "left_ankle": ANKLE_L, "right_ankle": ANKLE_R, "left_shoulder": SH_L, "right_shoulder": SH_R,
    "left_elbow": EL_L, "right_elbow": EL_R, "left_wrist": HAND_L, "right_wrist": HAND_R,
}
_TWIST_WEIGHT = 0.25   # weight of the torso-swing fallback against sin(bend angle) of a limb


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def frame(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Orthonormal frame ``(..., 3, 3)`` with columns (primary, secondary made orthogonal, their cross)."""
    a = _unit(primary)
    b = _unit(secondary - np.sum(secondary * a, axis=-1, keepdims=True) * a)
    return np.stack([a, b, np.cross(a, b)], axis=-1)


def align(d0: np.ndarray, s0: np.ndarray, d: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Rotation ``(..., 3, 3)`` taking rest direction ``d0`` onto ``d`` and rest twist axis ``s0`` toward ``s``."""
    return frame(d, s) @ np.swapaxes(frame(np.broadcast_to(d0, d.shape), np.broadcast_to(s0, s.shape)), -1, -2)


def swing(parent: np.ndarray, d0: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Twist-free rotation: the parent's rotation followed by the shortest arc from ``d0`` (rest,
    world) to ``d`` seen in the parent's frame. parent ``(T, 3, 3)``, d ``(T, 3)`` -> ``(T, 3, 3)``."""
    local_d = np.einsum("tba,tb->ta", parent, d)
    return parent @ R.quat_to_matrix(R.quat_between(np.broadcast_to(d0, local_d.shape), local_d))


def scale_factor(points: np.ndarray, skel: Skeleton) -> float:
    """Source size / SMPL size from median thigh, shin, upper arm, forearm and torso lengths."""
    _, rest = skel.rest_global()
    pairs = [(HIP_L, KNEE_L, "left_hip", "left_knee"), (HIP_R, KNEE_R, "right_hip", "right_knee"),
             (KNEE_L, ANKLE_L, "left_knee", "left_ankle"), (KNEE_R, ANKLE_R, "right_knee", "right_ankle"),
             (SH_L, EL_L, "left_shoulder", "left_elbow"), (SH_R, EL_R, "right_shoulder", "right_elbow"),
             (EL_L, HAND_L, "left_elbow", "left_wrist"), (EL_R, HAND_R, "right_elbow", "right_wrist")]
    src = sum(np.median(np.linalg.norm(points[:, a] - points[:, b], axis=-1)) for a, b, _, _ in pairs)
    dst = sum(np.linalg.norm(rest[J(a)] - rest[J(b)]) for _, _, a, b in pairs)
    mid_hip = (points[:, HIP_L] + points[:, HIP_R]) / 2
    mid_sh = (points[:, SH_L] + points[:, SH_R]) / 2
    src += np.median(np.linalg.norm(mid_sh - mid_hip, axis=-1))
    dst += np.linalg.norm((rest[J("left_shoulder")] + rest[J("right_shoulder")]) / 2
                          - (rest[J("left_hip")] + rest[J("right_hip")]) / 2)
    return float(src / dst)


@dataclass
class IKResult:
    motion: Motion               # on the given skeleton, same frames and fps as the points
    positions: np.ndarray        # (T, 24, 3) fitted joint positions
    targets: np.ndarray          # (T, 24, 3) scaled points per joint (NaN where a joint has no point)
    scale: float                 # source size / SMPL size


def fit(points: np.ndarray, skel: Skeleton, fps: float) -> IKResult:
    """SMPL rotations and root for scaled points ``(T, 23, 3)`` (metres, Y up) on ``skel``."""
    if points.ndim != 3 or points.shape[1:] != (NUM_POINTS, 3):
        raise ValueError(f"points must be (T, {NUM_POINTS}, 3), got {points.shape}")
    s = scale_factor(points, skel)
    p = np.asarray(points, np.float64) / s
    T = len(p)
    _, rest = skel.rest_global()
    off = skel.offsets
    G = np.zeros((T, 24, 3, 3))
    pos = np.zeros((T, 24, 3))
    X, Y, Z = np.eye(3)

    def place(j: int) -> None:          # joint j's position from its (fitted) parent
        par = skel.parents[j]
        pos[:, j] = pos[:, par] + np.einsum("tab,b->ta", G[:, par], off[j])

    # torso frames
    mid_hip = (p[:, HIP_L] + p[:, HIP_R]) / 2
    mid_sh = (p[:, SH_L] + p[:, SH_R]) / 2
    torso_up = _unit(mid_sh - mid_hip)
    pelvis = align(X, Y, p[:, HIP_L] - p[:, HIP_R], _unit(p[:, WAIST] - mid_hip) + torso_up)
    chest = align(X, Y, p[:, SH_L] - p[:, SH_R], torso_up)
    head = align(Y, X, (p[:, HEAD_L] + p[:, HEAD_R]) / 2 - mid_sh, p[:, HEAD_L] - p[:, HEAD_R])
    qp, qc, qh = (R.matrix_to_quat(m) for m in (pelvis, chest, head))
    G[:, 0] = pelvis
    for j, t in ((J("spine1"), 1 / 3), (J("spine2"), 2 / 3)):
        G[:, j] = R.quat_to_matrix(R.quat_slerp(qp, qc, t))
    G[:, J("spine3")] = chest
    G[:, J("neck")] = R.quat_to_matrix(R.quat_slerp(qc, qh, 0.5))
    G[:, J("head")] = head
    # root: the SMPL hips' midpoint on the points' mid-hip
    rest_mid_hip = (rest[J("left_hip")] + rest[J("right_hip")]) / 2 - rest[0]
    pos[:, 0] = mid_hip - np.einsum("tab,b->ta", pelvis, rest_mid_hip)
    for name in ("left_hip", "right_hip", "spine1", "spine2", "spine3", "neck", "head",
                 "left_collar", "right_collar"):
        place(J(name))

    def limb(upper: str, lower: str, end: str, a: int, b: int, c: int, parent: np.ndarray) -> None:
        """Two-bone IK from the fitted ``upper`` joint: the end joint on point c, the middle joint in
        the bend plane of points a-b-c (the source's middle point sits off the joint centre)."""
        ju, jl, je = J(upper), J(lower), J(end)
        l1, l2 = np.linalg.norm(off[jl]), np.linalg.norm(off[je])
        d_u0, d_l0 = off[jl] / l1, off[je] / l2
        d_limb0 = _unit(off[jl] + off[je])
        # the rest bend-plane normal for a bend in the natural direction (knee forward, elbow forward)
        n0 = _unit(np.cross(d_limb0, -Z if "hip" in upper else Z))
        n = np.cross(_unit(p[:, b] - p[:, a]), _unit(p[:, c] - p[:, b]))        # (T, 3), |n| = sin(bend)
        reach = p[:, c] - pos[:, ju]
        n = n + _TWIST_WEIGHT * np.einsum("tab,b->ta", swing(parent, d_limb0, reach), n0)
        dist = np.linalg.norm(reach, axis=-1, keepdims=True)
        u = reach / np.maximum(dist, 1e-9)
        dist = np.clip(dist, abs(l1 - l2) + 1e-6, l1 + l2)
        along = (l1 ** 2 - l2 ** 2 + dist ** 2) / (2 * dist)
        side = _unit(np.cross(u, n))
        mid = pos[:, ju] + along * u + np.sqrt(np.maximum(l1 ** 2 - along ** 2, 0)) * side
        G[:, ju] = align(d_u0, n0, mid - pos[:, ju], n)
        place(jl)
        G[:, jl] = align(d_l0, n0, p[:, c] - pos[:, jl], n)
        place(je)

    for side, sh, el, hand, hip, knee, ankle, heel, toe in (
            ("left", SH_L, EL_L, HAND_L, HIP_L, KNEE_L, ANKLE_L, HEEL_L, TOE_L),
            ("right", SH_R, EL_R, HAND_R, HIP_R, KNEE_R, ANKLE_R, HEEL_R, TOE_R)):
        collar = J(f"{side}_collar")
        d0 = off[J(f"{side}_shoulder")]
        G[:, collar] = align(d0, Y, p[:, sh] - pos[:, collar], np.einsum("tab,b->ta", chest, Y))
        place(J(f"{side}_shoulder"))
        limb(f"{side}_shoulder", f"{side}_elbow", f"{side}_wrist", sh, el, hand, G[:, collar])
        for j in (f"{side}_wrist", f"{side}_hand"):      # hands stay in line with the forearm
            G[:, J(j)] = G[:, J(f"{side}_elbow")]
            if j == f"{side}_hand":
                place(J(j))
        limb(f"{side}_hip", f"{side}_knee", f"{side}_ankle", hip, knee, ankle, pelvis)
        sole = p[:, toe] - p[:, heel]
        foot_left = np.cross(p[:, ankle] - p[:, heel], sole)
        G[:, J(f"{side}_ankle")] = align(Z, X, sole, foot_left)
        G[:, J(f"{side}_foot")] = G[:, J(f"{side}_ankle")]
        place(J(f"{side}_foot"))

    trans = np.repeat(off[None], T, 0)
    trans[:, 0] = pos[:, 0]
    local, _ = global_to_local(skel.parents, R.matrix_to_quat(G))
    motion = Motion(R.quat_continuous(local), trans, fps)
    targets = np.full((T, 24, 3), np.nan)
    for name, k in JOINT_POINTS.items():
        targets[:, J(name)] = p[:, k]
    return IKResult(motion, pos, targets, s)


def fit_error(res: IKResult) -> dict[str, tuple[float, float]]:
    """Per joint with a point: (mean, max) distance of the fitted joint from its point over the frames, cm."""
    out = {}
    for name in JOINT_POINTS:
        e = np.linalg.norm(res.positions[:, J(name)] - res.targets[:, J(name)], axis=-1) * 100
        out[name] = (float(e.mean()), float(e.max()))
    return out
