"""BVH read and write.

Semantics follow the de-facto standard (and Blender's importer): a joint's
position channels *replace* its OFFSET as its translation in the parent frame;
rotation channels listed as ``Zrotation Xrotation Yrotation`` mean
``R = R_Z @ R_X @ R_Y``. Any channel order, position channels on any joint,
End Sites and any frame time are kept, so ``read(write(x)) == x``.

Units: BVH has none. ``read_bvh(..., scale="auto")`` converts centimetre files
(rest height above 3 units) to metres and records the factor, which
``write_bvh`` undoes by default.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from . import rotations as R
from .skeleton import Motion, Skeleton

_POS = ("Xposition", "Yposition", "Zposition")
_ROT = ("Xrotation", "Yrotation", "Zrotation")
_VALID = set(_POS) | set(_ROT)


class BvhError(ValueError):
    """A malformed BVH file; the message names the file and line."""


@dataclass(eq=False)
class Bvh:
    """A BVH file in memory. ``scale`` multiplies file units into metres."""

    skeleton: Skeleton
    motion: Motion
    channels: list[tuple[str, ...]] = field(default_factory=list)
    scale: float = 1.0

    def rotation_order(self, j: int) -> str:
        order = "".join(c[0] for c in self.channels[j] if c in _ROT)
        return order if len(order) == 3 else "ZXY"


def _default_channels(skel: Skeleton) -> list[tuple[str, ...]]:
    rot = ("Zrotation", "Xrotation", "Yrotation")
    return [(_POS + rot) if p < 0 else rot for p in skel.parents]


class _Lines:
    """Token lines with 1-based line numbers, for error messages."""

    def __init__(self, text: str, path: str):
        self.path = path
        self.items = [(i + 1, ln.split()) for i, ln in enumerate(text.splitlines()) if ln.strip()]
        self.pos = 0

    def err(self, msg: str, lineno: int | None = None) -> BvhError:
        if lineno is None:
            lineno = self.items[min(self.pos, len(self.items) - 1)][0] if self.items else 1
        return BvhError(f"{self.path}:{lineno}: {msg}")

    def next(self, what: str) -> tuple[int, list[str]]:
        if self.pos >= len(self.items):
            raise self.err(f"unexpected end of file, expected {what}")
        item = self.items[self.pos]
        self.pos += 1
        return item

    def floats(self, toks: list[str], n: int, lineno: int, what: str) -> list[float]:
        if len(toks) != n:
            raise self.err(f"{what} needs {n} numbers, got {len(toks)}", lineno)
        try:
            vals = [float(t) for t in toks]
        except ValueError:
            raise self.err(f"{what} has a non-number: {' '.join(toks)}", lineno) from None
        if not all(np.isfinite(vals)):
            raise self.err(f"{what} has a NaN or infinite value", lineno)
        return vals


def parse_bvh(text: str, path: str = "<bvh>", scale: float | str = "auto") -> Bvh:
    """Parse BVH text. ``scale``: factor to metres, or ``"auto"`` (cm when tall)."""
    L = _Lines(text, path)
    ln, toks = L.next("HIERARCHY")
    if toks != ["HIERARCHY"]:
        raise L.err("file does not start with HIERARCHY", ln)
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[str, ...]] = []
    end_sites: dict[int, np.ndarray] = {}
    stack: list[int] = []  # joint indices; -2 marks an End Site block
    pending: tuple[str, int, int] | None = None  # name, parent, line

    while True:
        ln, toks = L.next("a joint or MOTION")
        key = toks[0]
        if key in ("ROOT", "JOINT"):
            if (key == "ROOT") != (not stack):
                raise L.err("ROOT must be the first joint and only at the top level" if key == "ROOT"
                            else "JOINT outside of a ROOT block", ln)
            if len(toks) < 2:
                raise L.err(f"{key} without a name", ln)
            if stack and stack[-1] == -2:
                raise L.err("a JOINT inside an End Site", ln)
            pending = (" ".join(toks[1:]), stack[-1] if stack else -1, ln)
        elif key == "End":
            if not stack or stack[-1] < 0:
                raise L.err("End Site outside of a joint", ln)
            pending = ("__end__", stack[-1], ln)
        elif key == "{":
            if pending is None:
                raise L.err("'{' without a joint", ln)
            name, parent, name_ln = pending
            pending = None
            ln, toks = L.next("OFFSET")
            if toks[0] != "OFFSET":
                raise L.err(f"expected OFFSET, got {toks[0]!r}", ln)
            off = L.floats(toks[1:], 3, ln, "OFFSET")
            if name == "__end__":
                end_sites[parent] = np.array(off)
                stack.append(-2)
                continue
            if name in names:
                raise L.err(f"duplicate joint name {name!r}", name_ln)
            ln, toks = L.next("CHANNELS")
            if toks[0] != "CHANNELS":
                raise L.err(f"expected CHANNELS, got {toks[0]!r}", ln)
            try:
                n = int(toks[1])
            except (IndexError, ValueError):
                raise L.err("CHANNELS needs a count", ln) from None
            ch = tuple(toks[2:])
            if len(ch) != n:
                raise L.err(f"CHANNELS says {n} but lists {len(ch)}", ln)
            bad = [c for c in ch if c not in _VALID]
            if bad or len(set(ch)) != len(ch):
                raise L.err(f"invalid or repeated channels: {' '.join(ch)}", ln)
            nrot = sum(c in _ROT for c in ch)
            if nrot not in (0, 3):
                raise L.err(f"a joint needs 0 or 3 rotation channels, got {nrot}", ln)
            names.append(name)
            parents.append(parent)
            offsets.append(off)
            channels.append(ch)
            stack.append(len(names) - 1)
        elif key == "}":
            if not stack:
                raise L.err("unbalanced '}'", ln)
            stack.pop()
        elif key == "MOTION":
            if stack:
                raise L.err("MOTION before the hierarchy was closed", ln)
            break
        else:
            raise L.err(f"unexpected token {key!r}", ln)
    if not names:
        raise L.err("no joints in the hierarchy", ln)

    ln, toks = L.next("Frames:")
    if toks[0] != "Frames:" or len(toks) != 2 or not toks[1].isdigit():
        raise L.err("expected 'Frames: N'", ln)
    nframes = int(toks[1])
    ln, toks = L.next("Frame Time:")
    if toks[:2] != ["Frame", "Time:"] or len(toks) != 3:
        raise L.err("expected 'Frame Time: seconds'", ln)
    frame_time = L.floats(toks[2:], 1, ln, "Frame Time")[0]
    if frame_time <= 0:
        raise L.err(f"Frame Time must be positive, got {frame_time}", ln)

    ncols = sum(len(c) for c in channels)
    rows = L.items[L.pos:L.pos + nframes]
    if len(rows) < nframes:  # name the line where the file stops
        raise L.err(f"header says {nframes} frames but the file has {len(rows)}", L.items[-1][0])
    if len(L.items) > L.pos + nframes:
        raise L.err("more frame lines than 'Frames:' says", L.items[L.pos + nframes][0])
    try:
        data = np.array([[float(t) for t in r] for _, r in rows], np.float64).reshape(nframes, -1) \
            if nframes else np.zeros((0, ncols))
    except ValueError:
        for lno, r in rows:  # find the culprit for the message
            if len(r) != ncols:
                raise L.err(f"frame has {len(r)} values, expected {ncols}", lno) from None
            try:
                [float(t) for t in r]
            except ValueError:
                raise L.err("frame has a non-number", lno) from None
        raise
    if data.shape[1] != ncols:
        bad = next(lno for lno, r in rows if len(r) != ncols)
        raise L.err(f"frame has the wrong number of values, expected {ncols}", bad)
    if not np.all(np.isfinite(data)):
        lno = rows[int(np.argwhere(~np.isfinite(data))[0, 0])][0]
        raise L.err("frame has a NaN or infinite value", lno)

    offs = np.array(offsets)
    skel = Skeleton(tuple(names), np.array(parents), offs, None, end_sites)
    if scale == "auto":
        scale = _guess_scale(skel)
    scale = float(scale)

    J = len(names)
    rot = np.empty((nframes, J, 4))
    trans = np.repeat(offs[None], nframes, 0)
    col = 0
    for j, ch in enumerate(channels):
        cols = {c: col + i for i, c in enumerate(ch)}
        col += len(ch)
        for a, c in enumerate(_POS):
            if c in cols:
                trans[:, j, a] = data[:, cols[c]]
        rc = [c for c in ch if c in _ROT]
        if rc:
            order = "".join(c[0] for c in rc)
            ang = np.radians(np.stack([data[:, cols[c]] for c in rc], -1))
            rot[:, j] = R.euler_to_quat(ang, order)
        else:
            rot[:, j] = R.quat_identity()
    skel = skel.scaled(scale)
    return Bvh(skel, Motion(rot, trans * scale, fps_from_frame_time(frame_time)), channels, scale)


def fps_from_frame_time(frame_time: float) -> float:
    """``1 / frame_time``, snapped to the nearest whole fps within 1e-4 relative.

    Files print frame times with a few digits ("0.0333333" is 30.00003 fps).
    The tolerance is tight enough to keep NTSC rates (29.97, 23.976, 59.94 lie
    1e-3 from a whole number) exact.
    """
    fps = 1.0 / frame_time
    whole = round(fps)
    return float(whole) if whole >= 1 and abs(fps - whole) <= 1e-4 * whole else fps


def _guess_scale(skel: Skeleton) -> float:
    _, pos = skel.rest_global()
    # Height of the rest pose; offsets of joints with position channels may be
    # odd (Bandai's Hips), so use the extent of the chain lengths instead.
    span = np.ptp(pos, axis=0).max() if len(pos) > 1 else 0.0
    lengths = skel.bone_lengths()
    height = max(span, lengths.sum() / 2.5)
    return 0.01 if height > 3.0 else 1.0


def read_bvh(path: str | os.PathLike, scale: float | str = "auto") -> Bvh:
    """Read a BVH file. Errors name the file and line."""
    path = os.fspath(path)
    try:
        with open(path, "r", encoding="utf-8", errors="strict") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise BvhError(f"{path}: not a text file (BVH is plain text)") from None
    except OSError as e:
        raise BvhError(f"{path}: cannot read: {e.strerror or e}") from None
    return parse_bvh(text, path, scale)


def format_bvh(skeleton: Skeleton, motion: Motion, channels: list[tuple[str, ...]] | None = None,
               scale: float = 1.0, precision: int = 7) -> str:
    """BVH text for a motion. ``scale`` is the factor the data was read with
    (values are divided by it); ``channels`` default to root 6, others 3 (ZXY)."""
    motion.check(skeleton)
    channels = channels or _default_channels(skeleton)
    if len(channels) != skeleton.num_joints:
        raise ValueError("one channel list per joint is needed")
    inv = 1.0 / scale
    fmt = f"%.{precision}g"
    num = lambda v: " ".join((fmt % x) if x != 0 else "0" for x in v)  # noqa: E731
    out: list[str] = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        ind = "  " * depth
        kind = "ROOT" if skeleton.parents[j] < 0 else "JOINT"
        out.append(f"{ind}{kind} {skeleton.names[j]}")
        out.append(f"{ind}{{")
        out.append(f"{ind}  OFFSET {num(skeleton.offsets[j] * inv)}")
        out.append(f"{ind}  CHANNELS {len(channels[j])} {' '.join(channels[j])}")
        for c in skeleton.children(j):
            emit(c, depth + 1)
        if j in skeleton.end_sites:
            out.append(f"{ind}  End Site")
            out.append(f"{ind}  {{")
            out.append(f"{ind}    OFFSET {num(skeleton.end_sites[j] * inv)}")
            out.append(f"{ind}  }}")
        out.append(f"{ind}}}")

    emit(0, 0)
    out.append("MOTION")
    out.append(f"Frames: {motion.num_frames}")
    out.append(f"Frame Time: {1.0 / motion.fps:.9g}")
    order = _dfs_order(skeleton)  # BVH lists joints depth-first; SMPL order is not
    cols = []
    for j in order:
        ch = channels[j]
        rc = [c for c in ch if c in _ROT]
        ang = np.degrees(R.quat_to_euler(motion.rotations[:, j], "".join(c[0] for c in rc))) if rc else None
        for c in ch:
            if c in _POS:
                cols.append(motion.translations[:, j, _POS.index(c)] * inv)
            else:
                cols.append(ang[:, rc.index(c)])
    data = np.stack(cols, -1) if cols else np.zeros((motion.num_frames, 0))
    for row in data:
        out.append(num(row))
    return "\n".join(out) + "\n"


def _dfs_order(skel: Skeleton) -> list[int]:
    order: list[int] = []

    def visit(j: int) -> None:
        order.append(j)
        for c in skel.children(j):
            visit(c)

    visit(0)
    return order


def write_bvh(path: str | os.PathLike, skeleton: Skeleton, motion: Motion,
              channels: list[tuple[str, ...]] | None = None, scale: float = 1.0) -> None:
    """Write a BVH file atomically (never leaves a half-written file)."""
    text = format_bvh(skeleton, motion, channels, scale)
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def save_bvh(path: str | os.PathLike, bvh: Bvh) -> None:
    """Write a :class:`Bvh` back in its own channels and units."""
    write_bvh(path, bvh.skeleton, bvh.motion, bvh.channels, bvh.scale)
