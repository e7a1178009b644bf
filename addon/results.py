"""Backend motion -> a new Action on the rig, at the scene's frame rate.

The backend answers at the fps it likes (the model works at 30); results are
resampled here to the scene's fps. Nothing the user made is modified: each
result is a NEW action (``bridge.write_motion_action``), named after the
request, assigned to the rig.
"""
from __future__ import annotations

import bpy
import numpy as np

from . import arrays as A
from . import bridge


def scene_fps(scene=None) -> float:
    scene = scene or bpy.context.scene
    return scene.render.fps / scene.render.fps_base


def motion_at_scene_fps(motion: dict, scene=None) -> tuple[np.ndarray, np.ndarray]:
    """A wire motion ``{rotations, translations, fps}`` resampled to the scene's fps."""
    return A.resample_motion(motion["rotations"], motion["translations"], float(motion["fps"]),
                             scene_fps(scene))


def write_result(obj, names: list[str], rotations: np.ndarray, translations: np.ndarray,
                 frame_start: int, name: str, assign: bool = True):
    """Write a motion as a new action on ``obj``; ``assign=False`` keeps the
    rig's current action playing and gives the new one a fake user so it is
    kept for the user to pick. Returns the action."""
    ad = obj.animation_data
    previous = (ad.action, getattr(ad, "action_slot", None)) if ad is not None else (None, None)
    action = bridge.write_motion_action(obj, names, rotations, translations, frame_start=frame_start,
                                        name=name)
    action["kinemo"] = name  # marks actions this add-on made
    if not assign:
        action.use_fake_user = True
        obj.animation_data.action = previous[0]
        if previous[0] is not None and previous[1] is not None:
            obj.animation_data.action_slot = previous[1]
    return action


def action_name(kind: str, detail: str = "") -> str:
    """``Kinemo in-between``, ``Kinemo: a person waves`` ... (Blender's 63-byte limit kept)."""
    text = f"Kinemo {kind}" + (f": {detail}" if detail else "")
    return text if len(text.encode()) <= 63 else text.encode()[:60].decode(errors="ignore") + "..."
