"""``kinemo bench long``: does a long motion from text stay a plausible body?

Free motion longer than the model's window is stitched from independent
windows with in-betweened joins (kinemo.model.stitch); when each window
continued the one before, a small bias per window piled up over a minute into
crossed legs. Per caption, ``--seconds`` of motion are
generated and cut into ``--segment``-second pieces; per piece:

- crossed legs: the share of frames whose knees have swapped sides
  (:func:`kinemo.eval.metrics.crossed_legs`), against the same share over the
  real takes of ``--split`` (default test);
- ankle span: the mean distance between the ankles across the body (m,
  :func:`kinemo.eval.metrics.ankle_span`), the real takes' mean beside it.

and per caption, over the whole motion, the seam jerk at its joins (the
in-betweening bench's figure, :func:`kinemo.eval.metrics.boundary_jerk`, with
the stitched windows' frames as the keys: a pop where a window meets a join
shows here), against the same largest-joint jerk over every frame of the real
takes.

Captions: ``--text`` (repeatable), else the first caption of ``--captions``
evenly spaced takes of the split.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from ..data.clip import FPS
from . import metrics as M
from .baselines import load_model
from .bench_inbetween import subsample
from .clips import add_corpus_arguments, corpus_clips, open_corpus
from .report import MODEL_SPEC, add_output_arguments, fmt, global_transforms, pyplot, savefig, table, write_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="PATH", default="shipped", help=f"checkpoint to evaluate ({MODEL_SPEC})")
    p.add_argument("--text", action="append", default=[], help="a caption; repeatable (default: captions of the split)")
    p.add_argument("--captions", type=int, default=4, help="captions of the split when no --text (default 4)")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--segment", type=float, default=10.0, help="seconds per reported piece (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    add_corpus_arguments(p)
    add_output_arguments(p)


def pieces(values: np.ndarray, frames: int) -> list[float]:
    """Means of consecutive ``frames``-long pieces of ``(T,)`` values (the last may be shorter)."""
    return [float(values[s:s + frames].mean()) for s in range(0, len(values), frames)]


def run(args: argparse.Namespace) -> int:
    if args.seconds <= 0 or args.segment <= 0:
        raise ValueError("--seconds and --segment must be positive")
    t0 = time.time()
    corpus = open_corpus(args.corpus)
    real = [c.positions for c in corpus_clips(corpus, args.split)]
    texts = list(args.text)
    if not texts:
        texts = [corpus.takes[i]["captions"][0] for i in subsample(corpus.split(args.split), args.captions)]
    gen = load_model(args.model, args.device)
    frames, seg = int(round(args.seconds * FPS)), max(1, int(round(args.segment * FPS)))
    rows: dict[str, dict] = {}
    for text in texts:
        q, r = gen.generate(text, frames, seed=args.seed)
        p = global_transforms(q, r)[1]
        in_window = np.zeros(frames, bool)
        for w in gen.free_windows(frames):
            in_window[w.start:w.stop] = True
        rows[text] = {"crossed_legs": pieces(M.crossed_legs(p).astype(float), seg),
                      "ankle_span": pieces(M.ankle_span(p), seg),
                      "join_jerk": M.boundary_jerk(p, in_window, FPS)}    # NaN: one window, no join
    res = {"model": args.model, "seconds": args.seconds, "segment_s": args.segment, "seed": args.seed,
           "captions": rows, "split": args.split,
           "real": {"crossed_legs": float(np.mean(np.concatenate([M.crossed_legs(p) for p in real]))),
                    "ankle_span": float(np.mean(np.concatenate([M.ankle_span(p) for p in real]))),
                    "jerk": float(np.mean(np.concatenate([M.jerk(p, FPS).max(1) for p in real]))),
                    "takes": len(real)},
           "wall_s": time.time() - t0}
    print(format_table(res))
    js, png = write_json(args.out, "long", res), plot(res, args.out)
    print(f"wrote {js} and {png}")
    return 0


def format_table(res: dict) -> str:
    n = len(next(iter(res["captions"].values()))["crossed_legs"])
    seg = res["segment_s"]
    header = ["caption", "figure"] + [f"{k * seg:g}-{(k + 1) * seg:g} s" for k in range(n)] + [f"real {res['split']}"]
    rows = []
    for text, v in res["captions"].items():
        for fig in ("crossed_legs", "ankle_span"):
            rows.append([text[:40], fig] + [fmt(x) for x in v[fig]] + [fmt(res["real"][fig])])
    joins = [[text[:40], fmt(v["join_jerk"]), fmt(res["real"]["jerk"])] for text, v in res["captions"].items()]
    return (table(header, rows) + "\n\n" +
            table(["caption", "seam jerk at the joins (m/s^3)", f"real {res['split']}, every frame"], joins))


def plot(res: dict, out):
    plt = pyplot()
    fig, axs = plt.subplots(1, 2, figsize=(10, 3.6))
    seg = res["segment_s"]
    for ax, name in zip(axs, ("crossed_legs", "ankle_span")):
        for text, v in res["captions"].items():
            ax.plot(seg * (np.arange(len(v[name])) + 0.5), v[name], marker="o", label=text[:30])
        ax.axhline(res["real"][name], color="k", ls="--", label=f"real {res['split']} takes")
        ax.set_xlabel("seconds into the motion")
        ax.set_title({"crossed_legs": "share of frames with crossed legs", "ankle_span": "ankle span (m)"}[name])
        ax.grid(alpha=0.3)
    axs[0].legend(fontsize=7)
    fig.suptitle(f"{res['seconds']:g} s from text, model {res['model']}")
    return savefig(fig, out, "long")
