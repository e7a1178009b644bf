"""The Blender <-> backend axis change."""
from __future__ import annotations

import numpy as np

from kinemo.core import axes
from kinemo.core import rotations as R


def test_axis_change_is_a_proper_rotation_matching_its_quaternion():
    a = axes.BLENDER_TO_BACKEND
    assert np.allclose(a @ a.T, np.eye(3)) and np.isclose(np.linalg.det(a), 1.0)
    assert np.allclose(R.quat_to_matrix(axes.BLENDER_TO_BACKEND_QUAT), a)
    assert np.array_equal(axes.BACKEND_TO_BLENDER, a.T)


def test_blender_up_forward_and_left_land_on_the_backend_axes():
    up, forward, left = np.eye(3)[2], -np.eye(3)[1], np.eye(3)[0]  # Blender: +Z, -Y, +X
    assert np.allclose(axes.blender_to_backend_points(up), [0, 1, 0])
    assert np.allclose(axes.blender_to_backend_points(forward), [0, 0, 1])
    assert np.allclose(axes.blender_to_backend_points(left), [1, 0, 0])


def test_points_and_matrices_round_trip_and_agree():
    rng = np.random.default_rng(3)
    p = rng.normal(size=(5, 7, 3))
    assert np.allclose(axes.backend_to_blender_points(axes.blender_to_backend_points(p)), p)
    m = np.tile(np.eye(4), (6, 1, 1))
    m[:, :3, :3] = R.quat_to_matrix(R.quat_normalize(rng.normal(size=(6, 4))))
    m[:, :3, 3] = rng.normal(size=(6, 3))
    conv = axes.blender_to_backend_matrices(m)
    assert np.allclose(axes.backend_to_blender_matrices(conv), m)
    assert np.allclose(conv[:, :3, 3], axes.blender_to_backend_points(m[:, :3, 3]))
    assert np.array_equal(conv[:, 3], m[:, 3])
    # A point given in a bone's frame lands where the converted world point does.
    local = rng.normal(size=3)
    world = (m @ np.append(local, 1.0))[:, :3]
    assert np.allclose((conv @ np.append(local, 1.0))[:, :3], axes.blender_to_backend_points(world))
