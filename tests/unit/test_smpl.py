"""The canonical SMPL skeleton: default T-pose, measured proportions, official model files."""
from __future__ import annotations

import importlib.util
import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp

from kinemo.core import rotations as R
from kinemo.core import smpl as S
from kinemo.core import smpl_model as M
from kinemo.core.smpl_rest import layout_tpose, measure_bandai_proportions

NAMES = S.SMPL_JOINT_NAMES
IX = {n: i for i, n in enumerate(NAMES)}


# --- the default skeleton ---------------------------------------------------------

@pytest.fixture(scope="module")
def rest():
    skel = S.smpl_skeleton()
    return skel, skel.rest_global()[1]


def test_topology_is_smpl(rest):
    skel, _ = rest
    assert skel.names == NAMES and len(NAMES) == S.NUM_JOINTS == 24
    assert tuple(skel.parents) == S.SMPL_PARENTS
    assert np.allclose(skel.rest_rotations, [1, 0, 0, 0])
    assert [NAMES[p] for p in skel.parents[[IX["left_wrist"], IX["head"], IX["left_collar"]]]] == \
        ["left_elbow", "neck", "spine3"]


def test_tpose_is_mirror_symmetric(rest):
    _, pos = rest
    for n in NAMES:
        if n.startswith("left_"):
            l, r = pos[IX[n]], pos[IX["right_" + n[5:]]]
            assert np.allclose(l, r * [-1, 1, 1], atol=1e-9), n
            assert l[0] > 0, f"{n} should be on +X (the body's left)"
        elif not n.startswith("right_"):
            assert abs(pos[IX[n], 0]) < 1e-9, f"{n} should be on the midline"


def test_tpose_arms_horizontal_and_outward(rest):
    _, pos = rest
    for side, sx in (("left", 1), ("right", -1)):
        chain = [IX[f"{side}_{j}"] for j in ("collar", "shoulder", "elbow", "wrist", "hand")]
        assert np.allclose(pos[chain, 1], pos[chain[0], 1], atol=1e-9)
        assert np.allclose(pos[chain, 2], pos[chain[0], 2], atol=1e-9)
        assert np.all(np.diff(sx * pos[chain, 0]) > 0.03)


def test_tpose_legs_vertical_feet_flat_facing_z(rest):
    _, pos = rest
    for side in ("left", "right"):
        hip, knee, ankle, toe = (pos[IX[f"{side}_{j}"]] for j in ("hip", "knee", "ankle", "foot"))
        assert np.allclose(hip[[0, 2]], knee[[0, 2]]) and np.allclose(knee[[0, 2]], ankle[[0, 2]])
        assert 0.0 < toe[1] < 0.06, "toe joint near the floor"
        assert 0.05 < ankle[1] < 0.15, "ankle above the floor"
        assert toe[2] - ankle[2] > 0.05, "feet point forward, +Z"
    assert pos[:, 1].min() >= 0.0


def test_tpose_head_highest_and_height_plausible(rest):
    skel, pos = rest
    head = IX["head"]
    assert pos[:, 1].argmax() == head
    spine = [IX[n] for n in ("pelvis", "spine1", "spine2", "spine3", "neck", "head")]
    assert np.all(np.diff(pos[spine, 1]) > 0)
    stature = pos[head, 1] + skel.end_sites[head][1]
    assert 1.6 < stature < 1.9
    legs = pos[IX["left_hip"], 1]
    assert 0.45 < legs / stature < 0.6


def test_heading_is_the_facing_along_the_floor_whatever_the_tilt():
    yaw = np.array([0.0, 0.5, -2.0, np.pi - 1e-3])
    turn = R.axis_angle_to_quat(np.stack([0 * yaw, yaw, 0 * yaw], -1))
    lean = R.axis_angle_to_quat(np.array([0.4, 0.0, 0.3]))           # bent forward and sideways, in the body
    got = S.heading(R.quat_mul(turn, np.broadcast_to(lean, turn.shape)))
    want = np.arctan2(*R.quat_apply(lean, S.FORWARD)[[0, 2]]) + yaw
    np.testing.assert_allclose(np.angle(np.exp(1j * (got - want))), 0.0, atol=1e-9)    # equal up to a full turn
    assert np.all(np.abs(got) <= np.pi)
    assert S.heading(R.axis_angle_to_quat(np.array([-np.pi / 2, 0.0, 0.0]))) == 0.0   # facing up: no heading
    np.testing.assert_array_equal(np.array([2.0, 3.0, -4.0]) * S.FLOOR, [2.0, 0.0, -4.0])


