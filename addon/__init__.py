"""Kinemo for Blender: AI motion from a local backend, written to new actions on your rig.

This package is the Blender extension (the manifest is ``blender_manifest.toml``
at the repository root; ``make extension`` builds the zips). It never imports
torch or the ``kinemo`` backend package: it talks to ``kinemo serve`` through
its own copy of the wire modules (``wire/``). Layout:

- ``api.py``: one function per feature, returning a job (scripts use these);
- ``jobs.py``: a job's non-blocking ``poll()`` step and its blocking ``wait()``;
- ``operators.py`` / ``panel.py`` / ``props.py``: the thin UI over ``api``;
- ``bridge.py`` / ``arrays.py`` / ``results.py``: rig and action <-> arrays;
- ``connection.py``, ``local_backend.py``, ``presets.py``, ``rigs.py``.

Outside Blender the same code is importable as ``kinemo_addon`` (see
pyproject.toml), which the demo and the tests use.
"""
from __future__ import annotations

import bpy

from . import connection, jobs, local_backend, operators, panel, props

_CLASSES = operators.CLASSES + panel.CLASSES


def register() -> None:
    props.register()
    for cls in _CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for job in list(jobs.ACTIVE):
        job.cancel()
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
    props.unregister()
    connection.close_all()
    local_backend.stop()
