"""The model's motion features: a window of SMPL motion in its own canonical frame.

A window is expressed relative to one *anchor* frame (the first keyed frame,
or frame 0): translated so the anchor's pelvis stands over the origin and
turned about Y so the anchor faces +Z. The model therefore never sees where a
clip happens or which way it faces (the heading invariance the architecture
asks for), while keyed root positions stay absolute inside the window, which
is what exact in-betweening needs. The transform is undone on decode.

Per frame (``D = 147``): root position (3) then the 24 local rotations as 6D
(144), the pelvis rotation being the canonical (heading-removed) one.
All functions are torch, batched: ``(B, L, ...)``.
"""
from __future__ import annotations

import numpy as np
import torch

from ..core.smpl import SMPL_PARENTS, smpl_skeleton

J = 24
ROOT_DIMS = 3
D = ROOT_DIMS + 6 * J          # 147 motion features per frame
MASK_DIMS = 1 + J              # root position + one per joint rotation
FOOT_JOINTS = (7, 8, 10, 11)   # left_ankle, right_ankle, left_foot, right_foot (the corpus contact order)


def feature_owner() -> torch.Tensor:
    """Which mask channel owns each feature: ``(D,)`` long (0 = root position, 1 + j = joint j)."""
    return torch.cat([torch.zeros(ROOT_DIMS, dtype=torch.long),
                      torch.arange(1, J + 1).repeat_interleave(6)])


def expand_mask(mask: torch.Tensor) -> torch.Tensor:
    """Per-channel mask ``(..., 25)`` -> per-feature mask ``(..., D)``."""
    return mask[..., feature_owner().to(mask.device)]


# --- rotations (torch; same conventions as kinemo.core.rotations) ------------

