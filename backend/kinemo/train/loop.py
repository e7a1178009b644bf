"""The training loop: AdamW with warm-up and cosine decay, EMA weights, bf16 autocast where the hardware
has bf16, periodic validation and checkpoints, resume, and DDP under ``torchrun``.
"""
from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist

from ..data.cache import Corpus
from ..errors import UserError
from ..model.config import TrainConfig, from_dict
from ..model.features import velocities
from ..model.motion_model import MotionModel
from . import checkpoint as ckpt
from .data import Batch, Windows
from .grow import deepen, load_grown, move_blocks
from .objective import batch_features, losses, total
from .prefetch import Prefetcher


@dataclass
class Run:
    out: Path
    corpus: Path
    cache_dir: Path
    resume: Path | None = None
    max_minutes: float | None = None   # stop (with a checkpoint) after this much wall time
    threads: int | None = None
    overrides: dict | None = None      # training fields set on top of the config (a resumed one's included)
    forget_music: bool = False         # a resumed run starts with its music input zeroed, as if it never heard any
    grow_film: bool = False            # a resumed model without FiLM (ModelConfig.film) gains it, zero-initialised
    grow_blocks: int = 0               # a resumed model gains this many transformer blocks, each passing its input on
    grow_adapter: int = 0              # a resumed model gains an in-betweening adapter of this rank, trained alone
    prefetch: int | None = None        # batches cut ahead on a thread; None: 2 on an accelerator, 0 (none) on a CPU


