"""The add-on's operators against a real `kinemo serve` process, in real bpy,
on a fresh file per test: results land in new actions, the user's data is
never touched, undo removes a result, cancel and a dead backend leave nothing.

The server here runs without a model (`--no-model`), so the model requests
(in-between, generate, dance) answer `not_available`; these tests assert that
plain-words error and no change. test_operators_model.py runs them against a
server with the tiny trained model.
"""
from __future__ import annotations

import importlib.util
import socket
import sys
import time
import wave
from pathlib import Path

import addon_utils
import bpy
import numpy as np
import pytest

from kinemo.core import rotations as R
from kinemo.demo_motion import DEMO_BVH

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("kinemo_serve_fixture", REPO / "tests" / "integration" / "conftest.py")
_serve = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _serve
_spec.loader.exec_module(_serve)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = _serve.start_server(tmp_path_factory.mktemp("serve"), "--heartbeat", "0.25")
    yield s
    assert s.stop() == 0, s.log_text()


@pytest.fixture
def kinemo(addon, tmp_path, monkeypatch):
    """The add-on registered (and unregistered after), its config in tmp_path."""
    monkeypatch.setenv("KINEMO_ADDON_CONFIG", str(tmp_path / "config"))
    addon.register()
    from kinemo_addon import jobs
    jobs.LAST.update(state="", message="")
    yield addon
    addon.unregister()


def free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


# -- scene helpers ----------------------------------------------------------------

def metarig():
    addon_utils.enable("rigify", default_set=True)
    assert bpy.ops.object.armature_human_metarig_add() == {"FINISHED"}
    return bpy.context.object


def bvh_rig():
    res = bpy.ops.import_anim.bvh(filepath=str(DEMO_BVH), update_scene_fps=False, use_fps_scale=False)
    assert res == {"FINISHED"}
    return bpy.context.object


def key_poses(obj, frames, seed=0) -> None:
    """Key moderate random rotations on every bone and root locations, as a user would."""
    rng = np.random.default_rng(seed)
    root = next(b for b in obj.pose.bones if b.parent is None)
    for f in frames:
        for pb in obj.pose.bones:
            q = R.axis_angle_to_quat(rng.normal(scale=0.3, size=3))
            if pb.rotation_mode == "QUATERNION":
                pb.rotation_quaternion = q
                pb.keyframe_insert("rotation_quaternion", frame=f)
            else:
                pb.rotation_euler = R.quat_to_euler(q, pb.rotation_mode[::-1])[::-1]
                pb.keyframe_insert("rotation_euler", frame=f)
        root.location = rng.normal(scale=0.2, size=3)
        root.keyframe_insert("location", frame=f)


def keyed_metarig(frames=(1, 20, 40)):
    """A metarig with poses keyed at ``frames`` (the user's action)."""
    obj = metarig()
    key_poses(obj, frames)
    return obj


def snapshot(obj) -> dict:
    """Every action's curves (exact float32 bytes) and the rig's assignment."""
    out = {}
    for a in bpy.data.actions:
        curves = {}
        for fc in _all_fcurves(a):
            kp = fc.keyframe_points
            bufs = []
            for prop in ("co", "handle_left", "handle_right"):
                buf = np.empty(len(kp) * 2, np.float32)
                kp.foreach_get(prop, buf)
                bufs.append(buf.tobytes())
            curves[(fc.data_path, fc.array_index)] = tuple(bufs)
        out[a.name] = curves
    ad = obj.animation_data
    out["<assigned>"] = ad.action.name if ad and ad.action else None
    return out


def _all_fcurves(action):
    if bpy.app.version >= (4, 4, 0):
        return [fc for layer in action.layers for strip in layer.strips for bag in strip.channelbags
                for fc in bag.fcurves]
    return list(action.fcurves)


def run(op, **kw) -> tuple[set, str]:
    """Run an operator blocking; returns its result and its message. An operator
    that reports an error raises RuntimeError with that text when called from Python."""
    from kinemo_addon import jobs
    try:
        res = op(blocking=True, **kw)
    except RuntimeError as e:
        return {"CANCELLED"}, str(e)
    return res, jobs.LAST["message"]


# -- registration -----------------------------------------------------------------

