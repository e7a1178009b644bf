"""The diffusion schedule and the DDIM update (x0-parameterised, deterministic or stochastic).

The network predicts the clean motion x0 directly (as MDM and EDGE do), which
is what keyframe imputation and geometric losses want to work on.
"""
from __future__ import annotations

import math

import torch


def cosine_alpha_bar(steps: int) -> torch.Tensor:
    """Cumulative signal level per step ``(steps,)`` (Nichol & Dhariwal's cosine schedule)."""
    t = torch.arange(steps + 1, dtype=torch.float64) / steps
    f = torch.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    ab = (f / f[0])[1:]
    return ab.clamp(1e-5, 1.0).float()


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """Noise clean motion to step ``t`` ``(B,)``: ``(B, L, D)`` -> ``(B, L, D)``."""
    ab = alpha_bar[t].view(-1, 1, 1)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def sampling_steps(total: int, steps: int) -> list[int]:
    """``steps`` timesteps from ``total - 1`` down to 0, evenly spaced (one step: just ``total - 1``).

    Ending at t = 0 matters: the last prediction is then made from an almost clean x_t, so no residual
    noise is left in the motion (ending at t = 100 left visible jitter).
    """
    steps = max(1, min(steps, total))
    if steps == 1:
        return [total - 1]
    return sorted({round((total - 1) * (steps - 1 - i) / (steps - 1)) for i in range(steps)}, reverse=True)


def ddim_step(x_t: torch.Tensor, x0: torch.Tensor, t: int, t_prev: int, alpha_bar: torch.Tensor,
              eta: float = 0.0, noise: torch.Tensor | None = None) -> torch.Tensor:
    """One DDIM step from ``t`` to ``t_prev`` (``-1`` = clean) given the predicted x0 ``(B, L, D)``.

    ``eta`` = 0 is deterministic DDIM; 1 re-draws as much fresh ``noise`` (same shape as x_t) as a DDPM
    step would (Song et al.'s sigma), in place of that share of the noise implied by x_t.
    """
    if t_prev < 0:
        return x0
    ab, ab_prev = alpha_bar[t], alpha_bar[t_prev]
    eps = (x_t - ab.sqrt() * x0) / (1 - ab).sqrt().clamp_min(1e-6)
    if eta <= 0 or noise is None:
        return ab_prev.sqrt() * x0 + (1 - ab_prev).sqrt() * eps
    sigma = eta * ((1 - ab_prev) / (1 - ab).clamp_min(1e-6) * (1 - ab / ab_prev)).clamp_min(0).sqrt()
    keep = (1 - ab_prev - sigma ** 2).clamp_min(0).sqrt()
    return ab_prev.sqrt() * x0 + keep * eps + sigma * noise
