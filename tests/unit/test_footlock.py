"""Two-bone IK and the contact-aware foot clean-up, on the SMPL skeleton and the procedural demo walk."""
from __future__ import annotations

import numpy as np
import pytest

from kinemo.core import rotations as R
from kinemo.core.footlock import (FootLockConfig, SMPL_LEGS, knee_cost_gate, leg_shift, plant_feet, stances,
                                  swing_lift)
from kinemo.core.ik import two_bone
from kinemo.core.smpl import smpl_skeleton
from kinemo.data.clip import clip_positions
from kinemo.demo_motion import demo_walk
from kinemo.eval import metrics as M

FPS = 30.0
FEET = [7, 8, 10, 11]
ANKLES, KNEES = [leg[2] for leg in SMPL_LEGS], [leg[1] for leg in SMPL_LEGS]


def _rest_heights(skel):
    return skel.rest_global()[1][FEET, 1]


def _sliding_walk():
    """The demo walk with its pelvis carried 25% further than the steps reach: every planted foot slides."""
    skel = smpl_skeleton()
    m = demo_walk(3.0)
    quats, root = m.rotations.copy(), m.translations[:, 0].copy()
    root[:, [0, 2]] = root[:1, [0, 2]] + 1.25 * (root[:, [0, 2]] - root[:1, [0, 2]])
    return skel, quats, root


def _stance_frames(skel):
    """Where the unaltered demo walk's feet are planted: low and slower than 1 m/s ``(T, 4)``."""
    m = demo_walk(3.0)
    p = clip_positions(skel, m.rotations, m.translations[:, 0])
    speed = np.linalg.norm(np.gradient(p[:, FEET][..., [0, 2]], axis=0), axis=-1) * FPS
    return M.contacts_by_height(p, _rest_heights(skel)) & (speed < 1.0)


def _skate(skel, quats, root):
    """Mean foot speed (m/s) over the walk's stance frames."""
    return M.foot_skating(clip_positions(skel, quats, root), _stance_frames(skel), FPS)


def test_two_bone_reaches_targets_and_keeps_bone_lengths():
    rng = np.random.default_rng(0)
    a = np.zeros((200, 3))
    b = a + np.array([0.0, -0.4, 0.05])
    c = b + np.array([0.0, -0.35, -0.15])      # a bent knee, 0.72 m from the hip of 0.78 m reach
    target = c + rng.normal(0, 0.08, (200, 3))
    dq_a, dq_b = two_bone(a, b, c, target)
    b2 = a + R.quat_apply(dq_a, b - a)
    # the end follows the middle joint's world rotation
    c2 = b2 + R.quat_apply(dq_b, c - b)
    assert np.allclose(np.linalg.norm(b2 - a, axis=-1), np.linalg.norm(b - a, axis=-1), atol=1e-9)
    assert np.allclose(np.linalg.norm(c2 - b2, axis=-1), np.linalg.norm(c - b, axis=-1), atol=1e-9)
    reach = np.linalg.norm(b - a, axis=-1) + np.linalg.norm(c - b, axis=-1)
    reachable = np.linalg.norm(target - a, axis=-1) < 0.995 * reach
    assert reachable.sum() > 100
    assert np.abs(c2 - target)[reachable].max() < 1e-6
    # the knee keeps bending to the side it bent to (here +z)
    axis = (target - a) / np.linalg.norm(target - a, axis=-1, keepdims=True)
    side = (b2 - a) - np.sum((b2 - a) * axis, -1, keepdims=True) * axis
    assert (side[reachable, 2] > 0).all()


def test_two_bone_out_of_reach_stretches_towards_target():
    a, b, c = np.zeros(3), np.array([0, -0.4, 0.01]), np.array([0, -0.8, 0.0])
    target = np.array([0.0, -2.0, 0.3])
    dq_a, dq_b = two_bone(a[None], b[None], c[None], target[None])
    b2 = a + R.quat_apply(dq_a[0], b - a)
    c2 = b2 + R.quat_apply(dq_b[0], c - b)
    direction = (target - a) / np.linalg.norm(target - a)
    assert np.allclose((c2 - a) / np.linalg.norm(c2 - a), direction, atol=1e-6)


def test_stances_close_short_gaps_and_drop_blips():
    planted = np.array([1, 1, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1], bool)
    assert stances(planted, FootLockConfig(bridge=1, min_frames=2)) == [(0, 5), (12, 15)]


def test_sliding_walk_is_planted_and_only_leg_rotations_change():
    skel, quats, root = _sliding_walk()
    before = _skate(skel, quats, root)
    out = plant_feet(skel.parents, skel.offsets, quats, root, _rest_heights(skel), FPS)
    after = _skate(skel, out, root)
    assert before > 0.15, "the test motion should skate to begin with"
    assert after < 0.5 * before, (before, after)
    legs = sorted(j for leg in SMPL_LEGS for j in leg[:3])
    others = [j for j in range(24) if j not in legs]
    assert np.array_equal(out[:, others], quats[:, others])
    assert np.allclose(np.linalg.norm(out, axis=-1), 1.0)
    # no pops: the feet never move faster than the original walk's fastest foot
    p0, p1 = clip_positions(skel, quats, root), clip_positions(skel, out, root)
    speed = lambda p: np.linalg.norm(np.diff(p[:, FEET], axis=0), axis=-1).max() * FPS  # noqa: E731
    assert speed(p1) < 1.2 * speed(p0)


def test_a_body_gliding_off_its_feet_moves_them_at_most_max_shift_and_smoothly():
    """Knees bent, feet low, the pelvis gliding 60 cm at 0.4 m/s: every frame reads as a stance, but holding
    the feet would stretch the legs; they are held back at most ``max_shift`` and the knees stay smooth."""
    skel = smpl_skeleton()
    T = 45
    q = np.tile([1.0, 0, 0, 0], (T, 24, 1))
    bend = lambda deg: R.axis_angle_to_quat(np.array([np.radians(deg), 0, 0]))  # noqa: E731
    for hip, knee, ankle, _ in SMPL_LEGS:
        q[:, hip], q[:, knee], q[:, ankle] = bend(-15), bend(30), bend(-15)
    root = np.zeros((T, 3))
    root[:, 1] = _rest_heights(skel)[0] - clip_positions(skel, q, root)[0, ANKLES, 1].min()
    root[:, 2] = np.linspace(0, 0.6, T)
    cfg = FootLockConfig()
    out = plant_feet(skel.parents, skel.offsets, q, root, _rest_heights(skel), FPS, cfg=cfg)
    p0, p1 = clip_positions(skel, q, root), clip_positions(skel, out, root)
    moved = np.linalg.norm(p1[:, ANKLES] - p0[:, ANKLES], axis=-1)
    assert 0.9 * cfg.max_shift < moved.max() <= cfg.max_shift + 1e-6
    assert M.jerk(p1[:, KNEES + ANKLES], FPS).max() < 50.0     # m/s^3; a single-frame 1 cm pop is 270


def test_keyed_frames_are_untouched_and_pin_the_stance():
    skel, quats, root = _sliding_walk()
    keyed = np.zeros((len(quats), 24), bool)
    keyed[[0, 40, 41, 80]] = True
    out = plant_feet(skel.parents, skel.offsets, quats, root, _rest_heights(skel), FPS, keyed=keyed)
    assert np.array_equal(out[keyed], quats[keyed])
    assert _skate(skel, out, root) < _skate(skel, quats, root)


def test_leg_shift_is_zero_on_locked_frames_and_horizontal():
    T = 30
    ankle = np.zeros((T, 3))
    ankle[:, 0] = np.linspace(0, 0.3, T)        # slides 30 cm while in contact
    toe = ankle + [0, -0.07, 0.12]
    contact = np.ones((T, 2), bool)
    locked = np.zeros(T, bool)
    locked[[0, 29]] = True
    shift = leg_shift(ankle, toe, contact, locked, FootLockConfig())
    assert np.array_equal(shift[locked], np.zeros((2, 3)))
    assert np.all(shift[:, 1] == 0)
    free = leg_shift(ankle, toe, contact, np.zeros(T, bool), FootLockConfig(max_shift=float("inf")))
    assert np.ptp((ankle + free)[:, 0]) < 1e-9, "an unkeyed stance holds one place"


