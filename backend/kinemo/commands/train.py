"""``kinemo train --config NAME``: train the motion model on the prepared corpus (see kinemo.train.loop)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..data.cache import corpus_dir, default_cache_root
from ..errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..model.config import CONFIGS
    p.add_argument("--config", default="small", choices=sorted(CONFIGS), help="named configuration")
    p.add_argument("--out", type=Path, default=Path("runs/model"), help="run directory (checkpoints, log.jsonl)")
    p.add_argument("--cache-dir", type=Path, default=None, help="kinemo cache root holding the corpus")
    p.add_argument("--resume", type=Path, default=None,
                   help="continue from this checkpoint (its config wins; an exported one gets a fresh optimiser)")
    p.add_argument("--steps", type=int, default=None, help="override the config's step count")
    p.add_argument("--max-minutes", type=float, default=None, help="stop with a checkpoint after this long")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                   help="set a training field, also on a resumed run (e.g. --set w_gpos=0.1 --set steps=30000)")
    p.add_argument("--forget-music", action="store_true",
                   help="with --resume: zero the music input first (ablations of how music is taught)")
    p.add_argument("--grow-film", action="store_true",
                   help="with --resume: give the model per-block FiLM of its condition (model.film), zero-initialised "
                        "so it starts out unchanged")
    p.add_argument("--grow-blocks", type=int, default=0, metavar="N",
                   help="with --resume: deepen the model by N transformer blocks placed between the trained ones, "
                        "each starting as a pass-through so the model starts out unchanged")
    p.add_argument("--grow-adapter", type=int, default=0, metavar="RANK",
                   help="with --resume: give the model an in-betweening adapter of this rank (model.adapter_rank) and "
                        "train it alone, the shared weights frozen, so nothing but in-betweening changes")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ..model.config import CONFIGS
    from ..train.loop import Run, train
    cfg = CONFIGS[args.config]
    if args.steps is not None:
        if args.steps < 1:
            raise UserError("--steps must be at least 1")
        cfg = replace(cfg, steps=args.steps)
    overrides = parse_overrides(args.overrides)
    root = Path(args.cache_dir) if args.cache_dir else default_cache_root()
    path = train(cfg, Run(out=args.out, corpus=corpus_dir(root), cache_dir=root / "text", resume=args.resume,
                          max_minutes=args.max_minutes, threads=args.threads,
                          overrides=overrides, forget_music=args.forget_music,
                          grow_film=args.grow_film, grow_blocks=args.grow_blocks,
                          grow_adapter=args.grow_adapter))
    print(f"checkpoint: {path}")
    return 0


def parse_overrides(items: list[str]) -> dict:
    """``["w_gpos=0.1", "steps=30000"]`` -> ``{"w_gpos": 0.1, "steps": 30000}``, typed by the config's own fields
    (model fields cannot change: they shape the checkpoint)."""
    from ..model.config import TrainConfig, typed_fields
    pairs = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set {item!r}: expected FIELD=VALUE")
        pairs.append((name, value))
    try:
        return typed_fields(TrainConfig, pairs, exclude=("model",))
    except ValueError as e:
        raise UserError(f"--set: {e}") from None
