"""The model's pieces on constructed inputs: features, kinematics, schedule, masks, keys, windows, checkpoints."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from kinemo.core import rotations as R
from kinemo.core.fk import forward_kinematics
from kinemo.core.smpl import SMPL_PARENTS, smpl_skeleton
from kinemo.errors import UserError
from kinemo.model import features as F
from kinemo.model.config import CONFIGS, ModelConfig, TrainConfig, from_dict, to_dict
from kinemo.model.diffusion import cosine_alpha_bar, ddim_step, q_sample, sampling_steps
from kinemo.model.generator import Generator
from kinemo.model.keys import spread_correction
from kinemo.model.masks import ALL_FAMILIES, anchor_of, random_mask
from kinemo.model.motion_model import MotionModel
from kinemo.model.sampler import Conditions, SamplerConfig, sample
from kinemo.model.stitch import Window, chain_windows, place_after, plan_segments, plan_windows, yaw


def random_motion(rng, B=2, L=20):
    q = R.quat_normalize(rng.normal(size=(B, L, 24, 4)))
    root = rng.normal(size=(B, L, 3))
    return torch.tensor(q, dtype=torch.float32), torch.tensor(root, dtype=torch.float32)


def test_torch_rotations_match_the_core():
    rng = np.random.default_rng(0)
    q = R.quat_normalize(rng.normal(size=(50, 4)))
    m = F.quat_to_matrix(torch.tensor(q)).numpy()
    np.testing.assert_allclose(m, R.quat_to_matrix(q), atol=1e-6)
    np.testing.assert_allclose(F.matrix_to_sixd(torch.tensor(m)).numpy(), R.matrix_to_sixd(m), atol=1e-6)
    d6 = rng.normal(size=(50, 6))
    np.testing.assert_allclose(F.sixd_to_matrix(torch.tensor(d6)).numpy(), R.sixd_to_matrix(d6), atol=1e-6)


def test_matrix_to_quat_inverts_quat_to_matrix_also_at_half_turns():
    q = torch.cat([torch.randn(200, 4), torch.tensor([[0.0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]])])
    q = q / q.norm(dim=-1, keepdim=True)
    back = F.matrix_to_quat(F.quat_to_matrix(q))
    assert torch.allclose(back * torch.sign((back * q).sum(-1, keepdim=True)), q, atol=1e-5)
    core = R.matrix_to_quat(R.quat_to_matrix(q.double().numpy()))
    assert np.allclose(np.abs((core * back.double().numpy()).sum(-1)), 1.0, atol=1e-5)   # same rotation as the core's


def _yaw_window(degrees: list[float | None]) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw features (1, L, D) whose pelvis turns about Y by the given angles (None: unkeyed) and their mask."""
    L = len(degrees)
    q = np.tile([1.0, 0, 0, 0], (L, F.J, 1))
    for t, d in enumerate(degrees):
        if d is not None:
            q[t, 0] = R.axis_angle_to_quat(np.array([0, np.radians(d), 0]))
    rot = F.quat_to_matrix(torch.tensor(q, dtype=torch.float32))[None]
    x = torch.cat([torch.zeros(1, L, 3), F.matrix_to_sixd(rot).flatten(2)], -1)
    m = torch.zeros(1, L, F.MASK_DIMS, dtype=torch.bool)
    m[0, [t for t, d in enumerate(degrees) if d is not None]] = True
    return x, F.expand_mask(m)


def _pelvis_yaw(x: torch.Tensor) -> np.ndarray:
    """Unwrapped yaw (degrees) of the pelvis rotation decoded from 6D features ``(1, L, D)``."""
    return np.degrees(np.unwrap(F.heading(F.sixd_to_matrix(x[0, :, 3:9])).numpy()))


def test_slerp_turns_keeps_a_half_turn_valid_and_going_the_way_it_began():
    """Keys 170 degrees apart: linear 6D interpolation shrinks to a near-degenerate frame mid-gap; the spherical
    one turns steadily. With a context already turning the other way, the turn continues that way round."""
    mean, std = torch.zeros(F.D), torch.ones(F.D)
    x, fm = _yaw_window([0.0] + [None] * 9 + [170.0])
    lin = F.observe(x, fm)
    assert lin[0, 5, 3:6].norm() < 0.1                                   # the linear path's degenerate frame
    yaw = _pelvis_yaw(F.slerp_turns(lin, x, fm, mean, std))
    assert np.allclose(np.diff(yaw), 17.0, atol=1e-3)                    # 170 degrees in ten equal steps
    x, fm = _yaw_window([20.0, 10.0, 0.0] + [None] * 9 + [170.0])        # the context turns clockwise ...
    yaw = _pelvis_yaw(F.slerp_turns(F.observe(x, fm), x, fm, mean, std))
    assert np.allclose(np.diff(yaw[2:]), -19.0, atol=1e-3)               # ... so on, 190 degrees, not back 170
    x, fm = _yaw_window([0.0] + [None] * 9 + [60.0])                     # a small turn: left as it was
    assert torch.equal(F.slerp_turns(F.observe(x, fm), x, fm, mean, std), F.observe(x, fm))


def test_encode_decode_round_trip_and_anchor_is_canonical():
    q, root = random_motion(np.random.default_rng(1))
    rot = F.quat_to_matrix(q)
    anchor = torch.tensor([0, 7])
    yaw, origin = F.anchor_frame(rot, root, anchor)
    f = F.encode(rot, root, yaw, origin)
    assert f.shape == (2, 20, F.D)
    rot2, root2 = F.decode(f, yaw, origin)
    assert torch.allclose(rot2, rot, atol=1e-5) and torch.allclose(root2, root, atol=1e-5)
    for b, a in enumerate(anchor.tolist()):
        pelvis = F.sixd_to_matrix(f[b, a, 3:9])
        assert abs(float(F.heading(pelvis))) < 1e-5               # the anchor faces +Z
        assert torch.allclose(f[b, a, [0, 2]], torch.zeros(2), atol=1e-5)  # and stands over the origin


