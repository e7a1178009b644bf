"""Contact-aware clean-up: feet that touch the ground stay planted.

A generated foot that should stand still often drifts a few centimetres (foot
skating). Here each leg's stance phases are found (foot low and slow, or
declared in contact by the model), the planted point is pinned where it
stands, and two-bone IK on hip and knee moves the ankle there. The ankle keeps
its world orientation, so the toe moves with it. During heel-off the toe is
the pinned point, otherwise the ankle. Locks ease in and out over a few
frames, and the correction fades to nothing at keyed leg joints, so keys stay
exact and nothing pops. A swinging foot that skims the floor is lifted to
a small clearance the same way, unless that would swing its knee much further than it
raises the foot. Only hip, knee and ankle rotations change.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from . import rotations as R
from .easing import smoothstep
from .fk import forward_kinematics
from .ik import soft_reach, two_bone

# (hip, knee, ankle, foot) joint indices of the SMPL skeleton, per leg
SMPL_LEGS = ((1, 4, 7, 10), (2, 5, 8, 11))
UP = 1
REACH = 0.995    # share of a leg's full length its ankle may reach (soft_reach's limit)
BEND_IN = 0.06   # metres of foot shift over which a straighter leg is brought to REACH
GATE_SIGMA = 1.0  # frames: Gaussian smoothing of the knee-cost gate on the swing lift, so it never jumps


@dataclass(frozen=True)
class FootLockConfig:
    height: float = 0.03       # metres above the joint's rest height that still counts as on the floor
    speed: float = 1.0         # horizontal m/s under which a low foot counts as planted
    model_prob: float = 0.5    # the model's contact probability that, on a low foot, also counts
    bridge: int = 2            # gaps in a stance this short (frames) are closed
    min_frames: int = 2        # shorter stances are left alone
    blend: int = 6             # frames over which a lock eases in and out
    # Frames over which the lock's shift, and separately the swing lift, fade out towards a keyed leg. The lift
    # fades over fewer frames: near keys a low swinging foot is what skates (on 120 val windows, 5-frame gaps,
    # lift fading over 8 frames: skating 0.266 m/s against real 0.215; over 2: 0.208), while the lock's wider
    # fade keeps the seams smooth (seam jerk 344 against real 350; the lock over 8 frames too: 364). Chosen on
    # val, docs/model.md has the sweep.
    key_radius: int = 12
    lift_radius: int = 2
    # A foot that would have to be moved further than this is not one the motion meant to plant (the body
    # walks away from it, or the model put its step elsewhere): the correction saturates smoothly here and the
    # foot follows the motion, instead of the leg being torn straight (measured: 40 cm corrections, knee jerk
    # 15,000 m/s^3, on val windows of the 14,500-step model).
    max_shift: float = 0.12    # metres
    # A swinging foot (outside a stance, ankle and toe both moving faster than swing_speed[1] m/s, easing in
    # from swing_speed[0]) is lifted to at least `clearance` metres above its rest height (0 = off). The
    # network's swing feet sit too low (on 120 val windows with 30-frame gaps its foot joints were 0.85 cm
    # lower than the real ones on average, with 3x as many frames of feet under 2 cm moving over 1 m/s); real
    # feet moving over 1 m/s are 5.7 cm up at median and under 2.2 cm in a quarter of frames (training split).
    clearance: float = 0.025   # metres
    swing_speed: tuple[float, float] = (0.8, 1.5)
    lift_sigma: float = 1.5    # frames: Gaussian smoothing of the lift, so it rises and falls as an arc
    # A lift is not made where it would swing the knee much further than it raises the foot: a nearly straight
    # leg's ankle rises a few millimetres only by a knee bend of centimetres (the knee moves as the square root
    # of the lift). On the test split's 5-frame gaps four such windows (lifts of 2-8 mm moving the knee 5-7
    # times as far) held 84% of the lift's seam jerk and changed no frame's contact. The lift fades out as
    # the knee's travel per metre of lift goes from `knee_cost` metres to twice that (inf = never); 3 chosen
    # on val (docs/model.md).
    knee_cost: float = 3.0

    def __post_init__(self):
        # settings reach here from text (`MODEL@lock.NAME=VALUE` in the benches): refuse what would divide by
        # zero or invert a range, naming the field, instead of returning NaN rotations
        bad = [f"{n}={getattr(self, n)}" for n, ok in (
            ("height", self.height >= 0), ("speed", self.speed > 0), ("model_prob", 0 <= self.model_prob <= 1),
            ("bridge", self.bridge >= 0), ("min_frames", self.min_frames >= 1), ("blend", self.blend >= 0),
            ("key_radius", self.key_radius >= 1), ("lift_radius", self.lift_radius >= 1),
            ("max_shift", self.max_shift > 0),
            ("clearance", self.clearance >= 0), ("lift_sigma", self.lift_sigma >= 0),
            ("knee_cost", self.knee_cost > 0),
            ("swing_speed", 0 <= self.swing_speed[0] < self.swing_speed[1])) if not ok]
        if bad:
            raise ValueError(f"foot lock settings out of range: {', '.join(bad)} (see FootLockConfig)")


def stances(planted: np.ndarray, cfg: FootLockConfig) -> list[tuple[int, int]]:
    """Runs of planted frames ``(T,)`` bool -> ``[(start, stop), ...]`` after closing gaps of at most
    ``cfg.bridge`` frames and dropping runs shorter than ``cfg.min_frames``."""
    runs: list[list[int]] = []
    for t in np.flatnonzero(planted):
        if runs and t - runs[-1][1] <= cfg.bridge:
            runs[-1][1] = t + 1
        else:
            runs.append([int(t), int(t) + 1])
    return [(s, e) for s, e in runs if e - s >= cfg.min_frames]


def detect_contacts(pos: np.ndarray, rest_heights: np.ndarray, fps: float, cfg: FootLockConfig,
                    prob: np.ndarray | None = None) -> np.ndarray:
    """Planted foot joints: low, and slow or declared in contact by the model.

    pos ``(T, 24, 3)``; rest_heights ``(4,)`` for (left ankle, right ankle, left foot, right foot);
    prob ``(T, 4)`` the model's contact probabilities in the same order, or None. Returns ``(T, 4)`` bool.
    """
    feet = pos[:, [SMPL_LEGS[0][2], SMPL_LEGS[1][2], SMPL_LEGS[0][3], SMPL_LEGS[1][3]]]
    low = feet[..., UP] < np.asarray(rest_heights) + cfg.height
    flat = feet[..., [0, 2]]
    speed = np.linalg.norm(np.gradient(flat, axis=0), axis=-1) * fps if len(pos) > 1 else np.zeros(low.shape)
    slow = speed < cfg.speed
    if prob is not None:
        slow |= np.asarray(prob) > cfg.model_prob
    return low & slow


def _through(p: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Piecewise-linear path ``(n, 3)`` through ``p[keys]``, held before the first and after the last."""
    span = np.arange(len(p))
    return np.stack([np.interp(span, keys, p[keys, k]) for k in range(p.shape[1])], -1)


