"""Music features from synthetic click tracks (known tempo and beat times), bad audio, and
motion-derived pseudo-beats on a motion built with known slow frames."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from kinemo.data.music import MUSIC_DIM, click_track, features_from_samples, kinematic_beats, music_features
from kinemo.errors import UserError

SR = 22050


def test_beat_tracking_runs_in_a_fresh_interpreter_on_this_cpu():
    """librosa's beat tracker is numba code; crashes in it (first blamed on host-CPU code, later traced to a numba
    cache two processes wrote at once, kinemo.data.cache) took the interpreter down. Importing kinemo selects
    generic code; run where a crash cannot take pytest down."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CPU_NAME"}
    code = ("import kinemo, numpy as np, librosa; from kinemo.data.music import click_track; "
            "print(len(librosa.beat.beat_track(y=click_track(np.arange(0.5, 6, 0.5), 6.5), sr=22050)[1]))")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert int(res.stdout.split()[-1]) >= 8


def test_steady_click_track_tempo_and_beat_frames():
    beats = np.arange(0.5, 20.0, 0.5)                      # 120 bpm
    f = features_from_samples(click_track(beats, 20.5), SR, fps=30)
    assert f.matrix.shape == (f.num_frames, MUSIC_DIM) and f.matrix.dtype == np.float32
    assert f.tempo == pytest.approx(120, abs=1.5)
    expected = np.round(beats * 30).astype(int)
    # every click found within one frame (33 ms) and no extra beats; librosa's tracker may
    # trim a weak first or last beat
    k = int(np.argmin(np.abs(expected - f.beat_frames[0])))
    assert k <= 1 and len(expected) - 2 <= len(f.beat_frames) <= len(expected) - k
    assert np.abs(f.beat_frames - expected[k:k + len(f.beat_frames)]).max() <= 1
    assert f.beats.sum() == len(f.beat_frames) and np.all(f.beats[f.beat_frames] == 1)
    # phase restarts at each beat: near 0 on beat frames, about 0.5 halfway between
    assert np.all(np.minimum(f.beat_phase[f.beat_frames], 1 - f.beat_phase[f.beat_frames]) < 0.1)
    mid = (f.beat_frames[1:-1] + 7)
    assert np.abs(f.beat_phase[mid] - 0.5).max() < 0.1


def test_accelerating_click_track_shows_in_beat_spacing():
    times = [0.5]
    while times[-1] < 40:                                  # 100 bpm speeding up to 140 bpm
        times.append(times[-1] + 60 / (100 + 40 * times[-1] / 40))
    f = features_from_samples(click_track(times, 41), SR, fps=30)
    gaps = np.diff(f.beat_frames) / 30
    early, late = gaps[:10].mean(), gaps[-10:].mean()
    assert early == pytest.approx(60 / 102, rel=0.06)
    assert late == pytest.approx(60 / 138, rel=0.06)
    assert f.local_tempo[30 * 3] < 110 < 130 < f.local_tempo[30 * 37]


def test_features_cover_the_requested_window_frame_by_frame():
    beats = np.arange(0.25, 30, 0.6)
    y = click_track(beats, 30)
    f = features_from_samples(y, SR, fps=30, start_s=10.0, frames=300)
    assert f.num_frames == 300 and f.matrix.shape == (300, MUSIC_DIM)
    inside = np.round((beats[(beats >= 10) & (beats < 20)] - 10) * 30)
    assert len(f.beat_frames) == len(inside)       # mid-song: nothing to trim
    assert np.abs(f.beat_frames - inside).max() <= 1
    # other frame rates work too (the dance source is 25 fps)
    assert features_from_samples(y, SR, fps=25, frames=100).matrix.shape == (100, MUSIC_DIM)


def test_audio_file_round_trip(tmp_path):
    beats = np.arange(0.5, 10, 0.5)
    path = tmp_path / "clicks.flac"
    sf.write(path, click_track(beats, 10.5, 44100), 44100)   # resampled to 22050 on load
    f = music_features(path, fps=30)
    assert f.num_frames == int(10.5 * 30)
    assert f.tempo == pytest.approx(120, abs=1.5)


def test_unreadable_and_silent_audio_are_user_errors(tmp_path):
    bad = tmp_path / "song.ogg"
    bad.write_bytes(b"this is not an ogg file" * 100)
    with pytest.raises(UserError, match="cannot read audio file .*song.ogg"):
        music_features(bad)
    with pytest.raises(UserError, match="does not exist"):
        music_features(tmp_path / "missing.wav")
    silent = tmp_path / "silence.wav"
    sf.write(silent, np.zeros(SR * 3, np.float32), SR)
    with pytest.raises(UserError, match="silence.wav: the audio is silent"):
        music_features(silent)
    with pytest.raises(UserError, match="silent"):
        features_from_samples(np.zeros(SR), SR)


def test_kinematic_beats_at_known_speed_minima():
    fps, T = 30.0, 300
    slow = np.array([20, 55, 100, 130, 190, 250])           # frames where the body nearly stops
    t = np.arange(T)
    # speed profile with dips at the slow frames; positions are its running sum along a joint-specific axis
    speed = 1.0 - 0.9 * np.max(np.exp(-0.5 * ((t[:, None] - slow[None]) / 4.0) ** 2), axis=1)
    dist = np.concatenate([[0], np.cumsum((speed[1:] + speed[:-1]) / 2)]) / fps
    dirs = np.random.default_rng(0).normal(size=(24, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    positions = dist[:, None, None] * dirs[None]              # (T, 24, 3), every joint moving at `speed`
    found = kinematic_beats(positions, fps, min_spacing_s=0.25)
    assert len(found) == len(slow)
    assert np.abs(found - slow).max() <= 1
    # minima closer than the spacing keep one
    assert len(kinematic_beats(positions, fps, min_spacing_s=1.5)) < len(slow)
