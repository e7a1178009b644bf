"""Where benches get real motion: a corpus split, or any folder of humanoid BVH files
(retargeted to the canonical SMPL skeleton and resampled to 30 fps by the corpus
pipeline's own per-take code, so they are treated exactly like training data)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError


@dataclass
class EvalClip:
    id: str
    quats: np.ndarray      # (T, 24, 4) local, w first
    root: np.ndarray       # (T, 3) pelvis world position
    positions: np.ndarray  # (T, 24, 3)


def add_corpus_arguments(p) -> None:
    p.add_argument("--corpus", type=Path, help="corpus folder (default: the cache's current corpus)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="split to evaluate (default test)")


def open_corpus(path: Path | None):
    from ..data.cache import Corpus, corpus_dir
    return Corpus(path or corpus_dir())


def corpus_clips(corpus, split: str) -> list[EvalClip]:
    out = []
    for i in corpus.split(split):
        c = corpus.clip(i)
        out.append(EvalClip(corpus.takes[i]["id"], c.quats, c.root, c.positions))
    if not out:
        raise UserError(f"the corpus at {corpus.path} has no takes in the {split!r} split")
    return out


def bvh_dir_clips(folder: Path, log=print) -> list[EvalClip]:
    """Every ``*.bvh`` under ``folder``, retargeted to SMPL at 30 fps; unreadable ones are reported and skipped."""
    from ..data.pipeline import process_take
    from ..data.sources import RawTake
    files = sorted(Path(folder).rglob("*.bvh")) + sorted(Path(folder).rglob("*.BVH"))
    if not files:
        raise UserError(f"no .bvh files under {folder}")
    out = []
    for f in files:
        res = process_take(RawTake(f.stem, "bvh", str(f), path=str(f)))
        if res.clip is None:
            log(f"skipping {f}: {res.reason}")
            continue
        out.append(EvalClip(f.stem, res.clip.quats, res.clip.root, res.clip.positions))
    if not out:
        raise UserError(f"none of the {len(files)} BVH files under {folder} could be used")
    return out
