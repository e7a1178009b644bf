"""Retargeting: invariances on constructed skeletons, and measured properties on real Bandai takes."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from kinemo.core import rotations as R
from kinemo.core.bonemap import NotHumanoidError, auto_map
from kinemo.core.bvh import read_bvh, write_bvh
from kinemo.core.retarget import retarget
from kinemo.core.skeleton import Motion, Skeleton
from kinemo.core.smpl import SMPL_JOINT_NAMES, SMPL_PARENTS, smpl_skeleton


def _random_motion(skel: Skeleton, T: int = 40, seed: int = 0, amp: float = 0.5) -> Motion:
    """Smooth random local rotations about the rest pose, a walking root."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, T)[:, None, None]
    aa = amp * np.sin(t * rng.uniform(0.5, 2, (1, skel.num_joints, 3)) + rng.uniform(0, 6, (1, skel.num_joints, 3)))
    rot = R.quat_mul(skel.rest_rotations[None], R.axis_angle_to_quat(aa))
    trans = np.repeat(skel.offsets[None], T, 0)
    trans[:, 0, 2] += np.linspace(0, 1.5, T)
    return Motion(rot, trans, 30.0)


def _mapped_positions(skel, motion, roles):
    idx = auto_map(skel).indices(skel)
    return motion.positions(skel)[:, [idx[r] for r in roles]]


def _with_rest_rotations(skel: Skeleton, rest_world: np.ndarray) -> Skeleton:
    """Same joint positions, new world rest orientations (bone rolls / axis conventions)."""
    _, pos = skel.rest_global()
    m = np.tile(np.eye(4), (skel.num_joints, 1, 1))
    m[:, :3, :3] = R.quat_to_matrix(rest_world)
    m[:, :3, 3] = pos
    return Skeleton.from_rest_matrices(skel.names, skel.parents, m)


ROLES = [r for r in SMPL_JOINT_NAMES]


def test_identity_retarget_reproduces_motion():
    smpl = smpl_skeleton()
    m = _random_motion(smpl)
    out = retarget(smpl, m, smpl, fix_ground=False)
    np.testing.assert_allclose(out.positions(smpl), m.positions(smpl), atol=1e-9)


def test_bone_rolls_and_axis_conventions_do_not_change_the_pose():
    smpl = smpl_skeleton()
    rng = np.random.default_rng(3)
    rolled = _with_rest_rotations(smpl, R.quat_normalize(rng.normal(size=(24, 4))))
    m = _random_motion(smpl, seed=1)
    out = retarget(smpl, m, rolled, fix_ground=False)
    np.testing.assert_allclose(out.positions(rolled), m.positions(smpl), atol=1e-6)
    back = retarget(rolled, out, smpl, fix_ground=False)
    np.testing.assert_allclose(R.quat_angle(back.rotations, m.rotations), 0, atol=1e-6)


def test_a_pose_target_gets_the_same_bone_directions():
    smpl = smpl_skeleton()
    # an A-pose: arms 45 degrees down, by rotating the shoulders' rest
    rest = smpl.rest_rotations.copy()
    for name, sign in (("left_shoulder", -1), ("right_shoulder", 1)):
        rest[smpl.index(name)] = R.axis_angle_to_quat(np.array([0, 0, sign * np.pi / 4]))
    apose = Skeleton(smpl.names, smpl.parents, smpl.offsets, rest)
    _, p = apose.rest_global()
    assert p[smpl.index("left_wrist"), 1] < p[smpl.index("left_shoulder"), 1] - 0.3  # really an A-pose
    m = _random_motion(smpl, seed=2)
    out = retarget(smpl, m, apose, fix_ground=False)
    np.testing.assert_allclose(out.positions(apose), m.positions(smpl), atol=1e-6)


def test_facing_of_the_target_rest_is_absorbed():
    smpl = smpl_skeleton()
    turn = R.axis_angle_to_quat(np.array([0, np.pi / 2, 0]))
    offsets = smpl.offsets.copy()
    offsets[0] = R.quat_apply(turn, offsets[0])
    rest = smpl.rest_rotations.copy()
    rest[0] = turn  # the whole rest pose faces +X
    turned = Skeleton(smpl.names, smpl.parents, offsets, rest)
    m = _random_motion(smpl, seed=4)
    out = retarget(smpl, m, turned, fix_ground=False)
    np.testing.assert_allclose(out.positions(turned), m.positions(smpl), atol=1e-6)


def test_root_scaled_by_leg_length_and_target_bone_lengths_kept():
    smpl = smpl_skeleton()
    big = smpl.scaled(1.25)
    m = _random_motion(smpl, seed=5)
    out = retarget(smpl, m, big, fix_ground=False)
    np.testing.assert_allclose(out.root_positions, 1.25 * m.root_positions, atol=1e-9)
    pos = out.positions(big)
    lengths = np.linalg.norm(pos[:, 1:] - pos[:, big.parents[1:]], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(big.bone_lengths()[1:], lengths.shape), atol=1e-9)


