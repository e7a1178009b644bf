"""``kinemo retarget SRC.bvh --target TARGET.bvh|smpl --out OUT.bvh [--map MAP.json]``."""
from __future__ import annotations

import argparse
import json
import os
import sys

from ..errors import UserError
from ..core.bonemap import auto_map
from ..core.bvh import Bvh, read_bvh, save_bvh
from ..core.retarget import retarget
from ..core.smpl import smpl_skeleton


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="source motion (BVH, any humanoid skeleton)")
    p.add_argument("--target", required=True,
                   help="BVH supplying the target skeleton and rest pose, or 'smpl' for the canonical skeleton")
    p.add_argument("--out", required=True, help="output BVH (the source is never overwritten)")
    p.add_argument("--map", dest="map_file",
                   help="JSON {source joint: target joint or null} overriding the automatic mapping")
    p.add_argument("--print-map", action="store_true",
                   help="print both automatic mappings as JSON (a starting point for --map)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")


def _load_map(path: str) -> dict[str, str | None]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"cannot read mapping file {path}: {e}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and (v is None or isinstance(v, str))
                                             for k, v in data.items()):
        raise UserError(f"{path}: a mapping file is a JSON object {{source joint: target joint or null}}")
    return data


def run(args: argparse.Namespace) -> int:
    out = os.path.abspath(args.out)
    if out in {os.path.abspath(args.source), os.path.abspath(args.target)}:
        raise UserError("--out must not be one of the input files")
    if os.path.exists(out) and not args.force:
        raise UserError(f"{args.out} exists; pass --force to overwrite it")
    src = read_bvh(args.source)
    if args.target.lower() == "smpl":
        tgt = Bvh(smpl_skeleton(), smpl_skeleton().rest_motion(1), [], 1.0)
        tgt_motion = None
    else:
        tgt = read_bvh(args.target)
        tgt_motion = tgt.motion if tgt.motion.num_frames else None
    src_map, tgt_map = auto_map(src.skeleton), auto_map(tgt.skeleton)
    if args.print_map:
        json.dump({"source": src_map.to_dict(), "target": tgt_map.to_dict()}, sys.stdout, indent=2)
        print()
    pairs = _load_map(args.map_file) if args.map_file else None
    if pairs:
        for s, t in pairs.items():
            if s not in src.skeleton.names:
                raise UserError(f"{args.map_file}: source joint {s!r} is not in {args.source}")
            if t is not None and t not in tgt.skeleton.names:
                raise UserError(f"{args.map_file}: target joint {t!r} is not in the target skeleton")
    motion = retarget(src.skeleton, src.motion, tgt.skeleton, src_map, tgt_map,
                      pairs=pairs, tgt_motion=tgt_motion)
    save_bvh(out, Bvh(tgt.skeleton, motion, tgt.channels, tgt.scale))
    unmapped = [r for r in tgt_map.unmapped]
    print(f"wrote {args.out}: {motion.num_frames} frames at {motion.fps:g} fps on "
          f"{tgt.skeleton.num_joints} joints" + (f" (SMPL roles without a joint: {', '.join(unmapped)})"
                                                 if unmapped else ""))
    return 0
