"""Motion metrics of the field, as pure numpy functions.

Conventions: 30 fps clips on the canonical SMPL skeleton, Y up, metres,
quaternions w first (see :mod:`kinemo.core.rotations`). ``N`` windows or
clips, ``T`` frames, ``J`` joints. Every function documents its shapes; none
reads files or keeps state.

In-betweening (Harvey et al. 2020, "Robust motion in-betweening", LaFAN1):

- :func:`l2p`: L2 distance of global joint positions per frame, after each
  coordinate is divided by its standard deviation over the training set, in
  a frame aligned with the last context frame (:func:`align_to_frame`). A
  common translation cancels in the difference, so only the heading alignment
  and the per-coordinate std matter (the mean cancels too).
- :func:`l2q`: L2 distance of global quaternions per frame. A quaternion and
  its negation are the same rotation, so each predicted quaternion takes the
  sign nearest the reference (LaFAN1 instead makes both sequences continuous in
  time; that gives the same figure except where a sequence flips hemisphere).
  A common left rotation (heading alignment) leaves the figure unchanged.
- :func:`npss`: normalised power spectrum similarity (Gopalakrishnan et al.
  2019): per feature channel, the earth mover's distance between the
  normalised power spectra (``|FFT|^2`` over time) of prediction and
  reference, averaged with the reference's total power as weights.

Dance (Li et al. 2021 AIST++; Siyao et al. 2022 Bailando; Tseng et al. 2023 EDGE):

- :func:`kinematic_beats`: local minima of the smoothed mean joint speed.
- :func:`beat_align_score`: ``mean over a in A of exp(-min_b (a - b)^2 / (2 sigma^2))``.
  The AIST++ paper averages over kinematic beats (``A`` = motion beats), the
  Bailando and EDGE evaluation code over music beats (``A`` = music beats).
- :func:`beat_align_chance`: the same score against circularly time-shifted
  music beats, i.e. what an unrelated motion with this beat density scores.
- :func:`pfc`: EDGE's Physical Foot Contact score.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..core import rotations as R
from ..core.plausible import ankle_span, crossed_legs, jerk  # noqa: F401 (the motion checks, re-exported)
from ..core.smpl import FLOOR, UP, heading

UP_AXIS = 1
# SMPL indices of (left_ankle, left_foot, right_ankle, right_foot)
LEFT_FOOT_JOINTS = (7, 10)
RIGHT_FOOT_JOINTS = (8, 11)
FOOT_JOINTS = (7, 8, 10, 11)


# --- frames --------------------------------------------------------------------

def heading_quat(root_global_quat: np.ndarray) -> np.ndarray:
    """Yaw-only rotation of the body's facing. ``(..., 4)`` pelvis world rotation -> ``(..., 4)``.

    Facing is the pelvis' rotated +Z projected on the floor (:func:`kinemo.core.smpl.heading`).
    """
    return R.axis_angle_to_quat(heading(root_global_quat)[..., None] * UP)


def align_to_frame(positions: np.ndarray, global_quats: np.ndarray, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Express windows in the frame of one of their frames (LaFAN1: the last context frame).

    positions ``(N, T, J, 3)``, global_quats ``(N, T, J, 4)``: world joint positions and
    rotations. The root's floor position at ``frame`` moves to the origin and its
    heading turns to +Z. Returns both, same shapes.
    """
    yaw_inv = R.quat_conjugate(heading_quat(global_quats[:, frame, 0]))[:, None, None]   # (N,1,1,4)
    origin = positions[:, frame, 0] * FLOOR                                                # (N,3)
    pos = R.quat_apply(yaw_inv, positions - origin[:, None, None])
    return pos, R.quat_mul(yaw_inv, global_quats)


# --- in-betweening -----------------------------------------------------------------

def l2p(pred: np.ndarray, gt: np.ndarray, std: np.ndarray) -> float:
    """L2P: ``(N, T, J, 3)`` aligned global positions, ``std`` ``(J, 3)`` training-set std.

    Mean over windows and frames of ``sqrt(sum_{j,c} ((pred - gt) / std)^2)``.
    """
    d = (np.asarray(pred, np.float64) - gt) / np.maximum(std, 1e-8)
    return float(np.mean(np.sqrt(np.sum(d ** 2, axis=(-2, -1)))))