def test_leg_shift_saturates_where_the_body_walks_away():
    """A foot carried 60 cm during its 'stance' is moved at most max_shift, and smoothly: the correction
    grows with the slide at first and never jumps between frames."""
    T = 40
    ankle = np.zeros((T, 3))
    ankle[:, 0] = np.linspace(0, 0.6, T)
    cfg = FootLockConfig()
    shift = leg_shift(ankle, ankle + [0, -0.07, 0.12], np.ones((T, 2), bool), np.zeros(T, bool), cfg)
    size = np.linalg.norm(shift, axis=-1)
    assert size.max() <= cfg.max_shift + 1e-12
    assert size[-1] > 0.95 * cfg.max_shift, "the correction is used, not dropped"
    assert np.abs(np.diff(size)).max() < 0.6 / (T - 1), "no step larger than the slide's own per frame"


@pytest.mark.parametrize("T", [0, 1])
def test_tiny_motions_pass_through(T):
    skel = smpl_skeleton()
    q = np.tile([1.0, 0, 0, 0], (T, 24, 1))
    out = plant_feet(skel.parents, skel.offsets, q, np.zeros((T, 3)), _rest_heights(skel), FPS)
    assert out.shape == q.shape


def test_a_straight_leg_is_not_bent_at_the_first_touched_frame():
    """Straight legs (the SMPL rest pose) with the pelvis drifting 0.3 m/s over planted feet: the lock may tilt
    a straight leg but must not bend it the moment a shift appears (that moved the knee 4 cm in one frame)."""
    skel = smpl_skeleton()
    T = 40
    q = np.tile([1.0, 0, 0, 0], (T, 24, 1))
    root = np.zeros((T, 3))
    root[:, 1] = _rest_heights(skel)[0] - clip_positions(skel, q, root)[0, ANKLES, 1].min()
    root[:, 2] = 0.01 * np.arange(T)
    out = plant_feet(skel.parents, skel.offsets, q, root, _rest_heights(skel), FPS)
    p0, p1 = clip_positions(skel, q, root), clip_positions(skel, out, root)
    ankle = np.linalg.norm(p1[:, ANKLES] - p0[:, ANKLES], axis=-1)
    knee = np.linalg.norm(p1[:, KNEES] - p0[:, KNEES], axis=-1)
    assert ankle.max() > 0.05, "the feet are held back"
    assert (knee[1] <= ankle[1]).all(), "the knee moves less than the foot it follows (bent at once: 3.5 cm for 1 cm)"
    assert np.abs(np.diff(knee, axis=0)).max() < 0.01


def test_a_stance_after_keyed_frames_eases_in_away_from_them():
    """A stance that starts two frames after a keyed context and contains a keyed frame later (in-betweening's
    target) is pinned through that key, but its shift must not ease in across the context's seam."""
    T = 40
    ankle = np.zeros((T, 3))
    ankle[:, 0] = np.linspace(0, 0.3, T)
    contact = np.zeros((T, 2), bool)
    contact[12:] = True
    locked = np.zeros(T, bool)
    locked[:10] = locked[39] = True
    shift = np.linalg.norm(leg_shift(ankle, ankle + [0, -0.07, 0.12], contact, locked, FootLockConfig()), axis=-1)
    assert shift[:10].max() == 0 and shift[39] == 0
    assert shift[10] < 0.01 and np.abs(np.diff(shift)).max() < 0.04, "no jump after the last keyed frame (was 8 cm)"
    assert shift.max() > 0.05, "the stance is still pinned"


def _skimming_foot(T: int, height: float, speed: float) -> tuple[np.ndarray, np.ndarray]:
    """Ankle and toe paths ``(T, 3)`` gliding along +Z at ``speed`` m/s, ``height`` m above their rest heights."""
    ankle = np.zeros((T, 3))
    ankle[:, 2] = speed / FPS * np.arange(T)
    ankle[:, 1] = 0.08 + height
    return ankle, ankle + [0, -0.04, 0.12]


