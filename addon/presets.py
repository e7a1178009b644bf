"""Bone-mapping presets: ``(source bone, target bone)`` pairs as JSON files in
the user's config directory (``api.config_dir() / "presets"``)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from .connection import KinemoError

FORMAT = "kinemo-bone-map"


def preset_dir(config_dir: Path) -> Path:
    d = Path(config_dir) / "presets"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _path(config_dir: Path, name: str) -> Path:
    clean = re.sub(r"[^A-Za-z0-9 ._-]", "_", name.strip())
    if not clean or clean.startswith("."):
        raise KinemoError("Give the preset a name (letters, digits, space, . _ -).")
    return preset_dir(config_dir) / f"{clean}.json"


def names(config_dir: Path) -> list[str]:
    return sorted(p.stem for p in preset_dir(config_dir).glob("*.json"))


def save(config_dir: Path, name: str, pairs: list[tuple[str, str, str]]) -> Path:
    """Write ``[(source, target, role)]``; an existing preset of that name is replaced."""
    path = _path(config_dir, name)
    data = {"format": FORMAT, "version": 1,
            "pairs": [{"source": s, "target": t, "role": r} for s, t, r in pairs]}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path


def load(config_dir: Path, name: str) -> list[tuple[str, str, str]]:
    path = _path(config_dir, name)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise KinemoError(f"No preset named {name!r} in {path.parent}.") from None
    except (OSError, ValueError) as e:
        raise KinemoError(f"Cannot read the preset {path}: {e}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("pairs"), list):
        raise KinemoError(f"{path} is not a Kinemo bone-map preset.")
    out = []
    for i, p in enumerate(data["pairs"]):
        if not (isinstance(p, dict) and isinstance(p.get("source"), str) and isinstance(p.get("target"), str)):
            raise KinemoError(f"{path}: pair {i} needs 'source' and 'target' bone names.")
        out.append((p["source"], p["target"], str(p.get("role", ""))))
    return out
