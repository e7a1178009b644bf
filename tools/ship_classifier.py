"""Train the text bench's motion classifier on the corpus's training split and write it where it ships.

The text bench reads generated motion with the classifier in backend/kinemo/assets/eval/ whenever the corpus's
training split is the one it learnt (kinemo.eval.classifier.training_key); after the corpus or the classifier
changes, this makes the new one. Two trainings on different machines are seeded alike but not bit-identical,
so re-run the text benches of every model you compare after shipping a new one.

Usage (from the repository root, needs the corpus: `kinemo data prepare`):
    .venv/bin/python tools/ship_classifier.py [--corpus DIR] [--out PATH] [--force]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backend"))

from kinemo.eval.classifier import (SHIPPED, ClassifierConfig, MotionClassifier, train_on_corpus,  # noqa: E402
                                   training_key)
from kinemo.eval.clips import open_corpus  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, help="corpus folder (default: the cache's current corpus)")
    p.add_argument("--out", type=Path, default=SHIPPED, help=f"where to write it (default {SHIPPED})")
    p.add_argument("--force", action="store_true", help="train anew even if the shipped one fits this corpus")
    a = p.parse_args()
    corpus, cfg = open_corpus(a.corpus), ClassifierConfig()
    key = training_key(corpus, cfg)
    if a.out.exists() and not a.force and MotionClassifier.load(a.out).info.get("training_key") == key:
        print(f"{a.out} was trained on this training split already (key {key}); --force trains it anew")
        return 0
    clf = train_on_corpus(corpus, cfg)
    clf.save(a.out)
    acc = [clf.info.get(f"val_{k}_accuracy", float("nan")) for k in ("content", "style")]
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e6:.1f} MB), training key {key}, "
          f"val accuracy content {acc[0]:.3f} / style {acc[1]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