def test_register_unregister_twice_leaves_nothing(addon):
    for _ in range(2):
        addon.register()
        assert hasattr(bpy.types, "KINEMO_PT_main") and hasattr(bpy.ops.kinemo, "retarget")
        assert hasattr(bpy.types.Scene, "kinemo")
        addon.unregister()
        assert not hasattr(bpy.types, "KINEMO_PT_main")
        assert not hasattr(bpy.types.Scene, "kinemo")
        assert "KINEMO_OT_retarget" not in dir(bpy.types)


# -- connection -------------------------------------------------------------------

def test_connect_shows_version_device_and_model(kinemo, server):
    from kinemo_addon import operators
    res, _ = run(bpy.ops.kinemo.connect, address=server.address)
    assert res == {"FINISHED"}
    assert operators.STATUS["connected"]
    info = operators.STATUS["info"]
    assert info["server"] in operators.STATUS["text"] and "cpu" in operators.STATUS["text"]
    assert "model" in operators.STATUS["text"]


def test_dead_backend_gives_plain_error_and_changes_nothing(kinemo):
    src, tgt = bvh_rig(), keyed_metarig()
    before = snapshot(tgt)
    t0 = time.monotonic()
    res, msg = run(bpy.ops.kinemo.retarget, source=src.name, target=tgt.name, address=free_address())
    assert res == {"CANCELLED"}
    assert "not running" in msg and "kinemo serve" in msg
    assert time.monotonic() - t0 < 30
    assert snapshot(tgt) == before


def test_version_mismatch_is_named(kinemo, server):
    """A client speaking another protocol version gets a plain 'version mismatch'."""
    from kinemo_addon import connection, jobs
    from kinemo_addon.wire import protocol
    from kinemo_addon.wire.client import Request
    s = connection.Settings(server.address)
    c = connection.client(s)
    frames = protocol.pack("ping", "v99-ping", {}, None, version=99)  # what an older/newer add-on sends
    req = Request("v99-ping", "ping", frames, time.monotonic())
    c.pending[req.id] = req
    c._send(frames)
    job = jobs.Job("ping", s, [("ping", {})], lambda o: o)
    job._client, job._handles, job.state = c, [req], "running"
    with pytest.raises(connection.KinemoError, match="Version mismatch"):
        job.wait(10)


# -- retarget ---------------------------------------------------------------------

@pytest.mark.parametrize("make_target", [keyed_metarig, None], ids=["rigify-metarig", "bvh-import"])
def test_retarget_end_to_end_keeps_user_data_and_undoes(kinemo, server, make_target):
    if make_target is None:  # SMPL armature with keyed poses -> a BVH-imported rig
        assert bpy.ops.kinemo.create_smpl_armature() == {"FINISHED"}
        src = bpy.context.object
        key_poses(src, (1, 15, 30))
        tgt = bvh_rig()
    else:
        src, tgt = bvh_rig(), make_target()
    before_src, before_tgt = snapshot(src), snapshot(tgt)
    user_action = tgt.animation_data.action.name if tgt.animation_data and tgt.animation_data.action else None
    bpy.ops.ed.undo_push(message="before retarget")

    res, msg = run(bpy.ops.kinemo.retarget, source=src.name, target=tgt.name, address=server.address)
    assert res == {"FINISHED"}, msg
    new = tgt.animation_data.action
    assert new.name.startswith("Kinemo retarget") and new.name != user_action
    a, b = src.animation_data.action.frame_range
    assert tuple(new.frame_range) == (a, b)
    # the result moves the rig: its root (or hips) travels
    heads = []
    for f in (int(a), int(b)):
        bpy.context.scene.frame_set(f)
        heads.append(np.array(tgt.pose.bones[0].head))
    assert np.linalg.norm(heads[1] - heads[0]) > 1e-3
    # the user's actions are bit-identical and still there
    after = snapshot(src)
    for before in (before_src, before_tgt):
        for name, curves in before.items():
            if name != "<assigned>":
                assert after[name] == curves, name
    assert snapshot(src)["<assigned>"] == before_src["<assigned>"]

    # One undo step removes the result and gives the user's action back. Headless,
    # Blender does not push the undo step an UNDO operator gets in the UI (checked:
    # no operator called from Python pushes one in background mode), so this
    # pushes it as the UI would, right after the operator.
    assert "UNDO" in bpy.types.KINEMO_OT_retarget.bl_options
    tgt_name = tgt.name
    bpy.ops.ed.undo_push(message="Retarget")
    assert bpy.ops.ed.undo() == {"FINISHED"}
    tgt = bpy.data.objects[tgt_name]  # undo reloads the data: old references are gone
    assert not any(x.name.startswith("Kinemo") for x in bpy.data.actions)
    assert snapshot(tgt) == before_tgt


