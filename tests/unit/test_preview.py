"""Stick-figure previews."""
from __future__ import annotations

import matplotlib.image
import numpy as np

from kinemo import preview
from kinemo.core.smpl import smpl_skeleton
from kinemo.demo_motion import demo_walk


def test_side_of_reads_common_spellings():
    for name in ("left_hip", "thigh.L", "Hand_L", "LeftArm", "l_foot", "DEF-upper_arm.L.001"):
        assert preview.side_of(name) == "L", name
    for name in ("right_knee", "shin.R", "Toes_R", "r_hand", "mixamorig:RightForeArm", "ear.R.003"):
        assert preview.side_of(name) == "R", name
    for name in ("pelvis", "spine.003", "Hips", "neck", "Chest"):
        assert preview.side_of(name) == "C", name


def test_filmstrip_draws_the_requested_frames(tmp_path):
    skel, motion = smpl_skeleton(), demo_walk(duration_s=1.0)
    pos = motion.positions(skel)
    seg = preview.skeleton_segments(pos, skel.parents)
    assert seg.shape == (motion.num_frames, skel.num_joints - 1, 2, 3)
    assert np.allclose(seg[:, 0, 1], pos[:, 1]) and np.allclose(seg[:, 0, 0], pos[:, 0])
    sides = [preview.side_of(n) for n in skel.names[1:]]
    shown = preview.filmstrip(tmp_path / "p.png", seg, sides, pos[:, 0], motion.fps, n_frames=5)
    assert shown == [0, 7, 14, 22, 29]
    img = matplotlib.image.imread(tmp_path / "p.png")
    assert img.shape[1] > img.shape[0] > 200
    # Both sides' colours are in the picture.
    rgb = img[..., :3].reshape(-1, 3)
    blue = (rgb[:, 2] > 0.6) & (rgb[:, 0] < 0.3)
    red = (rgb[:, 0] > 0.7) & (rgb[:, 2] < 0.3)
    assert blue.sum() > 200 and red.sum() > 200
