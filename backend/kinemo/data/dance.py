"""The dance-music source: 3D point clips at 25 fps with their songs -> canonical clips with music.

One ``<name>.npz`` (``positions (T, 23, 3)`` metres, Y up, ``fps`` 25, ``music_offset_s``,
``genre``) sits beside its song ``<name>.ogg``. Per clip: IK onto SMPL
(:mod:`kinemo.data.marker_ik`), fit-error gate, feet put on the floor against the
source's slow root-height drift, resample 25 -> 30 fps, music features for motion frame
``j`` at song time ``music_offset_s + j / 30`` (the README's alignment rule).

Side assignment: the source's labels are kept (chain 3-11 is the dancer's right); see
docs/corpus.md for the evidence. ``DanceConfig.mirrored_source`` flips every clip if
that ever turns out wrong.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d, minimum_filter1d

from ..core.resample import resample
from ..core.skeleton import Motion, Skeleton
from ..core.smpl import smpl_skeleton
from .clip import CONTACT_JOINTS, FPS, Clip, clip_from_motion
from .labels import Labels
from .marker_ik import JOINT_POINTS, NUM_POINTS, fit, fit_error
from .mirror import mirror
from .music import AUDIO_SUFFIXES, music_features

DANCE_KEYS = ("positions", "fps", "music_offset_s")
GENRES = {"waltz": "waltz", "rumba": "rumba", "cha-cha": "cha-cha", "tango": "tango"}
END_JOINTS = ("left_ankle", "right_ankle", "left_wrist", "right_wrist")


@dataclass(frozen=True)
class DanceConfig:
    # fit gate: the ankles and wrists are placed by two-bone IK, so their error is what the SMPL
    # limb lengths cannot reach; knees, elbows, hips and shoulders are marker offsets (documented)
    # (a straight SMPL arm is up to ~15 cm short of an outstretched source arm: that is reach, not a bad fit)
    max_end_mean_cm: float = 5.0     # worst end joint's mean error over the clip
    max_end_p99_cm: float = 20.0     # worst end joint's 99th-percentile error
    floor_window_s: float = 1.0      # lowest-foot envelope window for the floor fix
    floor_smooth_s: float = 0.5      # Gaussian smoothing of that envelope
    mirrored_source: bool = False    # True would swap the source's left and right


def is_dance_npz(path: str | Path) -> bool:
    """A dance-music clip (points + music offset), as opposed to an AMASS file."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return all(k in z.files for k in DANCE_KEYS)
    except (OSError, ValueError, EOFError):
        return False


def dance_labels(path: str | Path) -> Labels:
    with np.load(path, allow_pickle=False) as z:
        genre = str(z["genre"]) if "genre" in z.files else None
    return Labels("dance", GENRES.get(genre, genre) if genre else None)


def audio_for(path: Path) -> Path | None:
    for suf in AUDIO_SUFFIXES:
        p = path.with_suffix(suf)
        if p.is_file():
            return p
    return None


@dataclass
class DanceTake:
    clip: Clip
    music: np.ndarray | None        # (T, MUSIC_DIM) at 30 fps, or None without a song
    errors: dict[str, tuple[float, float]]   # joint -> (mean, max) cm
    end_p99_cm: float
    scale: float
    source_fps: float
    reason: str | None = None       # why the fit gate rejects it, else None


def floor_offset(positions: np.ndarray, skel: Skeleton, fps: float, cfg: DanceConfig) -> np.ndarray:
    """``(T,)`` height of the floor under the feet: a smoothed lower envelope of the lowest
    contact joint (minus its rest height). positions ``(T, 24, 3)``."""
    _, rest = skel.rest_global()
    feet = positions[:, list(CONTACT_JOINTS), 1] - rest[list(CONTACT_JOINTS), 1]
    low = minimum_filter1d(feet.min(axis=1), max(1, int(round(cfg.floor_window_s * fps))), mode="nearest")
    return gaussian_filter1d(low, cfg.floor_smooth_s * fps, mode="nearest")


def load_dance(path: str | Path, cfg: DanceConfig = DanceConfig(), with_music: bool = True) -> DanceTake:
    """Fit, gate, floor-fix, resample and add music to one dance-music clip."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as z:
        points = np.asarray(z["positions"], np.float64)
        fps = float(z["fps"])
        offset = float(z["music_offset_s"])
    if points.ndim != 3 or points.shape[1:] != (NUM_POINTS, 3):
        raise ValueError(f"{path}: positions must be (T, {NUM_POINTS}, 3), got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError(f"{path}: NaN or infinite positions")
    skel = smpl_skeleton()
    res = fit(points, skel, fps)
    errors = fit_error(res)
    end = np.stack([np.linalg.norm(res.positions[:, j] - res.targets[:, j], axis=-1)
                    for j in (skel.index(n) for n in END_JOINTS)], axis=1) * 100     # (T, 4) cm
    end_p99 = float(np.percentile(end, 99, axis=0).max())
    end_mean = max(errors[n][0] for n in END_JOINTS)
    reason = None
    if end_mean > cfg.max_end_mean_cm or end_p99 > cfg.max_end_p99_cm:
        reason = (f"IK fit too far off: worst hand/foot error mean {end_mean:.1f} cm, 99th percentile "
                  f"{end_p99:.1f} cm (limits {cfg.max_end_mean_cm:g} / {cfg.max_end_p99_cm:g} cm)")
    m = res.motion
    m.translations[:, 0, 1] -= floor_offset(res.positions, skel, fps, cfg)
    m = resample(Motion(m.rotations, m.translations, fps), FPS)
    clip = clip_from_motion(skel, m)
    if cfg.mirrored_source:
        clip = mirror(clip)
    music = None
    audio = audio_for(path)
    if with_music and audio is not None and reason is None:
        music = music_features(audio, FPS, start_s=offset, frames=clip.num_frames).matrix
    return DanceTake(clip, music, errors, end_p99, res.scale, fps, reason)


__all__ = ["DanceConfig", "DanceTake", "load_dance", "is_dance_npz", "dance_labels", "JOINT_POINTS"]
