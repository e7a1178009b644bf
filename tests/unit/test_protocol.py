"""The wire schema from both ends: every message type round-trips, signatures
are checked, and bad fields are refused with an error naming them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgpack
import numpy as np
import pytest

from kinemo.serve import handlers, protocol
from kinemo.serve.convert import motion_to_wire
from kinemo.serve.examples import chain_skeleton, example_request, wave_motion
from kinemo.serve.protocol import Code, Dropped, ProtocolError
from kinemo.serve.server import Server, ServerConfig, is_local

KEY = b"s3cret-token"
REPO = Path(__file__).resolve().parents[2]


def _same(a, b) -> None:
    """Deep equality with numpy arrays compared by value and dtype."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(b, np.ndarray) and isinstance(a, np.ndarray)
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (sorted(a), sorted(b))
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    else:
        assert a == b


def _client_to_server(msg_type, body, key=KEY, version=protocol.PROTOCOL_VERSION):
    frames = protocol.pack(msg_type, "req-1", body, key, version)
    env = protocol.unpack(frames, key)
    return env, protocol.validate_request(env)


@pytest.mark.parametrize("msg_type", protocol.REQUEST_TYPES)
def test_every_request_round_trips(msg_type):
    body = example_request(msg_type)
    env, decoded = _client_to_server(msg_type, body)
    assert (env.version, env.type, env.id) == (protocol.PROTOCOL_VERSION, msg_type, "req-1")
    defaults = {k: f.default for k, f in protocol.REQUEST_SCHEMAS[msg_type].fields.items()
                if not f.required and f.default is not None and k not in body}
    _same({**body, **defaults}, decoded)


def _outputs() -> dict[str, dict]:
    """A real output of each request type, as the server produces it."""
    ctx = handlers.Context()
    server = Server(ServerConfig(), ctx)
    sel = handlers.selftest(ctx, protocol.REQUEST_SCHEMAS["selftest"].check(example_request("selftest"), "b", {}),
                            lambda *a: None, lambda: False)
    motion = {"motion": motion_to_wire(wave_motion(chain_skeleton(5), 20))}
    bm_body = protocol.validate_request(protocol.unpack(protocol.pack("bonemap", "r1", example_request("bonemap"))))
    bm = handlers.bonemap(ctx, bm_body, lambda *a: None, lambda: False)
    assert len(bm["source"]) == 24  # SMPL -> SMPL under Mixamo names: every joint pairs
    out = {"bonemap": bm, "hello": server._hello(), "ping": {"time": 1.5e9},
           "cancel": {"found": True, "state": "running"}, "selftest": sel,
           "retarget": motion, "inbetween": motion, "generate": motion, "dance": motion}
    server.zctx.term()
    return out


@pytest.mark.parametrize("msg_type", protocol.REQUEST_TYPES)
def test_every_result_round_trips(msg_type):
    output = _outputs()[msg_type]
    frames = protocol.pack("result", "req-1", {"output": output, "timing": {"queued_s": 0.0, "run_s": 0.25}}, KEY)
    env = protocol.unpack(frames, KEY)
    body = protocol.validate_response(env)
    assert body["timing"] == {"queued_s": 0.0, "run_s": 0.25}
    _same(output, protocol.validate_result(msg_type, body["output"]))


@pytest.mark.parametrize("msg_type,body", [
    ("accepted", {"position": 3, "queue_size": 32}),
    ("progress", {"fraction": 0.5, "stage": "sampling", "message": "step 5/10"}),
    ("error", {"code": Code.BUSY, "message": "busy", "details": {"limit": 32}}),
    ("error", {"code": Code.CANCELLED, "message": "cancelled"}),
    ("heartbeat", {"time": 1.7e9, "pending": 2}),
])
def test_every_response_round_trips(msg_type, body):
    env = protocol.unpack(protocol.pack(msg_type, "req-9", body, KEY), KEY)
    assert env.type == msg_type and env.id == "req-9"
    assert protocol.validate_response(env) == body


