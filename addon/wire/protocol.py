"""The Kinemo wire protocol: the single source of truth for the message schema.

Both ends import this module: the server (``kinemo.serve.server``) and the
client that the Blender add-on vendors (``kinemo.serve.client``). It needs
only the standard library and ``msgpack`` at import time; numpy is imported
lazily, when an array is decoded or validated. ``docs/protocol.md`` explains
the same schema in prose.

Frames (ZeroMQ multipart):

- client (DEALER) -> server (ROUTER): ``[signature, payload]``
- server -> client: ``[signature, payload]`` (the ROUTER prefixes/strips the
  peer's routing id)

``payload`` is a msgpack map ``{"v": int, "type": str, "id": str, "body": map}``.
``signature`` is the hex HMAC-SHA256 of ``payload`` under the shared secret,
or empty when no secret is configured.

Arrays are maps ``{"dtype": "<f4", "shape": [..], "data": <raw bytes>}``
(little-endian, C order). Any object with ``tobytes``, ``dtype`` and
``shape`` (a numpy array) is encoded that way by :func:`pack`.
"""
from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import msgpack

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = (1,)

# --- message types -------------------------------------------------------------

# Answered at once by the server's main loop.
QUICK_REQUESTS = ("hello", "ping", "cancel")
# Run by a worker: accepted -> progress* -> result | error.
JOB_REQUESTS = ("inbetween", "generate", "dance", "retarget", "bonemap", "selftest")
REQUEST_TYPES = QUICK_REQUESTS + JOB_REQUESTS
RESPONSE_TYPES = ("accepted", "progress", "result", "error", "heartbeat")


class Code:
    """Error codes carried by ``error`` messages."""

    BAD_REQUEST = "bad_request"              # malformed message or invalid field
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_TYPE = "unknown_type"
    NOT_AVAILABLE = "not_available"          # request type known but its engine is not here
    BUSY = "busy"                            # job queue full
    CANCELLED = "cancelled"
    SHUTTING_DOWN = "shutting_down"
    INTERNAL = "internal"                    # a bug on the server; see its log
    # Raised by the client itself, never sent by the server:
    BACKEND_UNAVAILABLE = "backend_unavailable"
    BAD_RESPONSE = "bad_response"


ERROR_CODES = tuple(v for k, v in vars(Code).items() if k.isupper())

# --- limits --------------------------------------------------------------------

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024   # enforced with zmq.MAXMSGSIZE on the server
MAX_ID_LEN = 64
MAX_FRAMES = 100_000
MAX_JOINTS = 1024
MAX_NAME_LEN = 128
MAX_TEXT_LEN = 2000
MAX_AUDIO_BYTES = 48 * 1024 * 1024
MAX_FEATURES = 1024
# msgpack decoding bounds: a hostile payload cannot make millions of objects.
_MAX_ARRAY_LEN = 4096
_MAX_MAP_LEN = 256
_MAX_STR_LEN = 64 * 1024
_MAX_CONTAINER_ITEMS = 100_000

FLOAT_DTYPES = ("<f4", "<f8")
INT_DTYPES = ("<i4", "<i8")
BOOL_DTYPES = ("|b1", "|u1")
_DTYPES = {"float": FLOAT_DTYPES, "int": INT_DTYPES, "bool": BOOL_DTYPES}
_ITEMSIZE = {"<f4": 4, "<f8": 8, "<i4": 4, "<i8": 8, "|b1": 1, "|u1": 1}


class ProtocolError(Exception):
    """A message that cannot be accepted; becomes an ``error`` reply."""

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


class Dropped(Exception):
    """A message to drop without a reply (bad framing or bad signature)."""


# --- signing -------------------------------------------------------------------

def sign(key: bytes | None, payload: bytes) -> bytes:
    """Hex HMAC-SHA256 of ``payload``; ``b""`` without a key."""
    if not key:
        return b""
    return hmac.new(key, payload, hashlib.sha256).hexdigest().encode("ascii")


def verify(key: bytes | None, signature: bytes, payload: bytes) -> bool:
    """True when ``signature`` matches (always true without a key)."""
    if not key:
        return True
    return hmac.compare_digest(sign(key, payload), bytes(signature))


