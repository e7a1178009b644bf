"""``kinemo generate --text "..." --seconds 6 --out OUT.bvh [--target RIG.bvh]``: motion from a sentence."""
from __future__ import annotations

import argparse

from ..core.bvh import read_bvh
from ..errors import UserError
from ._model_args import add_sampling, check_out, load_generator, save_model_motion


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--text", required=True, help='what the body does, e.g. "an old man waves with his left hand"')
    p.add_argument("--seconds", type=float, default=6.0, help="duration (default 6)")
    p.add_argument("--target", default=None, help="BVH rig to put the motion on (default: the SMPL skeleton)")
    add_sampling(p)


def run(args: argparse.Namespace) -> int:
    from ..model.on_rig import MODEL_FPS
    out = check_out(args.out, [args.target], args.force)
    if not 0 < args.seconds <= 600:
        raise UserError(f"--seconds must be in (0, 600]; got {args.seconds}")
    tgt = read_bvh(args.target) if args.target else None
    gen = load_generator(args.model)
    frames = max(1, int(round(args.seconds * MODEL_FPS)))
    q, r = gen.generate(args.text, frames, seed=args.seed, steps=args.steps)
    motion = save_model_motion(out, q, r, tgt)
    print(f"wrote {args.out}: {motion.num_frames} frames at {motion.fps:g} fps")
    return 0
