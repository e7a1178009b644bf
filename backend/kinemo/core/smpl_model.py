"""Official SMPL / SMPL+H / SMPL-X model files -> the exact skeleton for a body shape.

Kinemo ships no body model; a user who has one (from smpl.is.tue.mpg.de and
its siblings) can point to it to get exact joints for a body shape.

Official SMPL ``.pkl`` files were pickled on Python 2 with ``chumpy`` objects
inside, and chumpy no longer imports on current numpy / Python. A general
``pickle.load`` would also run whatever a tampered file asks for, so
:class:`_ModelUnpickler` resolves only the handful of classes a model file
needs (numpy arrays, scipy sparse matrices, chumpy arrays as plain stand-ins)
and refuses anything else by name before it can run. ``.npz`` files are read
with ``allow_pickle=False``.

Joints of a shape: ``J = J_regressor @ (v_template + shapedirs @ betas)``,
computed with numpy (:func:`shaped_joints`) or through the ``smplx`` package
(:func:`shaped_joints_smplx`, which is handed a clean pickle of the sanitised
arrays); both agree.
"""
from __future__ import annotations

import _compat_pickle
import codecs
import contextlib
import copyreg
import importlib
import io
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .skeleton import Skeleton
from .smpl import SMPL_JOINT_NAMES, SMPL_PARENTS, skeleton_from_positions


class SmplModelError(ValueError):
    """A model file that is missing, malformed or asks to run code."""


# --- restricted unpickling -------------------------------------------------------

