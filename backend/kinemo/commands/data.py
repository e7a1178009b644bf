"""``kinemo data prepare|stats|preview|splits|pack|unpack``: the training corpus."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from ..errors import UserError

REPO_SHARED_BANDAI = (Path(__file__).resolve().parents[3].parent / "shared" / "data" / "bandai-namco-motion"
                      / "bandai-namco-motion.tar.xz")
# the dance-music folder sits next to the Bandai one in ../shared/data
REPO_SHARED_DANCE = REPO_SHARED_BANDAI.parents[1] / "dance-music"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    cache = argparse.ArgumentParser(add_help=False)
    cache.add_argument("--cache-dir", type=Path,
                       help="kinemo cache root (default $KINEMO_CACHE or ~/.cache/kinemo); the corpus goes to "
                            "CACHE/corpus/v<version>")
    pr = sub.add_parser("prepare", parents=[cache], help="build the corpus (once; rebuilt when sources change)")
    pr.add_argument("sources", nargs="*", type=Path,
                    help="Bandai .tar.xz archive, folders of .bvh (+ optional .json labels) and AMASS .npz, "
                         "single files, dance-music folders (.npz points + songs); default: $KINEMO_DATA or "
                         "../shared's Bandai archive plus its dance-music folder when present")
    pr.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    pr.add_argument("--force", action="store_true", help="rebuild even if the cache is up to date")
    st = sub.add_parser("stats", parents=[cache], help="hours per split, content and style")
    st.add_argument("--out", type=Path, help="also write the markdown tables to this file")
    pv = sub.add_parser("preview", parents=[cache], help="render a take as stick figures (PNG strip or GIF)")
    pv.add_argument("take", help="take id (see index.json in the corpus)")
    pv.add_argument("--out", type=Path, required=True, help="output .png (a strip of poses) or .gif")
    pv.add_argument("--frames", type=int, default=6, help="poses in a PNG strip")
    pv.add_argument("--mirror", action="store_true", help="show the left/right mirrored clip")
    pv.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    pk = sub.add_parser("pack", parents=[cache],
                        help="pack the prepared corpus's takes (about 50 MB for train and val) into a new folder, "
                             "to train on a machine without the sources")
    pk.add_argument("out", type=Path, help="a new (or empty) folder")
    pk.add_argument("--splits", default="train,val", help="comma-separated splits to pack (default train,val)")
    up = sub.add_parser("unpack", help="rebuild a corpus from a folder made by 'kinemo data pack' under a new cache "
                                       "root (then train with --cache-dir ROOT)")
    up.add_argument("pack", type=Path, help="the folder 'kinemo data pack' wrote")
    up.add_argument("cache_root", type=Path, help="a cache root that holds no corpus yet")
    sp = sub.add_parser("splits", help="write the fixed split lists from an archive's take list (once)")
    sp.add_argument("archive", type=Path, help="the Bandai archive, or with --add any source")
    sp.add_argument("--add", action="store_true",
                    help="add the source's takes that are not listed yet, per (content, style) group "
                         "(listed takes never move)")
    sp.add_argument("--dir", type=Path, help="where to write train/val/test.txt (default: the package's)")


def _sources(args) -> list[Path]:
    if args.sources:
        return list(args.sources)
    env = os.environ.get("KINEMO_DATA")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    found = [p for p in (REPO_SHARED_BANDAI, REPO_SHARED_DANCE) if p.exists()]
    if found:
        return found
    raise UserError("no motion sources: pass a folder or archive, or set KINEMO_DATA")


def run(args: argparse.Namespace) -> int:
    from ..data import cache
    if args.action == "prepare":
        if args.workers < 1:
            raise UserError("--workers must be at least 1")
        cache.build(_sources(args), args.cache_dir, workers=args.workers, force=args.force)
        return 0
    if args.action == "stats":
        from ..data.stats import report
        c = cache.load(args.cache_dir)
        text = report(c.takes, c.report["dropped"], c.fps)
        print(text)
        if args.out:
            args.out.write_text(text, encoding="utf-8")
        return 0
    if args.action == "preview":
        from ..data.mirror import mirror
        from ..data.preview import render_gif, render_strip
        if args.out.exists() and not args.force:
            raise UserError(f"{args.out} exists; pass --force to overwrite it")
        c = cache.load(args.cache_dir)
        i = c.find(args.take)
        clip = c.clip(i)
        t = c.takes[i]
        title = f"{t['id']} ({t['content']}, {t['style']})"
        if args.mirror:
            clip, title = mirror(clip), title + " mirrored"
        if args.out.suffix.lower() == ".gif":
            render_gif(clip, args.out, title=title)
        elif args.out.suffix.lower() == ".png":
            render_strip(clip, args.out, args.frames, title)
        else:
            raise UserError("--out must end in .png or .gif")
        print(f"wrote {args.out}")
        return 0
    if args.action == "pack":
        from ..data.travel import pack
        size = pack(args.cache_dir or cache.default_cache_root(), args.out, tuple(args.splits.split(",")))
        print(f"packed into {args.out} ({size / 1e6:.1f} MB)")
        return 0
    if args.action == "unpack":
        from ..data.travel import unpack
        print(f"unpacked into {unpack(args.pack, args.cache_root)}")
        return 0
    if args.action == "splits":
        from ..data import splits as S
        from ..data.labels import Labels, from_bandai_name
        from ..data.sources import LabelBook, iter_source
        t0 = time.time()
        book = LabelBook()
        ids = [r.take_id for r in iter_source(args.archive, book)]
        if args.add:
            known = book.resolve()
            n = S.add_to_splits(S.deal_groups({t: known.get(t) or Labels() for t in ids}), args.dir or S.SPLIT_DIR)
            print(f"{n} takes added to the split lists")
            return 0
        labels = {t: from_bandai_name(t) for t in ids}
        missing = [t for t, v in labels.items() if v is None]
        if missing:
            raise UserError(f"takes without Bandai-style names: {missing[:5]}")
        out = S.make_splits(labels)
        try:
            S.write_splits(out, args.dir or S.SPLIT_DIR)
        except FileExistsError as e:
            raise UserError(str(e)) from None
        print(f"{len(ids)} takes -> " + ", ".join(f"{k} {len(v)}" for k, v in out.items())
              + f" ({time.time() - t0:.0f} s)")
        return 0
    raise UserError(f"unknown action {args.action}")