def _hold(ref: np.ndarray, on_toe: np.ndarray) -> np.ndarray:
    """Where the planted point of one unkeyed stance is held: ``(n, 3)`` per frame.

    The foot stays where it lands: the first phase (heel or toe) holds its point at its first frame, so the
    lock starts without a jump; when the stance rolls onto the other point, that point is held where it is
    at the roll, carrying the shift so far.
    """
    starts = np.flatnonzero(np.diff(on_toe.astype(int))) + 1
    bounds = [0, *starts.tolist(), len(ref)]
    pin = np.empty_like(ref)
    pin[:bounds[1]] = ref[0]
    for a, b in zip(bounds[1:-1], bounds[2:]):
        pin[a:b] = ref[a] + (pin[a - 1] - ref[a - 1])
    return pin


def away_from(frames: np.ndarray, radius: float) -> np.ndarray:
    """Weight ``(T,)`` rising smoothly from 0 on the marked ``frames`` ``(T,)`` bool to 1 at ``radius`` frames
    from the nearest of them; all ones when none is marked."""
    marked = np.flatnonzero(frames)
    if not len(marked):
        return np.ones(len(frames))
    return smoothstep(np.abs(np.arange(len(frames))[:, None] - marked[None]).min(1) / radius)


def leg_shift(ankle: np.ndarray, toe: np.ndarray, contact: np.ndarray, locked: np.ndarray,
              cfg: FootLockConfig) -> np.ndarray:
    """How far (horizontally) to move one leg's ankle so its planted point stays put.

    ankle, toe ``(T, 3)``; contact ``(T, 2)`` bool (ankle, toe); locked ``(T,)`` bool frames whose leg is
    keyed. Returns ``(T, 3)`` with a zero up component, exactly zero on locked frames.
    """
    T = len(ankle)
    num, den = np.zeros((T, 3)), np.zeros(T)
    t = np.arange(T)
    for s, e in stances(contact.any(1), cfg):
        # the lock eases out before reaching a keyed frame outside the stance, so those stay exact and are
        # approached without a pop (a stance starting just after a keyed context would otherwise ease its
        # shift in across the seam)
        near_key = away_from(locked & ((t < s) | (t >= e)), cfg.key_radius)
        on_toe = contact[s:e, 1] & ~contact[s:e, 0]          # heel off: the toe is what stands
        ref = np.where(on_toe[:, None], toe[s:e], ankle[s:e])
        keys = np.flatnonzero(locked[s:e])
        if len(keys):
            # keyed frames inside the stance say where the foot stands: pin to them, per reference point,
            # linearly between two keys (they may disagree by a little slide) and held beyond the outer ones
            pin = np.where(on_toe[:, None], _through(toe[s:e], keys), _through(ankle[s:e], keys))
        else:
            pin = _hold(ref, on_toe)
        shift = pin - ref
        shift[:, UP] = 0.0
        # full weight inside the stance, easing out over `blend` frames on either side with the edge's shift
        w = np.where(t < s, 1 - smoothstep((s - t) / (cfg.blend + 1)),
                     np.where(t >= e, 1 - smoothstep((t - e + 1) / (cfg.blend + 1)), 1.0))
        w = w * near_key
        full = shift[np.clip(t - s, 0, e - s - 1)]
        num += w[:, None] * full
        den += w
    out = num / np.maximum(den, 1.0)[:, None]
    out[locked] = 0.0
    return saturate(out, cfg.max_shift)