def read_token(path: str) -> bytes:
    """The shared secret in a token file: its content without surrounding whitespace."""
    with open(path, "rb") as f:
        key = f.read().strip()
    if not key:
        raise ValueError(f"token file {path} is empty")
    return key


# --- encoding ------------------------------------------------------------------

def _default(obj: Any) -> Any:
    """msgpack hook: arrays -> ``{dtype, shape, data}``, numpy scalars -> Python."""
    if hasattr(obj, "tobytes") and hasattr(obj, "dtype") and hasattr(obj, "shape"):
        if tuple(obj.shape) == ():
            return obj.item()
        dt = obj.dtype
        if dt.byteorder == ">":
            obj = obj.astype(dt.newbyteorder("<"))
            dt = obj.dtype
        if dt.str not in _ITEMSIZE:
            raise TypeError(f"arrays of dtype {dt.str} cannot travel; use one of {sorted(_ITEMSIZE)}")
        return {"dtype": dt.str, "shape": [int(n) for n in obj.shape], "data": obj.tobytes()}
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"cannot send a {type(obj).__name__}")


def encode_array(a: Any) -> dict:
    """An array (anything with ``tobytes``/``dtype``/``shape``) as its wire map."""
    return _default(a)


def pack(msg_type: str, request_id: str, body: dict, key: bytes | None = None,
         version: int = PROTOCOL_VERSION) -> list[bytes]:
    """Encode one message as its frames ``[signature, payload]``."""
    payload = msgpack.packb({"v": version, "type": msg_type, "id": request_id, "body": body},
                            default=_default, use_bin_type=True)
    return [sign(key, payload), payload]


@dataclass(frozen=True)
class Envelope:
    version: int
    type: str
    id: str
    body: dict


def _counting_hooks():
    """list/object hooks that stop decoding after too many container items."""
    count = [0]

    def bump(n: int) -> None:
        count[0] += n
        if count[0] > _MAX_CONTAINER_ITEMS:
            raise ValueError(f"more than {_MAX_CONTAINER_ITEMS} list/map items")

    def list_hook(x):
        bump(len(x))
        return x

    def object_hook(x):
        bump(len(x))
        return x

    return list_hook, object_hook


def _id_ok(x: Any) -> bool:
    return (isinstance(x, str) and 0 < len(x) <= MAX_ID_LEN
            and all(c.isascii() and (c.isalnum() or c in "-_.:") for c in x))


def unpack(frames: list[bytes], key: bytes | None = None) -> Envelope:
    """Decode ``[signature, payload]`` into an :class:`Envelope`.

    Raises :class:`Dropped` for bad framing or a bad signature, and
    :class:`ProtocolError` (``bad_request``) for a payload that is not a
    well-formed envelope. The body is *not* validated here (see
    :func:`validate_request` / :func:`validate_response`).
    """
    if len(frames) != 2:
        raise Dropped(f"expected 2 frames (signature, payload), got {len(frames)}")
    signature, payload = bytes(frames[0]), bytes(frames[1])
    if not verify(key, signature, payload):
        raise Dropped("bad signature")
    list_hook, object_hook = _counting_hooks()
    try:
        msg = msgpack.unpackb(payload, raw=False, strict_map_key=True, use_list=True,
                              list_hook=list_hook, object_hook=object_hook,
                              max_str_len=_MAX_STR_LEN, max_bin_len=len(payload),
                              max_array_len=_MAX_ARRAY_LEN, max_map_len=_MAX_MAP_LEN, max_ext_len=64)
    except Exception as e:  # msgpack raises several types; none may escape
        raise ProtocolError(Code.BAD_REQUEST, f"payload is not a valid msgpack message: {e}") from None
    if not isinstance(msg, dict):
        raise ProtocolError(Code.BAD_REQUEST, f"payload must be a map, got {_tname(msg)}")
    rid = msg.get("id")
    rid = rid if _id_ok(rid) else ""
    extra = sorted(str(k)[:40] for k in msg if k not in ("v", "type", "id", "body"))
    if extra:
        raise ProtocolError(Code.BAD_REQUEST, f"unknown envelope fields: {extra}")
    v = msg.get("v")
    if not isinstance(v, int) or isinstance(v, bool):
        raise ProtocolError(Code.BAD_REQUEST, f"envelope field 'v' must be an int, got {_tname(v)}")
    if not rid:
        raise ProtocolError(Code.BAD_REQUEST, f"envelope field 'id' must be 1-{MAX_ID_LEN} characters "
                            "from [A-Za-z0-9-_.:]")
    t = msg.get("type")
    if not isinstance(t, str):
        raise ProtocolError(Code.BAD_REQUEST, f"envelope field 'type' must be a string, got {_tname(t)}")
    body = msg.get("body", {})
    if not isinstance(body, dict):
        raise ProtocolError(Code.BAD_REQUEST, f"envelope field 'body' must be a map, got {_tname(body)}")
    return Envelope(v, t, rid, body)


