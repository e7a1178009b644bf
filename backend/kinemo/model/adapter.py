"""The in-betweening adapter: low-rank deltas on the denoiser's weights, used for keyed in-betweening only.

One network serves text, music and keys, and training it longer on in-betweening's own query made it better
at that query and worse at text (docs/model_history.md, stop 49). The adapter gives in-betweening capacity of
its own: every matrix ``W`` of the denoiser gains ``B @ A`` (rank ``r``) while in-betweening, and is ``W``
otherwise. It is trained with the shared weights frozen, so text and dance stay exactly what they were, and it
starts as a no-op (``B = 0``), so a grown model predicts what it did until training moves it.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def adapted_weights(denoiser: nn.Module) -> list[str]:
    """Names of the denoiser's weight matrices the adapter adapts: every 2-D parameter (linear layers and the
    attention's packed input projection), none of the learned vectors."""
    return [n for n, p in denoiser.named_parameters() if p.ndim == 2]


def _key(name: str) -> str:
    return name.replace(".", "__")      # parameter names may not hold dots


class LowRankAdapter(nn.Module):
    def __init__(self, denoiser: nn.Module, rank: int):
        super().__init__()
        if rank < 1:
            raise ValueError(f"adapter rank must be at least 1; got {rank}")
        self.rank = rank
        self.names = adapted_weights(denoiser)
        shapes = dict(denoiser.named_parameters())
        self.down = nn.ParameterDict()
        self.up = nn.ParameterDict()
        for n in self.names:
            out, inp = shapes[n].shape
            # A ~ N(0, 1/in) keeps B @ A's scale independent of the layer's width; B = 0: a no-op at the start
            self.down[_key(n)] = nn.Parameter(torch.randn(rank, inp) / math.sqrt(inp))
            self.up[_key(n)] = nn.Parameter(torch.zeros(out, rank))

    def merged(self, denoiser: nn.Module) -> dict[str, torch.Tensor]:
        """The denoiser's parameters with each adapted matrix ``W (out, in)`` replaced by ``W + B @ A``, for
        ``torch.func.functional_call``; gradients reach the adapter (and ``W`` where it trains)."""
        params = dict(denoiser.named_parameters())
        for n in self.names:
            params[n] = params[n] + self.up[_key(n)] @ self.down[_key(n)]
        return params
