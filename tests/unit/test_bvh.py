"""BVH read/write: round trips of random motions, malformed files, real Bandai takes."""
from __future__ import annotations

import re

import numpy as np
import pytest

from kinemo.core import rotations as R
from kinemo.core.bvh import BvhError, fps_from_frame_time, format_bvh, parse_bvh, read_bvh, save_bvh, write_bvh
from kinemo.core.skeleton import Motion, Skeleton
from kinemo.core.smpl import smpl_skeleton

POS = ("Xposition", "Yposition", "Zposition")
ROT = ("Xrotation", "Yrotation", "Zrotation")


def random_case(rng, J: int = 9, frames: int = 6, fps: float = 30.0):
    """A skeleton (parents in non-DFS order), per-joint channels in any order, and a motion they can carry."""
    parents = np.array([-1] + [int(rng.integers(0, j)) for j in range(1, J)])
    names = [f"j{j}" if j % 3 else f"mixamorig:Part.{j}_L" for j in range(J)]
    offsets = rng.normal(size=(J, 3)) * 0.3
    leaves = [j for j in range(J) if j not in parents]
    end_sites = {j: rng.normal(size=3) * 0.1 for j in leaves if rng.random() < 0.7}
    end_sites[0] = rng.normal(size=3)  # an End Site on a joint with children, too
    channels = []
    for j in range(J):
        rot = list(rng.permutation(ROT)) if (j == 0 or rng.random() < 0.85) else []
        npos = 3 if j == 0 else int(rng.choice([0, 0, 1, 2, 3]))
        pos = list(rng.choice(POS, npos, replace=False))
        ch = rot + pos
        rng.shuffle(ch)  # interleave position and rotation channels
        channels.append(tuple(str(c) for c in ch))
    skel = Skeleton(names, parents, offsets, None, end_sites)
    rot = R.quat_normalize(rng.normal(size=(frames, J, 4)))
    trans = np.repeat(offsets[None], frames, 0)
    for j, ch in enumerate(channels):
        if not any(c in ROT for c in ch):
            rot[:, j] = R.quat_identity()
        for c in ch:
            if c in POS:
                trans[:, j, POS.index(c)] = rng.normal(size=frames)
    return skel, Motion(rot, trans, fps), channels


def assert_same_motion(skel_a, mot_a, skel_b, mot_b, atol=1e-5):
    """Same joints by name, same rest pose, same motion (quaternions up to sign)."""
    assert sorted(skel_a.names) == sorted(skel_b.names)
    idx = [skel_b.index(n) for n in skel_a.names]
    assert [skel_a.names[p] if p >= 0 else None for p in skel_a.parents] == \
        [skel_b.names[p] if p >= 0 else None for p in skel_b.parents[idx]]
    assert np.allclose(skel_b.offsets[idx], skel_a.offsets, atol=atol)
    ends_b = {skel_b.names[k]: v for k, v in skel_b.end_sites.items()}
    assert sorted(ends_b) == sorted(skel_a.names[k] for k in skel_a.end_sites)
    for k, v in skel_a.end_sites.items():
        assert np.allclose(ends_b[skel_a.names[k]], v, atol=atol)
    assert mot_b.num_frames == mot_a.num_frames
    assert np.all(R.quat_angle(mot_b.rotations[:, idx], mot_a.rotations) < atol)
    assert np.allclose(mot_b.translations[:, idx], mot_a.translations, atol=atol)
    assert np.allclose(mot_b.positions(skel_b)[:, idx], mot_a.positions(skel_a), atol=atol * 10)


@pytest.mark.parametrize("seed", range(8))
def test_random_motion_round_trip(tmp_path, seed):
    rng = np.random.default_rng(seed)
    skel, motion, channels = random_case(rng, J=int(rng.integers(2, 14)))
    path = tmp_path / "m.bvh"
    write_bvh(path, skel, motion, channels)
    got = read_bvh(path, scale=1.0)
    assert_same_motion(skel, motion, got.skeleton, got.motion)
    idx = [got.skeleton.index(n) for n in skel.names]
    assert [got.channels[i] for i in idx] == channels
    assert got.motion.fps == 30.0
    # and once more through save_bvh: the text is stable
    save_bvh(tmp_path / "again.bvh", got)
    assert (tmp_path / "again.bvh").read_text() == path.read_text()


