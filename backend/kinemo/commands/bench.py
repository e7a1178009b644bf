"""``kinemo bench NAME``: run one of the benchmarks.

Each benchmark is a module with ``add_arguments(parser)`` and ``run(args) ->
int``, registered in :data:`BENCHES`; add yours with one line.
"""
from __future__ import annotations

import argparse
import importlib

# name -> (module, one-line help)
BENCHES: dict[str, tuple[str, str]] = {
    "server": ("kinemo.eval.bench_server",
               "request overhead of kinemo serve (ping, 10 MB result, share outside the model)"),
    "inbetween": ("kinemo.eval.bench_inbetween",
                  "LaFAN1 in-betweening protocol: L2P, L2Q, NPSS, skating, seam jerk vs baselines"),
    "text": ("kinemo.eval.bench_text",
             "text-to-motion: recognition accuracy, FID, diversity (classifier trained on the training split)"),
    "dance": ("kinemo.eval.bench_dance",
              "dance: Beat Align Score (both variants, with chance), PFC, diversity, foot skating"),
    "long": ("kinemo.eval.bench_long",
             "long motion from text: crossed legs and ankle span per 10 s piece vs real takes"),
    "speed": ("kinemo.eval.bench_speed",
              "machine matmul FLOP/s; wall time, throughput and model FLOPs per request type"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for name, (mod, help_) in BENCHES.items():
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(_bench=mod)
        importlib.import_module(mod).add_arguments(sp)


def run(args: argparse.Namespace) -> int:
    return importlib.import_module(args._bench).run(args)
