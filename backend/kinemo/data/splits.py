"""Train/val/test splits by whole take, fixed once and kept in the repository.

``make_splits`` orders takes by (dataset, content, style) and, inside each
group, by a seeded shuffle, then deals them out systematically: of every 20
consecutive takes 2 go to test and 1 to val. Every content and every style
thus gets ~10% test and ~5% val, including groups too small to split alone.
Takes not in the lists (users' own data) are placed by a hash of their id.

A later source joins the lists with ``deal_groups`` + ``add_to_splits``: whole takes per
(content, style) group, ~12% test (at least one per group) and ~6% val (groups of 5+),
leaving every take already listed where it is. The dance-music takes were added so
(one take = one song, so test songs are never heard in training).
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


def deal_groups(labels: dict[str, Labels], seed: int = SEED) -> dict[str, str]:
    """take id -> split for a small source, per (content, style) group: a seeded shuffle, then
    max(1, round(12%)) to test and, for groups of 5 or more, max(1, round(6%)) to val."""
    groups: dict[tuple, list[str]] = {}
    for t in sorted(labels):
        groups.setdefault((labels[t].content or "", labels[t].style or ""), []).append(t)
    out = {}
    for key in sorted(groups):
        g = groups[key]
        random.Random(f"{seed}|{key}").shuffle(g)
        n_test = max(1, round(0.12 * len(g)))
        n_val = max(1, round(0.06 * len(g))) if len(g) >= 5 else 0
        for i, t in enumerate(g):
            out[t] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return out


def add_to_splits(assign: dict[str, str], folder: Path = SPLIT_DIR) -> int:
    """Add takes not listed yet to the lists (kept sorted); listed takes never move. Returns how many were added."""
    fixed = read_splits(folder)
    moved = [t for t, s in assign.items() if t in fixed and fixed[t] != s]
    if moved:
        raise ValueError(f"takes already in other splits (splits are fixed): {moved[:5]}")
    new = {t: s for t, s in assign.items() if t not in fixed}
    fixed.update(new)
    write_splits({s: sorted(t for t, v in fixed.items() if v == s) for s in SPLITS}, folder, overwrite=True)
    return len(new)


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
