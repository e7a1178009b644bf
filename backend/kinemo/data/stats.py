"""Corpus statistics: hours per split, per content, per style."""
from __future__ import annotations

from collections import defaultdict

from .splits import SPLITS


def hours_by(takes: list[dict], key: str, fps: float = 30.0) -> dict[str, dict[str, float]]:
    """``{value of key: {split: hours, "takes": count}}``."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for t in takes:
        row = out[str(t.get(key) if key != "split" else "all")]
        row[t["split"]] += t["frames"] / fps / 3600
        row["takes"] += 1
    return {k: dict(v) for k, v in sorted(out.items())}


def table(takes: list[dict], key: str, fps: float = 30.0) -> str:
    """A markdown table of hours per ``key`` value and split."""
    rows = hours_by(takes, key, fps)
    head = f"| {key} | takes | " + " | ".join(f"{s} h" for s in SPLITS) + " | total h |"
    lines = [head, "|" + "---|" * (len(SPLITS) + 3)]
    tot = defaultdict(float)
    for name, r in rows.items():
        hs = [r.get(s, 0.0) for s in SPLITS]
        for s, h in zip(SPLITS, hs):
            tot[s] += h
        tot["takes"] += r["takes"]
        lines.append(f"| {name} | {int(r['takes'])} | " + " | ".join(f"{h:.3f}" for h in hs) + f" | {sum(hs):.3f} |")
    if len(rows) > 1:
        lines.append(f"| **all** | {int(tot['takes'])} | " + " | ".join(f"{tot[s]:.3f}" for s in SPLITS)
                     + f" | {sum(tot[s] for s in SPLITS):.3f} |")
    return "\n".join(lines)


def report(takes: list[dict], dropped: list[dict], fps: float = 30.0) -> str:
    parts = ["## Hours per split", table(takes, "split", fps), "", "## Hours per content",
             table(takes, "content", fps), "", "## Hours per style", table(takes, "style", fps), ""]
    reasons: dict[str, int] = defaultdict(int)
    for d in dropped:
        reasons[str(d["reason"]).split(":")[0]] += 1
    parts += ["## Dropped takes", f"{len(dropped)} dropped" + (": " + ", ".join(
        f"{n} {r}" for r, n in sorted(reasons.items(), key=lambda x: -x[1])) if dropped else ""), ""]
    return "\n".join(parts)
