"""Stick-figure renders of a clip (matplotlib) to check retargeting by eye."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.smpl import SMPL_PARENTS
from .clip import Clip


def _limbs():
    return [(j, p) for j, p in enumerate(SMPL_PARENTS) if p >= 0]


def _color(j: int) -> str:
    from ..core.smpl import SMPL_JOINT_NAMES
    n = SMPL_JOINT_NAMES[j]
    return "tab:red" if n.startswith("left") else "tab:blue" if n.startswith("right") else "k"


def _draw(ax, pos: np.ndarray, lim) -> None:
    """Front-ish 3D view of one pose ``(24, 3)`` (Y up drawn as the plot's vertical)."""
    for j, p in _limbs():
        ax.plot([pos[j, 0], pos[p, 0]], [pos[j, 2], pos[p, 2]], [pos[j, 1], pos[p, 1]], color=_color(j), lw=2)
    # a 2 m box following the pelvis: the body stays readable however far the take travels
    cx, cz = pos[0, 0], pos[0, 2]
    ax.set_xlim(cx - 1, cx + 1), ax.set_ylim(cz - 1, cz + 1), ax.set_zlim(0, 2)
    ax.plot([cx - 1, cx + 1], [cz, cz], [0, 0], color="0.7", lw=0.8)
    ax.set_xlabel("x"), ax.set_ylabel("z"), ax.set_zlabel("y")
    ax.view_init(elev=15, azim=-60)


def _limits(positions: np.ndarray):
    c = positions[:, 0, [0, 2]]
    half = max(1.0, float(np.ptp(c, axis=0).max()) / 2 + 0.6)
    mid = (c.min(0) + c.max(0)) / 2
    return (mid[0] - half, mid[0] + half), (mid[1] - half, mid[1] + half)


def render_strip(clip: Clip, path: Path, frames: int = 6, title: str = "") -> Path:
    """One PNG with ``frames`` evenly spaced poses side by side (left side red, right blue)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    idx = np.linspace(0, clip.num_frames - 1, frames).round().astype(int)
    lim = _limits(clip.positions)
    fig = plt.figure(figsize=(2.4 * frames, 3.0), dpi=80)
    for k, t in enumerate(idx):
        ax = fig.add_subplot(1, frames, k + 1, projection="3d")
        _draw(ax, clip.positions[t], lim)
        ax.set_title(f"{t / clip.fps:.1f} s", fontsize=8)
        ax.tick_params(labelsize=5)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def render_gif(clip: Clip, path: Path, step: int = 2, title: str = "") -> Path:
    """An animated GIF of the clip (every ``step``-th frame)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation, PillowWriter
    lim = _limits(clip.positions)
    fig = plt.figure(figsize=(4, 4), dpi=60)
    ax = fig.add_subplot(projection="3d")
    frames = range(0, clip.num_frames, step)

    def update(t):
        ax.cla()
        _draw(ax, clip.positions[t], lim)
        ax.set_title(f"{title} {t / clip.fps:.1f} s", fontsize=8)
    anim = FuncAnimation(fig, update, frames=frames)
    anim.save(path, writer=PillowWriter(fps=clip.fps / step))
    plt.close(fig)
    return Path(path)


def render_fit(positions: np.ndarray, points: np.ndarray, path: Path, frames: list[int], title: str = "") -> Path:
    """Fitted joints ``(T, 24, 3)`` with the source points ``(T, P, 3)`` (crosses; ``left_points``
    coloured red) for the given frames, the camera in front of the body, drawn without mirroring
    (plot axes x, -z, y keep the figure right-handed, so the body's left appears on the viewer's right)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(4 * len(frames), 4.5), dpi=80)
    for k, t in enumerate(frames):
        pos, pts = positions[t], points[t]
        ax = fig.add_subplot(1, len(frames), k + 1, projection="3d")
        for j, p in _limbs():
            ax.plot(pos[[j, p], 0], -pos[[j, p], 2], pos[[j, p], 1], color=_color(j), lw=2.5)
        ax.scatter(pts[:, 0], -pts[:, 2], pts[:, 1], c="0.3", s=10, marker="x")
        c = pos[0]
        ax.set_xlim(c[0] - 0.8, c[0] + 0.8), ax.set_ylim(-c[2] - 0.8, -c[2] + 0.8), ax.set_zlim(0, 1.8)
        fwd = np.cross(pos[1] - pos[2], [0.0, 1.0, 0.0])      # left x up = forward
        ax.view_init(elev=10, azim=float(np.degrees(np.arctan2(-fwd[2], fwd[0]))))
        ax.set_title(f"frame {t}, camera in front", fontsize=9)
        ax.tick_params(labelsize=5)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