def test_features_do_not_see_place_or_facing():
    q, root = random_motion(np.random.default_rng(2), B=1)
    turn = R.axis_angle_to_quat(np.array([0, 1.3, 0]))
    q2 = q.clone()
    q2[..., 0, :] = torch.tensor(R.quat_mul(turn, q[..., 0, :].numpy()), dtype=torch.float32)
    root2 = torch.tensor(R.quat_apply(turn, root.numpy()) + np.array([4.0, 0.0, -2.0]), dtype=torch.float32)

    def feats(q, r):
        rot = F.quat_to_matrix(q)
        return F.encode(rot, r, *F.anchor_frame(rot, r, torch.tensor([3])))
    assert torch.allclose(feats(q, root), feats(q2, root2), atol=1e-4)


def test_kinematics_match_core_fk():
    q, root = random_motion(np.random.default_rng(3), B=1, L=5)
    rot = F.quat_to_matrix(q)
    f = F.encode(rot, root, torch.zeros(1), torch.zeros(1, 3))
    pos = F.Kinematics()(f)[0].numpy()
    skel = smpl_skeleton()
    trans = np.repeat(skel.offsets[None], 5, 0)
    trans[:, 0] = root[0].numpy()
    ref = forward_kinematics(SMPL_PARENTS, q[0].numpy(), trans)[1]
    np.testing.assert_allclose(pos, ref, atol=1e-5)


def test_schedule_and_ddim():
    ab = cosine_alpha_bar(1000)
    assert ab.shape == (1000,) and torch.all(ab[1:] <= ab[:-1]) and ab[0] > 0.99 and ab[-1] < 1e-3
    assert sampling_steps(1000, 10)[0] == 999 and sampling_steps(1000, 10)[-1] == 0
    assert len(sampling_steps(1000, 10)) == 10 and sampling_steps(1000, 1) == [999]
    x0 = torch.randn(1, 4, 3)
    xt = q_sample(x0, torch.tensor([500]), torch.randn(1, 4, 3), ab)
    assert torch.equal(ddim_step(xt, x0, 10, -1, ab), x0)          # the last step lands on x0
    # a step with the true x0 stays on the same noise trajectory
    noise = torch.randn(1, 4, 3)
    x500 = q_sample(x0, torch.tensor([500]), noise, ab)
    x200 = q_sample(x0, torch.tensor([200]), noise, ab)
    assert torch.allclose(ddim_step(x500, x0, 500, 200, ab), x200, atol=1e-5)