def request_id_of(frames: list[bytes]) -> str:
    """Best-effort request id of a payload that failed to decode (``""`` if none)."""
    try:
        msg = msgpack.unpackb(bytes(frames[-1]), raw=False, max_array_len=64, max_map_len=64,
                              max_str_len=1024, max_bin_len=1024, max_ext_len=0)
        rid = msg.get("id") if isinstance(msg, dict) else None
        return rid if _id_ok(rid) else ""
    except Exception:
        return ""


def check_version(env: Envelope) -> None:
    if env.version not in SUPPORTED_VERSIONS:
        raise ProtocolError(
            Code.UNSUPPORTED_VERSION,
            f"protocol version mismatch: the client speaks version {env.version}, this server speaks "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}; update the add-on or the backend so they match",
            {"client_version": env.version, "server_versions": list(SUPPORTED_VERSIONS)})


# --- schema --------------------------------------------------------------------

def _tname(x: Any) -> str:
    return "nil" if x is None else type(x).__name__


def _fail(path: str, msg: str) -> ProtocolError:
    return ProtocolError(Code.BAD_REQUEST, f"{path}: {msg}")


@dataclass(frozen=True)
class Dim:
    """A named dimension bound by its first use and checked by the others."""

    name: str
    lo: int = 0
    hi: int = MAX_FRAMES


class Spec:
    def check(self, x: Any, path: str, dims: dict[str, int]) -> Any:
        raise NotImplementedError


def _bind(dim: int | Dim, n: int, path: str, dims: dict[str, int], what: str) -> None:
    if isinstance(dim, int):
        if n != dim:
            raise _fail(path, f"{what} must be {dim}, got {n}")
        return
    if dim.name in dims:
        if n != dims[dim.name]:
            raise _fail(path, f"{what} is {n} but {dim.name}={dims[dim.name]} elsewhere in this message")
        return
    if not dim.lo <= n <= dim.hi:
        raise _fail(path, f"{what} ({dim.name}) must be in [{dim.lo}, {dim.hi}], got {n}")
    dims[dim.name] = n


@dataclass(frozen=True)
class Int(Spec):
    lo: int = -(2**63)
    hi: int = 2**63 - 1

    def check(self, x, path, dims):
        if not isinstance(x, int) or isinstance(x, bool):
            raise _fail(path, f"expected an integer, got {_tname(x)}")
        if not self.lo <= x <= self.hi:
            raise _fail(path, f"must be in [{self.lo}, {self.hi}], got {x}")
        return x


@dataclass(frozen=True)
class Float(Spec):
    lo: float = -math.inf
    hi: float = math.inf

    def check(self, x, path, dims):
        if not isinstance(x, (int, float)) or isinstance(x, bool):
            raise _fail(path, f"expected a number, got {_tname(x)}")
        x = float(x)
        if not math.isfinite(x):
            raise _fail(path, f"must be finite, got {x}")
        if not self.lo <= x <= self.hi:
            raise _fail(path, f"must be in [{self.lo}, {self.hi}], got {x}")
        return x


@dataclass(frozen=True)
class Bool(Spec):
    def check(self, x, path, dims):
        if not isinstance(x, bool):
            raise _fail(path, f"expected true/false, got {_tname(x)}")
        return x


@dataclass(frozen=True)
class Str(Spec):
    lo: int = 0
    hi: int = 256
    choices: tuple[str, ...] | None = None

    def check(self, x, path, dims):
        if not isinstance(x, str):
            raise _fail(path, f"expected a string, got {_tname(x)}")
        if not self.lo <= len(x) <= self.hi:
            raise _fail(path, f"length must be in [{self.lo}, {self.hi}], got {len(x)}")
        if self.choices is not None and x not in self.choices:
            raise _fail(path, f"must be one of {list(self.choices)}, got {x[:40]!r}")
        return x


