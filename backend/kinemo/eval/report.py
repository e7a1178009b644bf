"""What every bench shares: FK of outputs, the results folder, JSON, tables with ratios."""
from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path

import numpy as np

from ..core.fk import forward_kinematics
from ..core.smpl import smpl_skeleton

DEFAULT_OUT = Path("docs/benchmarks")
_SKEL = smpl_skeleton()


def global_transforms(quats: np.ndarray, root: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canonical-skeleton FK: local quats ``(..., T, 24, 4)``, root ``(..., T, 3)`` ->
    world rotations ``(..., T, 24, 4)`` and positions ``(..., T, 24, 3)``."""
    quats = np.asarray(quats, np.float64)
    trans = np.broadcast_to(_SKEL.offsets, quats.shape[:-1] + (3,)).copy()
    trans[..., 0, :] = root
    return forward_kinematics(_SKEL.parents, quats, trans)


def rest_foot_heights() -> np.ndarray:
    """Rest heights of the metric's foot joints (ankles, feet), ``(4,)``."""
    from .metrics import FOOT_JOINTS
    return _SKEL.rest_global()[1][list(FOOT_JOINTS), 1]


# the --model help of every bench: what a model spec may say (kinemo.eval.baselines.load_model parses it)
MODEL_SPEC = ("'shipped' for the shipped one; PATH@name=value,... sets sampler settings, e.g. shipped@steps=4 or "
              "shipped@lock.key_radius=4 (kinemo.model.sampler.SamplerConfig)")


def add_output_arguments(p) -> None:
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"folder for <bench>.json and <bench>.png (default: {DEFAULT_OUT})")


def _clean(x):
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else round(float(x), 6)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def write_json(out: Path, name: str, result: dict) -> Path:
    """``out/name.json`` with machine and date; NaN becomes null."""
    out.mkdir(parents=True, exist_ok=True)
    meta = {"bench": name, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.platform(),
            "python": platform.python_version()}
    path = out / f"{name}.json"
    path.write_text(json.dumps(_clean({**meta, **result}), indent=1) + "\n")
    return path


def fmt(v: float, digits: int = 4) -> str:
    if v is None or not np.isfinite(v):
        return "-"
    return f"{v:.{digits}g}"


def ratio(v: float, ref: float) -> str:
    if v is None or ref is None or not (np.isfinite(v) and np.isfinite(ref)) or ref == 0:
        return "-"
    return f"x{v / ref:.2f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """Plain-text table, columns padded to their widest cell."""
    w = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).rjust(w[i]) if i else str(c).ljust(w[i]) for i, c in enumerate(r))  # noqa: E731
    return "\n".join([line(header), "  ".join("-" * x for x in w)] + [line(r) for r in rows])


def savefig(fig, out: Path, name: str) -> Path:
    """Lay out, write ``out/name.png`` and close the figure."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    return path


def pyplot():
    """matplotlib without a display."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt
