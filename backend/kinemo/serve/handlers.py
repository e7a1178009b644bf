"""Request type -> the function that does the work.

A handler is ``run(ctx, body, report, cancelled) -> output``: ``body`` is the
validated request body (arrays already numpy), ``report(fraction, stage,
message)`` streams progress, ``cancelled()`` says whether to stop; a handler
checks it at least once per step and raises :class:`Cancelled`. The output
map must match ``protocol.RESULT_SCHEMAS[type]``.

The model's requests (inbetween, generate, dance) call into ``ctx.model`` (a
:class:`~kinemo.model.generator.Generator`), reporting progress after each
sampler step; without a loaded model they answer ``not_available``
(``needs_model``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

import numpy as np

from .protocol import Code, ProtocolError

Report = Callable[[float, str, str], None]


class Cancelled(Exception):
    """Raised by a handler that saw ``cancelled()`` turn true."""


@dataclass
class Context:
    """What handlers share: the device and the model, loaded once."""

    device: str = "cpu"
    model: Any = None                     # the Generator, once one exists
    model_name: str = ""
    model_detail: str = "no motion model is available in this build yet"


@dataclass(frozen=True)
class Handler:
    run: Callable[[Context, dict, Report, Callable[[], bool]], dict]
    available: Callable[[Context], str | None] = field(default=lambda ctx: None)  # reason when unavailable


HANDLERS: dict[str, Handler] = {}


def register(name: str, available: Callable[[Context], str | None] = lambda ctx: None):
    def deco(fn):
        HANDLERS[name] = Handler(fn, available)
        return fn
    return deco


def unavailable_reason(name: str, ctx: Context) -> str | None:
    h = HANDLERS.get(name)
    if h is None:
        return f"no handler for {name!r} in this server"
    return h.available(ctx)


# --- selftest: a diagnostic with a real computation ----------------------------------

def selftest_skeleton(joints: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A random tree and motion parameters: parents ``(J,)``, offsets ``(J, 3)``,
    rotation axes ``(J, 3)`` and angular rates ``(J,)``, all from ``seed``."""
    rng = np.random.default_rng(seed)
    parents = np.array([-1] + [int(rng.integers(0, j)) for j in range(1, joints)], np.int64)
    offsets = rng.normal(0.0, 0.1, (joints, 3))
    axes = rng.normal(size=(joints, 3))
    axes /= np.maximum(np.linalg.norm(axes, axis=1, keepdims=True), 1e-9)
    rates = rng.uniform(0.01, 0.2, joints)
    return parents, offsets, axes, rates


def selftest_positions(parents, offsets, axes, rates, start: int, stop: int) -> np.ndarray:
    """World positions ``(stop - start, J, 3)`` of frames ``[start, stop)``: each
    joint swings about its axis by ``sin(rate * frame)`` radians."""
    from kinemo.core.fk import forward_kinematics
    from kinemo.core.rotations import axis_angle_to_quat
    f = np.arange(start, stop, dtype=np.float64)[:, None]          # (n, 1)
    angles = np.sin(rates[None] * f)                                # (n, J)
    rot = axis_angle_to_quat(axes[None] * angles[..., None])        # (n, J, 4)
    pos = np.broadcast_to(offsets, rot.shape[:2] + (3,))
    return forward_kinematics(parents, rot, pos)[1]


@register("selftest")
def selftest(ctx: Context, body: dict, report: Report, cancelled: Callable[[], bool]) -> dict:
    T, J, chunk = body["frames"], body["joints"], body["chunk_frames"]
    params = selftest_skeleton(J, body["seed"])
    keep = body["return_positions"]
    out = np.empty((T, J, 3), np.float32) if keep else None
    checksum = 0.0
    for start in range(0, T, chunk):
        if cancelled():
            raise Cancelled()
        stop = min(T, start + chunk)
        p = selftest_positions(*params, start, stop)
        checksum += float(p.sum())
        if keep:
            out[start:stop] = p
        report(stop / T, "fk", f"frames {stop}/{T}")
    result = {"frames": T, "joints": J, "checksum": checksum}
    if keep:
        result["positions"] = out
    return result


# --- retarget ----------------------------------------------------------------------