class _Stand(object):
    """Placeholder built instead of a foreign class; keeps the pickled state."""

    origin = "?"
    state: Any = None  # NEWOBJ skips __init__, so the default lives on the class

    def __init__(self, *args: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _ChumpyStand(_Stand):
    """A chumpy object: a plain ``Ch`` keeps its value in ``state['x']``."""


class _SparseStand(_Stand):
    """A scipy sparse matrix of format ``fmt`` ('csc' or 'csr')."""

    fmt = "csc"


def _numpy_attr(name: str) -> Any:
    # numpy 2 renamed numpy.core to numpy._core; pickles name either.
    for mod in ("numpy._core.multiarray", "numpy.core.multiarray", "numpy._core.numeric", "numpy.core.numeric"):
        try:
            obj = getattr(importlib.import_module(mod), name, None)
        except ImportError:
            continue
        if obj is not None:
            return obj
    raise AttributeError(name)


_NUMPY_NAMES = {"_reconstruct", "scalar", "_frombuffer"}
_NUMPY_MODULES = {"numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric", "numpy._core.numeric"}
_SPARSE = {"csc_matrix": "csc", "csr_matrix": "csr", "csc_array": "csc", "csr_array": "csr"}
_SPARSE_MODULES = {"scipy.sparse", "scipy.sparse.csc", "scipy.sparse.csr", "scipy.sparse._csc", "scipy.sparse._csr",
                   "scipy.sparse._arrays"}
# Harmless helpers that protocol 0-2 pickles of the above refer to (Python 3 names).
_BUILTINS = {
    ("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "object"): object,
    ("copyreg", "_reconstructor"): copyreg._reconstructor, ("_codecs", "encode"): codecs.encode,
}


class _ModelUnpickler(pickle.Unpickler):
    """Unpickler for body-model files that resolves only allow-listed classes."""

    def __init__(self, file, path: str):
        super().__init__(file, encoding="latin1")
        self.path = path
        self._stands: dict[str, type] = {}

    def _stand(self, base: type, module: str, name: str, **attrs: Any) -> type:
        key = f"{module}.{name}"
        if key not in self._stands:
            self._stands[key] = type(name, (base,), {"origin": key, **attrs})
        return self._stands[key]

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (__builtin__, copy_reg) to Python 3 ones, as pickle itself maps them
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if module in _NUMPY_MODULES and name in _NUMPY_NAMES:
            return _numpy_attr(name)
        if module in _SPARSE_MODULES and name in _SPARSE:
            return self._stand(_SparseStand, module, name, fmt=_SPARSE[name])
        if module == "chumpy" or module.startswith("chumpy."):
            return self._stand(_ChumpyStand, module, name)
        if (module, name) in _BUILTINS:
            return _BUILTINS[(module, name)]
        raise SmplModelError(
            f"{self.path}: refusing to load '{module}.{name}' from this pickle: a body-model file holds only "
            f"numpy arrays, scipy sparse matrices and chumpy arrays (the file is not a plain SMPL model, "
            f"or it was tampered with)")


def _plain(value: Any, path: str, key: str) -> Any:
    """Turn stand-ins into numpy arrays / scipy matrices, recursively."""
    if isinstance(value, _ChumpyStand):
        st = value.state
        if isinstance(st, dict) and "x" in st:
            return np.asarray(_plain(st["x"], path, key))
        raise SmplModelError(f"{path}: entry {key!r} is a chumpy expression ({value.origin}), not a stored "
                             f"array; only plain chumpy arrays can be read")
    if isinstance(value, _SparseStand):
        import scipy.sparse as sp
        st = value.state if isinstance(value.state, dict) else {}
        try:
            shape = tuple(int(n) for n in st.get("_shape", st.get("shape")))
            parts = (np.asarray(st["data"]), np.asarray(st["indices"]), np.asarray(st["indptr"]))
        except (KeyError, TypeError, ValueError):
            raise SmplModelError(f"{path}: entry {key!r} is a malformed sparse matrix") from None
        return (sp.csc_matrix if value.fmt == "csc" else sp.csr_matrix)(parts, shape=shape)
    if isinstance(value, dict):
        return {k: _plain(v, path, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v, path, key) for v in value)
    if isinstance(value, _Stand):
        raise SmplModelError(f"{path}: entry {key!r} has an object of class {value.origin}")
    return value


def load_model_pickle(path: str | os.PathLike) -> dict[str, Any]:
    """Read a body-model ``.pkl`` safely: a dict of numpy arrays, scipy sparse matrices and plain values.

    Entries that are chumpy expressions rather than stored arrays are dropped
    (no model quantity we use is one).
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = _ModelUnpickler(f, path).load()
    except SmplModelError:
        raise
    except OSError as e:
        raise SmplModelError(f"{path}: cannot read: {e.strerror or e}") from None
    except Exception as e:  # a corrupt stream raises anything from UnpicklingError to TypeError
        raise SmplModelError(f"{path}: not a readable model pickle ({type(e).__name__}: {e})") from None
    if not isinstance(raw, dict):
        raise SmplModelError(f"{path}: a model pickle holds a dict, this one holds {type(raw).__name__}")
    out: dict[str, Any] = {}
    for k, v in raw.items():
        try:
            out[str(k)] = _plain(v, path, str(k))
        except SmplModelError:
            if k in _REQUIRED:
                raise
    return out


# --- the model -------------------------------------------------------------------

_REQUIRED = ("v_template", "shapedirs", "J_regressor", "kintree_table")
# Joint counts of the model families, and where their hand joint is:
# SMPL's own; else the middle finger's base joint (SMPL-H, SMPL-X joint orders).
_KINDS = {24: ("smpl", (22, 23)), 52: ("smplh", (25, 40)), 55: ("smplx", (28, 43))}
_SMPLX_FILE = {"smpl": "SMPL", "smplh": "SMPLH", "smplx": "SMPLX"}


@dataclass(frozen=True, eq=False)
class SmplModel:
    """The parts of a body model that fix its skeleton.

    kind: ``"smpl"``, ``"smplh"`` or ``"smplx"`` (from the joint count).
    v_template: ``(V, 3)`` template vertices (Y up, facing +Z, metres).
    shapedirs: ``(V, 3, B)`` shape blend shapes (expression ones excluded).
    J_regressor: ``(K, V)`` dense joint regressor.
    parents: ``(K,)`` with ``-1`` for the root.
    data: every entry of the file as plain arrays (what ``smplx`` reads).
    """

    path: str
    kind: str
    v_template: np.ndarray
    shapedirs: np.ndarray
    J_regressor: np.ndarray
    parents: np.ndarray
    data: dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def num_betas(self) -> int:
        return self.shapedirs.shape[-1]

    def check_betas(self, betas) -> np.ndarray:
        b = np.zeros(0) if betas is None else np.asarray(betas, np.float64).reshape(-1)
        if b.size > self.num_betas or not np.all(np.isfinite(b)):
            raise SmplModelError(f"{self.path}: betas must be at most {self.num_betas} finite numbers, "
                                 f"got {b.size}")
        return b


def _dense(a: Any) -> np.ndarray:
    return np.asarray(a.toarray() if hasattr(a, "toarray") else a, np.float64)


def load_smpl_model(path: str | os.PathLike) -> SmplModel:
    """Load an official SMPL, SMPL+H or SMPL-X model file (``.pkl`` or ``.npz``) without chumpy."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SmplModelError(f"{path}: no such model file")
    if path.lower().endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {}
                for k in z.files:
                    try:
                        data[k] = z[k]
                    except ValueError:  # object arrays (name tables) need pickle: skip them
                        if k in _REQUIRED:
                            raise
        except (OSError, ValueError) as e:
            raise SmplModelError(f"{path}: not a readable model .npz ({e})") from None
    else:
        data = load_model_pickle(path)
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise SmplModelError(f"{path}: not a SMPL-family model, missing {missing}")
    try:
        v = _dense(data["v_template"])
        dirs = _dense(data["shapedirs"])
        jreg = _dense(data["J_regressor"])
        kin = np.asarray(data["kintree_table"]).astype(np.int64)
    except (TypeError, ValueError) as e:
        raise SmplModelError(f"{path}: malformed model arrays ({e})") from None
    if dirs.ndim == 2:
        dirs = dirs[:, :, None]
    nj = jreg.shape[0]
    if v.ndim != 2 or v.shape[1] != 3 or dirs.shape[:2] != v.shape or jreg.shape != (nj, v.shape[0]) \
            or kin.shape != (2, nj) or nj not in _KINDS:
        raise SmplModelError(f"{path}: inconsistent model arrays: v_template {v.shape}, shapedirs {dirs.shape}, "
                             f"J_regressor {jreg.shape}, kintree_table {kin.shape} "
                             f"(expected 24, 52 or 55 joints)")
    kind = _KINDS[nj][0]
    if kind == "smplx":  # shape then expression components: 300 + 100, or 10 + 10 in v1.0 files
        dirs = dirs[:, :, :300] if dirs.shape[-1] >= 400 else dirs[:, :, :10]
    parents = kin[0].copy()
    parents[0] = -1
    if np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, nj)):
        raise SmplModelError(f"{path}: kintree_table does not list parents before children")
    return SmplModel(path, kind, v, dirs, jreg, parents, data)


