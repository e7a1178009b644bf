"""``kinemo demo``: the headless demo end to end, then the saved file checked
by opening it again in Blender."""
from __future__ import annotations

import bpy
import matplotlib.image
import numpy as np

from kinemo import cli
from kinemo.commands import demo
from kinemo.core import axes
from kinemo.core.bvh import read_bvh
from kinemo.core.retarget import retarget
from kinemo.core.skeleton import Skeleton
from kinemo.demo_motion import DEMO_BVH


def _bandai_present() -> bool:
    return (demo.shared_dir() / "data" / "bandai-namco-motion" / "bandai-namco-motion.tar.xz").is_file()


def test_demo_writes_a_blend_that_plays_the_retargeted_walk(tmp_path, addon, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    with_bandai = _bandai_present()
    from kinemo.model.generator import DEFAULT_CHECKPOINT
    with_model = DEFAULT_CHECKPOINT.exists()
    expected = ({"demo.blend", "preview.png"} | ({"preview_bandai.png"} if with_bandai else set())
                | ({"preview_inbetween.png", "preview_generate.png", "backend.log"} if with_model else set()))
    assert {p.name for p in out.iterdir()} == expected
    for png in {p for p in expected if p.endswith(".png")}:
        img = matplotlib.image.imread(out / png)
        assert img.shape[0] > 300 and img.shape[1] > 1000
        assert (img[..., :3].min(axis=-1) < 0.5).mean() > 0.005, f"{png} is nearly blank"
    assert "Blender matches the retargeted motion" in printed

    # Open the saved file as a user would and check what it plays.
    from kinemo_addon import bridge
    bpy.ops.wm.open_mainfile(filepath=str(out / "demo.blend"))
    rigs = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert len(rigs) == 1 + with_bandai + 2 * with_model
    if with_model:   # the model steps: the user's keys kept, results in new actions
        assert "user keys" in bpy.data.actions
        for name in ("metarig in-between", "metarig text"):
            assert bpy.data.objects[name].animation_data.action.name.startswith("Kinemo")
    obj = bpy.data.objects["metarig demo walk"]
    action = obj.animation_data.action
    assert action.name == "Kinemo demo walk" and tuple(action.frame_range) == (1, 120)
    desc = bridge.rig_description(obj)
    target = Skeleton.from_rest_matrices(desc["names"], desc["parents"], desc["rest_matrices"])
    src = read_bvh(DEMO_BVH)
    motion = retarget(src.skeleton, src.motion, target)
    offset = axes.blender_to_backend_points(np.array(obj.matrix_world)[:3, 3])
    frames = [1, 37, 120]
    heads, _ = demo.evaluated_bones(bpy, obj, frames)
    order = [obj.pose.bones.find(n) for n in desc["names"]]
    want = motion.positions(target)[np.array(frames) - 1] + offset
    assert np.abs(heads[:, order] - want).max() < 1e-4

    # The walk survives retargeting: it advances, and each hand swings with the opposite foot.
    all_frames = np.arange(1, 121)
    heads, _ = demo.evaluated_bones(bpy, obj, all_frames)
    idx = {n: obj.pose.bones.find(n) for n in ("spine", "hand.L", "hand.R", "foot.L", "foot.R")}
    fwd = heads[..., 2] - heads[:, [idx["spine"]], 2]
    assert heads[-1, idx["spine"], 2] - heads[0, idx["spine"], 2] > 3.0
    assert np.corrcoef(fwd[:, idx["hand.L"]], fwd[:, idx["foot.R"]])[0, 1] > 0.7
    assert np.corrcoef(fwd[:, idx["hand.R"]], fwd[:, idx["foot.L"]])[0, 1] > 0.7


def test_demo_refuses_to_replace_its_outputs_without_force(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "demo.blend").write_bytes(b"somebody's file")
    assert cli.main(["demo", "--out", str(out), "--no-shared"]) == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "demo.blend").read_bytes() == b"somebody's file"
