"""The progressive sampler: DDIM from noise to motion, yielding after every step.

Per step: predict x0 (with classifier-free guidance on text when asked, which
leaves no joint's rotation degenerate), optionally nudge it so its own
velocities agree with the jointly predicted dynamics and planted feet stay
still (the VideoJAM-style "inner guidance", here with joint velocities as the
motion signal) and, for music, so that the movement's accents fall on the
beats; on the last step, low-pass it in time (the small network leaves
frame-to-frame noise); impute the keyed features, and take a DDIM step
(stochastic with ``eta`` when the temperature draws noise, else
deterministic). A seed fixes every noise draw, so a request is reproducible.
Nothing here knows about datasets or rigs.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator

import torch

from ..core.footlock import FootLockConfig
from ..core.plausible import PlausibilityConfig
from .beats import beat_loss
from .diffusion import ddim_step, sampling_steps
from .features import FOOT_JOINTS, expand_mask, guide_rotations, smooth_time, velocities
from .motion_model import MotionModel


@dataclass
class Conditions:
    obs: torch.Tensor                  # (B, L, D) normalised key features, interpolated between keys (observe)
    mask: torch.Tensor                 # (B, L, 25) bool
    text: torch.Tensor | None = None   # (B, 384)
    music: torch.Tensor | None = None  # (B, L, M)


@dataclass(frozen=True)
class SamplerConfig:
    steps: int = 10                    # generation and dance
    # In-betweening is judged against the one motion between the keys: a single step from the mean (temperature
    # 0) is the model's best estimate of it. Measured on the val split (100 windows, 30-frame gaps, step 8,952):
    # L2P 1.02x interpolation at 1 step, 1.09x at 2, 1.31x at 10; seam jerk 2.7x, 5.1x, 5.9x.
    inbetween_steps: int = 1
    # Dynamics guidance pays over many steps; on the single in-betweening step it adds jitter (val split, step
    # 8,952: seam jerk 2.5-2.9x interpolation with it at 0.3, 1.3-1.4x without; skating 1.7x vs 1.06x at 5 frames).
    inbetween_dynamics_guidance: float = 0.0
    # see smooth. Val split (60 windows, step 20,500), L2P / seam jerk as multiples of interpolation's at 5, 15,
    # 30, 45 frames: off 1.06/1.70, 0.90/1.46, 0.91/1.46, 0.93/1.48; at 1 frame 0.86/1.14, 0.86/0.96, 0.90/1.02,
    # 0.93/0.98; at 2 frames 0.82/1.00, 0.85/0.91, 0.90/0.93, 0.93/0.91. Again for the step-73,555 model (120
    # windows), L2P as a multiple of interpolation's and seam jerk against real motion's 350/347/342/346:
    # 2 frames 0.610/0.584/0.511/0.522, jerk 350/281/303/302; 1.75: 0.606/0.562/0.501/0.515, 350/291/308/305;
    # 1.5: 0.605/0.543/0.493/0.509, 355/309/320/314; 1: 0.617/0.524/0.486/0.503, 395/374/371/367. The better
    # network needs less low-pass; 1.75 is the least that keeps seam jerk at or below real at every length.
    inbetween_smooth: float = 1.75
    # The in-betweening low-pass is the Gaussian's twicing (smooth_twice): the one-step mean motion's noise sits at
    # the seams, and the plain Gaussian also damped the step cycle between them. Val split (120 windows, step-95,000
    # model), L2P at 5/15/30/45 frames, seam jerk against real motion's 350/347/342/346 m/s^3: Gaussian 1.75
    # 0.385/0.948/1.303/1.613, jerk 344/302/313/314; twiced 1.75 0.380/0.876/1.253/1.570, 347/331/326/328
    # (1.5: 0.382/0.871/1.252/1.567, 361/356/345/349, over real; 2: 0.379/0.889/1.260/1.576); L2Q 0.553 -> 0.547
    # at 30 frames, skating level (0.160 -> 0.148), jerk inside the gap 210 -> 226 (real 329).
    inbetween_smooth_twice: bool = True
    # In-betweening at temperature 0 without text also runs on the left/right mirror of the request and averages
    # the two answers (the mirror's reflected back): two estimates of the one true motion from a network that is
    # only roughly mirror-symmetric. The result is exactly symmetric; costs a second pass. Val split (120
    # windows, step-54,468 model), L2P at 5/15/30/45 frames 0.406/1.132/1.760/2.126 -> 0.402/1.127/1.734/2.092,
    # L2Q lower at every length (0.603 -> 0.596 at 30), seam jerk within 3%.
    inbetween_mirror: bool = True
    # In-betweening (and a long motion's joins) runs with the model's in-betweening adapter where it has one
    # (kinemo.model.adapter; `MODEL@inbetween_adapter=0` in the benches measures the model without it).
    inbetween_adapter: bool = True
    adapter: bool = False              # set by for_inbetweening: these settings' predictions use the adapter
    text_guidance: float = 2.5         # classifier-free guidance weight on text (1 = plain conditional)
    # Share of the guided x0 scaled back to the conditional x0's spread (guidance rescale, Lin et al. 2023), for
    # stronger guidance without its overshoot. All 156 val captions, step-84,000 model, seeds 0 / 1 (content /
    # style accuracy, FID, root / body speed m/s; real val 0.56 / 0.33): off 0.60 / 0.38 and 0.53 / 0.34, FID
    # 2174 / 1575, 0.28 / 0.15 and 0.26 / 0.19; 0.7 at guidance 2.5: 0.53 / 0.37 and 0.54 / 0.34, FID 1749 /
    # 1387, 0.20 / 0.16; 0.5 at 3.5: 0.61 / 0.33 and 0.48 / 0.30, FID 1831 / 1524; 0.7 at 5: 0.56 / 0.32 and
    # 0.49 / 0.31, FID 1579 / 1396, 0.38 / 0.22; 0.7 at 7.5: 0.55 / 0.28 and 0.51 / 0.31, FID 1646 / 1495,
    # 0.53 / 0.24. Stronger guidance restores travel (root speed near real at 7.5) but costs style: off.
    guidance_rescale: float = 0.0
    # Classifier-free guidance re-mixes a joint from proper rotations where its mixed 6D column is shorter than this
    # (features.guide_rotations; inf: every joint, 0: never). Mixed raw, a shortened column went through zero and
    # a limb flung (86,980 m/s^3). Free 6 s windows, 156 val captions, seeds 0 and 1, no redraws
    # (tools/plausible_windows.py): largest joint jerk over 5,000 m/s^3 in 9.6% of windows at 0, none at inf;
    # text bench on the val captions, seeds 0 / 1 (content / style accuracy, FID; paraphrases' content, FID):
    # 0: 0.51 / 0.41 and 0.47 / 0.40, FID 1916 / 1787; 0.50 and 0.51, FID 2198 / 1731. inf: 0.48 / 0.42 and
    # 0.56 / 0.39, FID 2120 / 1677; 0.46 and 0.47, FID 2297 / 1913 (test captions 0.49 / 0.44 against 0's
    # 0.54 / 0.49). 0.5: 0.51 / 0.41 and 0.49 / 0.40, FID 2022 / 1633; 0.46 and 0.49, FID 2240 / 1816.
    guidance_floor: float = 0.5
    # Share of the dynamics residual removed per step (0 = off). On 100 test captions (step-95,000 model, 10 steps,
    # eta 1, last-step smoothing) mean joint jerk is 127 m/s^3 without it, 108-112 with it over 3 seeds (real
    # 94.4), foot skating 0.22 against 0.17-0.21, accuracy and FID level (docs/benchmarks/text-no-dynamics-guidance).
    dynamics_guidance: float = 0.3
    dynamics_iters: int = 1
    skate_weight: float = 1.0
    # share of the missing beat accents carved per iteration (0 = off); only music requests use it. Chosen on
    # the val dances (3 songs, step-20,500 model, smooth 1): BAS 0.419 vs chance 0.241 at weight 1.0 with 3
    # iterations, 0.360 vs 0.220 with 2, 0.322 vs 0.213 with 1; weight 1.5 with 2: 0.411 vs 0.243. The
    # step-23,000 model learnt the beats in training (w_beat), so fewer iterations lose little: 0.572 vs 0.301
    # with 3, 0.549 vs 0.292 with 2, 0.520 vs 0.288 with 1. Each iteration costs ~1 s of a 60 s dance on 2
    # cores (3 iterations measured 9.5-10.8 s, over the 10 s target's margin): 2.
    beat_guidance: float = 1.0
    beat_iters: int = 2
    # weight of the between-beats term: the speed rises after each beat and falls into the next, so the only
    # accents left are on the beats (without it the model's own accents between beats survive guidance).
    # Val dances (3 songs, step-20,500 model, 1 iteration, no smoothing): BAS 0.455 vs chance 0.258 at 1.0,
    # 0.436 vs 0.290 at 0.
    beat_between: float = 1.0
    foot_lock: bool = True             # contact-aware clean-up of the result (kinemo.core.footlock)
    # its settings (`MODEL@lock.NAME=VALUE` in the benches): `lock.clearance=0` turns the swing lift off;
    # `lock.key_radius` and `lock.lift_radius` trade skating near keys against seam jerk (docs/model.md)
    lock: FootLockConfig = FootLockConfig()
    # keys turning a joint by more than 90 degrees are interpolated along the sphere for the network
    # (features.slerp_turns); off: the linear 6D interpolation the shipped weights were trained on throughout
    slerp_turns: bool = True
    # frames: Gaussian low-pass of each step's x0 prediction, after guidance (0 = off). The network leaves
    # frame-to-frame noise in its samples: val dances' mean joint jerk 700 m/s^3 without, 71 at 1 frame (real
    # dances 67), text 1047 -> 56 (real val motion 86); at 1.5 frames 38 and 30, smoother than real. Applied
    # after guidance: before it, the guidance steps bring the noise back (dance jerk 313).
    smooth: float = 1.0
    # True: every step's x0 is low-passed, and each step's smoothing compounds on the next (text motion came out
    # smoother than real: mean joint jerk 54 m/s^3 against 89, limbs slowed). False: only the last step's.
    # All 156 val captions, eta 1, mean over seeds 0-2 (content / style accuracy, FID; paraphrases; body speed
    # m/s, real val 0.33; jerk): last only 0.54 / 0.40, FID 1371; 0.49 / 0.40, FID 1426; 0.16; 102, against every
    # step's 0.53 / 0.40, FID 1414; 0.48 / 0.39, FID 1481; 0.14; 54. Val dances (3 songs): BAS 0.711 vs chance
    # 0.359 against 0.688 vs 0.348, jerk 85 against 56 (real 67). One-step in-betweening is the same either way.
    smooth_each_step: bool = False
    # True: the low-pass is the Gaussian's twicing (features.twiced_kernel), which keeps more slow motion; see
    # inbetween_smooth_twice. Text keeps the plain Gaussian: twiced at 1 frame (156 val captions, seed 0, content /
    # style accuracy, FID, body speed m/s, jerk m/s^3; real 0.33, 89) it read 0.54 / 0.40, 1386, 0.19, 162 against
    # 0.56 / 0.40, 1389, 0.17, 104: the limbs a little faster, with jitter, and nothing recognised better; at 1.5
    # frames 0.56 / 0.40, 1383, 0.17, 70 (docs/model_history.md, stop 45).
    smooth_twice: bool = False
    # Scale of the starting noise: 0 gives the model's mean motion (smooth, closest to the truth on average), 1 the
    # full variety of samples. Text and dance want variety; in-betweening is judged against the one true motion
    # between the keys, where the mean motion is best and smoothest. Measured on held-out takes: noise the network
    # has not learned to remove shows as jitter. All 156 val captions, step-90,000 model, seed 0 (content / style
    # accuracy, paraphrases' content accuracy, FID, root speed m/s; real val 0.97 / 0.97, 0.56 m/s): 0.6 gave
    # 0.63 / 0.36, 0.50, FID 1983, 0.26; 1.0 gave 0.61 / 0.35, 0.49, FID 1988, 0.32; with text_guidance 4, 0.6 gave
    # 0.56 / 0.37, 0.47, FID 2125, 0.41 and 1.0 gave 0.58 / 0.35, 0.47, FID 2079, 0.49. More noise or guidance
    # restores travel, not recognisability.
    temperature: float = 0.6           # text and dance requests
    # Stochastic DDIM: share of DDPM's fresh noise drawn per step (0 = deterministic DDIM), at the temperature's
    # scale; at temperature 0 (in-betweening) nothing is drawn. All 156 val captions, step-95,000 model, mean
    # over seeds 0-2 [range] (content / style accuracy, FID; paraphrases; root / body speed m/s, real val 0.56 /
    # 0.33): eta 1 gave 0.53 / 0.40, FID 1414 [1386-1436]; 0.48 / 0.39, FID 1481 [1461-1509]; 0.43 / 0.14,
    # against eta 0's 0.50 / 0.40, FID 1727 [1525-2022]; 0.47 / 0.36, FID 1926 [1723-2240]; 0.44 / 0.13.
    # (An earlier one- and two-seed reading had kept it off for its style accuracy: that was the seed noise.)
    eta: float = 1.0
    inbetween_temperature: float = 0.0
    # A free window (nothing keyed, temperature > 0) that no body would perform, a limb flung or the knees
    # crossed (kinemo.core.plausible), is drawn again with fresh noise up to `retries` times; the least
    # implausible draw is kept. A window that passes first time is exactly what it was without retries.
    retries: int = 3
    plausible: PlausibilityConfig = PlausibilityConfig()
    # Motions longer than a window (kinemo.model.stitch). Keyed ones are chained: each window shares `overlap`
    # frames with the one before. Free ones are stitched: independent windows `join` frames apart, each join
    # in-betweened from `join_context` frames on either side (in-betweening training keys at most 10).
    overlap: int = 30
    join: int = 30
    join_context: int = 10
    # Each stitched window is turned and placed to carry on the heading and ground velocity of the one before,
    # read from lines fitted over `join_span` frames either side of the join (kinemo.model.stitch.place_after).
    # Long enough to average out the pelvis's swing with each step; 20 s of "A person walks forward." / "Someone
    # walks forward casually.", seeds 0-15, net heading change 9.3 / 9.6 degrees at the mean (60 frames: 10.9 /
    # 13.5, 120: 13.1 / 11.5) against 18.7 / 16.4 when rates were read off the 10 end frames (docs/model.md).
    join_span: int = 90

    def for_inbetweening(self) -> SamplerConfig:
        """These settings as in-betweening samples (a long motion's joins too, which are in-betweening queries):
        its own steps, temperature, low-pass and dynamics guidance in place of text's and dance's."""
        return replace(self, steps=self.inbetween_steps, temperature=self.inbetween_temperature,
                       smooth=self.inbetween_smooth, smooth_twice=self.inbetween_smooth_twice,
                       dynamics_guidance=self.inbetween_dynamics_guidance, adapter=self.inbetween_adapter)


@dataclass
class Step:
    index: int           # 1-based
    total: int
    x0: torch.Tensor     # (B, L, D) normalised, keys imputed
    raw: torch.Tensor    # (B, L, D) the network's (guided) prediction before imputation
    contact: torch.Tensor  # (B, L, 4) probabilities


def _predict(model: MotionModel, x, t, c: Conditions, w: float, rescale: float = 0.0, floor: float = 0.0,
             adapter: bool = False):
    B, dev = x.shape[0], x.device
    tt = torch.full((B,), t, dtype=torch.long, device=dev)
    if c.text is None or w == 1.0:
        on = None if c.text is None else torch.ones(B, device=dev)
        return model.predict(x, tt, c.obs, c.mask, c.text, on, c.music,
                             None if c.music is None else torch.ones(B, device=dev), adapter=adapter)
    two = lambda a: None if a is None else torch.cat([a, a])
    on = torch.cat([torch.ones(B, device=dev), torch.zeros(B, device=dev)])
    mon = None if c.music is None else torch.ones(2 * B, device=dev)
    x0, vel, contact = model.predict(two(x), two(tt), two(c.obs), two(c.mask), two(c.text), on, two(c.music), mon,
                                     adapter=adapter)
    mix = lambda a: a[B:] + w * (a[:B] - a[B:])
    g = guide_rotations(x0[B:], x0[:B], w, model.feat_mean, model.feat_std, floor)
    if rescale > 0:     # guidance rescale (Lin et al. 2023): the guided x0 keeps the conditional one's spread
        sd = lambda a: a.std(dim=(1, 2), keepdim=True).clamp_min(1e-6)
        g = rescale * g * sd(x0[:B]) / sd(g) + (1 - rescale) * g
    return g, mix(vel), contact[:B]


def _guided(model: MotionModel, x0: torch.Tensor, weight: float, loss_fn) -> torch.Tensor:
    """One Gauss-Newton step on x0 against a per-sample residual ``loss_fn(positions (B, L, 24, 3)) -> (B,)``.

    Along the gradient g, the step ``-weight * E / |g|^2 * g`` removes the share ``weight`` of the residual E
    to first order: a prediction that already agrees is left alone, and the step never amplifies noise the
    way a fixed-size normalised step would.
    """
    with torch.enable_grad():
        x = x0.detach().requires_grad_(True)
        loss = loss_fn(model.kin(model.denorm(x)))
        (g,) = torch.autograd.grad(loss.sum(), x)
    scale = loss.detach() / g.pow(2).sum((1, 2)).clamp_min(1e-12)
    return x0 - weight * scale[:, None, None] * g


def _dynamics_nudge(model: MotionModel, x0: torch.Tensor, vel: torch.Tensor, contact: torch.Tensor,
                    cfg: SamplerConfig) -> torch.Tensor:
    """Make FK velocities match the jointly predicted dynamics and keep planted feet from sliding."""
    p_contact = contact.sigmoid()[..., None]

    def loss(pos):
        v = velocities(pos)
        foot_v = v[:, :, list(FOOT_JOINTS)][..., [0, 2]]
        return ((v - vel) ** 2).sum((1, 2, 3)) + cfg.skate_weight * (p_contact * foot_v ** 2).sum((1, 2, 3))
    for _ in range(cfg.dynamics_iters):
        x0 = _guided(model, x0, cfg.dynamics_guidance, loss)
    return x0


def _beat_nudge(model: MotionModel, x0: torch.Tensor, music: torch.Tensor, cfg: SamplerConfig) -> torch.Tensor:
    """Carve a movement accent (a dip in speed) on the music's beat frames and smooth away those between them."""
    for _ in range(cfg.beat_iters):
        x0 = _guided(model, x0, cfg.beat_guidance, lambda pos: beat_loss(pos, music, cfg.beat_between))
    return x0


@torch.no_grad()
def sample(model: MotionModel, cond: Conditions, cfg: SamplerConfig, seed: int = 0) -> Iterator[Step]:
    """Yield a :class:`Step` after each denoising step; the last one's ``x0`` is the motion."""
    B, L = cond.mask.shape[:2]
    gen = torch.Generator().manual_seed(int(seed))
    fm = expand_mask(cond.mask)
    # every draw is made on the CPU so a seed gives the same motion on every device
    shape = (B, L, cond.obs.shape[-1])

    def draw() -> torch.Tensor:
        return (torch.randn(shape, generator=gen) * cfg.temperature).to(cond.obs.device)
    x = draw()
    ts = sampling_steps(model.cfg.diffusion_steps, cfg.steps)
    for i, t in enumerate(ts):
        x0, vel, contact = _predict(model, x, t, cond, cfg.text_guidance, cfg.guidance_rescale, cfg.guidance_floor,
                                    cfg.adapter)
        if cfg.dynamics_guidance > 0:
            x0 = _dynamics_nudge(model, x0, vel, contact, cfg)
        if cfg.beat_guidance > 0 and cond.music is not None:
            x0 = _beat_nudge(model, x0, cond.music, cfg)
        if cfg.smooth > 0 and (cfg.smooth_each_step or i + 1 == len(ts)):
            x0 = smooth_time(x0, cfg.smooth, cfg.smooth_twice)
        raw = x0
        x0 = torch.where(fm, cond.obs, x0)
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        # at temperature 0 (the mean motion) there is no noise to re-draw: plain DDIM, as for in-betweening
        noise = draw() if cfg.eta > 0 and cfg.temperature > 0 and t_prev >= 0 else None
        x = ddim_step(x, x0, t, t_prev, model.alpha_bar, cfg.eta, noise)
        yield Step(i + 1, len(ts), x0, raw, contact.sigmoid())