def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` w-first -> ``(..., 3, 3)``."""
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1).reshape(q.shape[:-1] + (3, 3))


def matrix_to_sixd(m: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3)`` -> ``(..., 6)``: first column then second column."""
    return torch.cat([m[..., :, 0], m[..., :, 1]], -1)


def sixd_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """``(..., 6)`` -> ``(..., 3, 3)`` by Gram-Schmidt."""
    a, b = d6[..., :3], d6[..., 3:]
    c0 = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    b = b - (c0 * b).sum(-1, keepdim=True) * c0
    c1 = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    return torch.stack([c0, c1, torch.cross(c0, c1, dim=-1)], -1)


def yaw_matrix(yaw: torch.Tensor) -> torch.Tensor:
    """Rotation about +Y by ``yaw`` radians: ``(...,)`` -> ``(..., 3, 3)``."""
    c, s, z, o = torch.cos(yaw), torch.sin(yaw), torch.zeros_like(yaw), torch.ones_like(yaw)
    return torch.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(yaw.shape + (3, 3))


def heading(pelvis: torch.Tensor) -> torch.Tensor:
    """Yaw of the body's forward (+Z) axis: pelvis rotation matrices ``(..., 3, 3)`` -> ``(...,)``."""
    fwd = pelvis[..., :, 2]
    return torch.atan2(fwd[..., 0], fwd[..., 2])


# --- the canonical window --------------------------------------------------

def anchor_frame(rot: torch.Tensor, root: torch.Tensor, anchor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Yaw ``(B,)`` and ground origin ``(B, 3)`` (y = 0) of each window's anchor frame.

    rot: ``(B, L, 24, 3, 3)`` local rotation matrices; root ``(B, L, 3)``; anchor ``(B,)`` long.
    """
    b = torch.arange(rot.shape[0], device=rot.device)
    yaw = heading(rot[b, anchor, 0])
    origin = root[b, anchor].clone()
    origin[:, 1] = 0
    return yaw, origin


def encode(rot: torch.Tensor, root: torch.Tensor, yaw: torch.Tensor, origin: torch.Tensor) -> torch.Tensor:
    """Motion -> canonical features. rot ``(B, L, 24, 3, 3)``, root ``(B, L, 3)`` -> ``(B, L, D)``."""
    inv = yaw_matrix(-yaw)[:, None]                                   # (B, 1, 3, 3)
    root_c = (inv @ (root - origin[:, None])[..., None])[..., 0]
    pelvis = inv @ rot[:, :, 0]
    rot = torch.cat([pelvis[:, :, None], rot[:, :, 1:]], 2)
    return torch.cat([root_c, matrix_to_sixd(rot).flatten(2)], -1)


def decode(feats: torch.Tensor, yaw: torch.Tensor, origin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonical features ``(B, L, D)`` -> rotation matrices ``(B, L, 24, 3, 3)``, root ``(B, L, 3)`` in the world."""
    fwd = yaw_matrix(yaw)[:, None]
    root = (fwd @ feats[..., :3, None])[..., 0] + origin[:, None]
    rot = sixd_to_matrix(feats[..., 3:].unflatten(-1, (J, 6)))
    rot = torch.cat([(fwd @ rot[:, :, 0])[:, :, None], rot[:, :, 1:]], 2)
    return rot, root


class Kinematics(torch.nn.Module):
    """Forward kinematics on the canonical SMPL skeleton (buffers move with the module)."""

    def __init__(self):
        super().__init__()
        skel = smpl_skeleton()
        self.parents = [int(p) for p in SMPL_PARENTS]
        self.register_buffer("offsets", torch.tensor(np.asarray(skel.offsets), dtype=torch.float32), persistent=False)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Canonical features ``(B, L, D)`` -> joint positions ``(B, L, 24, 3)`` in the window frame."""
        rot = sixd_to_matrix(feats[..., 3:].unflatten(-1, (J, 6)).float())
        root = feats[..., :3].float()
        gr: list[torch.Tensor] = []
        gp: list[torch.Tensor] = []
        for j, p in enumerate(self.parents):
            if p < 0:
                gr.append(rot[..., 0, :, :])
                gp.append(root)
            else:
                gr.append(gr[p] @ rot[..., j, :, :])
                gp.append(gp[p] + (gr[p] @ self.offsets[j, :, None])[..., 0])
        return torch.stack(gp, -2)


def velocities(pos: torch.Tensor, fps: float = 30.0) -> torch.Tensor:
    """Joint velocities in m/s by forward difference (last frame repeated): ``(B, L, J, 3)`` -> same."""
    if pos.shape[1] < 2:
        return torch.zeros_like(pos)
    v = (pos[:, 1:] - pos[:, :-1]) * fps
    return torch.cat([v, v[:, -1:]], 1)


def key_brackets(keyed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For a key mask ``(B, L, ...)`` bool, per entry: its frame index, the last keyed frame at or before it
    (-1 if none) and the first at or after it (L if none), each ``(B, L, ...)`` long."""
    L = keyed.shape[1]
    t = torch.arange(L, device=keyed.device).view((1, L) + (1,) * (keyed.dim() - 2)).expand(keyed.shape)
    prev = torch.where(keyed, t, torch.full_like(t, -1)).cummax(1).values
    nxt = torch.where(keyed, t, torch.full_like(t, L)).flip(1).cummin(1).values.flip(1)
    return t, prev, nxt


def observe(x: torch.Tensor, fm: torch.Tensor) -> torch.Tensor:
    """What the network sees of the keys: keyed features as they are, every unkeyed frame filled by linear
    interpolation of its own feature between the nearest keys (held before the first and after the last;
    zero for a feature never keyed). The network then only has to learn how real motion departs from
    interpolation, which is what makes short gaps easy and long ones no worse than the baseline.

    x ``(B, L, D)`` features (normalised), fm ``(B, L, D)`` bool feature mask -> ``(B, L, D)``.
    """
    L = x.shape[1]
    t, prev, nxt = key_brackets(fm)
    has_p, has_n = prev >= 0, nxt < L
    vp = x.gather(1, prev.clamp(0, L - 1))
    vn = x.gather(1, nxt.clamp(0, L - 1))
    w = ((t - prev).float() / (nxt - prev).clamp_min(1).float()).clamp(0, 1)
    both = torch.lerp(vp, vn, w.to(x.dtype))
    out = torch.where(has_p & has_n, both, torch.where(has_p, vp, torch.where(has_n, vn, torch.zeros_like(x))))
    return torch.where(fm, x, out)


def matrix_to_quat(m: torch.Tensor) -> torch.Tensor:
    """``(..., 3, 3)`` -> unit ``(..., 4)`` w-first, from whichever component is largest (stable at 180 degrees)."""
    d = lambda i, j: m[..., i, j]  # noqa: E731
    tr = torch.stack([1 + d(0, 0) + d(1, 1) + d(2, 2), 1 + d(0, 0) - d(1, 1) - d(2, 2),
                      1 - d(0, 0) + d(1, 1) - d(2, 2), 1 - d(0, 0) - d(1, 1) + d(2, 2)], -1)   # 4 q_i^2
    a, b, c = d(2, 1) - d(1, 2), d(0, 2) - d(2, 0), d(1, 0) - d(0, 1)                      # 4 w x, 4 w y, 4 w z
    e, f, g = d(0, 1) + d(1, 0), d(0, 2) + d(2, 0), d(1, 2) + d(2, 1)                      # 4 x y, 4 x z, 4 y z
    rows = torch.stack([torch.stack([tr[..., 0], a, b, c], -1), torch.stack([a, tr[..., 1], e, f], -1),
                        torch.stack([b, e, tr[..., 2], g], -1), torch.stack([c, f, g, tr[..., 3]], -1)], -2)
    best = tr.argmax(-1)[..., None, None].expand(tr.shape[:-1] + (1, 4))
    q = rows.gather(-2, best)[..., 0, :]                                                  # 4 q_best * q
    return q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def guide_rotations(uncond: torch.Tensor, cond: torch.Tensor, weight: float, mean: torch.Tensor,
                    std: torch.Tensor, floor: float = float("inf")) -> torch.Tensor:
    """Classifier-free guidance, ``uncond + weight * (cond - uncond)``, that never leaves a joint's 6D rotation
    degenerate.

    uncond, cond ``(B, L, D)`` normalised x0 predictions; mean, std ``(D,)`` the normalisation. Mixed as they
    come, a column the conditional prediction merely shortens can be carried through zero by the extrapolation,
    where Gram-Schmidt returns an arbitrary frame: a running caption's hip, its first column shrunk to 0.04 of
    unit length, flung the foot 1.3 m in one frame (86,980 m/s^3). Where a joint's mixed first column, or its
    second square to the first, is shorter than ``floor`` (unit rotations have 1), that joint is mixed again
    from both predictions made proper (unit, orthogonal columns): between unit columns the mix is at least 1
    long for ``weight >= 1``. ``floor`` inf mixes every joint that way, 0 none. The root channels are mixed as
    they are. Returns ``(B, L, D)`` normalised.
    """
    B, L, _ = cond.shape
    m, s = mean[ROOT_DIMS:], std[ROOT_DIMS:]
    mixed = uncond + weight * (cond - uncond)
    if floor <= 0:
        return mixed

    def six(x):
        return (x[..., ROOT_DIMS:] * s + m).reshape(B, L, J, 6)

    def proper(x):
        return matrix_to_sixd(sixd_to_matrix(six(x)))
    plain = six(mixed)
    a, b = plain[..., :3], plain[..., 3:]
    a_len = a.norm(dim=-1, keepdim=True)
    b_len = (b - (a * b).sum(-1, keepdim=True) * a / a_len.clamp_min(1e-12) ** 2).norm(dim=-1, keepdim=True)
    short = (a_len < floor) | (b_len < floor)                                  # (B, L, J, 1)
    pu = proper(uncond)
    rot = torch.where(short, pu + weight * (proper(cond) - pu), plain)
    return torch.cat([mixed[..., :ROOT_DIMS], ((rot.flatten(2) - m) / s).to(mixed.dtype)], -1)


TURN_FROM, TURN_TO = np.radians(90.0), np.radians(150.0)


def _turn_axis(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Axis of the short turn from ``a`` to ``b`` (unit quaternions ``(..., 4)``), scaled by the sine of half its
    angle: the vector part of ``conj(a) b`` with its sign chosen so the real part is not negative."""
    w = (a * b).sum(-1, keepdim=True)
    v = a[..., :1] * b[..., 1:] - b[..., :1] * a[..., 1:] - torch.cross(a[..., 1:], b[..., 1:], dim=-1)
    return torch.where(w < 0, -v, v)


def slerp_turns(obs: torch.Tensor, x: torch.Tensor, fm: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
                ) -> torch.Tensor:
    """:func:`observe`'s interpolation with its rotations taken along the sphere where two keys turn a joint
    far: linear interpolation of 6D features between keys 180 degrees apart passes through a degenerate
    (near-zero) frame, which the network's correction cannot steer and the decoded body flips over mid-gap
    (a pelvis turning round in a 30-frame gap: 40,000 m/s^3 of jerk there). Between 90 and 150 degrees the
    result blends smoothly from the linear to the spherical path; smaller turns are left as they were
    (the network was trained on them).

    obs ``(B, L, D)`` from :func:`observe` (normalised); x ``(B, L, D)`` raw features (valid on keyed
    frames); fm ``(B, L, D)`` bool feature mask; mean, std ``(D,)`` the normalisation. Returns ``(B, L, D)``.
    """
    B, L, _ = x.shape
    six = x[..., ROOT_DIMS:].reshape(B, L, J, 6)
    keyed = fm[..., ROOT_DIMS::6]                                          # (B, L, J)
    t, prev, nxt = key_brackets(keyed)
    gap = (prev >= 0) & (nxt < L) & ~keyed
    at = lambda i: six.gather(1, i.clamp(0, L - 1)[..., None].expand(B, L, J, 6))  # noqa: E731
    qp, qn = matrix_to_quat(sixd_to_matrix(at(prev))), matrix_to_quat(sixd_to_matrix(at(nxt)))
    qn = torch.where((qp * qn).sum(-1, keepdim=True) < 0, -qn, qn)         # the short way round
    # ... unless the turn is nearly a half turn (either way is as short) and the keys before it (a run, like
    # in-betweening's context) already turn the other way: then it continues that way, as the body began it
    run = gap & (prev >= 1) & keyed.gather(1, (prev - 1).clamp(min=0))
    spin = _turn_axis(matrix_to_quat(sixd_to_matrix(at(prev - 1))), qp)
    onward = _turn_axis(qp, qn)
    ambiguous = (qp * qn).sum(-1, keepdim=True) < np.cos(TURN_TO / 2)
    long = (run[..., None] & ambiguous & ((spin * onward).sum(-1, keepdim=True) < 0)
            & (spin.norm(dim=-1, keepdim=True) > 1e-3))
    qn = torch.where(long, -qn, qn)
    half = torch.acos((qp * qn).sum(-1, keepdim=True).clamp(-1.0, 1.0))    # (B, L, J, 1): half the turn taken
    w = ((t - prev).float() / (nxt - prev).clamp_min(1).float()).clamp(0, 1)[..., None]
    sin = torch.sin(half).clamp_min(1e-6)
    q = torch.sin((1 - w) * half) / sin * qp + torch.sin(w * half) / sin * qn
    sph = (matrix_to_sixd(quat_to_matrix(q)) - mean[ROOT_DIMS:].view(J, 6)) / std[ROOT_DIMS:].view(J, 6)
    u = ((2 * half - TURN_FROM) / (TURN_TO - TURN_FROM)).clamp(0, 1)      # 1 on the long way round
    share = torch.where(gap[..., None], u * u * (3 - 2 * u), torch.zeros_like(u))
    rot = obs[..., ROOT_DIMS:].reshape(B, L, J, 6)
    rot = rot + share * (sph.to(rot.dtype) - rot)
    return torch.cat([obs[..., :ROOT_DIMS], rot.flatten(2)], -1)


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    r = int(3 * sigma)
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma ** 2))
    return k / k.sum()


def twiced_kernel(sigma: float) -> torch.Tensor:
    """Tukey's twicing of the Gaussian of ``sigma`` frames: ``2 k - k * k`` (the residual smoothed once more and
    added back), ``(4 r + 1,)`` with ``r = int(3 sigma)``, summing to 1. Its response ``1 - (1 - g)^2`` keeps slow
    motion that the Gaussian (response ``g``) damps (a 2 Hz step cycle at 1.75 frames: 0.94 against 0.76) while
    frame-rate noise, where ``g`` is near 0, is removed almost as well."""
    k = _gaussian_kernel(sigma)
    r = len(k) // 2
    kk = torch.nn.functional.conv1d(torch.nn.functional.pad(k, (2 * r, 2 * r)).view(1, 1, -1), k.view(1, 1, -1))
    return 2 * torch.nn.functional.pad(k, (r, r)) - kk.view(-1)


def smooth_time(x: torch.Tensor, sigma: float, twice: bool = False) -> torch.Tensor:
    """Gaussian low-pass along dim 1 (edges repeated), or its twicing (:func:`twiced_kernel`):
    ``(B, L, ...)`` -> same shape."""
    k = (twiced_kernel(sigma) if twice else _gaussian_kernel(sigma)).to(x)
    r = len(k) // 2
    B, L = x.shape[:2]
    flat = x.reshape(B, L, -1).transpose(1, 2).reshape(-1, 1, L)          # (B * C, 1, L)
    out = torch.nn.functional.conv1d(torch.nn.functional.pad(flat, (r, r), mode="replicate"), k.view(1, 1, -1))
    return out.reshape(B, -1, L).transpose(1, 2).reshape(x.shape)
