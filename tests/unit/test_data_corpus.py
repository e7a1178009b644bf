"""The corpus pipeline end to end on a handful of real Bandai takes (plus a corrupted file,
a user-labelled BVH and an AMASS-style .npz), built with 2 worker processes."""
from __future__ import annotations

import importlib
import json
import multiprocessing as mp
import os
import shutil
import time

import numpy as np
import pytest

from kinemo.core.bonemap import auto_map
from kinemo.core.bvh import read_bvh
from kinemo.core.smpl import SMPL_JOINT_NAMES, smpl_skeleton
from kinemo.data.cache import build, corpus_dir, load, worker_pool
from kinemo.data.clip import clip_positions
from kinemo.data.mirror import mirror

J = SMPL_JOINT_NAMES.index


@pytest.fixture(scope="module")
def corpus_env(bandai_dir, tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    for f in bandai_dir.glob("*.bvh"):
        shutil.copy(f, src / f.name)
    # a user's take with its own label file
    shutil.copy(bandai_dir / "dataset-2_wave-left-hand_elderly_001.bvh", src / "my_wave.bvh")
    (src / "my_wave.json").write_text(json.dumps({"content": "wave-left-hand", "style": "happy"}))
    # a corrupted take: cut in the middle of the hierarchy
    text = (bandai_dir / "dataset-1_walk_normal_001.bvh").read_text()
    (src / "broken_take.bvh").write_text(text[: len(text) // 50])
    # an AMASS-style SMPL clip: 2 s standing, drifting forward (Z-up world, body turned upright)
    T = 121
    poses = np.zeros((T, 156))
    poses[:, 0] = np.pi / 2
    trans = np.stack([np.zeros(T), np.linspace(0, 1, T), np.full(T, 0.9)], -1)
    np.savez(src / "amass_stand.npz", poses=poses, trans=trans, mocap_framerate=np.array(60.0),
             betas=np.zeros(16))
    cache = tmp_path_factory.mktemp("cache")
    logs: list[str] = []
    build([src], cache, workers=2, log=logs.append)
    return src, cache, logs


@pytest.fixture(scope="module")
def corpus(corpus_env):
    return load(corpus_env[1])


def test_corrupted_bvh_is_reported_and_skipped(corpus):
    dropped = {d["take"]: d["reason"] for d in corpus.report["dropped"]}
    assert list(dropped) == ["broken_take"]
    assert "unreadable" in dropped["broken_take"] and "broken_take.bvh" in dropped["broken_take"]
    assert len(corpus) == 9  # 7 Bandai takes, the user's take, the AMASS clip


def test_retargeting_keeps_bone_directions(corpus, bandai_files):
    pairs = [(f"{s}_{a}", f"{s}_{b}") for s in ("left", "right")
             for a, b in (("hip", "knee"), ("knee", "ankle"), ("shoulder", "elbow"), ("elbow", "wrist"))]
    for f in bandai_files:
        bvh = read_bvh(f)
        m = auto_map(bvh.skeleton).joints
        src = bvh.motion.positions(bvh.skeleton)
        clip = corpus.clip(f.stem)
        assert clip.num_frames == bvh.motion.num_frames
        for a, b in pairs:
            ds = src[:, bvh.skeleton.index(m[b])] - src[:, bvh.skeleton.index(m[a])]
            dt = clip.positions[:, J(b)] - clip.positions[:, J(a)]
            cos = np.sum(ds * dt, -1) / np.linalg.norm(ds, axis=-1) / np.linalg.norm(dt, axis=-1)
            angle = np.degrees(np.arccos(np.clip(cos, -1, 1))).max()
            assert angle < 1.0, f"{f.name} {a}->{b}: {angle:.2f} degrees"


def test_stored_positions_match_rotations_and_feet_touch_the_floor(corpus):
    skel = smpl_skeleton()
    for i in range(len(corpus)):
        c = corpus.clip(i)
        assert c.quats.dtype == np.float32 and c.contacts.dtype == bool
        np.testing.assert_allclose(clip_positions(skel, c.quats, c.root), c.positions, atol=1e-4)
        feet = c.positions[:, [J("left_ankle"), J("right_ankle"), J("left_foot"), J("right_foot")], 1]
        assert abs(feet.min()) < 0.08, corpus.takes[i]["id"]
    walk = corpus.clip("dataset-1_walk_normal_001")
    # walking: each foot is planted part of the time and swings part of the time
    for k in range(4):
        assert 0.15 < walk.contacts[:, k].mean() < 0.95


def test_amass_clip_is_upright_and_resampled(corpus):
    i = corpus.find("amass_stand")
    c = corpus.clip(i)
    assert c.num_frames == 61  # 2 s at 60 fps -> 30 fps, both ends kept
    assert corpus.takes[i]["source_fps"] == 60.0
    assert np.all(c.positions[:, J("head"), 1] > c.positions[:, J("pelvis"), 1] + 0.4)
    # Z-up forward drift (world y) becomes Y-up depth (-z after the turn)
    np.testing.assert_allclose(c.root[-1, [0, 2]] - c.root[0, [0, 2]], [0, -1], atol=0.02)


def _side_word(text: str) -> set[str]:
    return {w for w in ("left", "right") if w in text.lower()}


def test_captions_match_labels(corpus):
    for t in corpus.takes:
        if t["id"].startswith("dataset-"):
            _, content, style, _ = t["id"].split("_")
            assert (t["content"], t["style"]) == (content, style)
        caps = t["captions"] + t["eval_captions"]
        assert len(set(t["captions"])) == len(t["captions"]) >= 3
        assert not set(t["captions"]) & set(t["eval_captions"])
        if t["content"] and "hand" in t["content"]:
            side = _side_word(t["content"]) or set()
            for c in caps:
                assert "wav" in c.lower() or "raise" in c.lower() or "lift" in c.lower(), c
                assert _side_word(c) == side, c
    mine = corpus.takes[corpus.find("my_wave")]
    assert (mine["content"], mine["style"]) == ("wave-left-hand", "happy")
    assert all("left" in c for c in mine["captions"])


def test_mirrored_left_wave_is_a_right_wave(corpus):
    c = corpus.clip("dataset-2_wave-left-hand_elderly_001")

    def wrist_motion(clip, side):
        w = clip.positions[:, J(f"{side}_wrist")] - clip.positions[:, J("pelvis")]
        return np.ptp(w[:, 1])

    assert wrist_motion(c, "left") > 2 * wrist_motion(c, "right")
    m = mirror(c)
    assert wrist_motion(m, "right") > 2 * wrist_motion(m, "left")
    np.testing.assert_allclose(clip_positions(smpl_skeleton(), m.quats, m.root), m.positions, atol=1e-4)
    mm = mirror(m)
    for a, b in ((c.quats, mm.quats), (c.positions, mm.positions), (c.root, mm.root), (c.contacts, mm.contacts)):
        np.testing.assert_array_equal(a, b)


def test_cache_is_reused_until_a_source_changes(corpus_env):
    src, cache, _ = corpus_env
    manifest = corpus_dir(cache) / "manifest.json"
    before = manifest.read_text()
    logs: list[str] = []
    build([src], cache, workers=2, log=logs.append)
    assert manifest.read_text() == before and any("up to date" in l for l in logs)
    t0 = time.time()
    load(cache)
    assert time.time() - t0 < 1.0
    os.utime(src / "my_wave.json", ns=(0, 0))
    build([src], cache, workers=2, log=logs.append)
    assert manifest.read_text() != before
    assert len(load(cache)) == 9


def _jit_cache_seen(barrier) -> tuple[str | None, str]:
    """In a build worker, once every worker holds a task: its NUMBA_CACHE_DIR and numba's own cache folder."""
    barrier.wait(timeout=60)
    return os.environ.get("NUMBA_CACHE_DIR"), importlib.import_module("numba").config.CACHE_DIR


def test_build_workers_never_share_a_jit_cache(tmp_path):
    # two processes writing one numba cache at once corrupted librosa's gufunc cache (a segfault, then and later)
    with mp.Manager() as manager, worker_pool(2, tmp_path) as pool:
        barrier = manager.Barrier(2)    # both tasks held at once: each ran in its own worker
        seen = [f.result(timeout=120) for f in [pool.submit(_jit_cache_seen, barrier) for _ in range(2)]]
    assert sorted(env for env, _ in seen) == [str(tmp_path / "worker-0"), str(tmp_path / "worker-1")]
    assert all(numba_dir == env for env, numba_dir in seen)