def test_feet_land_on_the_targets_floor_whatever_its_legs():
    smpl = smpl_skeleton()
    m = _random_motion(smpl, seed=6, amp=0.2)
    feet = [smpl.index(r) for r in ("left_ankle", "right_ankle", "left_foot", "right_foot")]
    for shin in (0.8, 1.3):  # shorter and longer shins than the rest height suggests
        offs = smpl.offsets.copy()
        for n in ("left_ankle", "right_ankle"):
            offs[smpl.index(n)] *= shin
        tgt = Skeleton(smpl.names, smpl.parents, offs)
        out = retarget(smpl, m, tgt, fix_ground=False)
        # a rig's sole: its lowest foot joint standing in its rest pose (a rest below the floor counts as 0)
        sole = lambda sk: max(0.0, sk.rest_global()[1][feet, 1].min())  # noqa: E731
        low_src = m.positions(smpl)[:, feet, 1].min() - sole(smpl)
        low_tgt = out.positions(tgt)[:, feet, 1].min() - sole(tgt)
        # the clip's lowest foot contact keeps its clearance above each rig's own sole
        scale = out.root_positions[-1, 2] / m.root_positions[-1, 2]
        assert abs(low_tgt - scale * low_src) < 1e-9, shin
        # and with the ground fix, no foot goes below the floor further than the source's do
        fixed = retarget(smpl, m, tgt).positions(tgt)[:, feet, 1].min(axis=1)
        src_abs = m.positions(smpl)[:, feet, 1].min(axis=1)
        assert np.all(fixed >= np.minimum(scale * src_abs, 0.0) - 1e-9), shin


def _named(names_map: dict[str, str], extra: list[tuple[str, str, tuple]] = ()) -> Skeleton:
    """SMPL geometry under other names, plus extra joints (name, parent, offset)."""
    smpl = smpl_skeleton()
    names = [names_map.get(n, f"x_{n}") for n in smpl.names]
    return smpl, Skeleton(names, smpl.parents, smpl.offsets)


MIXAMO = {"pelvis": "mixamorig:Hips", "left_hip": "mixamorig:LeftUpLeg", "right_hip": "mixamorig:RightUpLeg",
          "spine1": "mixamorig:Spine", "left_knee": "mixamorig:LeftLeg", "right_knee": "mixamorig:RightLeg",
          "spine2": "mixamorig:Spine1", "left_ankle": "mixamorig:LeftFoot", "right_ankle": "mixamorig:RightFoot",
          "spine3": "mixamorig:Spine2", "left_foot": "mixamorig:LeftToeBase", "right_foot": "mixamorig:RightToeBase",
          "neck": "mixamorig:Neck", "left_collar": "mixamorig:LeftShoulder", "right_collar": "mixamorig:RightShoulder",
          "head": "mixamorig:Head", "left_shoulder": "mixamorig:LeftArm", "right_shoulder": "mixamorig:RightArm",
          "left_elbow": "mixamorig:LeftForeArm", "right_elbow": "mixamorig:RightForeArm",
          "left_wrist": "mixamorig:LeftHand", "right_wrist": "mixamorig:RightHand",
          "left_hand": "mixamorig:LeftHandMiddle1", "right_hand": "mixamorig:RightHandMiddle1"}
CMU = {"pelvis": "Hips", "left_hip": "LeftUpLeg", "right_hip": "RightUpLeg", "spine1": "LowerBack",
       "left_knee": "LeftLeg", "right_knee": "RightLeg", "spine2": "Spine", "left_ankle": "LeftFoot",
       "right_ankle": "RightFoot", "spine3": "Spine1", "left_foot": "LeftToeBase", "right_foot": "RightToeBase",
       "neck": "Neck", "left_collar": "LeftShoulder", "right_collar": "RightShoulder", "head": "Head",
       "left_shoulder": "LeftArm", "right_shoulder": "RightArm", "left_elbow": "LeftForeArm",
       "right_elbow": "RightForeArm", "left_wrist": "LeftHand", "right_wrist": "RightHand",
       "left_hand": "LeftFingerBase", "right_hand": "RightFingerBase"}


@pytest.mark.parametrize("names", [MIXAMO, CMU], ids=["mixamo", "cmu"])
def test_maps_mixamo_and_cmu_names_without_edits(names):
    smpl, skel = _named(names)
    bm = auto_map(skel)
    expected = {r: n for r, n in names.items() if not n.endswith(("FingerBase", "Middle1"))}
    assert {r: bm.joints[r] for r in expected} == expected
    assert not bm.missing_required()


