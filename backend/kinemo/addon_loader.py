"""Import the Blender add-on package (``addon/``) outside Blender.

Installed (``pip install -e .``), it is the package ``kinemo_addon``. From a
plain source checkout (``PYTHONPATH=backend``) it is loaded from ``addon/``
beside ``backend/`` under the same name, so demo and tests work either way.
Importing it needs ``bpy``.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

NAME = "kinemo_addon"


def load_addon() -> ModuleType:
    """The ``kinemo_addon`` package (raises ModuleNotFoundError with a hint when absent)."""
    try:
        return importlib.import_module(NAME)
    except ModuleNotFoundError as e:
        if e.name != NAME:
            raise  # bpy or numpy missing: say so, not something else
    root = Path(__file__).resolve().parents[2] / "addon"
    init = root / "__init__.py"
    if not init.is_file():
        raise ModuleNotFoundError(f"the Blender add-on package {NAME!r} is not installed and no "
                                  f"source checkout is at {root}; run `pip install -e .`", name=NAME)
    spec = importlib.util.spec_from_file_location(NAME, init, submodule_search_locations=[str(root)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[NAME] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[NAME]
        raise
    return module