@dataclass(frozen=True)
class Bytes(Spec):
    lo: int = 0
    hi: int = MAX_AUDIO_BYTES

    def check(self, x, path, dims):
        if not isinstance(x, bytes):
            raise _fail(path, f"expected bytes, got {_tname(x)}")
        if not self.lo <= len(x) <= self.hi:
            raise _fail(path, f"size must be in [{self.lo}, {self.hi}] bytes, got {len(x)}")
        return x


@dataclass(frozen=True)
class ListOf(Spec):
    item: Spec
    length: int | Dim | None = None   # None: any length up to ``hi``
    hi: int = 256

    def check(self, x, path, dims):
        if not isinstance(x, list):
            raise _fail(path, f"expected a list, got {_tname(x)}")
        if self.length is None:
            if len(x) > self.hi:
                raise _fail(path, f"at most {self.hi} items, got {len(x)}")
        else:
            _bind(self.length, len(x), path, dims, "length")
        return [self.item.check(v, f"{path}[{i}]", dims) for i, v in enumerate(x)]


@dataclass(frozen=True)
class MapOf(Spec):
    value: Spec
    hi: int = 64

    def check(self, x, path, dims):
        if not isinstance(x, dict):
            raise _fail(path, f"expected a map, got {_tname(x)}")
        if len(x) > self.hi:
            raise _fail(path, f"at most {self.hi} entries, got {len(x)}")
        out = {}
        for k, v in x.items():
            if not isinstance(k, str) or len(k) > MAX_NAME_LEN:
                raise _fail(path, f"keys must be strings of at most {MAX_NAME_LEN} characters")
            out[k] = self.value.check(v, f"{path}.{k}", dims)
        return out


@dataclass(frozen=True)
class Plain(Spec):
    """Any msgpack value made of nil/bool/numbers/strings/lists/maps (no arrays check)."""

    depth: int = 4

    def check(self, x, path, dims, _d: int = 0):
        if _d > self.depth:
            raise _fail(path, f"nested deeper than {self.depth}")
        if x is None or isinstance(x, (bool, int, str, bytes)):
            return x
        if isinstance(x, float):
            if not math.isfinite(x):
                raise _fail(path, f"must be finite, got {x}")
            return x
        if isinstance(x, list):
            return [self.check(v, f"{path}[{i}]", dims, _d + 1) for i, v in enumerate(x)]
        if isinstance(x, dict) and all(isinstance(k, str) for k in x):
            return {k: self.check(v, f"{path}.{k}", dims, _d + 1) for k, v in x.items()}
        raise _fail(path, f"unexpected {_tname(x)}")


@dataclass(frozen=True)
class Array(Spec):
    """A numeric array ``{dtype, shape, data}``; decodes to a read-only numpy array."""

    kind: str                      # "float" | "int" | "bool"
    shape: tuple[int | Dim, ...]
    finite: bool = True

    def check(self, x, path, dims):
        if not isinstance(x, dict) or set(x) != {"dtype", "shape", "data"}:
            raise _fail(path, "expected an array map with exactly the keys dtype, shape, data")
        dtype, shape, data = x["dtype"], x["shape"], x["data"]
        allowed = _DTYPES[self.kind]
        if dtype not in allowed:
            raise _fail(path, f"dtype must be one of {list(allowed)}, got {str(dtype)[:20]!r}")
        if (not isinstance(shape, list) or len(shape) != len(self.shape)
                or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
            raise _fail(path, f"shape must be a list of {len(self.shape)} non-negative integers "
                              f"({_shape_str(self.shape)}), got {str(shape)[:60]}")
        for i, (n, d) in enumerate(zip(shape, self.shape)):
            _bind(d, n, path, dims, f"shape[{i}]")
        if not isinstance(data, bytes):
            raise _fail(path, f"data must be bytes, got {_tname(data)}")
        expected = math.prod(shape) * _ITEMSIZE[dtype]
        if len(data) != expected:
            raise _fail(path, f"data holds {len(data)} bytes but shape {shape} of {dtype} needs {expected}")
        import numpy as np
        a = np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape)
        if self.kind == "float" and self.finite and not np.isfinite(a).all():
            raise _fail(path, "contains NaN or infinite values")
        if dtype == "|u1" and self.kind == "bool":
            if (a > 1).any():
                raise _fail(path, "a uint8 mask may only hold 0 and 1")
            a = a.view(np.bool_)
        return a