def _lr(step: int, cfg: TrainConfig, time_fraction: float = 0.0, rewarm_from: int | None = None) -> float:
    """Linear warm-up, then cosine decay to 10% over the steps or over the time budget, whichever ends first
    (so a run stopped by ``--max-minutes`` still ends annealed). ``rewarm_from``: the step a run resumed with a
    fresh optimiser (from an exported model); the rate ramps up again over ``warmup`` steps from there, since
    Adam's first steps without its moments are full-size in every weight."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    p = min(1.0, max((step - cfg.warmup) / max(1, cfg.steps - cfg.warmup), time_fraction))
    lr = cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))
    if rewarm_from is not None and step - rewarm_from < cfg.warmup:
        lr *= (step - rewarm_from + 1) / cfg.warmup
    return lr


@torch.no_grad()
def fit_statistics(model: MotionModel, windows: Windows, cfg: TrainConfig, n: int = 512) -> None:
    """Feature mean/std and velocity scale from random training windows, each turned to a random heading: the
    statistics do not depend on which way a window faces (windows keyed only by a root path are trained in
    every heading), and are what every run before ``free_facing`` fitted."""
    rng = np.random.default_rng(1234)
    gen = torch.Generator().manual_seed(1234)
    L = min(cfg.model.max_frames, max(cfg.min_frames, 60))
    feats, vels = [], []
    for _ in range(max(1, n // 64)):
        b = windows.sample(64, L, rng, mask_family="free")
        b = replace(b, random_yaw=torch.ones_like(b.random_yaw))
        f, pos = batch_features(model, b, gen)
        feats.append(f.flatten(0, 1))
        vels.append(velocities(pos).flatten(0, 1).flatten(1))
    f, v = torch.cat(feats), torch.cat(vels)
    model.feat_mean.copy_(f.mean(0))
    model.feat_std.copy_(f.std(0).clamp_min(1e-2))
    model.vel_std.copy_(v.std(0).clamp_min(1e-2))


def _ddp() -> tuple[int, int]:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def train(cfg: TrainConfig, run: Run, log: Callable[[str], None] = print) -> Path:
    """Train (or resume) and return the path of the last checkpoint."""
    if run.forget_music and not run.resume:
        raise UserError("forget_music needs a run to resume (--resume): a new run has heard no music to forget")
    if run.grow_film and not run.resume:
        raise UserError("grow_film needs a run to resume (--resume); a new model gets FiLM from its config")
    if run.grow_blocks < 0 or (run.grow_blocks and not run.resume):
        raise UserError(f"grow_blocks={run.grow_blocks}: a resumed run (--resume) can gain one block or more; "
                        "a new model gets its depth from its config (model.layers)")
    if run.grow_adapter < 0 or (run.grow_adapter and not run.resume):
        raise UserError(f"grow_adapter={run.grow_adapter}: a resumed run (--resume) can gain an adapter of rank 1 or "
                        "more; it adapts weights that are already trained")
    rank, world = _ddp()
    local = int(os.environ.get("LOCAL_RANK", rank))
    device = torch.device(f"cuda:{local % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu")
    if run.threads:
        torch.set_num_threads(run.threads)
    torch.manual_seed(cfg.seed + rank)
    step, history = 0, []
    state = None
    if run.resume:
        state = ckpt.read(run.resume)
        cfg = from_dict(state["config"])
        step, history = state["step"], state["extra"].get("history", [])
        if run.grow_film:
            if cfg.model.film:
                raise UserError(f"{run.resume} already has FiLM (model.film); drop --grow-film")
            cfg = replace(cfg, model=replace(cfg.model, film=True))
        if run.grow_blocks:
            if cfg.model.film:      # FiLM's output layer is sized by the block count
                raise UserError("grow_blocks cannot deepen a model with FiLM (model.film)")
            cfg = replace(cfg, model=replace(cfg.model, layers=cfg.model.layers + run.grow_blocks))
        if run.grow_adapter:
            if cfg.model.adapter_rank:
                raise UserError(f"{run.resume} already has an in-betweening adapter (rank {cfg.model.adapter_rank}); "
                                "drop --grow-adapter")
            cfg = replace(cfg, model=replace(cfg.model, adapter_rank=run.grow_adapter), train_adapter=True)
    if run.overrides:
        cfg = replace(cfg, **run.overrides)
    if cfg.train_adapter:
        if not cfg.model.adapter_rank:
            raise UserError("train_adapter needs a model with an in-betweening adapter (--grow-adapter RANK)")
        cfg = replace(cfg, focus=1.0)      # the adapter only ever answers in-betweening's query
    # the windows are drawn with the final config: an override of text_drop, music_drop, pseudo_beats or songs
    # applies to a resumed run too
    corpus = Corpus(run.corpus)
    windows = Windows(corpus, "train", run.cache_dir, cfg.text_drop, cfg.mirror, cfg.music_drop, cfg.pseudo_beats,
                      cfg.songs, cfg.free_facing)
    val = Windows(corpus, "val", run.cache_dir, 0.0, 0.0, 0.0, 0.0, free_facing=cfg.free_facing)
    model = MotionModel(cfg.model)
    slots, new_blocks = deepen(model, run.grow_blocks)
    grown = (("denoiser.film.",) if run.grow_film else ()) + new_blocks + (("adapter.",) if run.grow_adapter else ())
    # an exported (shipped) model keeps only its EMA weights: training goes on from those, with a fresh optimiser
    exported = state is not None and ckpt.is_exported(state)
    if state is not None:
        load_grown(model, move_blocks(ckpt.fp32_weights(state) if exported else state["model"], slots), grown)
        log(f"resumed from {run.resume} at step {step}"
            + (" (an exported model: EMA weights, fresh optimiser, learning rate warmed up again)" if exported else ""))
    else:
        fit_statistics(model, windows, cfg)
    if run.overrides:
        log(f"config overrides: {run.overrides}")
    model.to(device)
    ema = copy.deepcopy(model).eval()
    if state is not None and not exported:
        load_grown(ema, move_blocks(state["ema"], slots), grown)
    for p in ema.parameters():
        p.requires_grad_(False)
    if cfg.train_adapter:
        freeze_shared(model, ema)
    net = model
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.99))
    # a grown model's parameters are new; an optimiser over all the weights cannot go on over the adapter's alone
    same = state is None or bool(state["config"].get("train_adapter")) == cfg.train_adapter
    if state is not None and same and state.get("opt") and not grown:
        opt.load_state_dict(state["opt"])
    if run.forget_music:
        forget_music(model, ema, opt)
        log("music input zeroed: the network starts as if it had never heard music")
    n_params = sum(p.numel() for p in model.parameters())
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log(f"model: {n_params / 1e6:.2f} M parameters ({n_train / 1e6:.2f} M trained), {len(windows.ids)} training takes "
        f"({int(windows.has_music.sum())} with music), device {device}, world {world}")
    rewarm_from = step if exported or grown or not same else None     # Adam starts without its moments
    rng = np.random.default_rng(cfg.seed * 1000 + rank + step)
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + rank + step)
    longest = min(cfg.model.max_frames, windows.longest())
    t0, last = time.time(), time.time()
    run.out.mkdir(parents=True, exist_ok=True)
    logf = open(run.out / "log.jsonl", "a")
    path = run.out / "last.pt"
    acc: dict[str, float] = {}
    last_step = torch.full((cfg.batch,), model.cfg.diffusion_steps - 1, device=device)   # focus batches' t

    def save():
        ckpt.save(path, cfg, model, ema, opt, step, {"history": history})

    # on an accelerator the next batches are cut on a thread while this one trains (the same batches, in order);
    # on a CPU that thread would take a core from the step itself
    depth = run.prefetch if run.prefetch is not None else (2 if device.type == "cuda" else 0)
    batches = Prefetcher(lambda: draw_batch(windows, cfg, rng, longest), depth)
    try:
        while step < cfg.steps:
            b, focus = next(batches)
            b = to_device(b, device)
            frac = (time.time() - t0) / (run.max_minutes * 60) if run.max_minutes else 0.0
            if world > 1:   # every rank follows rank 0's clock, so learning rates and the stop step agree
                f = torch.tensor([frac], device=device)
                dist.broadcast(f, 0)
                frac = float(f)
            lr = _lr(step, cfg, frac, rewarm_from)
            for g in opt.param_groups:
                g["lr"] = lr
            model.train()
            parts = losses(model, b, cfg, gen, t=last_step if focus else None, net=net if world > 1 else None,
                           clean=focus, adapter=focus)
            loss = total(parts, cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            with torch.no_grad():
                d = min(cfg.ema, (1 + step) / (10 + step))
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(pm, 1 - d)
            step += 1
            # summed on the device, read at log steps only: a read per step would wait for the accelerator
            for k, v in parts.items():
                acc[k] = acc.get(k, 0.0) + v.detach().float()
            acc["loss"] = acc.get("loss", 0.0) + loss.detach().float()
            acc["focus"] = acc.get("focus", 0.0) + focus
            if step % cfg.log_every == 0 and rank == 0:
                rec = {"step": step, "time_s": round(time.time() - t0, 1), "lr": lr,
                       **{k: round(float(v) / cfg.log_every, 5) for k, v in acc.items()}}
                acc = {}
                logf.write(json.dumps(rec) + "\n")
                logf.flush()
                log(f"step {step} loss {rec['loss']:.4f} feat {rec['feat']:.4f} pos {rec['pos']:.4f} "
                    f"({(time.time() - last) / cfg.log_every:.2f} s/step)")
                last = time.time()
            if step % cfg.val_every == 0 and rank == 0:
                rec = {"step": step, "val": validate(ema, val, cfg)}
                history.append(rec)
                logf.write(json.dumps(rec) + "\n")
                logf.flush()
                log(f"val {rec['val']}")
            if rank == 0 and (step % cfg.ckpt_every == 0 or step == cfg.steps):
                save()
            if run.max_minutes and frac > 1.0:
                log(f"time limit reached at step {step}")
                break
    finally:
        batches.close()
    if rank == 0:
        save()
    logf.close()
    return path


FOCUS_FAMILIES = {"inbetween": 0.7, "sparse": 0.3}


def draw_batch(windows: Windows, cfg: TrainConfig, rng: np.random.Generator, longest: int) -> tuple[Batch, bool]:
    """One training batch and whether it is a focus batch (``TrainConfig.focus``: in-betweening's query, to be
    trained at the last step from x_t = 0). One window length per batch. Without focus the random stream is the
    one runs made before focus existed, so they resume reproducibly."""
    if cfg.focus > 0 and rng.random() < cfg.focus:
        if cfg.focus_every > 0 and rng.random() < cfg.focus_every:
            L = int(rng.integers(cfg.min_frames, longest + 1))
            return windows.sample(cfg.batch, L, rng, mask_family="every"), True
        L = int(rng.integers(cfg.min_frames, max(cfg.min_frames, min(longest, cfg.focus_frames)) + 1))
        family = str(rng.choice(list(FOCUS_FAMILIES), p=list(FOCUS_FAMILIES.values())))
        return windows.sample(cfg.batch, L, rng, mask_family=family), True
    family = "continue" if cfg.continuation > 0 and rng.random() < cfg.continuation else None
    L = int(rng.integers(cfg.min_frames, longest + 1))
    return windows.sample(cfg.batch, L, rng, mask_family=family), False


@torch.no_grad()
def forget_music(model: MotionModel, ema: MotionModel, opt: torch.optim.Optimizer) -> None:
    """Zero the weights that read music (raw and EMA) and their optimiser moments: what the network knows about
    motion stays, what it learnt from music (or pseudo-beat grids) goes, so ablations of how music is taught start
    level."""
    cols = model.denoiser.music_columns()
    for m in (model, ema):
        m.denoiser.frame_in.weight[:, cols] = 0
    for v in opt.state.get(model.denoiser.frame_in.weight, {}).values():
        if torch.is_tensor(v) and v.ndim == 2:
            v[:, cols] = 0


@torch.no_grad()
def freeze_shared(model: MotionModel, ema: MotionModel) -> None:
    """Leave only the in-betweening adapter trainable, with the shared weights set to their EMA values: those are
    the ones sampling runs, so the adapter learns against them."""
    for (name, p), pe in zip(model.named_parameters(), ema.parameters()):
        own = name.startswith("adapter.")
        if not own:
            p.copy_(pe)
        p.requires_grad_(own)


def to_device(b: Batch, device: torch.device) -> Batch:
    return type(b)(*(x.to(device) for x in vars(b).values()))


@torch.no_grad()
def validate(model: MotionModel, val: Windows, cfg: TrainConfig) -> dict[str, float]:
    """Losses on fixed validation windows at fixed noise levels (comparable across steps and runs)."""
    rng = np.random.default_rng(7)
    gen = torch.Generator().manual_seed(7)
    L = min(cfg.model.max_frames, 90, val.longest())
    out: dict[str, float] = {}
    n = max(1, cfg.val_windows // 32)
    T = model.cfg.diffusion_steps
    dev = next(model.parameters()).device
    # (family, noise level, name): the middle step for both, and in-betweening's own sampling step
    # and that step from x_t = 0, as in-betweening asks it (temperature 0)
    for fam, step, name, clean in (("inbetween", T // 2, "inbetween", False), ("free", T // 2, "free", False),
                                   ("inbetween", T - 1, "ib_top", False), ("inbetween", T - 1, "ib_zero", True),
                                   ("every", T - 1, "ev_zero", True)):
        for _ in range(n):
            b = to_device(val.sample(32, L, rng, mask_family=fam), dev)
            parts = losses(model, b, cfg, gen, t=torch.full((32,), step, dtype=torch.long), clean=clean,
                           adapter=clean)
            for k in ("feat", "pos", "gpos", "beat"):
                out[f"{name}_{k}"] = out.get(f"{name}_{k}", 0.0) + float(parts[k]) / n
    return {k: round(v, 5) for k, v in out.items()}
