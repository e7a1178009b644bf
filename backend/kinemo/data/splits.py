"""Train/val/test splits by whole take, fixed once and kept in the repository.

``make_splits`` orders takes by (dataset, content, style) and, inside each
group, by a seeded shuffle, then deals them out systematically: of every 20
consecutive takes 2 go to test and 1 to val. Every content and every style
thus gets ~10% test and ~5% val, including groups too small to split alone.
Takes not in the lists (users' own data) are placed by a hash of their id.
"""
from __future__ import annotations

import random
import zlib
from pathlib import Path

from .labels import Labels

SPLITS = ("train", "val", "test")
SPLIT_DIR = Path(__file__).with_name("splits")
SEED = 20261121
_DEAL = {3: "test", 13: "test", 8: "val"}   # position in each run of 20 -> split


def make_splits(labels: dict[str, Labels], seed: int = SEED) -> dict[str, list[str]]:
    rng = random.Random(seed)
    keyed = sorted(labels, key=lambda t: (t.split("_", 1)[0], labels[t].content or "", labels[t].style or "", t))
    groups: dict[tuple, list[str]] = {}
    for t in keyed:
        groups.setdefault((t.split("_", 1)[0], labels[t].content, labels[t].style), []).append(t)
    order = []
    for g in groups.values():
        rng.shuffle(g)
        order.extend(g)
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for i, t in enumerate(order):
        out[_DEAL.get(i % 20, "train")].append(t)
    return {s: sorted(v) for s, v in out.items()}


def write_splits(splits: dict[str, list[str]], folder: Path = SPLIT_DIR, overwrite: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for s in SPLITS:
        f = folder / f"{s}.txt"
        if f.exists() and not overwrite:
            raise FileExistsError(f"{f} exists: splits are fixed once; remove it deliberately to redo them")
    for s in SPLITS:
        (folder / f"{s}.txt").write_text("".join(t + "\n" for t in splits[s]), encoding="utf-8")


def read_splits(folder: Path = SPLIT_DIR) -> dict[str, str]:
    """take id -> split, from the lists in ``folder`` (empty when absent)."""
    out = {}
    for s in SPLITS:
        f = folder / f"{s}.txt"
        if f.exists():
            for line in f.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    out[line.strip()] = s
    return out


def split_of(take_id: str, fixed: dict[str, str]) -> str:
    """The take's split: from the fixed lists, else by a stable hash (10% test, 5% val)."""
    if take_id in fixed:
        return fixed[take_id]
    h = zlib.crc32(take_id.encode()) % 20
    return _DEAL.get(h, "train")