class _PassThrough(Spec):
    def check(self, x, path, dims):
        return x


def _shape_str(shape) -> str:
    return "(" + ", ".join(d.name if isinstance(d, Dim) else str(d) for d in shape) + ")"


@dataclass(frozen=True)
class F:
    """A field of a :class:`Struct`."""

    spec: Spec
    required: bool = True
    default: Any = None


@dataclass(frozen=True)
class Struct(Spec):
    fields: dict[str, F]
    check_fn: Callable[[dict, str], None] | None = field(default=None, compare=False)

    def check(self, x, path, dims):
        if not isinstance(x, dict):
            raise _fail(path, f"expected a map, got {_tname(x)}")
        unknown = [str(k)[:40] for k in x if k not in self.fields]
        if unknown:
            raise _fail(path, f"unknown fields {sorted(unknown)}; known: {sorted(self.fields)}")
        out = {}
        for name, f in self.fields.items():
            if name in x:
                out[name] = f.spec.check(x[name], f"{path}.{name}", dims)
            elif f.required:
                raise _fail(path, f"missing field {name!r}")
            elif f.default is not None:
                out[name] = f.default
        if self.check_fn is not None:
            self.check_fn(out, path)
        return out


# --- the bodies ----------------------------------------------------------------

SEED = Int(0, 2**32 - 1)
FPS = Float(1.0, 1000.0)


def _check_rig(r: dict, path: str) -> None:
    import numpy as np
    names = r["names"]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})[:5]
        raise _fail(f"{path}.names", f"duplicate bone names {dup}")
    p = r["parents"]
    J = len(p)
    if p[0] != -1 or (J > 1 and (np.any(p[1:] < 0) or np.any(p[1:] >= np.arange(1, J)))):
        raise _fail(f"{path}.parents", "must list exactly one root first (-1) and every parent "
                                       "before its child (0 <= parents[j] < j)")
    m = r["rest_matrices"]
    if not np.allclose(m[:, 3, :], [0.0, 0.0, 0.0, 1.0], atol=1e-4):
        raise _fail(f"{path}.rest_matrices", "the last row of each 4x4 matrix must be (0, 0, 0, 1)")
    det = np.linalg.det(m[:, :3, :3].astype(np.float64))
    if np.any(det <= 1e-9):
        j = int(np.argmax(det <= 1e-9))
        raise _fail(f"{path}.rest_matrices", f"bone {names[j]!r} has a degenerate or mirrored rest "
                                             f"rotation (determinant {det[j]:.3g})")


def _check_quats(m: dict, path: str) -> None:
    import numpy as np
    n = np.linalg.norm(m["rotations"].astype(np.float64), axis=-1)
    if np.any(n < 1e-6):
        t, j = np.argwhere(n < 1e-6)[0]
        raise _fail(f"{path}.rotations", f"zero-length quaternion at frame {t}, joint {j}")


def rig_spec(j: str = "J") -> Struct:
    """A rig description: bone names, parents, rest matrices in armature space."""
    J = Dim(j, 1, MAX_JOINTS)
    return Struct({
        "names": F(ListOf(Str(1, MAX_NAME_LEN), J)),
        "parents": F(Array("int", (J,))),
        "rest_matrices": F(Array("float", (J, 4, 4))),
    }, _check_rig)


def motion_spec(t: str = "T", j: str = "J") -> Struct:
    """Local rotations (w-first quaternions) and translations per frame, plus fps."""
    T, J = Dim(t, 1, MAX_FRAMES), Dim(j, 1, MAX_JOINTS)
    return Struct({
        "rotations": F(Array("float", (T, J, 4))),
        "translations": F(Array("float", (T, J, 3))),
        "fps": F(FPS),
    }, _check_quats)


def _check_inbetween(b: dict, path: str) -> None:
    f = b["keys"]["frames"]
    import numpy as np
    if len(f) and (f[0] < 0 or f[-1] >= b["frames"] or np.any(np.diff(f) <= 0)):
        raise _fail(f"{path}.keys.frames", f"must be strictly increasing and within [0, {b['frames']})")


