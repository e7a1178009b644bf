"""Build the corpus once into a versioned cache directory, and load it in seconds.

Layout of ``<cache root>/corpus/v<PIPELINE_VERSION>/``::

    quats.npy      (N, 24, 4) float32   all kept takes' frames, concatenated
    root.npy       (N, 3)     float32
    positions.npy  (N, 24, 3) float32
    contacts.npy   (N, 4)     bool
    music.npy      (N, MUSIC_DIM) float32  per-frame music features (kinemo.data.music); zeros where
                   a take has no song
    index.json     per take: id, origin, start, frames, content, style, split, captions, eval_captions,
                   has_music
    report.json    what was dropped and why, timings
    manifest.json  pipeline version + source fingerprint (a mismatch triggers a rebuild)

Arrays are memory-mapped on load; take ``i`` is ``[start, start + frames)``.
The build writes to a temporary sibling and renames it into place, so a
crashed build never leaves a half corpus behind.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..errors import UserError
from . import splits as S
from .captions import captions
from .clip import Clip
from .gates import GateConfig
from .labels import Labels
from .dance import DanceConfig
from .music import MUSIC_DIM
from .pipeline import Result, process_take
from .sources import LabelBook, RawTake, fingerprint, iter_source

PIPELINE_VERSION = 2   # 2: dance-music takes, music.npy, has_music
ARRAYS = ("quats", "root", "positions", "contacts")
N_CAPTIONS = 5
N_EVAL_CAPTIONS = 3


def default_cache_root() -> Path:
    """``$KINEMO_CACHE``, else ``$XDG_CACHE_HOME/kinemo``, else ``~/.cache/kinemo``."""
    env = os.environ.get("KINEMO_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "kinemo"


def corpus_dir(cache_root: Path | None = None) -> Path:
    return Path(cache_root or default_cache_root()) / "corpus" / f"v{PIPELINE_VERSION}"


def build_key(sources: list[Path], gates: GateConfig, dance: DanceConfig = DanceConfig()) -> str:
    return (f"v{PIPELINE_VERSION}:{fingerprint(sources)}:{json.dumps(asdict(gates), sort_keys=True)}:"
            f"{json.dumps(asdict(dance), sort_keys=True)}")


def is_current(out: Path, key: str) -> bool:
    try:
        return json.loads((out / "manifest.json").read_text())["key"] == key
    except (OSError, ValueError, KeyError):
        return False


@dataclass
class BuildReport:
    kept: int = 0
    dropped: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    workers: int = 1
    frames: int = 0


def _raw_takes(sources: list[Path], book: LabelBook) -> Iterator[RawTake]:
    for src in sources:
        yield from iter_source(Path(src), book)


def _own_jit_cache(slots) -> None:
    """Worker initialiser: take a numba cache folder no other live worker uses (before librosa is imported)."""
    os.environ["NUMBA_CACHE_DIR"] = slots.get()


def worker_pool(workers: int, jit_root: Path) -> ProcessPoolExecutor:
    """Spawned build workers, each with its own numba cache folder ``jit_root/worker-K``."""
    ctx = mp.get_context("spawn")
    slots = ctx.Queue()
    for k in range(workers):
        slots.put(str(jit_root / f"worker-{k}"))
    return ProcessPoolExecutor(workers, mp_context=ctx, initializer=_own_jit_cache, initargs=(slots,))


def _results(sources, book, workers: int, gates: GateConfig, dance: DanceConfig, jit_root: Path
             ) -> Iterator[Result]:
    work = partial(process_take, gates=gates, dance=dance)
    if workers <= 1:
        yield from map(work, _raw_takes(sources, book))
        return
    # Each worker keeps its own numba cache folder (jit_root/worker-K, reused by the next build). Two processes
    # compiling librosa's cached gufuncs at once can write the two halves of one gufunc's cache with
    # mismatched symbol names (numba issue #10128): from an empty cache 3 two-worker builds of 3 segfaulted in
    # estimate_tuning (numba 0.67.0 and 0.68.0 alike), and the corrupt cache then crashed one-process builds
    # and any later librosa use too, until deleted. Spawned, not forked, so no worker inherits this process's
    # state. An executor, unlike multiprocessing.Pool, fails when a worker dies instead of waiting forever.
    with worker_pool(workers, jit_root) as pool:
        try:
            yield from pool.map(work, _raw_takes(sources, book), chunksize=4)
        except BrokenProcessPool as e:
            raise UserError(f"a corpus worker process died ({e}); run again with --workers 1 to see where") from e


def build(sources: list[Path], cache_root: Path | None = None, *, workers: int = 2, force: bool = False,
          gates: GateConfig = GateConfig(), dance: DanceConfig = DanceConfig(), split_dir: Path = S.SPLIT_DIR,
          log: Callable[[str], None] = print) -> Path:
    """Build the corpus from ``sources`` unless an up-to-date one exists. Returns its directory."""
    if not sources:
        raise UserError("no motion sources given")
    out = corpus_dir(cache_root)
    key = build_key(sources, gates, dance)
    if not force and is_current(out, key):
        log(f"corpus up to date: {out}")
        return out
    if out.exists() and not (out / "manifest.json").exists():
        raise UserError(f"{out} exists but is not a kinemo corpus; not touching it")
    t0 = time.time()
    book = LabelBook()
    kept: list[Result] = []
    report = BuildReport(workers=workers)
    seen: set[str] = set()
    jit_root = Path(cache_root or default_cache_root()) / "numba"
    for i, res in enumerate(_results(sources, book, workers, gates, dance, jit_root), 1):
        if res.take_id in seen:
            res.clip, res.reason = None, "duplicate take id (an earlier source has a take with this id)"
        seen.add(res.take_id)
        if res.clip is None:
            report.dropped.append({"take": res.take_id, "origin": res.origin, "reason": res.reason})
        else:
            kept.append(res)
        if i % 250 == 0:
            log(f"  {i} takes, {len(kept)} kept, {time.time() - t0:.0f} s")
    labels = book.resolve()
    for tid, err in book.errors.items():
        log(f"warning: labels of {tid}: {err}")
    fixed = S.read_splits(split_dir)
    report.kept, report.seconds = len(kept), round(time.time() - t0, 1)
    report.frames = sum(r.clip.num_frames for r in kept)
    _write(out, key, sources, kept, labels, fixed, report)
    log(f"corpus built in {report.seconds:.0f} s: {report.kept} takes kept "
        f"({report.frames / 30 / 3600:.2f} h), {len(report.dropped)} dropped -> {out}")
    return out


def _write(out: Path, key: str, sources, kept: list[Result], labels: dict[str, Labels],
           fixed: dict[str, str], report: BuildReport) -> None:
    tmp = out.parent / f".{out.name}.building-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    total = sum(r.clip.num_frames for r in kept)
    arrays = {"quats": np.lib.format.open_memmap(tmp / "quats.npy", "w+", np.float32, (total, 24, 4)),
              "root": np.lib.format.open_memmap(tmp / "root.npy", "w+", np.float32, (total, 3)),
              "positions": np.lib.format.open_memmap(tmp / "positions.npy", "w+", np.float32, (total, 24, 3)),
              "contacts": np.lib.format.open_memmap(tmp / "contacts.npy", "w+", np.bool_, (total, 4)),
              "music": np.lib.format.open_memmap(tmp / "music.npy", "w+", np.float32, (total, MUSIC_DIM))}
    index, start = [], 0
    for r in kept:
        n = r.clip.num_frames
        for name in ARRAYS:
            arrays[name][start:start + n] = getattr(r.clip, name)
        arrays["music"][start:start + n] = r.music if r.music is not None else 0.0
        lab = labels.get(r.take_id, Labels())
        index.append({"id": r.take_id, "origin": r.origin, "start": start, "frames": n,
                      "source_fps": r.source_fps, "content": lab.content, "style": lab.style,
                      "split": S.split_of(r.take_id, fixed),
                      "captions": captions(r.take_id, lab, N_CAPTIONS),
                      "eval_captions": captions(r.take_id, lab, N_EVAL_CAPTIONS, held_out=True),
                      "has_music": r.music is not None})
        start += n
    for a in arrays.values():
        a.flush()
    del arrays
    (tmp / "index.json").write_text(json.dumps({"fps": 30.0, "takes": index}, indent=0))
    (tmp / "report.json").write_text(json.dumps(asdict(report), indent=1))
    (tmp / "manifest.json").write_text(json.dumps(
        {"key": key, "pipeline_version": PIPELINE_VERSION, "sources": [str(Path(s).resolve()) for s in sources],
         "built": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1))
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
        shutil.rmtree(old)
    tmp.rename(out)


class Corpus:
    """A built corpus: memory-mapped frame arrays plus the take index."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if not (self.path / "manifest.json").exists():
            raise UserError(f"no corpus at {self.path}; run 'kinemo data prepare' first")
        meta = json.loads((self.path / "index.json").read_text())
        self.fps: float = meta["fps"]
        self.takes: list[dict] = meta["takes"]
        self._by_id = {t["id"]: i for i, t in enumerate(self.takes)}
        for name in ARRAYS:
            setattr(self, name, np.load(self.path / f"{name}.npy", mmap_mode="r"))
        self.music_features = np.load(self.path / "music.npy", mmap_mode="r")   # (N, MUSIC_DIM)
        self.report: dict = json.loads((self.path / "report.json").read_text())

    def __len__(self) -> int:
        return len(self.takes)

    def find(self, take_id: str) -> int:
        if take_id not in self._by_id:
            near = [t for t in self._by_id if take_id in t][:5]
            raise UserError(f"no take {take_id!r} in the corpus" + (f"; did you mean {', '.join(near)}?"
                                                                    if near else ""))
        return self._by_id[take_id]

    def clip(self, i: int | str) -> Clip:
        t = self.takes[self.find(i) if isinstance(i, str) else i]
        s = slice(t["start"], t["start"] + t["frames"])
        return Clip(*(np.asarray(getattr(self, n)[s]) for n in ARRAYS), fps=self.fps)

    def music(self, i: int | str) -> np.ndarray | None:
        """``(T, MUSIC_DIM)`` float32 music features of take ``i`` per frame, or None without a song."""
        t = self.takes[self.find(i) if isinstance(i, str) else i]
        if not t.get("has_music"):
            return None
        return np.asarray(self.music_features[t["start"]:t["start"] + t["frames"]])

    def split(self, name: str) -> list[int]:
        return [i for i, t in enumerate(self.takes) if t["split"] == name]


def load(cache_root: Path | None = None) -> Corpus:
    return Corpus(corpus_dir(cache_root))