def test_cmu_hip_joints_and_neck1_are_left_unmapped():
    """CMU's LHipJoint / Neck1 are extra joints; hips still map to the thighs."""
    smpl = smpl_skeleton()
    names, parents, offsets = [], [], []
    order = {}

    def add(name, parent, offset):
        order[name] = len(names)
        names.append(name)
        parents.append(order[parent] if parent else -1)
        offsets.append(offset)
    o = smpl.offsets
    add("Hips", None, o[0])
    for s, S, k in (("L", "Left", 1), ("R", "Right", 2)):
        add(f"{s}HipJoint", "Hips", o[k] * 0.5)
        add(f"{S}UpLeg", f"{s}HipJoint", o[k] * 0.5)
        add(f"{S}Leg", f"{S}UpLeg", o[k + 3])
        add(f"{S}Foot", f"{S}Leg", o[k + 6])
        add(f"{S}ToeBase", f"{S}Foot", o[k + 9])
    add("LowerBack", "Hips", o[3]); add("Spine", "LowerBack", o[6]); add("Spine1", "Spine", o[9])  # noqa: E702
    add("Neck", "Spine1", o[12] * 0.5); add("Neck1", "Neck", o[12] * 0.5); add("Head", "Neck1", o[15])  # noqa: E702
    for S, k in (("Left", 13), ("Right", 14)):
        add(f"{S}Shoulder", "Spine1", o[k]); add(f"{S}Arm", f"{S}Shoulder", o[k + 3])  # noqa: E702
        add(f"{S}ForeArm", f"{S}Arm", o[k + 5]); add(f"{S}Hand", f"{S}ForeArm", o[k + 7])  # noqa: E702
    skel = Skeleton(names, parents, offsets)
    bm = auto_map(skel)
    assert bm.joints["left_hip"] == "LeftUpLeg" and bm.joints["pelvis"] == "Hips"
    assert bm.joints["neck"] == "Neck" and bm.joints["head"] == "Head"
    assert bm.joints["spine1"] == "LowerBack" and bm.joints["spine3"] == "Spine1"
    assert "LHipJoint" not in bm.joints.values() and "Neck1" not in bm.joints.values()
    # and a motion goes through it and back with mapped joints in place
    m = _random_motion(smpl, seed=7, amp=0.3)
    out = retarget(smpl, m, skel, fix_ground=False)
    back = retarget(skel, out, smpl, fix_ground=False)
    roles = ["left_knee", "right_ankle", "left_wrist", "head"]
    np.testing.assert_allclose(_mapped_positions(smpl, back, roles), _mapped_positions(smpl, m, roles), atol=1e-6)


def test_names_failing_falls_back_to_geometry():
    smpl = smpl_skeleton()
    skel = Skeleton([f"joint{i}" for i in range(24)], smpl.parents, smpl.offsets)
    bm = auto_map(skel)
    for r in ("pelvis", "left_hip", "right_knee", "left_ankle", "left_wrist", "right_elbow", "spine3"):
        assert bm.joints[r] == f"joint{SMPL_JOINT_NAMES.index(r)}", r
        assert bm.confidence[r] <= 0.5


def test_non_humanoid_is_refused_with_the_missing_joints_named():
    skel = Skeleton(["root", "a", "b"], [-1, 0, 1], [[0, 0, 0], [0, 1, 0], [0, 1, 0]])
    with pytest.raises(NotHumanoidError, match="left_hip"):
        auto_map(skel)


