"""Draw training batches on a background thread, so an accelerator does not sit idle while numpy cuts windows.

One thread draws in order from the one random stream, so the batches are the ones the synchronous loop would
draw: prefetching changes when a batch is made, never which."""
from __future__ import annotations

import queue
import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


class Prefetcher(Generic[T]):
    """``next()`` returns ``draw()``'s results in order. With ``depth`` > 0 up to ``depth`` of them are made
    ahead on a daemon thread; with 0 each is made when asked (no thread). An exception in ``draw`` is raised by
    the ``next()`` that would have returned its result."""

    def __init__(self, draw: Callable[[], T], depth: int = 2):
        self._draw = draw
        self._stop = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._thread = None
        if depth > 0:
            self._thread = threading.Thread(target=self._fill, name="kinemo-prefetch", daemon=True)
            self._thread.start()

    def _fill(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._draw()
            except BaseException as e:   # handed to the consumer, which raises it where it would have
                item = _Failure(e)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if isinstance(item, _Failure):
                return

    def __iter__(self) -> "Prefetcher[T]":
        return self

    def __next__(self) -> T:
        if self._thread is None:
            return self._draw()
        item = self._queue.get()
        if isinstance(item, _Failure):
            raise item.error
        return item

    def close(self) -> None:
        """Stop the thread (it finishes the batch it is drawing, if any, and exits)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
