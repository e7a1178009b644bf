"""Checkpoints: weights (raw and EMA), optimiser state, step and the config that built them.

Saved atomically (temporary file + rename) so an interrupted save never
leaves a broken checkpoint. ``export`` strips the optimiser and raw weights
for shipping: EMA weights in fp16 plus config, statistics and metrics.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import UserError
from ..model.config import TrainConfig, from_dict, to_dict
from ..model.motion_model import MotionModel

FORMAT = "kinemo-motion-model"
VERSION = 1


def save(path: Path, cfg: TrainConfig, model: MotionModel, ema: MotionModel, opt, step: int,
         extra: dict | None = None) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save({"format": FORMAT, "version": VERSION, "config": to_dict(cfg), "step": step,
                "model": model.state_dict(), "ema": ema.state_dict(),
                "opt": opt.state_dict() if opt is not None else None, "extra": extra or {}}, tmp)
    tmp.replace(path)


def read(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no model checkpoint at {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for a damaged file
        raise UserError(f"{path} is not a readable checkpoint: {e}") from e
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise UserError(f"{path} is not a kinemo motion model checkpoint")
    if ck.get("version", 0) > VERSION:
        raise UserError(f"{path} was written by a newer kinemo (checkpoint version {ck['version']})")
    return ck


def is_exported(ck: dict) -> bool:
    """Whether a checkpoint (as ``read`` returns it) is an ``export``: EMA weights only, no raw weights or optimiser."""
    return "model" not in ck


def fp32_weights(ck: dict, weights: str = "ema") -> dict:
    """A checkpoint's ``weights`` ("ema" or "model") as an fp32 state dict (exports store them as fp16)."""
    return {k: v.float() for k, v in ck[weights].items()}


def load_model(path: Path, device: str = "cpu", weights: str = "ema") -> tuple[MotionModel, TrainConfig, dict]:
    """The model in eval mode (EMA weights by default), its config, and the checkpoint's extra data
    (with the training ``step`` added)."""
    ck = read(path)
    cfg = from_dict(ck["config"])
    model = MotionModel(cfg.model)
    model.load_state_dict(fp32_weights(ck, weights))
    return model.to(device).eval(), cfg, {"step": ck.get("step"), **ck.get("extra", {})}


def export(src: Path, dst: Path, extra: dict | None = None) -> Path:
    """A shippable copy: EMA weights only, stored as fp16 (half the size; inference runs in fp32).
    Buffers (feature statistics, the schedule) stay fp32: they are tiny and the features are sensitive to them."""
    ck = read(src)
    exact = {"alpha_bar", "feat_mean", "feat_std", "vel_std"}
    ema = {k: (v.half() if v.is_floating_point() and k not in exact else v) for k, v in ck["ema"].items()}
    out = {"format": FORMAT, "version": VERSION, "config": ck["config"], "step": ck["step"],
           "ema": ema, "extra": {**ck.get("extra", {}), **(extra or {})}}
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    torch.save(out, tmp)
    tmp.replace(dst)
    return dst