def nearest_sign(q: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Each quaternion of ``q`` with the sign that puts it nearest ``ref``. ``(..., 4)``."""
    flip = np.sum(q * ref, axis=-1, keepdims=True) < 0
    return np.where(flip, -q, q)


def l2q(pred: np.ndarray, gt: np.ndarray) -> float:
    """L2Q: ``(N, T, J, 4)`` global quaternions -> mean over windows and frames of
    ``sqrt(sum_{j,c} (pred - gt)^2)``, sign-disambiguated per quaternion."""
    pred = nearest_sign(R.quat_normalize(pred), R.quat_normalize(gt))
    return float(np.mean(np.sqrt(np.sum((pred - R.quat_normalize(gt)) ** 2, axis=(-2, -1)))))


def npss(pred: np.ndarray, gt: np.ndarray) -> float:
    """NPSS of ``(N, T, D)`` sequences (D channels, e.g. flattened global quaternions).

    0 for identical sequences. Channels with no power in the reference get no weight.
    """
    pp = np.abs(np.fft.rfft(np.asarray(pred, np.float64), axis=1)) ** 2
    pg = np.abs(np.fft.rfft(np.asarray(gt, np.float64), axis=1)) ** 2
    tot_p, tot_g = pp.sum(axis=1), pg.sum(axis=1)                     # (N, D)
    cp = np.cumsum(pp / np.maximum(tot_p[:, None], 1e-12), axis=1)
    cg = np.cumsum(pg / np.maximum(tot_g[:, None], 1e-12), axis=1)
    emd = np.abs(cp - cg).sum(axis=1)                                 # (N, D)
    if tot_g.sum() <= 0:
        return 0.0
    return float(np.average(emd, weights=tot_g))


def keyframe_error(pred_pos: np.ndarray, key_pos: np.ndarray, pred_quats: np.ndarray,
                   key_quats: np.ndarray, keys: np.ndarray) -> tuple[float, float]:
    """Worst deviation on keyed frames: (metres, radians).

    pred_pos/key_pos ``(T, J, 3)``, pred_quats/key_quats ``(T, J, 4)`` (local or global),
    keys ``(T,)`` bool. Returns the largest joint position error and rotation angle.
    """
    keys = np.asarray(keys, bool)
    if not keys.any():
        return 0.0, 0.0
    dp = np.linalg.norm(pred_pos[keys] - key_pos[keys], axis=-1).max()
    da = R.quat_angle(pred_quats[keys], key_quats[keys]).max()
    return float(dp), float(da)


def contacts_by_height(positions: np.ndarray, rest_heights: np.ndarray, margin: float = 0.02) -> np.ndarray:
    """Feet on the floor by height alone: ``(..., T, J, 3)`` -> ``(..., T, 4)`` bool for
    :data:`FOOT_JOINTS`. rest_heights ``(4,)`` per foot joint (same order) in the rest pose.

    Height only (no speed test), so a sliding foot still counts as in contact. The 2 cm
    margin: on real test takes the median foot joint sits within 2 mm of its rest
    height, while a wider margin starts to catch feet swinging low (a shuffling walk).
    """
    y = positions[..., list(FOOT_JOINTS), UP_AXIS]
    return y < np.asarray(rest_heights) + margin


def foot_skating(positions: np.ndarray, contacts: np.ndarray, fps: float) -> float:
    """Mean horizontal speed (m/s) of the foot joints while in contact.

    positions ``(T, J, 3)``; contacts ``(T, 4)`` bool for :data:`FOOT_JOINTS` (e.g.
    :func:`contacts_by_height`). A step counts when the foot is in contact at both
    its ends. NaN when there is no contact at all.
    """
    p = positions[:, list(FOOT_JOINTS)][..., [0, 2]]                 # (T, 4, 2)
    v = np.linalg.norm(np.diff(p, axis=0), axis=-1) * fps            # (T-1, 4)
    c = contacts[1:] & contacts[:-1]
    return float(v[c].mean()) if c.any() else float("nan")


def boundary_jerk(positions: np.ndarray, keys: np.ndarray, fps: float) -> float:
    """Pops at the seams between keyed and generated frames.

    positions ``(T, J, 3)``, keys ``(T,)`` bool. The mean, over the jerk stencils
    (4 consecutive frames) that contain both a keyed and an unkeyed frame, of the
    largest joint jerk (m/s^3). NaN when there is no seam.
    """
    keys = np.asarray(keys, bool)
    k = np.lib.stride_tricks.sliding_window_view(keys, 4)            # (T-3, 4)
    seam = k.any(axis=1) & ~k.all(axis=1)
    if not seam.any():
        return float("nan")
    return float(jerk(positions, fps).max(axis=1)[seam].mean())


# --- dance -------------------------------------------------------------------------

def kinematic_beats(positions: np.ndarray, smooth: float = 5.0) -> np.ndarray:
    """Motion beats: frames where the mean joint speed has a local minimum.

    positions ``(T, J, 3)`` -> sorted frame indices ``(B,)``. The speed is smoothed
    with a Gaussian of ``smooth`` frames (as AIST++/Bailando do before taking minima).
    """
    speed = np.linalg.norm(np.diff(positions, axis=0), axis=-1).mean(axis=1)   # (T-1,)
    if smooth > 0:
        speed = gaussian_filter1d(speed, smooth, mode="nearest")
    i = np.arange(1, len(speed) - 1)
    minima = i[(speed[i] < speed[i - 1]) & (speed[i] <= speed[i + 1])]
    return minima + 1   # speed[i] is between frames i and i+1: report the later frame


def beat_align_score(beats: np.ndarray, reference: np.ndarray, sigma: float = 3.0) -> float:
    """``mean over b in beats of exp(-min_r (b - r)^2 / (2 sigma^2))``; frames in, ``sigma`` in frames.

    ``beat_align_score(motion, music)`` is the AIST++ paper's BAS (over kinematic beats),
    ``beat_align_score(music, motion)`` the Bailando/EDGE code's. NaN when ``beats`` is
    empty, 0 when ``reference`` is.
    """
    beats = np.asarray(beats, np.float64).reshape(-1)
    ref = np.asarray(reference, np.float64).reshape(-1)
    if len(beats) == 0:
        return float("nan")
    if len(ref) == 0:
        return 0.0
    d = np.min(np.abs(beats[:, None] - ref[None]), axis=1)
    return float(np.mean(np.exp(-d ** 2 / (2 * sigma ** 2))))


def bas_both(motion_beats: np.ndarray, music_beats: np.ndarray, sigma: float = 3.0) -> dict[str, float]:
    """Both published BAS variants: ``{"kinematic": AIST++ paper, "music": Bailando/EDGE code}``."""
    return {"kinematic": beat_align_score(motion_beats, music_beats, sigma),
            "music": beat_align_score(music_beats, motion_beats, sigma)}


def beat_align_chance(motion_beats: np.ndarray, music_beats: np.ndarray, num_frames: int,
                      sigma: float = 3.0, shifts: int = 32, min_shift: int = 15,
                      seed: int = 0) -> dict[str, float]:
    """Chance level of both BAS variants: music beats shifted circularly (wrapping at
    ``num_frames``) by ``shifts`` offsets drawn uniformly from ``[min_shift, num_frames - min_shift]``
    (a fixed seed), scored against the unshifted motion beats and averaged."""
    if num_frames <= 2 * min_shift:
        return {"kinematic": float("nan"), "music": float("nan")}
    rng = np.random.default_rng(seed)
    music = np.asarray(music_beats, np.float64)
    out = {"kinematic": [], "music": []}
    for s in rng.integers(min_shift, num_frames - min_shift + 1, size=shifts):
        b = bas_both(motion_beats, np.sort((music + s) % num_frames), sigma)
        for k in out:
            out[k].append(b[k])
    return {k: float(np.nanmean(v)) if v else float("nan") for k, v in out.items()}


def pfc(positions: np.ndarray, fps: float = 30.0) -> float:
    """EDGE's Physical Foot Contact score (lower is better): ``(T, J, 3)`` SMPL joints -> float.

    The root's acceleration (upward part clamped at 0 from below, i.e. only lifting
    counts, normalised by its largest value in the clip) times, per frame, the product of
    each foot's smaller horizontal speed (ankle or toe): a body that accelerates while
    neither foot is planted is not physical. Scaled by 1e4 as in EDGE's code.
    Velocities are per frame, as there (``fps`` only documents the assumed rate, 30).
    """
    root = positions[:, 0]
    a = np.diff(root, n=2, axis=0)                                       # (T-2, 3)
    a[:, UP_AXIS] = np.maximum(a[:, UP_AXIS], 0.0)
    a = np.linalg.norm(a, axis=-1)
    if a.max() <= 0:
        return 0.0
    a = a / a.max()
    feet = positions[:, list(LEFT_FOOT_JOINTS + RIGHT_FOOT_JOINTS)][..., [0, 2]]   # (T, 4, 2)
    v = np.linalg.norm(feet[2:] - feet[1:-1], axis=-1)                   # (T-2, 4)
    left, right = v[:, :2].min(axis=1), v[:, 2:].min(axis=1)
    return float(np.mean(left * right * a) * 1e4)


def kinetic_features(positions: np.ndarray, fps: float = 30.0) -> np.ndarray:
    """Per-clip kinetic statistics for dance diversity: ``(T, J, 3)`` -> ``(3 J,)``:
    mean horizontal and vertical kinetic energy per unit mass (``v^2 / 2``) and mean
    acceleration magnitude per joint (in the spirit of Bailando's kinetic features)."""
    v = np.diff(positions, axis=0) * fps
    h = 0.5 * (v[..., 0] ** 2 + v[..., 2] ** 2).mean(axis=0)
    u = 0.5 * (v[..., UP_AXIS] ** 2).mean(axis=0)
    acc = np.linalg.norm(np.diff(v, axis=0) * fps, axis=-1).mean(axis=0) if len(v) > 1 else np.zeros_like(h)
    return np.concatenate([h, u, acc])


def mean_speeds(positions: np.ndarray, fps: float = 30.0) -> tuple[float, float]:
    """How much a clip moves: ``(T, J, 3)`` -> (mean floor speed of the root, mean speed of the joints relative
    to the root), both m/s. Text-to-motion that drifts towards the mean motion shows here first: it travels less
    and moves its limbs less than the motion its caption names."""
    p = np.asarray(positions, np.float64)
    if len(p) < 2:
        return 0.0, 0.0
    root = np.linalg.norm(np.diff(p[:, 0] * FLOOR, axis=0), axis=-1).mean() * fps
    body = np.linalg.norm(np.diff(p - p[:, :1], axis=0), axis=-1).mean() * fps
    return float(root), float(body)


# --- feature-set statistics -----------------------------------------------------

def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to feature sets ``(N, D)`` and ``(M, D)`` (FID).

    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2)``; the trace of the
    cross term comes from the eigenvalues of a symmetric PSD matrix, which keeps it
    real and makes the distance of a set to itself 0 up to rounding.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be (N, D) with the same D, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("each feature set needs at least 2 samples")
    mu = a.mean(0) - b.mean(0)
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(sa)                       # symmetric PSD square root (exact, no sqrtm warnings)
    ra = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(ra @ sb @ ra)
    cross = np.sum(np.sqrt(np.clip(ev, 0, None)))
    return float(max(mu @ mu + np.trace(sa) + np.trace(sb) - 2 * cross, 0.0))