def test_edited_mapping_and_presets(kinemo, server):
    src, tgt = bvh_rig(), metarig()
    k = bpy.context.scene.kinemo
    k.source, k.target = src, tgt
    res, msg = run(bpy.ops.kinemo.map_bones, address=server.address)
    assert res == {"FINISHED"}, msg
    pairs = {p.target: p.source for p in k.mapping}
    assert pairs["spine"] and pairs["upper_arm.L"] and len(pairs) >= 17
    # drop the left upper arm: it must stay at rest in the result
    k.mapping.remove(next(i for i, p in enumerate(k.mapping) if p.target == "upper_arm.L"))
    assert bpy.ops.kinemo.preset_save(name="bvh to rigify") == {"FINISHED"}
    k.mapping.clear()
    assert bpy.ops.kinemo.preset_load(name="bvh to rigify") == {"FINISHED"}
    assert {p.target: p.source for p in k.mapping} == {t: s for t, s in pairs.items() if t != "upper_arm.L"}
    path = Path(kinemo.api.config_dir()) / "presets" / "bvh to rigify.json"
    assert path.is_file()

    res, msg = run(bpy.ops.kinemo.retarget, address=server.address)
    assert res == {"FINISHED"}, msg
    fcs = {(fc.data_path, fc.array_index): fc for fc in _all_fcurves(tgt.animation_data.action)}
    arm_w = fcs[('pose.bones["upper_arm.L"].rotation_quaternion', 0)]
    other_w = fcs[('pose.bones["upper_arm.R"].rotation_quaternion', 0)]
    vals = lambda fc: np.array([kp.co[1] for kp in fc.keyframe_points])  # noqa: E731
    assert np.allclose(vals(arm_w), 1.0, atol=1e-6)      # unmapped: rest pose throughout
    assert np.ptp(vals(other_w)) > 1e-3                   # mapped: it moves

    with pytest.raises(RuntimeError, match="No preset named"):
        bpy.ops.kinemo.preset_load(name="no such preset")


def test_invalid_rig_is_named(kinemo, server):
    src = bvh_rig()
    arm = bpy.data.armatures.new("Stick")
    tgt = bpy.data.objects.new("Stick", arm)
    bpy.context.collection.objects.link(tgt)
    bpy.context.view_layer.objects.active = tgt
    bpy.ops.object.mode_set(mode="EDIT")
    b = arm.edit_bones.new("only")
    b.head, b.tail = (0, 0, 0), (0, 0, 1)
    bpy.ops.object.mode_set(mode="OBJECT")
    res, msg = run(bpy.ops.kinemo.retarget, source=src.name, target=tgt.name, address=server.address)
    assert res == {"CANCELLED"}
    assert "rejected" in msg and "humanoid" in msg
    assert tgt.animation_data is None


def test_cancel_leaves_nothing_behind(kinemo, server):
    from kinemo_addon import api, connection
    src, tgt = bvh_rig(), keyed_metarig()
    before = snapshot(tgt)
    n_actions = len(bpy.data.actions)
    job = api.retarget(connection.Settings(server.address), src, tgt).start()
    job.poll()
    job.cancel()
    assert job.state == "cancelled"
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:  # whatever the backend still sends is ignored
        assert job.poll(0.05)
    assert job.result is None
    assert len(bpy.data.actions) == n_actions and snapshot(tgt) == before


def test_ui_path_runs_on_app_timers_api(kinemo, server):
    """Without blocking the operator returns at once; the plain poll step (what
    the timer calls) finishes the job."""
    from kinemo_addon import jobs
    src, tgt = bvh_rig(), metarig()
    assert bpy.ops.kinemo.retarget(source=src.name, target=tgt.name, address=server.address) == {"FINISHED"}
    (job,) = jobs.ACTIVE
    assert tgt.animation_data is None  # nothing yet: it returned before the answer
    deadline = time.monotonic() + 30
    while not job.poll(0.05):
        assert time.monotonic() < deadline
    assert job.state == "done" and tgt.animation_data.action == job.result