def _check_dance(b: dict, path: str) -> None:
    has_audio, has_feat = "audio" in b, "features" in b
    if has_audio == has_feat:
        raise _fail(path, "give exactly one of 'audio' (file bytes) or 'features' (per-frame array)")
    if has_audio and "audio_format" not in b:
        raise _fail(path, "'audio' needs 'audio_format'")
    if has_feat and "features_fps" not in b:
        raise _fail(path, "'features' needs 'features_fps'")


def _check_mapping(m: dict, path: str) -> None:
    for side in ("source", "target"):
        names = m[side]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})[:5]
            raise _fail(f"{path}.{side}", f"each bone may appear once; repeated: {dup}")


# Explicit bone pairs (source[i] drives target[i]); they replace the automatic pairing.
MAPPING = Struct({
    "source": F(ListOf(Str(1, MAX_NAME_LEN), Dim("M", 1, MAX_JOINTS))),
    "target": F(ListOf(Str(1, MAX_NAME_LEN), Dim("M", 1, MAX_JOINTS))),
}, _check_mapping)

_SAMPLING = {"seed": F(SEED, False), "steps": F(Int(1, 1000), False)}

REQUEST_SCHEMAS: dict[str, Struct] = {
    "hello": Struct({
        "client": F(Str(0, 128), False),
        "protocol_versions": F(ListOf(Int(0, 2**31), hi=16), False),
    }),
    "ping": Struct({}),
    "cancel": Struct({"target": F(Str(1, MAX_ID_LEN))}),
    "retarget": Struct({
        "source_rig": F(rig_spec("Js")),
        "motion": F(motion_spec("T", "Js")),
        "target_rig": F(rig_spec("Jt")),
        "mapping": F(MAPPING, False),
    }),
    # The automatic bone pairing retarget would use, for a person to review and edit.
    "bonemap": Struct({
        "source_rig": F(rig_spec("Js")),
        "target_rig": F(rig_spec("Jt")),
    }),
    # Diagnostic: forward kinematics of a generated motion, in chunks, with
    # progress. A real computation for testing progress, cancel and transfer.
    "selftest": Struct({
        "frames": F(Int(1, 1_000_000)),
        "joints": F(Int(1, MAX_JOINTS), False, 24),
        "chunk_frames": F(Int(1, 100_000), False, 256),
        "seed": F(SEED, False, 0),
        "return_positions": F(Bool(), False, False),
    }),
    # The model requests. Keys are local poses on the user's rig; the result
    # comes back on that rig.
    "inbetween": Struct({
        "rig": F(rig_spec("J")),
        "keys": F(Struct({
            "frames": F(Array("int", (Dim("K", 1, MAX_FRAMES),))),
            "rotations": F(Array("float", (Dim("K", 1, MAX_FRAMES), Dim("J", 1, MAX_JOINTS), 4))),
            "translations": F(Array("float", (Dim("K", 1, MAX_FRAMES), Dim("J", 1, MAX_JOINTS), 3))),
            "mask": F(Array("bool", (Dim("K", 1, MAX_FRAMES), Dim("J", 1, MAX_JOINTS))), False),
        })),
        "frames": F(Int(1, MAX_FRAMES)),
        "fps": F(FPS, False, 30.0),
        "text": F(Str(1, MAX_TEXT_LEN), False),
        **_SAMPLING,
    }, _check_inbetween),
    "generate": Struct({
        "text": F(Str(1, MAX_TEXT_LEN)),
        "frames": F(Int(1, MAX_FRAMES)),
        "fps": F(FPS, False, 30.0),
        "rig": F(rig_spec("J"), False),
        "guidance": F(Float(0.0, 100.0), False),
        **_SAMPLING,
    }),
    "dance": Struct({
        "audio": F(Bytes(1, MAX_AUDIO_BYTES), False),
        "audio_format": F(Str(choices=("wav", "flac", "ogg", "mp3")), False),
        "features": F(Array("float", (Dim("TF", 1, MAX_FRAMES * 4), Dim("F", 1, MAX_FEATURES))), False),
        "features_fps": F(FPS, False),
        "frames": F(Int(1, MAX_FRAMES), False),
        "fps": F(FPS, False, 30.0),
        "rig": F(rig_spec("J"), False),
        "text": F(Str(1, MAX_TEXT_LEN), False),
        **_SAMPLING,
    }, _check_dance),
}

