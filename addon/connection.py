"""Where the backend is and how to talk to it: settings, one client per
address, and errors turned into plain words.

No bpy here (the preferences are read in ``prefs.py``), so jobs can run from
any script.
"""
from __future__ import annotations

from dataclasses import dataclass

from .wire import protocol
from .wire.client import BackendUnavailable, Client, RemoteError
from .wire.protocol import Code

DEFAULT_ADDRESS = "tcp://127.0.0.1:5557"


@dataclass(frozen=True)
class Settings:
    address: str = DEFAULT_ADDRESS
    token_file: str = ""        # shared secret; needed when the backend is on another machine
    timeout: float = 3.0        # seconds of silence before the backend counts as gone
    retries: int = 1            # reconnect attempts after that before giving up


class KinemoError(Exception):
    """An error for the user, already in plain words."""


_clients: dict[Settings, Client] = {}


def client(settings: Settings) -> Client:
    """The shared client for these settings (created on first use)."""
    c = _clients.get(settings)
    if c is None:
        key = None
        if settings.token_file:
            try:
                key = protocol.read_token(settings.token_file)
            except (OSError, ValueError) as e:
                raise KinemoError(f"cannot read the token file {settings.token_file}: {e}") from None
        c = Client(settings.address, key, timeout=settings.timeout, retries=settings.retries,
                   heartbeat_interval=min(1.0, settings.timeout / 3), name="kinemo-blender")
        _clients[settings] = c
    return c


def discard(settings: Settings) -> None:
    """Forget a client whose backend went away, so its queued messages are not
    delivered to a backend started later."""
    c = _clients.pop(settings, None)
    if c is not None:
        c.close(linger=0)


def close_all() -> None:
    for s in list(_clients):
        discard(s)


def explain(err: BaseException, settings: Settings) -> str:
    """A backend error as a sentence for the user."""
    if isinstance(err, KinemoError):
        return str(err)
    if isinstance(err, BackendUnavailable) or getattr(err, "code", None) == Code.BACKEND_UNAVAILABLE:
        return (f"The Kinemo backend is not running or not reachable at {settings.address}. "
                "Start it in the add-on preferences (Start local backend) or run `kinemo serve`; "
                "if it runs elsewhere, check the address and the token file.")
    if isinstance(err, RemoteError):
        code, msg = err.code, err.message
        if code == Code.UNSUPPORTED_VERSION:
            return f"Version mismatch between the add-on and the backend: {msg}"
        if code == Code.NOT_AVAILABLE:
            return f"The backend cannot do this yet: {msg}"
        if code == Code.BAD_REQUEST:
            return f"The backend rejected the request: {msg}"
        if code == Code.BUSY:
            return "The backend is busy with other jobs; try again when they finish."
        if code == Code.CANCELLED:
            return "Cancelled."
        if code == Code.BAD_RESPONSE:
            return f"The backend sent an answer this add-on cannot read (version mismatch?): {msg}"
        if code == Code.SHUTTING_DOWN:
            return "The backend is shutting down."
        return f"The backend failed ({code}): {msg}. See the backend's log."
    return f"{type(err).__name__}: {err}"
