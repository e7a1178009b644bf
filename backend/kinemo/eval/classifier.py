"""Motion classifier (content and style) and feature extractor for the text bench.

Choice: a small temporal convolution network in torch (the ACTOR / MDM protocol
trains a recognition network on the dataset and uses its penultimate layer as
the feature space for FID and diversity; we do the same, smaller):

- input per frame (:func:`frame_features`, 147 numbers): joint positions
  relative to the root's floor point, turned into the body's heading frame,
  their velocities, and the root's floor velocity and yaw rate in that frame;
  so the features ignore where the take happens and which way it faces;
- three dilated 1-D convolutions (kernel 5, dilations 1, 2, 4: a receptive
  field of 29 frames), then the mean over time: a 128-number feature vector
  per clip of any length (clips shorter than 64 frames are padded by repeating
  their edge frames);
- two linear heads: content and style, trained jointly with cross-entropy on
  random 64-frame crops of the training split's takes.

One trained network ships in ``assets/eval/`` (:data:`SHIPPED`): it is used
whenever the corpus's training split is the one it was trained on
(:func:`training_key`), so the text bench's figures do not depend on where it
runs (two trained on different machines, seeded alike, read the same model's
content accuracy 0.11 apart). For any other corpus a network is trained and cached under
``<kinemo cache>/eval/``, keyed by the corpus manifest and :data:`VERSION`.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..core.smpl import FLOOR, UP

VERSION = 1
SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "eval" / "motion-classifier.pt"
L_HIP, R_HIP = 1, 2


@dataclass(frozen=True)
class ClassifierConfig:
    crop: int = 64
    width: int = 128
    steps: int = 400
    batch: int = 64
    lr: float = 2e-3
    seed: int = 0


def frame_features(positions: np.ndarray, fps: float = 30.0) -> np.ndarray:
    """``(T, 24, 3)`` world joint positions -> ``(T, 147)`` heading-invariant features."""
    p = np.asarray(positions, np.float64)
    across = p[:, L_HIP] - p[:, R_HIP]
    fwd = np.cross(across, UP)
    fwd[:, 1] = 0
    fwd /= np.maximum(np.linalg.norm(fwd, axis=-1, keepdims=True), 1e-8)
    yaw = np.arctan2(fwd[:, 0], fwd[:, 2])                               # (T,)
    c, s = np.cos(yaw), np.sin(yaw)
    # rotation by -yaw about Y, as a matrix per frame
    rot = np.zeros((len(p), 3, 3))
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = c, -s, 1, s, c
    floor = p[:, 0] * FLOOR
    local = np.einsum("tab,tjb->tja", rot, p - floor[:, None])          # (T, 24, 3)
    vel = np.zeros_like(local)
    root_v = np.zeros((len(p), 3))
    if len(p) > 1:
        vel[1:] = np.diff(local, axis=0) * fps
        vel[0] = vel[1]
        rv = np.einsum("tab,tb->ta", rot[1:], np.diff(floor, axis=0)) * fps
        dyaw = np.angle(np.exp(1j * np.diff(yaw))) * fps
        root_v[1:] = np.stack([rv[:, 0], rv[:, 2], dyaw], -1)
        root_v[0] = root_v[1]
    return np.concatenate([local.reshape(len(p), -1), vel.reshape(len(p), -1), root_v], -1).astype(np.float32)


def _pad(x: np.ndarray, length: int) -> np.ndarray:
    if len(x) >= length:
        return x
    before = (length - len(x)) // 2
    return np.pad(x, ((before, length - len(x) - before), (0, 0)), mode="edge")


def _network(d_in: int, width: int, n_content: int, n_style: int):
    import torch.nn as nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = nn.Sequential(
                nn.Conv1d(d_in, width, 5, padding=2), nn.ReLU(),
                nn.Conv1d(width, width, 5, padding=4, dilation=2), nn.ReLU(),
                nn.Conv1d(width, width, 5, padding=8, dilation=4), nn.ReLU())
            self.content = nn.Linear(width, n_content)
            self.style = nn.Linear(width, n_style)

        def forward(self, x):            # (B, T, D) -> features (B, W), logits
            f = self.trunk(x.transpose(1, 2)).mean(dim=2)
            return f, self.content(f), self.style(f)

    return Net()


class MotionClassifier:
    """A trained classifier: :meth:`predict` and :meth:`features` on lists of ``(T, 24, 3)`` positions."""

    def __init__(self, net, mean: np.ndarray, std: np.ndarray, contents: list[str], styles: list[str],
                 cfg: ClassifierConfig, info: dict):
        self.net, self.mean, self.std = net.eval(), mean, std
        self.contents, self.styles, self.cfg, self.info = contents, styles, cfg, info

    def _run(self, positions: list[np.ndarray]):
        import torch
        feats, c, s = [], [], []
        with torch.no_grad():
            for p in positions:
                x = (_pad(frame_features(p), self.cfg.crop) - self.mean) / self.std
                f, lc, ls = self.net(torch.from_numpy(x[None].astype(np.float32)))
                feats.append(f[0].numpy())
                c.append(int(lc.argmax()))
                s.append(int(ls.argmax()))
        return np.stack(feats), np.array(c), np.array(s)

    def features(self, positions: list[np.ndarray]) -> np.ndarray:
        """``(N, width)`` feature vectors (for FID and diversity)."""
        return self._run(positions)[0]

    def predict(self, positions: list[np.ndarray]) -> tuple[np.ndarray, list[str], list[str]]:
        """Features ``(N, width)``, content names, style names."""
        f, c, s = self._run(positions)
        return f, [self.contents[i] for i in c], [self.styles[i] for i in s]

    def save(self, path: Path) -> None:
        import torch
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"state": self.net.state_dict(), "mean": self.mean, "std": self.std, "contents": self.contents,
                    "styles": self.styles, "cfg": asdict(self.cfg), "info": self.info}, tmp)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "MotionClassifier":
        import torch
        d = torch.load(path, weights_only=False)
        cfg = ClassifierConfig(**d["cfg"])
        net = _network(len(d["mean"]), cfg.width, len(d["contents"]), len(d["styles"]))
        net.load_state_dict(d["state"])
        return cls(net, d["mean"], d["std"], d["contents"], d["styles"], cfg, d["info"])


def train(train_pos: list[np.ndarray], contents: list[str], styles: list[str],
          cfg: ClassifierConfig = ClassifierConfig(), log=print) -> MotionClassifier:
    """Fit on real clips: positions ``(T, 24, 3)`` each, with their content and style labels."""
    import torch
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    feats = [_pad(frame_features(p), cfg.crop) for p in train_pos]
    allf = np.concatenate(feats)
    mean, std = allf.mean(0), np.maximum(allf.std(0), 1e-3)
    cvocab, svocab = sorted(set(contents)), sorted(set(styles))
    yc = np.array([cvocab.index(c) for c in contents])
    ys = np.array([svocab.index(s) for s in styles])
    net = _network(allf.shape[1], cfg.width, len(cvocab), len(svocab))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.steps)
    ce = torch.nn.CrossEntropyLoss()
    t0 = time.time()
    for step in range(cfg.steps):
        idx = rng.integers(0, len(feats), cfg.batch)
        crops = []
        for i in idx:
            s = rng.integers(0, len(feats[i]) - cfg.crop + 1)
            crops.append(feats[i][s:s + cfg.crop])
        x = torch.from_numpy(((np.stack(crops) - mean) / std).astype(np.float32))
        _, lc, ls = net(x)
        loss = ce(lc, torch.from_numpy(yc[idx])) + ce(ls, torch.from_numpy(ys[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % 200 == 0:
            log(f"  classifier step {step + 1}/{cfg.steps}: loss {loss.item():.3f} ({time.time() - t0:.0f} s)")
    return MotionClassifier(net, mean, std, cvocab, svocab, cfg, {"train_clips": len(train_pos),
                                                                   "train_seconds": round(time.time() - t0, 1)})


def cache_path(corpus, cfg: ClassifierConfig, cache_root: Path | None = None) -> Path:
    from ..data.cache import default_cache_root
    key = json.loads((corpus.path / "manifest.json").read_text())["key"]
    h = hashlib.sha1(f"{key}|{VERSION}|{json.dumps(asdict(cfg), sort_keys=True)}".encode()).hexdigest()[:16]
    return Path(cache_root or default_cache_root()) / "eval" / f"motion-classifier-{h}.pt"


def training_key(corpus, cfg: ClassifierConfig) -> str:
    """What a classifier trained on ``corpus`` depends on, by content rather than by file dates (the manifest's
    key holds the sources' mtimes): the corpus pipeline's and this module's versions, ``cfg``, and the training
    split's take ids, frame counts and labels."""
    from ..data.cache import PIPELINE_VERSION
    takes = [[corpus.takes[i][k] for k in ("id", "frames", "content", "style")] for i in corpus.split("train")]
    text = json.dumps([PIPELINE_VERSION, VERSION, asdict(cfg), takes], sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def load_or_train(corpus, cfg: ClassifierConfig = ClassifierConfig(), cache_root: Path | None = None,
                  log=print, shipped: Path = SHIPPED) -> MotionClassifier:
    """The shipped classifier if it was trained on this corpus's training split, else the cached one for this
    corpus, else one trained on its training split (scored on val) and cached. ``info["origin"]`` says which."""
    key = training_key(corpus, cfg)
    if shipped.exists():
        clf = MotionClassifier.load(shipped)
        if clf.info.get("training_key") == key:
            clf.info["origin"] = "shipped"
            return clf
        log(f"the shipped classifier ({shipped.name}) was trained on another training split or config")
    path = cache_path(corpus, cfg, cache_root)
    if path.exists():
        clf = MotionClassifier.load(path)
        clf.info["origin"] = "cached"
        return clf
    log(f"training the motion classifier on the training split (cached at {path})")
    clf = train_on_corpus(corpus, cfg, log)
    clf.save(path)
    clf.info["origin"] = "trained"
    return clf


def train_on_corpus(corpus, cfg: ClassifierConfig = ClassifierConfig(), log=print) -> MotionClassifier:
    """A new classifier fit on ``corpus``'s training split, its ``info`` holding the :func:`training_key` and,
    when the corpus has a val split, its accuracy there."""
    tr = corpus.split("train")
    clf = train([np.asarray(corpus.clip(i).positions) for i in tr], [corpus.takes[i]["content"] for i in tr],
                [corpus.takes[i]["style"] for i in tr], cfg, log)
    clf.info["training_key"] = training_key(corpus, cfg)
    va = corpus.split("val")
    if va:
        _, c, s = clf.predict([np.asarray(corpus.clip(i).positions) for i in va])
        clf.info["val_content_accuracy"] = float(np.mean([a == corpus.takes[i]["content"] for a, i in zip(c, va)]))
        clf.info["val_style_accuracy"] = float(np.mean([a == corpus.takes[i]["style"] for a, i in zip(s, va)]))
        log(f"  val accuracy: content {clf.info['val_content_accuracy']:.3f}, "
            f"style {clf.info['val_style_accuracy']:.3f}")
    return clf
