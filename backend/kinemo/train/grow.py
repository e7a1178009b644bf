"""Growing a trained model without changing what it predicts: new parts start as no-ops and training fills them.

Two ways: per-block FiLM of the condition (``ModelConfig.film``, zero-initialised in the network itself), and
more transformer blocks (``grow_blocks``), each new pre-norm block zeroed where it writes back into the residual
stream (attention's output projection and the feed-forward's second layer), so it passes its input through.
A model that underfits at its depth (docs/model_history.md) gains capacity while keeping what it has learnt.
"""
from __future__ import annotations

import re

import torch

from ..errors import UserError

BLOCK = "denoiser.blocks.layers."
_BLOCK_KEY = re.compile(re.escape(BLOCK) + r"(\d+)\.(.*)")
# the layers of an nn.TransformerEncoderLayer that write into the residual stream
_WRITERS = ("self_attn.out_proj", "linear2")


def block_slots(old: int, new: int) -> list[int]:
    """Where each of ``old`` trained blocks goes among ``new >= old``: spread evenly from slot 0, so the new
    blocks fall between trained ones (4 of 6 -> [0, 1, 3, 4]; new blocks at 2 and 5)."""
    if not 0 < old <= new:
        raise ValueError(f"cannot place {old} blocks among {new}")
    return [i * new // old for i in range(old)]


def move_blocks(weights: dict[str, torch.Tensor], slots: list[int]) -> dict[str, torch.Tensor]:
    """A state dict with trained block ``i``'s tensors renamed to block ``slots[i]``; everything else as it was."""
    out = {}
    for k, v in weights.items():
        m = _BLOCK_KEY.fullmatch(k)
        out[f"{BLOCK}{slots[int(m.group(1))]}.{m.group(2)}" if m else k] = v
    return out


@torch.no_grad()
def zero_writers(model: torch.nn.Module, blocks: list[int]) -> None:
    """Make the given transformer blocks of ``model.denoiser`` pass their input through unchanged."""
    layers = model.denoiser.blocks.layers
    for i in blocks:
        for name in _WRITERS:
            lin = layers[i].get_submodule(name)
            lin.weight.zero_()
            lin.bias.zero_()


def deepen(model: torch.nn.Module, added: int) -> tuple[list[int], tuple[str, ...]]:
    """Make ``added`` of a freshly built model's blocks, those :func:`block_slots` leaves free, pass-throughs.
    Returns the trained blocks' slots (for :func:`move_blocks`) and the new blocks' state-dict prefixes (for
    :func:`load_grown`); with ``added = 0``, every slot as it is and no prefix."""
    n = len(model.denoiser.blocks.layers)
    slots = block_slots(n - added, n)
    new = [i for i in range(n) if i not in slots]
    zero_writers(model, new)
    return slots, tuple(f"{BLOCK}{i}." for i in new)


def load_grown(model: torch.nn.Module, weights: dict[str, torch.Tensor], new_prefixes: tuple[str, ...] = ()
               ) -> None:
    """Load ``weights`` into ``model``; only parameters under ``new_prefixes`` (the grown parts, which keep their
    own no-op initialisation) may be missing from them."""
    missing, unexpected = model.load_state_dict(weights, strict=not new_prefixes)
    if unexpected or any(not k.startswith(new_prefixes) for k in missing):
        raise UserError(f"checkpoint does not fit the grown model: missing {missing}, unexpected {unexpected}")