def diversity(features: np.ndarray) -> float:
    """Mean Euclidean distance between distinct samples of ``(N, D)`` features.

    ACTOR/MDM average 200 random pairs; this is that estimate's exact expectation
    (over all pairs), so it has no sampling noise.
    """
    f = np.asarray(features, np.float64)
    if len(f) < 2:
        return float("nan")
    sq = np.sum(f ** 2, axis=1)
    d2 = np.clip(sq[:, None] + sq[None] - 2 * f @ f.T, 0, None)
    iu = np.triu_indices(len(f), 1)
    return float(np.sqrt(d2[iu]).mean())


def accuracy(pred: np.ndarray, true: np.ndarray) -> float:
    """Share of equal labels, ``(N,)`` each."""
    pred, true = np.asarray(pred), np.asarray(true)
    return float(np.mean(pred == true)) if len(true) else float("nan")


def per_label(pred, true, root_speed) -> dict:
    """Accuracy broken down by true label: where a recogniser (or the generator it judges) goes wrong.

    pred, true ``(N,)`` labels; root_speed ``(N,)`` m/s. Returns ``{label: {"clips", "accuracy", "root_speed",
    "mistaken_for"}}`` in order of clip count (most first, then by name); ``mistaken_for`` is the most common
    wrong prediction for that label (ties: the first in name order), or None when every clip was right.
    """
    pred, true, speed = np.asarray(pred), np.asarray(true), np.asarray(root_speed, np.float64)
    labels, counts = np.unique(true, return_counts=True)
    out = {}
    for label in labels[np.lexsort((labels, -counts))]:
        sel = true == label
        wrong, n_wrong = np.unique(pred[sel & (pred != label)], return_counts=True)
        out[str(label)] = {"clips": int(sel.sum()), "accuracy": accuracy(pred[sel], true[sel]),
                           "root_speed": float(speed[sel].mean()),
                           "mistaken_for": str(wrong[np.argmax(n_wrong)]) if len(wrong) else None}
    return out
