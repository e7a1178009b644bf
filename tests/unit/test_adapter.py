"""The in-betweening adapter on a small random network: a no-op at the start, W + B A when used, merged weights
kept only while nothing changes, and gradients that reach the adapter alone when the shared weights are frozen."""
from __future__ import annotations

import pytest
import torch

from kinemo.model.adapter import LowRankAdapter, adapted_weights
from kinemo.model.config import ModelConfig
from kinemo.model.motion_model import MotionModel


def _inputs(L: int = 12):
    g = torch.Generator().manual_seed(0)
    x, obs = torch.randn(2, L, 147, generator=g), torch.randn(2, L, 147, generator=g)
    return x, torch.tensor([999, 400]), obs, torch.rand(2, L, 25, generator=g) < 0.3


@pytest.fixture
def model() -> MotionModel:
    torch.manual_seed(0)
    m = MotionModel(ModelConfig(width=32, layers=2, heads=2, max_frames=30, adapter_rank=3)).eval()
    with torch.no_grad():     # a trained-looking network: the zero-initialised head would hide every difference
        m.denoiser.out.weight.normal_(0, 0.1)
    return m


def test_the_adapter_starts_as_a_no_op_and_then_adds_its_low_rank_delta(model):
    args = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(model.predict(*args, adapter=True)[0], model.predict(*args)[0], rtol=0, atol=0)
        for k in model.adapter.up:
            model.adapter.up[k].normal_(0, 0.05)
        merged = model.adapter.merged(model.denoiser)
    name = "blocks.layers.0.self_attn.in_proj_weight"
    assert name in adapted_weights(model.denoiser) and "no_text" not in adapted_weights(model.denoiser)
    key = name.replace(".", "__")
    want = model.denoiser.get_parameter(name) + model.adapter.up[key] @ model.adapter.down[key]
    torch.testing.assert_close(merged[name], want)
    with torch.no_grad():
        assert not torch.allclose(model.predict(*args, adapter=True)[0], model.predict(*args)[0])


def test_merged_weights_are_kept_only_while_no_weight_changes(model):
    args = _inputs()
    with torch.no_grad():
        first = model.predict(*args, adapter=True)[0]
        assert model._merged is not None and torch.equal(model.predict(*args, adapter=True)[0], first)
        model.denoiser.frame_in.weight.add_(0.05)          # a shared weight changes in place: merge again
        moved = model.predict(*args, adapter=True)[0]
        assert not torch.equal(moved, first)
        model.adapter.up["frame_in__weight"].add_(0.05)    # so does an adapter weight
        assert not torch.equal(model.predict(*args, adapter=True)[0], moved)
        again = model.predict(*args, adapter=True)[0]
        w = model.denoiser.out.weight                       # new storage, as .to() gives: merged again too
        w.data = w.data + 0.05
        assert not torch.equal(model.predict(*args, adapter=True)[0], again)


def test_with_the_shared_weights_frozen_only_the_adapter_learns(model):
    for n, p in model.named_parameters():
        p.requires_grad_(n.startswith("adapter."))
    model.train()
    x0, _, _ = model.predict(*_inputs(), adapter=True)
    x0.pow(2).mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is None for n, g in grads.items() if not n.startswith("adapter."))
    assert any(g is not None and g.abs().max() > 0 for n, g in grads.items() if n.startswith("adapter.up."))


def test_a_rank_below_one_is_refused():
    with pytest.raises(ValueError, match="adapter rank must be at least 1"):
        LowRankAdapter(MotionModel(ModelConfig(width=32, layers=1, heads=2)).denoiser, 0)
