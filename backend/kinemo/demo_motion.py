"""A procedural walk on the canonical SMPL skeleton: the demo clip Kinemo ships.

Users have no motion-capture data, so the demo carries its own motion, made
here from a few periodic joint-angle curves shaped like textbook gait plots
(hip flexion, knee with its loading and swing peaks, ankle push-off), arm
swing opposite the legs, pelvis yaw/roll with counter-rotating shoulders, and
a steady head. The root is not animated by hand: its height keeps the lowest
foot point on the floor and its forward speed cancels the stance foot's
motion, so the pelvis bobs by itself and the planted foot does not slide.

``python -m kinemo.demo_motion`` regenerates ``assets/demo_walk.bvh``; a test
checks the file in the repository is what this code writes.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from .core import rotations as R
from .core.bvh import format_bvh
from .core.fk import forward_kinematics, global_to_local
from .core.skeleton import Motion, Skeleton
from .core.smpl import smpl_skeleton

DEMO_BVH = Path(__file__).resolve().parent / "assets" / "demo_walk.bvh"

PERIOD_S = 1.0     # one gait cycle (two steps)
ARM_DOWN_DEG = 72  # T-pose arms lowered to the sides
_CONTACT = ("left_ankle", "left_foot", "right_ankle", "right_foot")  # heel and toe stand-ins


def _bump(phase: np.ndarray, centre: float, width: float) -> np.ndarray:
    """A periodic Gaussian bump over the gait phase ``[0, 1)``."""
    d = (phase - centre + 0.5) % 1.0 - 0.5
    return np.exp(-0.5 * (d / width) ** 2)


def _rx(deg):
    return R.axis_angle_to_quat(np.radians(np.asarray(deg, np.float64))[..., None] * np.array([1.0, 0, 0]))


def _ry(deg):
    return R.axis_angle_to_quat(np.radians(np.asarray(deg, np.float64))[..., None] * np.array([0, 1.0, 0]))


def _rz(deg):
    return R.axis_angle_to_quat(np.radians(np.asarray(deg, np.float64))[..., None] * np.array([0, 0, 1.0]))


def _leg_angles(phase: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sagittal hip flexion, knee flexion and ankle dorsiflexion (degrees) of a
    leg whose heel strikes at phase 0. ``(N,) -> 3 x (N,)``."""
    hip = 8.0 + 22.0 * np.cos(2 * np.pi * (phase - 0.02))
    knee = 4.0 + 14.0 * _bump(phase, 0.14, 0.06) + 58.0 * _bump(phase, 0.72, 0.095)
    ankle = (-6.0 * _bump(phase, 0.06, 0.04) + 9.0 * _bump(phase, 0.42, 0.10)
             - 18.0 * _bump(phase, 0.62, 0.05) + 4.0 * _bump(phase, 0.82, 0.08))
    return hip, knee, ankle


