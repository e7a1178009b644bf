"""``kinemo serve`` as a real process over real sockets."""
from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest
import zmq

from kinemo.serve import handlers, protocol
from kinemo.serve.client import BackendUnavailable, Client, RemoteError
from kinemo.serve.examples import example_request
from kinemo.serve.protocol import Code

LONG = {"frames": 1_000_000, "chunk_frames": 64}  # ~4 ms a step, far longer than any test waits


def client(address: str, **kw) -> Client:
    kw = {"heartbeat_interval": 0.25, "timeout": 2.0, **kw}
    return Client(address, **kw)


def expected_positions(frames: int, joints: int, seed: int) -> np.ndarray:
    return handlers.selftest_positions(*handlers.selftest_skeleton(joints, seed), 0, frames)


def raw_socket(address: str, identity: bytes | None = None) -> zmq.Socket:
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    if identity:
        s.setsockopt(zmq.ROUTING_ID, identity)
    s.connect(address)
    return s


def recv(s: zmq.Socket, timeout: float = 2.0, key: bytes | None = None) -> protocol.Envelope | None:
    if not s.poll(int(timeout * 1000)):
        return None
    return protocol.unpack(s.recv_multipart(), key)


def wait_for(c: Client, req, kind: str, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in c.poll(0.05):
            if e.request is req and e.kind == kind:
                return e
        if req.done and kind != "error":
            break
    raise AssertionError(f"no {kind} event for {req.type}; state: accepted={req.accepted} error={req.error}")


# --- round trips ----------------------------------------------------------------------

def test_hello_and_ping(server):
    with client(server.address) as c:
        info = c.hello()
        assert info["protocol_version"] == protocol.PROTOCOL_VERSION
        assert info["device"] == "cpu" and info["model"]["loaded"] is False
        assert info["capabilities"]["selftest"]["available"] is True
        assert info["capabilities"]["inbetween"] == {
            "available": False, "reason": "inbetween needs the motion model, which this server has not loaded "
                         "(started without a model (--no-model))"}
        assert info["limits"]["max_message_bytes"] == protocol.DEFAULT_MAX_MESSAGE_BYTES
        assert 0 < c.ping() < 1.0


def test_selftest_result_is_the_real_computation(server):
    with client(server.address) as c:
        out = c.call("selftest", {"frames": 500, "joints": 17, "seed": 3, "return_positions": True}, timeout=30)
    ref = expected_positions(500, 17, 3)
    assert out["positions"].shape == (500, 17, 3) and out["positions"].dtype == np.float32
    np.testing.assert_allclose(out["positions"], ref, atol=1e-6)
    np.testing.assert_allclose(out["checksum"], ref.sum(), rtol=1e-9)


@pytest.mark.parametrize("msg_type", ["inbetween", "generate", "dance"])
def test_model_requests_are_not_available(server_factory, msg_type):
    server = server_factory("--no-model")
    with client(server.address) as c:
        with pytest.raises(RemoteError) as e:
            c.call(msg_type, example_request(msg_type), timeout=10)
    assert e.value.code == Code.NOT_AVAILABLE
    assert "needs the motion model" in e.value.message and "--no-model" in e.value.message


def test_retarget_matches_the_engine(server):
    from kinemo.core.retarget import retarget
    from kinemo.serve.convert import motion_from_wire, skeleton_from_rig
    body = example_request("retarget", frames=40)
    with client(server.address) as c:
        out = c.call("retarget", body, timeout=60)
    ref = retarget(skeleton_from_rig(body["source_rig"]), motion_from_wire(body["motion"]),
                   skeleton_from_rig(body["target_rig"]))
    np.testing.assert_allclose(out["motion"]["rotations"], ref.rotations, atol=1e-5)
    np.testing.assert_allclose(out["motion"]["translations"], ref.translations, atol=1e-5)


def test_cancel_of_unknown_request(server):
    with client(server.address) as c:
        assert c.call("cancel", {"target": "nothing-here"}, timeout=5) == {"found": False, "state": "unknown"}


def test_progress_arrives_in_order(server):
    with client(server.address) as c:
        req = c.submit("selftest", {"frames": 3000, "chunk_frames": 50})
        kinds, fractions = [], []
        while not req.done:
            for e in c.poll(1.0):
                if e.request is req:
                    kinds.append(e.kind)
                    if e.kind == "progress":
                        fractions.append(e.data["fraction"])
                        assert e.data["stage"] == "fk" and e.data["message"].startswith("frames ")
    assert kinds[0] == "accepted" and kinds[-1] == "result"
    assert set(kinds[1:-1]) == {"progress"} and len(fractions) >= 2
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert req.timing["run_s"] > 0 and req.timing["queued_s"] >= 0


def test_cancel_mid_job_stops_within_a_step(server):
    with client(server.address) as c:
        req = c.submit("selftest", LONG)
        wait_for(c, req, "progress")
        t0 = time.monotonic()
        cancel = c.cancel(req)
        with pytest.raises(RemoteError) as e:
            c.wait(req, timeout=5)
        stopped = time.monotonic() - t0
        assert e.value.code == Code.CANCELLED
        assert c.wait(cancel, timeout=5) == {"found": True, "state": "running"}
        assert req.progress[0] < 0.5
    assert stopped < 0.5, f"cancel took {stopped:.3f} s"


def test_malformed_message_gets_an_error_and_server_keeps_serving(server):
    s = raw_socket(server.address)
    try:
        s.send_multipart([b"", b"\x93garbage"])
        env = recv(s)
        assert env.type == "error" and env.body["code"] == Code.BAD_REQUEST
        s.send_multipart(protocol.pack("selftest", "bad-1", {"frames": -1}))
        env = recv(s)
        assert (env.type, env.id, env.body["code"]) == ("error", "bad-1", Code.BAD_REQUEST)
        assert "body.frames: must be in" in env.body["message"]
        s.send_multipart(protocol.pack("ping", "ok-1", {}))
        env = recv(s)
        assert (env.type, env.id) == ("result", "ok-1")
    finally:
        s.close()


def test_version_mismatch(server):
    s = raw_socket(server.address)
    try:
        s.send_multipart(protocol.pack("hello", "v-1", {}, version=99))
        env = recv(s)
    finally:
        s.close()
    assert env.type == "error" and env.id == "v-1" and env.body["code"] == Code.UNSUPPORTED_VERSION
    assert "client speaks version 99" in env.body["message"] and "server speaks 1" in env.body["message"]


def test_resent_request_is_not_run_twice(server):
    """A reconnecting client re-sends pending requests under the same identity."""
    s = raw_socket(server.address, identity=b"kinemo-resend-test")
    try:
        frames = protocol.pack("selftest", "dup-1", {"frames": 400, "chunk_frames": 400})
        s.send_multipart(frames)
        s.send_multipart(frames)
        seen = []
        while not seen or seen[-1] not in ("result", "error"):
            env = recv(s, 5)
            assert env is not None, seen
            if env.id == "dup-1":
                seen.append(env.type)
        assert seen.count("accepted") == 2 and seen.count("result") == 1
    finally:
        s.close()


# --- queue, cancel while queued, busy -----------------------------------------------------

def test_cancel_queued_and_busy(server_factory):
    srv = server_factory("--queue-size", "1", "--workers", "1")
    with client(srv.address) as c:
        running = c.submit("selftest", LONG)
        wait_for(c, running, "progress")
        queued = c.submit("selftest", LONG)
        wait_for(c, queued, "accepted")
        with pytest.raises(RemoteError) as busy:
            c.call("selftest", {"frames": 10}, timeout=5)
        assert busy.value.code == Code.BUSY and "limit 1" in busy.value.message
        assert c.wait(c.cancel(queued), timeout=5) == {"found": True, "state": "queued"}
        with pytest.raises(RemoteError, match="cancelled before it started"):
            c.wait(queued, timeout=5)
        c.cancel(running)
        with pytest.raises(RemoteError, match="cancelled"):
            c.wait(running, timeout=5)
        assert c.call("selftest", {"frames": 10}, timeout=10)["frames"] == 10


# --- heartbeats and lost backends ------------------------------------------------------------

def test_killed_server_is_reported_within_the_timeout(server_factory):
    srv = server_factory()
    with client(srv.address, timeout=1.5, retries=0) as c:
        req = c.submit("selftest", LONG)
        wait_for(c, req, "progress")
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(5)
        t0 = time.monotonic()
        kinds = []
        while not req.done and time.monotonic() - t0 < 10:
            kinds += [e.kind for e in c.poll(0.1)]
        elapsed = time.monotonic() - t0
    assert "lost" in kinds and isinstance(req.error, BackendUnavailable)
    assert req.error.code == Code.BACKEND_UNAVAILABLE
    assert elapsed < 1.5 + 0.5, f"reported after {elapsed:.2f} s"


def test_busy_backend_is_not_declared_dead(server_factory):
    """A job far longer than the timeout: heartbeats keep the client calm."""
    srv = server_factory("--heartbeat", "0.2")
    with client(srv.address, timeout=0.8, retries=0) as c:
        req = c.submit("selftest", LONG)
        t0 = time.monotonic()
        kinds = []
        while time.monotonic() - t0 < 2.5:
            kinds += [e.kind for e in c.poll(0.1)]
        assert "lost" not in kinds and not req.done
        c.cancel(req)
        with pytest.raises(RemoteError, match="cancelled"):
            c.wait(req, timeout=5)


def test_client_reconnects_and_resends_pending(server_factory):
    """Lazy pirate: the backend dies and comes back on the same address; the
    pending request is sent again and completes."""
    first = server_factory()
    with client(first.address, timeout=1.0, retries=20) as c:
        req = c.submit("selftest", {"frames": 20_000, "chunk_frames": 50, "seed": 5})
        wait_for(c, req, "progress")
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(5)
        kinds = []
        while "lost" not in kinds:
            kinds += [e.kind for e in c.poll(0.1)]
        server_factory(address=first.address)
        t0 = time.monotonic()
        while not req.done and time.monotonic() - t0 < 60:
            kinds += [e.kind for e in c.poll(0.2)]
    assert "reconnected" in kinds and req.error is None, (kinds, req.error)
    np.testing.assert_allclose(req.output["checksum"], expected_positions(20_000, 24, 5).sum(), rtol=1e-9)


def test_silent_client_jobs_are_dropped(server_factory):
    srv = server_factory("--client-timeout", "0.6", "--heartbeat", "0.2")
    gone = client(srv.address)
    gone.submit("selftest", LONG)
    gone.poll(0.3)
    gone.close()  # vanishes without cancelling
    with client(srv.address) as c:
        out = c.call("selftest", {"frames": 100}, timeout=10)  # the worker was freed
    assert out["frames"] == 100
    assert "silent for over" in srv.log_text()


# --- shutdown -------------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_shutdown_answers_in_flight_requests(server_factory, sig):
    srv = server_factory()
    with client(srv.address) as c:
        running = c.submit("selftest", LONG)
        queued = c.submit("selftest", LONG)
        wait_for(c, running, "progress")
        t0 = time.monotonic()
        srv.proc.send_signal(sig)
        for req in (running, queued):
            with pytest.raises(RemoteError) as e:
                c.wait(req, timeout=5)
            assert e.value.code == Code.SHUTTING_DOWN
    assert srv.proc.wait(10) == 0
    assert time.monotonic() - t0 < 5
    assert "Traceback" not in srv.log_text()


# --- security -------------------------------------------------------------------------------

def test_token_is_required_and_checked(server_factory, tmp_path):
    token = tmp_path / "token"
    srv = server_factory("--token-file", str(token))
    key = protocol.read_token(str(token))
    assert len(key) == 64 and (token.stat().st_mode & 0o777) == 0o600
    with client(srv.address, key=key) as good:
        assert good.call("selftest", {"frames": 20}, timeout=10)["frames"] == 20
    for wrong in (b"not-the-token", None):
        with client(srv.address, key=wrong, timeout=1.0, retries=0) as bad:
            with pytest.raises(BackendUnavailable, match="is the token right"):
                bad.call("ping")
    assert "bad signature" in srv.log_text()
    with client(srv.address, key=key) as good:  # still serving
        assert good.ping() < 1.0


def test_token_file_is_never_overwritten(server_factory, tmp_path):
    token = tmp_path / "token"
    token.write_text("my-own-secret\n")
    srv = server_factory("--token-file", str(token))
    assert token.read_text() == "my-own-secret\n"
    with client(srv.address, key=b"my-own-secret") as c:
        assert c.ping() < 1.0


def test_non_loopback_bind_needs_a_token(server_factory, tmp_path):
    with pytest.raises(RuntimeError, match="needs a shared secret"):
        server_factory(address="tcp://0.0.0.0:*")
    token = tmp_path / "token"
    srv = server_factory("--token-file", str(token), address="tcp://0.0.0.0:*")
    port = srv.address.rsplit(":", 1)[1]
    with client(f"tcp://127.0.0.1:{port}", key=protocol.read_token(str(token))) as c:
        assert c.ping() < 1.0


def test_oversized_message_is_refused_at_the_socket(server_factory):
    srv = server_factory("--max-message-mb", "0.1")
    s = raw_socket(srv.address)
    try:
        s.send_multipart(protocol.pack("generate", "big-1", {"text": "x" * 200_000, "frames": 10}))
        assert recv(s, 1.0) is None  # zmq drops the message and the connection
    finally:
        s.close()
    with client(srv.address) as c:
        c.hello()
        with pytest.raises(ValueError, match="the server accepts at most 104857"):
            c.submit("generate", {"text": "x" * 200_000, "frames": 10})
        assert c.ping() < 1.0


# --- concurrency ----------------------------------------------------------------------------

def test_eight_clients_fifty_requests_each(server_factory):
    srv = server_factory("--queue-size", "64")
    n_clients, n_requests, window = 8, 50, 4
    expected = {}
    for k in range(n_clients):
        for i in range(n_requests):
            if i % 2 == 0:
                seed = 1000 * k + i
                expected[seed] = expected_positions(12, 5, seed).sum()
    failures: list[str] = []

    def run(k: int) -> None:
        try:
            with client(srv.address, timeout=10.0) as c:
                todo = list(range(n_requests))
                live: dict = {}
                while todo or live:
                    while todo and len(live) < window:
                        i = todo.pop(0)
                        if i % 2 == 0:
                            body = {"frames": 12, "joints": 5, "chunk_frames": 4, "seed": 1000 * k + i}
                            live[c.submit("selftest", body)] = ("selftest", 1000 * k + i)
                        else:
                            live[c.submit("ping")] = ("ping", None)
                    c.poll(1.0)
                    for req in [r for r in live if r.done]:
                        kind, seed = live.pop(req)
                        if req.error is not None:
                            failures.append(f"client {k}: {req.error}")
                        elif kind == "selftest" and not np.isclose(req.output["checksum"], expected[seed],
                                                                 rtol=1e-9, atol=1e-9):
                            failures.append(f"client {k}: crossed reply for seed {seed}")
                        elif kind == "ping" and set(req.output) != {"time"}:
                            failures.append(f"client {k}: bad ping reply {req.output}")
        except Exception as e:  # reported below, not lost in the thread
            failures.append(f"client {k}: {e!r}")

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