_MOTION_OUT = Struct({"motion": F(motion_spec("T", "J"))})

RESULT_SCHEMAS: dict[str, Struct] = {
    "hello": Struct({
        "server": F(Str(0, 128)),
        "protocol_version": F(Int(0, 2**31)),
        "protocol_versions": F(ListOf(Int(0, 2**31), hi=16)),
        "device": F(Str(0, 64)),
        "model": F(Struct({"loaded": F(Bool()), "name": F(Str(0, 256)), "detail": F(Str(0, 1024))})),
        "capabilities": F(MapOf(Struct({"available": F(Bool()), "reason": F(Str(0, 1024))}))),
        "limits": F(Struct({
            "max_message_bytes": F(Int(0)),
            "queue_size": F(Int(0)),
            "workers": F(Int(0)),
            "heartbeat_interval_s": F(Float(0.0)),
            "client_timeout_s": F(Float(0.0)),
        })),
    }),
    "ping": Struct({"time": F(Float())}),
    "cancel": Struct({"found": F(Bool()), "state": F(Str(choices=("queued", "running", "unknown")))}),
    "selftest": Struct({
        "frames": F(Int(1)),
        "joints": F(Int(1)),
        "checksum": F(Float()),
        "positions": F(Array("float", (Dim("T", 1, 1_000_000), Dim("J", 1, MAX_JOINTS), 3)), False),
    }),
    "retarget": _MOTION_OUT,
    "bonemap": Struct({
        "source": F(ListOf(Str(1, MAX_NAME_LEN), Dim("M", 0, MAX_JOINTS))),
        "target": F(ListOf(Str(1, MAX_NAME_LEN), Dim("M", 0, MAX_JOINTS))),
        "role": F(ListOf(Str(1, MAX_NAME_LEN), Dim("M", 0, MAX_JOINTS))),
    }),
    "inbetween": _MOTION_OUT,
    "generate": _MOTION_OUT,
    "dance": _MOTION_OUT,
}

RESPONSE_SCHEMAS: dict[str, Struct] = {
    "accepted": Struct({"position": F(Int(0)), "queue_size": F(Int(0))}),
    "progress": Struct({"fraction": F(Float(0.0, 1.0)), "stage": F(Str(0, 64)), "message": F(Str(0, 512))}),
    "result": Struct({
        # validated against RESULT_SCHEMAS[request type] by the receiver
        "output": F(MapOf(_PassThrough())),
        "timing": F(Struct({"queued_s": F(Float(0.0)), "run_s": F(Float(0.0))})),
    }),
    "error": Struct({
        "code": F(Str(1, 64)),
        "message": F(Str(0, 4096)),
        "details": F(MapOf(Plain()), False),
    }),
    "heartbeat": Struct({"time": F(Float()), "pending": F(Int(0))}),
}


def validate_request(env: Envelope) -> dict:
    """Check version, type and body of a request; returns the decoded body.

    Raises :class:`ProtocolError` naming the first problem found.
    """
    check_version(env)
    if env.type not in REQUEST_SCHEMAS:
        raise ProtocolError(Code.UNKNOWN_TYPE, f"unknown request type {env.type[:40]!r}; "
                            f"this server knows {list(REQUEST_TYPES)}")
    return REQUEST_SCHEMAS[env.type].check(env.body, "body", {})


def validate_response(env: Envelope) -> dict:
    """Check a response envelope's type and body (the client side)."""
    if env.type not in RESPONSE_SCHEMAS:
        raise ProtocolError(Code.BAD_RESPONSE, f"unknown response type {env.type[:40]!r}")
    try:
        return RESPONSE_SCHEMAS[env.type].check(env.body, "body", {})
    except ProtocolError as e:
        raise ProtocolError(Code.BAD_RESPONSE, e.message) from None


def validate_result(request_type: str, output: dict) -> dict:
    """Check a ``result``'s output for a request of ``request_type``; decodes its arrays."""
    try:
        return RESULT_SCHEMAS[request_type].check(output, "output", {})
    except ProtocolError as e:
        raise ProtocolError(Code.BAD_RESPONSE, e.message) from None


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    body = {"code": code, "message": message[:4096]}
    if details:
        body["details"] = details
    return body