@register("retarget")
def retarget(ctx: Context, body: dict, report: Report, cancelled: Callable[[], bool]) -> dict:
    from kinemo.core.retarget import retarget as run_retarget

    from .convert import motion_from_wire, motion_to_wire, skeleton_from_rig
    report(0.0, "prepare", "building skeletons")
    src = skeleton_from_rig(body["source_rig"])
    tgt = skeleton_from_rig(body["target_rig"])
    motion = motion_from_wire(body["motion"])
    pairs = None
    if "mapping" in body:
        pairs = mapping_overrides(src, tgt, body["mapping"]["source"], body["mapping"]["target"])
    if cancelled():
        raise Cancelled()
    report(0.1, "retarget", f"{motion.num_frames} frames, {src.num_joints} -> {tgt.num_joints} joints")
    out = run_retarget(src, motion, tgt, pairs=pairs)
    report(1.0, "done", "retargeted")
    return {"motion": motion_to_wire(out)}


def auto_pairs(src, tgt) -> list[tuple[str, str, str]]:
    """``[(source bone, target bone, SMPL role)]`` that retarget pairs by default (SMPL order)."""
    from kinemo.core.bonemap import auto_map
    from kinemo.core.smpl import SMPL_JOINT_NAMES
    s, t = auto_map(src).joints, auto_map(tgt).joints
    return [(s[r], t[r], r) for r in SMPL_JOINT_NAMES if r in s and r in t]


def mapping_overrides(src, tgt, sources: list[str], targets: list[str]) -> dict[str, str | None]:
    """An explicit pair list -> ``retarget``'s ``pairs`` overrides, so exactly these pairs drive the target."""
    for side, names, skel in (("source", sources, src), ("target", targets, tgt)):
        unknown = [n for n in names if n not in skel.names]
        if unknown:
            raise ValueError(f"mapping names {side} bones the {side} rig does not have: {unknown[:5]}")
    pairs: dict[str, str | None] = {s: None for s, _, _ in auto_pairs(src, tgt)}
    pairs.update(zip(sources, targets))
    return pairs


@register("bonemap")
def bonemap(ctx: Context, body: dict, report: Report, cancelled: Callable[[], bool]) -> dict:
    from .convert import skeleton_from_rig
    rows = auto_pairs(skeleton_from_rig(body["source_rig"]), skeleton_from_rig(body["target_rig"]))
    return {"source": [r[0] for r in rows], "target": [r[1] for r in rows], "role": [r[2] for r in rows]}


# --- the model requests ----------------------------------------------------------

def needs_model(name: str) -> Callable[[Context], str | None]:
    def available(ctx: Context) -> str | None:
        return None if ctx.model is not None else (
            f"{name} needs the motion model, which this server has not loaded ({ctx.model_detail})")
    return available


def _sample(report: Report, cancelled: Callable[[], bool], call: Callable[..., Any]) -> Any:
    """Run ``call(progress=..., cancelled=...)`` on the Generator with the job's progress and cancellation,
    its Cancelled mapped to the server's."""
    from kinemo.model.generator import Cancelled as ModelCancelled

    def progress(f: float) -> None:
        report(0.05 + 0.9 * f, "sample", f"{round(100 * f)}%")

    try:
        return call(progress=progress, cancelled=cancelled)
    except ModelCancelled:
        raise Cancelled() from None


@register("inbetween", available=needs_model("inbetween"))
def inbetween(ctx: Context, body: dict, report: Report, cancelled: Callable[[], bool]) -> dict:
    from kinemo.model.on_rig import inbetween_on_rig

    from .convert import motion_to_wire, skeleton_from_rig
    skel = skeleton_from_rig(body["rig"])
    keys = body["keys"]
    report(0.0, "prepare", f"{len(keys['frames'])} keys on {skel.num_joints} bones")
    out = _sample(report, cancelled, partial(
        inbetween_on_rig, ctx.model, skel, np.asarray(keys["frames"]), np.asarray(keys["rotations"], np.float64),
        np.asarray(keys["translations"], np.float64), body["frames"], body["fps"], key_mask=keys.get("mask"),
        text=body.get("text"), seed=body.get("seed", 0), steps=body.get("steps")))
    report(1.0, "done", "in-betweened")
    return {"motion": motion_to_wire(out)}


