"""A prepared corpus packed small enough to travel to a training machine that cannot read ``../shared`` (a
rented GPU reached through a 64 MiB transfer, say), and unpacked there as a kinemo cache root.

Lossy on purpose, far below what the eye can tell: quaternions to 1/2048 (0.03 degrees), joint positions to
1 mm (they only place the pseudo-beats, 94% of which land on the same frame, measured on 300 takes), the root
to 0.1 mm, music features and text embeddings in float16. Each array is stored as integer second differences
per take (smooth motion makes them small), byte planes split, then LZMA: the train+val takes of corpus v2 pack
into 49 MB against the 414 MB of the whole corpus and its text embeddings.

    kinemo data pack OUT [--cache-dir ROOT] [--splits train,val]
    kinemo data unpack PACK ROOT      # then: kinemo train --cache-dir ROOT ...
"""
from __future__ import annotations

import json
import lzma
import shutil
from pathlib import Path

import numpy as np

from ..core.rotations import quat_normalize
from ..errors import UserError
from .cache import Corpus, corpus_dir
from .clip import CONTACT_JOINTS

SCALES = {"quats": 2048, "positions": 1000, "root": 10000}   # integer steps per unit
FORMAT = 1


def encode(a: np.ndarray, scale: float, lengths: np.ndarray) -> np.ndarray:
    """Quantise ``a`` ``(N, ...)`` to ``round(a * scale)`` and take second differences within each take
    (``lengths`` ``(K,)``, summing to N; a take's first two rows keep its value and first step).
    -> int64 ``(N, ...)``"""
    q = np.round(np.asarray(a, np.float64) * scale).astype(np.int64)
    out, o = np.empty_like(q), 0
    for n in lengths:
        seg = q[o:o + n]
        d = np.diff(seg, axis=0, prepend=np.zeros_like(seg[:1]))
        out[o:o + n] = np.diff(d, axis=0, prepend=np.zeros_like(d[:1]))
        o += n
    return out


def decode(e: np.ndarray, scale: float, lengths: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode` up to the quantisation step. -> float32, the shape of ``e``"""
    out, o = np.empty(e.shape, np.float32), 0
    for n in lengths:
        out[o:o + n] = np.cumsum(np.cumsum(e[o:o + n], axis=0), axis=0) / scale
        o += n
    return out


def _put(path: Path, x: np.ndarray) -> None:
    """Integer or float array -> byte planes (all low bytes, then the next...) through LZMA, with a header."""
    by = np.ascontiguousarray(x).view(np.uint8).reshape(-1, x.dtype.itemsize)
    path.with_suffix(".json").write_text(json.dumps({"shape": x.shape, "dtype": x.dtype.name}))
    path.with_suffix(".xz").write_bytes(lzma.compress(np.ascontiguousarray(by.T).tobytes(), preset=6))


def _get(path: Path) -> np.ndarray:
    h = json.loads(path.with_suffix(".json").read_text())
    dt = np.dtype(h["dtype"])
    by = np.frombuffer(lzma.decompress(path.with_suffix(".xz").read_bytes()), np.uint8).reshape(dt.itemsize, -1)
    return np.ascontiguousarray(by.T).view(dt).reshape(h["shape"])


def _narrow(e: np.ndarray) -> np.ndarray:
    for dt in (np.int16, np.int32):
        if np.abs(e).max(initial=0) <= np.iinfo(dt).max:
            return e.astype(dt)
    return e


def pack(cache_root: Path, out: Path, splits: tuple[str, ...] = ("train", "val")) -> int:
    """Write the corpus's takes of ``splits`` and their text embeddings into ``out`` (a new or empty folder);
    returns the pack's size in bytes."""
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} is not empty; pack into a new folder")
    corpus = Corpus(corpus_dir(cache_root))
    takes = [dict(t) for t in corpus.takes if t["split"] in splits]
    if not takes:
        raise UserError(f"the corpus has no takes in the splits {', '.join(splits)}")
    rows = np.concatenate([np.arange(t["start"], t["start"] + t["frames"]) for t in takes])
    lengths = np.array([t["frames"] for t in takes])
    start = 0
    for t in takes:
        t["start"], start = start, start + t["frames"]
    out.mkdir(parents=True, exist_ok=True)
    for name, scale in SCALES.items():
        _put(out / name, _narrow(encode(getattr(corpus, name)[rows], scale, lengths)))
    _put(out / "contacts", np.packbits(np.asarray(corpus.contacts[rows]), axis=-1))
    music = np.asarray(corpus.music_features[rows])
    heard = np.flatnonzero(np.abs(music).sum(1) > 0)
    _put(out / "music_rows", heard.astype(np.int32))
    _put(out / "music", music[heard].astype(np.float16))
    text = out / "text"
    text.mkdir(exist_ok=True)
    for f in sorted((cache_root / "text").glob("text-*.npz")):
        _put(text / f.stem, np.load(f)["emb"].astype(np.float16))
    for f in ("manifest.json", "report.json"):
        shutil.copy(corpus.path / f, out / f)
    (out / "pack.json").write_text(json.dumps({
        "format": FORMAT, "scales": SCALES, "lengths": lengths.tolist(), "music_dim": int(music.shape[1]),
        "index": {"fps": corpus.fps, "takes": takes}}))
    return sum(f.stat().st_size for f in out.rglob("*") if f.is_file())


def unpack(src: Path, cache_root: Path) -> Path:
    """Rebuild a pack as a cache root's corpus and text embeddings; returns the corpus folder."""
    meta_path = src / "pack.json"
    if not meta_path.exists():
        raise UserError(f"{src} is not a corpus pack (no pack.json): make one with 'kinemo data pack'")
    meta = json.loads(meta_path.read_text())
    if meta["format"] != FORMAT:
        raise UserError(f"{src} is a pack of format {meta['format']}; this kinemo reads format {FORMAT}")
    lengths = np.array(meta["lengths"])
    out = corpus_dir(cache_root)
    if out.exists():
        raise UserError(f"{out} already holds a corpus; unpack into another cache root")
    tmp = out.parent / f".{out.name}.unpacking"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, scale in meta["scales"].items():
        a = decode(_get(src / name).astype(np.int64), scale, lengths)
        np.save(tmp / f"{name}.npy", quat_normalize(a) if name == "quats" else a)
    n = int(lengths.sum())
    contacts = np.unpackbits(_get(src / "contacts"), axis=-1, count=len(CONTACT_JOINTS)).astype(bool)
    np.save(tmp / "contacts.npy", contacts)
    music = np.zeros((n, meta["music_dim"]), np.float32)
    music[_get(src / "music_rows")] = _get(src / "music")
    np.save(tmp / "music.npy", music)
    (tmp / "index.json").write_text(json.dumps(meta["index"]))
    for f in ("manifest.json", "report.json"):
        shutil.copy(src / f, tmp / f)
    text = cache_root / "text"
    text.mkdir(parents=True, exist_ok=True)
    for f in sorted((src / "text").glob("*.json")):
        dst = text / f"{f.stem}.npz"
        if not dst.exists():    # the name is the captions' hash: a file already there is the same, at full precision
            np.savez(dst, emb=_get(f.with_suffix("")).astype(np.float32))
    tmp.rename(out)
    return out

