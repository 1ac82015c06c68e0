"""Prompts as a user might type them, none of them a training caption, each with the attributes
it asks for: the evaluator's paraphrase set, reported beside the caption-style set so its
figures say what someone typing freely gets.

Phrasings: spelled-out and symbol accidentals, flats ("E flat", "D♭", "Bb"), "middle C", octave
with quality ("a D3 major chord"), "a minor triad on D", long sentences, synonyms of the
instruments and directions, instrument words before or after the music. ``octave`` is None
where the prompt does not ask for one.
"""
from __future__ import annotations

import numpy as np

from .data import NOTE_NAMES, QUALITIES

INSTRUMENT_WORDS = {"sine": ("sine", "sine wave"), "organ": ("organ",), "plucked string": ("plucked string", "plucked strings"),
                    "bell": ("bell",), "square": ("square wave", "square")}
DIRECTION_WORDS = {"rising": ("ascending", "rising", "going up"), "falling": ("descending", "falling", "going down")}
NOTE_TEMPLATES = (
    "{name} on {a_inst}",
    "I'd like to hear {a_inst} play the note {name}",
    "play {name} on the {inst}",
    "{inst}, note {name}",
)
CHORD_TEMPLATES = (
    "a {name} {quality} chord played on {a_inst}",
    "a {quality} triad on {name}, played by {a_inst}",
    "I'd like to hear {a_inst} playing {a_name} {quality} chord",
    "{name} {quality} on the {inst}",
)
ARPEGGIO_TEMPLATES = (
    "{a_inst} arpeggio of {name} {quality}, {direction}",
    "{direction} {name} {quality} arpeggio played by {a_inst}",
)


def _a(word: str) -> str:
    return ("an " if word[0] in "AEFaeiou" else "a ") + word


def spell(pc: int, rng: np.random.Generator) -> str:
    """A name of a pitch class as people write it: "C sharp", "D flat", "D♭", "Db", "C#", "E"."""
    name = NOTE_NAMES[pc]
    if len(name) == 1:
        return name
    flat = NOTE_NAMES[(pc + 1) % 12]
    return str(rng.choice([f"{name[0]} sharp", f"{flat} flat", f"{flat}♭", f"{flat}b", f"{name[0]}♯", name]))


def example(rng: np.random.Generator, kind: str) -> tuple[str, dict]:
    """One (prompt, attributes) of a kind ("note", "chord" or "arpeggio")."""
    instrument = str(rng.choice(list(INSTRUMENT_WORDS)))
    inst = str(rng.choice(INSTRUMENT_WORDS[instrument]))
    pc = int(rng.integers(12))
    attrs = dict(kind=kind, instrument=instrument, note=None, root=None, quality=None, direction=None, octave=None)
    if kind == "note":
        attrs["octave"] = octave = int(rng.choice((3, 4, 5)))
        name = spell(pc, rng)
        name = f"{name} {octave}" if len(name) > 1 and rng.random() < 0.5 else f"{name}{octave}"
        if (pc, octave) == (0, 4) or rng.random() < 0.1:
            pc, octave, name = 0, 4, "middle C"
            attrs["octave"] = 4
        attrs["note"] = f"{NOTE_NAMES[pc]}{octave}"
        template = NOTE_TEMPLATES[int(rng.integers(len(NOTE_TEMPLATES)))]
        return template.format(name=name, inst=inst, a_inst=_a(inst)), attrs
    quality = str(rng.choice(QUALITIES))
    name = spell(pc, rng)
    attrs.update(root=NOTE_NAMES[pc], quality=quality)
    templates = CHORD_TEMPLATES if kind == "chord" else ARPEGGIO_TEMPLATES
    template = templates[int(rng.integers(len(templates)))]
    if template.startswith(("a {name}", "{direction}")):      # the templates that name an octave
        attrs["octave"] = int(rng.choice((3, 4)))
        name = f"{name} {attrs['octave']}" if " " in name else f"{name}{attrs['octave']}"
    if kind == "arpeggio":
        attrs["direction"] = str(rng.choice(list(DIRECTION_WORDS)))
    direction = str(rng.choice(DIRECTION_WORDS[attrs["direction"]])) if kind == "arpeggio" else ""
    prompt = template.format(name=name, quality=quality, inst=inst, a_inst=_a(inst), a_name=_a(name),
                             direction=direction)
    return prompt[0].upper() + prompt[1:] if template.startswith("{") else prompt, attrs
