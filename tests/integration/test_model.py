"""The motion model trained for real (the ``tiny`` config on a small real corpus) and used through every
interface: the Generator, the CLI and the server. Needs ../shared for the training data."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from kinemo.cli import main
from kinemo.core import rotations as R
from kinemo.core.bvh import read_bvh
from kinemo.data.cache import Corpus, corpus_dir
from kinemo.data.clip import clip_positions
from kinemo.errors import UserError
from kinemo.core.smpl import smpl_skeleton
from kinemo.core.plausible import PlausibilityConfig, implausibility
from kinemo.model.generator import Generator, retry_seed
from kinemo.model.stitch import chain_windows, plan_segments

WALK = "dataset-1_walk_normal_001"


@pytest.fixture(scope="module")
def gen(tiny_checkpoint):
    return Generator.load(tiny_checkpoint)


@pytest.fixture(scope="module")
def walk(tiny_corpus):
    c = Corpus(corpus_dir(tiny_corpus))
    return c.clip(WALK)


def test_training_logs_learning_and_resumes(tiny_checkpoint, tiny_corpus, tmp_path):
    from kinemo.model.config import CONFIGS
    from kinemo.train import checkpoint
    from kinemo.train.loop import Run, train
    recs = [json.loads(line) for line in (tiny_checkpoint.parent / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in recs if "loss" in r]
    assert len(losses) >= 4 and np.mean(losses[-2:]) < 0.7 * np.mean(losses[:2])   # it learned
    assert any("val" in r for r in recs)
    ck = checkpoint.read(tiny_checkpoint)
    assert ck["step"] == CONFIGS["tiny"].steps and ck["config"]["model"]["width"] == CONFIGS["tiny"].model.width
    assert all(r["beat"] > 0 for r in recs if "loss" in r)      # beat grids (songs, pseudo-beats) were on
    # resume continues from the saved step with the saved config, and overrides reach the windows it draws:
    # with no music and no pseudo-beats, no window has a beat grid, so the beat term is exactly 0
    from dataclasses import replace
    out = tmp_path / "resumed"
    more = replace(CONFIGS["tiny"], steps=CONFIGS["tiny"].steps + CONFIGS["tiny"].log_every)
    import shutil
    shutil.copy(tiny_checkpoint, tmp_path / "start.pt")
    ck2 = checkpoint.read(tmp_path / "start.pt")
    ck2["config"]["steps"] = more.steps
    import torch
    torch.save(ck2, tmp_path / "start.pt")
    lines: list[str] = []
    path = train(more, Run(out=out, corpus=corpus_dir(tiny_corpus), cache_dir=tiny_corpus / "text",
                           resume=tmp_path / "start.pt",
                           overrides={"songs": 0, "pseudo_beats": 0.0, "focus": 1.0},
                           forget_music=True), log=lines.append)
    resumed = checkpoint.read(path)
    assert resumed["step"] == more.steps and resumed["config"]["pseudo_beats"] == 0.0
    assert any("(0 with music)" in s for s in lines)                 # songs=0: the dance's song is withheld
    recs = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["beat"] for r in recs if "loss" in r] == [0.0]
    assert [r["focus"] for r in recs if "loss" in r] == [1.0]       # focus=1: every batch was in-betweening's query
    # forget_music zeroed the music weights and their Adam moments; with no music since, nothing moved them
    from kinemo.model.network import Denoiser
    from kinemo.model.config import ModelConfig
    cols = Denoiser(ModelConfig(**ck["config"]["model"])).music_columns()
    for weights in ("model", "ema"):
        w = resumed[weights]["denoiser.frame_in.weight"]
        assert torch.all(w[:, cols] == 0) and torch.any(w[:, :cols.start] != 0)
    assert torch.any(ck["ema"]["denoiser.frame_in.weight"][:, cols] != 0)   # there was something to forget


def test_training_goes_on_from_an_exported_model(tiny_checkpoint, tiny_corpus, tmp_path):
    """A shipped model keeps only fp16 EMA weights: training resumes from them with a fresh optimiser and a
    learning rate warmed up again from the resumed step."""
    from dataclasses import replace

    import torch

    from kinemo.model.config import CONFIGS
    from kinemo.train import checkpoint
    from kinemo.train.loop import Run, _lr, train
    cfg = CONFIGS["tiny"]
    shipped = checkpoint.export(tiny_checkpoint, tmp_path / "shipped.pt")
    lines: list[str] = []
    more = {"steps": cfg.steps + cfg.log_every, "warmup": 4 * cfg.log_every}
    path = train(cfg, Run(out=tmp_path / "more", corpus=corpus_dir(tiny_corpus), cache_dir=tiny_corpus / "text",
                          resume=shipped, overrides=more), log=lines.append)
    assert any("an exported model" in s for s in lines)
    after = checkpoint.read(path)
    assert after["step"] == cfg.steps + cfg.log_every and after["opt"] is not None
    recs = [json.loads(line) for line in (tmp_path / "more" / "log.jsonl").read_text().splitlines()]
    lr = [r["lr"] for r in recs if "loss" in r]
    # the last step logged is log_every steps into a new warm-up four times as long: a quarter of the schedule's rate
    last = more["steps"] - 1
    assert len(lr) == 1 and lr[0] == pytest.approx(_lr(last, replace(cfg, **more)) / 4)
    before = checkpoint.read(shipped)["ema"]["denoiser.frame_in.weight"].float()
    moved = after["model"]["denoiser.frame_in.weight"]
    assert not torch.equal(moved, before) and (moved - before).abs().max() < 0.1   # went on from the weights


def assert_predicts_alike(a, b) -> None:
    """Two models give the same x0, velocities and contacts on random inputs with keys and text."""
    import torch
    g = torch.Generator().manual_seed(0)
    x, obs = torch.randn(2, 40, 147, generator=g), torch.randn(2, 40, 147, generator=g)
    mask, t, text = torch.rand(2, 40, 25, generator=g) < 0.2, torch.tensor([999, 300]), torch.randn(2, 384, generator=g)
    with torch.no_grad():
        for u, v in zip(a.predict(x, t, obs, mask, text), b.predict(x, t, obs, mask, text)):
            torch.testing.assert_close(u, v, rtol=0, atol=1e-5)


def test_a_resumed_model_grows_film_and_learns_it(tiny_checkpoint, tiny_corpus, tmp_path):
    """--grow-film adds zero-initialised per-block FiLM to a trained model: it starts out predicting exactly
    what it did, training moves the new layer, and the result loads and generates."""
    from kinemo.model.config import CONFIGS
    from kinemo.train import checkpoint
    from kinemo.train.grow import load_grown
    from kinemo.train.loop import Run, train
    from kinemo.model.motion_model import MotionModel
    cfg = CONFIGS["tiny"]
    old, old_cfg, _ = checkpoint.load_model(tiny_checkpoint)
    grown = MotionModel(replace(old_cfg.model, film=True)).eval()
    load_grown(grown, checkpoint.read(tiny_checkpoint)["ema"], ("denoiser.film.",))
    assert_predicts_alike(old, grown)
    run = Run(out=tmp_path / "film", corpus=corpus_dir(tiny_corpus), cache_dir=tiny_corpus / "text",
              resume=tiny_checkpoint, overrides={"steps": cfg.steps + cfg.log_every}, grow_film=True)
    path = train(cfg, run, log=lambda s: None)
    after = checkpoint.read(path)
    assert after["config"]["model"]["film"] is True
    assert after["model"]["denoiser.film.weight"].abs().max() > 0          # the new layer learned something
    q, r = Generator.load(path).generate("a person walks", 30, seed=0)
    assert q.shape == (30, 24, 4) and np.isfinite(q).all() and np.isfinite(r).all()
    with pytest.raises(UserError, match="already has FiLM"):
        train(cfg, replace(run, out=tmp_path / "again", resume=path))
    with pytest.raises(UserError, match="needs a run to resume"):
        train(cfg, replace(run, out=tmp_path / "new", resume=None))


def test_a_resumed_model_grows_blocks_that_start_as_pass_throughs_and_learn(tiny_checkpoint, tiny_corpus, tmp_path):
    """--grow-blocks deepens a trained model: the new blocks sit between the trained ones and pass their input on,
    so it predicts exactly what it did; training moves them, and the deeper model loads and generates."""
    import torch

    from kinemo.model.config import CONFIGS
    from kinemo.train import checkpoint
    from kinemo.train.loop import Run, train
    cfg = CONFIGS["tiny"]
    old, old_cfg, _ = checkpoint.load_model(tiny_checkpoint)
    run = Run(out=tmp_path / "deep", corpus=corpus_dir(tiny_corpus), cache_dir=tiny_corpus / "text",
              resume=tiny_checkpoint, overrides={"steps": cfg.steps}, grow_blocks=1)
    start = checkpoint.read(train(cfg, run, log=lambda s: None))     # no steps left: the grown model as it starts
    assert start["config"]["model"]["layers"] == old_cfg.model.layers + 1
    before = checkpoint.read(tiny_checkpoint)["ema"]
    # 2 blocks -> 3: the trained ones at slots 0 and 1, the new one last, writing nothing yet
    key = "denoiser.blocks.layers.1.linear1.weight"
    assert torch.equal(start["ema"][key], before[key])
    assert start["ema"]["denoiser.blocks.layers.2.linear2.weight"].abs().max() == 0
    grown, _, _ = checkpoint.load_model(run.out / "last.pt")
    assert_predicts_alike(old, grown)
    path = train(cfg, replace(run, out=tmp_path / "trained", overrides={"steps": cfg.steps + cfg.log_every}),
                 log=lambda s: None)
    after = checkpoint.read(path)
    assert after["model"]["denoiser.blocks.layers.2.linear2.weight"].abs().max() > 0     # the new block learned
    q, r = Generator.load(path).generate("a person walks", 30, seed=0)
    assert q.shape == (30, 24, 4) and np.isfinite(q).all() and np.isfinite(r).all()
    with pytest.raises(UserError, match="grow_blocks=1: a resumed run"):
        train(cfg, replace(run, out=tmp_path / "new", resume=None))
    with pytest.raises(UserError, match="grow_blocks=-1"):
        train(cfg, replace(run, out=tmp_path / "neg", grow_blocks=-1))
    with pytest.raises(UserError, match="cannot deepen a model with FiLM"):
        train(cfg, replace(run, out=tmp_path / "film", grow_film=True))


def test_prefetched_batches_train_the_same_model(tiny_checkpoint, tiny_corpus, tmp_path):
    """Batches cut ahead on a thread (the accelerator's default) are the synchronous loop's batches: the same
    weights come out, bit for bit."""
    import torch

    from kinemo.model.config import CONFIGS
    from kinemo.train import checkpoint
    from kinemo.train.loop import Run, train
    cfg = CONFIGS["tiny"]
    weights = []
    for depth in (0, 2):
        path = train(cfg, Run(out=tmp_path / f"depth{depth}", corpus=corpus_dir(tiny_corpus),
                              cache_dir=tiny_corpus / "text", resume=tiny_checkpoint, prefetch=depth,
                              overrides={"steps": cfg.steps + cfg.log_every}), log=lambda s: None)
        weights.append(checkpoint.read(path)["model"])
    start = checkpoint.read(tiny_checkpoint)["model"]
    assert not torch.equal(weights[0]["denoiser.frame_in.weight"], start["denoiser.frame_in.weight"])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_focus_and_continuation_batches_ask_their_query(tiny_corpus):
    from dataclasses import replace

    import torch

    from kinemo.model.config import CONFIGS
    from kinemo.train.data import Windows
    from kinemo.train.loop import draw_batch
    w = Windows(Corpus(corpus_dir(tiny_corpus)), "train", tiny_corpus / "text")
    cfg = CONFIGS["tiny"]
    longest = min(cfg.model.max_frames, w.longest())
    rng = np.random.default_rng(0)
    for _ in range(8):
        b, focus = draw_batch(w, replace(cfg, focus=1.0, focus_frames=50), rng, longest)
        mask = b.mask.numpy()
        keyed = mask.any(-1)                                          # (B, L) frames with a key
        assert focus and cfg.min_frames <= mask.shape[1] <= 50
        assert keyed.any(1).all() and mask[keyed].all()              # every window keyed, whole poses only
    # without focus a batch is drawn exactly as before the option existed (resumed runs keep their stream)
    a, f = draw_batch(w, cfg, np.random.default_rng(3), longest)
    r = np.random.default_rng(3)
    ref = w.sample(cfg.batch, int(r.integers(cfg.min_frames, longest + 1)), r)
    assert not f and torch.equal(a.quats, ref.quats) and torch.equal(a.mask, ref.mask)
    # continuation batches: every window keyed whole on a prefix, nothing after it
    for _ in range(4):
        b, focus = draw_batch(w, replace(cfg, continuation=1.0), rng, longest)
        mask = b.mask.numpy()
        n = mask.any(-1).sum(1)                                       # keyed frames per window
        assert not focus and (n >= 1).all()
        assert all(mask[i, :k].all() and not mask[i, k:].any() for i, k in enumerate(n))


def test_free_windows_keep_their_facing_and_root_paths_take_every_heading(tiny_corpus):
    """Free windows are trained facing +Z at their anchor, as sampling lays them out; windows keyed by a root path
    alone have no facing to go by and are turned at random (free ones too with free_facing off)."""
    from kinemo.train.data import Windows
    corpus = Corpus(corpus_dir(tiny_corpus))
    w = Windows(corpus, "train", tiny_corpus / "text")
    rng = np.random.default_rng(0)
    free = w.sample(16, 40, rng, mask_family="free")
    assert not free.mask.any() and not free.random_yaw.any()
    path = w.sample(32, 40, rng, mask_family="trajectory")      # half of them key the facing at the start too
    faced = path.mask[np.arange(32), path.anchor, 1]
    assert path.mask.any((1, 2)).all() and 0 < faced.sum() < 32 and (path.random_yaw == ~faced).all()
    old = Windows(corpus, "train", tiny_corpus / "text", free_facing=False)
    assert old.sample(16, 40, rng, mask_family="free").random_yaw.all()


def test_an_inbetweening_adapter_learns_in_betweening_and_leaves_the_rest_exactly_as_it_was(
        tiny_checkpoint, tiny_corpus, walk, tmp_path):
    """--grow-adapter gives a trained model low-rank deltas for in-betweening and trains them alone: the shared
    weights stay bit for bit, text generation is unchanged, in-betweening changes and still meets its keys."""
    import torch

    from kinemo.model.config import CONFIGS
    from kinemo.model.sampler import SamplerConfig
    from kinemo.train import checkpoint
    from kinemo.train.loop import Run, train
    cfg = CONFIGS["tiny"]
    run = Run(out=tmp_path / "adapter", corpus=corpus_dir(tiny_corpus), cache_dir=tiny_corpus / "text",
              resume=tiny_checkpoint, overrides={"steps": cfg.steps}, grow_adapter=4)
    start = checkpoint.read(train(cfg, run, log=lambda s: None))     # no steps left: the grown model as it starts
    assert start["config"]["model"]["adapter_rank"] == 4 and start["config"]["train_adapter"] is True
    old, _, _ = checkpoint.load_model(tiny_checkpoint)
    grown, _, _ = checkpoint.load_model(run.out / "last.pt")
    g = torch.Generator().manual_seed(0)
    x, obs = torch.randn(2, 40, 147, generator=g), torch.randn(2, 40, 147, generator=g)
    mask, t = torch.rand(2, 40, 25, generator=g) < 0.2, torch.tensor([999, 999])
    with torch.no_grad():      # B = 0: the adapter starts as a no-op
        for u, v in zip(old.predict(x, t, obs, mask), grown.predict(x, t, obs, mask, adapter=True)):
            torch.testing.assert_close(u, v, rtol=0, atol=1e-5)
    path = train(cfg, replace(run, out=tmp_path / "trained", overrides={"steps": cfg.steps + cfg.log_every}),
                 log=lambda s: None)
    after, before = checkpoint.read(path), checkpoint.read(tiny_checkpoint)["ema"]
    shared = [k for k in before if not k.startswith("adapter.")]
    assert all(torch.equal(after["ema"][k].float(), before[k].float()) for k in shared)    # frozen, bit for bit
    assert max(float(v.abs().max()) for k, v in after["model"].items() if k.startswith("adapter.up.")) > 0
    base, adapted = Generator.load(tiny_checkpoint), Generator.load(path)
    off = Generator.load(path, sampler=SamplerConfig(inbetween_adapter=False))
    for a, b in zip(base.generate("a person walks", 30, seed=0), adapted.generate("a person walks", 30, seed=0)):
        assert np.array_equal(a, b)                                          # text never sees the adapter
    T = 60
    q, r = walk.quats[:T], walk.root[:T]
    keys = np.zeros(T, bool)
    keys[:10] = keys[T - 1] = True
    ib = adapted.inbetween(q, r, keys)
    assert np.array_equal(ib[0][keys], q[keys]) and np.array_equal(ib[1][keys], r[keys])
    assert not np.allclose(ib[0], base.inbetween(q, r, keys)[0], atol=1e-6)   # in-betweening did change
    assert np.array_equal(off.inbetween(q, r, keys)[0], base.inbetween(q, r, keys)[0])   # ... only through it
    with pytest.raises(UserError, match="already has an in-betweening adapter"):
        train(cfg, replace(run, out=tmp_path / "again", resume=path))
    with pytest.raises(UserError, match="grow_adapter=4: a resumed run"):
        train(cfg, replace(run, out=tmp_path / "new", resume=None))
    with pytest.raises(UserError, match="train_adapter needs a model with an in-betweening adapter"):
        train(cfg, replace(run, out=tmp_path / "none", grow_adapter=0, overrides={"train_adapter": True}))


def test_inbetween_meets_keys_exactly_and_is_deterministic(gen, walk):
    T = 70
    q, r = walk.quats[:T], walk.root[:T]
    keys = np.zeros(T, bool)
    keys[:10] = True
    keys[[40, 69]] = True
    a = gen.inbetween(q, r, keys, seed=3, temperature=1.0)
    b = gen.inbetween(q, r, keys, seed=3, temperature=1.0)
    c = gen.inbetween(q, r, keys, seed=4, temperature=1.0)
    assert a[0].shape == (T, 24, 4) and a[1].shape == (T, 3)
    assert np.array_equal(a[0][keys], q[keys]) and np.array_equal(a[1][keys], r[keys])
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])               # seeds give variations
    m0 = gen.inbetween(q, r, keys, seed=3)               # the default (temperature 0): the mean motion,
    assert np.array_equal(m0[0], gen.inbetween(q, r, keys, seed=9)[0])   # the same for every seed


def test_the_sampler_temperature_reaches_text_requests(gen):
    # what `MODEL@temperature=0` sets is what a text request uses when it names none: the mean motion, any seed
    cold = Generator(gen.model, gen.cfg, gen.extra, replace(gen.sampler, temperature=0.0))
    a = cold.generate("a person waves", 40, seed=1)[0]
    assert np.array_equal(a, cold.generate("a person waves", 40, seed=2)[0])
    warm = [gen.generate("a person waves", 40, seed=s)[0] for s in (1, 2)]     # the default, 0.6: seeds differ
    assert not np.array_equal(*warm)
    with pytest.raises(UserError, match="temperature"):
        Generator(gen.model, gen.cfg, gen.extra, replace(gen.sampler, temperature=3.0)).generate("a person waves", 40)
    # stochastic DDIM (the default, eta 1) draws fresh noise per step from the same seeded stream:
    # reproducible, and not the deterministic sampler's motion
    plain = Generator(gen.model, gen.cfg, gen.extra, replace(gen.sampler, eta=0.0))
    n = [gen.generate("a person waves", 40, seed=1, steps=4)[0] for _ in range(2)]
    assert np.array_equal(*n) and not np.array_equal(n[0], plain.generate("a person waves", 40, seed=1, steps=4)[0])


def test_text_guidance_settings_reach_the_sampler(gen):
    def variant(**kw):
        return Generator(gen.model, gen.cfg, gen.extra, replace(gen.sampler, retries=0, **kw))
    proper, raw = (variant(guidance_floor=f).generate("a person runs", 40, seed=2)[0] for f in (np.inf, 0.0))
    assert not np.array_equal(proper, raw)
    # without guidance nothing is mixed: the floor changes nothing
    a, b = (variant(guidance_floor=f, text_guidance=1.0).generate("a person runs", 40, seed=2)[0]
            for f in (np.inf, 0.0))
    assert np.array_equal(a, b)
    with pytest.raises(UserError, match="guidance_floor"):
        variant(guidance_floor=-1.0).generate("a person runs", 40)


def test_implausible_free_windows_are_drawn_again(gen, walk):
    def variant(**kw):
        return Generator(gen.model, gen.cfg, gen.extra, replace(gen.sampler, foot_lock=False, **kw))
    text, T = "a person waves", 60
    once = variant(retries=0).generate(text, T, seed=1)
    # limits every draw passes: the first draw stands, bit for bit
    lax = variant(plausible=PlausibilityConfig(max_jerk=np.inf, max_crossed=np.inf)).generate(text, T, seed=1)
    assert np.array_equal(once[0], lax[0]) and np.array_equal(once[1], lax[1])
    # limits no draw passes: every retry is drawn and the least implausible kept, the same one for the same seed
    strict = PlausibilityConfig(max_jerk=1e-3, max_crossed=1.0)
    picked = variant(retries=3, plausible=strict).generate(text, T, seed=1)
    assert np.array_equal(picked[0], variant(retries=3, plausible=strict).generate(text, T, seed=1)[0])
    draws = [once] + [variant(retries=0).generate(text, T, seed=retry_seed(1, k)) for k in (1, 2, 3)]
    scores = [implausibility(clip_positions(smpl_skeleton(), q, r), gen.fps, strict) for q, r in draws]
    best = draws[int(np.argmin(scores))]
    assert len(set(scores)) == 4 and np.array_equal(picked[0], best[0]) and np.array_equal(picked[1], best[1])
    # keyed requests are never drawn again (the keys, not the sampler, decide what they must look like)
    keys = np.zeros(T, bool)
    keys[[0, T - 1]] = True
    q, r = walk.quats[:T], walk.root[:T]
    kw = dict(seed=1, temperature=1.0)
    assert np.array_equal(variant(retries=3, plausible=strict).inbetween(q, r, keys, **kw)[0],
                          variant(retries=0).inbetween(q, r, keys, **kw)[0])
    with pytest.raises(UserError, match="retries"):
        variant(retries=-1).generate(text, T)
    with pytest.raises(ValueError, match="positive"):
        PlausibilityConfig(max_jerk=0.0)


def _steps(q, r):
    p = clip_positions(smpl_skeleton(), q, r)
    return np.linalg.norm(np.diff(p, axis=0), axis=-1).max(-1)     # (T-1,) largest joint move per frame


def _assert_joins_smooth(q, r, segs):
    """No frame step into or out of a stitched join is larger than twice the motion's 95th percentile."""
    s = _steps(q, r)
    edges = np.array([e for a, b in zip(segs, segs[1:]) for e in (a.stop, b.start)])   # into and out of each join
    assert s[np.concatenate([edges - 1, edges])].max() <= max(2.0 * np.percentile(s, 95), 0.05)


def test_guidance_rescale_keeps_the_conditional_spread(gen):
    import torch

    from kinemo.model.sampler import Conditions, _predict
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 40, 147, generator=g)
    c = Conditions(torch.zeros(2, 40, 147), torch.zeros(2, 40, 25, dtype=torch.bool),
                   torch.nn.functional.normalize(torch.randn(2, 384, generator=g), dim=-1))
    cond = _predict(gen.model, x, 500, c, 1.0)[0]
    plain, full = _predict(gen.model, x, 500, c, 4.0)[0], _predict(gen.model, x, 500, c, 4.0, 1.0)[0]
    sd = lambda a: a.std(dim=(1, 2))                                            # noqa: E731
    torch.testing.assert_close(sd(full), sd(cond))                  # rescaled to the conditional's spread
    assert not torch.allclose(sd(plain), sd(cond), rtol=1e-3)        # which plain guidance does not keep
    half = _predict(gen.model, x, 500, c, 4.0, 0.5)[0]
    torch.testing.assert_close(half, 0.5 * (plain + full))


