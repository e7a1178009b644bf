"""The model operators (in-between, generate, dance) end to end: real bpy, a real `kinemo serve` running the
tiny model trained in this session (needs ../shared for its training data)."""
from __future__ import annotations

import wave

import bpy
import numpy as np
import pytest

from kinemo.core import rotations as R

from test_operators import _serve, keyed_metarig, kinemo, run, snapshot  # noqa: F401 (kinemo: the fixture)


@pytest.fixture(scope="module")
def model_server(tiny_checkpoint, tmp_path_factory):
    s = _serve.start_server(tmp_path_factory.mktemp("serve-model"), "--model", str(tiny_checkpoint),
                            "--heartbeat", "0.25")
    yield s
    assert s.stop() == 0, s.log_text()


def user_data_unchanged(before: dict, after: dict) -> None:
    for name, curves in before.items():
        if name != "<assigned>":
            assert after[name] == curves, name


def test_inbetween_keeps_the_users_keys_and_action(kinemo, model_server):
    from kinemo_addon import bridge
    obj = keyed_metarig((1, 20, 40))
    user_action = obj.animation_data.action
    modes = {pb.name: pb.rotation_mode for pb in obj.pose.bones}
    before = snapshot(obj)
    k = bpy.context.scene.kinemo
    k.frame_start, k.frame_end = 1, 40
    res, msg = run(bpy.ops.kinemo.inbetween, address=model_server.address)
    assert res == {"FINISHED"}, msg
    new = obj.animation_data.action
    assert new != user_action and new.name.startswith("Kinemo")
    user_data_unchanged(before, snapshot(obj))
    made = bridge.read_action_motion(obj, 1, 40)
    assert {pb.name: pb.rotation_mode for pb in obj.pose.bones} == modes   # the rig's settings are kept
    obj.animation_data.action = user_action                                # so the user's action plays as before
    if bpy.app.version >= (4, 4, 0):
        obj.animation_data.action_slot = user_action.slots[0]
    keys = bridge.read_action_motion(obj, 1, 40)
    idx = [0, 19, 39]
    ang = R.quat_angle(made["rotations"][idx], keys["rotations"][idx])
    assert np.degrees(ang).max() < 1e-3                               # the user's poses, exactly
    np.testing.assert_allclose(made["translations"][idx], keys["translations"][idx], atol=1e-5)
    # and in between, new motion (not the user's interpolation)
    assert np.degrees(R.quat_angle(made["rotations"][10], keys["rotations"][10])).max() > 0.5


def test_generate_makes_a_new_action_of_the_asked_length(kinemo, model_server):
    obj = keyed_metarig((1, 10))
    before = snapshot(obj)
    k = bpy.context.scene.kinemo
    k.prompt, k.seconds = "a person waves with the left hand", 2.0
    res, msg = run(bpy.ops.kinemo.generate, address=model_server.address)
    assert res == {"FINISHED"}, msg
    a, b = obj.animation_data.action.frame_range
    fps = bpy.context.scene.render.fps / bpy.context.scene.render.fps_base
    assert round(b - a) + 1 == round(2.0 * fps)
    user_data_unchanged(before, snapshot(obj))


def test_dance_to_an_audio_file(kinemo, model_server, tmp_path):
    path = tmp_path / "clicks.wav"
    rate = 22050
    t = np.arange(rate * 3) / rate
    data = (np.where((t % 0.5) < 0.02, 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    obj = keyed_metarig((1, 10))
    before = snapshot(obj)
    k = bpy.context.scene.kinemo
    k.frame_start, k.frame_end = 1, 48
    k.audio_path = str(path)
    res, msg = run(bpy.ops.kinemo.dance, address=model_server.address)
    assert res == {"FINISHED"}, msg
    assert obj.animation_data.action.name.startswith("Kinemo")
    user_data_unchanged(before, snapshot(obj))
