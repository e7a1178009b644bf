"""One take from raw source to canonical clip: parse, gate, retarget, resample, derive.

Runs in the build's worker processes; returns either a clip or the reason it was dropped.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.bonemap import auto_map
from ..core.bvh import parse_bvh, read_bvh
from ..core.retarget import Rig, prepare_rig, retarget_rigs
from ..core.resample import resample
from ..core.skeleton import Motion, Skeleton
from ..core.smpl import smpl_skeleton
from .amass import amass_to_motion, read_amass
from .dance import DanceConfig, load_dance
from .clip import CONTACT_JOINTS, FPS, Clip, clip_from_motion
from .gates import GateConfig, check_bone_lengths, check_clip, check_finite
from .sources import RawTake

_TARGET: Rig | None = None


def target_rig() -> Rig:
    """The canonical SMPL rig, prepared once per process."""
    global _TARGET
    if _TARGET is None:
        _TARGET = prepare_rig(smpl_skeleton())
    return _TARGET


def rest_contact_heights() -> np.ndarray:
    return smpl_skeleton().rest_global()[1][list(CONTACT_JOINTS), 1]


@dataclass
class Result:
    take_id: str
    origin: str
    clip: Clip | None = None
    reason: str | None = None
    source_fps: float | None = None
    music: np.ndarray | None = None     # (T, MUSIC_DIM) per clip frame, for takes with a song


def _snap_fps(m: Motion) -> Motion:
    # BVH frame times are rounded (Bandai: 0.0333333 s); treat near-30 as exactly 30 to avoid resampling noise
    if abs(m.fps - FPS) < 1e-3:
        m.fps = FPS
    return m


def standing_frames(skel: Skeleton, motion: Motion, idx: dict[str, int], tol: float = 0.02) -> Motion:
    """The frames with both feet flat on the floor, for the retargeting reference pose.

    The engine takes the most upright frame of the motion as the reference when the rest
    pose lies flat (Bandai); restricting it to feet-flat frames keeps the feet's pitch
    consistent from take to take (a lifted foot there would tilt that foot in every frame).
    """
    feet = [idx[r] for r in ("left_ankle", "right_ankle", "left_foot", "right_foot") if r in idx]
    if not feet:
        return motion
    y = motion.positions(skel)[:, feet, 1]
    lift = (y - y.min(axis=0)).max(axis=1)            # (T,) worst foot joint's height above its lowest
    keep = lift <= max(tol, np.percentile(lift, 5))
    return Motion(motion.rotations[keep], motion.translations[keep], motion.fps)


def to_canonical(raw: RawTake, gates: GateConfig) -> tuple[Motion | None, str | None, float]:
    """Canonical-skeleton motion of a raw take (not resampled yet), or a drop reason."""
    tgt = target_rig()
    if raw.kind == "bvh":
        bvh = parse_bvh(raw.text, raw.origin) if raw.text is not None else read_bvh(raw.path)
        skel, motion = bvh.skeleton, _snap_fps(bvh.motion)
        if motion.num_frames == 0:
            return None, "no frames", motion.fps
        bad = check_finite(motion.rotations, motion.translations)
        if bad:
            return None, bad, motion.fps
        bm = auto_map(skel)
        src = prepare_rig(skel, bm, standing_frames(skel, motion, bm.indices(skel)))
        pelvis = bm.indices(skel)["pelvis"]
        bad = check_bone_lengths(skel, motion.positions(skel), gates, pelvis)
        if bad:
            return None, bad, motion.fps
        return retarget_rigs(src, motion, tgt), None, motion.fps
    poses, trans, fps = read_amass(raw.path)
    bad = check_finite(poses, trans)
    if bad:
        return None, bad, fps
    motion = _snap_fps(amass_to_motion(poses, trans, fps, tgt.skeleton))
    return retarget_rigs(tgt, motion, tgt), None, fps


def _process_dance(raw: RawTake, res: Result, gates: GateConfig, cfg: DanceConfig) -> Result:
    take = load_dance(raw.path, cfg)
    res.source_fps = take.source_fps
    res.reason = take.reason or check_clip(take.clip, rest_contact_heights(), gates)
    if res.reason is None:
        res.clip, res.music = take.clip, take.music
    return res


def process_take(raw: RawTake, gates: GateConfig = GateConfig(), dance: DanceConfig = DanceConfig()) -> Result:
    """Never raises: any failure becomes the drop reason, so one bad file cannot stop a build."""
    res = Result(raw.take_id, raw.origin)
    try:
        if raw.kind == "dance":
            return _process_dance(raw, res, gates, dance)
        motion, reason, res.source_fps = to_canonical(raw, gates)
        if motion is None:
            res.reason = reason
            return res
        clip = clip_from_motion(target_rig().skeleton, resample(motion, FPS))
        res.reason = check_clip(clip, rest_contact_heights(), gates)
        if res.reason is None:
            res.clip = clip
    except Exception as e:  # noqa: BLE001 - reported per take, the build goes on
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        res.reason = f"unreadable: {msg}"
    return res
