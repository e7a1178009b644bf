"""``kinemo bench server``: what the server costs on top of the work itself.

- ping round trip (median / p95);
- a ~10 MB result (the ``selftest`` diagnostic returning world positions):
  client-side wall time minus the handler's own ``run_s`` is the overhead
  (encode, sign, inproc hand-off, TCP, decode, validate);
- a typical in-betweening request: while no model exists, a request with the
  same sizes (``--frames`` frames on a ``--bones``-bone rig: the result's bytes
  of rotations + translations) stands in, and the report says what model time
  keeps the overhead under the 5 % target. Once ``inbetween`` is available
  the real request is measured.

Starts its own server unless ``--address`` is given.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_SHARE = 0.05


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", help="benchmark a running server (default: start one on a free port)")
    p.add_argument("--token-file", type=Path, help="shared secret of that server")
    p.add_argument("--pings", type=int, default=500)
    p.add_argument("--repeats", type=int, default=5, help="runs of each larger request")
    p.add_argument("--result-mb", type=float, default=10.0, help="size of the large result")
    p.add_argument("--frames", type=int, default=240, help="frames of the typical in-betweening result")
    p.add_argument("--bones", type=int, default=100, help="bones of the typical user rig")
    p.add_argument("--json", type=Path, help="also write the numbers here")


def _start_server() -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                         os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "kinemo.serve", "--address", "tcp://127.0.0.1:*",
                             "--log-level", "WARNING"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=env, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if select.select([proc.stdout], [], [], 0.2)[0]:
            line = proc.stdout.readline()
            if "listening on" in line:
                return proc, line.rsplit(" ", 1)[1].strip()
    proc.kill()
    raise RuntimeError("the benchmark's server did not start")


def _timed(client, msg_type: str, body: dict, repeats: int) -> dict:
    """Client wall time split into the server's handler time and the rest; the
    run with the median overhead of ``repeats``."""
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        req = client.submit(msg_type, body)
        client.wait(req)
        total = time.perf_counter() - t0
        runs.append((total - req.timing["run_s"], total, req.timing["run_s"]))
    overhead, total, work = sorted(runs)[len(runs) // 2]
    return {"total_s": total, "model_s": work, "overhead_s": overhead, "outside_share": overhead / total,
            "request_bytes": len(req.frames[1])}


def measure(client, pings: int = 500, repeats: int = 5, result_mb: float = 10.0,
            frames: int = 240, bones: int = 100) -> dict:
    from kinemo.serve.examples import example_request
    info = client.hello()
    for _ in range(20):  # warm the sockets
        client.ping()
    rtt = sorted(client.ping() for _ in range(pings))
    out: dict = {"server": info["server"], "device": info["device"],
                 "ping_ms": {"median": 1e3 * statistics.median(rtt), "p95": 1e3 * rtt[int(0.95 * (len(rtt) - 1))],
                             "min": 1e3 * rtt[0]}}

    # A large result: positions (T, 24, 3) float32 of about result_mb megabytes.
    T = math.ceil(result_mb * 1e6 / (24 * 3 * 4))
    big = _timed(client, "selftest", {"frames": T, "joints": 24, "chunk_frames": 1024,
                                      "return_positions": True}, repeats)
    big["result_bytes"] = T * 24 * 3 * 4
    big["transfer_MBps"] = big["result_bytes"] / 1e6 / big["overhead_s"]
    out["large_result"] = big

    if info["capabilities"]["inbetween"]["available"]:
        body = example_request("inbetween", frames=frames)
        typ = _timed(client, "inbetween", body, repeats)
        typ["what"] = f"inbetween, {frames} frames on the example rig"
    else:
        # Same result bytes as rotations (4) + translations (3) per bone and frame.
        joints = math.ceil(bones * 7 / 3)
        typ = _timed(client, "selftest", {"frames": frames, "joints": joints, "chunk_frames": frames,
                                          "return_positions": True}, repeats)
        typ["what"] = (f"stand-in (inbetween not available: {info['capabilities']['inbetween']['reason']}): "
                       f"selftest with the result size of {frames} frames x {bones} bones")
    typ["model_s_for_target"] = typ["overhead_s"] * (1 - TARGET_SHARE) / TARGET_SHARE
    out["typical_inbetween"] = typ
    return out


def report(r: dict) -> str:
    p, b, t = r["ping_ms"], r["large_result"], r["typical_inbetween"]
    lines = [
        f"kinemo bench server  ({r['server']}, device {r['device']})",
        f"  ping round trip        median {p['median']:.3f} ms   p95 {p['p95']:.3f} ms   min {p['min']:.3f} ms",
        f"  {b['result_bytes'] / 1e6:.1f} MB result         total {1e3 * b['total_s']:.1f} ms = work "
        f"{1e3 * b['model_s']:.1f} ms + overhead {1e3 * b['overhead_s']:.1f} ms "
        f"({b['transfer_MBps']:.0f} MB/s, {100 * b['outside_share']:.1f} % outside the work)",
        f"  typical in-betweening  {t['what']}",
        f"                         total {1e3 * t['total_s']:.1f} ms = work {1e3 * t['model_s']:.1f} ms + overhead "
        f"{1e3 * t['overhead_s']:.2f} ms ({100 * t['outside_share']:.2f} % outside the work)",
        f"                         overhead stays under {100 * TARGET_SHARE:.0f} % for model time >= "
        f"{1e3 * t['model_s_for_target']:.0f} ms",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from kinemo.serve.client import Client
    from kinemo.serve.protocol import read_token
    proc = None
    address = args.address
    if address is None:
        proc, address = _start_server()
    try:
        key = read_token(str(args.token_file)) if args.token_file else None
        with Client(address, key=key, timeout=30.0) as c:
            r = measure(c, args.pings, args.repeats, args.result_mb, args.frames, args.bones)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
    print(report(r))
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))
    return 0