@register("generate", available=needs_model("generate"))
def generate(ctx: Context, body: dict, report: Report, cancelled: Callable[[], bool]) -> dict:
    from kinemo.model.on_rig import model_frames, smpl_to_rig

    from .convert import motion_to_wire, skeleton_from_rig
    skel = skeleton_from_rig(body["rig"]) if "rig" in body else None
    fps, frames = body["fps"], body["frames"]
    report(0.0, "text", "reading the prompt")
    q, r = _sample(report, cancelled, partial(ctx.model.generate, body["text"], model_frames(frames, fps),
                                              seed=body.get("seed", 0), steps=body.get("steps"),
                                              guidance=body.get("guidance")))
    report(0.95, "retarget", "onto the rig" if skel else "on the SMPL skeleton")
    out = smpl_to_rig(q, r, skel, fps=fps, frames=frames)
    report(1.0, "done", "generated")
    return {"motion": motion_to_wire(out)}


def _music_for(body: dict, report: Report) -> np.ndarray:
    """The request's music as model features at 30 fps ``(T, MUSIC_DIM)``: from audio bytes or given features."""
    import os
    import tempfile

    from kinemo.data.music import MUSIC_DIM, music_features
    from kinemo.model.on_rig import MODEL_FPS
    if "audio" in body:
        report(0.0, "music", "analysing the audio")
        fd, tmp = tempfile.mkstemp(suffix="." + body["audio_format"])
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body["audio"])
            return music_features(tmp, MODEL_FPS).matrix
        finally:
            os.unlink(tmp)
    feats = np.asarray(body["features"], np.float32)
    if feats.shape[1] != MUSIC_DIM:
        raise ProtocolError(Code.BAD_REQUEST, f"features must have {MUSIC_DIM} columns (kinemo.data.music); "
                                              f"got {feats.shape[1]}")
    src_t = np.arange(len(feats)) / body["features_fps"]
    n = int(np.floor(src_t[-1] * MODEL_FPS)) + 1
    t = np.arange(n) / MODEL_FPS
    return np.stack([np.interp(t, src_t, feats[:, c]) for c in range(feats.shape[1])], 1).astype(np.float32)


@register("dance", available=needs_model("dance"))
def dance(ctx: Context, body: dict, report: Report, cancelled: Callable[[], bool]) -> dict:
    from kinemo.model.on_rig import MODEL_FPS, model_frames, smpl_to_rig

    from .convert import motion_to_wire, skeleton_from_rig
    skel = skeleton_from_rig(body["rig"]) if "rig" in body else None
    fps = body["fps"]
    music = _music_for(body, report)      # unreadable or silent audio: UserError -> bad_request
    frames = body.get("frames") or max(1, int(round((len(music) - 1) * fps / MODEL_FPS)) + 1)
    n30 = model_frames(frames, fps)
    if n30 > len(music):   # asked for more than the song: hold its last frame of features
        music = np.concatenate([music, np.repeat(music[-1:], n30 - len(music), 0)])
    q, r = _sample(report, cancelled, partial(ctx.model.dance, music[:n30], text=body.get("text"),
                                              seed=body.get("seed", 0), steps=body.get("steps")))
    out = smpl_to_rig(q, r, skel, fps=fps, frames=frames)
    report(1.0, "done", "danced")
    return {"motion": motion_to_wire(out)}


# --- set-up --------------------------------------------------------------------

def load_context(device: str = "cpu", model: str | None = "auto") -> Context:
    """The shared context for a server on ``device``; checks that the device exists and loads the model.

    model: a checkpoint path, ``"auto"`` (the shipped checkpoint when this install has it) or None (no model).
    """
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; use cpu or cuda")
    if device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for but torch sees no CUDA device")
    ctx = Context(device=device)
    if model is None:
        ctx.model_detail = "started without a model (--no-model)"
        return ctx
    from kinemo.model.generator import DEFAULT_CHECKPOINT, Generator
    if model == "auto" and not DEFAULT_CHECKPOINT.exists():
        ctx.model_detail = f"the shipped checkpoint is missing ({DEFAULT_CHECKPOINT})"
        return ctx
    gen = Generator.load(None if model == "auto" else model, device=device)
    ctx.model = gen
    ctx.model_name = gen.name
    ctx.model_detail = f"{gen.extra.get('path', '')} (step {gen.extra.get('step', '?')})"
    return ctx


def warm_up(ctx: Context) -> None:
    """Run a small selftest once so the first request does not pay for imports
    and first-call set-up (the model's own warm-up belongs here too)."""
    selftest(ctx, {"frames": 64, "joints": 24, "chunk_frames": 32, "seed": 0, "return_positions": True},
             lambda *a: None, lambda: False)
