"""``kinemo bench dance``: music-to-dance figures on the corpus' dance takes.

Reads the takes of the chosen split whose content is ``"dance"`` and their
music features (``Corpus.music(i)``, per-frame features at 30 fps from
:mod:`kinemo.data.music`); when the corpus has none it says so and writes
nothing. Rows, each a set of (motion, music it is scored against):

- ``real, own music``: the real dances against their own music;
- ``real, other music``: the same dances against another take's music (a
  fixed derangement): what beat alignment an unrelated song gives;
- ``model, own music``: the model's dance to each take's music, scored against it;
- ``model, shuffled music``: the model's dance to *another* take's music,
  scored against the take's own: if this scores as high as the row above,
  the alignment is not coming from the music.

Figures per row: both Beat Align Score variants (AIST++ paper: over kinematic
beats; Bailando/EDGE code: over music beats; sigma 3 frames at 30 fps), each
with its chance level from circularly time-shifted music beats
(:func:`kinemo.eval.metrics.beat_align_chance`); EDGE's PFC; diversity
(mean distance between clips' kinetic features, :func:`kinemo.eval.metrics.kinetic_features`,
standardised by the real dances' mean and std as Bailando does); foot skating
(m/s, feet in contact by height); jerk (mean over frames and joints, m/s^3: frame-to-frame
jitter, and legs torn by the foot lock).

Music beats come from the features' beat channel (``kinemo.data.music.BEAT_COLUMN``): see
:func:`music_beat_frames`.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..data.clip import FPS
from ..data.music import BEAT_COLUMN
from . import metrics as M
from .baselines import load_model
from .bench_inbetween import subsample
from .clips import open_corpus
from .report import (MODEL_SPEC, add_output_arguments, fmt, global_transforms, pyplot, rest_foot_heights, savefig,
                     table, write_json)

SIGMA = 3.0
FIGURES = ("bas_kinematic", "bas_kinematic_chance", "bas_music", "bas_music_chance", "pfc", "diversity", "skate",
           "jerk")


def music_beat_frames(music) -> np.ndarray:
    """Frames holding a music beat.

    Accepts a :class:`kinemo.data.music.MusicFeatures` (its ``beat_frames``) or the
    ``(T, M)`` feature matrix, whose beat channel ``kinemo.data.music.BEAT_COLUMN`` is 1 on the frame
    nearest each tracked beat, else 0.
    """
    if hasattr(music, "beat_frames"):
        return np.asarray(music.beat_frames, int)
    m = np.asarray(getattr(music, "matrix", music))
    if m.ndim != 2 or m.shape[1] <= BEAT_COLUMN:
        raise ValueError(f"music features must be (T, M) with a beat column {BEAT_COLUMN}, got {m.shape}")
    return np.flatnonzero(m[:, BEAT_COLUMN] > 0.5)


def music_matrix(music) -> np.ndarray:
    return np.asarray(getattr(music, "matrix", music), np.float32)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="PATH", help=f"checkpoint to evaluate ({MODEL_SPEC})")
    p.add_argument("--corpus", type=Path, help="corpus folder (default: the cache's current corpus)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--max-takes", type=int, default=40, help="dance takes for the model rows, 0 = all (default 40)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, help="sampler steps (default: the model's)")
    p.add_argument("--text", help="a caption every model dance is also steered by (e.g. a walk: do the beats "
                                  "reach motions unlike the paired dances?)")
    p.add_argument("--device", default="cpu")
    add_output_arguments(p)


def derangement(n: int, seed: int = 0) -> np.ndarray:
    """A fixed permutation with no fixed point (a cyclic shift of a shuffled order)."""
    if n < 2:
        raise ValueError("shuffling music needs at least 2 takes")
    order = np.random.default_rng(seed).permutation(n)
    out = np.empty(n, int)
    out[order] = np.roll(order, 1)
    return out


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Crop or tile rows of ``x`` to ``n``."""
    reps = -(-n // len(x))
    return np.concatenate([x] * reps)[:n]


def score_rows(motions: list[np.ndarray], beats: list[np.ndarray], norm: tuple[np.ndarray, np.ndarray]) -> dict:
    """motions: ``(T_i, 24, 3)`` positions; beats: music beat frames to score each against."""
    rest = rest_foot_heights()
    per = {k: [] for k in FIGURES if k != "diversity"}   # diversity is over the set, not per clip
    feats = []
    for p, b in zip(motions, beats):
        b = b[b < len(p)]
        kin = M.kinematic_beats(p)
        s, c = M.bas_both(kin, b, SIGMA), M.beat_align_chance(kin, b, len(p), SIGMA)
        per["bas_kinematic"].append(s["kinematic"])
        per["bas_music"].append(s["music"])
        per["bas_kinematic_chance"].append(c["kinematic"])
        per["bas_music_chance"].append(c["music"])
        per["pfc"].append(M.pfc(p))
        per["skate"].append(M.foot_skating(p, M.contacts_by_height(p, rest), FPS))
        per["jerk"].append(float(M.jerk(p, FPS).mean()))
        feats.append(M.kinetic_features(p))
    out = {k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for k, v in per.items()}
    out["diversity"] = M.diversity((np.stack(feats) - norm[0]) / norm[1])
    out["clips"] = len(motions)
    return out


def format_table(res: dict) -> str:
    header = ["row", "clips"] + list(FIGURES)
    rows = [[n, str(r["clips"])] + [fmt(r[m], 3) for m in FIGURES] for n, r in res["rows"].items()]
    return (table(header, rows) + "\nBAS: higher is better, compare with its chance column; PFC and skating: lower; "
            "diversity and jerk (mean over joints, m/s^3): closest to the real dances.")


def plot(res: dict, out: Path) -> Path:
    plt = pyplot()
    names = list(res["rows"])
    fig, axes = plt.subplots(1, 6, figsize=(21, 3.6))
    panels = [("bas_kinematic", "bas_kinematic_chance", "BAS (AIST++: kinematic beats)"),
              ("bas_music", "bas_music_chance", "BAS (Bailando/EDGE: music beats)"),
              ("pfc", None, "PFC"), ("diversity", None, "diversity"), ("skate", None, "foot skating (m/s)"),
              ("jerk", None, "jerk (m/s^3)")]
    x = np.arange(len(names))
    for ax, (m, chance, title) in zip(axes, panels):
        ax.bar(x, [res["rows"][n][m] or 0 for n in names], color=[f"C{i}" for i in range(len(names))])
        if chance:
            ax.plot(x, [res["rows"][n][chance] or 0 for n in names], "k_", markersize=30, label="chance")
            ax.legend(fontsize=8)
        ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
        ax.set_title(title)
        ax.grid(alpha=0.3, axis="y")
    return savefig(fig, out, "dance")


def run(args: argparse.Namespace) -> int:
    corpus = open_corpus(args.corpus)
    dances = [i for i in corpus.split(args.split) if corpus.takes[i].get("content") == "dance"]
    if not dances:
        total = sum(t.get("content") == "dance" for t in corpus.takes)
        print(f"kinemo bench dance: skipped: the corpus at {corpus.path} has no dance takes in the {args.split!r} "
              f"split ({total} in all); build a corpus with the dance-music set to run it")
        return 0
    if not hasattr(corpus, "music"):
        print("kinemo bench dance: skipped: this corpus version has dance takes but no music features (Corpus.music)")
        return 0
    t0 = time.time()
    real = [np.asarray(corpus.clip(i).positions, np.float64) for i in dances]
    music = [corpus.music(i) for i in dances]
    beats = [music_beat_frames(m) for m in music]
    feats = np.stack([M.kinetic_features(p) for p in real])
    norm = (feats.mean(0), np.maximum(feats.std(0), 1e-6))
    other = derangement(len(dances), args.seed) if len(dances) > 1 else None
    rows = {"real, own music": score_rows(real, beats, norm)}
    if other is not None:
        rows["real, other music"] = score_rows(real, [beats[k] for k in other], norm)
    model_note = "no model given (--model PATH): real dances only"
    if args.model:
        gen = load_model(args.model, args.device)
        kw = {"seed": args.seed} if args.steps is None else {"seed": args.seed, "steps": args.steps}
        sub = subsample(list(range(len(dances))), args.max_takes)
        shuffled = [other[k] for k in sub] if other is not None else None
        for name, src in (("model, own music", sub), ("model, shuffled music", shuffled)):
            if src is None:
                continue
            print(f"  {name}: {len(sub)} dances")
            motions = []
            for k, s in zip(sub, src):
                mm = fit_length(music_matrix(music[s]), len(real[k]))
                q, r = gen.dance(mm, text=args.text, **kw)
                motions.append(global_transforms(q, r)[1])
            rows[name] = score_rows(motions, [beats[k] for k in sub], norm)
        model_note = f"model {args.model}" + (f", text {args.text!r}" if args.text else "")
    res = {"rows": rows, "sigma_frames": SIGMA, "split": args.split, "dances": len(dances), "model": model_note,
           "wall_s": time.time() - t0}
    print(f"kinemo bench dance: {len(dances)} dance takes ({args.split}); {model_note}")
    print(format_table(res))
    js, png = write_json(args.out, "dance", res), plot(res, args.out)
    print(f"wrote {js} and {png}")
    return 0
