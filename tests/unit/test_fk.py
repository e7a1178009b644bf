"""Forward kinematics, its inverse, and skeleton rest poses."""
from __future__ import annotations

import numpy as np
import pytest

from kinemo.core import rotations as R
from kinemo.core.fk import forward_kinematics, global_to_local, local_to_global_rotations
from kinemo.core.skeleton import Motion, Skeleton
from kinemo.core.smpl import SMPL_PARENTS


def random_parents(rng, J: int) -> np.ndarray:
    return np.array([-1] + [int(rng.integers(0, j)) for j in range(1, J)])


def random_local(rng, shape, J):
    rot = R.quat_normalize(rng.normal(size=tuple(shape) + (J, 4)))
    pos = rng.normal(size=tuple(shape) + (J, 3))
    return rot, pos


def fk_reference(parents, rot, pos):
    """World 4x4 transforms by multiplying homogeneous matrices one frame at a time."""
    lead = rot.shape[:-2]
    J = len(parents)
    rot2, pos2 = rot.reshape(-1, J, 4), pos.reshape(-1, J, 3)
    out = np.empty((rot2.shape[0], J, 4, 4))
    for f in range(rot2.shape[0]):
        for j, p in enumerate(parents):
            m = np.eye(4)
            m[:3, :3] = R.quat_to_matrix(rot2[f, j])
            m[:3, 3] = pos2[f, j]
            out[f, j] = m if p < 0 else out[f, p] @ m
    return out.reshape(lead + (J, 4, 4))


@pytest.mark.parametrize("shape", [(), (5,), (2, 3)])
def test_fk_matches_matrix_reference(shape):
    rng = np.random.default_rng(0)
    parents = random_parents(rng, 12)
    rot, pos = random_local(rng, shape, 12)
    g_rot, g_pos = forward_kinematics(parents, rot, pos)
    ref = fk_reference(parents, rot, pos)
    assert g_rot.shape == rot.shape and g_pos.shape == pos.shape
    assert np.allclose(R.quat_to_matrix(g_rot), ref[..., :3, :3], atol=1e-12)
    assert np.allclose(g_pos, ref[..., :3, 3], atol=1e-12)


def test_fk_then_global_to_local_round_trip():
    rng = np.random.default_rng(1)
    for parents in (np.array(SMPL_PARENTS), random_parents(rng, 30), np.array([-1, 0, 1, 2, 3])):
        rot, pos = random_local(rng, (4, 6), len(parents))
        g_rot, g_pos = forward_kinematics(parents, rot, pos)
        l_rot, l_pos = global_to_local(parents, g_rot, g_pos)
        assert np.allclose(np.abs(np.sum(l_rot * rot, -1)), 1.0, atol=1e-12)
        assert np.all(l_rot[..., 0] >= 0)
        assert np.allclose(l_pos, pos, atol=1e-12)
        # rotations only
        only, none = global_to_local(parents, g_rot)
        assert none is None and np.allclose(only, l_rot)
        assert np.allclose(np.abs(np.sum(local_to_global_rotations(parents, rot) * g_rot, -1)), 1, atol=1e-12)


def test_global_to_local_then_fk_round_trip():
    rng = np.random.default_rng(2)
    parents = random_parents(rng, 15)
    g_rot = R.quat_normalize(rng.normal(size=(7, 15, 4)))
    g_pos = rng.normal(size=(7, 15, 3))
    l_rot, l_pos = global_to_local(parents, g_rot, g_pos)
    f_rot, f_pos = forward_kinematics(parents, l_rot, l_pos)
    assert np.allclose(np.abs(np.sum(f_rot * g_rot, -1)), 1.0, atol=1e-12)
    assert np.allclose(f_pos, g_pos, atol=1e-12)


def test_fk_root_only_and_identity():
    rng = np.random.default_rng(3)
    rot, pos = random_local(rng, (3,), 1)
    g_rot, g_pos = forward_kinematics(np.array([-1]), rot, pos)
    assert np.allclose(np.abs(np.sum(g_rot * rot, -1)), 1) and np.allclose(g_pos, pos)
    parents = np.array([-1, 0, 1])
    offs = np.array([[0, 1, 0], [0, 2, 0], [1, 0, 0]], float)
    g_rot, g_pos = forward_kinematics(parents, R.quat_identity((3,)), offs)
    assert np.allclose(g_rot, [1, 0, 0, 0]) and np.allclose(g_pos, [[0, 1, 0], [0, 3, 0], [1, 3, 0]])
    # a quarter turn of the middle joint about Z swings the last joint's offset onto +Y
    rot = R.quat_identity((3,))
    rot[1] = R.axis_angle_to_quat(np.array([0, 0, np.pi / 2]))
    assert np.allclose(forward_kinematics(parents, rot, offs)[1][2], [0, 4, 0])


def test_skeleton_from_rest_matrices_round_trip():
    rng = np.random.default_rng(4)
    J = 10
    parents = random_parents(rng, J)
    g = np.tile(np.eye(4), (J, 1, 1))
    g[:, :3, :3] = R.quat_to_matrix(R.quat_normalize(rng.normal(size=(J, 4))))
    g[:, :3, 3] = rng.normal(size=(J, 3))
    names = [f"j{i}" for i in range(J)]
    skel = Skeleton.from_rest_matrices(names, parents, g)
    assert np.allclose(skel.rest_matrices(), g, atol=1e-12)
    again = Skeleton.from_rest_matrices(names, parents, skel.rest_matrices())
    assert np.allclose(again.offsets, skel.offsets) and np.allclose(again.rest_rotations, skel.rest_rotations)
    # scale in the matrices (Blender bones may carry it) is dropped, positions kept
    scaled = g.copy()
    scaled[:, :3, :3] *= rng.uniform(0.5, 2.0, size=(J, 1, 3))
    assert np.allclose(Skeleton.from_rest_matrices(names, parents, scaled).rest_matrices(), g, atol=1e-12)


def test_rest_motion_positions_equal_rest_global():
    rng = np.random.default_rng(5)
    J = 8
    parents = random_parents(rng, J)
    skel = Skeleton([f"j{i}" for i in range(J)], parents, rng.normal(size=(J, 3)),
                    R.quat_normalize(rng.normal(size=(J, 4))))
    motion = skel.rest_motion(4)
    g_rot, g_pos = motion.global_transforms(skel)
    r_rot, r_pos = skel.rest_global()
    assert np.allclose(g_pos, r_pos) and np.allclose(np.abs(np.sum(g_rot * r_rot, -1)), 1)
    with pytest.raises(ValueError, match="joints"):
        Motion(np.zeros((2, J + 1, 4)) + [1, 0, 0, 0], np.zeros((2, J + 1, 3))).positions(skel)


@pytest.mark.parametrize("parents, match", [
    ([0, 0], "root"), ([-1, 1], "parent"), ([-1, 0, 3, 1], "parent"), ([-1, -1], "root"),
])
def test_skeleton_rejects_bad_hierarchies(parents, match):
    J = len(parents)
    with pytest.raises(ValueError, match=match):
        Skeleton([f"j{i}" for i in range(J)], parents, np.zeros((J, 3)))


def test_skeleton_rejects_bad_values():
    with pytest.raises(ValueError, match="duplicate"):
        Skeleton(["a", "a"], [-1, 0], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        Skeleton(["a", "b"], [-1, 0], [[0, 0, 0], [np.nan, 0, 0]])
    with pytest.raises(ValueError, match="disagree"):
        Skeleton(["a", "b"], [-1, 0], np.zeros((3, 3)))
