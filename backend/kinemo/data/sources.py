"""Where takes come from: the Bandai archive (read straight from the .tar.xz), a folder
of BVH files (labels from optional sidecar .json), AMASS-style SMPL .npz files, dance-music
point clips (.npz with ``positions`` and ``music_offset_s`` beside their song; labels from the genre).

A source yields :class:`RawTake` items cheaply (the BVH text or a file path);
parsing and retargeting happen in the build's worker processes. Labels that
arrive later in an archive (sidecar .json, cfg lists) are collected by
:class:`LabelBook` and resolved once the source is exhausted.
"""
from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterator

from ..errors import UserError
from .music import AUDIO_SUFFIXES
from .labels import Labels, from_bandai_name, parse_sidecar, read_label_list

ARCHIVE_SUFFIXES = (".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar")


@dataclass
class RawTake:
    take_id: str
    kind: str            # "bvh", "amass" or "dance"
    origin: str          # file or archive member, for messages
    text: str | None = None
    path: str | None = None


@dataclass
class LabelBook:
    """Labels found while reading a source: from file names, sidecar JSON and cfg lists."""

    by_name: dict[str, Labels] = field(default_factory=dict)
    sidecars: dict[str, tuple[str, str, str]] = field(default_factory=dict)   # id -> (text, origin, cfg key)
    vocab: dict[str, dict[str, list[str]]] = field(default_factory=dict)      # cfg key -> {content|style: names}
    errors: dict[str, str] = field(default_factory=dict)

    def resolve(self) -> dict[str, Labels]:
        out = dict(self.by_name)
        for tid, (text, origin, key) in self.sidecars.items():
            v = self.vocab.get(key, {})
            try:
                out[tid] = parse_sidecar(text, v.get("content"), v.get("style"), origin)
            except ValueError as e:
                if tid not in self.by_name:   # Bandai-named files keep the labels in their name
                    self.errors[tid] = str(e)
        return out


def _cfg_key(path: PurePosixPath) -> str:
    """Sidecars in ``X/data/`` use label lists in ``X/cfg/``; the key is ``X``."""
    parent = path.parent
    return str(parent.parent if parent.name == "data" else parent)


def _take_id(rel: PurePosixPath) -> str:
    stem = rel.name.rsplit(".", 1)[0]
    return stem if from_bandai_name(stem) else str(rel.with_suffix(""))


def _read_cfg(name: str, text: str, key: str, book: LabelBook) -> None:
    kind = "content" if name == "content_label.txt" else "style"
    book.vocab.setdefault(key, {})[kind] = read_label_list(text)


def iter_archive(path: Path, book: LabelBook) -> Iterator[RawTake]:
    """Stream BVH takes out of a tar archive (no extraction to disk)."""
    try:
        tf = tarfile.open(path, "r|*")
    except (tarfile.TarError, OSError) as e:
        raise UserError(f"cannot open archive {path}: {e}") from None
    with tf:
        for m in tf:
            if not m.isfile():
                continue
            rel = PurePosixPath(m.name)
            name = rel.name
            low = name.lower()
            if low.endswith(".bvh") or low.endswith(".json") or name in ("content_label.txt", "style_label.txt"):
                data = tf.extractfile(m).read()
                text = data.decode("utf-8", errors="replace")
            else:
                continue
            if name in ("content_label.txt", "style_label.txt"):
                _read_cfg(name, text, str(rel.parent.parent), book)
            elif low.endswith(".json"):
                book.sidecars[_take_id(rel)] = (text, f"{path}:{m.name}", _cfg_key(rel))
            else:
                tid = _take_id(rel)
                lab = from_bandai_name(tid)
                if lab:
                    book.by_name[tid] = lab
                yield RawTake(tid, "bvh", f"{path}:{m.name}", text=text)


def iter_folder(root: Path, book: LabelBook) -> Iterator[RawTake]:
    """BVH and .npz files under a folder, in sorted order."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for p in files:
        rel = PurePosixPath(p.relative_to(root).as_posix())
        low = p.name.lower()
        if p.name in ("content_label.txt", "style_label.txt") and p.parent.name == "cfg":
            _read_cfg(p.name, p.read_text(encoding="utf-8", errors="replace"), str(rel.parent.parent), book)
        elif low.endswith(".json") and (p.with_suffix(".bvh").exists() or p.with_suffix(".npz").exists()):
            book.sidecars[_take_id(rel)] = (p.read_text(encoding="utf-8", errors="replace"), str(p), _cfg_key(rel))
    for p in files:
        rel = PurePosixPath(p.relative_to(root).as_posix())
        low = p.name.lower()
        if low.endswith(".bvh"):
            tid = _take_id(rel)
            lab = from_bandai_name(tid)
            if lab:
                book.by_name[tid] = lab
            yield RawTake(tid, "bvh", str(p), path=str(p))
        elif low.endswith(".npz"):
            yield _npz_take(_take_id(rel), p, book)


def _npz_take(tid: str, p: Path, book: LabelBook) -> RawTake:
    from .dance import dance_labels, is_dance_npz
    if is_dance_npz(p):
        book.by_name[tid] = dance_labels(p)
        return RawTake(tid, "dance", str(p), path=str(p))
    return RawTake(tid, "amass", str(p), path=str(p))


def iter_source(path: Path, book: LabelBook) -> Iterator[RawTake]:
    path = Path(path)
    if path.is_dir():
        yield from iter_folder(path, book)
    elif path.name.lower().endswith(ARCHIVE_SUFFIXES):
        yield from iter_archive(path, book)
    elif path.suffix.lower() in (".bvh", ".npz") and path.is_file():
        side = path.with_suffix(".json")
        if side.is_file():
            book.sidecars[path.stem] = (side.read_text(encoding="utf-8", errors="replace"), str(side), "")
        if path.suffix.lower() == ".bvh":
            yield RawTake(path.stem, "bvh", str(path), path=str(path))
        else:
            yield _npz_take(path.stem, path, book)
    elif not path.exists():
        raise UserError(f"motion source {path} does not exist")
    else:
        raise UserError(f"{path}: a motion source is a folder, a .tar(.xz) archive, a .bvh or a .npz file")


def _source_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file()
                      and p.suffix.lower() in (".bvh", ".npz", ".json", ".txt") + AUDIO_SUFFIXES)
    return [path]


def fingerprint(paths: list[Path]) -> str:
    """Hash of every source file's path, size and modification time."""
    h = hashlib.sha256()
    for src in paths:
        src = Path(src).resolve()
        if not src.exists():
            raise UserError(f"motion source {src} does not exist")
        for f in _source_files(src):
            st = f.stat()
            h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
