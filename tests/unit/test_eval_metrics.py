"""Every metric on constructed inputs whose answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from kinemo.core import rotations as R
from kinemo.eval import metrics as M
from kinemo.eval.baselines import Interpolation, ZeroVelocity
from kinemo.eval.bench_inbetween import score
from kinemo.eval.report import global_transforms, rest_foot_heights

FPS = 30.0
rng = np.random.default_rng(7)


def random_pose(n=1, scale=0.5):
    return R.axis_angle_to_quat(rng.normal(scale=scale, size=(n, 24, 3)))


def slerp_window(ctx=10, n=15):
    """Context frames of a random motion, then a transition that is exactly slerp + lerp to a target."""
    L = ctx + n + 1
    q = np.empty((L, 24, 4))
    q[:ctx] = R.quat_slerp(random_pose()[0], random_pose()[0], np.linspace(0, 1, ctx)[:, None])
    target = random_pose()[0]
    t = np.linspace(0, 1, n + 2)[:, None]
    q[ctx - 1:] = R.quat_slerp(q[ctx - 1], target, t)
    r = np.zeros((L, 3))
    r[:ctx] = np.linspace([0, 0.9, 0], [0.3, 0.9, 0.1], ctx)
    r[ctx - 1:] = np.linspace(r[ctx - 1], [1.5, 0.95, -0.4], n + 2)
    keys = np.zeros(L, bool)
    keys[:ctx] = keys[-1] = True
    return q, r, keys


# --- baselines -----------------------------------------------------------------

def test_pure_slerp_transition_scores_exactly_the_interpolation_baseline():
    q, r, keys = slerp_window()
    pq, pr = Interpolation().inbetween(q, r, keys)
    assert np.abs(M.nearest_sign(pq, q) - q).max() < 1e-6
    assert np.abs(pr - r).max() < 1e-6
    s = score(pq[None].astype(np.float64), pr[None].astype(np.float64), q[None], r[None], keys, 9, np.ones((24, 3)))
    assert s["l2p"] < 1e-5 and s["l2q"] < 1e-5 and s["npss"] < 1e-6 and s["key_pos_m"] < 1e-5
    # and a different transition does not
    zq, zr = ZeroVelocity().inbetween(q, r, keys)
    z = score(zq[None].astype(np.float64), zr[None].astype(np.float64), q[None], r[None], keys, 9, np.ones((24, 3)))
    assert z["l2p"] > 0.1 and z["l2q"] > 0.1 and z["npss"] > 1e-4


def test_the_l2p_breakdown_charges_each_error_to_its_half():
    q, r, keys = slerp_window()
    std = np.ones((24, 3))
    moved = r.copy()
    moved[~keys] += [0.2, 0.05, 0.0]                       # the root path off, the pose right
    s = score(q[None], moved[None], q[None], r[None], keys, 9, std)
    assert s["l2p"] > 0.05 and s["l2p_pose"] < 1e-9 and abs(s["l2p_root"] - s["l2p"]) < 1e-9
    bent = q.copy()
    bent[~keys, 5] = R.quat_mul(R.axis_angle_to_quat(np.array([0.6, 0.0, 0.0])), bent[~keys, 5])   # a knee off
    s = score(bent[None], r[None], q[None], r[None], keys, 9, std)
    assert s["l2p"] > 0.01 and s["l2p_root"] < 1e-9 and abs(s["l2p_pose"] - s["l2p"]) < 1e-9


def test_seam_jerk_over_real_is_paired_per_window():
    """The real motion itself is exactly level with real; a pop after the last context frame lies above it, in
    its own window only, and the standard error comes from the spread of the per-window differences."""
    wins = [slerp_window() for _ in range(3)]
    keys = wins[0][2]
    q = np.stack([w[0] for w in wins])
    r = np.stack([w[1] for w in wins])
    std = np.ones((24, 3))
    same = score(q, r, q, r, keys, 9, std)
    assert same["jerk_over_real"] == 0.0 and same["jerk_over_real_se"] == 0.0
    popped = r.copy()
    popped[1, 10] += [0.0, 0.1, 0.0]                       # window 1 jumps 10 cm up on its first filled frame
    s = score(q, popped, q, r, keys, 9, std)
    assert s["jerk_over_real"] > 100 and s["jerk_over_real_se"] > 0
    one = score(q[1:2], popped[1:2], q[1:2], r[1:2], keys, 9, std)
    assert one["jerk_over_real"] == pytest.approx(3 * s["jerk_over_real"])
    assert s["jerk_over_real_se"] == pytest.approx(one["jerk_over_real"] / 3)   # sd x / sqrt(3) over sqrt(3)


def test_zero_velocity_holds_the_last_key_and_hits_the_next():
    q, r, keys = slerp_window(ctx=4, n=6)
    pq, pr = ZeroVelocity().inbetween(q, r, keys)
    for t in range(4, 10):
        assert np.allclose(pq[t], R.quat_normalize(q[3]), atol=1e-6) and np.allclose(pr[t], r[3], atol=1e-6)
    assert np.allclose(pq[keys], R.quat_normalize(q[keys]), atol=1e-6) and np.allclose(pr[keys], r[keys], atol=1e-6)


def test_per_joint_keys_and_root_keys():
    T = 9
    q = random_pose(T)
    r = rng.normal(size=(T, 3))
    keys = np.zeros((T, 24), bool)
    keys[0] = keys[8] = True
    keys[4, 5] = True                   # one joint keyed in the middle
    root_keys = np.zeros(T, bool)
    root_keys[0] = root_keys[2] = True  # root keyed on its own frames
    pq, pr = Interpolation().inbetween(q, r, keys, root_keys=root_keys)
    assert np.allclose(M.nearest_sign(pq[4, 5], q[4, 5]), q[4, 5], atol=1e-6)
    assert np.allclose(pq[2, 5], R.quat_slerp(q[0, 5], q[4, 5], 0.5), atol=1e-6)
    assert np.allclose(pr[1], (r[0] + r[2]) / 2, atol=1e-6) and np.allclose(pr[5], r[2], atol=1e-6)
    with pytest.raises(ValueError, match="keys must be"):
        Interpolation().inbetween(q, r, np.ones((T, 3), bool))


# --- in-betweening metrics ---------------------------------------------------------

def test_l2q_is_sign_invariant_and_l2p_scales_with_std():
    q = random_pose(6).reshape(2, 3, 24, 4)
    signs = rng.choice([-1.0, 1.0], size=(2, 3, 24, 1))
    assert M.l2q(q * signs, q) < 1e-12
    other = random_pose(6).reshape(2, 3, 24, 4)
    assert M.l2q(other * signs, q) == pytest.approx(M.l2q(other, q))
    a, b = rng.normal(size=(2, 3, 24, 3)), rng.normal(size=(2, 3, 24, 3))
    assert M.l2p(a, b, np.full((24, 3), 2.0)) == pytest.approx(M.l2p(a, b, np.ones((24, 3))) / 2)
    # one window, one frame, one joint off by 3 along x -> 3
    z = np.zeros((1, 1, 24, 3))
    d = z.copy()
    d[0, 0, 4, 0] = 3
    assert M.l2p(d, z, np.ones((24, 3))) == pytest.approx(3.0)


def test_alignment_turns_the_last_context_frame_to_face_forward():
    q = random_pose(5, 0.2)[None]
    yaw = R.axis_angle_to_quat(np.array([0, 1.2, 0]))
    gq, gp = global_transforms(q[0], np.tile([2.0, 0.9, -1.0], (5, 1)))
    gq2 = R.quat_mul(yaw, gq)
    gp2 = R.quat_apply(yaw, gp) + np.array([5.0, 0, 3.0])
    a, qa = M.align_to_frame(gp[None], gq[None], 4)
    b, qb = M.align_to_frame(gp2[None], gq2[None], 4)
    assert np.allclose(a, b, atol=1e-9) and np.allclose(M.nearest_sign(qa, qb), qb, atol=1e-9)
    assert np.allclose(a[0, 4, 0, [0, 2]], 0, atol=1e-9)


def test_npss_zero_for_identical_and_positive_for_different_spectra():
    t = np.arange(40) / FPS
    slow = np.stack([np.sin(2 * np.pi * 1 * t), np.cos(2 * np.pi * 1 * t)], -1)[None]
    fast = np.stack([np.sin(2 * np.pi * 6 * t), np.cos(2 * np.pi * 6 * t)], -1)[None]
    assert M.npss(slow, slow) == pytest.approx(0.0, abs=1e-12)
    assert M.npss(fast, slow) > 0.5
    assert M.npss(slow * 3, slow) == pytest.approx(0.0, abs=1e-12)   # normalised: scale does not matter


def test_keyframe_error():
    p = rng.normal(size=(5, 24, 3))
    q = random_pose(5)
    keys = np.array([1, 0, 0, 0, 1], bool)
    p2, q2 = p.copy(), q.copy()
    p2[2] += 10  # unkeyed frame: ignored
    assert np.allclose(M.keyframe_error(p2, p, q2, q, keys), 0.0, atol=1e-12)
    p2[4, 3, 1] += 0.25
    q2[0, 7] = R.quat_mul(R.axis_angle_to_quat(np.array([0.3, 0, 0])), q[0, 7])
    dp, da = M.keyframe_error(p2, p, q2, q, keys)
    assert dp == pytest.approx(0.25) and da == pytest.approx(0.3)


def standing(T=60):
    q = np.tile(R.quat_identity((24,)), (T, 1, 1))
    r = np.tile([0.0, 0.9403, 0.0], (T, 1))
    return q, r


def test_sliding_foot_is_caught_and_planted_one_is_not():
    q, r = standing()
    _, planted = global_transforms(q, r)
    rest = rest_foot_heights()
    assert M.foot_skating(planted, M.contacts_by_height(planted, rest), FPS) == pytest.approx(0.0, abs=1e-9)
    r[:, 0] = np.arange(60) * 0.01  # the whole body glides 0.3 m/s with feet on the floor
    _, slide = global_transforms(q, r)
    assert M.foot_skating(slide, M.contacts_by_height(slide, rest), FPS) == pytest.approx(0.3, rel=1e-6)
    r[:, 1] += 0.3  # lifted: not in contact, so not skating
    _, air = global_transforms(q, r)
    assert np.isnan(M.foot_skating(air, M.contacts_by_height(air, rest), FPS))


def test_seam_jerk_sees_a_pop_and_not_a_smooth_motion():
    T = 20
    t = np.arange(T) / FPS
    smooth = np.zeros((T, 24, 3))
    smooth[..., 0] = (0.5 * t)[:, None]                 # constant velocity: no jerk
    keys = np.zeros(T, bool)
    keys[:5] = keys[-1] = True
    assert M.boundary_jerk(smooth, keys, FPS) == pytest.approx(0.0, abs=1e-6)
    pop = smooth.copy()
    pop[-1, :, 0] += 0.1                                # the target frame jumps by 10 cm
    assert M.boundary_jerk(pop, keys, FPS) > 100
    assert np.isnan(M.boundary_jerk(smooth, np.ones(T, bool), FPS))


# --- dance ----------------------------------------------------------------------

def beat_motion(beats, T):
    """A joint speed with minima exactly on ``beats``: positions integrate |sin|-shaped speed."""
    speed = np.ones(T)
    for b in beats:
        speed -= 0.9 * np.exp(-((np.arange(T) - b) ** 2) / (2 * 2.0 ** 2))
    x = np.concatenate([[0], np.cumsum(speed[1:])]) * 0.01
    pos = np.zeros((T, 24, 3))
    pos[..., 0] = x[:, None]
    return pos


def test_bas_near_one_on_the_beats_and_lower_when_shifted():
    T = 300
    music = np.arange(15, T, 20)                       # 90 bpm at 30 fps
    pos = beat_motion(music, T)
    kin = M.kinematic_beats(pos, smooth=0)
    assert np.allclose(kin, music, atol=1)
    b = M.bas_both(kin, music)
    assert b["kinematic"] > 0.95 and b["music"] > 0.95
    shifted = M.bas_both(M.kinematic_beats(beat_motion(music + 10, T), smooth=0), music)
    assert shifted["kinematic"] < 0.1 and shifted["music"] < 0.1
    chance = M.beat_align_chance(kin, music, T)
    assert chance["kinematic"] < 0.6 and chance["music"] < 0.6
    assert M.beat_align_score([10.0], [13.0], sigma=3) == pytest.approx(np.exp(-0.5))


def test_pfc_zero_when_a_foot_is_planted_and_positive_when_both_slide():
    T = 60
    q, r = standing(T)
    r[:, 1] += 0.05 * np.sin(np.arange(T) / 3.0)       # body bobs: the root accelerates
    _, pos = global_transforms(q, r)
    assert M.pfc(pos) == pytest.approx(0.0, abs=1e-9)   # both feet planted
    slide = pos.copy()
    slide[:, list(M.FOOT_JOINTS), 0] += (np.arange(T) * 0.02)[:, None]
    assert M.pfc(slide) > 1.0


# --- feature sets -------------------------------------------------------------

def test_fid_of_a_set_with_itself_is_zero_and_grows_with_shift():
    a = rng.normal(size=(200, 8))
    assert M.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert M.frechet_distance(a, a + 1.0) == pytest.approx(8.0, rel=1e-6)   # mean shift of 1 in 8 dims
    with pytest.raises(ValueError):
        M.frechet_distance(a, a[:, :3])


def test_mean_speeds_separate_travel_from_limb_motion():
    T = 31
    glide = np.zeros((T, 24, 3))
    glide[..., 1] = np.linspace(0.1, 1.6, 24)                        # a still body...
    glide[:, :, 2] += np.arange(T)[:, None] / 30.0 * 1.5              # ...gliding forward at 1.5 m/s
    glide[:, :, 1] += 0.1 * np.sin(np.arange(T) / 3.0)[:, None]       # bobbing up and down is not travel
    root, body = M.mean_speeds(glide)
    assert root == pytest.approx(1.5) and body == pytest.approx(0.0, abs=1e-12)
    wave = glide.copy()
    wave[:, 21, 0] += 0.2 * np.sin(np.arange(T) * 2 * np.pi / 30)    # one hand swings 0.2 m at 1 Hz
    root2, body2 = M.mean_speeds(wave)
    # the swing's mean speed is 4 * 0.2 m/s; one joint of 24 moves
    assert root2 == pytest.approx(1.5) and body2 == pytest.approx(0.8 / 24, rel=0.02)
    assert M.mean_speeds(glide[:1]) == (0.0, 0.0)


def test_diversity_and_accuracy():
    f = np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])
    assert M.diversity(f) == pytest.approx((5 + 0 + 5) / 3)
    assert M.accuracy(np.array([1, 2, 3, 3]), np.array([1, 2, 0, 3])) == 0.75


def test_crossed_legs_and_ankle_span_see_swapped_legs_from_any_heading():
    from kinemo.eval.bench_long import pieces
    # rest pose, then the same pose with each leg swung across the body by 40 degrees (hip adduction)
    q = np.tile(R.quat_identity(), (2, 24, 1))
    q[1, 1] = R.axis_angle_to_quat(np.array([0, 0, -np.radians(40)]))   # left leg towards -x (the right)
    q[1, 2] = R.axis_angle_to_quat(np.array([0, 0, np.radians(40)]))
    spans = []
    for yaw in (0.0, 2.0, -2.5):                                         # turning the body changes nothing
        qq = q.copy()
        qq[:, 0] = R.axis_angle_to_quat(np.array([0, yaw, 0]))
        p = global_transforms(qq, np.tile([0.0, 0.9, 0.0], (2, 1)))[1]
        assert M.crossed_legs(p).tolist() == [False, True]
        spans.append(M.ankle_span(p))
    rest = global_transforms(q[:1], np.zeros((1, 3)))[1][0]
    assert np.allclose(spans, spans[0]) and spans[0][0] == pytest.approx(rest[7, 0] - rest[8, 0])
    assert 0.1 < spans[0][0] < 0.3 and spans[0][1] < -0.1
    assert pieces(np.arange(7.0), 3) == [1.0, 4.0, 6.0]


def test_per_label_names_what_each_label_is_mistaken_for():
    true = np.array(["walk", "walk", "walk", "wave", "wave", "run"])
    pred = np.array(["walk", "turn", "turn", "raise", "wave", "run"])
    res = M.per_label(pred, true, [1.0, 0.5, 0.3, 0.1, 0.0, 2.0])
    assert list(res) == ["walk", "wave", "run"]                      # most clips first, ties by name
    assert res["walk"] == {"clips": 3, "accuracy": pytest.approx(1 / 3), "root_speed": pytest.approx(0.6),
                           "mistaken_for": "turn"}
    assert res["wave"]["mistaken_for"] == "raise" and res["wave"]["accuracy"] == 0.5
    assert res["run"]["mistaken_for"] is None and res["run"]["accuracy"] == 1.0
    # the breakdown agrees with the overall figure
    assert sum(r["clips"] * r["accuracy"] for r in res.values()) / len(true) == pytest.approx(M.accuracy(pred, true))


def test_implausibility_flags_a_flung_limb_and_crossed_knees_and_nothing_in_a_still_pose():
    from kinemo.core.plausible import PlausibilityConfig, implausibility
    T = 40
    q = np.tile(R.quat_identity(), (T, 24, 1))
    p = global_transforms(q, np.tile([0.0, 0.9, 0.0], (T, 1)))[1]
    assert implausibility(p, 30.0) == pytest.approx(0.0, abs=1e-9)
    flung = p.copy()
    flung[20, 20] += [0.1, 0.0, 0.0]              # a wrist 10 cm off for one frame: third difference 0.3 m
    assert implausibility(flung, 30.0) == pytest.approx(0.3 * 30 ** 3 / 6000.0)      # 1.35: over the limit
    assert implausibility(flung, 30.0, PlausibilityConfig(max_jerk=9000.0)) < 1.0
    crossed = q.copy()
    crossed[:4, 1] = R.axis_angle_to_quat(np.array([0, 0, -np.radians(40)]))   # 4 of 40 frames: 10% crossed
    crossed[:4, 2] = R.axis_angle_to_quat(np.array([0, 0, np.radians(40)]))
    pc = global_transforms(crossed, np.tile([0.0, 0.9, 0.0], (T, 1)))[1]
    assert implausibility(pc, 30.0, PlausibilityConfig(max_jerk=np.inf)) == pytest.approx(0.1 / 0.05)
    flung[5, 3] = np.nan
    assert implausibility(flung, 30.0) == np.inf