def test_response_schemas_cover_all_types():
    assert set(protocol.RESPONSE_SCHEMAS) == set(protocol.RESPONSE_TYPES)
    assert set(protocol.REQUEST_SCHEMAS) == set(protocol.RESULT_SCHEMAS) == set(protocol.REQUEST_TYPES)
    assert set(handlers.HANDLERS) == set(protocol.JOB_REQUESTS)


# --- signatures -------------------------------------------------------------------

def test_signature_verifies_and_detects_tampering():
    sig, payload = protocol.pack("ping", "a1", {}, KEY)
    assert len(sig) == 64 and protocol.verify(KEY, sig, payload)
    tampered = payload.replace(b"a1", b"a2")
    with pytest.raises(Dropped, match="bad signature"):
        protocol.unpack([sig, tampered], KEY)
    with pytest.raises(Dropped, match="bad signature"):
        protocol.unpack([sig, payload], b"another key")
    with pytest.raises(Dropped, match="bad signature"):
        protocol.unpack([b"", payload], KEY)  # unsigned message to a server with a key


def test_no_key_means_no_signature():
    sig, payload = protocol.pack("ping", "a1", {})
    assert sig == b""
    assert protocol.unpack([sig, payload], None).type == "ping"


def test_wrong_frame_count_is_dropped():
    sig, payload = protocol.pack("ping", "a1", {}, KEY)
    for frames in ([payload], [sig, payload, b"x"], []):
        with pytest.raises(Dropped, match="expected 2 frames"):
            protocol.unpack(frames, KEY)


def test_read_token(tmp_path):
    p = tmp_path / "token"
    p.write_text("  abc123\n")
    assert protocol.read_token(str(p)) == b"abc123"
    p.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        protocol.read_token(str(p))


# --- envelope and version ------------------------------------------------------------

def _raw(obj) -> list[bytes]:
    return [b"", msgpack.packb(obj, use_bin_type=True)]


@pytest.mark.parametrize("frames,match", [
    ([b"", b"\xc1"], "not a valid msgpack"),
    ([b"", b"\x92\x01"], "not a valid msgpack"),            # truncated array
    (_raw([1, 2, 3]), "payload must be a map"),
    (_raw({"v": 1, "type": "ping", "id": "a", "body": {}, "x": 1}), "unknown envelope fields"),
    (_raw({"v": "1", "type": "ping", "id": "a", "body": {}}), "'v' must be an int"),
    (_raw({"v": 1, "type": "ping", "id": "", "body": {}}), "'id' must be"),
    (_raw({"v": 1, "type": "ping", "id": "a b", "body": {}}), "'id' must be"),
    (_raw({"v": 1, "type": "ping", "id": "x" * 65, "body": {}}), "'id' must be"),
    (_raw({"v": 1, "type": 3, "id": "a", "body": {}}), "'type' must be a string"),
    (_raw({"v": 1, "type": "ping", "id": "a", "body": []}), "'body' must be a map"),
    (_raw({1: 2}), "not a valid msgpack"),                   # non-string map key
    (_raw({"v": 1, "type": "ping", "id": "a", "body": [None] * 5000}), "not a valid msgpack"),
    (_raw({"v": 1, "type": "ping", "id": "a", "body": {"x": [[None] * 4000] * 30}}), "not a valid msgpack"),
])
def test_malformed_envelopes(frames, match):
    with pytest.raises(ProtocolError, match=match) as e:
        protocol.unpack(frames)
    assert e.value.code == Code.BAD_REQUEST


def test_version_mismatch_names_both_versions():
    with pytest.raises(ProtocolError) as e:
        _client_to_server("ping", {}, version=7)
    assert e.value.code == Code.UNSUPPORTED_VERSION
    assert "client speaks version 7" in e.value.message and "server speaks 1" in e.value.message
    assert e.value.details == {"client_version": 7, "server_versions": [1]}


