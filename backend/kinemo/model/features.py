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


def observe(x: torch.Tensor, fm: torch.Tensor) -> torch.Tensor:
    """What the network sees of the keys: keyed features as they are, every unkeyed frame filled by linear
    interpolation of its own feature between the nearest keys (held before the first and after the last;
    zero for a feature never keyed). The network then only has to learn how real motion departs from
    interpolation, which is what makes short gaps easy and long ones no worse than the baseline.

    x ``(B, L, D)`` features (normalised), fm ``(B, L, D)`` bool feature mask -> ``(B, L, D)``.
    """
    B, L, Dm = x.shape
    t = torch.arange(L, device=x.device).view(1, L, 1).expand(B, L, Dm)
    prev = torch.where(fm, t, torch.full_like(t, -1)).cummax(1).values
    nxt = torch.where(fm, t, torch.full_like(t, L)).flip(1).cummin(1).values.flip(1)
    has_p, has_n = prev >= 0, nxt < L
    vp = x.gather(1, prev.clamp(0, L - 1))
    vn = x.gather(1, nxt.clamp(0, L - 1))
    w = ((t - prev).float() / (nxt - prev).clamp_min(1).float()).clamp(0, 1)
    both = torch.lerp(vp, vn, w.to(x.dtype))
    out = torch.where(has_p & has_n, both, torch.where(has_p, vp, torch.where(has_n, vn, torch.zeros_like(x))))
    return torch.where(fm, x, out)


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    r = int(3 * sigma)
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma ** 2))
    return k / k.sum()


def smooth_time(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian low-pass along dim 1 (edges repeated): ``(B, L, ...)`` -> same shape."""
    k = _gaussian_kernel(sigma).to(x)
    r = len(k) // 2
    B, L = x.shape[:2]
    flat = x.reshape(B, L, -1).transpose(1, 2).reshape(-1, 1, L)          # (B * C, 1, L)
    out = torch.nn.functional.conv1d(torch.nn.functional.pad(flat, (r, r), mode="replicate"), k.view(1, 1, -1))
    return out.reshape(B, -1, L).transpose(1, 2).reshape(x.shape)