@pytest.mark.shared
def test_shipped_table_matches_a_remeasurement(bandai_files):
    """Re-measure on the sample takes: the shipped numbers are the corpus's, within a few cm."""
    m = measure_bandai_proportions(bandai_files)
    assert m.takes == len(bandai_files) and m.frames > 1000
    pos, head_top = layout_tpose(m)
    err = np.linalg.norm(pos - S._REST_POSITIONS, axis=-1)
    assert err.max() < 0.03, f"joint {NAMES[err.argmax()]} off by {err.max():.3f} m"
    assert np.allclose(head_top, S._HEAD_TOP, atol=0.03)
    # standing hips sit below the straight-leg T-pose, but not by much
    assert 0.0 < pos[IX["left_hip"], 1] - m.standing_hip_height < 0.06


def test_measure_refuses_other_skeletons(tmp_path):
    from kinemo.core.bvh import write_bvh
    skel = S.smpl_skeleton()
    write_bvh(tmp_path / "smpl.bvh", skel, skel.rest_motion(3))
    with pytest.raises(ValueError, match="not a Bandai skeleton"):
        measure_bandai_proportions([tmp_path])


# --- synthetic SMPL-format model files ---------------------------------------------

V = 100


class _FakeCh:
    """Pickles like a chumpy ``Ch`` (module chumpy.ch, name Ch, state dict with 'x')."""

    def __init__(self, x):
        self.x = np.asarray(x)
        self._dirty_vars = set()
        self._itr = None
        self._depends_on_deps = {}
        self._make_dense = False
        self._make_sparse = False


def _kintree(parents) -> np.ndarray:
    par = np.asarray(parents, np.int64)
    return np.stack([np.where(par < 0, 4294967295, par), np.arange(len(par))]).astype(np.uint32)


def _regressor(rng, joints: int) -> sp.csc_matrix:
    """Each joint a convex combination of a few vertices, like SMPL's."""
    reg = np.zeros((joints, V))
    for j in range(joints):
        idx = rng.choice(V, 6, replace=False)
        w = rng.random(6)
        reg[j, idx] = w / w.sum()
    return sp.csc_matrix(reg)


def _model_dict(rng, parents, betas: int, chumpy: bool) -> dict:
    joints = len(parents)
    wrap = _FakeCh if chumpy else np.asarray
    v = rng.normal(size=(V, 3)) * [0.2, 0.5, 0.1] + [0, 0.2, 0]
    w = rng.random((V, joints))
    return {
        "v_template": wrap(v),
        "shapedirs": wrap(rng.normal(size=(V, 3, betas)) * 0.01),
        "posedirs": wrap(rng.normal(size=(V, 3, 9 * (joints - 1))) * 0.001),
        "weights": wrap(w / w.sum(1, keepdims=True)),
        "J_regressor": _regressor(rng, joints),
        "kintree_table": _kintree(parents),
        "f": rng.integers(0, V, size=(150, 3)).astype(np.uint32),
        "J": wrap(np.zeros((joints, 3))),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
    }


@pytest.fixture
def smpl_pkl(tmp_path, monkeypatch):
    """A SMPL-format .pkl whose stream names chumpy.ch.Ch, like the official files."""
    rng = np.random.default_rng(7)
    data = _model_dict(rng, S.SMPL_PARENTS, 10, chumpy=True)
    fake = types.ModuleType("chumpy.ch")
    _FakeCh.__module__, _FakeCh.__qualname__ = "chumpy.ch", "Ch"
    fake.Ch = _FakeCh
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", fake)
    path = tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    path.write_bytes(pickle.dumps(data, protocol=2))
    for proto in (0, 1):  # Python 2's cPickle default and binary protocols
        (tmp_path / f"proto{proto}.pkl").write_bytes(pickle.dumps(data, protocol=proto))
    monkeypatch.undo()  # chumpy is gone again before anything loads the file
    _FakeCh.__module__, _FakeCh.__qualname__ = __name__, "_FakeCh"
    plain = {k: (v.x if isinstance(v, _FakeCh) else v) for k, v in data.items()}
    return path, plain


