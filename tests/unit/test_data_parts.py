"""Pieces of the corpus pipeline on constructed inputs: labels, captions, splits, gates,
mirroring and the AMASS conventions."""
from __future__ import annotations

import numpy as np
import pytest

from kinemo.core import rotations as R
from kinemo.core.skeleton import Motion
from kinemo.core.smpl import SMPL_JOINT_NAMES, smpl_skeleton
from kinemo.data import splits as S
from kinemo.data.amass import amass_to_motion
from kinemo.data.captions import EVAL_TEMPLATES, TRAIN_TEMPLATES, captions
from kinemo.data.clip import clip_from_motion, clip_positions
from kinemo.data.gates import GateConfig, check_bone_lengths, check_clip
from kinemo.data.labels import Labels, from_bandai_name, mirror_label, parse_sidecar, read_label_list
from kinemo.data.mirror import mirror
from kinemo.data.pipeline import rest_contact_heights

J = SMPL_JOINT_NAMES.index


def _random_clip(T=40, seed=0):
    rng = np.random.default_rng(seed)
    skel = smpl_skeleton()
    rot = R.quat_normalize(np.tile([1.0, 0, 0, 0], (T, 24, 1)) + 0.3 * rng.normal(size=(T, 24, 4)))
    tr = np.repeat(skel.offsets[None], T, 0)
    tr[:, 0] += np.cumsum(rng.normal(scale=0.01, size=(T, 3)), 0)
    return clip_from_motion(skel, Motion(rot, tr, 30.0))


def test_labels_from_names_sidecars_and_mirroring():
    assert from_bandai_name("dataset-2_wave-left-hand_elderly_001") == Labels("wave-left-hand", "elderly")
    assert from_bandai_name("my_take") is None
    vocab = read_label_list("dataset-2_walk\ndataset-2_run\n")
    assert parse_sidecar('{"content": 1, "style": "Not Confident"}', vocab) == Labels("run", "not-confident")
    with pytest.raises(ValueError, match="index 5"):
        parse_sidecar('{"content": 5}', vocab, where="x.json")
    with pytest.raises(ValueError, match="x.json"):
        parse_sidecar("{oops", where="x.json")
    assert mirror_label("wave-left-hand") == "wave-right-hand"
    assert mirror_label("walk-turn-right") == "walk-turn-left"
    assert mirror_label("bow") == "bow"


def test_captions_are_varied_stable_and_held_out_wording_differs():
    lab = Labels("wave-right-hand", "active")
    a = captions("t1", lab, 5)
    assert a == captions("t1", lab, 5) and len(set(a)) == 5
    assert all("right" in c and "left" not in c for c in a)
    assert all(any(w in c for w in ("energ", "lively", "full of energy")) for c in a)
    held = captions("t1", lab, 3, held_out=True)
    assert not set(TRAIN_TEMPLATES) & set(EVAL_TEMPLATES) and not set(a) & set(held)
    # unknown labels still give sensible sentences with their words
    u = captions("t2", Labels("jump-rope", "sleepy"), 3)
    assert all("jump rope" in c for c in u) and any("sleepy" in c for c in u)


def test_fixed_splits_hold_out_whole_takes_balanced():
    listed = S.read_splits()
    # the Bandai takes; the 35 dance-music takes were added later by deal_groups (checked below)
    fixed = {t: v for t, v in listed.items() if not t.startswith("DANCE_")}
    lists = {s: [t for t, v in fixed.items() if v == s] for s in S.SPLITS}
    assert sum(map(len, lists.values())) == len(fixed) == 3076 and len(listed) == 3076 + 35
    assert 0.08 < len(lists["test"]) / len(fixed) < 0.12 and 0.03 < len(lists["val"]) / len(fixed) < 0.07
    for content in ("walk", "run", "wave-left-hand", "raise-up-right-hand"):
        ids = [t for t in fixed if from_bandai_name(t).content == content]
        share = sum(fixed[t] == "test" for t in ids) / len(ids)
        assert 0.07 < share < 0.13, content
    labels = {t: from_bandai_name(t) for t in fixed}
    again = S.make_splits(labels)
    assert {t: s for s, ts in again.items() for t in ts} == fixed  # reproducible from the take list
    assert S.split_of("someone_else_take", fixed) == S.split_of("someone_else_take", fixed)
    # dance: whole songs, every genre in test, reproducible from the per-genre deal
    dance = {t: v for t, v in listed.items() if t.startswith("DANCE_")}
    genre = {"C": "cha-cha", "R": "rumba", "W": "waltz"}
    assert S.deal_groups({t: Labels("dance", genre[t.split("_")[1]]) for t in dance}) == dance
    assert {genre[t.split("_")[1]] for t, v in dance.items() if v == "test"} == set(genre.values())


