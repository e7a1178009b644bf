"""Long operations as jobs: requests to the backend plus what to do with the answers.

A :class:`Job` never blocks unless asked: :meth:`Job.poll` is one plain,
non-blocking step (receive, update progress, apply the result when all
answers are in). The UI drives it from a modal operator's timer or from
``bpy.app.timers``; background scripts and tests call :meth:`Job.wait`.
The result is applied in the thread that polls (Blender's main thread), since
bpy may only be touched there.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from . import connection
from .connection import KinemoError, Settings

# Jobs started from the UI, newest last; the panel shows them and offers Cancel.
ACTIVE: list["Job"] = []
# The outcome of the last finished job, for the panel: (state, message).
LAST: dict[str, str] = {"state": "", "message": ""}


class Job:
    """Requests ``[(type, body), ...]`` sent together; ``apply(outputs)`` runs
    once all have answered and its return value becomes :attr:`result`."""

    def __init__(self, label: str, settings: Settings, requests: list[tuple[str, dict]],
                 apply: Callable[[list[dict]], Any]):
        if not requests:
            raise ValueError("a job needs at least one request")
        self.label = label
        self.settings = settings
        self.requests = requests
        self.apply = apply
        self.state = "new"          # new -> running -> done | failed | cancelled
        self.progress = 0.0
        self.message = ""
        self.error = ""
        self.result: Any = None
        self._handles: list = []
        self._client = None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def start(self) -> "Job":
        if self.state != "new":
            raise RuntimeError(f"job {self.label!r} was already started")
        try:
            self._client = connection.client(self.settings)
            self._handles = [self._client.submit(t, b) for t, b in self.requests]
        except (KinemoError, ValueError) as e:
            return self._fail(e)
        self.state = "running"
        self.message = "sent to the backend"
        return self

    def poll(self, wait: float = 0.0) -> bool:
        """One step; waits up to ``wait`` seconds for news. Returns :attr:`finished`."""
        if self.state == "new":
            self.start()
        if self.finished:
            return True
        try:
            self._client.poll(wait)
        except Exception as e:  # a closed or broken socket
            return self._fail(e)
        failed = next((h for h in self._handles if h.error is not None), None)
        if failed is not None:
            for h in self._handles:
                if not h.done:
                    self._client.cancel(h)
            if isinstance(failed.error, connection.BackendUnavailable):
                connection.discard(self.settings)
            return self._fail(failed.error)
        parts = [1.0 if h.done else (h.progress[0] if h.progress else 0.0) for h in self._handles]
        self.progress = sum(parts) / len(parts)
        latest = next((h.progress for h in reversed(self._handles) if h.progress and not h.done), None)
        if latest is not None:
            self.message = latest[2] or latest[1]
        elif any(h.accepted for h in self._handles):
            self.message = "running"
        if not all(h.done for h in self._handles):
            return False
        try:
            self.result = self.apply([h.output for h in self._handles])
        except (KinemoError, ValueError, KeyError, RuntimeError) as e:
            return self._fail(e)
        self.state, self.progress, self.message = "done", 1.0, "done"
        self._finish()
        return True

    def cancel(self) -> None:
        """Stop waiting and ask the backend to stop; nothing is applied."""
        if self.finished:
            return
        if self._client is not None:
            for h in self._handles:
                if not h.done:
                    self._client.cancel(h)
            self._client.poll(0)  # let the cancels leave
        self.state, self.message = "cancelled", "cancelled"
        self._finish()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until finished; returns the result or raises :class:`KinemoError`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.poll(0.05):
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                raise KinemoError(f"{self.label}: no result after {timeout} s; cancelled")
        if self.state != "done":
            raise KinemoError(self.error or self.message)
        return self.result

    def _fail(self, err: BaseException) -> bool:
        self.state = "failed"
        self.error = connection.explain(err, self.settings)
        self.message = self.error
        self._finish()
        return True

    def _finish(self) -> None:
        if self in ACTIVE:
            ACTIVE.remove(self)
        LAST["state"], LAST["message"] = self.state, f"{self.label}: {self.error or self.message}"