def test_fixture_really_references_chumpy(smpl_pkl):
    path, _ = smpl_pkl
    assert b"chumpy.ch" in path.read_bytes()
    assert "chumpy" not in sys.modules and importlib.util.find_spec("chumpy") is None
    with pytest.raises(ModuleNotFoundError):
        with open(path, "rb") as f:
            pickle.load(f, encoding="latin1")  # what a plain load does today


@pytest.mark.parametrize("name", ["", "proto0.pkl", "proto1.pkl"])
def test_loads_chumpy_pickle_without_chumpy(smpl_pkl, name):
    path, plain = smpl_pkl
    data = M.load_model_pickle(path.with_name(name) if name else path)
    assert "chumpy" not in sys.modules
    for k in ("v_template", "shapedirs", "posedirs", "weights", "J"):
        assert type(data[k]) is np.ndarray and np.array_equal(data[k], plain[k]), k
    assert sp.issparse(data["J_regressor"]) and data["J_regressor"].format == "csc"
    assert np.array_equal(data["J_regressor"].toarray(), plain["J_regressor"].toarray())
    assert data["bs_style"] == "lbs" and data.keys() == plain.keys()
    model = M.load_smpl_model(path)
    assert model.kind == "smpl" and model.num_betas == 10
    assert tuple(model.parents) == S.SMPL_PARENTS


def test_skeleton_for_shape_is_regressed_joints(smpl_pkl):
    path, plain = smpl_pkl
    betas = np.linspace(-2, 2, 10)
    v = plain["v_template"] + plain["shapedirs"] @ betas
    J = plain["J_regressor"].toarray() @ v
    skel = M.skeleton_for_shape(path, betas)
    assert skel.names == NAMES and tuple(skel.parents) == S.SMPL_PARENTS
    pos = skel.rest_global()[1]
    shift = np.array([-J[0, 0], -v[:, 1].min(), -J[0, 2]])
    assert np.allclose(pos, J + shift, atol=1e-12)
    assert np.isclose(pos[IX["head"], 1] + skel.end_sites[IX["head"]][1], v[:, 1].max() + shift[1])
    # betas change the joints; no betas means the template
    assert not np.allclose(M.skeleton_for_shape(path).offsets, skel.offsets)
    assert np.allclose(M.shaped_joints(M.load_smpl_model(path)), plain["J_regressor"].toarray() @ plain["v_template"])


def test_betas_are_checked(smpl_pkl):
    path, _ = smpl_pkl
    with pytest.raises(M.SmplModelError, match="betas"):
        M.skeleton_for_shape(path, np.zeros(11))
    with pytest.raises(M.SmplModelError, match="betas"):
        M.skeleton_for_shape(path, [np.nan])


def _smplx_or_skip():
    try:
        import smplx  # noqa: F401
    except ImportError as e:  # a dependency in pyproject; only a broken install lacks it
        pytest.skip(f"smplx does not import: {e}")


def test_smplx_agrees_with_numpy(smpl_pkl):
    _smplx_or_skip()
    path, _ = smpl_pkl
    model = M.load_smpl_model(path)
    betas = np.linspace(1.5, -1.5, 7)
    a = M.shaped_joints(model, betas)
    b = M.shaped_joints_smplx(model, betas)
    assert b.shape == (24, 3) and np.allclose(a, b, atol=1e-6)  # smplx keeps float32 arrays
    s1, s2 = M.skeleton_for_shape(model, betas), M.skeleton_for_shape(model, betas, use_smplx=True)
    assert np.allclose(s1.offsets, s2.offsets, atol=1e-6)


def _smplx_parents() -> list[int]:
    """SMPL-X's 55-joint tree: body 0-21, jaw, eyes, 15 joints per hand (3 per finger)."""
    body = list(S.SMPL_PARENTS[:22])
    out = body + [15, 15, 15]
    for wrist in (20, 21):
        base = len(out)
        for finger in range(5):
            out += [wrist, base + 3 * finger, base + 3 * finger + 1]
    return out


