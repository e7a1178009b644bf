"""``kinemo bench speed``: how fast the model answers, and how close to the hardware.

- the machine's measured matmul throughput (torch, float32 on the CPU with the
  threads torch uses, and on the GPU when there is one): the best of several
  timed ``n x n`` products, ``2 n^3`` operations each;
- per request type, through the Generator: in-betweening a 2 s gap (10 keyed
  context frames, 60 free frames, 1 keyed target), 6 s from text, 60 s of
  dance to a synthetic 120 bpm click track; median wall time of ``--repeats``
  runs after one warm-up, throughput as generated frames per second, and the
  model's FLOPs per request counted by ``torch.utils.flop_counter.FlopCounterMode``
  (matmuls and convolutions; element-wise work is not counted), which over the
  wall time gives the share of the measured matmul peak the request achieves.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from ..data.clip import FPS
from .baselines import load_model
from .report import MODEL_SPEC, add_output_arguments, fmt, pyplot, savefig, table, write_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="PATH", help=f"checkpoint to evaluate ({MODEL_SPEC})")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present, else cpu)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, help="sampler steps (default: the model's)")
    p.add_argument("--matmul-size", type=int, default=2048)
    add_output_arguments(p)


def matmul_flops(device: str = "cpu", n: int = 2048, repeats: int = 5) -> dict:
    """Best measured float32 matmul rate on ``device``: ``{"flops": ..., "n": n, "seconds": best}``."""
    import torch
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    a @ b
    sync()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t0)
    return {"flops": 2 * n ** 3 / best, "n": n, "seconds": best, "threads": torch.get_num_threads()}


def click_track_music(seconds: float) -> np.ndarray | None:
    """Music features of a 120 bpm click track over a low tone, or None without kinemo.data.music."""
    try:
        from ..data.music import features_from_samples
    except ImportError:
        return None
    sr = 22050
    t = np.arange(int(seconds * sr)) / sr
    y = 0.1 * np.sin(2 * np.pi * 110 * t)
    click = np.hanning(400) * np.sin(2 * np.pi * 1500 * t[:400])
    for b in np.arange(0, seconds, 0.5):
        seg = y[int(b * sr):int(b * sr) + 400]
        seg += click[:len(seg)]
    f = features_from_samples(y.astype(np.float32), sr, fps=FPS)
    return np.asarray(getattr(f, "matrix", f), np.float32)


def requests(gen, steps: int | None) -> dict:
    """name -> (callable, frames produced)."""
    from ..core import rotations as R
    kw = {} if steps is None else {"steps": steps}
    T = 10 + 60 + 1
    quats = np.tile(R.quat_identity((24,)).astype(np.float32), (T, 1, 1))
    root = np.tile(np.array([0.0, 0.94, 0.0], np.float32), (T, 1))
    root[-1, 2] = 1.5
    keys = np.zeros(T, bool)
    keys[:10] = keys[-1] = True
    six = int(6 * FPS)                # frames of the 6 s text request
    out = {"inbetween 2 s gap": (lambda: gen.inbetween(quats, root, keys, **kw), T),
           "text 6 s": (lambda: gen.generate("a person walks forward and waves", six, **kw), six)}
    music = click_track_music(60.0)   # the target: a 60 s song danced in under 10 s
    if music is not None:
        out["dance 60 s"] = (lambda: gen.dance(music, **kw), len(music))
    return out


def measure_request(fn, frames: int, repeats: int, device: str) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    fn()  # warm-up (allocations, kernels, caches)
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    with FlopCounterMode(display=False) as fc:
        fn()
    wall = statistics.median(times)
    flops = fc.get_total_flops()
    return {"wall_s": wall, "frames": frames, "frames_per_s": frames / wall, "model_flops": flops,
            "achieved_flops": flops / wall}


def run(args: argparse.Namespace) -> int:
    import torch
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    res: dict = {"device": device, "machine": {"cpu": matmul_flops("cpu", args.matmul_size)}}
    if torch.cuda.is_available():
        res["machine"]["cuda"] = {**matmul_flops("cuda", args.matmul_size), "name": torch.cuda.get_device_name()}
    lines = [f"kinemo bench speed (device {device})"]
    for dev, m in res["machine"].items():
        lines.append(f"  matmul float32 {m['n']}x{m['n']} on {dev}: {m['flops'] / 1e9:.1f} GFLOP/s "
                     f"({m['threads']} torch threads)")
    if not args.model:
        res["model"] = None
        lines.append("  model: missing (give --model PATH or 'shipped'); request timings not measured")
    else:
        gen = load_model(args.model, device)
        peak = res["machine"]["cuda" if device.startswith("cuda") else "cpu"]["flops"]
        res["model"], res["requests"] = args.model, {}
        reqs = requests(gen, args.steps)
        if "dance 60 s" not in reqs:
            lines.append("  dance: not measured (kinemo.data.music is not available)")
        for name, (fn, frames) in reqs.items():
            r = measure_request(fn, frames, args.repeats, device)
            r["share_of_matmul_peak"] = r["achieved_flops"] / peak
            res["requests"][name] = r
        rows = [[n, fmt(r["wall_s"], 3), f"{r['frames_per_s']:.0f}", f"{r['model_flops'] / 1e9:.2f}",
                 f"{r['achieved_flops'] / 1e9:.2f}", f"{100 * r['share_of_matmul_peak']:.1f} %"]
                for n, r in res["requests"].items()]
        lines.append(table(["request", "wall s", "frames/s", "GFLOP", "GFLOP/s", "of matmul peak"], rows))
    print("\n".join(lines))
    js = write_json(args.out, "speed", res)
    png = plot(res, args.out)
    print(f"wrote {js} and {png}")
    return 0


def plot(res: dict, out):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bars = {f"matmul peak ({d})": m["flops"] / 1e9 for d, m in res["machine"].items()}
    for n, r in (res.get("requests") or {}).items():
        bars[n] = r["achieved_flops"] / 1e9
    machine = len(res["machine"])
    ax.barh(list(bars), list(bars.values()), color=["C7"] * machine + ["C0"] * (len(bars) - machine))
    ax.set_xlabel("GFLOP/s")
    ax.set_xscale("log")
    ax.set_title("measured matmul peak vs what each request achieves" if res.get("requests") else
                 "measured matmul peak (no model yet)")
    ax.grid(alpha=0.3, axis="x")
    return savefig(fig, out, "speed")
