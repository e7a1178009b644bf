"""``kinemo serve``: run the backend that the Blender add-on talks to."""
from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import sys
import time
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", default="tcp://127.0.0.1:5557",
                   help="ZeroMQ endpoint to bind (default %(default)s; a port of * picks a free one)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--model", default="auto", help="motion model checkpoint (default: the shipped one)")
    g.add_argument("--no-model", action="store_true", help="serve without a motion model (retarget only)")
    p.add_argument("--token-file", type=Path,
                   help="shared secret for signing messages (needed off loopback); "
                        "created with a random token if it does not exist")
    p.add_argument("--queue-size", type=int, default=32, help="jobs that may wait (default %(default)s)")
    p.add_argument("--workers", type=int, default=1, help="jobs run at once (default %(default)s)")
    p.add_argument("--heartbeat", type=float, default=1.0, help="seconds between heartbeats")
    p.add_argument("--client-timeout", type=float, default=30.0,
                   help="cancel the jobs of a client silent this many seconds")
    p.add_argument("--max-message-mb", type=float, default=64.0, help="largest accepted message")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def token(path: Path) -> bytes:
    """Read the shared secret, or create the file (owner-only) with a new one."""
    from kinemo.serve.protocol import read_token
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        print(f"kinemo serve: wrote a new token to {path}", file=sys.stderr)
    return read_token(str(path))


def run(args: argparse.Namespace) -> int:
    import zmq

    from kinemo.serve import handlers
    from kinemo.serve.server import Server, ServerConfig
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s kinemo serve %(levelname)s: %(message)s")
    if args.queue_size < 1 or args.workers < 1 or args.heartbeat <= 0 or args.max_message_mb <= 0:
        raise ValueError("--queue-size, --workers, --heartbeat and --max-message-mb must be positive")
    config = ServerConfig(address=args.address, key=token(args.token_file) if args.token_file else None,
                          queue_size=args.queue_size, workers=args.workers,
                          heartbeat_interval=args.heartbeat, client_timeout=args.client_timeout,
                          max_message_bytes=int(args.max_message_mb * 1024 * 1024))
    t0 = time.perf_counter()
    ctx = handlers.load_context(args.device, None if args.no_model else args.model)
    handlers.warm_up(ctx)
    server = Server(config, ctx)
    try:
        endpoint = server.bind()
    except zmq.ZMQError as e:
        raise OSError(f"cannot bind {args.address}: {e}") from None
    logging.getLogger("kinemo.serve").info("ready in %.2f s on %s (device %s, model: %s)",
                                           time.perf_counter() - t0, endpoint, ctx.device,
                                           ctx.model_name or ctx.model_detail)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: server.stop())
    print(f"kinemo serve: listening on {endpoint}", flush=True)
    server.serve_forever()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m kinemo.serve``), with the CLI's error handling."""
    from kinemo.cli import UserError
    p = argparse.ArgumentParser(prog="kinemo serve", description=__doc__)
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run(args)
    except (UserError, ValueError, OSError) as e:
        print(f"kinemo serve: error: {e}", file=sys.stderr)
        return 2