def test_swing_lift_raises_a_skimming_foot_only_outside_stances_and_keys():
    T, cfg = 40, FootLockConfig()
    ankle, toe = _skimming_foot(T, 0.005, 2.0)
    stance = np.zeros(T, bool)
    stance[:10] = True
    locked = np.zeros(T, bool)
    locked[30] = True
    lift = swing_lift(ankle, toe, (0.08, 0.04), stance, locked, FPS, cfg)
    assert abs(lift[20] - (cfg.clearance - 0.005)) < 1e-6, "mid-swing: lifted to the clearance"
    assert lift[:5].max() < 1e-4 and lift[30] == 0.0, "standing and keyed frames stay where they are"
    assert np.abs(np.diff(lift)).max() < 0.01, "rises and falls without a step"
    no_stance = np.zeros(T, bool)
    assert not swing_lift(*_skimming_foot(T, 0.05, 2.0), (0.08, 0.04), no_stance, no_stance, FPS, cfg).any(), \
        "a foot already clear of the floor"
    assert not swing_lift(*_skimming_foot(T, 0.005, 0.5), (0.08, 0.04), no_stance, no_stance, FPS, cfg).any(), \
        "a slow foot is not swinging"
    assert not swing_lift(ankle, toe, (0.08, 0.04), no_stance, no_stance, FPS, FootLockConfig(clearance=0)).any()


def test_the_swing_lift_fades_towards_a_key_over_its_own_radius_not_the_locks():
    # near a key a low swinging foot is what skates, so the lift comes closer to keys than the lock's shift
    T = 40
    ankle, toe = _skimming_foot(T, 0.005, 2.0)
    stance, locked = np.zeros(T, bool), np.zeros(T, bool)
    locked[30] = True
    full = FootLockConfig().clearance - 0.005
    near = swing_lift(ankle, toe, (0.08, 0.04), stance, locked, FPS, FootLockConfig(lift_radius=2, key_radius=12))
    assert near[30] == 0.0 and abs(near[27] - full) < 1e-6 and 0 < near[29] < full
    wide = swing_lift(ankle, toe, (0.08, 0.04), stance, locked, FPS, FootLockConfig(lift_radius=8, key_radius=2))
    assert wide[27] < 0.5 * full, "the lift's radius, not the lock's, sets its fade"


def _glide(T: int = 40):
    """The SMPL rest pose (straight legs) carried forward at 2 m/s with its feet on the floor: skeleton, quats
    ``(T, 24, 4)``, root ``(T, 3)`` and keyed end frames ``(T, 24)``."""
    skel = smpl_skeleton()
    q = np.tile([1.0, 0, 0, 0], (T, 24, 1))
    root = np.zeros((T, 3))
    root[:, 1] = _rest_heights(skel)[0] - clip_positions(skel, q, root)[0, ANKLES, 1].min()
    root[:, 2] = 2.0 / FPS * np.arange(T)
    keyed = np.zeros((T, 24), bool)
    keyed[[0, T - 1]] = True
    return skel, q, root, keyed


def test_a_body_gliding_on_straight_legs_lifts_its_feet_by_bending_the_knees():
    """Nothing stands, so both feet are swinging and are lifted to the clearance by hip and knee (the knee-cost
    gate off: a straight leg is the costliest to lift); keyed end frames stay exactly as given."""
    skel, q, root, keyed = _glide()
    cfg = FootLockConfig(clearance=0.025, knee_cost=float("inf"))
    T = len(q)
    out = plant_feet(skel.parents, skel.offsets, q, root, _rest_heights(skel), FPS, keyed=keyed, cfg=cfg)
    h = clip_positions(skel, out, root)[:, FEET, 1] - _rest_heights(skel)
    assert h[10:30].min() > cfg.clearance - 2e-3, "mid-glide the feet clear the floor"
    assert np.array_equal(out[[0, T - 1]], q[[0, T - 1]])
    moved = np.flatnonzero(np.abs(out - q).max(axis=(0, 2)) > 1e-9)
    assert set(moved) <= {1, 2, 4, 5, 7, 8}, "only hips, knees and ankles turn"
    # from the keyed end frames the lift rises over `lift_radius` frames, no frame taking it all at once
    assert np.abs(np.diff(h, axis=0)).max() < cfg.clearance / cfg.lift_radius + 1e-6
    flat = plant_feet(skel.parents, skel.offsets, q, root, _rest_heights(skel), FPS, keyed=keyed,
                      cfg=FootLockConfig(clearance=0))
    assert np.array_equal(flat, q), "clearance 0: the gliding feet are left on the floor"


