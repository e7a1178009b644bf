"""How often free 6 s windows are ones no body could perform, against real val windows of the same length.

Usage: .venv/bin/python tools/plausible_windows.py [MODEL_SPEC] [SEEDS]   (default: shipped 2)
One 180-frame window per val caption and seed (``Generator.generate``), and the real val takes cut into 180-frame
windows 90 frames apart; for each, the largest joint jerk and the share of frames with crossed legs
(kinemo.core.plausible). Prints their percentiles and the share of windows over a few limits. Needs the corpus.
"""
from __future__ import annotations

import sys
import time

import numpy as np

from kinemo.core.plausible import measures
from kinemo.data.clip import FPS
from kinemo.eval.baselines import load_model
from kinemo.eval.clips import corpus_clips, open_corpus
from kinemo.eval.report import global_transforms

WINDOW = 180


def report(name: str, m: np.ndarray) -> None:
    print(f"{name}: {len(m)} windows")
    print("  largest jerk, percentiles 50/90/95/99/100:", np.percentile(m[:, 0], [50, 90, 95, 99, 100]).round(0))
    print("  crossed share, percentiles 50/90/95/99/100:", np.percentile(m[:, 1], [50, 90, 95, 99, 100]).round(3))
    print("  share over 1,000 / 5,000 m/s^3:", [round(float((m[:, 0] > x).mean()), 3) for x in (1000, 5000)],
          " crossed over 5%:", round(float((m[:, 1] > 0.05).mean()), 3))


def main(spec: str = "shipped", seeds: int = 2) -> None:
    corpus = open_corpus(None)
    real = [c.positions for c in corpus_clips(corpus, "val")]
    report("real val", np.array([measures(p[s:s + WINDOW], FPS) for p in real
                                 for s in range(0, max(1, len(p) - WINDOW + 1), WINDOW // 2)]))
    gen = load_model(spec)
    texts = [corpus.takes[i]["captions"][0] for i in corpus.split("val")]
    t0 = time.perf_counter()
    m = [measures(global_transforms(*gen.generate(t, WINDOW, seed=s))[1], FPS) for s in range(seeds) for t in texts]
    report(f"{spec} ({time.perf_counter() - t0:.0f} s)", np.array(m))


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["shipped"]), *[int(x) for x in sys.argv[2:3]])
