"""``kinemo inbetween SRC.bvh --keys 0,30,60 --out OUT.bvh``: the listed frames of SRC are full-body keys;
everything between them is made by the model (any humanoid skeleton; same skeleton, fps and frame count out)."""
from __future__ import annotations

import argparse

import numpy as np

from ..core.bvh import Bvh, read_bvh, save_bvh
from ..errors import UserError
from ._model_args import add_sampling, check_out, load_generator


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="BVH whose listed frames are the keys (any humanoid skeleton)")
    p.add_argument("--keys", required=True, help="comma-separated frame numbers, e.g. 0,30,60 (0-based)")
    p.add_argument("--text", default=None, help="optional description to steer the in-between motion")
    add_sampling(p)


def parse_keys(text: str, frames: int) -> np.ndarray:
    try:
        keys = sorted({int(k) for k in text.replace(" ", "").split(",") if k})
    except ValueError:
        raise UserError(f"--keys must be comma-separated frame numbers; got {text!r}") from None
    if not keys:
        raise UserError("--keys lists no frames")
    bad = [k for k in keys if not 0 <= k < frames]
    if bad:
        raise UserError(f"key frame(s) {bad} outside the clip's frames 0..{frames - 1}")
    return np.array(keys)


def run(args: argparse.Namespace) -> int:
    from ..model.on_rig import inbetween_on_rig
    out = check_out(args.out, [args.source], args.force)
    src = read_bvh(args.source)
    keys = parse_keys(args.keys, src.motion.num_frames)
    gen = load_generator(args.model)
    m = src.motion
    motion = inbetween_on_rig(gen, src.skeleton, keys, m.rotations[keys], m.translations[keys], m.num_frames, m.fps,
                              text=args.text, seed=args.seed, steps=args.steps)
    save_bvh(out, Bvh(src.skeleton, motion, src.channels, src.scale))
    print(f"wrote {args.out}: {motion.num_frames} frames at {motion.fps:g} fps, {len(keys)} keys kept exactly")
    return 0