def test_nan_source_is_refused():
    smpl = smpl_skeleton()
    m = smpl.rest_motion(3)
    m.rotations[1, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        retarget(smpl, m, smpl)


# --- real data ---------------------------------------------------------------

def test_bandai_maps_without_edits(bandai_files):
    skel = read_bvh(bandai_files[0]).skeleton
    bm = auto_map(skel)
    assert bm.joints["pelvis"] == "Hips" and bm.joints["left_hip"] == "UpperLeg_L"
    assert bm.joints["left_collar"] == "Shoulder_L" and bm.joints["left_shoulder"] == "UpperArm_L"
    assert bm.joints["right_foot"] == "Toes_R" and bm.joints["spine3"] == "Chest"
    assert set(bm.unmapped) == {"spine2", "left_hand", "right_hand"}


def test_bandai_smpl_bandai_round_trip(bandai_files):
    smpl = smpl_skeleton()
    for path in bandai_files:
        b = read_bvh(path)
        on_smpl = retarget(b.skeleton, b.motion, smpl)
        back = retarget(smpl, on_smpl, b.skeleton, tgt_motion=b.motion)
        bm = auto_map(b.skeleton)
        idx = bm.indices(b.skeleton)
        mapped = list(idx.values())
        p0, p1 = b.motion.positions(b.skeleton), back.positions(b.skeleton)
        rel0 = p0[:, mapped] - p0[:, [idx["pelvis"]]]
        rel1 = p1[:, mapped] - p1[:, [idx["pelvis"]]]
        err = np.linalg.norm(rel1 - rel0, axis=-1).max()
        assert err < 0.01, f"{path.name}: round trip error {err:.4f} m"
        # SMPL bone lengths exact on every frame
        ps = on_smpl.positions(smpl)
        lengths = np.linalg.norm(ps[:, 1:] - ps[:, smpl.parents[1:]], axis=-1)
        np.testing.assert_allclose(lengths, np.broadcast_to(smpl.bone_lengths()[1:], lengths.shape), atol=1e-9)
        # feet no deeper below the floor than the source's
        feet_src = [idx[r] for r in ("left_ankle", "right_ankle", "left_foot", "right_foot")]
        src_low = p0[:, feet_src, 1].min()
        assert ps[:, [7, 8, 10, 11], 1].min() >= min(src_low, 0.0) - 1e-6, path.name


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "kinemo.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_cli_retarget_to_smpl_and_back(bandai_files, tmp_path):
    src = bandai_files[0]
    r = _run_cli("retarget", src, "--target", "smpl", "--out", tmp_path / "smpl.bvh")
    assert r.returncode == 0, r.stderr
    smpl_bvh = read_bvh(tmp_path / "smpl.bvh")
    assert set(smpl_bvh.skeleton.names) == set(SMPL_JOINT_NAMES)
    r = _run_cli("retarget", tmp_path / "smpl.bvh", "--target", src, "--out", tmp_path / "back.bvh")
    assert r.returncode == 0, r.stderr
    back, orig = read_bvh(tmp_path / "back.bvh"), read_bvh(src)
    assert back.skeleton.names == orig.skeleton.names and back.motion.num_frames == orig.motion.num_frames
    np.testing.assert_allclose(back.skeleton.offsets, orig.skeleton.offsets, atol=1e-6)  # target bones kept


def test_cli_map_override_and_errors(tmp_path):
    smpl = smpl_skeleton()
    src = tmp_path / "src.bvh"
    write_bvh(src, smpl, _random_motion(smpl, T=10))
    # swap the arms by hand: the left wrist now follows the source's right wrist
    mp = tmp_path / "map.json"
    mp.write_text(json.dumps({"right_wrist": "left_wrist", "left_wrist": None}))
    r = _run_cli("retarget", src, "--target", "smpl", "--out", tmp_path / "o.bvh", "--map", mp)
    assert r.returncode == 0, r.stderr
    r = _run_cli("retarget", src, "--target", "smpl", "--out", tmp_path / "o.bvh")
    assert r.returncode == 2 and "exists" in r.stderr  # never overwrites silently
    mp.write_text(json.dumps({"nope": "left_wrist"}))
    r = _run_cli("retarget", src, "--target", "smpl", "--out", tmp_path / "o2.bvh", "--map", mp)
    assert r.returncode == 2 and "'nope'" in r.stderr
    r = _run_cli("retarget", tmp_path / "missing.bvh", "--target", "smpl", "--out", tmp_path / "o3.bvh")
    assert r.returncode == 2 and "missing.bvh" in r.stderr and "Traceback" not in r.stderr
    bad = tmp_path / "robot.bvh"
    bad.write_text("HIERARCHY\nROOT base\n{\n OFFSET 0 0 0\n CHANNELS 3 Zrotation Xrotation Yrotation\n"
                   " JOINT arm\n {\n  OFFSET 0 1 0\n  CHANNELS 3 Zrotation Xrotation Yrotation\n"
                   "  End Site\n  {\n   OFFSET 0 1 0\n  }\n }\n}\n"
                   "MOTION\nFrames: 1\nFrame Time: 0.0333333\n0 0 0 0 0 0\n")
    r = _run_cli("retarget", bad, "--target", "smpl", "--out", tmp_path / "o4.bvh")
    assert r.returncode == 2 and "not a humanoid" in r.stderr


@pytest.mark.parametrize("name,expected", [
    ("mixamorig:LeftUpLeg", ("left", "upleg")), ("LHipJoint", ("left", "hipjoint")), ("lfemur", ("left", "femur")),
    ("DEF-thigh.L", ("left", "thigh")), ("Bip01 L Thigh", ("left", "thigh")), ("UpperLeg_L", ("left", "upperleg")),
    ("LowerArm_L", ("left", "lowerarm")), ("hand.R", ("right", "hand")), ("spine.003", (None, "spine003")),
    ("DEF-upper_arm.L.001", ("left", "upperarm")), ("Leg_Left", ("left", "leg")), ("rhumerus", ("right", "humerus")),
    ("Root", (None, "root")), ("l_knee", ("left", "knee")),
])
def test_name_normalisation(name, expected):
    from kinemo.core.bonemap import split_side
    assert split_side(name) == expected
