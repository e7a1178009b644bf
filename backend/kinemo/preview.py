"""Stick-figure pictures of a motion that a person can look at.

``filmstrip(path, segments, sides, root)`` draws a few frames side by side,
seen from the front-right at a fixed scale, plus the root's path seen from
above. It takes line segments rather than a skeleton so the same picture works
for a kinemo skeleton (parent to child) and for a Blender rig (bone head to
tail). Positions are in the backend's frame (Y up, facing +Z), metres.
"""
from __future__ import annotations

import os
import re

import numpy as np

_NUMBERED = re.compile(r"([._]\d+)+$")  # Rigify's "upper_arm.L.001"
_COLOURS = {"L": "tab:blue", "R": "tab:red", "C": "0.25"}


def side_of(name: str) -> str:
    """``"L"``, ``"R"`` or ``"C"`` from a joint or bone name (``left_hip``, ``thigh.L``, ``Hand_R``)."""
    from .core.bonemap import split_side
    side, _ = split_side(_NUMBERED.sub("", name))
    return {"left": "L", "right": "R"}.get(side, "C")


def skeleton_segments(positions: np.ndarray, parents) -> np.ndarray:
    """Parent-to-child segments ``(T, J-1, 2, 3)`` from joint positions ``(T, J, 3)``."""
    kids = [j for j, p in enumerate(parents) if p >= 0]
    par = [parents[j] for j in kids]
    return np.stack([positions[:, par], positions[:, kids]], axis=2)


def _project(p: np.ndarray, azimuth_deg: float) -> np.ndarray:
    """``(..., 3) -> (..., 2)``: seen from the subject's right, turned ``azimuth_deg``
    towards its front; +Z (forward) points right, Y up."""
    a = np.radians(azimuth_deg)
    u = p[..., 2] * np.cos(a) + p[..., 0] * np.sin(a)
    return np.stack([u, p[..., 1]], -1)


def filmstrip(path: str | os.PathLike, segments: np.ndarray, sides: list[str], root: np.ndarray,
              fps: float, n_frames: int = 8, title: str = "", azimuth_deg: float = 20.0) -> list[int]:
    """Write a PNG: ``n_frames`` evenly spaced poses and the root path from above.

    segments: ``(T, S, 2, 3)`` line segments per frame; sides: ``S`` of
    ``"L"/"R"/"C"`` (colour); root: ``(T, 3)`` root positions. Returns the frame
    indices drawn.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    segments = np.asarray(segments, np.float64)
    T = segments.shape[0]
    shown = sorted(set(np.linspace(0, T - 1, min(n_frames, T)).round().astype(int).tolist()))
    flat = _project(segments, azimuth_deg)  # (T, S, 2, 2)
    centre = _project(root, azimuth_deg)[:, 0]
    lo = min(flat[..., 1].min(), 0.0) - 0.05
    hi = flat[..., 1].max() + 0.05
    half = np.abs(flat[shown, ..., 0] - centre[shown, None, None]).max() + 0.08
    panel_h = 3.4  # inches; every pose panel has the same metres per inch
    panel_w = panel_h * 2 * half / (hi - lo)

    fig = plt.figure(figsize=(panel_w * len(shown) + panel_h + 0.8, panel_h + 1.0), dpi=100)
    grid = fig.add_gridspec(1, len(shown) + 1,
                            width_ratios=[panel_w] * len(shown) + [panel_h])
    for k, t in enumerate(shown):
        ax = fig.add_subplot(grid[0, k])
        for s, side in enumerate(sides):
            (u0, v0), (u1, v1) = flat[t, s]
            ax.plot([u0, u1], [v0, v1], color=_COLOURS[side], lw=2.0, solid_capstyle="round")
        ax.axhline(0.0, color="0.6", lw=0.8)
        ax.set_xlim(centre[t] - half, centre[t] + half)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([] if k else [0.0, 0.5, 1.0, 1.5])
        ax.set_title(f"frame {t}\n{t / fps:.2f} s", fontsize=9)
    top = fig.add_subplot(grid[0, len(shown):])
    top.plot(root[:, 0], root[:, 2], color="0.3", lw=1.5)
    top.scatter(root[shown, 0], root[shown, 2], color="k", s=12, zorder=3)
    top.scatter(root[:1, 0], root[:1, 2], color="tab:green", s=30, zorder=4, label="start")
    top.set_xlabel("x (m, left +)")
    top.set_ylabel("z (m, forward +)")
    top.set_aspect("equal", adjustable="datalim")
    top.set_title("root path, from above", fontsize=9)
    top.legend(fontsize=8, loc="best")
    top.invert_xaxis()  # seen from above with +Z up the page, the subject's left is on the left
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(os.fspath(path))
    plt.close(fig)
    return shown