@pytest.mark.parametrize("fps", [24.0, 1 / 0.0416667, 30.0, 29.97, 23.976, 59.94, 120.0, 12.5, 7.0])
def test_frame_time_round_trip(tmp_path, fps):
    rng = np.random.default_rng(1)
    skel, motion, channels = random_case(rng, J=3, frames=2, fps=fps)
    write_bvh(tmp_path / "m.bvh", skel, motion, channels)
    got = read_bvh(tmp_path / "m.bvh").motion.fps
    want = float(round(fps)) if abs(fps - round(fps)) < 1e-4 * fps else fps
    assert got == pytest.approx(want, rel=1e-8)
    if want == round(want):
        assert got == want  # exact


@pytest.mark.parametrize("frame_time, fps", [
    ("0.0333333", 30.0), ("0.033333", 30.0), ("0.0416667", 24.0), ("0.041666666666666664", 24.0),
    ("0.00833333", 120.0), ("1", 1.0), ("0.04", 25.0),
])
def test_frame_time_snaps_to_whole_fps(frame_time, fps):
    text = MINIMAL.replace("Frame Time: 0.0333333", f"Frame Time: {frame_time}")
    assert parse_bvh(text).motion.fps == fps


@pytest.mark.parametrize("frame_time", ["0.0333667", "0.0417083", "0.0166833", "0.0123", "0.07", "3.5"])
def test_frame_time_off_whole_fps_is_kept_exact(frame_time):
    text = MINIMAL.replace("Frame Time: 0.0333333", f"Frame Time: {frame_time}")
    assert parse_bvh(text).motion.fps == 1.0 / float(frame_time)


def test_fps_snapping_tolerance():
    assert fps_from_frame_time(1 / 30.002) == 30.0  # within 1e-4
    assert fps_from_frame_time(1 / 30.004) == pytest.approx(30.004)
    assert fps_from_frame_time(1 / 29.97) == pytest.approx(29.97)  # NTSC stays NTSC
    assert fps_from_frame_time(1 / 0.4) == pytest.approx(0.4)


def test_smpl_order_is_not_dfs_and_still_round_trips(tmp_path):
    skel = smpl_skeleton()
    rng = np.random.default_rng(3)
    motion = Motion(R.quat_normalize(rng.normal(size=(4, 24, 4))),
                    np.repeat(skel.offsets[None], 4, 0) + [[[0.1, 0, 0.2]] + [[0, 0, 0]] * 23], 30)
    write_bvh(tmp_path / "smpl.bvh", skel, motion)
    got = read_bvh(tmp_path / "smpl.bvh")
    assert got.skeleton.names != skel.names  # the file lists joints depth-first
    assert got.scale == 1.0
    assert_same_motion(skel, motion, got.skeleton, got.motion)


def test_centimetre_files_are_scaled_to_metres(tmp_path):
    rng = np.random.default_rng(4)
    skel = smpl_skeleton()
    motion = Motion(R.quat_normalize(rng.normal(size=(3, 24, 4))), np.repeat(skel.offsets[None], 3, 0), 30)
    write_bvh(tmp_path / "cm.bvh", skel, motion, scale=0.01)
    text = (tmp_path / "cm.bvh").read_text()
    assert re.search(r"OFFSET 0 94\.0\d* 0", text), "written in centimetres"
    got = read_bvh(tmp_path / "cm.bvh")
    assert got.scale == 0.01
    assert_same_motion(skel, motion, got.skeleton, got.motion)
    save_bvh(tmp_path / "back.bvh", got)
    assert (tmp_path / "back.bvh").read_text() == text
    assert read_bvh(tmp_path / "cm.bvh", scale=1.0).skeleton.offsets[0, 1] == pytest.approx(94.03)


