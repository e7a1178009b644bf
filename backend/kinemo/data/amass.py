"""AMASS-style SMPL(-H/X) .npz files -> motions on the canonical skeleton.

An AMASS file holds ``poses`` (T, 72 or 156 or more) axis-angle local rotations
in SMPL joint order (root first), ``trans`` (T, 3) and ``mocap_framerate``; the
world is Z-up. SMPL's own joint frames are Y-up, facing +Z, like ours, so body
rotations carry over unchanged and only the root is turned from Z-up to Y-up.
Without the body model the pelvis sits at ``trans`` plus a constant offset that
depends on the body shape; we drop that offset and instead put the clip's
feet on the floor.
"""
from __future__ import annotations

import numpy as np

from ..core import rotations as R
from ..core.skeleton import Motion, Skeleton
from ..core.smpl import NUM_JOINTS, smpl_skeleton

# Z-up -> Y-up: a -90 degree turn about X maps (x, y, z) to (x, z, -y).
ZUP_TO_YUP = R.axis_angle_to_quat(np.array([-np.pi / 2, 0.0, 0.0]))
_FEET = (7, 8, 10, 11)


def read_amass(path: str) -> tuple[np.ndarray, np.ndarray, float]:
    """``poses (T, >=66)``, ``trans (T, 3)``, fps from an AMASS .npz; ValueError naming the problem."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if "poses" not in z.files:
                raise ValueError(f"{path}: no 'poses' array (not a motion file, e.g. an AMASS shape.npz)")
            poses = np.asarray(z["poses"], np.float64)
            trans = np.asarray(z["trans"], np.float64) if "trans" in z.files else np.zeros((len(poses), 3))
            key = next((k for k in ("mocap_framerate", "mocap_frame_rate", "fps") if k in z.files), None)
            if key is None:
                raise ValueError(f"{path}: no frame rate ('mocap_framerate')")
            fps = float(z[key])
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot read .npz: {e}") from None
    if poses.ndim != 2 or poses.shape[1] < 66 or poses.shape[1] % 3:
        raise ValueError(f"{path}: poses must be (T, 72 or 156), got {poses.shape}")
    if trans.shape != (len(poses), 3):
        raise ValueError(f"{path}: trans must be ({len(poses)}, 3), got {trans.shape}")
    return poses, trans, fps


def amass_to_motion(poses: np.ndarray, trans: np.ndarray, fps: float, skel: Skeleton | None = None) -> Motion:
    """SMPL axis-angle poses ``(T, 3K)`` (K >= 22, Z-up world) -> Y-up motion on ``skel`` (default SMPL)."""
    skel = skel or smpl_skeleton()
    T = len(poses)
    aa = poses.reshape(T, -1, 3)
    # SMPL-H/X list 22 body joints then hands; SMPL's 23rd/24th joints (hands) stay at rest then.
    k = NUM_JOINTS if aa.shape[1] == NUM_JOINTS else 22
    rot = R.quat_identity((T, NUM_JOINTS))
    rot[:, :k] = R.axis_angle_to_quat(aa[:, :k])
    rot[:, 0] = R.quat_mul(ZUP_TO_YUP, rot[:, 0])
    tr = np.repeat(skel.offsets[None], T, 0)
    tr[:, 0] = R.quat_apply(ZUP_TO_YUP, trans)
    m = Motion(R.quat_continuous(rot), tr, fps)
    # feet on the floor: lowest contact joints (minus their rest heights) at y = 0, robust to a few bad frames
    _, rest = skel.rest_global()
    feet = m.positions(skel)[:, _FEET, 1] - rest[list(_FEET), 1]
    m.translations[:, 0, 1] -= np.percentile(feet.min(axis=1), 5)
    return m