def test_unknown_type():
    with pytest.raises(ProtocolError) as e:
        _client_to_server("teleport", {})
    assert e.value.code == Code.UNKNOWN_TYPE and "teleport" in e.value.message


def test_request_id_of_is_best_effort():
    assert protocol.request_id_of(_raw({"id": "abc", "v": "bad"})) == "abc"
    assert protocol.request_id_of(_raw({"id": "a b"})) == ""
    assert protocol.request_id_of([b"", b"\xc1"]) == ""


# --- field validation -------------------------------------------------------------------

def _arr(a, **over):
    d = protocol.encode_array(np.asarray(a))
    d.update(over)
    return d


def _mutate(msg_type, path, value):
    body = protocol.pack(msg_type, "r", example_request(msg_type))  # arrays -> wire maps
    body = msgpack.unpackb(body[1])["body"]
    *parents, last = path
    d = body
    for p in parents:
        d = d[p]
    if value is KeyError:
        del d[last]
    else:
        d[last] = value
    return body


NAN_ROT = np.tile(np.float32([1, 0, 0, 0]), (60, 24, 1))
NAN_ROT[3, 4, 2] = np.nan
ZERO_ROT = np.tile(np.float32([1, 0, 0, 0]), (60, 24, 1))
ZERO_ROT[5, 1] = 0


@pytest.mark.parametrize("msg_type,path,value,match", [
    ("selftest", ["frames"], "100", "body.frames: expected an integer, got str"),
    ("selftest", ["frames"], True, "expected an integer, got bool"),
    ("selftest", ["frames"], 0, r"body.frames: must be in \[1, 1000000\]"),
    ("selftest", ["frames"], KeyError, "missing field 'frames'"),
    ("selftest", ["colour"], "red", "unknown fields"),
    ("selftest", ["return_positions"], 1, "expected true/false"),
    ("cancel", ["target"], 5, "body.target: expected a string"),
    ("hello", ["protocol_versions"], list(range(17)), "at most 16 items"),
    ("retarget", ["motion", "fps"], float("nan"), "body.motion.fps: must be finite"),
    ("retarget", ["motion", "fps"], 0.0, r"must be in \[1.0, 1000.0\]"),
    ("retarget", ["motion", "rotations"], _arr(NAN_ROT), "rotations: contains NaN"),
    ("retarget", ["motion", "rotations"], _arr(ZERO_ROT), "zero-length quaternion at frame 5, joint 1"),
    ("retarget", ["motion", "rotations"], _arr(np.zeros((60, 23, 4), np.float32)),
     "shape\\[1\\] is 23 but Js=24"),
    ("retarget", ["motion", "rotations"], _arr(np.zeros((60, 24, 3), np.float32)), "shape\\[2\\] must be 4"),
    ("retarget", ["motion", "rotations"], _arr(np.zeros((60, 24, 4), np.float32), dtype="<f2"),
     "dtype must be one of"),
    ("retarget", ["motion", "rotations"], _arr(np.ones((60, 24, 4), np.float32), data=b"\0" * 12),
     "data holds 12 bytes but shape"),
    ("retarget", ["motion", "rotations"], _arr(np.ones((60, 24, 4), np.float32), shape=[2**40, 2**40, 4]),
     r"shape\[0\] \(T\) must be in"),
    ("retarget", ["motion", "rotations"], _arr(np.ones((60, 24, 4), np.float32), shape=[60, -24, 4]),
     "non-negative integers"),
    ("retarget", ["motion", "rotations"], _arr(np.ones((60, 24, 4), np.float32), dtype="O"),
     "dtype must be one of"),
    ("retarget", ["motion", "rotations"], {"dtype": "<f4", "shape": [1, 24, 4]}, "exactly the keys"),
    ("retarget", ["motion", "rotations"], [[1.0, 0.0, 0.0, 0.0]], "expected an array map"),
    ("retarget", ["source_rig", "names"], ["pelvis"] * 24, "duplicate bone names"),
    ("retarget", ["source_rig", "names"], ["x" * 129] + [f"b{i}" for i in range(23)],
     r"names\[0\]: length must be"),
    ("retarget", ["source_rig", "parents"], _arr(np.arange(24, dtype=np.int32)), "exactly one root first"),
    ("retarget", ["source_rig", "parents"], _arr(np.arange(24, dtype=np.float32) - 1), "dtype must be one of"),
    ("retarget", ["target_rig", "rest_matrices"], _arr(np.zeros((24, 4, 4), np.float32)), "last row"),
    ("retarget", ["target_rig", "rest_matrices"], _arr(np.tile(np.diag([1, 1, -1, 1]).astype(np.float32),
                                                               (24, 1, 1))), "mirrored"),
    ("inbetween", ["keys", "frames"], _arr(np.array([0, 30, 30])), "strictly increasing"),
    ("inbetween", ["keys", "frames"], _arr(np.array([0, 30, 60])), r"within \[0, 60\)"),
    ("inbetween", ["keys", "mask"], _arr(np.full((3, 24), 2, np.uint8)), "only hold 0 and 1"),
    ("generate", ["text"], "", "length must be in"),
    ("generate", ["text"], "x" * 2001, "length must be in"),
    ("dance", ["audio"], b"RIFF", "exactly one of 'audio'"),
    ("dance", ["features"], KeyError, "exactly one of 'audio'"),
])
def test_invalid_fields_are_named(msg_type, path, value, match):
    body = _mutate(msg_type, path, value)
    env = protocol.Envelope(1, msg_type, "r", body)
    with pytest.raises(ProtocolError, match=match) as e:
        protocol.validate_request(env)
    assert e.value.code == Code.BAD_REQUEST