def swing_lift(ankle: np.ndarray, toe: np.ndarray, rest: tuple[float, float], stance: np.ndarray,
               locked: np.ndarray, fps: float, cfg: FootLockConfig) -> np.ndarray:
    """How far to raise one leg's ankle so a swinging foot clears the floor: ``(T,)`` metres, >= 0.

    ankle, toe ``(T, 3)``; rest (ankle, toe) rest heights; stance ``(T,)`` bool frames the foot stands
    (never lifted); locked ``(T,)`` bool frames whose leg is keyed (exactly zero there, fading out over
    ``cfg.lift_radius`` frames around them). The ankle keeps its world orientation, so the
    toe rises with it.
    """
    T = len(ankle)
    if cfg.clearance <= 0 or T < 2:
        return np.zeros(T)
    low = np.minimum(ankle[:, UP] - rest[0], toe[:, UP] - rest[1])
    flat = np.stack([ankle, toe], 1)[..., [0, 2]]
    speed = (np.linalg.norm(np.gradient(flat, axis=0), axis=-1) * fps).min(1)
    lo, hi = cfg.swing_speed
    swing = np.clip((speed - lo) / (hi - lo), 0.0, 1.0) * ~stance
    lift = gaussian_filter1d(np.maximum(0.0, cfg.clearance - low) * swing, cfg.lift_sigma, mode="nearest")
    return lift * away_from(locked, cfg.lift_radius)


def knee_cost_gate(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, lift: np.ndarray,
                   cfg: FootLockConfig) -> np.ndarray:
    """Weight ``(T,)`` in [0, 1] on one leg's swing ``lift`` ``(T,)`` metres: 1 where raising the ankle by it moves
    the knee at most ``cfg.knee_cost`` times as far, 0 from twice that, smoothed over about a frame. hip, knee,
    ankle ``(T, 3)``. Frames without a lift count as 1, so the smoothing never pulls a lift down from them."""
    gate = np.ones(len(lift))
    on = lift > 1e-6
    if not on.any() or not np.isfinite(cfg.knee_cost):
        return gate
    target = ankle[on].copy()
    target[:, UP] += lift[on]
    dq_hip, _ = two_bone(hip[on], knee[on], ankle[on], target)
    thigh = knee[on] - hip[on]
    travel = np.linalg.norm(R.quat_apply(dq_hip, thigh) - thigh, axis=-1)
    gate[on] = 1 - smoothstep(travel / lift[on] / cfg.knee_cost - 1)
    return gaussian_filter1d(gate, GATE_SIGMA, mode="nearest")


