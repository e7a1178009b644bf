"""Model and training configurations: plain dataclasses, saved inside every checkpoint.

``CONFIGS`` names the ones ``kinemo train --config NAME`` knows. ``tiny``
trains in a few minutes on a laptop CPU for the test suite; ``small`` is the
shipped model.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class ModelConfig:
    width: int = 192
    layers: int = 4
    heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.0          # dropout costs ~20% of a CPU step and the data is plentiful for this size
    text_dim: int = 384          # MiniLM sentence embedding
    music_dim: int = 37          # per-frame music features (kinemo.data.music.MUSIC_DIM; 0: no music input)
    max_frames: int = 180        # longest window; longer motions are stitched from overlapping windows
    diffusion_steps: int = 1000


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    batch: int = 32
    min_frames: int = 40
    lr: float = 6e-4
    warmup: int = 200
    steps: int = 5500
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema: float = 0.999
    text_drop: float = 0.25      # classifier-free guidance: share of samples trained without text
    music_drop: float = 0.25     # share of dance windows trained without their music
    pseudo_beats: float = 0.5    # share of windows without music that get their own kinematic beats as a beat grid
    mirror: float = 0.5          # share of windows mirrored left/right (labels fixed too)
    # loss weights
    w_feat: float = 1.0
    # Geometric terms are kept small: at weight 1 their gradients (through FK) were ~10x the feature term's
    # and, measured over 150 steps, slowed learning of the features themselves (val loss 0.59 vs 0.44).
    w_vel: float = 0.3           # the dynamics head (velocities), VideoJAM-style joint prediction
    w_pos: float = 0.1
    w_fkvel: float = 0.1
    w_contact: float = 0.1
    w_skate: float = 0.05
    # Joint positions in the window frame, root path included, on windows whose root is keyed somewhere: the
    # root is 3 of 147 feature dims, yet its path dominates in-betweening's position error (L2P).
    w_gpos: float = 0.05
    t_top: float = 0.2           # share of samples trained at the last step, the one in-betweening samples from
    bf16: bool = True            # autocast where the hardware has bf16 (see objective.bf16_helps)
    seed: int = 0
    log_every: int = 50
    ckpt_every: int = 500
    val_every: int = 1000
    val_windows: int = 256


CONFIGS: dict[str, TrainConfig] = {
    "tiny": TrainConfig(model=ModelConfig(width=64, layers=2, heads=2, max_frames=90, dropout=0.0),
                        batch=16, min_frames=30, steps=200, warmup=20, lr=1e-3, ema=0.98,
                        log_every=25, ckpt_every=100, val_every=150, val_windows=32),
    "small": TrainConfig(),
}


def to_dict(cfg: TrainConfig) -> dict:
    return asdict(cfg)


def from_dict(d: dict) -> TrainConfig:
    """Rebuild a config saved in a checkpoint; unknown keys (from a newer version) are refused loudly."""
    mk = {f.name for f in fields(ModelConfig)}
    tk = {f.name for f in fields(TrainConfig)}
    extra = (set(d) - tk) | (set(d.get("model", {})) - mk)
    if extra:
        raise ValueError(f"checkpoint config has fields this version does not know: {sorted(extra)}")
    return TrainConfig(**{**d, "model": ModelConfig(**d["model"])})
