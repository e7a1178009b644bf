"""The benches' own pieces: window sampling, key layouts, music beats, shuffling, dance scoring, matmul rate."""
from __future__ import annotations

import numpy as np
import pytest

from kinemo.eval.bench_dance import derangement, fit_length, music_beat_frames, score_rows
from kinemo.eval.bench_inbetween import filled_span, key_layout, subsample, window_starts
from kinemo.eval.bench_speed import matmul_flops


def test_windows_are_deterministic_and_strided():
    assert window_starts([56, 55, 140], 56, 40) == [(0, 0), (2, 0), (2, 40), (2, 80)]
    items = list(range(1000))
    sub = subsample(items, 10)
    assert sub == subsample(items, 10) and len(sub) == 10 and sub[0] == 0 and sub[-1] == 999
    assert subsample(items, 0) == items and subsample(items[:5], 10) == items[:5]


def test_key_layouts_lafan_and_a_key_every_n_frames():
    keys, align = key_layout(5, 10)
    assert len(keys) == 16 and keys[:10].all() and keys[-1] and not keys[10:15].any() and align == 9
    assert filled_span(keys) == slice(10, 15)
    keys, align = key_layout(29, 10, every=100)                  # 3 gaps of 29 frames fit in 100 frames
    assert len(keys) == 91 and np.flatnonzero(keys).tolist() == [0, 30, 60, 90] and align == 0
    assert filled_span(keys) == slice(1, 90)                     # the keys between the gaps included
    with pytest.raises(ValueError, match="no room"):
        key_layout(30, 10, every=31)


def test_music_beats_from_the_beat_channel_or_the_features_object():
    m = np.zeros((90, 37), np.float32)
    m[[3, 33, 63], 1] = 1.0
    m[:, 0] = 1.0  # onset channel must not be read as beats
    assert music_beat_frames(m).tolist() == [3, 33, 63]

    class Features:
        beat_frames = np.array([5, 20])
    assert music_beat_frames(Features()).tolist() == [5, 20]
    with pytest.raises(ValueError, match="beat column"):
        music_beat_frames(np.zeros((10, 1)))


def test_derangement_moves_every_take_and_fit_length():
    for n in (2, 3, 10):
        d = derangement(n)
        assert sorted(d) == list(range(n)) and np.all(d != np.arange(n))
    with pytest.raises(ValueError):
        derangement(1)
    x = np.arange(4)[:, None]
    assert fit_length(x, 10)[:, 0].tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1] and len(fit_length(x, 3)) == 3


def beat_motion(beats, T):
    """Every joint moves along x with speed minima (0.1 of the cruise speed) on ``beats``."""
    speed = np.ones(T)
    for b in beats:
        speed -= 0.9 * np.exp(-((np.arange(T) - b) ** 2) / (2 * 2.0 ** 2))
    pos = np.zeros((T, 24, 3))
    pos[..., 0] = (np.concatenate([[0], np.cumsum(speed[1:])]) * 0.01)[:, None]
    return pos


def test_dance_rows_score_a_dance_on_the_beat_above_chance():
    T = 300
    beats = np.arange(15, T, 20)
    pos = beat_motion(beats, T)
    pos[..., 1] += np.linspace(0.1, 1.6, 24)[None]       # joints at different heights, feet off the floor
    norm = (np.zeros(72), np.ones(72))
    on = score_rows([pos, pos], [beats, beats], norm)
    off = score_rows([pos, pos], [beats + 10, beats + 10], norm)
    assert on["bas_kinematic"] > 0.8 and on["bas_music"] > 0.8
    assert on["bas_kinematic"] > on["bas_kinematic_chance"] + 0.3 and on["bas_music"] > on["bas_music_chance"] + 0.3
    assert off["bas_music"] < on["bas_music_chance"]
    assert on["diversity"] == pytest.approx(0.0) and on["clips"] == 2 and np.isnan(on["skate"])


def test_matmul_rate_is_measured():
    r = matmul_flops("cpu", n=256, repeats=2)
    assert r["flops"] > 1e8 and r["seconds"] > 0