def test_adding_takes_never_moves_listed_ones(tmp_path):
    S.write_splits({"train": ["a", "b"], "val": ["c"], "test": ["d"]}, tmp_path)
    assert S.add_to_splits({"a": "train", "e": "test"}, tmp_path) == 1
    assert S.read_splits(tmp_path) == {"a": "train", "b": "train", "c": "val", "d": "test", "e": "test"}
    with pytest.raises(ValueError, match="fixed"):
        S.add_to_splits({"c": "test"}, tmp_path)


def test_gates_catch_bad_clips():
    cfg, rest = GateConfig(), rest_contact_heights()
    skel = smpl_skeleton()
    good = clip_from_motion(skel, skel.rest_motion(60))
    assert check_clip(good, rest, cfg) is None
    assert "too short" in check_clip(clip_from_motion(skel, skel.rest_motion(10)), rest, cfg)
    sunk = skel.rest_motion(60)
    sunk.translations[20:30, 0, 1] -= 0.3
    assert "penetration" in check_clip(clip_from_motion(skel, sunk), rest, cfg)
    fly = skel.rest_motion(90)
    fly.translations[10:60, 0, 1] += 0.5
    assert "floating" in check_clip(clip_from_motion(skel, fly), rest, cfg)
    jump = skel.rest_motion(60)
    jump.translations[30:, 0, 0] += 2.0
    assert "teleport" in check_clip(clip_from_motion(skel, jump), rest, cfg)
    nan = clip_from_motion(skel, skel.rest_motion(60))
    nan.quats[5, 3] = np.nan
    assert "NaN" in check_clip(nan, rest, cfg)
    pos = np.repeat(skel.rest_global()[1][None], 10, 0)
    assert check_bone_lengths(skel, pos, cfg) is None
    pos[4:, J("left_wrist")] += [0.2, 0, 0]
    assert "left_wrist" in check_bone_lengths(skel, pos, cfg)


def test_mirror_reflects_and_swaps_sides():
    c = _random_clip()
    m = mirror(c)
    # mirrored rotations drive FK to exactly the mirrored positions
    np.testing.assert_allclose(clip_positions(smpl_skeleton(), m.quats, m.root), m.positions, atol=1e-5)
    np.testing.assert_allclose(m.positions[:, J("right_wrist"), 0], -c.positions[:, J("left_wrist"), 0])
    np.testing.assert_array_equal(m.contacts[:, 0], c.contacts[:, 1])
    mm = mirror(m)
    for a, b in ((c.quats, mm.quats), (c.root, mm.root), (c.positions, mm.positions), (c.contacts, mm.contacts)):
        np.testing.assert_array_equal(a, b)


def test_amass_z_up_standing_becomes_y_up_standing():
    T = 5
    poses = np.zeros((T, 72))
    poses[:, 0] = np.pi / 2  # AMASS turns SMPL's Y-up body upright in its Z-up world
    trans = np.array([[0.0, 2.0, 1.0]] * T)  # 2 m along world y (horizontal in Z-up)
    m = amass_to_motion(poses, trans, 120.0)
    pos = m.positions(smpl_skeleton())
    assert np.all(pos[:, J("head"), 1] > pos[:, J("pelvis"), 1] + 0.4)
    np.testing.assert_allclose(pos[:, J("pelvis"), 2], -2.0, atol=1e-9)   # world y -> -z
    feet = pos[:, [J("left_foot"), J("right_foot")], 1]
    np.testing.assert_allclose(feet, smpl_skeleton().rest_global()[1][J("left_foot"), 1], atol=1e-6)
