"""Content and style labels of a take, and how mirroring changes them.

Labels are plain lowercase words joined by hyphens (Bandai's own names:
``walk-turn-left``, ``not-confident``). A take without labels has ``None``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

_SIDE = re.compile(r"\b(left|right)\b")
_BANDAI_NAME = re.compile(r"^(dataset-\d+)_(?P<content>[a-z-]+)_(?P<style>[a-z-]+)_(?P<num>\d+)$")


@dataclass(frozen=True)
class Labels:
    content: str | None = None
    style: str | None = None


def mirror_label(label: str | None) -> str | None:
    """Swap the words ``left`` and ``right`` (``wave-left-hand`` -> ``wave-right-hand``)."""
    if label is None:
        return None
    return _SIDE.sub(lambda m: "right" if m.group(1) == "left" else "left", label.replace("-", " ")).replace(" ", "-")


def mirror_labels(labels: Labels) -> Labels:
    return Labels(mirror_label(labels.content), mirror_label(labels.style))


def read_label_list(text: str) -> list[str]:
    """A Bandai ``cfg/*_label.txt``: one name a line, e.g. ``dataset-1_walk`` -> ``walk``."""
    return [re.sub(r"^dataset-\d+_", "", line.strip()) for line in text.splitlines() if line.strip()]


def from_bandai_name(stem: str) -> Labels | None:
    """Labels from a Bandai file name ``dataset-N_{content}_{style}_{id}``, or None."""
    m = _BANDAI_NAME.match(stem)
    return Labels(m["content"], m["style"]) if m else None


def parse_sidecar(text: str, contents: list[str] | None = None, styles: list[str] | None = None,
                  where: str = "<json>") -> Labels:
    """Labels from a sidecar JSON: ``{"content": "walk", "style": "happy"}``, or Bandai's
    label indices ``{"content": 0, "style": 5}`` resolved through the cfg lists."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{where}: labels must be a JSON object with 'content' and/or 'style'")
    out = {}
    for key, vocab in (("content", contents), ("style", styles)):
        v = data.get(key)
        if isinstance(v, int) and not isinstance(v, bool):
            if vocab is None or not 0 <= v < len(vocab):
                raise ValueError(f"{where}: {key} index {v} has no name (missing or short cfg/{key}_label.txt)")
            v = vocab[v]
        elif v is not None and not isinstance(v, str):
            raise ValueError(f"{where}: {key} must be a string or a label index, got {v!r}")
        out[key] = v.strip().lower().replace(" ", "-").replace("_", "-") if isinstance(v, str) and v.strip() else None
    return Labels(**out)