# -- the model requests: not available yet -----------------------------------------

def _wav(path: Path, seconds: float = 2.0) -> Path:
    rate = 16000
    t = np.arange(int(rate * seconds)) / rate
    data = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return path


@pytest.mark.parametrize("feature", ["inbetween", "generate", "dance"])
def test_model_operators_not_available_yet(kinemo, server, feature, tmp_path):
    obj = keyed_metarig()
    k = bpy.context.scene.kinemo
    k.frame_start, k.frame_end = 1, 40
    k.audio_path = str(_wav(tmp_path / "beat.wav"))
    before = snapshot(obj)
    res, msg = run(getattr(bpy.ops.kinemo, feature), address=server.address)
    assert res == {"CANCELLED"}
    assert "cannot do this yet" in msg and "model" in msg
    assert snapshot(obj) == before


def test_model_operator_input_errors_are_plain(kinemo, server):
    obj = metarig()
    k = bpy.context.scene.kinemo
    res, msg = run(bpy.ops.kinemo.inbetween, address=server.address)
    assert res == {"CANCELLED"} and "no keys" in msg  # refused before anything is sent
    from kinemo_addon import api, connection
    with pytest.raises(connection.KinemoError, match="no keys"):
        api.inbetween(connection.Settings(server.address), obj, 1, 40)
    with pytest.raises(connection.KinemoError, match="sound strip"):
        api.dance(connection.Settings(server.address), obj, 1, 40)
    with pytest.raises(connection.KinemoError, match="description"):
        api.generate(connection.Settings(server.address), obj, "  ", 2.0)
    k.selected_only = True
    key_poses(obj, (1, 10))
    for b in obj.data.bones:
        b.select = False
    with pytest.raises(connection.KinemoError, match="No bones are selected"):
        api.inbetween(connection.Settings(server.address), obj, 1, 40, selected_only=True)


def test_inbetween_request_carries_the_users_keys(kinemo):
    """What the in-between job sends: keyed frames in the range, exact local poses, masks for selected bones."""
    from kinemo_addon import api, bridge, connection
    obj = metarig()
    key_poses(obj, (3, 12, 30, 80))
    for b in obj.data.bones:
        b.select = b.name in ("upper_arm.L", "forearm.L")
    obj.pose.bones["upper_arm.L"].keyframe_insert("rotation_quaternion", frame=7)
    job = api.inbetween(connection.Settings(), obj, 1, 40, selected_only=True)
    body = job.requests[0][1]
    assert list(body["keys"]["frames"]) == [2, 6, 11, 29]  # 0-based in the range; frame 80 is outside
    names = body["rig"]["names"]
    mask = body["keys"]["mask"]
    assert mask[:, names.index("upper_arm.L")].all()
    assert list(mask[:, names.index("forearm.L")]) == [True, False, True, True]
    assert mask.sum() == 7
    m = bridge.read_action_motion(obj, 1, 40)
    np.testing.assert_array_equal(body["keys"]["rotations"], m["rotations"][[2, 6, 11, 29]].astype(np.float32))
    whole = api.inbetween(connection.Settings(), obj, 1, 40).requests[0][1]
    assert "mask" not in whole["keys"] and list(whole["keys"]["frames"]) == [2, 6, 11, 29]


# -- SMPL armature, fps, bulk writing -----------------------------------------------

