"""Start, watch and stop a ``kinemo serve`` process on this machine.

The user points the preferences at a Python that has ``kinemo`` installed;
this runs ``<python> -m kinemo.serve --address ...`` with its output in a log
file. No bpy here.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .connection import KinemoError


@dataclass
class Process:
    proc: subprocess.Popen
    log: Path
    command: list[str]


_current: Process | None = None


def start(python: str, address: str, log: Path, token_file: str = "", device: str = "cpu") -> Process:
    """Start the backend (one at a time); raises :class:`KinemoError` in plain words."""
    global _current
    if _current is not None and _current.proc.poll() is None:
        raise KinemoError(f"A local backend is already running (process {_current.proc.pid}).")
    if not python:
        raise KinemoError("Set the Python of the environment where kinemo is installed "
                          "(add-on preferences).")
    exe = Path(os.path.expanduser(python))
    if exe.is_dir():  # the environment's folder was given
        exe = next((p for p in (exe / "bin" / "python", exe / "Scripts" / "python.exe") if p.is_file()), exe)
    if not exe.is_file() or not os.access(exe, os.X_OK):
        raise KinemoError(f"{exe} is not a Python executable.")
    cmd = [str(exe), "-u", "-m", "kinemo.serve", "--address", address, "--device", device]
    if token_file:
        cmd += ["--token-file", os.path.expanduser(token_file)]
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    _current = Process(proc, log, cmd)
    return _current


def status() -> str:
    if _current is None:
        return "not started from Blender"
    rc = _current.proc.poll()
    if rc is None:
        return "running (starting)" if not ready() else f"running (process {_current.proc.pid})"
    return f"stopped (exit code {rc}); see the log"


def ready() -> bool:
    """True once the backend printed that it listens."""
    return _current is not None and "listening on" in log_tail(200)


def stop(timeout: float = 10.0) -> int | None:
    """Stop the backend we started (SIGTERM, then kill); returns its exit code."""
    if _current is None:
        return None
    p = _current.proc
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    return p.returncode


def log_tail(lines: int = 12) -> str:
    if _current is None or not _current.log.is_file():
        return ""
    text = _current.log.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])
