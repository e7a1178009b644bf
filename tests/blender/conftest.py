"""Tests against the real ``bpy`` module (Blender 4.5 as a Python module).

Each test starts from an empty factory-settings file. ``bpy`` loads once per
process, so these tests share it; they skip when bpy is not installed.
"""
from __future__ import annotations

import pytest

bpy = pytest.importorskip("bpy", reason="needs bpy (Blender as a Python module): pip install -e '.[blender]'")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/blender/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.blender)


@pytest.fixture(autouse=True)
def fresh_file():
    """An empty scene for every test (a new file, no add-on state carried over)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield


@pytest.fixture(scope="session")
def addon():
    from kinemo.addon_loader import load_addon
    return load_addon()


@pytest.fixture
def bridge(addon):
    from kinemo_addon import bridge
    return bridge
