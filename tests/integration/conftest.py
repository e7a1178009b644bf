"""A real ``kinemo serve`` process per test (or module), always cleaned up."""
from __future__ import annotations

import itertools
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_n = itertools.count()


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    address: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()
        return self.proc.returncode


def start_server(log_dir: Path, *args: str, address: str = "tcp://127.0.0.1:*",
                 timeout: float = 30.0) -> ServerProcess:
    """Start ``python -m kinemo.serve`` and wait for its "listening on" line.

    Servers start without the motion model unless ``--model`` is given, so protocol tests stay fast and do
    not depend on which checkpoint the install ships."""
    if "--model" not in args and "--no-model" not in args:
        args = ("--no-model", *args)
    log = log_dir / f"server-{next(_n)}.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "backend"), os.environ.get("PYTHONPATH", "")])}
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "kinemo.serve", "--address", address, *args],
                                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if "listening on" in line:
                return ServerProcess(proc, line.rsplit(" ", 1)[1].strip(), log)
        if proc.poll() is not None:
            break
    proc.kill()
    proc.wait(5)
    raise RuntimeError(f"server did not start (rc {proc.returncode}):\n{log.read_text()}")


@pytest.fixture(scope="session")
def launch():
    """:func:`start_server`, for module-scoped fixtures (the caller stops it)."""
    return start_server


@pytest.fixture
def server_factory(tmp_path):
    """Start servers with extra arguments; all are stopped after the test."""
    started: list[ServerProcess] = []

    def make(*args: str, **kw) -> ServerProcess:
        s = start_server(tmp_path, *args, **kw)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop(signal.SIGKILL if s.proc.poll() is None else signal.SIGTERM, timeout=5)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One shared server for a module's tests that leave it usable."""
    s = start_server(tmp_path_factory.mktemp("serve"), "--heartbeat", "0.25")
    yield s
    rc = s.stop()
    assert rc == 0, s.log_text()