def saturate(v: np.ndarray, limit: float) -> np.ndarray:
    """Vectors ``(..., 3)`` with their length ``n`` mapped to ``limit * tanh(n / limit)``: near identity for
    short ones, never longer than ``limit``, smooth in between (no kink for a pop to come from). An infinite
    ``limit`` leaves them as they are."""
    if not np.isfinite(limit):
        return v
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v * np.where(n > 1e-12, limit * np.tanh(n / limit) / np.maximum(n, 1e-12), 1.0)


def plant_feet(parents: np.ndarray, offsets: np.ndarray, quats: np.ndarray, root: np.ndarray,
               rest_heights: np.ndarray, fps: float, keyed: np.ndarray | None = None,
               prob: np.ndarray | None = None, cfg: FootLockConfig = FootLockConfig()) -> np.ndarray:
    """Local rotations with planted feet held still and swinging feet clear of the floor.

    parents ``(24,)`` and offsets ``(24, 3)`` of the SMPL skeleton; quats ``(T, 24, 4)``; root ``(T, 3)``;
    rest_heights ``(4,)`` as :func:`detect_contacts`; keyed ``(T, 24)`` bool joint rotations that must not
    change (their leg is left alone on those frames); prob ``(T, 4)`` the model's contact probabilities.
    Returns new quats ``(T, 24, 4)``: only hip, knee and ankle rotations differ, and only where a foot was
    moved; the root is not touched.
    """
    quats = np.array(quats, np.float64)
    T = len(quats)
    if T < 2:
        return quats
    keyed = np.zeros((T, len(parents)), bool) if keyed is None else np.asarray(keyed, bool)
    trans = np.repeat(np.asarray(offsets, np.float64)[None], T, 0)
    trans[:, 0] = root
    grot, pos = forward_kinematics(parents, quats, trans)
    contacts = detect_contacts(pos, rest_heights, fps, cfg, prob)
    for side, (hip, knee, ankle, toe) in enumerate(SMPL_LEGS):
        locked = keyed[:, [hip, knee, ankle]].any(1)
        foot = contacts[:, [side, 2 + side]]                  # (T, 2) ankle, toe
        shift = leg_shift(pos[:, ankle], pos[:, toe], foot, locked, cfg)
        lift = swing_lift(pos[:, ankle], pos[:, toe], (rest_heights[side], rest_heights[2 + side]), foot.any(1),
                          locked, fps, cfg)
        shift[:, UP] += lift * knee_cost_gate(pos[:, hip], pos[:, knee], pos[:, ankle], lift, cfg)
        moved = np.flatnonzero(np.abs(shift).sum(1) > 1e-9)
        if not len(moved):
            continue
        p = pos[moved]
        length = np.linalg.norm(p[:, knee] - p[:, hip], axis=-1) + np.linalg.norm(p[:, ankle] - p[:, knee], axis=-1)
        # a target near full reach is approached softly; the soft zone starts no nearer than the leg already
        # reaches, and a leg straighter than REACH is bent to it only as its shift grows (over BEND_IN), so a
        # vanishing shift leaves the leg as it was (bending a straight leg to REACH at the first touched frame
        # moved its knee 4 cm: a pop; never bending it let walks' planted feet slide, PFC 0.66 -> 1.30)
        ext = np.linalg.norm(p[:, ankle] - p[:, hip], axis=-1) / length
        straight = np.maximum(REACH, ext)
        # (squared: a straight knee moves as the square root of the bend, so it then moves in step with the shift)
        limit = straight - (straight - REACH) * np.minimum(1.0, np.linalg.norm(shift[moved], axis=-1) / BEND_IN) ** 2
        start = np.clip(ext, 0.95, limit - 1e-3)
        target = soft_reach(p[:, hip], p[:, ankle] + shift[moved], length, start=start, limit=limit)
        dq_hip, dq_knee = two_bone(p[:, hip], p[:, knee], p[:, ankle], target, reach=np.maximum(0.999, limit))
        g_hip = R.quat_mul(dq_hip, grot[moved, hip])
        g_knee = R.quat_mul(dq_knee, grot[moved, knee])
        quats[moved, hip] = R.quat_mul(R.quat_conjugate(grot[moved, parents[hip]]), g_hip)
        quats[moved, knee] = R.quat_mul(R.quat_conjugate(g_hip), g_knee)
        quats[moved, ankle] = R.quat_mul(R.quat_conjugate(g_knee), grot[moved, ankle])
        leg = [hip, knee, ankle]
        quats[:, leg] = R.quat_continuous(quats[:, leg], axis=0)
    return quats
