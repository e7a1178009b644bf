#!/usr/bin/env bash
# Export a trained checkpoint as the shipped model and measure it with every bench (results in docs/benchmarks/).
# Usage: tools/ship_model.sh runs/small/last.pt   (run from the repository root, with the venv's kinemo)
#        tools/ship_model.sh shipped              (no export: re-measure the shipped model, e.g. after a sampler change)
set -euo pipefail
CKPT=${1:?checkpoint}
PY=${PY:-.venv/bin/python}
export PYTHONPATH=backend${PYTHONPATH:+:$PYTHONPATH}
[ "$CKPT" = shipped ] || $PY - "$CKPT" <<'PYEOF'
import sys
from kinemo.train.checkpoint import export
from kinemo.model.generator import DEFAULT_CHECKPOINT
p = export(sys.argv[1], DEFAULT_CHECKPOINT, {"name": "kinemo-small",
           "license": "CC BY-NC 4.0 (trained on Bandai-Namco motion); non-commercial use only"})
print(f"exported {p} ({p.stat().st_size / 1e6:.1f} MB)")
PYEOF
$PY -m kinemo.cli bench speed --model shipped
$PY -m kinemo.cli bench inbetween --model shipped --model shipped@inbetween_dynamics_guidance=0.3 \
    --model shipped@foot_lock=0 --model shipped@inbetween_smooth=0 --model shipped@inbetween_smooth_twice=0 \
    --model shipped@slerp_turns=0 --model shipped@lock.clearance=0 --model shipped@inbetween_mirror=0 \
    --model shipped@lock.key_radius=8,lock.lift_radius=8 --model shipped@lock.knee_cost=inf \
    --model shipped@inbetween_adapter=0 --max-windows ${WINDOWS:-120}
# the animator's layout: a single key every n + 1 frames through 8 s shots, which the model fills window by window
$PY -m kinemo.cli bench inbetween --keys-every --model shipped --max-windows ${WINDOWS:-120}
$PY -m kinemo.cli bench dance --model shipped
# ablations of the dance sampler, each in its own folder: beat guidance off, foot lock off, no time smoothing
$PY -m kinemo.cli bench dance --model shipped@beat_guidance=0 --out docs/benchmarks/dance-no-beat-guidance
$PY -m kinemo.cli bench dance --model shipped@foot_lock=0 --out docs/benchmarks/dance-no-foot-lock
$PY -m kinemo.cli bench dance --model shipped@smooth=0 --out docs/benchmarks/dance-no-smooth
# music under a caption of another kind of motion: do the beats reach motions unlike the paired dances?
$PY -m kinemo.cli bench dance --model shipped --text "Someone walks forward casually." --out docs/benchmarks/dance-walk
# the main text figures and their ablations: mean and range over 3 seeds (one draw of 100 clips moves by several
# points)
$PY -m kinemo.cli bench text --model shipped --max-takes ${TAKES:-100} --seeds ${SEEDS:-3}
$PY -m kinemo.cli bench text --model shipped@smooth=0 --max-takes ${TAKES:-100} --seeds ${SEEDS:-3} --out docs/benchmarks/text-no-smooth
# the dynamics-guidance ablation where the sampler uses it (10 steps): jitter (jerk) and foot skating without it
$PY -m kinemo.cli bench text --model shipped@dynamics_guidance=0 --max-takes ${TAKES:-100} --seeds ${SEEDS:-3} \
    --out docs/benchmarks/text-no-dynamics-guidance
# free windows no body could perform drawn again (SamplerConfig.retries): what it changes, retries off
$PY -m kinemo.cli bench text --model shipped@retries=0 --max-takes ${TAKES:-100} --seeds ${SEEDS:-3} --out docs/benchmarks/text-no-retries
# text guidance mixing the network's raw 6D numbers, degenerate or not (SamplerConfig.guidance_floor)
$PY -m kinemo.cli bench text --model shipped@guidance_floor=0 --max-takes ${TAKES:-100} --seeds ${SEEDS:-3} --out docs/benchmarks/text-raw-guidance
# a minute from text, stitched from independent windows: does the body stay plausible (crossed legs, ankle span
# per 10 s), and do the joins pop (seam jerk)?
$PY -m kinemo.cli bench long --model shipped