def test_long_motion_joins_are_seamless(gen):
    T = 3 * gen.window
    seen = []
    q, r = gen.generate("a person walks forward", T, seed=1, progress=seen.append)
    assert q.shape == (T, 24, 4) and np.isfinite(q).all() and np.isfinite(r).all()
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    segs = plan_segments(T, gen.window, min(gen.sampler.join, gen.window // 3))
    assert len(segs) >= 3
    _assert_joins_smooth(q, r, segs)
    # the joins are made (no rest pose left there), and the whole is the same for the same seed only
    gap = slice(segs[0].stop, segs[1].start)
    assert not np.allclose(q[gap], R.quat_identity((gap.stop - gap.start, 24)))
    q2, r2 = gen.generate("a person walks forward", T, seed=1)
    assert np.array_equal(q, q2) and np.array_equal(r, r2)
    assert not np.array_equal(q, gen.generate("a person walks forward", T, seed=2)[0])


def test_the_join_settings_reach_stitching_and_are_checked(gen):
    T = 3 * gen.window
    short = Generator(gen.model, gen.cfg, gen.extra, replace(gen.sampler, join=12, join_context=6))
    q, r = short.generate("a person walks forward", T, seed=1)
    segs = plan_segments(T, gen.window, 12)
    assert [b.start - a.stop for a, b in zip(segs, segs[1:])] == [12] * (len(segs) - 1)
    _assert_joins_smooth(q, r, segs)
    assert not np.array_equal(q, gen.generate("a person walks forward", T, seed=1)[0])
    for bad in ({"join": 0}, {"join_context": 0}, {"overlap": 0}, {"join_span": 0}):
        with pytest.raises(UserError, match="at least 1 frame"):
            Generator(gen.model, gen.cfg, gen.extra, replace(gen.sampler, **bad)).generate("a person walks", T)


def test_keyed_long_motion_is_chained_through_its_keys(gen):
    # a long motion with keys is made window after window, each continuing the one before; keys stay exact
    T = 3 * gen.window
    q0, r0 = gen.generate("a person walks forward", gen.window, seed=0)
    q = np.tile(q0[:1], (T, 1, 1))
    r = np.tile(r0[:1], (T, 1))
    keys = np.zeros(T, bool)
    keys[[0, T - 1]] = True
    a, b = gen.inbetween(q, r, keys, text="a person walks forward", seed=1)
    assert np.array_equal(a[keys], q[keys]) and np.array_equal(b[keys], r[keys])
    s = _steps(a, b)
    wins = chain_windows(keys, gen.window, min(gen.sampler.overlap, gen.window // 3))
    joins = np.array([keep for _, keep in wins[:-1]])            # the first frame the next window makes
    assert s[joins - 1].max() <= max(2.0 * np.percentile(s, 95), 0.05)


def test_dance_follows_the_music_length(gen):
    from kinemo.data.music import features_from_samples
    sr = 22050
    t = np.arange(sr * 5) / sr
    y = np.where((t % 0.5) < 0.02, np.sin(2 * np.pi * 1000 * t), 0.0).astype(np.float32)
    m = features_from_samples(y, sr, 30.0).matrix
    q, r = gen.dance(m, seed=0)
    assert q.shape == (len(m), 24, 4) and np.isfinite(q).all()
    keys = np.zeros(len(m), bool)
    keys[[30, 60]] = True
    kq = np.tile([1.0, 0, 0, 0], (len(m), 24, 1))
    kr = np.tile([0.0, 0.95, 0.0], (len(m), 1))
    q2, r2 = gen.dance(m, quats=kq, root=kr, keys=keys, seed=0)
    assert np.array_equal(q2[keys], kq[keys]) and np.array_equal(r2[keys], kr[keys])


# --- the CLI ----------------------------------------------------------------------

def test_cli_inbetween_any_humanoid_bvh(bandai_dir, tiny_checkpoint, tmp_path, capsys):
    src = bandai_dir / f"{WALK}.bvh"
    out = tmp_path / "out.bvh"
    rc = main(["inbetween", str(src), "--keys", "0,20,45", "--out", str(out), "--model", str(tiny_checkpoint),
               "--seed", "2", "--steps", "4"])
    assert rc == 0, capsys.readouterr().err
    a, b = read_bvh(src), read_bvh(out)
    assert b.skeleton.names == a.skeleton.names and b.motion.fps == a.motion.fps
    assert b.motion.num_frames == a.motion.num_frames
    k = [0, 20, 45]
    # keys come back as they were (to the BVH text's printed precision)
    np.testing.assert_allclose(b.motion.positions(b.skeleton)[k], a.motion.positions(a.skeleton)[k], atol=1e-4)
    assert not np.allclose(b.motion.rotations[30], a.motion.rotations[30], atol=1e-3)   # made, not copied
    # the output is never overwritten silently
    assert main(["inbetween", str(src), "--keys", "0,20", "--out", str(out), "--model", str(tiny_checkpoint)]) == 2
    assert "exists" in capsys.readouterr().err


def test_cli_inbetween_rejects_bad_keys_and_non_humanoids(bandai_dir, tiny_checkpoint, tmp_path, capsys):
    src = bandai_dir / f"{WALK}.bvh"
    n = read_bvh(src).motion.num_frames
    assert main(["inbetween", str(src), "--keys", f"0,{n + 5}", "--out", str(tmp_path / "o.bvh"),
                 "--model", str(tiny_checkpoint)]) == 2
    assert "outside the clip" in capsys.readouterr().err
    assert main(["inbetween", str(src), "--keys", "a,b", "--out", str(tmp_path / "o.bvh")]) == 2
    assert "comma-separated" in capsys.readouterr().err
    chain = tmp_path / "chain.bvh"
    chain.write_text("HIERARCHY\nROOT a\n{\n OFFSET 0 0 0\n CHANNELS 6 Xposition Yposition Zposition Zrotation "
                     "Xrotation Yrotation\n JOINT b\n {\n  OFFSET 0 1 0\n  CHANNELS 3 Zrotation Xrotation Yrotation\n"
                     "  End Site\n  {\n   OFFSET 0 1 0\n  }\n }\n}\nMOTION\nFrames: 2\nFrame Time: 0.0333333\n"
                     "0 0 0 0 0 0 0 0 0\n0 0 0 0 0 0 0 0 0\n")
    assert main(["inbetween", str(chain), "--keys", "0,1", "--out", str(tmp_path / "c.bvh"),
                 "--model", str(tiny_checkpoint)]) == 2
    assert "humanoid" in capsys.readouterr().err.lower()


def test_cli_generate_onto_a_rig(bandai_dir, tiny_checkpoint, tmp_path, capsys):
    rig = bandai_dir / f"{WALK}.bvh"
    out = tmp_path / "gen.bvh"
    rc = main(["generate", "--text", "a person waves", "--seconds", "2", "--out", str(out), "--target", str(rig),
               "--model", str(tiny_checkpoint), "--steps", "4"])
    assert rc == 0, capsys.readouterr().err
    b = read_bvh(out)
    assert b.skeleton.names == read_bvh(rig).skeleton.names and b.motion.num_frames == 60   # 2 s at 30 fps
    assert main(["generate", "--text", " ", "--out", str(tmp_path / "e.bvh"), "--model", str(tiny_checkpoint)]) == 2
    assert "empty" in capsys.readouterr().err


# --- the server -------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_server(tiny_checkpoint, tmp_path_factory, launch):
    s = launch(tmp_path_factory.mktemp("serve-model"), "--model", str(tiny_checkpoint))
    yield s
    s.stop()


def test_server_runs_the_model_with_progress(model_server):
    from kinemo.serve.client import Client
    from kinemo.serve.examples import example_request
    with Client(model_server.address) as c:
        hello = c.call("hello", {}, timeout=10)
        assert hello["model"]["loaded"] and hello["capabilities"]["inbetween"]["available"]
        body = example_request("inbetween")
        seen = []
        out = c.call("inbetween", {**body, "seed": 1, "steps": 3}, timeout=120, on_progress=lambda *p: seen.append(p))
        m = out["motion"]
        K = body["keys"]["frames"]
        assert m["rotations"].shape[0] == body["frames"]
        np.testing.assert_allclose(m["rotations"][K], body["keys"]["rotations"], atol=1e-6)
        assert any(stage == "sample" for _, stage, _ in seen)
        g = c.call("generate", {"text": "a person walks", "frames": 20, "fps": 24.0, "steps": 2}, timeout=120)
        assert g["motion"]["rotations"].shape == (20, 24, 4)
