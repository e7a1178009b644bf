"""The ``kinemo`` command. Each subcommand lives in its own module exposing
``add_arguments(parser)`` and ``run(args) -> int``; modules import lazily so
``kinemo --help`` stays fast and torch is loaded only by commands that need it."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import UserError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "retarget": ("kinemo.commands.retarget", "retarget a BVH motion onto another skeleton"),
    "serve": ("kinemo.commands.serve", "run the backend server the Blender add-on talks to"),
    "bench": ("kinemo.commands.bench", "benchmarks: kinemo bench server, ..."),
    "demo": ("kinemo.commands.demo", "headless demo: motion on a Rigify rig, saved as .blend + PNG"),
    "data": ("kinemo.commands.data", "training corpus: prepare, stats, preview, pack and unpack for another machine"),
    "train": ("kinemo.commands.train", "train the motion model: kinemo train --config small|tiny"),
    "inbetween": ("kinemo.commands.inbetween", "fill motion between key frames of a BVH (any humanoid)"),
    "generate": ("kinemo.commands.generate", "motion from text, as BVH (SMPL or your rig)"),
    "dance": ("kinemo.commands.dance", "a dance to a song, as BVH (SMPL or your rig)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kinemo", description="Kinemo: local AI motion for Blender")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (mod, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=mod)
        importlib.import_module(mod).add_arguments(p)
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 1
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except (UserError, ValueError, KeyError, OSError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"kinemo {args.command}: error: {msg}", file=sys.stderr)
        return 2


def console_main() -> None:
    """Entry point of the installed ``kinemo`` command."""
    rc = main()
    if "bpy" in sys.modules:
        # bpy 4.5's C++ exit handler can deadlock on its delayed-close thread;
        # everything is written and saved by now, so leave without exit handlers.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    sys.exit(rc)


if __name__ == "__main__":
    console_main()
