"""The denoiser: a transformer over frames that predicts clean motion, its dynamics and foot contacts.

Input per frame: the noisy motion, the keyed observations (zero where not
keyed), the 25-channel key mask, and optionally per-frame music features.
Global conditions (diffusion step, text) form one vector that is both a
prefix token and added to every frame token. Each condition has a learned
"absent" value, so any of them can be dropped (classifier-free guidance).

Output per frame: ``D`` motion features (x0), ``24 * 3`` joint velocities in
normalised units (the dynamics stream, predicted jointly with the motion as
VideoJAM does for video) and 4 foot-contact logits.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .config import ModelConfig
from .features import D, J, MASK_DIMS

VEL_DIMS = 3 * J
CONTACTS = 4
OUT_DIMS = D + VEL_DIMS + CONTACTS


def sinusoid(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of positions or steps ``(...,)`` -> ``(..., dim)``."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    a = x.float()[..., None] * freq
    return torch.cat([a.sin(), a.cos()], -1)


class Denoiser(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        frame_in = 2 * D + MASK_DIMS + (cfg.music_dim + 1 if cfg.music_dim else 0)
        self.frame_in = nn.Linear(frame_in, w)
        self.step_mlp = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.text_in = nn.Linear(cfg.text_dim, w)
        self.no_text = nn.Parameter(torch.zeros(w))
        layer = nn.TransformerEncoderLayer(w, cfg.heads, cfg.ff_mult * w, cfg.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(w)
        if cfg.film:
            self.film = nn.Linear(w, 2 * w * cfg.layers)
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        self.out = nn.Linear(w, OUT_DIMS)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def music_columns(self) -> slice:
        """The columns of ``frame_in.weight`` that read the music features and the music-on flag."""
        n = self.cfg.music_dim + 1 if self.cfg.music_dim else 0
        return slice(self.frame_in.in_features - n, self.frame_in.in_features)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, obs: torch.Tensor, mask: torch.Tensor,
                text: torch.Tensor | None = None, text_on: torch.Tensor | None = None,
                music: torch.Tensor | None = None, music_on: torch.Tensor | None = None) -> torch.Tensor:
        """x_t, obs ``(B, L, D)``; t ``(B,)``; mask ``(B, L, 25)``; text ``(B, 384)``, text_on ``(B,)``;
        music ``(B, L, M)``, music_on ``(B,)``. Returns ``(B, L, OUT_DIMS)``."""
        B, L, _ = x_t.shape
        parts = [x_t, obs, mask.to(x_t.dtype)]
        if self.cfg.music_dim:
            on = (music_on if music_on is not None else torch.zeros(B, device=x_t.device)).to(x_t.dtype)
            m = music if music is not None else x_t.new_zeros(B, L, self.cfg.music_dim)
            parts += [m * on[:, None, None], on[:, None, None].expand(B, L, 1)]
        h = self.frame_in(torch.cat(parts, -1))
        cond = self.step_mlp(sinusoid(t, self.cfg.width))
        if text is not None:
            on = (text_on if text_on is not None else torch.ones(B, device=x_t.device)).to(h.dtype)[:, None]
            cond = cond + on * self.text_in(text.to(h.dtype)) + (1 - on) * self.no_text
        else:
            cond = cond + self.no_text
        pos = sinusoid(torch.arange(L, device=x_t.device), self.cfg.width)
        h = torch.cat([cond[:, None], h + pos + cond[:, None]], 1)
        if not self.cfg.film:
            h = self.blocks(h)
        else:
            film = self.film(nn.functional.silu(cond)).view(B, self.cfg.layers, 2, 1, -1)
            for i, block in enumerate(self.blocks.layers):
                # the frame tokens only: the prefix token is the condition itself
                h = torch.cat([h[:, :1], h[:, 1:] * (1 + film[:, i, 0]) + film[:, i, 1]], 1)
                h = block(h)
        return self.out(self.norm(h[:, 1:]))