def test_the_knee_cost_gate_spares_straight_legs_small_lifts_and_keeps_bent_legs_lifts():
    # lifting a straight leg's ankle by a few millimetres bends its knee by centimetres: gated out; a bent leg
    # (knee 10 cm forward) lifts the same amount for about as much knee travel, and keeps it
    T = 9
    hip, lift = np.tile([0.0, 0.9, 0.0], (T, 1)), np.full(T, 0.005)
    straight_knee, ankle = np.tile([0.0, 0.5, 0.0], (T, 1)), np.tile([0.0, 0.1, 0.0], (T, 1))
    bent_knee, bent_ankle = np.tile([0.0, 0.5, 0.1], (T, 1)), np.tile([0.0, 0.12, 0.0], (T, 1))
    cfg = FootLockConfig()
    assert knee_cost_gate(hip, straight_knee, ankle, lift, cfg).max() < 0.05
    assert knee_cost_gate(hip, bent_knee, bent_ankle, lift, cfg).min() > 0.95
    assert (knee_cost_gate(hip, straight_knee, ankle, lift, FootLockConfig(knee_cost=float("inf"))) == 1).all()
    # no lift on a frame: nothing to gate there, and the smoothing does not pull its neighbours' gate down
    some = np.where(np.arange(T) < 4, 0.0, lift)
    gate = knee_cost_gate(hip, bent_knee, bent_ankle, some, cfg)
    assert (gate[:4] == 1).all() and gate.min() > 0.95


def test_gliding_straight_legs_are_lifted_less_near_keys_where_the_knee_would_pop():
    """The knee-cost gate on the glide: the faded lift's first millimetres after a keyed frame would bend the
    straight knee by centimetres; gated, the knee's largest jerk falls while the feet still rise mid-glide."""
    skel, q, root, keyed = _glide()

    def run(cfg):
        out = plant_feet(skel.parents, skel.offsets, q, root, _rest_heights(skel), FPS, keyed=keyed, cfg=cfg)
        p = clip_positions(skel, out, root)
        return out, p, M.jerk(p, FPS)[:, KNEES].max()

    (out, p, jerk), (_, _, ungated) = run(FootLockConfig()), run(FootLockConfig(knee_cost=float("inf")))
    assert jerk < 0.8 * ungated
    assert np.array_equal(out[[0, -1]], q[[0, -1]]), "keys stay exact"
    assert (p[15:25, FEET, 1] - _rest_heights(skel)).min() > 0.01, "mid-glide the feet still clear the floor"


@pytest.mark.parametrize("bad", [{"key_radius": 0}, {"lift_radius": 0}, {"min_frames": 0}, {"speed": 0.0},
                                 {"max_shift": -1.0}, {"swing_speed": (1.5, 0.8)}, {"clearance": float("nan")},
                                 {"knee_cost": 0.0}])
def test_settings_that_would_break_the_lock_are_refused_by_name(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        FootLockConfig(**bad)


def test_two_bone_keeps_a_nearly_straight_knee_bending_its_own_way_as_the_target_sweeps_sideways():
    # a standing leg, knee bent 2 cm forward (+z); the ankle's target swept 12 cm to either side, as the foot
    # lock moves a planted foot. The knee must keep pointing forward and move smoothly: taking its side from
    # the hip-target line swung it sideways and flipped it across mid-sweep.
    a = np.zeros((241, 3))
    b = a + np.array([0.0, -0.4, 0.02])
    c = a + np.array([0.0, -0.79, 0.0])
    target = c + np.linspace(-0.12, 0.12, 241)[:, None] * np.array([1.0, 0, 0])
    dq_a, _ = two_bone(a, b, c, target)
    knee = a + R.quat_apply(dq_a, b - a)
    u = target / np.linalg.norm(target, axis=-1, keepdims=True)
    side = knee - np.sum(knee * u, -1, keepdims=True) * u
    side /= np.linalg.norm(side, axis=-1, keepdims=True)
    assert side[:, 2].min() > 0.99                       # forward, square to the leg: not swung sideways
    step = np.linalg.norm(np.diff(knee, axis=0), axis=-1).max()
    assert step < 2 * np.linalg.norm(target[1] - target[0])  # no jump: the knee moves with the target