def _as_model(model: SmplModel | str | os.PathLike) -> SmplModel:
    return model if isinstance(model, SmplModel) else load_smpl_model(model)


def shaped_vertices(model: SmplModel, betas=None) -> np.ndarray:
    """``(V, 3)`` rest vertices for ``betas`` ``(B,)`` (missing components are 0)."""
    b = model.check_betas(betas)
    return model.v_template + model.shapedirs[:, :, :b.size] @ b


def shaped_joints(model: SmplModel, betas=None) -> np.ndarray:
    """``(K, 3)`` rest joints of all the model's joints, in the model's own frame (numpy)."""
    return model.J_regressor @ shaped_vertices(model, betas)


def shaped_joints_smplx(model: SmplModel, betas=None) -> np.ndarray:
    """Same as :func:`shaped_joints`, through ``smplx.create`` (needs the ``smplx`` package).

    smplx reads model files with a bare ``pickle.load``, so it is handed a
    clean pickle of the sanitised arrays in a temporary folder, never the
    user's file.
    """
    import smplx
    import torch
    from smplx.lbs import vertices2joints

    b = model.check_betas(betas)
    with tempfile.TemporaryDirectory(prefix="kinemo-smpl-") as tmp:
        sub = os.path.join(tmp, model.kind)
        os.makedirs(sub)
        with open(os.path.join(sub, f"{_SMPLX_FILE[model.kind]}_NEUTRAL.pkl"), "wb") as f:
            pickle.dump(model.data, f, protocol=4)
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # smplx prints warnings about beta counts
                body = smplx.create(tmp, model_type=model.kind, gender="neutral", ext="pkl",
                                    num_betas=max(b.size, 1), use_pca=False, dtype=torch.float64)
        except (AttributeError, KeyError, IndexError, ValueError, AssertionError) as e:
            raise SmplModelError(f"{model.path}: smplx cannot build a {model.kind} model from it "
                                 f"({type(e).__name__}: {e})") from None
    with torch.no_grad():
        betas_t = torch.zeros((1, body.num_betas), dtype=torch.float64)
        betas_t[0, :b.size] = torch.from_numpy(b)
        v = body.forward_shape(betas=betas_t).vertices
        joints = vertices2joints(body.J_regressor, v)
    return joints[0].numpy()


def _smpl24(model: SmplModel, joints: np.ndarray) -> np.ndarray:
    """The 24 SMPL joints out of a SMPL / SMPL+H / SMPL-X joint set, ``(24, 3)``."""
    hands = _KINDS[len(joints)][1]
    idx = list(range(22)) + list(hands)
    for h, wrist in zip(hands, (20, 21)):
        if model.parents[h] != wrist:
            raise SmplModelError(f"{model.path}: joint {h} should hang off the wrist {wrist} in a "
                                 f"{model.kind} model, its parent is {model.parents[h]}")
    if not np.array_equal(model.parents[:22], np.asarray(SMPL_PARENTS[:22])):
        raise SmplModelError(f"{model.path}: body joints are not in SMPL order")
    return joints[idx]


def skeleton_for_shape(model: SmplModel | str | os.PathLike, betas=None, use_smplx: bool = False) -> Skeleton:
    """The SMPL-topology skeleton of a body shape from an official model file.

    Same frame as :func:`kinemo.core.smpl.smpl_skeleton`: the model's T-pose,
    Y up, facing +Z, pelvis above the origin, the lowest vertex on the floor
    (y = 0), and an End Site at the top of the head.
    ``use_smplx`` computes the joints through the ``smplx`` package.
    """
    model = _as_model(model)
    joints = shaped_joints_smplx(model, betas) if use_smplx else shaped_joints(model, betas)
    verts = shaped_vertices(model, betas)
    pos = _smpl24(model, joints)
    shift = np.array([-pos[0, 0], -verts[:, 1].min(), -pos[0, 2]])
    pos = pos + shift
    head = SMPL_JOINT_NAMES.index("head")
    skel = skeleton_from_positions(pos)
    top = np.array([0.0, verts[:, 1].max() + shift[1] - pos[head, 1], 0.0])
    return Skeleton(skel.names, skel.parents, skel.offsets, skel.rest_rotations, {head: top})
