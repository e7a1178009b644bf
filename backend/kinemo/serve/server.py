"""The backend server: one ROUTER socket, a job queue and worker threads.

The main thread owns the ROUTER: it decodes and validates every message,
answers quick requests (hello, ping, cancel) at once, queues jobs and sends
heartbeats. Workers run handlers and hand their messages back over an inproc
PUSH/PULL pair (ZeroMQ sockets are not shared between threads), so pings,
progress and cancels keep flowing while a job runs.

A job's state moves queued -> running -> done under one lock; whoever moves
it to done sends its last message, so every request gets exactly one
``result`` or ``error``.
"""
from __future__ import annotations

import ipaddress
import itertools
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

import zmq

from kinemo import __version__

from ..errors import UserError
from . import handlers, protocol
from .protocol import Code, ProtocolError

log = logging.getLogger("kinemo.serve")


@dataclass
class ServerConfig:
    address: str = "tcp://127.0.0.1:5557"
    key: bytes | None = None               # shared secret for HMAC signatures
    queue_size: int = 32                   # jobs waiting (not counting running ones)
    workers: int = 1                       # one model: jobs run one after another by default
    heartbeat_interval: float = 1.0        # seconds between heartbeats to clients with jobs
    client_timeout: float = 30.0           # a silent client's jobs are cancelled after this
    max_message_bytes: int = protocol.DEFAULT_MAX_MESSAGE_BYTES
    progress_interval: float = 0.05        # at most this often per job (last one always sent)
    shutdown_grace: float = 5.0            # seconds workers get to stop


def is_local(address: str) -> bool:
    """True for addresses only this machine can reach (loopback TCP, ipc, inproc)."""
    scheme, _, rest = address.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host = rest.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # "*", interface names, host names
        return False


@dataclass(eq=False)
class Job:
    identity: bytes
    id: str
    type: str
    body: dict
    received: float
    cancel: threading.Event = field(default_factory=threading.Event)
    state: str = "queued"                  # queued | running | done
    started: float = 0.0


def _peer(identity: bytes) -> str:
    return identity[:32].decode("ascii", "replace")


