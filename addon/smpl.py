"""The canonical SMPL skeleton's rest pose, so the add-on can build an SMPL
armature without the backend.

The numbers are ``kinemo.core.smpl.smpl_skeleton()`` (joint offsets from the
parent in metres, backend axes: Y up, facing +Z; rest rotations are identity),
copied here because the extension ships without ``kinemo``; a test checks
that they still agree.
"""
from __future__ import annotations

NAMES = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
)

PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

OFFSETS = (
    (0.000000, 0.940300, 0.000000),
    (0.064700, -0.021900, 0.000000),
    (-0.064700, -0.021900, 0.000000),
    (0.000000, 0.157300, 0.000000),
    (0.000000, -0.390900, 0.000000),
    (0.000000, -0.390900, 0.000000),
    (0.000000, 0.045000, 0.000000),
    (0.000000, -0.409800, 0.000000),
    (0.000000, -0.409800, 0.000000),
    (0.000000, 0.045000, 0.000000),
    (0.000000, -0.074900, 0.090600),
    (0.000000, -0.074900, 0.090600),
    (0.000000, 0.163800, 0.000000),
    (0.049800, 0.129900, 0.000000),
    (-0.049800, 0.129900, 0.000000),
    (0.000000, 0.064500, 0.000000),
    (0.053500, 0.000000, 0.000000),
    (-0.053500, 0.000000, 0.000000),
    (0.243300, 0.000000, 0.000000),
    (-0.243300, 0.000000, 0.000000),
    (0.222900, 0.000000, 0.000000),
    (-0.222900, 0.000000, 0.000000),
    (0.074300, 0.000000, 0.000000),
    (-0.074300, 0.000000, 0.000000),
)
