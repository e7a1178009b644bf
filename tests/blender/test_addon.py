"""The add-on package: a valid Blender extension, registers cleanly, and its
numpy helpers agree with kinemo.core and with Blender's own mathutils."""
from __future__ import annotations

from pathlib import Path

import bpy
import mathutils
import numpy as np
import pytest

from kinemo.core import axes
from kinemo.core import rotations as R

REPO = Path(__file__).resolve().parents[2]


def test_manifest_declares_id_version_and_permissions():
    import tomllib
    m = tomllib.loads((REPO / "blender_manifest.toml").read_text())
    assert m["id"] == "kinemo" and m["type"] == "add-on"
    assert tuple(int(x) for x in m["blender_version_min"].split(".")) >= (4, 2, 0)
    assert set(m["permissions"]) == {"network", "files"}
    assert set(m["platforms"]) == {"linux-x64", "windows-x64", "macos-arm64", "macos-x64"}


def test_register_unregister(addon):
    addon.register()
    try:
        assert hasattr(bpy.types, "KINEMO_PT_main")
    finally:
        addon.unregister()
    assert not hasattr(bpy.types, "KINEMO_PT_main")


def test_axis_copy_agrees_with_kinemo(addon):
    from kinemo_addon import arrays
    assert np.array_equal(arrays.BLENDER_TO_BACKEND, axes.BLENDER_TO_BACKEND)
    m = np.tile(np.eye(4), (3, 1, 1))
    m[:, :3, :3] = R.quat_to_matrix(R.quat_normalize(np.random.default_rng(0).normal(size=(3, 4))))
    m[:, :3, 3] = [[1, 2, 3], [-1, 0.5, 2], [0, 0, -4]]
    assert np.allclose(arrays.to_backend(m), axes.blender_to_backend_matrices(m))
    assert np.allclose(arrays.from_backend(m), axes.backend_to_blender_matrices(m))


def test_rotation_helpers_agree_with_kinemo_and_mathutils(addon):
    from kinemo_addon import arrays
    rng = np.random.default_rng(1)
    q = R.quat_normalize(rng.normal(size=(200, 4)))
    q[:4] = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]  # each Shepperd branch
    m = R.quat_to_matrix(q)
    assert np.allclose(arrays.quat_to_matrix(q), m)
    assert np.allclose(arrays.matrix_to_quat(m), R.matrix_to_quat(m), atol=1e-12)
    for mode in ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX"):
        ang = rng.uniform(-3, 3, size=(20, 3))
        ref = np.array([np.array(mathutils.Euler(a, mode).to_matrix()) for a in ang])
        assert np.allclose(arrays.euler_to_matrix(ang, mode), ref, atol=1e-6), mode
    angle, axis = rng.uniform(-3, 3, 20), rng.normal(size=(20, 3))
    ref = np.array([np.array(mathutils.Matrix.Rotation(a, 3, mathutils.Vector(x).normalized()))
                    for a, x in zip(angle, axis)])
    assert np.allclose(arrays.axis_angle_to_matrix(angle, axis), ref, atol=1e-6)
    assert np.allclose(arrays.axis_angle_to_matrix(np.array([1.0]), np.zeros((1, 3))), np.eye(3))
    smooth = R.quat_slerp(q[10], q[11], np.linspace(0, 1, 12)[:, None])  # (12, 1, 4)
    flipped = smooth.copy()
    flipped[1::2] *= -1
    assert np.allclose(arrays.quat_continuous(flipped), smooth)