class Server:
    def __init__(self, config: ServerConfig, ctx: handlers.Context, zctx: zmq.Context | None = None):
        if not is_local(config.address) and not config.key:
            raise ValueError(f"binding to {config.address} (not loopback) needs a shared secret "
                             "(--token-file); without one, bind to tcp://127.0.0.1")
        self.config = config
        self.ctx = ctx
        self.zctx = zctx or zmq.Context()
        self.jobs: dict[tuple[bytes, str], Job] = {}
        self.lock = threading.Lock()
        self.queue: queue.Queue[Job] = queue.Queue()
        self.heard: dict[bytes, float] = {}     # client -> last time we heard from it
        self._stop = threading.Event()
        self._hb_ids = itertools.count()
        self._inproc = f"inproc://kinemo-serve-{id(self)}"
        self.endpoint = ""
        self.workers: list[threading.Thread] = []
        self._drops, self._last_drop_log = 0, -1e9

    # -- set-up ------------------------------------------------------------------
    def bind(self) -> str:
        """Bind the sockets; returns the actual endpoint (``tcp://host:*`` picks a port)."""
        r = self.zctx.socket(zmq.ROUTER)
        r.setsockopt(zmq.MAXMSGSIZE, self.config.max_message_bytes)
        r.setsockopt(zmq.ROUTER_HANDOVER, 1)   # a reconnecting client keeps its identity
        r.setsockopt(zmq.LINGER, 1000)
        r.bind(self.config.address)
        self.router = r
        self.pull = self.zctx.socket(zmq.PULL)
        self.pull.bind(self._inproc)
        self.endpoint = r.getsockopt_string(zmq.LAST_ENDPOINT)
        return self.endpoint

    def stop(self) -> None:
        """Ask the loop to shut down (safe from signal handlers and other threads)."""
        self._stop.set()

    # -- main loop ---------------------------------------------------------------
    def serve_forever(self) -> None:
        if not self.endpoint:
            self.bind()
        for i in range(self.config.workers):
            t = threading.Thread(target=self._worker, name=f"kinemo-worker-{i}", daemon=True)
            t.start()
            self.workers.append(t)
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.pull, zmq.POLLIN)
        hb = self.config.heartbeat_interval
        next_hb = time.monotonic() + hb
        try:
            while not self._stop.is_set():
                wait = max(0.0, min(next_hb - time.monotonic(), 0.1))
                ready = dict(poller.poll(int(wait * 1000)))
                if self.pull in ready:
                    self._forward_worker_messages()
                if self.router in ready:
                    self._receive()
                if time.monotonic() >= next_hb:
                    self._heartbeat()
                    next_hb = time.monotonic() + hb
        finally:
            self._shutdown()

    def _receive(self) -> None:
        for _ in range(256):  # bounded so worker messages and heartbeats are not starved
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            identity, rest = frames[0], frames[1:]
            try:
                self._handle(identity, rest)
            except Exception:  # a bug must not stop the server
                log.exception("internal error handling a message from %s", _peer(identity))
                self._send(identity, "error", protocol.request_id_of(rest) or "-",
                           protocol.error_body(Code.INTERNAL, "internal server error; see the server log"))

    def _forward_worker_messages(self) -> None:
        for _ in range(256):
            try:
                frames = self.pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self.router.send_multipart(frames, copy=False)

    # -- messages ----------------------------------------------------------------
    def _send(self, identity: bytes, msg_type: str, rid: str, body: dict, sock=None) -> None:
        frames = protocol.pack(msg_type, rid, body, self.config.key)
        (sock or self.router).send_multipart([identity] + frames, copy=False)

    def _error(self, identity: bytes, rid: str, e: ProtocolError) -> None:
        self._send(identity, "error", rid or "-", protocol.error_body(e.code, e.message, e.details))

    def _handle(self, identity: bytes, frames: list[bytes]) -> None:
        try:
            env = protocol.unpack(frames, self.config.key)
        except protocol.Dropped as e:
            self._log_drop(identity, e)
            return
        except ProtocolError as e:
            self.heard[identity] = time.monotonic()
            self._error(identity, protocol.request_id_of(frames), e)
            return
        self.heard[identity] = time.monotonic()  # only authenticated messages count
        try:
            body = protocol.validate_request(env)
        except ProtocolError as e:
            self._error(identity, env.id, e)
            return
        t0 = time.monotonic()
        if env.type == "ping":
            output = {"time": time.time()}
        elif env.type == "hello":
            output = self._hello()
        elif env.type == "cancel":
            output = self._cancel(identity, body["target"])
        else:
            self._submit(identity, env, body)
            return
        self._send(identity, "result", env.id,
                   {"output": output, "timing": {"queued_s": 0.0, "run_s": time.monotonic() - t0}})

    def _log_drop(self, identity: bytes, e: Exception) -> None:
        """Log dropped messages, at most once a second (a flood must not flood the log)."""
        self._drops += 1
        now = time.monotonic()
        if now - self._last_drop_log >= 1.0:
            more = f" (and {self._drops - 1} more since the last report)" if self._drops > 1 else ""
            log.warning("dropped a message from %s: %s%s", _peer(identity), e, more)
            self._drops, self._last_drop_log = 0, now

    def _hello(self) -> dict:
        caps = {}
        for name in protocol.JOB_REQUESTS:
            reason = handlers.unavailable_reason(name, self.ctx)
            caps[name] = {"available": reason is None, "reason": reason or ""}
        c = self.config
        return {
            "server": f"kinemo {__version__}",
            "protocol_version": protocol.PROTOCOL_VERSION,
            "protocol_versions": list(protocol.SUPPORTED_VERSIONS),
            "device": self.ctx.device,
            "model": {"loaded": self.ctx.model is not None, "name": self.ctx.model_name,
                      "detail": self.ctx.model_detail},
            "capabilities": caps,
            "limits": {"max_message_bytes": c.max_message_bytes, "queue_size": c.queue_size,
                       "workers": c.workers, "heartbeat_interval_s": c.heartbeat_interval,
                       "client_timeout_s": c.client_timeout},
        }

    def _cancel(self, identity: bytes, target: str) -> dict:
        with self.lock:
            job = self.jobs.get((identity, target))
            if job is None:
                return {"found": False, "state": "unknown"}
            state = job.state
            job.cancel.set()
            if state == "queued":
                job.state = "done"
                del self.jobs[(identity, target)]
        if state == "queued":
            self._send(identity, "error", target,
                       protocol.error_body(Code.CANCELLED, "cancelled before it started"))
        return {"found": True, "state": state}

    def _submit(self, identity: bytes, env: protocol.Envelope, body: dict) -> None:
        key = (identity, env.id)
        reason = handlers.unavailable_reason(env.type, self.ctx)
        if reason:
            self._error(identity, env.id, ProtocolError(Code.NOT_AVAILABLE, reason))
            return
        with self.lock:
            waiting = sum(1 for j in self.jobs.values() if j.state == "queued")
            if key in self.jobs:
                # A reconnecting client re-sent a request we already have.
                busy = False
            elif waiting >= self.config.queue_size:
                busy = True
            else:
                busy = False
                job = Job(identity, env.id, env.type, body, time.monotonic())
                self.jobs[key] = job
                self.queue.put(job)
        if busy:
            self._error(identity, env.id, ProtocolError(
                Code.BUSY, f"the server is busy: {waiting} requests are already waiting "
                           f"(limit {self.config.queue_size}); try again when one finishes"))
            return
        self._send(identity, "accepted", env.id, {"position": waiting, "queue_size": self.config.queue_size})

    def _heartbeat(self) -> None:
        now = time.monotonic()
        pending: dict[bytes, int] = {}
        dead: list[Job] = []
        with self.lock:
            for key, job in list(self.jobs.items()):
                if now - self.heard.get(job.identity, now) > self.config.client_timeout:
                    job.cancel.set()
                    job.state = "done"
                    del self.jobs[key]
                    dead.append(job)
                else:
                    pending[job.identity] = pending.get(job.identity, 0) + 1
        for job in dead:
            log.warning("client %s silent for over %.0f s: dropped its %s request %s",
                        _peer(job.identity), self.config.client_timeout, job.type, job.id)
        for identity, n in pending.items():
            self._send(identity, "heartbeat", f"hb-{next(self._hb_ids)}", {"time": time.time(), "pending": n})
        # Forget clients we have not heard from in a long while.
        for identity, t in list(self.heard.items()):
            if now - t > 10 * self.config.client_timeout and identity not in pending:
                del self.heard[identity]

    # -- workers -----------------------------------------------------------------
    def _worker(self) -> None:
        push = self.zctx.socket(zmq.PUSH)
        push.setsockopt(zmq.LINGER, 0)
        push.connect(self._inproc)
        try:
            while not self._stop.is_set():
                try:
                    job = self.queue.get(timeout=0.1)
                except queue.Empty:
                    continue
                with self.lock:
                    if job.state != "queued":
                        continue
                    job.state = "running"
                    job.started = time.monotonic()
                try:
                    self._run(job, push)
                except Exception:  # keep the worker alive whatever happens
                    log.exception("worker failed on %s request %s", job.type, job.id)
        finally:
            push.close()

    def _run(self, job: Job, push) -> None:
        last = [0.0, ""]

        def report(fraction: float, stage: str, message: str = "") -> None:
            now = time.monotonic()
            if now - last[0] < self.config.progress_interval and fraction < 1.0 and stage == last[1]:
                return
            last[0], last[1] = now, stage
            if job.state == "running":
                frac = min(max(float(fraction), 0.0), 1.0) if fraction == fraction else 0.0
                self._send(job.identity, "progress", job.id,
                           {"fraction": frac, "stage": str(stage)[:64], "message": str(message)[:512]}, push)

        handler = handlers.HANDLERS[job.type]
        try:
            output = handler.run(self.ctx, job.body, report, job.cancel.is_set)
            timing = {"queued_s": job.started - job.received, "run_s": time.monotonic() - job.started}
            msg = ("result", {"output": output, "timing": timing})
        except handlers.Cancelled:
            msg = ("error", protocol.error_body(Code.CANCELLED, "cancelled while running"))
        except ProtocolError as e:
            msg = ("error", protocol.error_body(e.code, e.message, e.details))
        except (ValueError, KeyError, UserError) as e:  # the input made no sense to the engine
            text = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            msg = ("error", protocol.error_body(Code.BAD_REQUEST, f"{job.type}: {text}"))
        except Exception as e:
            log.exception("%s request %s failed", job.type, job.id)
            msg = ("error", protocol.error_body(Code.INTERNAL, f"{job.type} failed: {type(e).__name__}: {e}"))
        self._finish(job, push, *msg)

    def _finish(self, job: Job, push, msg_type: str, body: dict) -> None:
        with self.lock:
            if job.state == "done":   # cancelled while queued, client gone, or shutting down
                return
            job.state = "done"
            self.jobs.pop((job.identity, job.id), None)
        try:
            self._send(job.identity, msg_type, job.id, body, push)
        except Exception as e:  # e.g. an output that cannot be encoded: still answer
            log.exception("could not send the %s of %s request %s", msg_type, job.type, job.id)
            self._send(job.identity, "error", job.id,
                       protocol.error_body(Code.INTERNAL, f"could not encode the {msg_type}: {e}"), push)

    # -- shutdown ----------------------------------------------------------------
    def _shutdown(self) -> None:
        with self.lock:
            live = list(self.jobs.values())
            for job in live:
                job.cancel.set()
                job.state = "done"
            self.jobs.clear()
        for job in live:
            self._send(job.identity, "error", job.id, protocol.error_body(
                Code.SHUTTING_DOWN, f"the server is shutting down; the {job.type} request was not completed"))
        if live:
            log.info("shutting down: %d request(s) answered with an error", len(live))
        self._stop.set()
        deadline = time.monotonic() + self.config.shutdown_grace
        for t in self.workers:
            t.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in self.workers if t.is_alive()]
        self.pull.close(linger=0)
        self.router.close(linger=1000)  # let the last error replies out
        if stuck:
            log.warning("workers still busy at exit: %s", stuck)
        else:
            self.zctx.term()
