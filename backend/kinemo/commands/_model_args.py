"""Arguments shared by the model commands (inbetween, generate, dance)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import UserError


def add_sampling(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output BVH (never overwrites an input; existing files need --force)")
    p.add_argument("--model", type=Path, default=None, help="checkpoint (default: the shipped model)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same motion)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the model's)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")


def check_out(out: str, inputs: list[str], force: bool) -> str:
    path = os.path.abspath(out)
    if path in {os.path.abspath(i) for i in inputs if i}:
        raise UserError("--out must not be one of the input files")
    if os.path.exists(path) and not force:
        raise UserError(f"{out} exists; pass --force to overwrite it")
    if not out.lower().endswith(".bvh"):
        raise UserError(f"--out must be a .bvh file; got {out}")
    return path


def load_generator(path: Path | None):
    from ..model.generator import Generator
    return Generator.load(path)


def save_model_motion(out: str, quats, root, target) -> "object":
    """Write a canonical SMPL motion as BVH: on the SMPL skeleton, or retargeted onto ``target`` (a read Bvh)
    at the target's frame rate. Returns the written Motion."""
    from ..core.bvh import Bvh, save_bvh
    from ..core.smpl import smpl_skeleton
    from ..model.on_rig import MODEL_FPS, smpl_to_rig
    if target is None:
        motion = smpl_to_rig(quats, root, None)
        save_bvh(out, Bvh(smpl_skeleton(), motion, [], 1.0))
        return motion
    has = target.motion.num_frames > 0
    motion = smpl_to_rig(quats, root, target.skeleton, target.motion if has else None,
                         target.motion.fps if has else MODEL_FPS)
    save_bvh(out, Bvh(target.skeleton, motion, target.channels, target.scale))
    return motion
