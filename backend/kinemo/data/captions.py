"""Natural-language captions from content and style labels.

Two disjoint template sets: TRAIN_TEMPLATES for training and EVAL_TEMPLATES,
paraphrases never shown in training, for measuring generalisation. Both draw
on the same phrases per label; the choice is seeded by the take id so a take's
captions are stable across builds.
"""
from __future__ import annotations

import random
import zlib

from .labels import Labels

# content -> (third-person verb phrases, gerund phrases)
CONTENT: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "walk": (("walks forward", "walks", "takes a walk forward"), ("walking forward", "walking")),
    "run": (("runs forward", "runs", "jogs forward"), ("running forward", "running")),
    "dash": (("sprints forward", "dashes ahead", "runs at full speed"), ("sprinting forward", "dashing ahead")),
    "walk-back": (("walks backwards", "steps backwards"), ("walking backwards", "stepping backwards")),
    "walk-left": (("walks sideways to the left", "steps to the left"), ("walking sideways to the left",
                                                                        "stepping to the left")),
    "walk-right": (("walks sideways to the right", "steps to the right"), ("walking sideways to the right",
                                                                           "stepping to the right")),
    "walk-turn-left": (("walks and turns left", "walks, turning to the left"),
                       ("walking and turning left", "turning left while walking")),
    "walk-turn-right": (("walks and turns right", "walks, turning to the right"),
                        ("walking and turning right", "turning right while walking")),
    "bow": (("bows", "takes a bow", "bows politely"), ("bowing", "taking a bow")),
    "bye": (("waves goodbye", "says goodbye with a wave"), ("waving goodbye", "saying goodbye")),
    "byebye": (("waves goodbye with both hands", "waves bye-bye"), ("waving goodbye with both hands",
                                                                   "waving bye-bye")),
    "guide": (("shows the way with a gesture", "guides someone along"), ("showing the way", "guiding someone")),
    "respond": (("responds to someone", "answers with a gesture"), ("responding to someone", "answering a call")),
    "call": (("calls someone over", "beckons someone to come"), ("calling someone over", "beckoning")),
    "punch": (("throws a punch", "punches"), ("throwing a punch", "punching")),
    "kick": (("kicks", "throws a kick"), ("kicking", "throwing a kick")),
    "slash": (("slashes with a sword", "swings a blade"), ("slashing with a sword", "swinging a blade")),
    "dance-long": (("dances", "performs a long dance"), ("dancing", "performing a long dance")),
    "dance-short": (("dances briefly", "does a short dance"), ("dancing briefly", "doing a short dance")),
    "wave-both-hands": (("waves with both hands", "waves both hands"), ("waving with both hands",
                                                                       "waving both hands")),
    "wave-left-hand": (("waves with the left hand", "waves their left hand"), ("waving with the left hand",
                                                                              "waving their left hand")),
    "wave-right-hand": (("waves with the right hand", "waves their right hand"), ("waving with the right hand",
                                                                                 "waving their right hand")),
    "raise-up-both-hands": (("raises both hands", "lifts both arms up"), ("raising both hands",
                                                                         "lifting both arms up")),
    "raise-up-left-hand": (("raises the left hand", "lifts their left arm up"), ("raising the left hand",
                                                                                "lifting their left arm up")),
    "raise-up-right-hand": (("raises the right hand", "lifts their right arm up"), ("raising the right hand",
                                                                                   "lifting their right arm up")),
    # dance-music takes: one dancer of a ballroom couple, captured alone
    "dance": (("dances", "dances without a partner", "dances alone, holding an imaginary partner"),
              ("dancing", "dancing without a partner", "dancing alone")),
}

