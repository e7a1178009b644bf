"""Thousands of malformed, truncated, wrongly-typed and oversized messages
thrown at a live server: each is answered (exactly one first reply) or
dropped (bad framing), every reply is a well-formed response, no reply is an
internal error, and the server keeps serving throughout."""
from __future__ import annotations

import copy
import math

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kinemo.serve import protocol
from kinemo.serve.client import Client
from kinemo.serve.examples import example_request
from kinemo.serve.protocol import Code

MAX_MB = 0.25
FUZZ = settings(deadline=None, max_examples=400, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory, launch):
    s = launch(tmp_path_factory.mktemp("fuzz"), "--queue-size", "4", "--client-timeout", "1",
                     "--heartbeat", "0.5", "--max-message-mb", str(MAX_MB))
    yield s
    alive = s.proc.poll() is None
    rc = s.stop()
    log = s.log_text()
    assert alive and rc == 0, log
    assert "Traceback" not in log and "internal error" not in log, log


# --- strategies ------------------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20) | st.binary(max_size=40))
values = st.recursive(scalars, lambda ch: st.lists(ch, max_size=5) | st.dictionaries(st.text(max_size=8), ch,
                                                                                       max_size=5),
                      max_leaves=20)
# Values aimed at the validators' edges.
nasty = st.sampled_from([
    math.nan, math.inf, -math.inf, -1, 0, 2**63 - 1, -(2**63), 2**64 - 1, 1e308, "", "x" * 3000, b"", b"\0" * 300,
    [], {}, [None] * 300, {"dtype": "<f4", "shape": [2**31, 2**31], "data": b""},
    {"dtype": "<f4", "shape": [1, 1, 4], "data": b"\0" * 16}, {"dtype": "|O", "shape": [1], "data": b"\0" * 8},
    {"dtype": "<f8", "shape": [-1], "data": b""}, {"dtype": "<f4", "shape": "3", "data": b"abc"},
    msgpack.ExtType(5, b"xx"), True,
]) | values


def wire_body(msg_type: str) -> dict:
    """The example body as it travels (arrays as maps)."""
    return msgpack.unpackb(protocol.pack(msg_type, "x", example_request(msg_type, frames=8))[1])["body"]


BODIES = {t: wire_body(t) for t in protocol.REQUEST_TYPES}


def paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:3]):
            yield from paths(v, prefix + (i,))


@st.composite
def mutated_requests(draw) -> list[bytes]:
    t = draw(st.sampled_from(protocol.REQUEST_TYPES))
    body = copy.deepcopy(BODIES[t])
    path = draw(st.sampled_from(list(paths(body))))
    action = draw(st.sampled_from(["replace", "delete", "add"]))
    if not path:
        body = draw(nasty) if action == "replace" else {**body, "extra": 1}
    else:
        parent = body
        for k in path[:-1]:
            parent = parent[k]
        if action == "replace":
            parent[path[-1]] = draw(nasty)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(st.text(max_size=8))] = draw(nasty)
        else:
            parent[path[-1]] = [parent[path[-1]], draw(nasty)]
    rid = draw(st.sampled_from(["fz-1", "fz.2:x", "a" * 64]))
    return [b"", msgpack.packb({"v": 1, "type": t, "id": rid, "body": body}, use_bin_type=True)]


@st.composite
def truncated_requests(draw) -> list[bytes]:
    t = draw(st.sampled_from(protocol.REQUEST_TYPES))
    payload = msgpack.packb({"v": 1, "type": t, "id": "tr-1", "body": BODIES[t]}, use_bin_type=True)
    return [b"", payload[:draw(st.integers(0, len(payload) - 1))]]


@st.composite
def bad_envelopes(draw) -> list[bytes]:
    env = {"v": draw(st.integers(-3, 5) | values), "type": draw(st.sampled_from(protocol.REQUEST_TYPES) | values),
           "id": draw(st.sampled_from(["ok-1"]) | values), "body": draw(values)}
    for k in draw(st.lists(st.sampled_from(list(env)), max_size=2)):
        env.pop(k, None)
    if draw(st.booleans()):
        env[draw(st.text(max_size=5))] = draw(values)
    return [draw(st.binary(max_size=70)), msgpack.packb(env, use_bin_type=True)]


raw_frames = st.lists(st.binary(max_size=200), min_size=1, max_size=4)
packed_values = values.map(lambda v: [b"", msgpack.packb(v, use_bin_type=True)])


# --- the property ------------------------------------------------------------------------

class Probe:
    """Sends one message on a fresh socket, then a ping, and reads until the
    ping's answer: the server must still be answering after every message."""

    def __init__(self, address: str):
        self.address = address
        self.ctx = zmq.Context.instance()
        self.n = 0

    def check(self, frames: list[bytes]) -> None:
        self.n += 1
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.address)
        try:
            s.send_multipart(frames)
            probe = f"probe-{self.n}"
            s.send_multipart(protocol.pack("ping", probe, {}))
            firsts = []
            while True:
                assert s.poll(5000), f"server stopped answering after {frames!r:.200}"
                env = protocol.unpack(s.recv_multipart())
                body = protocol.validate_response(env)  # every reply is well-formed
                if env.type == "error":
                    assert body["code"] in protocol.ERROR_CODES and body["code"] != Code.INTERNAL, body
                if env.id == probe:
                    assert env.type == "result"
                    break
                if env.type not in ("heartbeat", "progress") and not firsts:
                    firsts.append(env.type)
            if len(frames) == 2:
                assert firsts and firsts[0] in ("error", "result", "accepted"), firsts
            else:
                assert firsts == [], f"a {len(frames)}-frame message must be dropped, got {firsts}"
        finally:
            s.close()


@pytest.fixture(scope="module")
def probe(fuzz_server):
    return Probe(fuzz_server.address)


@FUZZ
@given(frames=mutated_requests())
def test_mutated_requests(probe, frames):
    probe.check(frames)


@FUZZ
@given(frames=truncated_requests())
def test_truncated_requests(probe, frames):
    probe.check(frames)


@FUZZ
@given(frames=bad_envelopes())
def test_bad_envelopes(probe, frames):
    probe.check(frames)


@FUZZ
@given(frames=raw_frames)
def test_raw_frames(probe, frames):
    probe.check(frames)


@FUZZ
@given(frames=packed_values)
def test_arbitrary_msgpack(probe, frames):
    probe.check(frames)


@settings(FUZZ, max_examples=15)
@given(size=st.integers(int(MAX_MB * 2**20) + 1, int(MAX_MB * 2**20) * 3), kind=st.sampled_from(["bin", "text"]))
def test_oversized_messages_are_dropped(fuzz_server, probe, size, kind):
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(fuzz_server.address)
    try:
        body = {"audio": b"\0" * size} if kind == "bin" else {"text": "x" * size}
        s.send_multipart(protocol.pack("dance" if kind == "bin" else "generate", "big-1", body))
        assert not s.poll(300), "an oversized message must be dropped at the socket"
    finally:
        s.close()
    probe.check(protocol.pack("ping", "after-big", {}))


def test_still_serving_after_the_fuzz(fuzz_server, probe):
    with Client(fuzz_server.address, timeout=5.0) as c:
        assert c.hello()["protocol_version"] == protocol.PROTOCOL_VERSION
        assert c.call("selftest", {"frames": 30}, timeout=10)["frames"] == 30
