"""``Generator``: the motion model behind one object, loaded once.

All motion in and out is on the canonical SMPL skeleton at 30 fps: local
rotations ``(T, 24, 4)`` (w-first) and the pelvis position ``(T, 3)`` in
metres, Y up. Keys are given as full arrays plus boolean masks; values that
are not keyed are ignored. Motions longer than the model's window are laid
out in windows (kinemo.model.stitch): keyed ones chained, each window
conditioned on the end of the one before (passed in as keys); free ones (text,
music, nothing keyed) stitched from independent windows whose joins are
in-betweened, so no window inherits another's drift.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..core import rotations as R
from ..core.footlock import plant_feet
from ..core.plausible import implausibility
from ..core.smpl import smpl_skeleton
from ..data.clip import clip_positions
from ..data.mirror import MIRROR_CONTACTS, MIRROR_JOINTS, mirror_motion
from ..errors import UserError
from .features import (FOOT_JOINTS, J, MASK_DIMS, anchor_frame, decode, encode, expand_mask, observe, quat_to_matrix,
                       slerp_turns)
from .keys import spread_correction
from .sampler import Conditions, SamplerConfig, sample
from .stitch import Window, chain_windows, place_after, plan_segments

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "assets" / "model" / "kinemo-small.pt"
Progress = Callable[[float], None]


def _meet_keys(raw: np.ndarray, key: np.ndarray, mask: np.ndarray, user: np.ndarray | None = None) -> np.ndarray:
    """Bend the prediction onto the keys without a pop (features ``(L, D)``, mask ``(L, 25)``).

    Runs of the user's keys (``user`` ``(L, 25)``, default: all of ``mask``) hand their slope on; the frames an
    earlier window made do not (carried across a long motion's joins, the root's slope had walks' planted
    feet slide: PFC 0.66 -> 1.30 under a walking caption).

    Rotations are corrected by a rotation (the key relative to the prediction, as a rotation vector
    spread over neighbouring frames), never by mixing 6D numbers, which can fold a large correction
    through a degenerate frame; the root is corrected additively.
    """
    L = len(raw)
    user = mask if user is None else user
    rq = R.sixd_to_quat(raw[:, 3:].reshape(L, J, 6))
    kq = R.sixd_to_quat(key[:, 3:].reshape(L, J, 6))
    jk = mask[:, 1:]
    delta = np.where(jk[..., None], R.quat_to_axis_angle(R.quat_mul(kq, R.quat_conjugate(rq))), 0.0)
    corr = spread_correction(delta.reshape(L, -1), np.repeat(jk, 3, 1),
                             runs=np.repeat(user[:, 1:], 3, 1)).reshape(L, J, 3)
    q = R.quat_mul(R.axis_angle_to_quat(corr), rq)
    root = raw[:, :3] + spread_correction(key[:, :3] - raw[:, :3], np.repeat(mask[:, :1], 3, 1),
                                          runs=np.repeat(user[:, :1], 3, 1))
    return np.concatenate([root, R.quat_to_sixd(q).reshape(L, -1)], 1)


def retry_seed(seed: int, attempt: int) -> int:
    """The seed of a window's ``attempt``-th redraw: fixed by the request's seed, far from the seeds its other
    windows use (``seed + i``)."""
    return (int(seed) + attempt * 0x9E3779B1) % 2 ** 63


class Cancelled(Exception):
    """The caller's ``cancelled()`` turned true during sampling."""