def _global_rotations(skel: Skeleton, t: np.ndarray) -> np.ndarray:
    """``(N, 24, 4)`` world rotations of every joint at times ``t`` (root at the origin).

    Angles are in world axes (Y up, +Z forward, left +X): flexing a hip swings
    the thigh to +Z, i.e. a negative angle about X.
    """
    phase = (t / PERIOD_S) % 1.0
    cyc = 2 * np.pi * phase
    g = np.empty((len(t), skel.num_joints, 4))
    idx = skel.index

    yaw = -5.0 * np.cos(cyc)   # left hip forward at left heel strike
    roll = 2.5 * np.sin(cyc)   # the swing side drops a little
    lean = -1.5 * np.sin(cyc)  # both legs lean so the body shifts over the stance foot
    pelvis = R.quat_mul(_ry(yaw), R.quat_mul(_rz(roll), _rx(np.full_like(t, 4.0))))
    legs = R.quat_mul(_ry(yaw), _rz(lean))  # hips ab/adduct against the pelvis roll
    g[:, idx("pelvis")] = pelvis
    # The torso leans slightly and turns against the pelvis, so the shoulders swing.
    chest = R.quat_mul(_ry(-0.8 * yaw), _rx(np.full_like(t, 2.0)))
    g[:, idx("spine1")] = R.quat_slerp(pelvis, chest, 0.35)
    g[:, idx("spine2")] = R.quat_slerp(pelvis, chest, 0.7)
    g[:, idx("spine3")] = chest
    for name in ("neck", "head"):
        g[:, idx(name)] = _rx(np.full_like(t, -2.0))  # eyes level, whatever the trunk does
    for side, sign, offset in (("left", 1.0, 0.0), ("right", -1.0, 0.5)):
        hip, knee, ankle = _leg_angles((phase + offset) % 1.0)
        thigh = R.quat_mul(legs, _rx(-hip))
        shin = R.quat_mul(thigh, _rx(knee))
        foot = R.quat_mul(shin, _rx(-ankle))
        g[:, idx(f"{side}_hip")] = thigh
        g[:, idx(f"{side}_knee")] = shin
        g[:, idx(f"{side}_ankle")] = foot
        g[:, idx(f"{side}_foot")] = foot
        # This arm swings with the opposite leg; the elbow bends more going forward.
        swing = 16.0 * np.cos(2 * np.pi * ((phase + offset + 0.5) % 1.0))
        elbow = 14.0 + 0.5 * (swing + 16.0)
        down = _rz(np.full_like(t, -sign * ARM_DOWN_DEG))
        g[:, idx(f"{side}_collar")] = chest
        upper = R.quat_mul(chest, R.quat_mul(_rx(-swing), down))
        lower = R.quat_mul(chest, R.quat_mul(_rx(-(swing + elbow)), down))
        g[:, idx(f"{side}_shoulder")] = upper
        for name in ("elbow", "wrist", "hand"):
            g[:, idx(f"{side}_{name}")] = lower
    return g


def demo_walk(duration_s: float = 4.0, fps: float = 30.0, oversample: int = 8) -> Motion:
    """The demo walk on :func:`kinemo.core.smpl.smpl_skeleton`, walking towards +Z.

    The root path is integrated on a grid ``oversample`` times finer than the
    output, then sampled at ``fps``. Returns a :class:`Motion` of
    ``round(duration_s * fps)`` frames.
    """
    skel = smpl_skeleton()
    n = int(round(duration_s * fps))
    dt = 1.0 / (fps * oversample)
    t = np.arange(n * oversample) * dt
    g_rot = _global_rotations(skel, t)
    l_rot, _ = global_to_local(skel.parents, g_rot)
    trans = np.repeat(skel.offsets[None], len(t), 0)
    trans[:, 0] = 0.0
    _, pos = forward_kinematics(skel.parents, l_rot, trans)  # body around a fixed pelvis

    contact = [skel.index(c) for c in _CONTACT]
    _, rest_pos = skel.rest_global()
    # Height above its rest height for each contact point; the lowest one is planted.
    lift = pos[:, contact, 1] + rest_pos[0, 1] - rest_pos[contact, 1]
    planted = np.argmin(lift, axis=1)
    root_y = rest_pos[0, 1] - lift[np.arange(len(t)), planted]
    # Horizontal root velocity cancels the planted point's motion relative to the pelvis.
    vel = np.gradient(pos[:, contact][..., [0, 2]], dt, axis=0)[np.arange(len(t)), planted]
    root_xz = np.concatenate([np.zeros((1, 2)), np.cumsum(-vel[:-1] * dt, axis=0)])

    keep = slice(None, None, oversample)
    trans[:, 0] = np.stack([root_xz[:, 0], root_y, root_xz[:, 1]], -1)
    rot = R.quat_continuous(l_rot[keep])
    return Motion(rot, trans[keep], fps)


def demo_bvh_text() -> str:
    """The text of ``assets/demo_walk.bvh`` (metres, SMPL joint names, joints depth-first).

    Angles that are zero up to rounding noise (|x| < 1e-9 degrees) are written
    as 0, so the file does not depend on the machine's last bits.
    """
    text = format_bvh(smpl_skeleton(), demo_walk(), precision=6)
    head, motion = text.split("MOTION\n", 1)
    tiny = re.compile(r"(?<![\w.])-?\d(?:\.\d+)?e-(?:1\d|[2-9]\d)\b")
    return head + "MOTION\n" + tiny.sub("0", motion)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kinemo.demo_motion", description="Write the procedural demo walk.")
    p.add_argument("out", nargs="?", type=Path, default=DEMO_BVH, help=f"BVH to write (default: {DEMO_BVH.name})")
    path = p.parse_args(argv).out
    text = demo_bvh_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    print(f"wrote {path} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
