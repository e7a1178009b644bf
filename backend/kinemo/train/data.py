"""Training windows from the corpus: random crops, mirroring, masks and captions, batched as tensors.

The whole split is held in memory (the full corpus is ~170 MB of float32) so
a batch is a gather, not a disk read. Each batch has one window length, drawn
per batch, so no padding is needed and the model learns every length.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.cache import Corpus
from ..data.captions import captions
from ..data.labels import Labels, mirror_labels
from ..data.mirror import MIRROR_CONTACTS, MIRROR_JOINTS
from ..data.music import MUSIC_DIM, kinematic_beats, pseudo_music
from ..model.masks import anchor_of, random_mask
from ..model.text import TEXT_DIM, embed_cached


@dataclass
class Batch:
    quats: torch.Tensor      # (B, L, 24, 4)
    root: torch.Tensor       # (B, L, 3)
    contacts: torch.Tensor   # (B, L, 4) float
    mask: torch.Tensor       # (B, L, 25) bool
    anchor: torch.Tensor     # (B,) long
    text: torch.Tensor       # (B, TEXT_DIM = 384)
    text_on: torch.Tensor    # (B,) bool
    random_yaw: torch.Tensor  # (B,) bool: anchor pelvis not keyed -> heading unknown, drawn at random
    music: torch.Tensor      # (B, L, MUSIC_DIM): the song, or a beat grid from the motion's own kinematic beats
    music_on: torch.Tensor   # (B,) bool


class Windows:
    """Random training windows of one split."""

    def __init__(self, corpus: Corpus, split: str, cache_dir, text_drop: float = 0.25, mirror: float = 0.5,
                 music_drop: float = 0.25, pseudo_beats: float = 0.5, songs: int = -1, free_facing: bool = True):
        self.ids = corpus.split(split)
        if not self.ids:
            raise ValueError(f"the corpus has no takes in split {split!r}")
        takes = [corpus.takes[i] for i in self.ids]
        self.starts = np.array([t["start"] for t in takes])
        self.frames = np.array([t["frames"] for t in takes])
        lo, hi = self.starts.min(), (self.starts + self.frames).max()
        self.offset = lo
        self.quats = np.ascontiguousarray(corpus.quats[lo:hi])
        self.root = np.ascontiguousarray(corpus.root[lo:hi])
        self.contacts = np.ascontiguousarray(corpus.contacts[lo:hi])
        caps = [t["captions"] for t in takes]
        mcaps = [captions(t["id"], mirror_labels(Labels(t["content"], t["style"])), len(t["captions"]) or 1)
                 for t in takes]
        table = embed_cached([c for cs in caps + mcaps for c in cs], cache_dir)
        self.text = [np.stack([table[c] for c in cs]) if cs else None for cs in caps]
        self.text_mirror = [np.stack([table[c] for c in cs]) if cs else None for cs in mcaps]
        self.text_drop, self.mirror = text_drop, mirror
        self.music_drop, self.pseudo_beats = music_drop, pseudo_beats
        self.free_facing = free_facing
        # per frame: the song where there is one, else a beat grid from the take's own kinematic beats
        self.music = np.zeros((len(self.quats), MUSIC_DIM), np.float32)
        self.has_music = np.zeros(len(takes), bool)
        songs_of = {k: corpus.music(i) for k, i in enumerate(self.ids)}
        keep = _spread(sorted((k for k, song in songs_of.items() if song is not None), key=lambda k: takes[k]["id"]),
                       songs)
        for k, t in enumerate(takes):
            s0 = t["start"] - lo
            if k in keep:
                self.music[s0:s0 + t["frames"]] = songs_of[k]
                self.has_music[k] = True
            else:
                pos = np.asarray(corpus.positions[t["start"]:t["start"] + t["frames"]])
                beats = kinematic_beats(pos, corpus.fps)
                self.music[s0:s0 + t["frames"]] = pseudo_music(beats, t["frames"], corpus.fps)

    def longest(self) -> int:
        return int(self.frames.max())

    def sample(self, B: int, L: int, rng: np.random.Generator, mask_family: str | None = None) -> Batch:
        """``B`` windows of ``L`` frames, uniform over all valid crops of takes at least ``L`` long."""
        room = np.maximum(self.frames - L + 1, 0).astype(np.float64)
        if room.sum() == 0:
            raise ValueError(f"no take has {L} frames")
        takes = rng.choice(len(room), size=B, p=room / room.sum())
        first = self.starts[takes] - self.offset + (rng.random(B) * room[takes]).astype(int)
        idx = first[:, None] + np.arange(L)
        q, r, c = self.quats[idx].copy(), self.root[idx].copy(), self.contacts[idx].astype(np.float32)
        flip = rng.random(B) < self.mirror
        q[flip] = q[flip][:, :, MIRROR_JOINTS] * np.array([1, 1, -1, -1], np.float32)
        r[flip] = r[flip] * np.array([-1, 1, 1], np.float32)
        c[flip] = c[flip][:, :, MIRROR_CONTACTS]
        masks = np.stack([random_mask(L, rng, mask_family) for _ in range(B)])
        anchor = np.array([anchor_of(m) for m in masks])
        text = np.zeros((B, TEXT_DIM), np.float32)
        on = rng.random(B) >= self.text_drop
        for b, (k, f) in enumerate(zip(takes, flip)):
            table = (self.text_mirror if f else self.text)[k]
            if table is None:
                on[b] = False
            else:
                text[b] = table[rng.integers(len(table))]
        # A keyed window whose anchor pelvis is not keyed (a root path, hands) has no known facing: sampling keeps
        # the world's axes and the keys decide which way the body faces, so it is trained in every heading. A free
        # window has nothing to agree with: it is trained in its anchor's facing (+Z), as sampling lays it out.
        random_yaw = ~masks[np.arange(B), anchor, 1]
        if self.free_facing:
            random_yaw &= masks.any((1, 2))
        music = self.music[idx]
        music_on = np.where(self.has_music[takes], rng.random(B) >= self.music_drop, rng.random(B) < self.pseudo_beats)
        return Batch(torch.from_numpy(q), torch.from_numpy(r), torch.from_numpy(c), torch.from_numpy(masks),
                     torch.from_numpy(anchor), torch.from_numpy(text), torch.from_numpy(on),
                     torch.from_numpy(random_yaw), torch.from_numpy(music), torch.from_numpy(music_on))


def _spread(items: list, n: int) -> set:
    """``n`` of ``items`` evenly spaced through the list (all of them when ``n`` is negative or too large): take ids
    sort by dance style, so the first ``n`` would all be one style."""
    if n < 0 or n >= len(items):
        return set(items)
    if n == 0:
        return set()
    return {items[i] for i in np.unique(np.round(np.linspace(0, len(items) - 1, n)).astype(int))}