def test_write_is_atomic_and_leaves_no_temp(tmp_path):
    skel = smpl_skeleton()
    write_bvh(tmp_path / "a.bvh", skel, skel.rest_motion(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bvh"]
    with pytest.raises(ValueError, match="joints"):
        write_bvh(tmp_path / "b.bvh", skel, Motion(np.zeros((1, 3, 4)) + [1, 0, 0, 0], np.zeros((1, 3, 3))))
    assert not (tmp_path / "b.bvh").exists()


def test_crlf_tabs_and_blank_lines_parse():
    text = MINIMAL.replace("\n", "\r\n").replace("  ", "\t").replace("MOTION", "\nMOTION\n")
    b = parse_bvh(text)
    assert b.skeleton.names == ("Hips", "Spine") and b.motion.num_frames == 2


def test_zero_frames_and_channelless_joint():
    text = MINIMAL.replace("CHANNELS 3 Zrotation Xrotation Yrotation", "CHANNELS 0")
    text = text.replace("Frames: 2", "Frames: 0").split("Frame Time: 0.0333333")[0] + "Frame Time: 0.0333333\n"
    b = parse_bvh(text)
    assert b.motion.num_frames == 0 and b.channels[1] == ()


# --- malformed files ------------------------------------------------------------------

MINIMAL = """HIERARCHY
ROOT Hips
{
  OFFSET 0 90 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Spine
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.0333333
0 90 0 0 0 0 1 2 3
0 91 0 0 0 0 4 5 6
"""


def edit(line: int, new: str | None) -> str:
    """MINIMAL with 1-based ``line`` replaced (None deletes it)."""
    lines = MINIMAL.splitlines()
    if new is None:
        del lines[line - 1]
    else:
        lines[line - 1] = new
    return "\n".join(lines) + "\n"


MALFORMED = {
    "missing closing brace": (edit(15, None), 15, "MOTION before the hierarchy was closed"),
    "missing opening brace": (edit(7, None), 7, "unexpected token 'OFFSET'"),
    "stray closing brace": (MINIMAL.replace("MOTION", "}\nMOTION"), 16, "unbalanced"),
    "too few values": (edit(19, "0 90 0 0 0 0 1 2"), 19, "8 values, expected 9"),
    "too many values": (edit(20, "0 91 0 0 0 0 4 5 6 7"), 20, "10 values, expected 9"),
    "every row short": (edit(19, "0 90 0 0 0 0 1 2").replace("0 91 0 0 0 0 4 5 6", "0 91 0 0 0 0 4 5"), 19,
                        "expected 9"),
    "non-numeric value": (edit(20, "0 91 0 0 abc 0 4 5 6"), 20, "non-number"),
    "NaN value": (edit(19, "0 90 0 nan 0 0 1 2 3"), 19, "NaN or infinite"),
    "infinite value": (edit(20, "0 91 0 0 0 0 4 -inf 6"), 20, "NaN or infinite"),
    "truncated motion": (edit(17, "Frames: 5"), 20, "header says 5 frames but the file has 2"),
    "truncated hierarchy": ("\n".join(MINIMAL.splitlines()[:8]) + "\n", 8, "unexpected end of file"),
    "extra frame": (MINIMAL + "0 92 0 0 0 0 7 8 9\n", 21, "more frame lines"),
    "channel count mismatch": (edit(9, "CHANNELS 3 Zrotation Xrotation"), 9, "CHANNELS says 3 but lists 2"),
    "unknown channel": (edit(9, "CHANNELS 3 Zrotation Xrotation Wrotation"), 9, "invalid or repeated"),
    "repeated channel": (edit(9, "CHANNELS 3 Zrotation Zrotation Yrotation"), 9, "invalid or repeated"),
    "two rotation channels": (edit(9, "CHANNELS 2 Zrotation Xrotation"), 9, "0 or 3 rotation channels"),
    "channel count not a number": (edit(9, "CHANNELS three Zrotation Xrotation Yrotation"), 9, "needs a count"),
    "CHANNELS without count": (edit(9, "CHANNELS"), 9, "needs a count"),
    "CHANNELS missing": (edit(9, "OFFSET 0 0 0"), 9, "expected CHANNELS"),
    "short OFFSET": (edit(8, "OFFSET 0 10"), 8, "OFFSET needs 3 numbers"),
    "non-numeric OFFSET": (edit(8, "OFFSET 0 ten 0"), 8, "non-number"),
    "NaN OFFSET": (edit(4, "OFFSET 0 nan 0"), 4, "NaN"),
    "no HIERARCHY": (edit(1, "HIERARCHYX"), 1, "HIERARCHY"),
    "bad Frames": (edit(17, "Frames: two"), 17, "Frames: N"),
    "negative Frames": (edit(17, "Frames: -1"), 17, "Frames: N"),
    "zero Frame Time": (edit(18, "Frame Time: 0"), 18, "must be positive"),
    "bad Frame Time": (edit(18, "Frame Time: fast"), 18, "non-number"),
    "duplicate joint": (edit(6, "JOINT Hips"), 6, "duplicate joint name 'Hips'"),
    "JOINT before ROOT": (edit(2, "JOINT Hips"), 2, "JOINT outside of a ROOT"),
    "ROOT without a name": (edit(2, "ROOT"), 2, "without a name"),
    "second ROOT": (MINIMAL.replace("  JOINT Spine", "  ROOT Spine"), 6, "ROOT must be the first"),
    "End Site at the top": (edit(2, "End Site"), 2, "End Site outside"),
    "empty file": ("", 1, "unexpected end of file"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_bvh_names_file_and_line(tmp_path, case):
    text, line, msg = MALFORMED[case]
    path = tmp_path / "broken take.bvh"
    path.write_text(text)
    with pytest.raises(BvhError) as err:
        read_bvh(path)
    assert str(err.value).startswith(f"{path}:{line}: "), str(err.value)
    assert msg in str(err.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(BvhError, match=r"missing\.bvh: cannot read"):
        read_bvh(tmp_path / "missing.bvh")
    (tmp_path / "bin.bvh").write_bytes(b"\xff\xfe\x00binary\x89PNG")
    with pytest.raises(BvhError, match=r"bin\.bvh: not a text file"):
        read_bvh(tmp_path / "bin.bvh")


def test_minimal_is_valid():
    assert parse_bvh(MINIMAL).scale == 0.01  # a 10-unit tall rest pose reads as centimetres
    b = parse_bvh(MINIMAL, "x.bvh", scale=1.0)
    assert b.skeleton.names == ("Hips", "Spine") and b.motion.fps == 30.0
    assert np.allclose(b.motion.translations[1, 0], [0, 91, 0])
    assert np.allclose(R.quat_to_euler(b.motion.rotations[1, 1], "ZXY"), np.radians([4, 5, 6]))
    assert b.skeleton.end_sites.keys() == {1}


# --- real takes -------------------------------------------------------------------------

@pytest.mark.shared
def test_bandai_takes(bandai_files, tmp_path):
    for path in bandai_files:
        b = read_bvh(path)
        assert b.scale == 0.01, "centimetres detected"
        assert b.motion.fps == 30.0
        assert b.skeleton.num_joints == 22 and b.skeleton.names[:2] == ("joint_Root", "Hips")
        assert all(len(c) == 6 for c in b.channels)
        assert b.motion.num_frames > 30
        # rest pose: Hips about 0.94 m up, bones of a human size (they all lie along local X)
        _, rest = b.skeleton.rest_global()
        assert 0.85 < rest[1, 1] < 1.0
        lengths = b.skeleton.bone_lengths()
        leg = sum(lengths[b.skeleton.index(n)] for n in ("LowerLeg_L", "Foot_L"))
        assert 0.7 < leg < 0.9
        assert 3.0 < lengths[2:].sum() < 4.5
        # the take itself: a standing-height person on the floor
        p = b.motion.positions(b.skeleton)
        head = p[:, b.skeleton.index("Head"), 1]
        assert 1.1 < np.median(head) < 1.6
        toes = p[:, [b.skeleton.index("Toes_L"), b.skeleton.index("Toes_R")], 1]
        assert -0.01 < toes.min() < 0.08, "toes touch the floor (y = 0) at some point"

    b = read_bvh(bandai_files[0])
    save_bvh(tmp_path / "copy.bvh", b)
    again = read_bvh(tmp_path / "copy.bvh")
    assert again.scale == 0.01 and again.channels == b.channels and again.motion.fps == 30.0
    assert_same_motion(b.skeleton, b.motion, again.skeleton, again.motion, atol=1e-5)


def test_format_bvh_defaults():
    skel = smpl_skeleton()
    text = format_bvh(skel, skel.rest_motion(1, fps=24.0))
    assert "CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation" in text
    assert text.count("CHANNELS 3 Zrotation Xrotation Yrotation") == 23
    assert "Frame Time: 0.0416666667" in text
    assert text.count("End Site") == 1  # above the head
