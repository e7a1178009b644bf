"""Beat objectives on joint positions: a movement accent (a dip in speed) on every music beat, none between.

The sampler's beat guidance nudges each step's prediction down these losses; training applies them to the
network's own prediction on windows with a beat grid (a song's, or one taken from the motion's own kinematic
beats), so that the network learns to put its accents on the beats by itself.
"""
from __future__ import annotations

import torch

from ..data.music import BEAT_COLUMN, PHASE_COLUMNS, TEMPO_COLUMN
from .features import smooth_time


BEAT_SMOOTH = 5.0   # frames: the Gaussian that kinematic beats are read through (eval.metrics.kinematic_beats)
BEAT_REACH = 5      # frames either side a beat's dip is carved against


def smoothed_speed(pos: torch.Tensor, sigma: float = BEAT_SMOOTH) -> torch.Tensor:
    """Mean joint speed between consecutive frames, Gaussian-smoothed over time (edges repeated):
    ``(B, L, J, 3)`` -> ``(B, L - 1)``; entry ``i`` lies between frames ``i`` and ``i + 1``."""
    return smooth_time((pos[:, 1:] - pos[:, :-1]).norm(dim=-1).mean(-1), sigma)


def beat_dip_loss(pos: torch.Tensor, beats: torch.Tensor, depth: float = 0.85) -> torch.Tensor:
    """How far the motion is from a movement accent on every beat: ``(B, L, J, 3)`` positions and ``(B, L)``
    beat weights -> ``(B,)``.

    A kinematic beat is a local minimum of the smoothed speed, so each beat frame's speed is asked to lie
    below ``depth`` times the mean of the speeds ``BEAT_REACH`` frames either side. Beats that already
    have such a dip cost nothing (the loss never rewards a deeper one, so guidance leaves them alone).
    """
    s = smoothed_speed(pos)                                 # (B, L-1); a beat at frame f reads s[f - 1]
    n, k = s.shape[1], BEAT_REACH
    if n <= 2 * k + 1:
        return s.new_zeros(len(s))
    mid = s[:, k:n - k]
    around = 0.5 * (s[:, :n - 2 * k] + s[:, 2 * k:])
    w = beats[:, 1 + k:1 + n - k]                           # beat frames f = i + 1 for speed index i
    gap = torch.relu(mid - depth * around) / around.detach().clamp_min(1e-4)
    return (gap * w).sum(-1)


# A 5-frame Gaussian all but erases a speed dip every 11 frames (160 bpm at 30 fps), so the between-beats shape
# is read finer. Measured on a click track going 80 -> 160 bpm, seeds 0-3 (1 guidance iteration, no time
# smoothing): at 3 frames the median kinematic-beat spacing after the change is 0.37-0.40 s (clicks 0.375 s); at
# 5 frames 0.50-0.57 s.
BETWEEN_SMOOTH = 3.0
PHASE_MARGIN = 0.08       # share of a beat left free around the beat and halfway: beat frames are rounded
SLOWEST_BEAT_BPM = 50.0   # longer gaps (pauses, no tracked beat) get no between-beats shape


def beat_slopes(music: torch.Tensor) -> torch.Tensor:
    """Which way the speed should go at each frame between beats: ``(B, L, M)`` music features -> ``(B, L)``,
    +1 in the first half of a beat (rising out of the accent), -1 in the second (falling into the next),
    0 near the beat, near halfway and where beats are too far apart to shape."""
    phase = torch.atan2(music[..., PHASE_COLUMNS[0]], music[..., PHASE_COLUMNS[1]]) / (2 * torch.pi) % 1.0
    rising = (phase > PHASE_MARGIN) & (phase < 0.5 - PHASE_MARGIN)
    falling = (phase > 0.5 + PHASE_MARGIN) & (phase < 1.0 - PHASE_MARGIN)
    shaped = music[..., TEMPO_COLUMN] * 120.0 >= SLOWEST_BEAT_BPM
    return (rising.float() - falling.float()) * shaped.float()


def between_beats_loss(pos: torch.Tensor, slopes: torch.Tensor) -> torch.Tensor:
    """How much the speed dips between beats: ``(B, L, J, 3)`` positions and ``(B, L)`` slopes from
    :func:`beat_slopes` -> ``(B,)``. Sums the smoothed speed's steps against the wanted direction, relative
    to the mean speed; zero when the speed only rises after a beat and only falls before the next, so that
    no kinematic beat (a local minimum) lies between two music beats."""
    s = smoothed_speed(pos, BETWEEN_SMOOTH)                 # (B, L-1)
    step = s[:, 1:] - s[:, :-1]                             # (B, L-2); step i is centred on frame i + 1
    wrong = torch.relu(-slopes[:, 1:-1] * step)
    return wrong.sum(-1) / s.detach().mean(-1).clamp_min(1e-4)


def beat_loss(pos: torch.Tensor, music: torch.Tensor, between: float = 1.0) -> torch.Tensor:
    """Both objectives on one batch: ``(B, L, J, 3)`` positions and ``(B, L, M)`` music features -> ``(B,)``;
    ``between`` weighs the between-beats term (0 leaves it out)."""
    out = beat_dip_loss(pos, music[..., BEAT_COLUMN])
    return out + between * between_beats_loss(pos, beat_slopes(music)) if between > 0 else out
