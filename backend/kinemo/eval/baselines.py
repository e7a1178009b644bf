"""In-betweening baselines behind the model's own interface.

Both fill every unkeyed frame from the keyed frames around it, per joint (a
``(T, 24)`` key mask may key joints on different frames) and, for the root
position, from ``root_keys``:

- ``zero-velocity``: hold the last keyed value (the next one before the first key);
  the pose jumps to the next key on the keyed frame (LaFAN1's zero-velocity baseline).
- ``interpolation``: slerp of local rotations and linear root between the keyed
  frames on either side (held constant before the first and after the last key).

``inbetween(quats, root, keys, *, root_keys=None, ...)`` takes and returns what
``kinemo.model.generator.Generator.inbetween`` does; text, seed and steps are
accepted and ignored, so the bench calls every method the same way.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..core import rotations as R


def _key_masks(keys: np.ndarray, root_keys: np.ndarray | None, T: int, J: int) -> tuple[np.ndarray, np.ndarray]:
    keys = np.asarray(keys, bool)
    if keys.shape == (T,):
        keys = np.repeat(keys[:, None], J, axis=1)
    if keys.shape != (T, J):
        raise ValueError(f"keys must be ({T},) or ({T}, {J}), got {keys.shape}")
    rk = keys.any(axis=1) if root_keys is None else np.asarray(root_keys, bool)
    if rk.shape != (T,):
        raise ValueError(f"root_keys must be ({T},), got {rk.shape}")
    return keys, rk


def _brackets(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each frame, the index of the keyed frame at or before it and at or after it
    (clamped to the first/last key). ``(T,)`` bool -> two ``(T,)`` int arrays."""
    T = len(mask)
    idx = np.arange(T)
    prev = np.maximum.accumulate(np.where(mask, idx, -1))
    nxt = np.minimum.accumulate(np.where(mask, idx, T)[::-1])[::-1]
    first, last = idx[mask][0], idx[mask][-1]
    prev = np.where(prev < 0, first, prev)
    nxt = np.where(nxt >= T, last, nxt)
    return prev, nxt


def _weights(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    span = nxt - prev
    return np.where(span > 0, (np.arange(len(prev)) - prev) / np.maximum(span, 1), 0.0)


class Interpolation:
    """Linear root + slerp of local rotations between keys."""

    name = "interpolation"
    fps = 30.0

    def _fill(self, q: np.ndarray, r: np.ndarray, keys: np.ndarray, rk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out_q = q.copy()
        for j in range(q.shape[1]):
            if keys[:, j].any():
                p, n = _brackets(keys[:, j])
                out_q[:, j] = R.quat_slerp(q[p, j], q[n, j], _weights(p, n))
        out_r = r.copy()
        if rk.any():
            p, n = _brackets(rk)
            w = _weights(p, n)[:, None]
            out_r = (1 - w) * r[p] + w * r[n]
        return out_q, out_r

    def inbetween(self, quats: np.ndarray, root: np.ndarray, keys: np.ndarray, *,
                  root_keys: np.ndarray | None = None, text: str | None = None, seed: int = 0,
                  steps: int | None = None, progress: Callable[[float], None] | None = None,
                  cancelled: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """quats ``(T, J, 4)``, root ``(T, 3)``, keys ``(T,)`` or ``(T, J)`` bool -> (quats, root)."""
        q = R.quat_normalize(np.asarray(quats, np.float64))
        r = np.asarray(root, np.float64)
        T, J = q.shape[:2]
        keys, rk = _key_masks(keys, root_keys, T, J)
        q, r = self._fill(q, r, keys, rk)
        # keyed values are reproduced exactly (the interpolation weights are 0 there)
        q = np.where(keys[..., None], R.quat_normalize(np.asarray(quats, np.float64)), q)
        r = np.where(rk[:, None], np.asarray(root, np.float64), r)
        if progress is not None:
            progress(1.0)
        return q.astype(np.float32), r.astype(np.float32)


class ZeroVelocity(Interpolation):
    """Hold the last key until the next one."""

    name = "zero-velocity"

    def _fill(self, q, r, keys, rk):
        out_q = q.copy()
        for j in range(q.shape[1]):
            if keys[:, j].any():
                p, n = _brackets(keys[:, j])
                held = np.where(np.arange(len(p)) < np.flatnonzero(keys[:, j])[0], n, p)
                out_q[:, j] = q[held, j]
        out_r = r.copy()
        if rk.any():
            p, n = _brackets(rk)
            out_r = r[np.where(np.arange(len(p)) < np.flatnonzero(rk)[0], n, p)]
        return out_q, out_r


BASELINES: dict[str, type] = {"zero-velocity": ZeroVelocity, "interpolation": Interpolation}


def load_model(path: str | None, device: str = "cpu"):
    """A model checkpoint (``None`` or ``"shipped"``: the shipped one) through the Generator, imported only
    when a model is asked for, so the baselines run without the model package.

    ``PATH@name=value,...`` overrides sampler settings (kinemo.model.sampler.SamplerConfig), for ablations:
    ``shipped@dynamics_guidance=0`` is the same model without dynamics guidance, ``shipped@lock.clearance=0``
    without the foot lock's swing lift (a dotted name sets a field of a group such as ``lock``).
    """
    from ..errors import UserError
    items: list[list[str]] = []
    if path and "@" in path:
        path, spec = path.split("@", 1)
        from ..model.config import with_overrides
        from ..model.sampler import SamplerConfig
        items = [item.split("=") for item in filter(None, spec.split(","))]
        if any(len(kv) != 2 for kv in items):
            raise UserError(f"sampler overrides are name=value pairs separated by commas; got {spec!r}")
        try:
            with_overrides(SamplerConfig(), items)      # refused before the model is loaded
        except ValueError as e:
            raise UserError(f"sampler setting: {e}") from None
    if path == "shipped":
        path = None
    try:
        from ..model.generator import Generator
    except ImportError as e:
        raise UserError(f"cannot load a model: the model package is not available ({e})") from None
    gen = Generator.load(path, device=device)
    if items:
        gen.sampler = with_overrides(gen.sampler, items)
    return gen