# style -> (subjects, manners)
STYLE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "normal": (("a person", "someone", "a figure"), ("in a neutral way", "casually", "normally")),
    "happy": (("a happy person", "a cheerful person"), ("happily", "in a cheerful mood")),
    "sad": (("a sad person", "an unhappy person"), ("sadly", "looking downcast")),
    "angry": (("an angry person", "a furious person"), ("angrily", "in a fit of anger")),
    "proud": (("a proud person", "a confident person"), ("proudly", "with chest held high")),
    "not-confident": (("a shy person", "an unsure person"), ("timidly", "without confidence")),
    "masculinity": (("a manly person", "a macho person"), ("in a masculine way", "with a manly swagger")),
    "masculine": (("a manly person", "a macho person"), ("in a masculine way", "with a manly swagger")),
    "feminine": (("a graceful person", "a feminine person"), ("in a feminine way", "gracefully")),
    "childish": (("a child", "a childlike person"), ("like a child", "in a childish way")),
    "youthful": (("a young person", "a youthful person"), ("with youthful energy", "in a youthful way")),
    "old": (("an old person", "an elderly person"), ("slowly, like an old person", "stiffly with age")),
    "elderly": (("an elderly person", "an old person"), ("slowly, like an elderly person", "stiffly with age")),
    "tired": (("a tired person", "a weary person"), ("wearily", "looking tired")),
    "exhausted": (("an exhausted person", "a worn-out person"), ("with exhaustion", "wearily, out of energy")),
    "active": (("an energetic person", "a lively person"), ("full of energy", "energetically")),
    "musical": (("a performer", "a stage actor"), ("theatrically, like in a musical", "with musical flair")),
    "giant": (("a giant", "a huge heavy person"), ("heavily, like a giant", "with giant lumbering steps")),
    "chimpira": (("a thug", "a street punk"), ("like a thug", "with a swaggering, threatening attitude")),
    # dance genres (content "dance")
    "waltz": (("a waltz dancer", "a couple-less waltz dancer", "a solo waltz dancer"),
              ("in a waltz", "to waltz music, rising and falling in three-four time", "in a slow, turning waltz")),
    "rumba": (("a rumba dancer", "a solo rumba dancer", "a couple-less rumba dancer"),
              ("in a rumba", "to rumba music, with swaying hips", "in a slow, sensual rumba")),
    "cha-cha": (("a cha-cha dancer", "a solo cha-cha dancer", "a couple-less cha-cha dancer"),
                ("in a cha-cha", "to cha-cha music, with quick chasse steps", "in a lively cha-cha-cha")),
    "tango": (("a tango dancer", "a solo tango dancer"), ("in a tango", "to tango music, with sharp staccato steps")),
}

TRAIN_TEMPLATES = (
    "{subject} {verb}.",
    "{subject} {verb} {manner}.",
    "{Someone} {verb}, {manner}.",
    "in this clip, {subject} {verb}.",
    "{manner}, {subject} {verb}.",
)
EVAL_TEMPLATES = (
    "a motion of {subject} {gerund}, {manner}.",
    "here is {subject} {gerund} {manner}.",
    "{gerund}, {manner}: that is what {subject} is doing.",
)


def _words(label: str) -> str:
    return label.replace("-", " ").replace("_", " ")


def phrases(labels: Labels) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(verbs, gerunds, subjects, manners) for a take; unknown labels fall back to their own words."""
    c, s = labels.content, labels.style
    if c in CONTENT:
        verbs, gerunds = CONTENT[c]
    elif c:
        verbs, gerunds = (f"does a {_words(c)} motion", f"performs {_words(c)}"), (f"doing {_words(c)}",)
    else:
        verbs, gerunds = ("moves", "moves around"), ("moving", "moving around")
    if s in STYLE:
        subjects, manners = STYLE[s]
    elif s:
        subjects, manners = ("a person", "someone"), (f"in a {_words(s)} way", f"in a {_words(s)} style")
    else:
        subjects, manners = ("a person", "someone"), ("naturally", "as usual")
    return verbs, gerunds, subjects, manners


def _fill(template: str, rng: random.Random, p) -> str:
    verbs, gerunds, subjects, manners = p
    # a styled subject plus a styled manner reads repetitively: half the time keep the subject plain
    subj = rng.choice(("a person", "someone")) if "{manner}" in template and rng.random() < 0.5 \
        else rng.choice(subjects)
    text = template.format(subject=subj, Someone=rng.choice(("someone", "a person", subj)), verb=rng.choice(verbs),
                           gerund=rng.choice(gerunds), manner=rng.choice(manners))
    return text[0].upper() + text[1:]


def captions(take_id: str, labels: Labels, n: int = 5, held_out: bool = False) -> list[str]:
    """``n`` distinct captions (fewer if the phrases run out), stable for a take id."""
    rng = random.Random(zlib.crc32(f"{take_id}|{held_out}".encode()))
    templates = EVAL_TEMPLATES if held_out else TRAIN_TEMPLATES
    p = phrases(labels)
    out: list[str] = []
    for _ in range(n * 20):
        c = _fill(templates[len(out) % len(templates)] if len(out) < len(templates) else rng.choice(templates), rng, p)
        if c not in out:
            out.append(c)
        if len(out) == n:
            break
    return out
