"""Automatic bone mapping from a humanoid skeleton to SMPL roles.

Three passes, each recorded with a confidence per joint:

1. names: normalise (namespaces such as ``mixamorig:``, prefixes ``DEF-``,
   ``Bip01``..., separators, case, side spellings ``L``/``_l``/``Left``/``.L``)
   and look the rest up in an alias table (limbs) -> confidence 0.9, or exact
   SMPL names -> 1.0;
2. hierarchy: the pelvis is where the two legs meet, the chest where the two
   arms meet; the joints between them are the spine, above the chest the neck
   and head (works for ``spine.001``-style names) -> 0.8;
3. geometry, when names fail entirely: the pelvis is the joint with three
   child chains, the two that go down are legs, left/right by the facing
   given by the toes -> 0.5.

The result is plain and editable (:class:`BoneMap`, JSON-able); SMPL joints
without a source are listed, never guessed silently.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np

from .skeleton import Skeleton
from .smpl import SMPL_JOINT_NAMES

# Roles required for a skeleton to count as humanoid.
REQUIRED = ("pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
            "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist")

_NAMESPACE = re.compile(r"^.*[:|]")
_PREFIXES = re.compile(r"^(def|org|mch|cc_base|bip0*\d*|b|j_bip_[clr]|jnt|bone|rig|armature)[-_. ]+", re.I)
_SEP = re.compile(r"[^a-z0-9]")

# Sided aliases: normalised base name -> SMPL role without side.
_SIDED = {
    "hip": ["upleg", "upperleg", "thigh", "femur", "hip", "legupper", "uleg", "thighleg"],
    "knee": ["leg", "lowerleg", "shin", "calf", "knee", "tibia", "leglower", "lleg", "crus"],
    "ankle": ["foot", "ankle"],
    "foot": ["toe", "toes", "toebase", "ball", "toe0", "toe1", "football"],
    "collar": ["shoulder", "clavicle", "collar", "collarbone", "clav"],
    "shoulder": ["arm", "upperarm", "uparm", "humerus", "armupper", "shoulderarm"],
    "elbow": ["forearm", "lowerarm", "elbow", "radius", "armlower", "farm"],
    "wrist": ["hand", "wrist"],
    "hand": ["handmiddle1", "middle1", "fmiddle01", "middle01", "middlefinger1", "fingers"],
}
_SIDED_LOOKUP = {alias: role for role, aliases in _SIDED.items() for alias in aliases}
_PELVIS = {"hips", "hip", "pelvis", "cog"}
_SPINE = re.compile(r"^(spine\d*|chest|upperchest|lowerback|torso|abdomen|back|waist|spinelower|spineupper)$")
_NECK = re.compile(r"^neck\d*$")
_HEAD = {"head"}


def split_side(name: str) -> tuple[str | None, str]:
    """Normalise a bone name: ``"mixamorig:LeftUpLeg"`` -> ``("left", "upleg")``.

    Returns ``(side or None, base)`` with ``base`` lower-case alphanumerics.
    """
    n = _NAMESPACE.sub("", name.strip())
    for _ in range(2):
        n = _PREFIXES.sub("", n)
    side = None
    # Rigify-style numbered segments ("upper_arm.L.001"): drop the number, keep the side
    n = re.sub(r"(?<=[._\- ][lLrR])[._]\d+$", "", n)
    m = re.search(r"(?:[._\- ]|(?<=[a-z0-9]))(left|right)$", n, re.I) or \
        re.search(r"[._\- ]([lr])$", n, re.I)
    if m:
        side, n = m.group(1), n[:m.start()]
    else:
        m = re.match(r"^(left|right)(?=[_\-. ]?[a-zA-Z0-9])", n, re.I) or \
            re.match(r"^([lr])(?:[._\- ]+|(?=[A-Z]))", n) or re.match(r"^([lr])[._\- ]+", n, re.I)
        if m:
            side, n = m.group(1), n[m.end():]
        else:  # ASF/CMU style: lfemur, rhumerus, lhipjoint
            m = re.match(r"^([lr])(femur|tibia|foot|toes|clavicle|humerus|radius|wrist|hand|hipjoint|"
                         r"thumb|fingers|shoulder|elbow|knee|ankle|hip)$", n, re.I)
            if m:
                side, n = m.group(1), m.group(2)
    if side is not None:
        side = "left" if side.lower().startswith("l") else "right"
    return side, _SEP.sub("", n.lower())


@dataclass
class BoneMap:
    """SMPL role -> joint name of a skeleton, with a confidence in ``(0, 1]`` per role."""

    joints: dict[str, str] = field(default_factory=dict)
    confidence: dict[str, float] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)  # role -> how it was found

    @property
    def unmapped(self) -> list[str]:
        return [r for r in SMPL_JOINT_NAMES if r not in self.joints]

    def missing_required(self) -> list[str]:
        return [r for r in REQUIRED if r not in self.joints]

    def role_of(self, joint: str) -> str | None:
        for r, j in self.joints.items():
            if j == joint:
                return r
        return None

    def indices(self, skel: Skeleton) -> dict[str, int]:
        return {r: skel.index(j) for r, j in self.joints.items()}

    def to_dict(self) -> dict:
        return {"joints": dict(self.joints), "confidence": dict(self.confidence),
                "found_by": dict(self.source), "unmapped": self.unmapped}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def _set(self, role: str, joint: str, conf: float, how: str) -> None:
        self.joints[role] = joint
        self.confidence[role] = conf
        self.source[role] = how


class NotHumanoidError(ValueError):
    """The skeleton lacks joints every humanoid has."""


def auto_map(skel: Skeleton, require: bool = True) -> BoneMap:
    """Map ``skel``'s joints to SMPL roles (see module doc). Raises
    :class:`NotHumanoidError` naming the missing roles when ``require``."""
    bm = BoneMap()
    names = skel.names
    if sum(n in SMPL_JOINT_NAMES for n in names) >= 16:  # an SMPL-named skeleton
        for n in names:
            if n in SMPL_JOINT_NAMES:
                bm._set(n, n, 1.0, "exact SMPL name")
    else:
        _map_by_names(skel, bm)
        _map_by_hierarchy(skel, bm)
        if bm.missing_required():
            _map_by_geometry(skel, bm)
    _check_distinct(bm)
    if require and bm.missing_required():
        raise NotHumanoidError(
            f"not a humanoid skeleton (or one Kinemo cannot map): no joint found for "
            f"{', '.join(bm.missing_required())}; joints are: {', '.join(names)}. "
            f"Give a mapping file to map it by hand.")
    return bm


def _check_distinct(bm: BoneMap) -> None:
    seen: dict[str, str] = {}
    for role, j in list(bm.joints.items()):
        if j in seen:  # never map one joint to two roles; keep the more confident
            other = seen[j]
            drop = role if bm.confidence[role] < bm.confidence[other] else other
            for d in (bm.joints, bm.confidence, bm.source):
                d.pop(drop, None)
            if drop == other:
                seen[j] = role
        else:
            seen[j] = role


def _map_by_names(skel: Skeleton, bm: BoneMap) -> None:
    candidates: dict[str, list[int]] = {}
    for j, name in enumerate(skel.names):
        side, base = split_side(name)
        if side and base in _SIDED_LOOKUP:
            candidates.setdefault(f"{side}_{_SIDED_LOOKUP[base]}", []).append(j)
        elif side and base.rstrip("0123456789") in _SIDED_LOOKUP and base[-1:] in "01":
            # "LeftUpLeg1"-style numbering: weaker, only if nothing else claims the role
            candidates.setdefault(f"{side}_{_SIDED_LOOKUP[base.rstrip('0123456789')]}#", []).append(j)
    for role, js in candidates.items():
        if role.endswith("#"):
            role = role[:-1]
            if role in candidates:
                continue
        # several joints with one role (twist bones, "Leg" and "LegRoll"): the one nearest the root
        j = min(js, key=lambda k: len(skel.chain_to_root(k)))
        bm._set(role, skel.names[j], 0.9, "name alias")


def _lca(skel: Skeleton, a: int, b: int) -> int:
    ca = skel.chain_to_root(a)
    cb = set(skel.chain_to_root(b))
    return next(j for j in ca if j in cb)


def _path(skel: Skeleton, ancestor: int, j: int) -> list[int]:
    """Joints strictly below ``ancestor`` down to and including ``j``."""
    chain = skel.chain_to_root(j)
    return list(reversed(chain[:chain.index(ancestor)]))


def _assign_spine(bm: BoneMap, names, spine: list[int], conf: float, how: str) -> None:
    """Spine joints from pelvis (exclusive) to chest (inclusive) -> spine1/2/3."""
    roles = {1: ["spine3"], 2: ["spine1", "spine3"]}.get(len(spine), ["spine1", "spine2", "spine3"])
    picks = {1: [0], 2: [0, 1]}.get(len(spine), [0, len(spine) // 2, len(spine) - 1])
    for role, k in zip(roles, picks):
        bm._set(role, names[spine[k]], conf, how)


def _map_by_hierarchy(skel: Skeleton, bm: BoneMap) -> None:
    idx = {r: skel.index(j) for r, j in bm.joints.items()}
    names = skel.names
    bases = [split_side(n) for n in names]
    # pelvis: where the legs meet
    if "left_hip" in idx and "right_hip" in idx:
        p = _lca(skel, idx["left_hip"], idx["right_hip"])
        bm._set("pelvis", names[p], 0.9 if bases[p][1] in _PELVIS else 0.8, "where the legs meet")
    else:
        named = [j for j, (s, b) in enumerate(bases) if s is None and b in _PELVIS]
        if named:
            bm._set("pelvis", names[named[0]], 0.7, "name alias")
    if "pelvis" not in bm.joints:
        return
    pelvis = skel.index(bm.joints["pelvis"])
    # chest: where the arms meet (collars if named, else upper arms)
    arm = [idx.get(f"{s}_collar", idx.get(f"{s}_shoulder")) for s in ("left", "right")]
    if None in arm:
        return
    chest = _lca(skel, arm[0], arm[1])
    if chest == pelvis or pelvis not in skel.chain_to_root(chest):
        return
    _assign_spine(bm, names, _path(skel, pelvis, chest), 0.8, "spine chain between pelvis and chest")
    # neck and head: the chain above the chest that is neither arm
    arm_roots = {_path(skel, chest, a)[0] for a in arm}
    up = [c for c in skel.children(chest) if c not in arm_roots]
    if not up:
        return
    head_named = [j for j in skel.descendants(chest) if bases[j] == (None, "head")]
    if head_named:
        head = head_named[0]
    else:  # follow spine/neck-like names upward (Rigify: spine.004 .. spine.006)
        like = [c for c in up if _SPINE.match(bases[c][1]) or _NECK.match(bases[c][1])]
        chain = [like[0] if like else max(up, key=lambda c: len(skel.descendants(c)))]
        while True:
            nxt = [c for c in skel.children(chain[-1])
                   if _SPINE.match(bases[c][1]) or _NECK.match(bases[c][1])]
            if not nxt:
                break
            chain.append(nxt[0])
        head = chain[-1]
    neck_path = _path(skel, chest, head)
    if len(neck_path) >= 2:
        bm._set("neck", names[neck_path[0]], 0.8, "chain from chest to head")
        bm._set("head", names[head], 0.9 if bases[head][1] in _HEAD else 0.8, "top of the neck chain")
    elif len(neck_path) == 1:
        bm._set("head", names[head], 0.7, "top of the neck chain")


def _subtree_leaves(skel: Skeleton, j: int) -> list[int]:
    d = [j] + skel.descendants(j)
    return [k for k in d if not skel.children(k)]


def _map_by_geometry(skel: Skeleton, bm: BoneMap) -> None:
    """Names failed: find the body from the rest pose's shape (Y up)."""
    _, pos = skel.rest_global()
    height = np.ptp(pos[:, 1])
    if height <= 0:
        return
    best = None
    for j in range(skel.num_joints):
        kids = [c for c in skel.children(j) if len(skel.descendants(c)) >= 2]
        if len(kids) < 3:
            continue
        low = sorted(kids, key=lambda c: min(pos[k, 1] for k in _subtree_leaves(skel, c)))
        legs, rest = low[:2], low[2:]
        if all(min(pos[k, 1] for k in _subtree_leaves(skel, c)) < pos[j, 1] - 0.3 * height for c in legs):
            best = (j, legs, max(rest, key=lambda c: len(skel.descendants(c))))
            break
    if best is None:
        return
    pelvis, legs, torso = best
    names = skel.names
    bm.joints.clear(); bm.confidence.clear(); bm.source.clear()  # noqa: E702
    bm._set("pelvis", names[pelvis], 0.5, "joint with three child chains")
    # facing from the toes: mean horizontal direction from ankle-ish joint to the lowest leaf
    chains = []
    for c in legs:
        leaf = min(_subtree_leaves(skel, c), key=lambda k: (pos[k, 1], -len(skel.chain_to_root(k))))
        chains.append([k for k in _path(skel, pelvis, leaf) if np.linalg.norm(skel.offsets[k]) > 1e-3 * height])
    fwd = np.mean([pos[ch[-1]] - pos[ch[-2]] for ch in chains if len(ch) >= 2], axis=0)
    fwd[1] = 0
    if np.linalg.norm(fwd) < 1e-9:
        fwd = np.array([0.0, 0.0, 1.0])
    left_axis = np.cross(np.array([0.0, 1.0, 0.0]), fwd / np.linalg.norm(fwd))
    side_of = lambda k: "left" if pos[k] @ left_axis > pos[pelvis] @ left_axis else "right"  # noqa: E731
    for ch in chains:
        s = side_of(ch[-1])
        if len(ch) >= 4:
            roles = list(zip(["hip", "knee", "ankle", "foot"], ch[-4:]))
        else:
            roles = list(zip(["hip", "knee", "ankle"], ch[-3:]))
        for r, k in roles:
            bm._set(f"{s}_{r}", names[k], 0.5, "leg chain geometry")
    # torso: follow the chain up until it branches into three (neck + two arms)
    cur = torso
    spine = [cur]
    while len([c for c in skel.children(cur) if skel.descendants(c)]) < 3 and skel.children(cur):
        cur = max(skel.children(cur), key=lambda c: len(skel.descendants(c)))
        spine.append(cur)
    chest = cur
    _assign_spine(bm, names, spine, 0.5, "torso chain geometry")
    kids = skel.children(chest)
    up = max(kids, key=lambda c: pos[c, 1] - abs((pos[c] - pos[chest]) @ left_axis))
    for c in kids:
        if c == up:
            neck = [c] + skel.descendants(c)
            bm._set("neck", names[c], 0.5, "upward chain from the chest")
            top = max(neck, key=lambda k: (pos[k, 1], -len(skel.chain_to_root(k))))
            head_path = _path(skel, chest, top)
            head = head_path[1] if len(head_path) >= 3 else head_path[-1]
            if head != c:
                bm._set("head", names[head], 0.5, "upward chain from the chest")
            continue
        s = side_of(c)
        # arm: follow the largest subtree outward until the hand branches (fingers) or ends
        chain = [c]
        while skel.children(chain[-1]) and len(skel.children(chain[-1])) == 1:
            chain.append(skel.children(chain[-1])[0])
        # upper arm and forearm are the longest pair of consecutive bones
        seg = [np.linalg.norm(pos[b] - pos[a]) for a, b in zip(chain, chain[1:])]
        if len(seg) < 2:
            continue
        i = max(range(len(seg) - 1), key=lambda k: seg[k] + seg[k + 1])
        arm = {"shoulder": chain[i], "elbow": chain[i + 1], "wrist": chain[i + 2]}
        if i >= 1:
            arm["collar"] = chain[i - 1]
        if i + 3 < len(chain):
            arm["hand"] = chain[i + 3]
        for r, k in arm.items():
            bm._set(f"{s}_{r}", names[k], 0.5, "arm chain geometry")
