"""What training minimises: denoising in feature space plus the geometry and dynamics of the result.

Terms (weights in :class:`~kinemo.model.config.TrainConfig`):
- ``feat``: x0 features (normalised);
- ``vel``: the dynamics head's joint velocities against the true ones (VideoJAM's joint motion+dynamics
  prediction, here with velocities in place of optical flow);
- ``pos``: joint positions of the predicted motion (FK) relative to its pelvis, in units of 10 cm (the root's
  own path is in ``feat``; kept out of here, its large and, in free generation, unpredictable spread would drown
  the posture signal);
- ``fkvel``: velocities of the predicted motion itself, so its dynamics match real ones (no jitter);
- ``gpos``: joint positions in the window frame, root included, only on windows with a keyed root (there the
  root's path is determined by the keys, and it is what in-betweening's position error mostly measures), in
  10 cm or (``gpos_spread``) per joint and axis in units of the batch's real spread, as L2P weighs them;
- ``contact``: foot-contact logits; ``skate``: foot speed of the prediction where the real foot is planted;
- ``beat``: on windows with a beat grid (a song's, or the motion's own kinematic beats), the beat objectives of
  :mod:`kinemo.model.beats` on the prediction, per frame: an accent on every beat, none between.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from ..model.beats import beat_loss
from ..model.config import TrainConfig
from ..model.diffusion import q_sample
from ..model.features import (FOOT_JOINTS, anchor_frame, encode, expand_mask, observe, quat_to_matrix, slerp_turns,
                              velocities)
from ..model.motion_model import MotionModel
from .data import Batch

POS_UNIT = 0.1   # metres
VEL_UNIT = 1.0   # m/s
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def bf16_helps(device: torch.device) -> bool:
    """bf16 autocast pays on GPUs and on CPUs with bf16 instructions; elsewhere it is emulated and slower
    (3x slower measured on this project's AVX-512 CPU without avx512_bf16)."""
    return device.type == "cuda" or _cpu_has_bf16()


@lru_cache(maxsize=1)
def _cpu_has_bf16() -> bool:    # read once: this is asked on every training step
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return any(f in flags for f in _BF16_FLAGS)


def batch_features(model: MotionModel, b: Batch, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonical features ``(B, L, D)`` and their joint positions ``(B, L, 24, 3)``."""
    rot = quat_to_matrix(b.quats)
    yaw, origin = anchor_frame(rot, b.root, b.anchor)
    rnd = ((torch.rand(yaw.shape, generator=gen) * 2 - 1) * math.pi).to(yaw.device)
    yaw = torch.where(b.random_yaw, rnd, yaw)
    feats = encode(rot, b.root, yaw, origin)
    return feats, model.kin(feats)


def _gpos_unit(pos: torch.Tensor, rooted: torch.Tensor, spread: bool) -> torch.Tensor | float:
    """The unit gpos errors are measured in: ``POS_UNIT``, or with ``spread`` the std ``(24, 3)`` of the real
    positions ``(B, L, 24, 3)`` over the frames of the windows with a keyed root (``rooted`` ``(B,)``; all windows
    when none is), floored at 1 cm."""
    if not spread:
        return POS_UNIT
    keep = rooted > 0
    return pos[keep if keep.any() else ~keep].flatten(0, 1).std(0).clamp_min(0.01)


def losses(model: MotionModel, b: Batch, cfg: TrainConfig, gen: torch.Generator, t: torch.Tensor | None = None,
           net: torch.nn.Module | None = None, clean: bool = False, adapter: bool = False
           ) -> dict[str, torch.Tensor]:
    """Loss terms of one batch; ``net`` is the DDP wrapper of ``model`` when training on several devices.
    ``clean``: every sample gets x_t = 0 (in-betweening's temperature-0 query; meant with ``t`` = the last step).
    ``adapter``: predict with the in-betweening adapter (where the model has one)."""
    with torch.no_grad():
        feats, pos = batch_features(model, b, gen)
        vel = velocities(pos)
        x0 = model.norm(feats)
    B = x0.shape[0]
    T = model.cfg.diffusion_steps
    drawn = t is None          # training draws its steps; validation fixes them (and ``clean``)
    if drawn:
        t = torch.randint(0, T, (B,), generator=gen)
        t = torch.where(torch.rand(B, generator=gen) < cfg.t_top, T - 1, t)
    t = t.to(x0.device)   # a caller's fixed steps may come from the CPU
    quiet = torch.full((B,), clean)
    if drawn and cfg.top_clean > 0:      # drawn only when used, so runs without it keep their random stream
        quiet = (t.cpu() == T - 1) & (torch.rand(B, generator=gen) < cfg.top_clean)
    noise = torch.randn(x0.shape, generator=gen).to(x0.device)
    noise = torch.where(quiet.view(-1, 1, 1).to(x0.device), 0.0, noise)
    x_t = q_sample(x0, t, noise, model.alpha_bar)
    m = b.mask
    fm = expand_mask(m)
    obs = slerp_turns(observe(x0, fm), feats, fm, model.feat_mean, model.feat_std)
    with torch.autocast(x0.device.type, dtype=torch.bfloat16, enabled=cfg.bf16 and bf16_helps(x0.device)):
        x0_hat, vel_hat, contact = (net or model)(x_t, t, obs, m, b.text, b.text_on, b.music, b.music_on,
                                                     adapter=adapter)
    pos_hat = model.kin(model.denorm(x0_hat))
    fkvel = velocities(pos_hat)
    foot = pos_hat[:, :, list(FOOT_JOINTS)]
    foot_v = velocities(foot)[..., [0, 2]].norm(dim=-1)          # horizontal speed (B, L, 4)
    rooted = m[..., 0].any(1).to(pos.dtype)                      # (B,) windows with a keyed root
    gpos = ((pos_hat - pos) / _gpos_unit(pos, rooted, cfg.gpos_spread)).pow(2).mean((1, 2, 3))
    music_on = b.music_on.to(pos.dtype)
    beat = beat_loss(pos_hat, b.music) / pos.shape[1]
    return {
        "feat": F.mse_loss(x0_hat, x0),
        "vel": F.mse_loss(vel_hat / VEL_UNIT, vel / VEL_UNIT),
        "pos": F.mse_loss((pos_hat - pos_hat[:, :, :1]) / POS_UNIT, (pos - pos[:, :, :1]) / POS_UNIT),
        "fkvel": F.mse_loss(fkvel / VEL_UNIT, vel / VEL_UNIT),
        "gpos": (gpos * rooted).sum() / rooted.sum().clamp_min(1.0),
        "contact": F.binary_cross_entropy_with_logits(contact, b.contacts),
        "skate": (foot_v * b.contacts).mean(),
        "beat": (beat * music_on).sum() / music_on.sum().clamp_min(1.0),
    }


def total(parts: dict[str, torch.Tensor], cfg: TrainConfig) -> torch.Tensor:
    return sum(getattr(cfg, f"w_{k}") * v for k, v in parts.items())
