"""``kinemo bench text``: text-to-motion by the ACTOR / MDM action-to-motion protocol.

A motion classifier and feature extractor (:mod:`kinemo.eval.classifier`) is
trained once on the training split's real clips. Then, per row:

- recognition accuracy: the classifier's content and style against the labels
  of the test take whose caption was used;
- FID: Fréchet distance between the row's features and the real test clips';
- diversity: mean feature distance between distinct clips of the row;
- root and body speed (:func:`kinemo.eval.metrics.mean_speeds`): how far the
  clips travel and how much their limbs move, in m/s; closest to real is best;
- foot skating (m/s, feet in contact by height, as the dance bench measures it)
  and jerk (mean over frames and joints, m/s^3): what the sampler's dynamics
  guidance is meant to lower (``MODEL@dynamics_guidance=0`` is its ablation);
- implausible: the share of clips with a moment no body could perform, a
  limb flung or the knees crossed (:func:`kinemo.core.plausible.implausibility`
  over 1; ``MODEL@retries=0`` is the ablation of drawing such windows again).

A second pair of tables breaks accuracy down by content and by style label
(:func:`kinemo.eval.metrics.per_label`): each model row's accuracy and root
speed per label next to the real clips', and the label it is most often
taken for (a wave read as a raised hand, a walk as a turn).

Rows:

- ``real test``: the real test clips themselves (accuracy of the classifier,
  diversity of the data); its FID is real val vs real test;
- ``real val, N clips``: N evenly spaced real val clips, N being the generated
  rows' count, scored like them (FID against every real test clip). FID is
  biased upwards by few samples (a 128-d covariance from 100 clips), so this,
  not the row above, is the floor a generator can reach at that count;
- ``random training clip``: for each test take, a training clip drawn at random
  (fixed seed): a retrieval baseline that ignores the text;
- ``model, test captions`` / ``model, held-out paraphrases``: per test take, one
  motion of the take's length generated from its first training-style caption
  (``captions[0]``) and from its first held-out paraphrase (``eval_captions[0]``),
  which the model never saw in training.

``--seeds N`` generates the model rows N times (seeds ``--seed`` onwards) and
reports each figure's mean over the seeds with its range: one seed's figures
move a lot (on the 156 val captions, four draws of the shipped model gave
content accuracy 0.51-0.57 and FID 1326-2022), so a single draw cannot tell
two samplers apart. The per-label tables then pool every seed's clips.

``--max-takes`` keeps an evenly spaced subset of the test takes for the
generated rows (the real rows always use every test take). ``--split val``
evaluates on the val takes instead (the roles of val and test swapped in
every row), for choosing settings without looking at the test split.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..core.plausible import implausibility
from ..data.clip import FPS
from ..errors import UserError
from . import metrics as M
from .baselines import load_model
from .bench_inbetween import subsample
from .classifier import ClassifierConfig, load_or_train
from .clips import open_corpus
from .report import (MODEL_SPEC, add_output_arguments, fmt, global_transforms, pyplot, ratio, rest_foot_heights,
                     savefig, table, write_json)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="PATH", help=f"checkpoint to evaluate ({MODEL_SPEC})")
    p.add_argument("--corpus", type=Path, help="corpus folder (default: the cache's current corpus)")
    p.add_argument("--split", choices=SPLITS, default="test",
                   help="takes to evaluate on (default test; val for choosing settings)")
    p.add_argument("--max-takes", type=int, default=100,
                   help="takes to generate from, evenly spaced, 0 = all (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=1,
                   help="draw the model rows with this many seeds (--seed onwards); figures are their mean and "
                        "range (default 1)")
    p.add_argument("--steps", type=int, help="sampler steps (default: the model's)")
    p.add_argument("--device", default="cpu")
    add_output_arguments(p)


def row(clf, positions: list[np.ndarray], contents: list[str], styles: list[str], ref: np.ndarray | None,
        fid_ref: np.ndarray | None = None) -> dict:
    f, c, s = clf.predict(positions)
    speeds = np.array([M.mean_speeds(p) for p in positions])
    rest = rest_foot_heights()
    # a clip whose feet never touch the floor has no skating (NaN): left out of the mean
    skating = np.array([M.foot_skating(p, M.contacts_by_height(p, rest), FPS) for p in positions])
    return {"clips": len(positions),
            "content_accuracy": M.accuracy(np.array(c), np.array(contents)),
            "style_accuracy": M.accuracy(np.array(s), np.array(styles)),
            "fid": M.frechet_distance(fid_ref if fid_ref is not None else f, ref) if ref is not None else float("nan"),
            "diversity": M.diversity(f),
            "root_speed": float(speeds[:, 0].mean()), "body_speed": float(speeds[:, 1].mean()),
            "skating": float(np.nanmean(skating)) if np.isfinite(skating).any() else float("nan"),
            "jerk": float(np.mean([M.jerk(p, FPS).mean() for p in positions])),
            "implausible": float(np.mean([implausibility(p, FPS) > 1.0 for p in positions])),
            "per_content": M.per_label(c, contents, speeds[:, 0]),
            "per_style": M.per_label(s, styles, speeds[:, 0])}


def over_seeds(rows: list[dict], pooled: dict) -> dict:
    """One model row from the same clips drawn with several seeds: each figure's mean over ``rows`` (one per
    seed), its ``spread`` ``[min, max]``, and the per-label breakdown of ``pooled`` (every seed's clips)."""
    out = {"clips": rows[0]["clips"], "seeds": len(rows)}
    out.update({m: float(np.mean([r[m] for r in rows])) for m in FIGURES})
    out["spread"] = {m: [float(min(r[m] for r in rows)), float(max(r[m] for r in rows))] for m in FIGURES}
    out.update({k: pooled[k] for k in ("per_content", "per_style")})
    return out


def generated_positions(gen, texts: list[str], frames: list[int], seed: int, steps: int | None, log) -> list:
    out, t0 = [], time.perf_counter()
    kw = {"seed": seed} if steps is None else {"seed": seed, "steps": steps}
    for i, (text, n) in enumerate(zip(texts, frames)):
        q, r = gen.generate(text, int(n), **kw)
        out.append(global_transforms(q, r)[1])
        if (i + 1) % 20 == 0:
            log(f"    {i + 1}/{len(texts)} generated, {(time.perf_counter() - t0) / (i + 1):.2f} s each")
    return out


FIGURES = ("content_accuracy", "style_accuracy", "fid", "diversity", "root_speed", "body_speed", "skating", "jerk",
           "implausible")
SPLITS = ("test", "val")     # a split is evaluated; the other is its FID reference and floor


def other_split(split: str) -> str:
    """The split the evaluated one's FID and floor rows compare against."""
    return next(s for s in SPLITS if s != split)


def is_real(name: str) -> bool:
    """Rows without a model: the real clips, the floor at N clips, the retrieval baseline."""
    return name.startswith("real ") or name == "random training clip"


def format_table(res: dict) -> str:
    rows_ = res["rows"]
    ref = rows_.get("random training clip")
    split = res.get("split", "test")
    other = other_split(split)
    real_name = f"real {split}"
    real = rows_[real_name]
    header = ["row", "clips"] + list(FIGURES)
    out = []
    for name, r in rows_.items():
        cells = [name, str(r["clips"])]
        for m in FIGURES:
            v = r.get(m, float("nan"))     # results written before a figure was added lack it
            extra = [ratio(v, real.get(m)) + " real"] if name != real_name else []
            if ref is not None and not is_real(name):
                extra.append(ratio(v, ref.get(m)) + " random")
            lo_hi = r.get("spread", {}).get(m)
            spread = f" [{fmt(lo_hi[0])}-{fmt(lo_hi[1])}]" if lo_hi else ""
            cells.append(fmt(v) + spread + (f" ({', '.join(extra)})" if extra else ""))
        out.append(cells)
    return (table(header, out) + "\naccuracy: higher is better; FID and skating (m/s): lower; diversity, speeds (m/s)"
            f" and jerk (m/s^3): closest to {real_name} is best; implausible: the share of clips with a moment no"
            f" body could perform (a flung limb or crossed knees, kinemo.core.plausible).\n{real_name} FID is every"
            f" real {other} clip vs {real_name}; 'real {other}, N clips' is the FID floor at the generated rows' count."
            + (f"\nModel rows: mean over {len(res['seeds'])} seeds [lowest-highest]; per-label tables pool every seed's"
               " clips." if len(res.get("seeds", [])) > 1 else "")
            + format_labels(res, real_name, "per_content", "content")
            + format_labels(res, real_name, "per_style", "style"))


def format_labels(res: dict, real_name: str, key: str, what: str) -> str:
    """Per-label accuracy of the real clips and of each model row, with the model's root speed against the real
    clips' and the label it was most often taken for: which captions the model fails, and how. Empty without
    model rows (or without the breakdown, in results written before it)."""
    rows_ = res["rows"]
    real = rows_[real_name].get(key)
    models = [n for n in rows_ if not is_real(n) and key in rows_[n]]
    if real is None or not models:
        return ""
    # "model, test captions" -> "captions", "model, held-out paraphrases" -> "paraphrases"
    header = [what, "real acc", "real root"] + [f"{n.split()[-1]} {h}" for n in models
                                                 for h in ("n", "acc", "root", "taken for")]
    out = []
    # every model row is generated from the same takes, a subset of the real row's: the labels are shared
    for label in rows_[models[0]][key]:
        cells = [label, fmt(real[label]["accuracy"], 2), fmt(real[label]["root_speed"], 2)]
        for n in models:
            m = rows_[n][key][label]
            cells += [str(m["clips"]), fmt(m["accuracy"], 2), fmt(m["root_speed"], 2), m["mistaken_for"] or "-"]
        out.append(cells)
    return f"\n\nby {what} (accuracy, root speed m/s; 'taken for': the model's most common wrong {what}):\n" + \
        table(header, out)


def plot(res: dict, out: Path) -> Path:
    plt = pyplot()
    names = list(res["rows"])
    fig, axes = plt.subplots(1, len(FIGURES), figsize=(4 * len(FIGURES), 3.6))
    for ax, m in zip(axes, FIGURES):
        vals = [res["rows"][n].get(m) or 0 for n in names]
        # a row drawn with several seeds shows its range
        lo_hi = [res["rows"][n].get("spread", {}).get(m, [v, v]) for n, v in zip(names, vals)]
        err = np.abs(np.array([[v - lo for v, (lo, _) in zip(vals, lo_hi)],
                               [hi - v for v, (_, hi) in zip(vals, lo_hi)]]))
        ax.bar(range(len(names)), vals, yerr=err, capsize=3, color=[f"C{i}" for i in range(len(names))])
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
        ax.set_title(m.replace("_", " "))
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("text-to-motion, classifier trained on the training split")
    return savefig(fig, out, "text")


def run(args: argparse.Namespace) -> int:
    if args.seeds < 1:
        raise UserError(f"--seeds must be at least 1; got {args.seeds}")
    corpus = open_corpus(args.corpus)
    t0 = time.time()
    clf = load_or_train(corpus, ClassifierConfig())
    split = args.split
    other = other_split(split)
    takes = corpus.split(split)      # the evaluated takes ("test" unless --split val)
    others = corpus.split(other)
    pos = lambda ix: [np.asarray(corpus.clip(i).positions) for i in ix]  # noqa: E731
    labels = lambda ix, k: [corpus.takes[i][k] for i in ix]  # noqa: E731
    real_pos = pos(takes)
    real_feat = clf.features(real_pos)
    rows: dict[str, dict] = {}
    rows[f"real {split}"] = row(clf, real_pos, labels(takes, "content"), labels(takes, "style"), real_feat,
                             fid_ref=clf.features(pos(others)) if len(others) >= 2 else None)
    rng = np.random.default_rng(args.seed)
    train = corpus.split("train")
    picks = [train[k] for k in rng.integers(0, len(train), len(takes))]
    rows["random training clip"] = row(clf, pos(picks), labels(takes, "content"), labels(takes, "style"), real_feat)
    model_note = "no model given (--model PATH): real data and the retrieval baseline only"
    seeds = list(range(args.seed, args.seed + args.seeds))
    if args.model:
        gen = load_model(args.model, args.device)
        sub = subsample(takes, args.max_takes)
        frames = [corpus.takes[i]["frames"] for i in sub]
        floor = subsample(others, len(sub))
        if len(floor) == len(sub) >= 2:
            rows[f"real {other}, {len(floor)} clips"] = row(clf, pos(floor), labels(floor, "content"),
                                                            labels(floor, "style"), real_feat)
        contents, styles = labels(sub, "content"), labels(sub, "style")
        for key, name in (("captions", f"model, {split} captions"), ("eval_captions", "model, held-out paraphrases")):
            texts, drawn = [corpus.takes[i][key][0] for i in sub], []
            for seed in seeds:
                print(f"  generating {len(sub)} motions from {key}, seed {seed}")
                drawn.append(generated_positions(gen, texts, frames, seed, args.steps, print))
            per_seed = [row(clf, g, contents, styles, real_feat) for g in drawn]
            rows[name] = per_seed[0] if len(seeds) == 1 else over_seeds(
                per_seed, row(clf, [p for g in drawn for p in g], contents * len(seeds), styles * len(seeds), None))
        model_note = f"model {args.model}"
    res = {"classifier": {**clf.info, "contents": len(clf.contents), "styles": len(clf.styles),
                          "feature_dim": int(real_feat.shape[1])},
           "rows": rows, "model": model_note, "split": split, "seed": args.seed,
           "seeds": seeds if args.model else [],
           "wall_s": time.time() - t0}
    print(f"kinemo bench text: {len(takes)} {split} takes; {model_note}")
    print(format_table(res))
    js, png = write_json(args.out, "text", res), plot(res, args.out)
    print(f"wrote {js} and {png}")
    return 0
