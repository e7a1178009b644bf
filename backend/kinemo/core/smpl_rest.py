"""Where the default SMPL rest pose comes from: proportions measured on the corpus.

The Bandai-Namco mocap (CC BY-NC 4.0, Kobayashi et al. 2023) is retargeted
onto one 22-joint skeleton, so every take shares its bone lengths. Its rest
pose (all rotations zero) is not a T-pose: each offset lies along its joint's
own local X axis. So we measure what does not depend on that convention, from
world joint positions in the takes' frames:

- distances between joints, averaged over all frames of all takes (bone
  lengths; the rigid pelvis and chest: hip width, pelvis above the hip line,
  collar width and rise);
- heights above the floor (y = 0) in *feet-flat* frames, where a foot's ankle
  and toe joints both move slower than 0.1 m/s: ankle and toe height, and the
  standing hip height (reported as a check only: standing knees are slightly
  bent, so it sits a little below the straight-leg T-pose).

:func:`layout_tpose` then places them on the SMPL topology as a T-pose
(facing +Z, the body's left on +X, Y up, floor at 0, feet flat, legs and spine
vertical, arms horizontal). Bandai joints map one to one onto SMPL's except
where SMPL has more; those are estimates, stated here:

- ``spine2``: Bandai has one joint (Chest) where SMPL has spine2 and spine3;
  spine2 goes halfway between spine1 and spine3.
- ``left_hand`` / ``right_hand`` (SMPL: the knuckles): Bandai stops at the
  wrist; the hand joint goes one third of a forearm beyond it (the palm is
  about a third of the forearm's length in adults).
- head top (an End Site above ``head``, used for the stature): Bandai's head
  end site has no length. Its Head joint sits about 10 cm above the shoulder
  joints, near chin height, so we put the chin there and take the stature as
  head height / 0.870 (chin height over stature, Drillis & Contini 1966).

Run it on the corpus (extracted from ../shared) to regenerate the table in
:mod:`kinemo.core.smpl`::

    PYTHONPATH=backend python -m kinemo.core.smpl_rest /path/to/bandai/dataset
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .bvh import read_bvh

_FLAT_SPEED = 0.1        # m/s: a foot slower than this (ankle and toe) is flat on the floor
_CHIN_OVER_STATURE = 0.870
_PALM_OVER_FOREARM = 1.0 / 3.0

# Bandai joint names used by the measurement.
_BANDAI = ("Hips", "Spine", "Chest", "Neck", "Head", "Shoulder_L", "Shoulder_R",
           "UpperArm_L", "UpperArm_R", "LowerArm_L", "LowerArm_R", "Hand_L", "Hand_R",
           "UpperLeg_L", "UpperLeg_R", "LowerLeg_L", "LowerLeg_R", "Foot_L", "Foot_R",
           "Toes_L", "Toes_R")


@dataclass(frozen=True)
class BodyMeasurements:
    """Body proportions in metres (left and right averaged)."""

    hip_width: float          # between the two hip joints
    pelvis_above_hips: float  # pelvis joint above the midpoint of the hip joints
    thigh: float              # hip -> knee
    shin: float               # knee -> ankle
    foot: float               # ankle -> toe joint
    ankle_height: float       # feet flat
    toe_height: float         # feet flat
    lower_spine: float        # pelvis -> spine1 (Bandai Hips -> Spine)
    upper_spine: float        # spine1 -> spine3 (Bandai Spine -> Chest)
    neck: float               # spine3 -> neck (Bandai Chest -> Neck)
    head: float               # neck -> head (Bandai Neck -> Head)
    collar_width: float       # between the two collar joints (Bandai Shoulder_L/R)
    collar_rise: float        # spine3 -> midpoint of the collar joints
    clavicle: float           # collar -> shoulder joint (Bandai Shoulder -> UpperArm)
    upper_arm: float          # shoulder -> elbow
    forearm: float            # elbow -> wrist
    standing_hip_height: float  # a check, not used by the layout
    takes: int = 0
    frames: int = 0


def _dist(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(p[..., a, :] - p[..., b, :], axis=-1)


def _bvh_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        out.extend(sorted(p.rglob("*.bvh")) if p.is_dir() else [p])
    if not out:
        raise ValueError("no BVH files given")
    return out


def measure_bandai_proportions(paths: Iterable[str | os.PathLike]) -> BodyMeasurements:
    """Measure body proportions on Bandai-skeleton BVH takes (files or directories)."""
    sums: dict[str, float] = {}
    frames = 0
    ankle, toe, hips = [], [], []
    files = _bvh_files(paths)
    for path in files:
        bvh = read_bvh(path)
        names = bvh.skeleton.names
        missing = [n for n in _BANDAI if n not in names]
        if missing:
            raise ValueError(f"{path}: not a Bandai skeleton, missing joints {missing}")
        ix = {n: names.index(n) for n in _BANDAI}
        p = bvh.motion.positions(bvh.skeleton)  # (T, J, 3) metres

        def d(a: str, b: str) -> np.ndarray:
            """Per-frame distance between two joints, (T,)."""
            return _dist(p, ix[a], ix[b])

        def sides(a: str, b: str) -> np.ndarray:
            """Per-frame distance a_X - b_X averaged over the left and right sides, (T,)."""
            return 0.5 * (d(a + "_L", b + "_L") + d(a + "_R", b + "_R"))

        mid = lambda a, b: 0.5 * (p[:, ix[a]] + p[:, ix[b]])  # noqa: E731
        per_frame = {
            "hip_width": d("UpperLeg_L", "UpperLeg_R"),
            "pelvis_above_hips": np.linalg.norm(p[:, ix["Hips"]] - mid("UpperLeg_L", "UpperLeg_R"), axis=-1),
            "thigh": sides("UpperLeg", "LowerLeg"),
            "shin": sides("LowerLeg", "Foot"),
            "foot": sides("Foot", "Toes"),
            "lower_spine": d("Hips", "Spine"),
            "upper_spine": d("Spine", "Chest"),
            "neck": d("Chest", "Neck"),
            "head": d("Neck", "Head"),
            "collar_width": d("Shoulder_L", "Shoulder_R"),
            "collar_rise": np.linalg.norm(p[:, ix["Chest"]] - mid("Shoulder_L", "Shoulder_R"), axis=-1),
            "clavicle": sides("Shoulder", "UpperArm"),
            "upper_arm": sides("UpperArm", "LowerArm"),
            "forearm": sides("LowerArm", "Hand"),
        }
        for k, v in per_frame.items():
            sums[k] = sums.get(k, 0.0) + float(v.sum())
        frames += p.shape[0]

        if p.shape[0] >= 2:
            speed = np.linalg.norm(np.gradient(p, axis=0), axis=-1) * bvh.motion.fps
            flat = {}
            for s in "LR":
                a, t = ix["Foot_" + s], ix["Toes_" + s]
                flat[s] = (speed[:, a] < _FLAT_SPEED) & (speed[:, t] < _FLAT_SPEED)
                ankle.append(p[flat[s], a, 1])
                toe.append(p[flat[s], t, 1])
            both = flat["L"] & flat["R"]
            hips.append(p[both][:, [ix["UpperLeg_L"], ix["UpperLeg_R"]], 1].ravel())

    ankle_a, toe_a, hips_a = (np.concatenate(x) for x in (ankle, toe, hips))
    if ankle_a.size == 0 or hips_a.size == 0:
        raise ValueError("no frames with the feet flat on the floor in these takes")
    means = {k: v / frames for k, v in sums.items()}
    return BodyMeasurements(ankle_height=float(np.median(ankle_a)), toe_height=float(np.median(toe_a)),
                            standing_hip_height=float(np.median(hips_a)), takes=len(files), frames=frames,
                            **means)


def layout_tpose(m: BodyMeasurements) -> tuple[np.ndarray, np.ndarray]:
    """SMPL rest joint positions ``(24, 3)`` and the head-top End Site offset ``(3,)``.

    T-pose facing +Z, left on +X, Y up, floor at y = 0, metres.
    """
    from .smpl import SMPL_JOINT_NAMES

    pos: dict[str, np.ndarray] = {}
    drop = m.ankle_height - m.toe_height
    reach = np.sqrt(max(m.foot ** 2 - drop ** 2, 0.0))
    hip_y = m.ankle_height + m.shin + m.thigh
    for side, sx in (("left", 1.0), ("right", -1.0)):
        x = sx * m.hip_width / 2
        pos[f"{side}_hip"] = np.array([x, hip_y, 0.0])
        pos[f"{side}_knee"] = np.array([x, m.ankle_height + m.shin, 0.0])
        pos[f"{side}_ankle"] = np.array([x, m.ankle_height, 0.0])
        pos[f"{side}_foot"] = np.array([x, m.toe_height, reach])
    up = np.array([0.0, 1.0, 0.0])
    pos["pelvis"] = np.array([0.0, hip_y + m.pelvis_above_hips, 0.0])
    pos["spine1"] = pos["pelvis"] + up * m.lower_spine
    pos["spine3"] = pos["spine1"] + up * m.upper_spine
    pos["spine2"] = 0.5 * (pos["spine1"] + pos["spine3"])
    pos["neck"] = pos["spine3"] + up * m.neck
    pos["head"] = pos["neck"] + up * m.head
    for side, sx in (("left", 1.0), ("right", -1.0)):
        out = np.array([sx, 0.0, 0.0])
        pos[f"{side}_collar"] = pos["spine3"] + up * m.collar_rise + out * m.collar_width / 2
        pos[f"{side}_shoulder"] = pos[f"{side}_collar"] + out * m.clavicle
        pos[f"{side}_elbow"] = pos[f"{side}_shoulder"] + out * m.upper_arm
        pos[f"{side}_wrist"] = pos[f"{side}_elbow"] + out * m.forearm
        pos[f"{side}_hand"] = pos[f"{side}_wrist"] + out * m.forearm * _PALM_OVER_FOREARM
    stature = pos["head"][1] / _CHIN_OVER_STATURE
    head_top = np.array([0.0, stature - pos["head"][1], 0.0])
    return np.stack([pos[n] for n in SMPL_JOINT_NAMES]), head_top


def format_table(positions: np.ndarray, head_top: np.ndarray) -> str:
    """Python source for the tables in :mod:`kinemo.core.smpl`."""
    from .smpl import SMPL_JOINT_NAMES

    lines = ["_REST_POSITIONS = np.array(["]
    for name, p in zip(SMPL_JOINT_NAMES, positions):
        lines.append(f"    [{p[0]: .4f}, {p[1]:.4f}, {p[2]: .4f}],  # {name}")
    lines.append("])")
    lines.append(f"_HEAD_TOP = np.array([{head_top[0]:.4f}, {head_top[1]:.4f}, {head_top[2]:.4f}])")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kinemo.core.smpl_rest", description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", help="Bandai BVH files or directories holding them")
    args = ap.parse_args(argv)
    m = measure_bandai_proportions(args.paths)
    for k, v in asdict(m).items():
        print(f"# {k:20s} {v:.4f}" if isinstance(v, float) else f"# {k:20s} {v}")
    print(format_table(*layout_tpose(m)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
