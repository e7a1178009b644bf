"""``kinemo bench inbetween``: the LaFAN1 in-betweening protocol (Harvey et al. 2020) on our takes.

Windows: ``ctx + max(transitions) + 1`` frames (56 by default: 10 context frames,
up to 45 transition frames, 1 target frame), cut from every evaluated take at
offsets 0, stride, 2 stride, ... (stride 40 frames, LaFAN1's test offset);
takes shorter than a window give none. ``--max-windows`` keeps an evenly spaced
subset of that list (deterministic), so a model run stays a few minutes on a
laptop CPU; every method sees the same windows. For a transition of ``n``
frames the first ``ctx + n + 1`` frames of each window are used: the context
and target frames are keyed, the ``n`` frames between are to be filled (their
input values are garbage: identity rotations and a zero root, so a method
that reads them cannot score well).

Figures, on the transition frames (metrics in :mod:`kinemo.eval.metrics`):
L2P (aligned to the last context frame, divided per joint and coordinate by
the std of the same aligned positions over the training split's windows),
L2Q, NPSS (over the transition's global quaternions, flattened to 96
channels), foot skating (m/s, feet in contact by height), jerk at the seams
between keyed and filled frames (m/s^3), and the worst keyframe error (must be
0). Skating and jerk are also given for the ground truth, and seam jerk's
excess over it paired per window, with its standard error. The table also
breaks L2P down: each method's pose on the true root path and its root path
under the true pose (where the position error comes from).

``--keys-every`` measures the animator's layout instead: through a shot of up
to ``--shot`` frames (241 by default, longer than the model's window, so a
model fills it window by window), a single full-body key every ``n + 1``
frames, ``n`` from ``--transitions``; positions are aligned to the first key
and L2P's normaliser is taken from training shots of the same length. Skating
is measured from the first to the last filled frame (keys inside included, on
the model and the ground truth alike). Written to ``inbetween-every.json``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..core import rotations as R
from ..data.clip import FPS
from . import metrics as M
from ..errors import UserError
from .baselines import BASELINES, load_model
from .clips import EvalClip, add_corpus_arguments, bvh_dir_clips, corpus_clips, open_corpus
from .report import (MODEL_SPEC, add_output_arguments, fmt, global_transforms, pyplot, ratio, rest_foot_heights,
                     savefig, table, write_json)

METRICS = ("l2p", "l2q", "npss", "skate", "jerk")
# L2P of each half of a method's answer put on the true other half: its pose on the real root path, and its root
# path under the real pose. Where the error comes from; the two do not add up to l2p.
BREAKDOWN = ("l2p_pose", "l2p_root")
LOWER_IS_BETTER = set(METRICS)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", default=[], metavar="PATH",
                   help=f"a checkpoint to evaluate ({MODEL_SPEC}); repeatable")
    p.add_argument("--baselines", default="zero-velocity,interpolation",
                   help="comma-separated baselines (default: zero-velocity,interpolation)")
    add_corpus_arguments(p)
    p.add_argument("--bvh-dir", type=Path, help="evaluate on these BVH files (any humanoid) instead of a corpus split")
    p.add_argument("--context", type=int, default=10)
    p.add_argument("--transitions", default="5,15,30,45")
    p.add_argument("--stride", type=int, help="frames between window starts (default 40; with --keys-every the "
                                                "shot's length, so shots do not overlap)")
    p.add_argument("--max-windows", type=int, default=200,
                   help="evenly spaced subset of the windows, 0 = all (default 200)")
    p.add_argument("--keys-every", action="store_true",
                   help="a single key every n + 1 frames through a long shot (n from --transitions) instead of "
                        "LaFAN1's context and target frames")
    p.add_argument("--shot", type=int, default=241,
                   help="frames of a --keys-every shot, at most (default 241: 8 s at 30 fps)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, help="sampler steps for models (default: the model's)")
    p.add_argument("--device", default="cpu")
    add_output_arguments(p)


# --- windows -------------------------------------------------------------------------

def window_starts(lengths: list[int], length: int, stride: int) -> list[tuple[int, int]]:
    """(clip index, start frame) of every window, in clip order."""
    return [(c, s) for c, n in enumerate(lengths) for s in range(0, n - length + 1, stride)]


def subsample(items: list, max_items: int) -> list:
    """An evenly spaced, deterministic subset of at most ``max_items`` (0 = all)."""
    if max_items <= 0 or len(items) <= max_items:
        return list(items)
    idx = np.unique(np.linspace(0, len(items) - 1, max_items).round().astype(int))
    return [items[i] for i in idx]


def cut_windows(clips: list[EvalClip], length: int, stride: int, max_windows: int
                ) -> tuple[np.ndarray, np.ndarray, list]:
    """Window arrays: quats ``(N, L, 24, 4)``, root ``(N, L, 3)`` and their (take id, start)."""
    ws = subsample(window_starts([len(c.quats) for c in clips], length, stride), max_windows)
    if not ws:
        raise ValueError(f"no take is long enough for a {length}-frame window")
    q = np.stack([clips[c].quats[s:s + length] for c, s in ws]).astype(np.float64)
    r = np.stack([clips[c].root[s:s + length] for c, s in ws]).astype(np.float64)
    return q, r, [(clips[c].id, s) for c, s in ws]


def position_std(quats: np.ndarray, root: np.ndarray, align: int) -> np.ndarray:
    """Std of global positions aligned to frame ``align`` over windows ``(N, L, 24, 4)``/``(N, L, 3)`` ->
    ``(24, 3)``."""
    gq, gp = global_transforms(quats, root)
    pos, _ = M.align_to_frame(gp, gq, align)
    return pos.reshape(-1, 24, 3).std(axis=0)


def train_std(corpus, length: int, align: int, stride: int = 20, max_frames: int = 224_000) -> np.ndarray:
    """L2P normaliser from the training split (LaFAN1 uses its training windows, offset 20); at most
    ``max_frames`` frames of windows (4,000 of LaFAN1's 56)."""
    clips = corpus_clips(corpus, "train")
    q, r, _ = cut_windows(clips, length, stride, max(1, max_frames // length))
    return position_std(q, r, align)


# --- evaluation ----------------------------------------------------------------------

def key_layout(n: int, ctx: int, every: int = 0) -> tuple[np.ndarray, int]:
    """Keyed frames ``(L,)`` bool for ``n``-frame gaps and the frame positions are aligned to. LaFAN1
    (``every`` = 0): ``ctx`` context frames, ``n`` to fill, one target frame, aligned to the last context frame.
    Otherwise a single key every ``n + 1`` frames through at most ``every`` frames, aligned to the first key."""
    if not every:
        keys = np.zeros(ctx + n + 1, bool)
        keys[:ctx] = keys[-1] = True
        return keys, ctx - 1
    gaps = (every - 1) // (n + 1)
    if gaps < 1:
        raise ValueError(f"a {every}-frame shot has no room for a {n}-frame gap between two keys")
    keys = np.zeros(gaps * (n + 1) + 1, bool)
    keys[::n + 1] = True
    return keys, 0


def filled_span(keys: np.ndarray) -> slice:
    """From the first to the last unkeyed frame (``keys`` ``(L,)`` bool), keys between them included."""
    free = np.flatnonzero(~keys)
    return slice(free[0], free[-1] + 1)


def run_method(method, q: np.ndarray, r: np.ndarray, keys: np.ndarray, seed: int, steps: int | None,
               log=None) -> tuple[np.ndarray, np.ndarray, float]:
    """Fill every window: ``(N, L, 24, 4)``, ``(N, L, 3)`` inputs -> outputs and seconds per window."""
    q_in, r_in = q.copy(), r.copy()
    q_in[:, ~keys] = R.quat_identity()
    r_in[:, ~keys] = 0.0
    out_q, out_r = np.empty_like(q), np.empty_like(r)
    kw = {"seed": seed} if steps is None else {"seed": seed, "steps": steps}
    t0 = time.perf_counter()
    for i in range(len(q)):
        a, b = method.inbetween(q_in[i].astype(np.float32), r_in[i].astype(np.float32), keys, **kw)
        out_q[i], out_r[i] = a, b
        if log and (i + 1) % 50 == 0 and time.perf_counter() - t0 > 10:  # only slow methods report progress
            log(f"    {i + 1}/{len(q)} windows, {(time.perf_counter() - t0) / (i + 1):.3f} s each")
    return out_q, out_r, (time.perf_counter() - t0) / len(q)


def aligned_l2p(quats, root, gp, trans: np.ndarray, align: int, std: np.ndarray) -> float:
    """L2P of motions ``(N, L, 24, 4)``/``(N, L, 3)`` against aligned true positions ``gp (N, L, 24, 3)``."""
    gq, gpos = global_transforms(quats, root)
    p, _ = M.align_to_frame(gpos, gq, align)
    return M.l2p(p[:, trans], gp[:, trans], std)


def score(pred_q, pred_r, gt_q, gt_r, keys: np.ndarray, align: int, std: np.ndarray) -> dict:
    """All figures of one method on one transition length. Arrays ``(N, L, ...)``; keys ``(L,)``; positions
    aligned to frame ``align``."""
    pgq, pgp = global_transforms(pred_q, pred_r)
    ggq, ggp = global_transforms(gt_q, gt_r)
    trans, span = ~keys, filled_span(keys)
    pp, pq = M.align_to_frame(pgp, pgq, align)
    gp, gq = M.align_to_frame(ggp, ggq, align)
    # NPSS needs sign-continuous sequences; both start from the same (keyed) context frames
    cq_p = R.quat_continuous(R.quat_canonical(pq), axis=1)[:, trans]
    cq_g = R.quat_continuous(R.quat_canonical(gq), axis=1)[:, trans]
    N = len(pred_q)
    rest = rest_foot_heights()
    skate = [M.foot_skating(pgp[i][span], M.contacts_by_height(pgp[i][span], rest), FPS) for i in range(N)]
    key_pos = [M.keyframe_error(pgp[i], ggp[i], pred_q[i], gt_q[i], keys) for i in range(N)]
    jerk = seam_jerks(pgp, keys)
    return {
        "l2p": M.l2p(pp[:, trans], gp[:, trans], std),
        "l2p_pose": aligned_l2p(pred_q, gt_r, gp, trans, align, std),
        "l2p_root": aligned_l2p(gt_q, pred_r, gp, trans, align, std),
        "l2q": M.l2q(pq[:, trans], gq[:, trans]),
        "npss": M.npss(cq_p.reshape(N, cq_p.shape[1], -1), cq_g.reshape(N, cq_g.shape[1], -1)),
        "skate": float(np.nanmean(skate)) if np.isfinite(skate).any() else float("nan"),
        "jerk": float(np.mean(jerk)),
        **paired_excess(jerk, seam_jerks(ggp, keys)),
        "key_pos_m": float(max(k[0] for k in key_pos)),
        "key_rot_rad": float(max(k[1] for k in key_pos)),
    }


def seam_jerks(positions: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Seam jerk (m/s^3) of each window: positions ``(N, L, 24, 3)``, keys ``(L,)`` -> ``(N,)``."""
    return np.array([M.boundary_jerk(p, keys, FPS) for p in positions])


def paired_excess(method: np.ndarray, real: np.ndarray) -> dict:
    """How far a method's seam jerk ``(N,)`` lies above the real motion's on the same windows ``(N,)``: the mean
    of the per-window differences and its standard error. "No pop at keys" asks for the mean at or below 0; the
    paired difference is far less noisy than the two means apart, since a window's own speed moves both."""
    d = method - real
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return {"jerk_over_real": float(d.mean()), "jerk_over_real_se": se}


def ground_truth_figures(gt_q, gt_r, keys: np.ndarray) -> dict:
    """Skating and seam jerk of the real motion on the same frames (the floor a method can reach)."""
    _, ggp = global_transforms(gt_q, gt_r)
    span = filled_span(keys)
    rest = rest_foot_heights()
    skate = [M.foot_skating(p[span], M.contacts_by_height(p[span], rest), FPS) for p in ggp]
    return {"skate": float(np.nanmean(skate)) if np.isfinite(skate).any() else float("nan"),
            "jerk": float(np.mean(seam_jerks(ggp, keys)))}


def evaluate(methods: dict, clips: list[EvalClip], std: np.ndarray, ctx: int = 10,
             transitions: tuple[int, ...] = (5, 15, 30, 45), stride: int = 40, max_windows: int = 200,
             seed: int = 0, steps: int | None = None, log=print, every: int = 0) -> dict:
    """Every method on the same windows (``every``: a key every n + 1 frames through shots of at most that
    many frames, :func:`key_layout`). Returns the result dict written to JSON."""
    layouts = {n: key_layout(n, ctx, every) for n in transitions}
    length = max(len(k) for k, _ in layouts.values())
    q, r, where = cut_windows(clips, length, stride, max_windows)
    res: dict = {"protocol": {"context": ctx, "transitions": list(transitions), "window": length, "stride": stride,
                              "keys_every": bool(every),
                              "windows": len(q), "takes": len({w[0] for w in where}), "seed": seed,
                              "steps": steps, "fps": FPS},
                 "methods": {}, "ground_truth": {}, "seconds_per_window": {}}
    for n in transitions:
        keys, align = layouts[n]
        L = len(keys)
        res["ground_truth"][str(n)] = ground_truth_figures(q[:, :L], r[:, :L], keys)
        for name, method in methods.items():
            log(f"  {name}: transition {n}, {len(q)} windows")
            pq, pr, sec = run_method(method, q[:, :L], r[:, :L], keys, seed, steps, log)
            res["methods"].setdefault(name, {})[str(n)] = score(pq, pr, q[:, :L], r[:, :L], keys, align, std)
            res["seconds_per_window"].setdefault(name, {})[str(n)] = sec
    return res


# --- output --------------------------------------------------------------------------

def format_table(res: dict, baselines: list[str]) -> str:
    """One row per (figure, transition), one column per method; baselines' ratios next to the others."""
    names = list(res["methods"])
    header = ["figure", "n"] + names + ["ground truth"]
    rows = []
    for m in METRICS + BREAKDOWN + ("key_pos_m",):
        for n in map(str, res["protocol"]["transitions"]):
            row = [m, n]
            for name in names:
                v = res["methods"][name][n][m]
                refs = [ratio(v, res["methods"][b][n][m]) for b in baselines if b != name and b in res["methods"]]
                row.append(fmt(v) + (f" ({', '.join(refs)})" if refs else ""))
            row.append(fmt(res["ground_truth"][n].get(m, float("nan"))))
            rows.append(row)
    for n in map(str, res["protocol"]["transitions"]):
        rows.append(["jerk - real", n] + [f"{fmt(res['methods'][name][n]['jerk_over_real'])} "
                                          f"± {fmt(res['methods'][name][n]['jerk_over_real_se'])}"
                                          for name in names] + ["0"])
    note = ("jerk - real: seam jerk minus the real motion's, paired per window, ± its standard error; "
            "ratios: value / baseline (" + ", ".join(b for b in baselines if b in res["methods"]) +
            "), lower is better for every figure")
    return table(header, rows) + "\n" + note


def plot(res: dict, out: Path, stem: str) -> Path:
    plt = pyplot()
    ns = res["protocol"]["transitions"]
    fig, axes = plt.subplots(1, 5, figsize=(20, 3.6))
    for ax, m in zip(axes, METRICS):
        for name, per_n in res["methods"].items():
            ax.plot(ns, [per_n[str(n)][m] for n in ns], "o-", label=name)
        if m in ("skate", "jerk"):
            ax.plot(ns, [res["ground_truth"][str(n)][m] for n in ns], "k--", label="ground truth")
        ax.set_title(m.upper() if m in ("l2p", "l2q", "npss") else
                     {"skate": "foot skating (m/s)", "jerk": "seam jerk (m/s³)"}[m])
        ax.set_xlabel("frames between keys" if res["protocol"]["keys_every"] else "transition frames")
        ax.set_xticks(ns)
        if m == "jerk":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    p = res["protocol"]
    fig.suptitle(f"in-betweening, {p['windows']} windows from {p['takes']} takes ({res.get('data', '')})")
    return savefig(fig, out, stem)


def run(args: argparse.Namespace) -> int:
    ctx = args.context
    transitions = tuple(int(x) for x in args.transitions.split(","))
    if ctx < 2 or min(transitions) < 1:
        raise ValueError("--context must be >= 2 and every transition >= 1 frame")
    baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    for b in baselines:
        if b not in BASELINES:
            raise ValueError(f"unknown baseline {b!r}; known: {', '.join(BASELINES)}")
    methods = {b: BASELINES[b]() for b in baselines}
    for spec in args.model:
        methods[f"model:{Path(spec).name}"] = load_model(spec, args.device)
    if not methods:
        raise ValueError("nothing to evaluate: give --model and/or --baselines")
    every = args.shot if args.keys_every else 0
    layouts = [key_layout(n, ctx, every) for n in transitions]
    length, align = max(len(k) for k, _ in layouts), layouts[0][1]
    stride = args.stride or (length if every else 40)
    corpus = None
    try:
        corpus = open_corpus(args.corpus)
    except Exception as e:  # noqa: BLE001 - a BVH folder can be evaluated without a corpus
        if args.bvh_dir is None:
            raise
        print(f"no corpus ({e}); L2P is normalised by the evaluated set's own std")
    if args.bvh_dir is not None:
        clips, data = bvh_dir_clips(args.bvh_dir), f"BVH files in {args.bvh_dir}"
    else:
        clips, data = corpus_clips(corpus, args.split), f"{args.split} split of {corpus.path.name}"
    t0 = time.time()
    std = None
    if corpus is not None:
        try:
            std, std_from = train_std(corpus, length, align), "train split"
        except (UserError, ValueError) as e:
            print(f"no training windows ({e}); L2P is normalised by the evaluated set's own std")
    if std is None:
        q, r, _ = cut_windows(clips, length, stride, 0)
        std, std_from = position_std(q, r, align), "evaluated windows"
    print(f"kinemo bench inbetween: {len(clips)} takes ({data}); methods: {', '.join(methods)}")
    res = evaluate(methods, clips, std, ctx, transitions, stride, args.max_windows, args.seed, args.steps,
                   every=every)
    res["data"] = data
    res["l2p_std_from"] = std_from
    res["wall_s"] = time.time() - t0
    print(format_table(res, baselines))
    stem = "inbetween-every" if every else "inbetween"
    js = write_json(args.out, stem, res)
    png = plot(res, args.out, stem)
    print(f"wrote {js} and {png}")
    return 0
