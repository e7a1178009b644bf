"""Rotation conversions: round trips, batching, corner cases; scipy as an independent reference."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from kinemo.core import rotations as R

ORDERS = ["".join(p) for p in itertools.permutations("XYZ")]
SHAPES = [(), (7,), (3, 5), (2, 3, 4)]


def rand_quat(rng, shape=()):
    return R.quat_normalize(rng.normal(size=tuple(shape) + (4,)))


def same_rotation(a, b, atol=1e-9):
    """Quaternions equal up to sign."""
    return np.all(R.quat_angle(a, b) < atol) and np.allclose(np.abs(np.sum(a * b, -1)), 1, atol=atol)


def to_scipy(q):
    q = np.asarray(q).reshape(-1, 4)
    return Rotation.from_quat(q[:, [1, 2, 3, 0]])


def rotations_by_pi(rng, n=20):
    """Half turns about coordinate axes, diagonals and random axes (trace = -1)."""
    axes = np.concatenate([np.eye(3), -np.eye(3), [[1, 1, 0], [1, -1, 0], [0, 1, 1], [1, 1, 1], [-1, 2, -3]],
                           rng.normal(size=(n, 3))])
    return axes / np.linalg.norm(axes, axis=-1, keepdims=True) * np.pi


# --- matrices -------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
def test_quat_matrix_round_trip_batched(shape):
    rng = np.random.default_rng(0)
    q = rand_quat(rng, shape)
    m = R.quat_to_matrix(q)
    assert m.shape == tuple(shape) + (3, 3)
    assert np.allclose(m @ np.swapaxes(m, -1, -2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(m), 1.0)
    back = R.matrix_to_quat(m)
    assert back.shape == q.shape and np.all(back[..., 0] >= 0)
    assert same_rotation(back, q)
    assert np.allclose(R.quat_to_matrix(back), m, atol=1e-12)


def test_quat_to_matrix_matches_scipy_and_ignores_norm():
    rng = np.random.default_rng(1)
    q = rand_quat(rng, (50,))
    assert np.allclose(R.quat_to_matrix(q), to_scipy(q).as_matrix(), atol=1e-12)
    assert np.allclose(R.quat_to_matrix(q * 3.7), R.quat_to_matrix(q))


def test_matrix_to_quat_at_half_turns_and_identity():
    rng = np.random.default_rng(2)
    aa = rotations_by_pi(rng)
    m = Rotation.from_rotvec(aa).as_matrix()
    q = R.matrix_to_quat(m)
    assert np.allclose(np.abs(q[:, 0]), 0, atol=1e-12)
    assert np.allclose(R.quat_to_matrix(q), m, atol=1e-12)
    assert np.allclose(R.quat_angle(q, R.quat_identity(q.shape[:-1])), np.pi)
    assert np.allclose(R.matrix_to_quat(np.eye(3)), [1, 0, 0, 0])
    # near half turns: every Shepperd branch gets exercised
    for eps in (1e-9, 1e-6, 1e-3):
        mm = Rotation.from_rotvec(aa * (1 - eps)).as_matrix()
        assert np.allclose(R.quat_to_matrix(R.matrix_to_quat(mm)), mm, atol=1e-12)


# --- axis-angle -----------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
def test_axis_angle_round_trips_batched(shape):
    rng = np.random.default_rng(3)
    axis = rng.normal(size=tuple(shape) + (3,))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = rng.uniform(0, np.pi * 0.999, size=tuple(shape) + (1,))
    aa = axis * angle
    q = R.axis_angle_to_quat(aa)
    assert np.allclose(R.quat_to_axis_angle(q), aa, atol=1e-12)
    m = R.axis_angle_to_matrix(aa)
    assert np.allclose(m, Rotation.from_rotvec(aa.reshape(-1, 3)).as_matrix().reshape(m.shape), atol=1e-12)
    assert np.allclose(R.matrix_to_axis_angle(m), aa, atol=1e-9)


def test_axis_angle_zero_and_tiny_angles():
    zero = np.zeros((4, 3))
    assert np.array_equal(R.axis_angle_to_quat(zero), R.quat_identity((4,)))
    assert np.array_equal(R.quat_to_axis_angle(R.quat_identity((4,))), zero)
    assert np.allclose(R.axis_angle_to_matrix(zero), np.eye(3))
    assert np.allclose(R.matrix_to_axis_angle(np.eye(3)), 0)
    for a in (1e-12, 1e-8, 1e-7, 1e-6, 1e-5):
        aa = np.array([a, -2 * a, 0.5 * a])
        q = R.axis_angle_to_quat(aa)
        assert np.isclose(np.linalg.norm(q), 1.0, atol=1e-15)
        assert np.allclose(R.quat_to_axis_angle(q), aa, rtol=1e-9, atol=0)
        assert np.allclose(q, to_scipy(q).as_quat()[0][[3, 0, 1, 2]])


def test_axis_angle_at_pi_and_beyond():
    rng = np.random.default_rng(4)
    aa = rotations_by_pi(rng)
    back = R.quat_to_axis_angle(R.axis_angle_to_quat(aa))
    assert np.allclose(np.linalg.norm(back, axis=-1), np.pi)
    # a half turn about u equals a half turn about -u
    assert np.allclose(np.abs(np.sum(back * aa, -1)), np.pi ** 2)
    # angles above pi come back as the shorter equivalent
    long = aa / np.pi * 1.5 * np.pi
    short = R.quat_to_axis_angle(R.axis_angle_to_quat(long))
    assert np.allclose(short, -aa / np.pi * 0.5 * np.pi, atol=1e-12)


# --- 6D -------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
def test_sixd_round_trips_batched(shape):
    rng = np.random.default_rng(5)
    q = rand_quat(rng, shape)
    d6 = R.quat_to_sixd(q)
    assert d6.shape == tuple(shape) + (6,)
    assert same_rotation(R.sixd_to_quat(d6), q)
    m = R.quat_to_matrix(q)
    assert np.allclose(R.sixd_to_matrix(R.matrix_to_sixd(m)), m, atol=1e-12)


def test_sixd_from_any_numbers_is_a_rotation():
    rng = np.random.default_rng(6)
    m = R.sixd_to_matrix(rng.normal(size=(100, 6)) * 5)
    assert np.allclose(m @ np.swapaxes(m, -1, -2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(m), 1)
    # the first column keeps the first vector's direction
    d6 = rng.normal(size=(100, 6))
    col0 = R.sixd_to_matrix(d6)[..., :, 0]
    assert np.allclose(col0, d6[:, :3] / np.linalg.norm(d6[:, :3], axis=-1, keepdims=True))


# --- Euler ----------------------------------------------------------------------------

@pytest.mark.parametrize("order", ORDERS)
def test_euler_matches_scipy_intrinsic(order):
    rng = np.random.default_rng(7)
    ang = rng.uniform(-np.pi, np.pi, size=(40, 3))
    ours = R.euler_to_matrix(ang, order)
    # scipy: upper case = intrinsic, R = R_o0 R_o1 R_o2
    assert np.allclose(ours, Rotation.from_euler(order, ang).as_matrix(), atol=1e-12)
    expected = np.eye(3)
    axes = {"X": [1, 0, 0], "Y": [0, 1, 0], "Z": [0, 0, 1]}
    for c, a in zip(order, ang[0]):
        expected = expected @ Rotation.from_rotvec(np.multiply(axes[c], a)).as_matrix()
    assert np.allclose(ours[0], expected, atol=1e-12)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("shape", [(), (9,), (2, 5)])
def test_euler_round_trip_batched(order, shape):
    rng = np.random.default_rng(8)
    ang = rng.uniform(-np.pi, np.pi, size=tuple(shape) + (3,))
    ang[..., 1] = rng.uniform(-np.pi / 2 + 1e-3, np.pi / 2 - 1e-3, size=shape)
    m = R.euler_to_matrix(ang, order)
    back = R.matrix_to_euler(m, order)
    assert back.shape == ang.shape
    assert np.allclose(back, ang, atol=1e-9)
    q = R.euler_to_quat(ang, order)
    assert np.allclose(R.quat_to_euler(q, order), ang, atol=1e-9)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("middle", [np.pi / 2, -np.pi / 2])
def test_euler_gimbal_lock(order, middle):
    rng = np.random.default_rng(9)
    ang = np.stack([rng.uniform(-np.pi, np.pi, 25), np.full(25, middle), rng.uniform(-np.pi, np.pi, 25)], -1)
    m = R.euler_to_matrix(ang, order)
    back = R.matrix_to_euler(m, order)
    assert np.all(np.isfinite(back))
    assert np.allclose(back[:, 1], middle, atol=1e-6)
    assert np.allclose(back[:, 2], 0.0), "at gimbal lock the last angle is folded into the first"
    assert np.allclose(R.euler_to_matrix(back, order), m, atol=1e-9)
    # a hair away from the lock, the matrix still comes back
    near = ang.copy()
    near[:, 1] -= np.sign(middle) * 1e-9
    mn = R.euler_to_matrix(near, order)
    assert np.allclose(R.euler_to_matrix(R.matrix_to_euler(mn, order), order), mn, atol=1e-6)


@pytest.mark.parametrize("order", ORDERS)
def test_euler_identity_and_half_turns(order):
    assert np.allclose(R.matrix_to_euler(np.eye(3), order), 0)
    rng = np.random.default_rng(10)
    m = Rotation.from_rotvec(rotations_by_pi(rng)).as_matrix()
    assert np.allclose(R.euler_to_matrix(R.matrix_to_euler(m, order), order), m, atol=1e-9)


@pytest.mark.parametrize("bad", ["XYX", "XY", "abc", "XYZW", ""])
def test_euler_bad_order(bad):
    with pytest.raises(ValueError, match="permutation"):
        R.euler_to_matrix(np.zeros(3), bad)


def test_euler_order_is_case_insensitive():
    a = np.array([0.1, 0.2, 0.3])
    assert np.allclose(R.euler_to_matrix(a, "zxy"), R.euler_to_matrix(a, "ZXY"))


# --- products and application -----------------------------------------------------------

@pytest.mark.parametrize("shape", SHAPES)
def test_quat_mul_apply_inverse_batched(shape):
    rng = np.random.default_rng(11)
    a, b = rand_quat(rng, shape), rand_quat(rng, shape)
    v = rng.normal(size=tuple(shape) + (3,))
    ab = R.quat_mul(a, b)
    assert np.allclose(R.quat_to_matrix(ab), R.quat_to_matrix(a) @ R.quat_to_matrix(b), atol=1e-12)
    mv = np.einsum("...ij,...j->...i", R.quat_to_matrix(a), v)
    assert np.allclose(R.quat_apply(a, v), mv, atol=1e-12)
    assert np.allclose(R.quat_apply(R.quat_inverse(a), R.quat_apply(a, v)), v, atol=1e-12)
    assert same_rotation(R.quat_mul(a, R.quat_conjugate(a)), R.quat_identity(shape))


def test_broadcasting_over_leading_dims():
    rng = np.random.default_rng(12)
    a = rand_quat(rng, (4, 1))
    b = rand_quat(rng, (1, 6))
    assert R.quat_mul(a, b).shape == (4, 6, 4)
    v = rng.normal(size=(6, 3))
    assert R.quat_apply(a, v).shape == (4, 6, 3)


def test_canonical_and_continuity():
    rng = np.random.default_rng(13)
    q = rand_quat(rng, (50,))
    c = R.quat_canonical(-q)
    assert np.all(c[:, 0] >= 0) and same_rotation(c, q)
    # a smooth path with random sign flips comes back smooth
    path = R.quat_slerp(q[0], q[1], np.linspace(0, 1, 30))
    flipped = path * rng.choice([-1.0, 1.0], size=(30, 1))
    cont = R.quat_continuous(flipped)
    assert np.all(np.sum(cont[1:] * cont[:-1], -1) > 0)
    assert same_rotation(cont, path)
    # along another axis
    batch = np.stack([flipped, flipped], 1)
    assert np.allclose(R.quat_continuous(batch, axis=0)[:, 1], cont)


# --- slerp ------------------------------------------------------------------------------

def test_slerp_endpoints_and_midpoints():
    rng = np.random.default_rng(14)
    a, b = rand_quat(rng, (20,)), rand_quat(rng, (20,))
    assert same_rotation(R.quat_slerp(a, b, 0.0), a)
    assert same_rotation(R.quat_slerp(a, b, 1.0), b)
    mid = R.quat_slerp(a, b, 0.5)
    half = R.quat_angle(a, b) / 2
    assert np.allclose(R.quat_angle(a, mid), half) and np.allclose(R.quat_angle(mid, b), half)
    # t as a batch of times, constant angular speed
    t = np.linspace(0, 1, 11)
    path = R.quat_slerp(a[0], b[0], t)
    assert path.shape == (11, 4)
    assert np.allclose(R.quat_angle(path[:-1], path[1:]), R.quat_angle(a[0], b[0]) / 10)


def test_slerp_takes_the_short_arc_and_handles_equal_inputs():
    rng = np.random.default_rng(15)
    a, b = rand_quat(rng, (20,)), rand_quat(rng, (20,))
    assert np.allclose(R.quat_slerp(a, -b, 0.3), R.quat_slerp(a, b, 0.3))
    assert np.all(R.quat_angle(a, R.quat_slerp(a, b, 0.5)) <= np.pi / 2 + 1e-12)
    same = R.quat_slerp(a, a, 0.7)
    assert np.all(np.isfinite(same)) and same_rotation(same, a)
    close = R.quat_normalize(a + 1e-9)
    assert np.all(np.isfinite(R.quat_slerp(a, close, 0.5)))
    opposite = R.quat_slerp(a, -a, 0.5)
    assert same_rotation(opposite, a)


# --- quat_between -------------------------------------------------------------------------

def test_quat_between_random_and_scaled():
    rng = np.random.default_rng(16)
    u, v = rng.normal(size=(100, 3)), rng.normal(size=(100, 3)) * 4
    q = R.quat_between(u, v)
    un, vn = (x / np.linalg.norm(x, axis=-1, keepdims=True) for x in (u, v))
    assert np.allclose(R.quat_apply(q, un), vn, atol=1e-12)
    # shortest arc: the angle equals the angle between the vectors
    assert np.allclose(R.quat_angle(q, R.quat_identity((100,))), np.arccos(np.clip(np.sum(un * vn, -1), -1, 1)))


def test_quat_between_parallel_and_antiparallel():
    rng = np.random.default_rng(17)
    u = np.concatenate([np.eye(3), -np.eye(3), rng.normal(size=(10, 3))])
    un = u / np.linalg.norm(u, axis=-1, keepdims=True)
    assert same_rotation(R.quat_between(u, 2 * u), R.quat_identity((len(u),)))
    q = R.quat_between(u, -3 * u)
    assert np.all(np.isfinite(q))
    assert np.allclose(R.quat_apply(q, un), -un, atol=1e-12)
    assert np.allclose(R.quat_angle(q, R.quat_identity((len(u),))), np.pi)
    # mixed batch: one antiparallel pair among ordinary ones
    v = rng.normal(size=(len(u), 3))
    v[3] = -u[3]
    qm = R.quat_between(u, v)
    assert np.allclose(R.quat_apply(qm, un), v / np.linalg.norm(v, axis=-1, keepdims=True), atol=1e-12)


def test_quat_angle_range():
    rng = np.random.default_rng(18)
    a, b = rand_quat(rng, (200,)), rand_quat(rng, (200,))
    ang = R.quat_angle(a, b)
    assert np.all((ang >= 0) & (ang <= np.pi))
    assert np.allclose(ang, (to_scipy(a).inv() * to_scipy(b)).magnitude())
    assert np.all(R.quat_angle(a, a) < 1e-12) and np.all(R.quat_angle(a, -a) < 1e-12)
    # accurate for tiny angles too (arccos of the dot product is not: ~1e-8 rad of noise)
    tiny = R.quat_mul(a, R.axis_angle_to_quat(np.array([1e-10, 0, 0])))
    assert np.allclose(R.quat_angle(a, tiny), 1e-10, rtol=1e-4)
    assert np.allclose(R.quat_angle(a * 2, b * 0.5), ang), "norm does not matter"
