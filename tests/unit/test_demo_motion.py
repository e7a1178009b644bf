"""The procedural demo walk and the BVH asset generated from it."""
from __future__ import annotations

import numpy as np
import pytest

from kinemo.core.bvh import read_bvh
from kinemo.core.rotations import quat_angle
from kinemo.core.smpl import smpl_skeleton
from kinemo.demo_motion import DEMO_BVH, PERIOD_S, demo_bvh_text, demo_walk


def test_asset_is_what_the_generator_writes():
    assert DEMO_BVH.read_text(encoding="utf-8") == demo_bvh_text(), \
        "assets/demo_walk.bvh is stale: run `python -m kinemo.demo_motion`"


def test_asset_reads_back_as_the_motion():
    bvh = read_bvh(DEMO_BVH)
    skel, motion = smpl_skeleton(), demo_walk()
    assert bvh.scale == 1.0 and abs(bvh.motion.fps - motion.fps) < 1e-6
    assert sorted(bvh.skeleton.names) == sorted(skel.names)
    order = [bvh.skeleton.index(n) for n in skel.names]
    ours = motion.positions(skel)
    theirs = bvh.motion.positions(bvh.skeleton)[:, order]
    assert np.abs(ours - theirs).max() < 1e-5


def _walk():
    skel = smpl_skeleton()
    motion = demo_walk()
    return skel, motion, motion.positions(skel)


def test_walks_forward_at_a_walking_pace():
    skel, motion, pos = _walk()
    assert motion.num_frames == 120 and motion.fps == 30
    root = pos[:, 0]
    speed = (root[-1, 2] - root[0, 2]) / ((motion.num_frames - 1) / motion.fps)
    assert 1.0 < speed < 1.8, speed
    assert np.ptp(root[:, 0]) < 0.05, "drifts sideways"
    bob = np.ptp(root[:, 1])
    assert 0.015 < bob < 0.06, f"pelvis bob {bob:.3f} m"


def test_planted_foot_does_not_slide_and_swing_foot_clears_the_floor():
    skel, motion, pos = _walk()
    _, rest = skel.rest_global()
    contact = [skel.index(n) for n in ("left_ankle", "left_foot", "right_ankle", "right_foot")]
    lift = pos[:, contact, 1] - rest[contact, 1]  # height above its own rest height
    assert np.abs(lift.min(axis=1)).max() < 1e-9, "the lowest foot point is not on the floor"
    planted = np.argmin(lift, axis=1)
    same = planted[1:] == planted[:-1]
    step = np.linalg.norm(np.diff(pos[:, contact][..., [0, 2]], axis=0), axis=-1)
    slide = step[np.arange(len(step)), planted[:-1]][same] * motion.fps
    assert np.median(slide) < 0.03 and slide.max() < 0.25, (np.median(slide), slide.max())
    # Each foot spends time in the air: its heel rises well above the floor.
    for ankle in (0, 2):
        assert lift[:, ankle].max() > 0.1


def test_cycle_repeats_and_arms_swing_against_legs():
    skel, motion, pos = _walk()
    n = int(round(PERIOD_S * motion.fps))
    assert quat_angle(motion.rotations[:n], motion.rotations[n:2 * n]).max() < 1e-6
    forward = pos[:, :, 2] - pos[:, :1, 2]  # relative to the pelvis
    for side, other in (("left", "right"), ("right", "left")):
        hand = forward[:, skel.index(f"{side}_wrist")]
        same_foot = forward[:, skel.index(f"{side}_ankle")]
        other_foot = forward[:, skel.index(f"{other}_ankle")]
        assert np.corrcoef(hand, same_foot)[0, 1] < -0.8
        assert np.corrcoef(hand, other_foot)[0, 1] > 0.8


def test_regenerator_takes_options_as_options_not_as_a_file_name(tmp_path, monkeypatch, capsys):
    from kinemo.demo_motion import main
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0 and "BVH to write" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())                     # nothing written, no file called --help
    assert main([str(tmp_path / "walk.bvh")]) == 0
    assert (tmp_path / "walk.bvh").read_text(encoding="utf-8") == demo_bvh_text()
