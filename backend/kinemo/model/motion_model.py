"""The complete model held by a checkpoint: denoiser + feature normalisation + kinematics + schedule."""
from __future__ import annotations

import torch
from torch import nn

from .adapter import LowRankAdapter
from .config import ModelConfig
from .diffusion import cosine_alpha_bar
from .features import D, J, Kinematics
from .network import CONTACTS, Denoiser


class MotionModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.denoiser = Denoiser(cfg)
        self.kin = Kinematics()
        # Feature statistics of the training split, fixed before training starts.
        self.register_buffer("feat_mean", torch.zeros(D))
        self.register_buffer("feat_std", torch.ones(D))
        self.register_buffer("vel_std", torch.ones(3 * J))
        self.register_buffer("alpha_bar", cosine_alpha_bar(cfg.diffusion_steps))
        self.adapter = LowRankAdapter(self.denoiser, cfg.adapter_rank) if cfg.adapter_rank else None
        self._merged: tuple[tuple, dict] | None = None

    def norm(self, f: torch.Tensor) -> torch.Tensor:
        return (f - self.feat_mean) / self.feat_std

    def denorm(self, f: torch.Tensor) -> torch.Tensor:
        return f * self.feat_std + self.feat_mean

    def predict(self, x_t, t, obs, mask, text=None, text_on=None, music=None, music_on=None, adapter=False):
        """Normalised x_t/obs ``(B, L, D)`` -> (x0 ``(B, L, D)`` normalised, velocities ``(B, L, 24, 3)`` in m/s,
        contact logits ``(B, L, 4)``). ``adapter``: with the in-betweening adapter, where the model has one."""
        args = (x_t, t, obs, mask, text, text_on, music, music_on)
        if adapter and self.adapter is not None:
            out = torch.func.functional_call(self.denoiser, self._adapted_weights(), args).float()
        else:
            out = self.denoiser(*args).float()
        # Skip connection by noise level (Karras et al.'s preconditioning, for unit-variance features with the
        # interpolated keys as the prior mean): the best linear guess of x0 from x_t and obs is
        # sqrt(ab) x_t + (1 - ab) obs, and the network adds what that guess lacks, scaled by the noise left.
        # Low-noise steps start as a copy and high-noise steps as the interpolation, instead of learning both.
        ab = self.alpha_bar[t].view(-1, 1, 1)
        x0 = ab.sqrt() * x_t.float() + (1 - ab) * obs.float() + (1 - ab).sqrt() * out[..., :D]
        vel = (out[..., D:D + 3 * J] * self.vel_std).unflatten(-1, (J, 3))
        return x0, vel, out[..., D + 3 * J:D + 3 * J + CONTACTS]

    def _adapted_weights(self) -> dict[str, torch.Tensor]:
        """The denoiser's weights with the adapter merged in. Outside autograd they are kept until a weight
        changes (every in-place change bumps a tensor's version; a move to another device or dtype gives new
        storage): merging every matrix costs more than one in-betweening pass of a short window."""
        if torch.is_grad_enabled():
            return self.adapter.merged(self.denoiser)
        key = tuple((p.data_ptr(), p.dtype, p._version) for p in self.parameters())
        if self._merged is None or self._merged[0] != key:
            self._merged = (key, self.adapter.merged(self.denoiser))
        return self._merged[1]

    forward = predict   # so DDP (which wraps forward) all-reduces what training uses