def test_smpl_armature_matches_the_backend_skeleton(kinemo):
    from kinemo.core.axes import backend_to_blender_matrices
    from kinemo.core.smpl import smpl_skeleton
    from kinemo_addon import bridge, smpl
    skel = smpl_skeleton()
    assert tuple(smpl.NAMES) == tuple(skel.names) and tuple(smpl.PARENTS) == tuple(int(p) for p in skel.parents)
    np.testing.assert_allclose(smpl.OFFSETS, skel.offsets, atol=5e-7)
    assert bpy.ops.kinemo.create_smpl_armature() == {"FINISHED"}
    obj = bpy.context.object
    d = bridge.rig_description(obj)
    assert sorted(d["names"]) == sorted(skel.names)
    _, pos = skel.rest_global()
    m = np.tile(np.eye(4), (len(pos), 1, 1))
    m[:, :3, 3] = pos
    want = backend_to_blender_matrices(m)[:, :3, 3]
    got = np.array([obj.data.bones[n].head_local for n in skel.names])
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_resample_agrees_with_the_backend(addon):
    from kinemo.core.resample import resample
    from kinemo.core.skeleton import Motion
    from kinemo_addon import arrays
    rng = np.random.default_rng(3)
    rot = R.quat_normalize(rng.normal(size=(31, 5, 4)))
    rot = R.quat_continuous(rot)
    trans = rng.normal(size=(31, 5, 3))
    for fps in (24.0, 25.0, 60.0, 30.0):
        r, t = arrays.resample_motion(rot, trans, 30.0, fps)
        ref = resample(Motion(rot, trans, 30.0), fps)
        assert r.shape == ref.rotations.shape
        assert R.quat_angle(r, ref.rotations).max() < 1e-6
        np.testing.assert_allclose(t, ref.translations, atol=1e-9)


def test_writing_a_minute_on_a_60_bone_rig_at_24_fps(kinemo):
    """A 30 fps backend result (60 s, 60 bones) written to a 24 fps scene: timed."""
    from kinemo_addon import bridge, results
    from test_bridge import chain_rig
    obj = chain_rig(60)
    bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = 24, 1.0
    d = bridge.rig_description(obj)
    T, J = 60 * 30, len(d["names"])
    t = np.arange(T)[:, None, None] / 30.0
    rot = R.axis_angle_to_quat(0.5 * np.sin(2 * np.pi * 0.7 * t + np.arange(J)[None, :, None] * [0.1, 0.2, 0.3]))
    from kinemo.core.skeleton import Skeleton
    skel = Skeleton.from_rest_matrices(d["names"], d["parents"], d["rest_matrices"])
    trans = np.repeat(skel.offsets[None], T, 0)
    trans[:, 0, 0] += np.linspace(0, 3, T)
    motion = {"rotations": rot.astype(np.float32), "translations": trans.astype(np.float32), "fps": 30.0}
    t0 = time.perf_counter()
    r, tr = results.motion_at_scene_fps(motion)
    action = results.write_result(obj, d["names"], r, tr, 1, "minute")
    elapsed = time.perf_counter() - t0
    n_curves = len(_all_fcurves(action))
    print(f"\nadd-on write: 60 s (1800 frames at 30 fps -> {len(r)} at 24 fps) x {J} bones, "
          f"{n_curves} F-curves, {n_curves * len(r)} keys in {elapsed:.3f} s")
    assert len(r) == round(1799 * 24 / 30) + 1
    assert tuple(action.frame_range) == (1.0, float(len(r)))
    assert elapsed < 1.0


# -- local backend ----------------------------------------------------------------

def test_local_backend_start_status_log_stop(kinemo):
    from kinemo_addon import local_backend, operators
    address = free_address()
    assert bpy.ops.kinemo.backend_start(python=sys.executable, address=address) == {"FINISHED"}
    deadline = time.monotonic() + 60
    while not local_backend.ready():
        assert local_backend.status().startswith("running"), local_backend.log_tail()
        assert time.monotonic() < deadline, local_backend.log_tail()
        time.sleep(0.2)
    assert local_backend.status().startswith("running (process")
    with pytest.raises(RuntimeError, match="already running"):  # one at a time
        bpy.ops.kinemo.backend_start(python=sys.executable, address=address)
    res, msg = run(bpy.ops.kinemo.connect, address=address)
    assert res == {"FINISHED"} and operators.STATUS["connected"], msg
    assert bpy.ops.kinemo.backend_stop() == {"FINISHED"}
    assert local_backend.status().startswith("stopped")
    assert "listening on" in local_backend.log_tail(100)
    assert (Path(kinemo.api.config_dir()) / "backend.log").is_file()


def test_local_backend_bad_python_is_named(kinemo, tmp_path):
    with pytest.raises(RuntimeError, match="not a Python executable"):
        bpy.ops.kinemo.backend_start(python=str(tmp_path / "nope"), address=free_address())