def test_smplx_npz_hand_joints_and_smplx_agreement(tmp_path):
    rng = np.random.default_rng(3)
    parents = _smplx_parents()
    assert len(parents) == 55
    data = _model_dict(rng, parents, 20, chumpy=False)
    data["J_regressor"] = data["J_regressor"].toarray()  # SMPL-X files store it dense
    data.update(hands_componentsl=rng.normal(size=(45, 45)), hands_componentsr=rng.normal(size=(45, 45)),
                hands_meanl=rng.normal(size=45), hands_meanr=rng.normal(size=45),
                lmk_faces_idx=np.arange(51), lmk_bary_coords=np.full((51, 3), 1 / 3),
                joint2num=np.array({"pelvis": 0}, dtype=object))  # needs pickle: skipped
    del data["J"], data["bs_style"], data["bs_type"]
    path = tmp_path / "SMPLX_NEUTRAL.npz"
    np.savez(path, **data)
    model = M.load_smpl_model(path)
    assert model.kind == "smplx" and model.num_betas == 10  # 10 shape + 10 expression components
    assert "joint2num" not in model.data
    betas = rng.normal(size=10)
    J = data["J_regressor"] @ (data["v_template"] + data["shapedirs"][:, :, :10] @ betas)
    pos = M.skeleton_for_shape(model, betas).rest_global()[1]
    rel = pos - pos[0]
    assert np.allclose(rel[:22], J[:22] - J[0])
    assert np.allclose(rel[IX["left_hand"]], J[28] - J[0]) and np.allclose(rel[IX["right_hand"]], J[43] - J[0])
    _smplx_or_skip()
    assert np.allclose(M.shaped_joints_smplx(model, betas), M.shaped_joints(model, betas), atol=1e-6)


# --- refusing what is not a model ---------------------------------------------------

class _Payload:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval", "numpy.load", "nested"])
def test_code_in_pickle_is_refused_and_never_runs(tmp_path, kind):
    marker = tmp_path / "pwned"
    cmd = f"touch {marker}"
    payload = {
        "os.system": _Payload(os.system, cmd),
        "builtins.eval": _Payload(eval, f"__import__('os').system({cmd!r})"),
        "numpy.load": _Payload(np.load, str(marker)),
        "nested": {"deep": [1, _Payload(os.system, cmd)]},
    }[kind]
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"v_template": np.zeros((3, 3)), "extra": payload}, protocol=2))
    with pytest.raises(M.SmplModelError, match="refusing to load") as err:
        M.load_smpl_model(path)
    msg = str(err.value)
    assert str(path) in msg
    expected = {"os.system": os.system.__module__ + ".system", "builtins.eval": "builtins.eval",
                "numpy.load": "numpy.load", "nested": os.system.__module__ + ".system"}[kind]
    assert f"'{expected}'" in msg
    assert not marker.exists()


def test_malformed_files_give_clear_errors(tmp_path):
    missing = tmp_path / "nope.pkl"
    with pytest.raises(M.SmplModelError, match="no such model file"):
        M.load_smpl_model(missing)
    p = tmp_path / "list.pkl"
    p.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(M.SmplModelError, match="holds a dict"):
        M.load_smpl_model(p)
    p = tmp_path / "partial.pkl"
    p.write_bytes(pickle.dumps({"v_template": np.zeros((4, 3))}))
    with pytest.raises(M.SmplModelError, match="missing"):
        M.load_smpl_model(p)
    p = tmp_path / "truncated.pkl"
    p.write_bytes(pickle.dumps({"v_template": np.zeros((40, 3))}, protocol=2)[:60])
    with pytest.raises(M.SmplModelError, match="not a readable model pickle"):
        M.load_smpl_model(p)
    p = tmp_path / "odd.pkl"
    rng = np.random.default_rng(0)
    data = _model_dict(rng, S.SMPL_PARENTS[:10], 4, chumpy=False)  # 10 joints: no SMPL family
    p.write_bytes(pickle.dumps(data))
    with pytest.raises(M.SmplModelError, match="24, 52 or 55 joints"):
        M.load_smpl_model(p)