def test_uint8_mask_decodes_to_bool():
    body = _mutate("inbetween", ["keys", "mask"], _arr(np.eye(3, 24, dtype=np.uint8)))
    out = protocol.validate_request(protocol.Envelope(1, "inbetween", "r", body))
    assert out["keys"]["mask"].dtype == np.bool_ and out["keys"]["mask"].sum() == 3


def test_encode_array_little_endian_only():
    big = np.arange(6, dtype=">f8").reshape(2, 3)
    enc = protocol.encode_array(big)
    assert enc["dtype"] == "<f8" and enc["shape"] == [2, 3]
    np.testing.assert_array_equal(np.frombuffer(enc["data"], "<f8").reshape(2, 3), big)
    with pytest.raises(TypeError, match="dtype <f2 cannot travel"):
        protocol.pack("x", "r", {"a": np.zeros(3, np.float16)})
    with pytest.raises(TypeError, match="cannot send a set"):
        protocol.pack("x", "r", {"a": {1, 2}})


def test_is_local():
    for a in ("tcp://127.0.0.1:5557", "tcp://localhost:1", "tcp://[::1]:5557", "ipc:///tmp/k", "tcp://127.0.0.1:*"):
        assert is_local(a), a
    for a in ("tcp://0.0.0.0:5557", "tcp://*:5557", "tcp://192.168.1.4:5557", "tcp://eth0:5557", "udp://x"):
        assert not is_local(a), a


def test_client_and_protocol_import_without_numpy_or_torch():
    """The add-on vendors client.py + protocol.py: they must import and talk
    without numpy (arrays are decoded lazily) and never pull torch."""
    code = (
        "import sys\n"
        "sys.modules['numpy'] = None; sys.modules['torch'] = None\n"
        "from kinemo.serve import client, protocol\n"
        "f = protocol.pack('ping', 'abc', {}, b'k')\n"
        "assert protocol.validate_request(protocol.unpack(f, b'k')) == {}\n"
        "c = client.Client('tcp://127.0.0.1:1', timeout=0.1)\n"
        "c.close()\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "backend")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
