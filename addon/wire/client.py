"""Client for ``kinemo serve``: a DEALER socket driven by :meth:`Client.poll`.

Needs only pyzmq, msgpack and this package's ``protocol`` module (numpy is
imported when a result with arrays arrives), so the Blender add-on can vendor
``client.py`` + ``protocol.py``. Nothing here blocks unless asked to: the
add-on calls ``poll(0)`` from a timer; scripts and tests use :meth:`call`.

Liveness: while requests are pending the client pings every
``heartbeat_interval`` and the server sends heartbeats; anything heard from the
server counts. After ``timeout`` seconds of silence the backend is declared
lost (a ``lost`` event), the socket is replaced by a new one with the same
identity and every pending request is sent again (lazy pirate). After
``retries`` such attempts the pending requests fail with
``backend_unavailable``. A server that already holds a re-sent request simply
accepts it again, so a slow backend never runs a request twice.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import zmq

from . import protocol
from .protocol import Code, ProtocolError

log = logging.getLogger("kinemo.client")


class RemoteError(Exception):
    """A request that ended in an ``error`` (``code`` is one of ``protocol.ERROR_CODES``)."""

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message
        self.details = details or {}


class BackendUnavailable(RemoteError):
    """The backend did not answer within the timeout, however many times we reconnected."""


@dataclass(eq=False)
class Request:
    """A request in flight; its fields fill in as responses arrive."""

    id: str
    type: str
    frames: list[bytes]
    submitted: float
    accepted: bool = False
    progress: tuple[float, str, str] | None = None    # fraction, stage, message
    output: dict | None = None
    timing: dict | None = None
    error: RemoteError | None = None

    @property
    def done(self) -> bool:
        return self.output is not None or self.error is not None


@dataclass(frozen=True)
class Event:
    """What :meth:`Client.poll` reports: a response to a request, or a change
    of the backend's state (``lost``: silent for ``timeout``; ``reconnected``:
    heard again after being lost)."""

    kind: str
    request: Request | None = None
    data: dict = field(default_factory=dict)


class Client:
    def __init__(self, address: str = "tcp://127.0.0.1:5557", key: bytes | None = None, *,
                 heartbeat_interval: float = 1.0, timeout: float = 5.0, retries: int | None = 2,
                 max_message_bytes: int = protocol.DEFAULT_MAX_MESSAGE_BYTES,
                 max_result_bytes: int = 1 << 30, context: zmq.Context | None = None,
                 name: str = "kinemo-client"):
        self.address = address
        self.key = key
        self.heartbeat_interval = heartbeat_interval
        self.timeout = timeout
        self.retries = retries
        self.max_message_bytes = max_message_bytes   # the server's limit (updated by hello)
        self.max_result_bytes = max_result_bytes
        self.name = name
        self.identity = b"kinemo-" + uuid.uuid4().hex.encode()
        self.zctx = context or zmq.Context.instance()
        self.pending: dict[str, Request] = {}
        self.lost = False
        self.failures = 0
        self.dropped = 0                     # messages we could not verify or decode
        self.server_info: dict | None = None
        now = time.monotonic()
        self.last_heard = now
        self.last_ping = now
        self.sock = self._socket()

    # -- socket ------------------------------------------------------------------
    def _socket(self) -> zmq.Socket:
        s = self.zctx.socket(zmq.DEALER)
        s.setsockopt(zmq.ROUTING_ID, self.identity)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.MAXMSGSIZE, self.max_result_bytes)
        s.connect(self.address)
        return s

    def _send(self, frames: list[bytes]) -> None:
        try:
            self.sock.send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.Again:  # queue full while the backend is away; re-sent on reconnect
            pass

    def _reconnect(self) -> None:
        self.sock.close(linger=0)
        self.sock = self._socket()
        for req in self.pending.values():
            self._send(req.frames)

    def close(self, linger: float = 0.2) -> None:
        """Close the socket, giving just-sent messages (a cancel) ``linger`` seconds to leave."""
        self.sock.close(linger=int(linger * 1000))

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- requests ----------------------------------------------------------------
    def submit(self, msg_type: str, body: dict | None = None) -> Request:
        """Send a request without waiting; returns its handle."""
        rid = uuid.uuid4().hex
        frames = protocol.pack(msg_type, rid, body or {}, self.key)
        if len(frames[1]) > self.max_message_bytes:
            raise ValueError(f"the {msg_type} request is {len(frames[1])} bytes; the server accepts "
                             f"at most {self.max_message_bytes}")
        now = time.monotonic()
        if not self.pending:
            self.last_heard = max(self.last_heard, now)  # silence counts from now
        req = Request(rid, msg_type, frames, now)
        self.pending[rid] = req
        self._send(frames)
        return req

    def cancel(self, request: Request | str) -> Request | None:
        """Ask the server to cancel a pending request (it ends with ``cancelled``)."""
        rid = request if isinstance(request, str) else request.id
        if rid not in self.pending:
            return None
        return self.submit("cancel", {"target": rid})

    def poll(self, timeout: float = 0.0) -> list[Event]:
        """Receive what has arrived, keep the heartbeat going; wait up to
        ``timeout`` seconds for at least one event."""
        deadline = time.monotonic() + timeout
        events: list[Event] = []
        while True:
            wait = max(0.0, min(deadline - time.monotonic(), self.heartbeat_interval))
            if self.sock.poll(int(wait * 1000), zmq.POLLIN):
                for _ in range(1000):
                    try:
                        frames = self.sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._handle(frames, events)
            self._tick(events)
            if events or time.monotonic() >= deadline:
                return events

    def wait(self, request: Request, timeout: float | None = None,
             on_progress: Callable[[float, str, str], None] | None = None) -> dict:
        """Block until ``request`` ends; returns its output or raises :class:`RemoteError`.

        ``timeout`` bounds the total wait (``TimeoutError``; the request stays
        pending). A lost backend is handled by the heartbeat, not by this.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not request.done:
            left = self.heartbeat_interval if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer to the {request.type} request after {timeout} s")
            for e in self.poll(min(left, self.heartbeat_interval)):
                if on_progress and e.request is request and e.kind == "progress":
                    on_progress(*request.progress)
        if request.error is not None:
            raise request.error
        return request.output

    def call(self, msg_type: str, body: dict | None = None, timeout: float | None = None,
             on_progress: Callable[[float, str, str], None] | None = None) -> dict:
        """Send a request and wait for its output."""
        return self.wait(self.submit(msg_type, body), timeout, on_progress)

    def hello(self, timeout: float | None = None) -> dict:
        info = self.call("hello", {"client": self.name,
                                   "protocol_versions": list(protocol.SUPPORTED_VERSIONS)}, timeout)
        self.server_info = info
        self.max_message_bytes = info["limits"]["max_message_bytes"]
        return info

    def ping(self, timeout: float | None = None) -> float:
        """Round trip time in seconds."""
        t0 = time.perf_counter()
        self.call("ping", timeout=timeout)
        return time.perf_counter() - t0

    # -- internals ---------------------------------------------------------------
    def _handle(self, frames: list[bytes], events: list[Event]) -> None:
        try:
            env = protocol.unpack(frames, self.key)
        except (protocol.Dropped, ProtocolError) as e:
            self.dropped += 1
            log.warning("dropped a message from the backend: %s", e)
            return
        self.last_heard = time.monotonic()
        if self.lost:
            self.lost, self.failures = False, 0
            events.append(Event("reconnected"))
        req = self.pending.get(env.id)
        try:
            if env.version != protocol.PROTOCOL_VERSION and env.type != "error":
                raise ProtocolError(Code.BAD_RESPONSE, f"the backend speaks protocol {env.version}, "
                                    f"this client {protocol.PROTOCOL_VERSION}")
            body = protocol.validate_response(env)
        except ProtocolError as e:
            self.dropped += 1
            log.warning("bad %s message from the backend: %s", env.type[:20], e.message)
            if req is not None:
                self._end(req, events, error=RemoteError(Code.BAD_RESPONSE, e.message))
            return
        if req is None:  # a heartbeat, an internal ping's answer, or a late duplicate
            return
        if env.type == "accepted":
            req.accepted = True
            events.append(Event("accepted", req, body))
        elif env.type == "progress":
            req.progress = (body["fraction"], body["stage"], body["message"])
            events.append(Event("progress", req, body))
        elif env.type == "result":
            try:
                output = protocol.validate_result(req.type, body["output"])
            except ProtocolError as e:
                self._end(req, events, error=RemoteError(Code.BAD_RESPONSE, e.message))
                return
            req.timing = body["timing"]
            self._end(req, events, output=output)
        elif env.type == "error":
            self._end(req, events, error=RemoteError(body["code"], body["message"], body.get("details")))

    def _end(self, req: Request, events: list[Event], output: dict | None = None,
             error: RemoteError | None = None) -> None:
        self.pending.pop(req.id, None)
        req.output, req.error = output, error
        events.append(Event("result" if error is None else "error", req))

    def _tick(self, events: list[Event]) -> None:
        if not self.pending:
            return
        now = time.monotonic()
        if now - self.last_ping >= self.heartbeat_interval:
            # Not tracked: its answer only proves the backend is alive.
            self._send(protocol.pack("ping", "hb-" + uuid.uuid4().hex[:16], {}, self.key))
            self.last_ping = now
        silent = now - self.last_heard
        if silent <= self.timeout:
            return
        self.lost = True
        self.failures += 1
        events.append(Event("lost", data={"silent_s": silent, "attempt": self.failures}))
        if self.retries is not None and self.failures > self.retries:
            err = f"no answer from the backend at {self.address} for {silent:.1f} s after " \
                  f"{self.failures} attempt(s); is `kinemo serve` running (and is the token right)?"
            for req in list(self.pending.values()):
                self._end(req, events, error=BackendUnavailable(Code.BACKEND_UNAVAILABLE, err))
            self.failures = 0
        else:
            log.warning("backend silent for %.1f s; reconnecting and re-sending %d request(s)",
                        silent, len(self.pending))
            self._reconnect()
        self.last_heard = now
