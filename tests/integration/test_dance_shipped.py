"""Music-to-dance with the shipped model on synthetic click tracks: the dance follows a tempo change
(with beat guidance) and a whole 3-minute song dances in one piece with flat memory."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kinemo.core.bvh import read_bvh
from kinemo.data.music import click_track, features_from_samples, kinematic_beats
from kinemo.eval.report import global_transforms
from kinemo.model.generator import Generator

SR = 22050
FPS = 30.0


@pytest.fixture(scope="module")
def shipped():
    return Generator.load()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_dance_beats_follow_a_click_track_that_speeds_up(shipped, seed):
    slow, fast = 0.75, 0.375                    # 80 bpm for 12 s, then 160 bpm
    times = list(np.arange(0.5, 12.0, slow))
    times += list(np.arange(times[-1] + fast, 24.0, fast))
    music = features_from_samples(click_track(times, 24.5), SR, fps=FPS).matrix
    q, r = shipped.dance(music, seed=seed, beat_guidance=1.0)
    beats = kinematic_beats(global_transforms(q, r)[1], FPS) / FPS
    first = np.diff(beats[(beats > 1.0) & (beats < 11.5)])
    second = np.diff(beats[(beats > 12.5) & (beats < 23.5)])
    assert len(first) >= 4 and len(second) >= 8, (first, second)
    # the movement's accents come about twice as often once the clicks do
    assert np.median(second) < 0.75 * np.median(first), (np.median(first), np.median(second))
    assert abs(np.median(second) - fast) < fast / 3, "accents within a third of the click spacing"


def _dance_peak_rss(song: Path, out: Path) -> tuple[int, float]:
    """Run ``kinemo dance`` in a fresh process: (frames written, peak resident memory in MB)."""
    code = ("import resource, sys; from kinemo.cli import main; rc = main(sys.argv[1:]); "
            "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
    p = subprocess.run([sys.executable, "-c", code, "dance", "--music", str(song), "--out", str(out), "--seed", "0"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    peak_kb = int(p.stdout.split("PEAK_KB")[-1].split()[0])
    return read_bvh(out).motion.rotations.shape[0], peak_kb / 1024


def test_three_minute_song_dances_whole_with_flat_memory(tmp_path):
    import soundfile as sf
    peaks = {}
    for seconds in (30, 180):
        song = tmp_path / f"clicks_{seconds}.wav"
        sf.write(song, click_track(np.arange(0.5, seconds, 0.5), seconds), SR)
        frames, peaks[seconds] = _dance_peak_rss(song, tmp_path / f"dance_{seconds}.bvh")
        assert frames == round(seconds * FPS)
    print(f"\nkinemo dance peak RSS: 30 s song {peaks[30]:.0f} MB, 180 s song {peaks[180]:.0f} MB")
    # six times the song, nearly the same memory: windows are generated and stitched one at a time
    assert peaks[180] < peaks[30] + 100, peaks
