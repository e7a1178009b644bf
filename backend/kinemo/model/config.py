"""Model and training configurations: plain dataclasses, saved inside every checkpoint.

``CONFIGS`` names the ones ``kinemo train --config NAME`` knows. ``tiny``
trains in a few minutes on a laptop CPU for the test suite; ``small`` is the
shipped model.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Iterable


@dataclass(frozen=True)
class ModelConfig:
    width: int = 192
    layers: int = 4
    heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.0          # dropout costs ~20% of a CPU step and the data is plentiful for this size
    text_dim: int = 384          # MiniLM sentence embedding
    music_dim: int = 37          # per-frame music features (kinemo.data.music.MUSIC_DIM; 0: no music input)
    max_frames: int = 180        # longest window; longer motions are laid out in windows (model.stitch)
    diffusion_steps: int = 1000
    # Per-block scale and shift of every frame token from the global condition (diffusion step + text), as
    # DiT's adaptive LayerNorm does; zero-initialised, so a model grown with it (`kinemo train --grow-film`)
    # starts out computing exactly what it did. Without it the condition only enters as a prefix token and
    # one bias added at the input, which the blocks' LayerNorms partly wash out.
    film: bool = False
    # Rank of the in-betweening adapter (kinemo.model.adapter): low-rank deltas on every weight matrix of the
    # denoiser, used by keyed in-betweening queries only and trained with the shared weights frozen
    # (`kinemo train --grow-adapter RANK`), so in-betweening gains capacity without costing text; 0 = none.
    adapter_rank: int = 0


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
    # How many dance takes keep their song (N spread evenly through the takes sorted by id; -1: all). The others
    # are trained as motion without music, pseudo-beats included: the scarce-song ablation
    # (docs/benchmarks/beat-training).
    songs: int = -1
    mirror: float = 0.5          # share of windows mirrored left/right (labels fixed too)
    # Free windows (nothing keyed: text, music, nothing) are seen in their anchor's own facing, as sampling lays
    # them out (+Z). False: turned by a random yaw, as keyed windows whose anchor pelvis is not keyed are (runs
    # 1-16 of the shipped model trained so): the mean of a free window then travels nowhere and faces no way,
    # and the one-step prediction for "A person walks forward." moved 0.2 m in 6 s (docs/model_history.md, text).
    free_facing: bool = True
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
    # Measure gpos per joint and axis in units of the real positions' spread over the batch's keyed-root windows
    # (as in-betweening's L2P does with the training split's spread) instead of in 10 cm: a pelvis 1 cm too high
    # then counts as much as one 17 cm too far forward (window-frame spread 3.8 cm up, 65 cm forward), which is
    # what L2P and the eye see; in 10 cm units the travel's errors drowned the height's.
    gpos_spread: bool = False
    # The beat objectives on the prediction of windows with a beat grid (train.objective); 0 = off. At 10 (the
    # small config) the term is about a quarter of the loss early on, and the network learns to put its accents
    # on the beats without sampling-time guidance (docs/model_history.md, beat training).
    w_beat: float = 0.0
    t_top: float = 0.2           # share of samples trained at the last step, the one in-betweening samples from
    # In-betweening samples that step at temperature 0, i.e. from x_t = 0, which plain training never shows the
    # network (a 147-d Gaussian draw is nowhere near 0): this share of the last-step samples gets exactly that.
    top_clean: float = 0.0
    # Share of batches spent on in-betweening's own query alone: context + target or sparse whole-pose keys, every
    # sample at the last step from x_t = 0, in windows of at most ``focus_frames``. In the plain mixture that query
    # is about 5% of the samples (inbetween/sparse masks x t_top x top_clean); 0 = off.
    focus: float = 0.0
    focus_frames: int = 90
    # Share of focus batches keyed as an animator blocks: single whole poses every 3-61 frames (masks "every"),
    # in windows of any length up to the longest, as a long keyed shot's chained windows ask it. The other focus
    # masks key at most 9 frames of a 90-frame window; 0 = off (and the random stream of runs before it).
    focus_every: float = 0.0
    # Share of batches whose windows continue a motion: a keyed prefix and nothing after (masks "continue"), the
    # query a chained window asks (kinemo.model.stitch; free long motions were chained before they were
    # stitched); the other families always key something later in the window, so the shipped weights never
    # trained it. 0 = off (and the random stream of runs made before it). 1,445 CPU steps at 0.3 did not reduce
    # the drift of chained 60 s from text into crossed legs (docs/model_history.md, long motions): kept for a
    # longer run.
    continuation: float = 0.0
    # Train the in-betweening adapter (ModelConfig.adapter_rank) alone: the shared weights frozen, every batch
    # in-betweening's own query (as focus = 1), so whatever else the model does stays exactly as it was.
    train_adapter: bool = False
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
    "small": TrainConfig(w_beat=10.0),
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


_BOOLS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def typed_fields(cls, pairs: Iterable[tuple[str, str]], exclude: tuple[str, ...] = ()) -> dict:
    """``[("steps", "30"), ("bf16", "false")]`` -> ``{"steps": 30, "bf16": False}``, each value converted to the
    type of the dataclass ``cls``'s field of that name (int, float or bool). Raises ValueError naming the problem:
    an unknown field (or one in ``exclude``), or a value its field's type cannot take."""
    types = {f.name: str(f.type) for f in fields(cls) if f.name not in exclude}
    out = {}
    for name, value in pairs:
        if name not in types:
            raise ValueError(f"unknown field {name!r}; known: {', '.join(sorted(types))}")
        kind = types[name]
        if kind == "bool":
            if value.lower() not in _BOOLS:
                raise ValueError(f"{name}={value!r}: expected one of {', '.join(_BOOLS)}")
            out[name] = _BOOLS[value.lower()]
        elif kind in ("int", "float"):
            try:
                out[name] = int(value) if kind == "int" else float(value)
            except ValueError:
                raise ValueError(f"{name}={value!r}: not a valid {kind}") from None
        else:
            raise ValueError(f"field {name!r} ({kind}) cannot be set from text")
    return out


def with_overrides(obj, pairs: Iterable[tuple[str, str]]):
    """A copy of the frozen dataclass ``obj`` with text settings applied, typed as :func:`typed_fields` types
    them. A dotted name reaches into a nested dataclass field: ``[("steps", "1"), ("lock.key_radius", "4")]``.
    Raises ValueError naming the problem (an unknown field, a bad value, a name that is not a group)."""
    pairs = list(pairs)
    groups: dict[str, list[tuple[str, str]]] = {}
    for name, value in pairs:
        if "." in name:
            head, rest = name.split(".", 1)
            groups.setdefault(head, []).append((rest, value))
    changes = typed_fields(type(obj), [(n, v) for n, v in pairs if "." not in n])
    known = [f.name for f in fields(obj) if is_dataclass(getattr(obj, f.name))]
    for head, sub in groups.items():
        if head not in known:
            raise ValueError(f"{head!r} is not a group of settings; groups: {', '.join(known) or 'none'}")
        try:
            changes[head] = with_overrides(getattr(obj, head), sub)
        except ValueError as e:
            raise ValueError(f"{head}: {e}") from None
    return replace(obj, **changes)
