"""``kinemo dance --music SONG.ogg --out OUT.bvh [--start S --seconds N] [--text ...] [--target RIG.bvh]``:
a dance to a song (wav/flac/ogg/mp3), as long as the song (or the asked part of it)."""
from __future__ import annotations

import argparse

from ..core.bvh import read_bvh
from ..errors import UserError
from ._model_args import add_sampling, check_out, load_generator, save_model_motion


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--music", required=True, help="audio file: wav, flac, ogg or mp3")
    p.add_argument("--start", type=float, default=0.0, help="start time in the song, seconds (default 0)")
    p.add_argument("--seconds", type=float, default=None, help="how long to dance (default: to the song's end)")
    p.add_argument("--text", default=None, help='optional style, e.g. "dance energetically"')
    p.add_argument("--target", default=None, help="BVH rig to put the dance on (default: the SMPL skeleton)")
    p.add_argument("--beat-guidance", type=float, default=None,
                   help="carve movement accents on the beats while sampling (default: the sampler's, 1.0; 0 = off)")
    add_sampling(p)


def run(args: argparse.Namespace) -> int:
    from ..data.music import music_features
    from ..model.on_rig import MODEL_FPS
    out = check_out(args.out, [args.music, args.target], args.force)
    if args.start < 0:
        raise UserError(f"--start must be >= 0; got {args.start}")
    if args.seconds is not None and not 0 < args.seconds <= 3600:
        raise UserError(f"--seconds must be in (0, 3600]; got {args.seconds}")
    frames = None if args.seconds is None else max(1, int(round(args.seconds * MODEL_FPS)))
    feats = music_features(args.music, MODEL_FPS, start_s=args.start, frames=frames)
    if feats.matrix.shape[0] < 1:
        raise UserError(f"{args.music}: nothing to dance to after {args.start:g} s")
    tgt = read_bvh(args.target) if args.target else None
    gen = load_generator(args.model)
    q, r = gen.dance(feats.matrix, text=args.text, seed=args.seed, steps=args.steps, beat_guidance=args.beat_guidance)
    motion = save_model_motion(out, q, r, tgt)
    print(f"wrote {args.out}: {motion.num_frames} frames at {motion.fps:g} fps "
          f"({motion.num_frames / motion.fps:.1f} s, tempo {feats.tempo:.0f} bpm)")
    return 0
