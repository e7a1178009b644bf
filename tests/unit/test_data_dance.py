"""The dance-music source on real clips: IK fit error, side assignment, floor, music alignment,
the fit gate, and dance takes in a built corpus (music.npy, has_music)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from kinemo.core.smpl import SMPL_JOINT_NAMES
from kinemo.data import marker_ik as M
from kinemo.data.cache import build, load
from kinemo.data.dance import END_JOINTS, DanceConfig, load_dance
from kinemo.data.music import MUSIC_DIM
from kinemo.data.sources import LabelBook, iter_source

J = SMPL_JOINT_NAMES.index
CLIP = "DANCE_W_22"   # the shortest waltz whose fit is typical (41 s)


@pytest.fixture(scope="module")
def waltz(dance_dir):
    return load_dance(dance_dir / f"{CLIP}.npz")


@pytest.fixture(scope="module")
def points(dance_dir):
    return np.load(dance_dir / f"{CLIP}.npz")["positions"].astype(np.float64)


def test_ik_fit_error_under_threshold(waltz):
    cfg = DanceConfig()
    assert waltz.reason is None
    assert max(waltz.errors[n][0] for n in END_JOINTS) < cfg.max_end_mean_cm
    assert waltz.end_p99_cm < cfg.max_end_p99_cm
    # knees/elbows/hips/shoulders: source points sit off the joint centres, but not wildly
    assert all(mean < 15 for mean, _ in waltz.errors.values())


def test_ik_reproduces_its_own_fk_and_smpl_bones(points):
    from kinemo.core.smpl import smpl_skeleton
    skel = smpl_skeleton()
    res = M.fit(points[:200], skel, 25.0)
    np.testing.assert_allclose(res.motion.positions(skel), res.positions, atol=1e-9)
    # the hands and feet sit on their points wherever the SMPL limb can reach
    feet = [J("left_ankle"), J("right_ankle")]
    err = np.linalg.norm(res.positions[:, feet] - res.targets[:, feet], axis=-1)
    assert np.median(err) < 0.01


def test_side_assignment_keeps_source_labels(waltz, points):
    """Decision (docs/corpus.md): chain 12-20 is the dancer's left. The fitted left hip lies on
    the hip_L point's side, and the raised waltz hold arm is the left one."""
    from kinemo.core.resample import resample_times
    src = np.interp(resample_times(len(points), 25.0, 30.0), np.arange(len(points)),
                    np.arange(len(points))).round().astype(int)
    pos = waltz.clip.positions
    hips = pos[:, J("left_hip")] - pos[:, J("right_hip")]
    marker = points[src, M.HIP_L] - points[src, M.HIP_R]
    assert np.mean(np.sum(hips * marker, axis=-1) > 0) > 0.99
    reach = (np.linalg.norm(pos[:, J("left_wrist")] - pos[:, J("spine3")], axis=-1)
             - np.linalg.norm(pos[:, J("right_wrist")] - pos[:, J("spine3")], axis=-1))
    assert np.mean(reach > 0) > 0.95        # the outstretched hold arm is the left one
    assert np.median(pos[:, J("left_wrist"), 1] - pos[:, J("right_wrist"), 1]) > 0.03   # and higher


def test_feet_on_the_floor_and_resampled(waltz, points):
    assert waltz.clip.num_frames == round((len(points) - 1) * 30 / 25) + 1
    feet = waltz.clip.positions[:, [J("left_foot"), J("right_foot")], 1].min(axis=1)
    assert abs(np.median(feet) - 0.043) < 0.03        # SMPL's rest foot-joint height
    assert waltz.clip.contacts.any(axis=1).mean() > 0.5


def test_music_aligned_per_motion_frame(waltz, dance_dir):
    z = np.load(dance_dir / f"{CLIP}.npz")
    assert waltz.music.shape == (waltz.clip.num_frames, MUSIC_DIM)
    beats = np.flatnonzero(waltz.music[:, 1])
    bpm = 60 * 30 * (len(beats) - 1) / (beats[-1] - beats[0])
    assert bpm == pytest.approx(float(z["music_bpm_est"]), rel=0.05)


def test_bad_fit_is_rejected(dance_dir, tmp_path):
    z = dict(np.load(dance_dir / f"{CLIP}.npz"))
    rng = np.random.default_rng(1)
    z["positions"] = (z["positions"] + rng.normal(0, 0.12, z["positions"].shape)).astype(np.float32)
    np.savez(tmp_path / "noisy.npz", **z)
    take = load_dance(tmp_path / "noisy.npz")
    assert take.reason is not None and "IK fit" in take.reason and take.music is None


@pytest.fixture
def dance_src(dance_dir, tmp_path):
    """A source folder: the waltz with its song, and another dance's points without one ("no_song")."""
    src = tmp_path / "src"
    src.mkdir()
    for suf in (".npz", ".ogg"):
        shutil.copy(dance_dir / f"{CLIP}{suf}", src / f"{CLIP}{suf}")
    shutil.copy(dance_dir / "DANCE_W_24.npz", src / "no_song.npz")
    return src


def test_dance_takes_in_the_corpus(dance_src, tmp_path):
    src = dance_src
    book = LabelBook()
    raws = list(iter_source(src, book))
    assert [(r.take_id, r.kind) for r in raws] == [(CLIP, "dance"), ("no_song", "dance")]
    build([src], tmp_path / "cache", workers=1, log=lambda s: None)
    c = load(tmp_path / "cache")
    i, j = c.find(CLIP), c.find("no_song")
    t = c.takes[i]
    assert (t["content"], t["style"], t["split"], t["has_music"]) == ("dance", "waltz", "test", True)
    assert any("waltz" in cap for cap in t["captions"])
    m = c.music(i)
    assert m.shape == (t["frames"], MUSIC_DIM) and m[:, 1].sum() > 10
    assert c.music(j) is None and not c.takes[j]["has_music"]
    assert np.all(c.music_features[c.takes[j]["start"]:c.takes[j]["start"] + c.takes[j]["frames"]] == 0)


def test_worker_processes_build_the_same_dance_corpus(dance_src, tmp_path):
    """The default two workers are spawned processes, each with its own numba cache (sharing one, they corrupted
    librosa's compiled code and segfaulted during a full `kinemo data prepare`); they must give exactly one
    process's corpus."""
    src = dance_src
    build([src], tmp_path / "one", workers=1, log=lambda s: None)
    build([src], tmp_path / "two", workers=2, log=lambda s: None)
    one, two = load(tmp_path / "one"), load(tmp_path / "two")
    assert [t["id"] for t in two.takes] == [t["id"] for t in one.takes]
    np.testing.assert_array_equal(two.music_features, one.music_features)
    np.testing.assert_array_equal(two.quats, one.quats)