class Generator:
    fps = 30.0

    def __init__(self, model, cfg, extra: dict | None = None, sampler: SamplerConfig = SamplerConfig()):
        self.model = model.eval()
        self.cfg = cfg
        self.extra = extra or {}
        self.sampler = sampler
        self.skeleton = smpl_skeleton()
        self._rest_heights = self.skeleton.rest_global()[1][list(FOOT_JOINTS), 1]
        self.name = self.extra.get("name", "kinemo motion model")

    @classmethod
    def load(cls, path: str | Path | None = None, device: str = "cpu", **kw) -> "Generator":
        from ..train.checkpoint import load_model
        p = Path(path) if path else DEFAULT_CHECKPOINT
        if not p.exists():
            raise UserError(f"no motion model at {p}" + ("" if path else
                            " (the shipped checkpoint is missing from this install)"))
        model, cfg, extra = load_model(p, device)
        return cls(model, cfg, {**extra, "path": str(p)}, **kw)

    @property
    def window(self) -> int:
        return self.cfg.model.max_frames

    # --- public requests ----------------------------------------------------

    def inbetween(self, quats: np.ndarray, root: np.ndarray, keys: np.ndarray, *, root_keys: np.ndarray | None = None,
                  text: str | None = None, seed: int = 0, steps: int | None = None,
                  temperature: float | None = None, progress: Progress | None = None,
                  cancelled: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Fill the motion between keys. quats ``(T, 24, 4)``, root ``(T, 3)``, keys ``(T,)`` or ``(T, 24)`` bool,
        root_keys ``(T,)`` bool (default: frames with any joint keyed). Returns float64 quats, root; keyed
        values are returned exactly as given."""
        quats, root = np.asarray(quats, np.float64), np.asarray(root, np.float64)   # float32 -> 64 is exact
        mask = self._key_mask(quats, root, keys, root_keys)
        base = self.sampler.for_inbetweening()
        temperature = base.temperature if temperature is None else float(temperature)
        # averaging the mirror's answer with a sample's (temperature > 0) would blur it
        return self._run(quats, root, mask, text, None, seed, steps, progress, cancelled, temperature=temperature,
                         base=base, mirror=self.sampler.inbetween_mirror and text is None and temperature == 0)

    def generate(self, text: str, frames: int, *, seed: int = 0, steps: int | None = None,
                 guidance: float | None = None, temperature: float | None = None, progress: Progress | None = None,
                 cancelled: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Motion from a sentence: quats ``(frames, 24, 4)``, root ``(frames, 3)``.
        guidance: classifier-free guidance weight on the text (default: the sampler's)."""
        from .text import check_text
        check_text(text)
        frames = int(frames)
        if frames < 1:
            raise UserError(f"frames must be at least 1; got {frames}")
        q = np.tile(np.array([1.0, 0, 0, 0]), (frames, J, 1))
        return self._run(q, np.zeros((frames, 3)), np.zeros((frames, MASK_DIMS), bool), text, None, seed, steps,
                         progress, cancelled, guidance, temperature=temperature)

    def dance(self, music: np.ndarray, *, text: str | None = None, quats: np.ndarray | None = None,
              root: np.ndarray | None = None, keys: np.ndarray | None = None, seed: int = 0,
              steps: int | None = None, beat_guidance: float | None = None, temperature: float | None = None,
              progress: Progress | None = None,
              cancelled: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A dance to per-frame music features ``(T, MUSIC_DIM)`` at 30 fps (kinemo.data.music), optionally
        steered by text and with keyed poses (quats/root ``(T, ...)`` with keys ``(T,)`` or ``(T, 24)``).
        beat_guidance: weight of the sampling-time pull of movement accents onto the beats (default: the
        sampler's; 0 = off)."""
        if not self.cfg.model.music_dim:
            raise UserError("this model was trained without music; it cannot dance")
        music = np.asarray(music, np.float32)
        if music.ndim != 2 or music.shape[1] != self.cfg.model.music_dim or len(music) < 1:
            raise UserError(f"music features must be (T, {self.cfg.model.music_dim}); got {music.shape}")
        if not np.isfinite(music).all():
            raise UserError("music features contain NaN or infinite values")
        T = len(music)
        if text is not None:
            from .text import check_text
            check_text(text)
        if keys is None:
            q = np.tile(np.array([1.0, 0, 0, 0]), (T, J, 1))
            return self._run(q, np.zeros((T, 3)), np.zeros((T, MASK_DIMS), bool), text, music, seed, steps,
                             progress, cancelled, beat_guidance=beat_guidance,
                             temperature=temperature)
        if quats is None or root is None:
            raise UserError("keyed poses need quats (T, 24, 4) and root (T, 3) with the keys")
        quats, root = np.asarray(quats, np.float64), np.asarray(root, np.float64)
        mask = self._key_mask(quats, root, keys, None)
        if len(mask) != T:
            raise UserError(f"keyed poses cover {len(mask)} frames but the music {T}; give one pose per music frame")
        return self._run(quats, root, mask, text, music, seed, steps, progress, cancelled, beat_guidance=beat_guidance,
                         temperature=temperature)

    # --- the engine ---------------------------------------------------------

    def _key_mask(self, quats: np.ndarray, root: np.ndarray, keys: np.ndarray, root_keys: np.ndarray | None
                  ) -> np.ndarray:
        """Validate keyed poses and return the ``(T, 25)`` key mask (root position first)."""
        T = quats.shape[0] if quats.ndim == 3 else -1
        if quats.shape != (T, J, 4) or root.shape != (T, 3) or T < 1:
            raise UserError(f"in-betweening needs quats (T, 24, 4) and root (T, 3); got {quats.shape} and {root.shape}")
        keys = np.asarray(keys, bool)
        if keys.shape == (T,):
            keys = np.repeat(keys[:, None], J, 1)
        if keys.shape != (T, J):
            raise UserError(f"keys must be (T,) or (T, 24) booleans for T = {T}; got {keys.shape}")
        rk = keys.any(1) if root_keys is None else np.asarray(root_keys, bool)
        if rk.shape != (T,):
            raise UserError(f"root_keys must be ({T},) booleans; got {rk.shape}")
        if not keys.any() and not rk.any():
            raise UserError("no keys given: key at least one frame (or use generate)")
        bad = (~np.isfinite(quats).all(-1) & keys) | (np.linalg.norm(quats, axis=-1) < 1e-6) & keys
        if bad.any():
            f, j = np.argwhere(bad)[0]
            raise UserError(f"keyed rotation at frame {f}, joint {self.skeleton.names[j]} is not a valid quaternion")
        bad_root = ~np.isfinite(root).all(-1) & rk
        if bad_root.any():
            raise UserError(f"keyed root position at frame {int(np.argmax(bad_root))} is not finite")
        return np.concatenate([rk[:, None], keys], 1)

    def _run(self, given_q, given_r, mask, text, music, seed, steps, progress, cancelled, guidance=None,
             beat_guidance=None, temperature=None, base: SamplerConfig | None = None, mirror=False):
        """Sample under ``base`` settings (default: the generator's), with the per-request ones that are not None."""
        quats = R.quat_normalize(np.where(mask[:, 1:, None], given_q, np.array([1.0, 0, 0, 0])))
        root = np.where(mask[:, :1], given_r, 0.0)
        text_emb = None
        if text is not None:
            from .text import embed
            text_emb = torch.from_numpy(embed([text]))
        cfg = base or self.sampler
        cfg = cfg if steps is None else replace(cfg, steps=int(steps))
        given = {"text_guidance": guidance, "beat_guidance": beat_guidance, "temperature": temperature}
        cfg = replace(cfg, **{k: float(v) for k, v in given.items() if v is not None})
        if cfg.steps < 1:
            raise UserError("steps must be at least 1")
        if cfg.retries < 0:
            raise UserError(f"retries must be at least 0; got {cfg.retries}")
        if not cfg.guidance_floor >= 0:
            raise UserError(f"guidance_floor must be at least 0; got {cfg.guidance_floor}")
        if not 0.0 <= cfg.temperature <= 2.0:
            raise UserError(f"temperature must be in [0, 2]; got {cfg.temperature}")
        if min(cfg.overlap, cfg.join, cfg.join_context, cfg.join_span) < 1:
            raise UserError(f"overlap, join, join_context and join_span must be at least 1 frame; got "
                            f"{cfg.overlap}, {cfg.join}, {cfg.join_context} and {cfg.join_span}")
        if not mask.any() and len(quats) > self.window:
            out_q, out_r = self._stitch(quats, root, text_emb, music, seed, cfg, progress, cancelled)
        else:
            out_q, out_r = self._chain(quats, root, mask, text_emb, music, seed, cfg, progress, cancelled, mirror)
        # the user's keys, bit-exact (as given, not renormalised)
        out_q[mask[:, 1:]] = given_q[mask[:, 1:]]
        out_r[mask[:, 0]] = given_r[mask[:, 0]]
        return out_q, out_r

    def _chain(self, quats, root, mask, text_emb, music, seed, cfg, progress, cancelled, mirror=False):
        """Keyed motion of any length in overlapping windows, each continuing the one before (the frames an
        earlier window made, up to its last key, are keys of the next: :func:`chain_windows`); feet
        planted over the whole. quats ``(T, 24, 4)``, root ``(T, 3)``, mask ``(T, 25)`` -> quats, root."""
        T = len(quats)
        out_q, out_r = quats.copy(), root.copy()
        out_c = np.zeros((T, 4))
        done = np.zeros(T, bool)
        wins = chain_windows(mask, self.window, min(cfg.overlap, self.window // 3))
        for w_i, (w, keep) in enumerate(wins):
            m = mask[w.start:w.stop].copy()
            q, r = out_q[w.start:w.stop].copy(), out_r[w.start:w.stop].copy()
            prev = done[w.start:w.stop]
            user = m.copy()
            m[prev] = True                       # what earlier windows made is context here
            report = None if progress is None else (
                lambda f, i=w_i: progress((i + f) / len(wins)))
            mu = None if music is None else torch.from_numpy(np.asarray(music[w.start:w.stop], np.float32)[None])
            if mirror:
                q, r, c = self._mirror_average(q, r, m, user, text_emb, mu, seed + w_i, cfg, report, cancelled)
            elif not m.any() and cfg.temperature > 0 and cfg.retries > 0:
                q, r, c = self._plausible_window(q, r, m, text_emb, mu, seed + w_i, cfg, report, cancelled)
            else:
                q, r, c = self._window(q, r, m, user, text_emb, mu, seed + w_i, cfg, report, cancelled)
            out_q[w.start:w.stop], out_r[w.start:w.stop], out_c[w.start:w.stop] = q, r, c
            done[w.start:keep] = True
        if cfg.foot_lock:
            out_q = plant_feet(self.skeleton.parents, self.skeleton.offsets, out_q, out_r, self._rest_heights,
                               self.fps, keyed=mask[:, 1:], prob=out_c,
                               cfg=cfg.lock)
        return out_q, out_r

    def free_windows(self, frames: int, cfg: SamplerConfig | None = None) -> list[Window]:
        """The independent windows a free motion of ``frames`` frames is stitched from (one when it fits a
        window); the frames between neighbours are its in-betweened joins."""
        cfg = self.sampler if cfg is None else cfg
        return plan_segments(frames, self.window, min(cfg.join, self.window // 3))

    def _stitch(self, quats, root, text_emb, music, seed, cfg, progress, cancelled):
        """Free motion longer than a window: independent windows (seeds ``seed + i``), each placed to carry on
        from the one before, with the ``join`` frames between them in-betweened from ``join_context`` frames on
        both sides (seeds after the windows'). See kinemo.model.stitch."""
        T, ctx = len(quats), cfg.join_context
        segs = self.free_windows(T, cfg)
        gap = segs[1].start - segs[0].stop
        tasks = 2 * len(segs) - 1
        out_q, out_r = quats.copy(), root.copy()

        def part(i):
            return None if progress is None else (lambda f: progress((i + f) / tasks))

        # a join is an in-betweening query: sampled as in-betweening is (its steps, temperature and smoothing)
        join_cfg = cfg.for_inbetweening()

        def run(a, b, m, s, task, c=cfg):
            mu = None if music is None else music[a:b]
            return self._chain(out_q[a:b], out_r[a:b], m, text_emb, mu, s, c, part(task), cancelled)

        for i, w in enumerate(segs):
            q, r = run(w.start, w.stop, np.zeros((w.stop - w.start, MASK_DIMS), bool), seed + i, i)
            if i:
                q, r = place_after(out_q[:segs[i - 1].stop], out_r[:segs[i - 1].stop], q, r, gap, cfg.join_span)
            out_q[w.start:w.stop], out_r[w.start:w.stop] = q, r
        for i, (w0, w1) in enumerate(zip(segs, segs[1:])):
            a, b = max(w0.start, w0.stop - ctx), min(w1.stop, w1.start + ctx)
            m = np.zeros((b - a, MASK_DIMS), bool)
            m[:w0.stop - a] = m[w1.start - a:] = True
            q, r = run(a, b, m, seed + len(segs) + i, len(segs) + i, join_cfg)
            out_q[w0.stop:w1.start], out_r[w0.stop:w1.start] = q[w0.stop - a:w1.start - a], r[w0.stop - a:w1.start - a]
        return out_q, out_r

    def _plausible_window(self, quats, root, mask, text_emb, music, seed, cfg, report, cancelled):
        """A free window drawn again (new seeds) while a body could not perform it (kinemo.core.plausible), at most
        ``cfg.retries`` more times; the least implausible draw is returned, the first one that passes."""
        best, best_score = None, np.inf
        for attempt in range(cfg.retries + 1):
            s = seed if attempt == 0 else retry_seed(seed, attempt)
            out = self._window(quats, root, mask, mask, text_emb, music, s, cfg, report if attempt == 0 else None,
                               cancelled)
            score = implausibility(clip_positions(self.skeleton, *out[:2]), self.fps, cfg.plausible)
            if score < best_score:
                best, best_score = out, score
            if score <= 1.0:
                break
        return best

    def _mirror_average(self, quats, root, mask, user, text_emb, music, seed, cfg, report, cancelled):
        """One window answered as itself and as its left/right mirror, the mirror's answer reflected back and the
        two averaged: quats ``(L, 24, 4)``, root ``(L, 3)``, contacts ``(L, 4)``. Keys stay exact (both meet them).
        Only for requests without text or music (a caption may name a side)."""
        joints = np.concatenate([[0], MIRROR_JOINTS + 1])            # mask columns: root first, then joints
        half = [None if report is None else (lambda f, k=k: report((k + f) / 2)) for k in (0, 1)]
        q1, r1, c1 = self._window(quats, root, mask, user, text_emb, music, seed, cfg, half[0], cancelled)
        q2, r2, c2 = self._window(*mirror_motion(quats, root), mask[:, joints], user[:, joints], text_emb, music,
                                  seed, cfg, half[1], cancelled)
        (q2, r2), c2 = mirror_motion(q2, r2), c2[:, MIRROR_CONTACTS]
        q2 = np.where((q1 * q2).sum(-1, keepdims=True) < 0, -q2, q2)
        return R.quat_normalize(q1 + q2), (r1 + r2) / 2, (c1 + c2) / 2

    @torch.no_grad()
    def _window(self, quats, root, mask, user, text_emb, music, seed, cfg, report, cancelled):
        model = self.model
        dev = model.alpha_bar.device
        q = torch.from_numpy(quats[None]).float().to(dev)
        r = torch.from_numpy(root[None]).float().to(dev)
        m = torch.from_numpy(mask[None]).to(dev)
        rot = quat_to_matrix(q)
        anchor = int(np.argmax(mask.any(1))) if mask.any() else 0
        yaw, origin = anchor_frame(rot, r, torch.tensor([anchor], device=dev))
        if not mask[anchor, 1]:
            yaw = torch.zeros(1, device=dev)     # no facing given: the model's own canonical facing (+Z)
        if not mask[anchor, 0]:
            # no root keyed at the anchor: measure keyed roots from the first one's ground point (the model saw
            # positions near its window origin), or from the world origin when no root is keyed at all
            first = int(np.argmax(mask[:, 0])) if mask[:, 0].any() else None
            origin = torch.zeros(1, 3, device=dev) if first is None else r[:, first].clone()
            origin[:, 1] = 0
        feats = encode(rot, r, yaw, origin)
        fm = expand_mask(m)
        obs = observe(model.norm(feats), fm)
        if cfg.slerp_turns:
            obs = slerp_turns(obs, feats, fm, model.feat_mean, model.feat_std)
        cond = Conditions(obs, m, None if text_emb is None else text_emb.to(dev),
                          None if music is None else music.to(dev))
        last = None
        for step in sample(model, cond, cfg, seed):
            last = step
            if report:
                report(step.index / step.total)
            if cancelled is not None and cancelled():
                raise Cancelled()
        out = _meet_keys(model.denorm(last.raw)[0].double().cpu().numpy(), feats[0].double().cpu().numpy(),
                         mask, user)
        rot_w, root_w = decode(torch.from_numpy(out[None]).float(), yaw.cpu(), origin.cpu())
        qo = R.matrix_to_quat(rot_w[0].double().numpy())
        qo = R.quat_continuous(qo, axis=0)
        return qo, root_w[0].double().numpy(), last.contact[0].double().cpu().numpy()
