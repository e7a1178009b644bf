import numpy as np
import pytest

from kinemo.core import rotations as R
from kinemo.core.resample import resample, resample_times
from kinemo.core.skeleton import Motion


def _motion(T=31, fps=30.0):
    t = np.arange(T) / fps
    aa = np.zeros((T, 2, 3))
    aa[:, 1, 2] = 1.2 * t  # constant angular velocity about Z
    trans = np.zeros((T, 2, 3))
    trans[:, 0, 0] = 2.0 * t  # constant speed
    trans[:, 1] = [0, 1, 0]
    return Motion(R.axis_angle_to_quat(aa), trans, fps)


def test_resample_keeps_endpoints_and_duration():
    m = _motion()
    for fps in (24.0, 25.0, 60.0, 12.5):
        r = resample(m, fps)
        assert r.fps == fps
        # the same duration up to rounding to whole frames
        assert abs((r.num_frames - 1) / fps - (m.num_frames - 1) / m.fps) <= 0.5 / fps + 1e-9
        np.testing.assert_allclose(R.quat_angle(r.rotations[0], m.rotations[0]), 0, atol=1e-9)


def test_constant_velocity_is_exact_with_slerp():
    m = _motion()
    r = resample(m, 24.0)
    t = np.arange(r.num_frames) / 24.0
    np.testing.assert_allclose(r.translations[:, 0, 0], 2.0 * t, atol=1e-9)
    expect = R.axis_angle_to_quat(np.stack([np.zeros_like(t), np.zeros_like(t), 1.2 * t], -1))
    np.testing.assert_allclose(R.quat_angle(r.rotations[:, 1], expect), 0, atol=1e-7)


def test_round_trip_up_and_down():
    m = _motion()
    back = resample(resample(m, 60.0), 30.0)
    assert back.num_frames == m.num_frames
    np.testing.assert_allclose(R.quat_angle(back.rotations, m.rotations), 0, atol=1e-7)


def test_bad_fps():
    with pytest.raises(ValueError):
        resample_times(10, 30.0, 0.0)