def test_stochastic_ddim_keeps_the_forward_marginal():
    """With the true x0, a step at any eta lands where q(x_200 | x0) would: mean sqrt(ab) x0, noise sd
    sqrt(1 - ab); eta = 1 draws the fresh share DDPM does, eta = 0 is the deterministic step."""
    ab = cosine_alpha_bar(1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(1, 20000, 3, generator=g)
    x500 = q_sample(x0, torch.tensor([500]), torch.randn(x0.shape, generator=g), ab)
    fresh = torch.randn(x0.shape, generator=g)
    assert torch.equal(ddim_step(x500, x0, 500, 200, ab, 0.0, fresh), ddim_step(x500, x0, 500, 200, ab))
    for eta in (0.5, 1.0):
        x200 = ddim_step(x500, x0, 500, 200, ab, eta, fresh)
        resid = x200 - ab[200].sqrt() * x0
        assert abs(resid.std().item() - (1 - ab[200]).sqrt().item()) < 0.01
        assert abs(resid.mean().item()) < 0.01
    # at eta = 1 the step forgets part of x_t's noise: the residuals of two different x_t are not identical
    other = q_sample(x0, torch.tensor([500]), torch.randn(x0.shape, generator=g), ab)
    resid = [(ddim_step(x, x0, 500, 200, ab, 1.0, fresh) - ab[200].sqrt() * x0).flatten() for x in (x500, other)]
    corr = torch.corrcoef(torch.stack(resid))
    assert 0.05 < corr[0, 1].item() < 0.95


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_mask_families(family):
    rng = np.random.default_rng(4)
    for L in (30, 90):
        m = random_mask(L, rng, family)
        assert m.shape == (L, F.MASK_DIMS) and m.dtype == bool
        if family == "free":
            assert not m.any() and anchor_of(m) == 0
        else:
            assert m.any() and m[anchor_of(m)].any() and not m[:anchor_of(m)].any()
        if family == "trajectory":
            assert not m[:, 2:].any()
        if family == "continue":     # whole frames keyed from the start, then nothing
            keyed = m.any(1)
            n = int(keyed.sum())
            assert m[:n].all() and not m[n:].any() and 1 <= n <= L // 2


def test_every_mask_keys_a_beat_of_single_poses():
    rng = np.random.default_rng(5)
    gaps, prefixes = [], []
    for _ in range(200):
        m = random_mask(180, rng, "every")
        keyed = m.any(1)
        assert m[keyed].all(), "whole poses"
        frames = np.flatnonzero(keyed)
        n_prefix = int(np.argmin(keyed)) if keyed[0] else 0
        prefixes.append(n_prefix)
        single = frames[frames >= max(n_prefix - 1, 0)]
        d = np.diff(single)
        assert (d >= 2).all(), "after the prefix, keys are single frames"
        assert d.max() <= 1.25 * d.min() / 0.75 + 2, "a shot's spacings stay within 25% of one spacing"
        gaps.extend(d.tolist())
    assert min(gaps) <= 4 and max(gaps) >= 55, "spacings cover 3-61 frames"
    assert 0 < sum(p == 0 for p in prefixes) < 200 and max(prefixes) <= 45


def test_spread_correction_meets_keys_and_fades():
    L = 60
    keyed = np.zeros((L, 2), bool)
    keyed[[5, 40], 0] = True
    keyed[30, 1] = True
    delta = np.zeros((L, 2))
    delta[5, 0], delta[40, 0], delta[30, 1] = 1.0, -2.0, 0.5
    c = spread_correction(delta, keyed, radius=8)
    assert c[5, 0] == 1.0 and c[40, 0] == -2.0 and c[30, 1] == 0.5
    assert c[59, 0] == 0 and c[0:21, 1].max() == 0 and c[39:, 1].max() == 0   # beyond the radius: untouched
    # no step: about the smoothstep's steepest slope * delta / radius (0.375)
    assert np.abs(np.diff(c, axis=0)).max() <= 0.4


def _drifting_run(L: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A key difference drifting 0.1 per frame ``(L, 1)`` and its first 10 frames keyed (a context run)."""
    keyed = np.zeros((L, 1), bool)
    keyed[:10] = True
    return 0.1 * np.arange(L, dtype=float)[:, None], keyed


def test_spread_correction_leaves_a_run_of_keys_with_its_slope():
    """A context of consecutive keys whose difference drifts: the correction carries the drift's velocity past
    the last key (no velocity jump at the seam), then fades to zero with zero slope."""
    delta, keyed = _drifting_run()
    L = len(delta)
    c = spread_correction(delta, keyed, radius=8)[:, 0]
    v = np.diff(c)
    assert abs(v[8] - 0.1) < 1e-12 and v[9] > 0.03       # frame 9 -> 10 still moves with the run (a flat fade: -0.04)
    assert np.abs(np.diff(v[8:])).max() < 0.11           # no velocity jump (a flat fade: 0.14 at the seam)
    assert c[17:].max() == 0                             # gone within the radius
    lone = spread_correction(delta, np.eye(L, 1, k=-9, dtype=bool), radius=8)[:, 0]
    assert lone[8] == lone[10]                           # a lone key has no slope to carry: symmetric fade


def test_spread_correction_carries_slopes_only_from_the_given_runs():
    """Keys outside ``runs`` (a long motion's overlap frames) fade out flat, as a lone key does."""
    delta, keyed = _drifting_run()
    carried = spread_correction(delta, keyed, radius=8)[:, 0]
    flat = spread_correction(delta, keyed, radius=8, runs=np.zeros_like(keyed))[:, 0]
    assert np.array_equal(flat[:10], delta[:10, 0]) and np.array_equal(carried[:10], delta[:10, 0])
    assert carried[10] > 0.9 and 0.85 < flat[10] < 0.9   # with the run's slope it still rises past 0.9
    assert flat[10] - flat[9] < 0 < carried[10] - carried[9]


def test_windows_cover_with_overlap():
    assert plan_windows(50, 90, 30) == [Window(0, 50)]
    w = plan_windows(400, 90, 30)
    assert w[0].start == 0 and w[-1].stop == 400
    for a, b in zip(w, w[1:]):
        assert b.start == a.stop - 30 and b.stop - b.start <= 90


def test_chained_windows_hand_on_frames_only_up_to_their_last_key():
    none = np.zeros(400, bool)
    assert [w for w, _ in chain_windows(none, 90, 30)] == plan_windows(400, 90, 30)
    assert all(keep == w.stop for w, keep in chain_windows(none, 90, 30))
    every46 = np.zeros((231, 25), bool)
    every46[::46] = True                                    # keys at 0, 46, ..., 230; none in the overlap
    assert chain_windows(every46, 180, 30) == [(Window(0, 180), 139), (Window(128, 231), 231)]
    every6 = np.zeros(241, bool)
    every6[::6] = True
    assert chain_windows(every6, 180, 30) == [(Window(0, 180), 175), (Window(150, 241), 241)]
    rng = np.random.default_rng(0)
    for _ in range(50):                                     # any layout: covered, and every window has context
        keyed = rng.random(int(rng.integers(100, 700))) < rng.choice([0.002, 0.02, 0.2])
        wins = chain_windows(keyed, 90, 30)
        assert wins[0][0].start == 0 and wins[-1][0].stop == len(keyed) == wins[-1][1]
        for (a, keep), (b, _) in zip(wins, wins[1:]):
            assert a.start < b.start < keep <= a.stop and a.stop - a.start <= 90


@pytest.mark.parametrize("frames", [181, 390, 391, 1800, 1801])
def test_stitched_windows_cover_with_gaps(frames):
    assert plan_segments(180, 180, 30) == [Window(0, 180)]
    w = plan_segments(frames, 180, 30)
    assert w[0].start == 0 and w[-1].stop == frames
    assert all(b.start == a.stop + 30 for a, b in zip(w, w[1:]))
    sizes = [x.stop - x.start for x in w]
    assert max(sizes) <= 180 and max(sizes) - min(sizes) <= 1
    assert len(w) == -(-(frames + 30) // 210)          # as few as fit


def _facing(a):
    """A body in its rest pose whose pelvis faces ``a`` ``(T,)`` radians about +Y: quats (T, 24, 4)."""
    q = R.quat_identity((len(a), 24))
    q[:, 0] = R.axis_angle_to_quat(np.stack([0 * a, a, 0 * a], -1))
    return q


def _walk(T, speed, turn, heading, start):
    """A body walking at ``speed`` m/frame while turning ``turn`` rad/frame: quats (T, 24, 4), root (T, 3)."""
    a = heading + turn * np.arange(T)
    q = _facing(a)
    step = np.stack([np.sin(a), 0 * a, np.cos(a)], -1) * speed
    r = np.asarray(start, float) + np.concatenate([[np.zeros(3)], np.cumsum(step[:-1], 0)])
    r[:, 1] = 0.9 + 0.02 * np.sin(np.arange(T))
    return q, r


@pytest.mark.parametrize("turn", [0.0, 0.01])
def test_a_stitched_window_carries_on_where_the_one_before_stops(turn):
    # one walk cut in three: the third part, turned and moved anywhere, is put back where the walk had it
    q, r = _walk(200, 0.04, turn, heading=0.5, start=[1.0, 0.0, -2.0])
    gap = 30
    prev_q, prev_r, next_q, next_r = q[:80], r[:80], q[80 + gap:], r[80 + gap:]
    moved_q, moved_r = _walk(len(next_q), 0.04, turn, heading=-2.0, start=[7.0, 0.0, 3.0])
    moved_r[:, 1] = next_r[:, 1]
    pq, pr = place_after(prev_q, prev_r, moved_q, moved_r, gap, span=10)
    # exact for a straight walk; turning, the gap is crossed on a chord, not the arc (1.24 m walked: 2 cm off)
    np.testing.assert_allclose(pr, next_r, atol=1e-9 if turn == 0 else 0.025)
    np.testing.assert_allclose(yaw(pq[:, 0]), yaw(next_q[:, 0]), atol=1e-9)
    assert np.array_equal(pq[:, 1:], moved_q[:, 1:])           # only the pelvis turns
    # standing still, it stays put and faces where the one before faced
    sq, sr = _walk(50, 0.0, 0.0, heading=1.0, start=[0.0, 0.0, 0.0])
    pq, pr = place_after(sq, sr, *_walk(50, 0.0, 0.0, heading=-1.0, start=[5.0, 0.0, 5.0]), gap, span=10)
    np.testing.assert_allclose(pr[:, [0, 2]], 0.0, atol=1e-12)
    np.testing.assert_allclose(yaw(pq[:, 0]), 1.0, atol=1e-12)


def _swaying_walk(T, heading, start, phase, period):
    """A straight walk (0.04 m/frame) whose pelvis swings 0.12 rad each way and sways 3 cm sideways once per
    ``period`` frames, as a walking body's does: quats (T, 24, 4), root (T, 3)."""
    t = np.arange(T)
    swing = np.sin(2 * np.pi * (t + phase) / period)
    q = _facing(heading + 0.12 * swing)
    fwd, side = np.array([np.sin(heading), 0, np.cos(heading)]), np.array([np.cos(heading), 0, -np.sin(heading)])
    r = np.asarray(start, float) + 0.04 * t[:, None] * fwd + 0.03 * swing[:, None] * side
    r[:, 1] = 0.9
    return q, r


@pytest.mark.parametrize("period", [28, 34, 40])
def test_a_stitched_walk_keeps_its_heading_whatever_the_phase_of_its_swing(period):
    # cut a swaying straight walk anywhere in its step cycle: the next part, turned and moved anywhere, carries
    # on in the same direction (read off the 10 end frames, the swing's phase set its heading tens of degrees off)
    span, gap = SamplerConfig().join_span, 30
    q, r = _swaying_walk(400, 0.5, [0.0, 0.0, 0.0], 0, period)
    for cut in range(130, 130 + period, 3):
        nq, nr = _swaying_walk(180, -2.0, [5.0, 0.0, 5.0], cut + gap, period)
        pq, pr = place_after(q[:cut], r[:cut], nq, nr, gap, span)
        assert abs(yaw(pq[:, 0])[0] - yaw(q[cut + gap:, 0])[0]) < np.radians(5)
        assert np.linalg.norm(pr[0] - r[cut + gap]) < 0.1                  # where the walk had it, to 10 cm


def test_config_round_trip_and_unknown_fields():
    cfg = CONFIGS["small"]
    assert from_dict(to_dict(cfg)) == cfg
    d = to_dict(cfg)
    d["model"]["wings"] = 2
    with pytest.raises(ValueError, match="wings"):
        from_dict(d)


def test_sampler_overrides_reach_nested_settings_and_name_bad_ones():
    from kinemo.core.footlock import FootLockConfig
    from kinemo.model.config import with_overrides
    base = SamplerConfig()
    cfg = with_overrides(base, [("steps", "3"), ("lock.key_radius", "4"), ("lock.clearance", "0")])
    assert (cfg.steps, cfg.lock.key_radius, cfg.lock.clearance) == (3, 4, 0.0)
    # the rest, and base, as they were
    assert cfg.lock.max_shift == base.lock.max_shift and base.lock == FootLockConfig()
    for pairs, message in [([("lock.wings", "1")], "lock: unknown field 'wings'"),
                           ([("steps.x", "1")], "'steps' is not a group"),
                           ([("lock.key_radius", "0")], "key_radius=0"),          # would divide by zero
                           ([("lock.blend", "two")], "not a valid int"),
                           ([("lock", "1")], "cannot be set from text")]:
        with pytest.raises(ValueError, match=message):
            with_overrides(base, pairs)


def test_bench_model_spec_sets_the_sampler_or_refuses_before_loading(untrained_path):
    from kinemo.eval.baselines import load_model
    gen = load_model(f"{untrained_path}@inbetween_smooth=0,lock.key_radius=3")
    assert gen.sampler.inbetween_smooth == 0.0 and gen.sampler.lock.key_radius == 3
    with pytest.raises(UserError, match="sampler setting: lock: unknown field"):
        load_model("no-such-checkpoint.pt@lock.radius=3")     # the spec is checked first
    with pytest.raises(UserError, match="name=value"):
        load_model(f"{untrained_path}@lock.key_radius")


@pytest.fixture(scope="module")
def untrained_path(tmp_path_factory):
    """A randomly initialised model saved as a real checkpoint (properties that hold for any weights)."""
    from kinemo.train import checkpoint
    torch.manual_seed(0)
    cfg = TrainConfig(model=ModelConfig(width=32, layers=1, heads=2, max_frames=40))
    m = MotionModel(cfg.model)
    torch.nn.init.normal_(m.denoiser.out.weight, std=0.02)   # zero-initialised heads would hide bugs
    path = tmp_path_factory.mktemp("ckpt") / "untrained.pt"
    checkpoint.save(path, cfg, m, m, None, 0)
    return path


@pytest.fixture(scope="module")
def untrained(untrained_path):
    return Generator.load(untrained_path)


def test_sampler_is_deterministic_and_imputes_keys(untrained):
    m = untrained.model
    L = 12
    mask = torch.zeros(1, L, F.MASK_DIMS, dtype=torch.bool)
    mask[0, [0, 11]] = True
    obs = torch.randn(1, L, F.D) * F.expand_mask(mask)
    cond = Conditions(obs, mask)
    a = [s.x0 for s in sample(m, cond, SamplerConfig(steps=4), seed=3)]
    b = [s.x0 for s in sample(m, cond, SamplerConfig(steps=4), seed=3)]
    c = list(sample(m, cond, SamplerConfig(steps=4), seed=4))[-1].x0
    assert len(a) == 4 and all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[-1], c)
    fm = F.expand_mask(mask)
    assert torch.equal(a[-1][fm], obs[fm])


def test_generator_keys_exact_and_windows(untrained):
    rng = np.random.default_rng(5)
    T = 100                                               # three windows of 40
    q = R.quat_normalize(rng.normal(size=(T, 24, 4))).astype(np.float32)
    root = rng.normal(size=(T, 3)).astype(np.float32)
    keys = np.zeros((T, 24), bool)
    keys[[0, 50, 99]] = True
    keys[70, :3] = True                                    # a partial key
    seen = []
    q2, r2 = untrained.inbetween(q, root, keys, seed=1, steps=3, progress=seen.append)
    assert q2.shape == (T, 24, 4) and r2.shape == (T, 3)
    assert np.array_equal(q2[keys], q[keys]) and np.array_equal(r2[keys.any(1)], root[keys.any(1)])
    passes = 2 if untrained.sampler.inbetween_mirror else 1        # the mirror averaging answers each window twice
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    assert len(seen) == passes * 3 * len(chain_windows(keys, 40, 13))
    q3, _ = untrained.inbetween(q, root, keys, seed=1, steps=3)
    assert np.array_equal(q2, q3)
    np.testing.assert_allclose(np.linalg.norm(q2, axis=-1), 1.0, atol=1e-6)


def test_a_key_past_a_windows_end_is_seen_by_the_frames_leading_into_it(untrained):
    # keys at 0, 30 and 45 with 40-frame windows: the first window ends before key 45, so the frames after key 30
    # are left to the second window, which has key 45 in view (handed on, they would have to pop into it)
    gen = Generator(untrained.model, untrained.cfg, untrained.extra, replace(untrained.sampler, foot_lock=False))
    rng = np.random.default_rng(2)
    T = 60
    q = R.quat_normalize(rng.normal(size=(T, 24, 4))).astype(np.float32)
    root = rng.normal(size=(T, 3)).astype(np.float32)
    keys = np.zeros(T, bool)
    keys[[0, 30, 45]] = True
    a, _ = gen.inbetween(q, root, keys, seed=0)
    moved = q.copy()
    moved[45] = R.quat_normalize(rng.normal(size=(24, 4)))
    b, _ = gen.inbetween(moved, root, keys, seed=0)
    (first, keep), (second, _) = chain_windows(keys, gen.window, min(gen.sampler.overlap, gen.window // 3))
    assert keep == 31 and second.start == 20
    assert np.array_equal(a[:second.start], b[:second.start])            # made by the first window alone
    assert np.abs(a[31:40] - b[31:40]).max() > 1e-3                       # made with key 45 in view


def test_generator_rejects_bad_input(untrained):
    T = 20
    q = np.tile([1.0, 0, 0, 0], (T, 24, 1))
    r = np.zeros((T, 3))
    keys = np.zeros(T, bool)
    with pytest.raises(UserError, match="no keys"):
        untrained.inbetween(q, r, keys)
    keys[3] = True
    bad = q.copy()
    bad[3, 5] = np.nan
    with pytest.raises(UserError, match="frame 3, joint"):
        untrained.inbetween(bad, r, keys)
    with pytest.raises(UserError, match=r"\(T,\) or \(T, 24\)"):
        untrained.inbetween(q, r, np.zeros((T, 5), bool))
    with pytest.raises(UserError, match="quats"):
        untrained.inbetween(q[:, :10], r, keys)
    with pytest.raises(UserError, match="empty"):
        untrained.generate("   ", 30)
    with pytest.raises(UserError, match="at least 1"):
        untrained.generate("a person walks", 0)
    with pytest.raises(UserError, match="music features must be"):
        untrained.dance(np.zeros((30, 5)))
    with pytest.raises(UserError, match="NaN"):
        untrained.dance(np.full((30, 37), np.nan))
    cancelled = iter([False, True])
    from kinemo.model.generator import Cancelled
    with pytest.raises(Cancelled):
        untrained.inbetween(q, r, keys, steps=4, cancelled=lambda: next(cancelled))


def test_checkpoint_errors(tmp_path):
    from kinemo.train.checkpoint import read
    with pytest.raises(UserError, match="no motion model at"):
        Generator.load(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a readable checkpoint"):
        read(junk)
    other = tmp_path / "other.pt"
    torch.save({"format": "something else"}, other)
    with pytest.raises(UserError, match="not a kinemo motion model"):
        read(other)


def test_forgetting_music_needs_a_run_to_resume(tmp_path):
    from kinemo.train.loop import Run, train
    run = Run(out=tmp_path / "out", corpus=tmp_path / "corpus", cache_dir=tmp_path / "text", forget_music=True)
    with pytest.raises(UserError, match="forget_music needs a run to resume"):
        train(CONFIGS["tiny"], run)
    assert not (tmp_path / "out").exists()           # refused before anything was made


def test_meeting_keys_bends_the_prediction_without_a_pop():
    """A smooth prediction that misses its keys by 60 degrees and 30 cm is bent onto them gradually."""
    from kinemo.model.generator import _meet_keys
    L = 40
    t = np.linspace(0, 1, L)
    q = R.axis_angle_to_quat(np.stack([np.zeros(L), t, np.zeros(L)], -1))          # a slow turn, every joint
    raw = np.concatenate([np.stack([t, np.full(L, 0.9), np.zeros(L)], -1),
                          np.repeat(R.quat_to_sixd(q)[:, None], 24, 1).reshape(L, -1)], 1)
    key = raw.copy()
    kq = R.quat_mul(R.axis_angle_to_quat(np.array([np.radians(60), 0, 0])), q)
    key[:, 3:] = np.repeat(R.quat_to_sixd(kq)[:, None], 24, 1).reshape(L, -1)
    key[:, :3] += np.array([0.3, 0, 0])
    mask = np.zeros((L, 25), bool)
    mask[20] = True
    out = _meet_keys(raw, key, mask)
    np.testing.assert_allclose(out[20], key[20], atol=1e-9)
    out_q = R.sixd_to_quat(out[:, 3:9])
    step_deg = np.degrees(R.quat_angle(out_q[1:], out_q[:-1]))
    raw_step = np.degrees(R.quat_angle(q[1:], q[:-1])).max()
    assert step_deg.max() <= raw_step + 60 * 1.5 / 8 + 1e-6          # smoothstep slope over the 8-frame radius
    assert np.abs(np.diff(out[:, 0])).max() <= 1 / (L - 1) + 0.3 * 1.5 / 8 + 1e-9
    np.testing.assert_allclose(out[:11], raw[:11], atol=1e-9)        # beyond the radius: untouched


def _swinging(L: int, dips: list[int]) -> torch.Tensor:
    """One joint moving along x with speed dipping (smoothly) at ``dips``: positions ``(1, L, 1, 3)``."""
    t = np.arange(L - 1)
    speed = 1.0 - 0.8 * sum(np.exp(-(t + 1 - d) ** 2 / (2 * 4.0 ** 2)) for d in dips)
    x = np.concatenate([[0.0], np.cumsum(speed)]) * 0.01
    pos = np.zeros((1, L, 1, 3))
    pos[0, :, 0, 0] = x
    return torch.tensor(pos, dtype=torch.float32)


def test_beat_dip_loss_is_zero_on_accents_and_positive_off_them():
    from kinemo.model.beats import beat_dip_loss
    L = 80
    pos = _swinging(L, [25, 55])
    on, off = torch.zeros(1, L), torch.zeros(1, L)
    on[0, [25, 55]] = 1.0
    off[0, [40]] = 1.0                         # halfway between the accents: the speed peaks there
    assert float(beat_dip_loss(pos, on)[0]) == 0.0
    assert float(beat_dip_loss(pos, off)[0]) > 0.1


def test_beat_guidance_carves_accents_on_the_beats(untrained):
    """On an untrained model's output (no accents of its own), guidance lowers the beat loss: almost to zero
    before the time smoothing, and still clearly after it (the last step's low-pass blurs part of each dip
    carved in this model's jittery output)."""
    from kinemo.data.music import BEAT_COLUMN
    from kinemo.model.beats import beat_dip_loss
    m = untrained.model
    L = 40
    mask = torch.zeros(1, L, F.MASK_DIMS, dtype=torch.bool)
    music = torch.zeros(1, L, m.cfg.music_dim)
    music[0, [12, 26], BEAT_COLUMN] = 1.0
    cond = Conditions(torch.zeros(1, L, F.D), mask, music=music)

    def loss(w: float, smooth: float) -> float:
        cfg = SamplerConfig(steps=3, beat_guidance=w, dynamics_guidance=0.0, smooth=smooth)
        x0 = list(sample(m, cond, cfg, seed=0))[-1].x0
        return float(beat_dip_loss(m.kin(m.denorm(x0)), music[..., BEAT_COLUMN])[0])
    raw = [loss(w, 0.0) for w in (0.0, 1.0)]
    assert raw[0] > 0 and raw[1] < 0.1 * raw[0], raw
    smoothed = [loss(w, SamplerConfig.smooth) for w in (0.0, 1.0)]
    assert smoothed[0] > 0 and smoothed[1] < 0.85 * smoothed[0], smoothed


def _beat_grid_music(L: int, first: int, period: int, dim: int) -> torch.Tensor:
    """Music features ``(1, L, dim)`` holding only a beat grid: beats, phase and tempo columns."""
    from kinemo.data.music import BEAT_COLUMN, PHASE_COLUMNS, TEMPO_COLUMN
    t = torch.arange(L, dtype=torch.float32)
    phase = ((t - first) / period) % 1.0
    music = torch.zeros(1, L, dim)
    music[0, first::period, BEAT_COLUMN] = 1.0
    music[0, :, PHASE_COLUMNS[0]] = torch.sin(2 * torch.pi * phase)
    music[0, :, PHASE_COLUMNS[1]] = torch.cos(2 * torch.pi * phase)
    music[0, :, TEMPO_COLUMN] = 60.0 * 30.0 / period / 120.0
    return music


def test_between_beats_loss_sees_accents_between_the_beats_only():
    from kinemo.model.beats import beat_slopes, between_beats_loss
    L = 80
    slopes = beat_slopes(_beat_grid_music(L, 25, 30, 8))
    assert slopes[0, 30] == 1 and slopes[0, 50] == -1 and slopes[0, 25] == 0 and slopes[0, 40] == 0
    on_beats = float(between_beats_loss(_swinging(L, [25, 55]), slopes)[0])
    extra = float(between_beats_loss(_swinging(L, [25, 40, 55]), slopes)[0])   # an accent halfway
    assert extra > 0.1 and on_beats < 0.05 * extra, (on_beats, extra)
    # too slow a grid (a pause in the music) is left unshaped
    assert not beat_slopes(_beat_grid_music(L, 25, 60, 8)).any()


def test_smooth_time_keeps_slow_motion_and_removes_frame_noise():
    from kinemo.model.features import smooth_time
    t = torch.arange(60, dtype=torch.float32)
    slow = torch.sin(2 * torch.pi * t / 30)[None, :, None].repeat(2, 1, 3)       # 1 Hz at 30 fps
    noise = 0.1 * (-1.0) ** t[None, :, None]
    out = smooth_time(slow + noise, 1.0)
    assert out.shape == slow.shape
    assert (out - slow)[:, 5:-5].abs().max() < 0.03                              # noise gone, the wave kept


def test_twicing_keeps_more_of_a_step_cycle_than_the_gaussian_and_still_removes_frame_noise():
    from kinemo.model.features import smooth_time, twiced_kernel
    k = twiced_kernel(1.75)
    assert k.shape == (21,) and abs(float(k.sum()) - 1) < 1e-6 and k.min() < 0          # negative side lobes
    t = torch.arange(90, dtype=torch.float32)
    step = torch.sin(2 * torch.pi * t / 15)[None, :, None]                               # 2 Hz at 30 fps
    noise = 0.1 * (-1.0) ** t[None, :, None]
    inner = slice(15, -15)
    kept = {tw: float(smooth_time(step, 1.75, tw)[:, inner].abs().max()) for tw in (False, True)}
    assert kept[False] < 0.8 < 0.93 < kept[True] < 1.0, kept
    assert float(smooth_time(noise, 1.75, True)[:, inner].abs().max()) < 1e-3
    const = torch.full((1, 30, 2), 3.0)
    assert torch.allclose(smooth_time(const, 1.75, True), const)                       # edges repeated, sum 1


def test_sampler_smoothing_lowers_jerk(untrained):
    m = untrained.model
    L = 40
    cond = Conditions(torch.zeros(1, L, F.D), torch.zeros(1, L, F.MASK_DIMS, dtype=torch.bool))
    jerk = []
    for sigma in (0.0, 1.0):
        x0 = list(sample(m, cond, SamplerConfig(steps=3, smooth=sigma), seed=0))[-1].x0
        pos = m.kin(m.denorm(x0))
        jerk.append(float((pos[:, 3:] - 3 * pos[:, 2:-1] + 3 * pos[:, 1:-2] - pos[:, :-3]).norm(dim=-1).mean()))
    assert jerk[1] < 0.5 * jerk[0], jerk


def test_sampler_smooths_only_the_last_step_unless_asked_for_every_step(untrained):
    """``smooth_each_step=False`` low-passes the last step's x0 alone; the steps before match unsmoothed
    sampling exactly, so the smoothing cannot compound."""
    m = untrained.model
    L = 40
    cond = Conditions(torch.zeros(1, L, F.D), torch.zeros(1, L, F.MASK_DIMS, dtype=torch.bool))

    def steps(**kw):
        return [s.x0 for s in sample(m, cond, SamplerConfig(steps=3, eta=0.0, **kw), seed=2)]
    raw, last, every = steps(smooth=0.0), steps(smooth=1.0, smooth_each_step=False), steps(smooth=1.0,
                                                                                          smooth_each_step=True)
    assert all(torch.equal(a, b) for a, b in zip(raw[:-1], last[:-1]))
    assert not torch.equal(raw[0], every[0])
    assert not torch.allclose(last[-1], raw[-1]) and not torch.allclose(last[-1], every[-1])


def test_stochastic_ddim_is_seeded_and_leaves_the_mean_motion_alone(untrained):
    """``eta`` re-draws noise at each step from the request's seed; at temperature 0 (in-betweening's mean
    motion) there is none to draw, so the steps are plain DDIM's."""
    m = untrained.model
    L = 20
    cond = Conditions(torch.zeros(1, L, F.D), torch.zeros(1, L, F.MASK_DIMS, dtype=torch.bool))

    def x0(**kw):
        return list(sample(m, cond, SamplerConfig(steps=4, smooth=0.0, **kw), seed=5))[-1].x0
    assert torch.equal(x0(eta=1.0, temperature=0.6), x0(eta=1.0, temperature=0.6))
    assert (x0(eta=1.0, temperature=0.6) - x0(eta=0.0, temperature=0.6)).abs().max() > 1e-3
    assert torch.equal(x0(eta=1.0, temperature=0.0), x0(eta=0.0, temperature=0.0))


def test_spread_keeps_songs_across_the_list():
    """The scarce-song ablation keeps songs evenly spaced through the id-sorted takes, not the first ones."""
    from kinemo.train.data import _spread
    assert _spread(list("abcdefghij"), 3) == {"a", "e", "j"}
    assert _spread(list("abc"), -1) == _spread(list("abc"), 5) == {"a", "b", "c"}
    assert _spread(list("abc"), 0) == set()


def test_mirror_averaged_inbetweening_is_exactly_left_right_symmetric(untrained):
    """With ``inbetween_mirror`` the answer to a mirrored request is the mirror of the answer: the random network
    is far from symmetric, so this holds only because both passes are averaged. Keys stay exact."""
    from kinemo.data.mirror import MIRROR_JOINTS, mirror_points, mirror_quats
    rng = np.random.default_rng(8)
    T = 30
    q = R.quat_normalize(rng.normal(size=(T, 24, 4)))
    root = rng.normal(size=(T, 3)) * 0.3
    keys = np.zeros((T, 24), bool)
    keys[[0, 1, 2, 29]] = True
    keys[15, [1, 4, 7]] = True                          # a partial key on the left leg: mirrored onto the right
    mq, mr, mk = mirror_quats(q[:, MIRROR_JOINTS]), mirror_points(root), keys[:, MIRROR_JOINTS]

    def answers(**sampler):
        g = Generator(untrained.model, untrained.cfg, sampler=replace(untrained.sampler, foot_lock=False, **sampler))
        seen = []
        a = g.inbetween(q, root, keys, progress=seen.append)
        b = g.inbetween(mq, mr, mk)
        b_back = mirror_quats(b[0][:, MIRROR_JOINTS]), mirror_points(b[1])
        gap = np.abs(np.abs((a[0] * b_back[0]).sum(-1)) - 1).max() + np.abs(a[1] - b_back[1]).max()
        return a, seen, gap

    (qa, ra), seen, gap = answers(inbetween_mirror=True)
    assert gap < 1e-5
    assert np.array_equal(qa[keys], q[keys]) and np.array_equal(ra[keys.any(1)], root[keys.any(1)])
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    assert answers(inbetween_mirror=False)[2] > 1e-2       # the plain network is not symmetric


def test_gpos_unit_is_the_spread_of_the_keyed_root_windows():
    from kinemo.train.objective import POS_UNIT, _gpos_unit
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(4, 10, 24, 3, generator=g) * torch.tensor([0.2, 0.04, 0.6])
    pos[:, :, 0, 1] = 0.9                                    # a coordinate that never moves: floored at 1 cm
    pos[2:] *= 100                                           # free windows (no keyed root) sprawl: not counted
    rooted = torch.tensor([1.0, 1.0, 0.0, 0.0])
    unit = _gpos_unit(pos, rooted, True)
    assert unit.shape == (24, 3)
    expect = pos[:2].flatten(0, 1).std(0).clamp_min(0.01)
    assert torch.equal(unit, expect) and unit[0, 1] == 0.01
    assert (unit[1:, 1] < unit[1:, 0]).all() and (unit[1:, 0] < unit[1:, 2]).all()   # up weighs most, forward least
    assert torch.equal(_gpos_unit(pos, torch.zeros(4), True), pos.flatten(0, 1).std(0).clamp_min(0.01))
    assert _gpos_unit(pos, rooted, False) == POS_UNIT


def test_guidance_never_leaves_a_rotation_degenerate():
    g = torch.Generator().manual_seed(0)
    D = F.ROOT_DIMS + F.J * 6
    mean, std = torch.randn(D, generator=g, dtype=torch.float64), torch.rand(D, generator=g, dtype=torch.float64) + 0.5
    unit = torch.eye(3, dtype=torch.float64)
    def turn(deg):                                      # a rotation about +z, (3, 3)
        return torch.from_numpy(R.quat_to_matrix(R.axis_angle_to_quat(np.array([0, 0, np.radians(deg)]))))

    def feats(rot, root):   # one frame, every joint the same 3x3 (a rotation, or not) -> normalised (1, 1, D)
        six = F.matrix_to_sixd(rot).repeat(F.J)
        return ((torch.cat([torch.tensor(root, dtype=torch.float64), six]) - mean) / std)[None, None]

    def rotations(x):
        six = (x * std + mean)[..., F.ROOT_DIMS:].reshape(F.J, 6)
        return F.sixd_to_matrix(six)
    u, c = feats(unit, [0.0, 0.9, 0.0]), feats(turn(30.0), [0.1, 0.8, 0.0])
    out = F.guide_rotations(u, c, 2.5, mean, std)
    # each unit column moves to u + 2.5 (c - u): 62.0 degrees round for a 30-degree turn, as plain guidance does
    deg = np.degrees(np.arctan2(2.5 * np.sin(np.radians(30)), 1 - 2.5 + 2.5 * np.cos(np.radians(30))))
    torch.testing.assert_close(rotations(out), turn(deg).expand(F.J, 3, 3))
    torch.testing.assert_close((out * std + mean)[0, 0, :3], torch.tensor([0.25, 0.65, 0.0], dtype=torch.float64))
    torch.testing.assert_close(F.guide_rotations(u, c, 1.0, mean, std), c)          # weight 1: the conditional
    torch.testing.assert_close(F.guide_rotations(u, c, 0.0, mean, std), u)
    # the same rotation with a shorter first column: plain guidance carries that column through zero, where
    # Gram-Schmidt returns an arbitrary frame; mixed as proper rotations it stays what both predictions say
    short = feats(unit * torch.tensor([0.6, 1.0, 1.0], dtype=torch.float64), [0.0, 0.9, 0.0])
    linear = u + 2.5 * (short - u)
    assert (linear * std + mean)[0, 0, F.ROOT_DIMS:F.ROOT_DIMS + 3].norm() < 1e-9
    torch.testing.assert_close(rotations(F.guide_rotations(u, short, 2.5, mean, std)), unit.expand(F.J, 3, 3))
    # with a floor, only the joints whose mixed columns come out short are mixed again; floor 0 is the plain mix
    torch.testing.assert_close(F.guide_rotations(u, c, 2.5, mean, std, floor=0.0), u + 2.5 * (c - u))
    torch.testing.assert_close(F.guide_rotations(u, c, 2.5, mean, std, floor=0.5), u + 2.5 * (c - u))
    guarded = F.guide_rotations(u, short, 2.5, mean, std, floor=0.5)
    torch.testing.assert_close(rotations(guarded), unit.expand(F.J, 3, 3))
