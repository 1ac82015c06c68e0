"""What a prompt asks for, read the way people write it: the notes it names (a 12-bin pitch-class
vector the model is conditioned on beside the text encoder's tokens) and, when it asks for one
thing the model knows, that thing as a canonical caption (``data.caption``) for the text encoder.

Why the pitch classes: a word vector for "minor" says nothing about *which* note is the third;
naming the pitch classes makes the third as direct an input as the root. Why the canonical
caption: the model only ever saw the caption templates of ``data``; "I'd like to hear a bell
playing an E flat major chord" reaches it as "a bell playing a D# major chord", which it knows,
without retraining. A training caption is its own canonical caption.

Read as notes: a letter A-G with an accidental (#, b, ♯, ♭, "sharp", "flat"), an octave digit
("C#4", "Bb3", "D3 major"), a quality ("A minor", "e minor", "a minor triad on D"), "middle C",
or "a D note". A bare letter is not a note, so the article in "A bell" is not an A, and a
lower-case "a minor chord" is some minor chord.
"""
from __future__ import annotations

import re

import numpy as np

from .data import NOTE_NAMES, caption

_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_THIRD = {"major": 4, "minor": 3}
_QUALITY = {"major": "major", "maj": "major", "minor": "minor", "min": "minor"}
_KIND = r"(?:chord|triad|arpeggio|arpeggiated chord|broken chord)s?"
_NOTE = (r"(?<![\w#])(?P<letter>[A-Ga-g])(?:(?P<acc>[#b])\s?|)(?P<octave>\d?)"
         r"(?:\s*(?P<quality>major|minor|maj|min)(?![a-z])|(?P<note>\s+note))?(?![\w#])")
_REWRITES = (  # spelled-out forms -> the symbols _NOTE reads, applied in order
    (r"♯", "#"), (r"♭", "b"),
    (r"(?i)\bmiddle\s+c\b", "C4"),
    (r"(?<![\w#])([A-Gb-g])[\s-]+(sharp|flat)(?:\s*(\d)(?!\w))?\b",
     lambda m: m[1].upper() + ("#" if m[2] == "sharp" else "b") + (m[3] or "")),
    # "a minor triad on D" -> "a D minor triad"
    (rf"(?i)\b(major|minor)\s+({_KIND})\s+(?:on|in|of|from|rooted on|built on|starting on)\s+"
     r"(?:the\s+note\s+)?([A-Gb-g][#b]?\d?)(?![\w#])", r"\3 \1 \2"),
)
INSTRUMENTS = {  # instrument -> the words that name it
    "sine": r"sine(?:\s+waves?)?|sines|pure\s+tones?|sinusoids?",
    "organ": r"organs?",
    "plucked string": r"plucked(?:\s+strings?)?|strings?|plucks?|guitars?|harps?",
    "bell": r"bells?",
    "square": r"square(?:\s+waves?)?|squares",
}
_DIRECTIONS = {"rising": r"rising|ascending|upwards?|going\s+up|up", "falling": r"falling|descending|downwards?|going\s+down|down"}


def _normalise(prompt: str) -> str:
    for pattern, repl in _REWRITES:
        prompt = re.sub(pattern, repl, prompt)
    return prompt


def _findall(words: dict[str, str], text: str) -> list[str]:
    found = [(m.start(), name) for name, w in words.items() for m in re.finditer(rf"(?i)\b(?:{w})\b", text)]
    return list(dict.fromkeys(name for _, name in sorted(found)))


def notes(prompt: str) -> list[dict]:
    """Each note or triad the prompt names, in order: {"pc": root pitch class, "name",
    "octave": int | None, "quality": "major" | "minor" | None}."""
    out = []
    for m in re.finditer(_NOTE, _normalise(prompt or "")):
        letter, acc, octave, quality = m["letter"], m["acc"] or "", m["octave"], m["quality"]
        article = m.start() >= 2 and re.search(r"(?i)\ban?\s$", m.string[:m.start()])
        if not (octave or quality or m["note"] and article or acc and (letter.isupper() or acc == "#")):
            continue        # a bare letter: "A bell", "a b c"
        if quality and letter == "a" and not acc and not octave:
            continue        # "a minor chord" is read as "some minor chord", not A minor
        pc = (_LETTERS[letter.upper()] + {"#": 1, "b": -1, "": 0}[acc]) % 12
        out.append({"pc": pc, "name": NOTE_NAMES[pc], "octave": int(octave) if octave else None,
                    "quality": _QUALITY[quality.lower()] if quality else None})
    return out


def pitch_classes(prompt: str) -> np.ndarray:
    """[12] float32, 1 where the prompt names a note of that pitch class (C = 0, C# = 1, ...)."""
    out = np.zeros(12, np.float32)
    for n in notes(prompt):
        for step in (0, _THIRD[n["quality"]], 7) if n["quality"] else (0,):
            out[(n["pc"] + step) % 12] = 1.0
    return out


def read(prompt: str) -> dict | None:
    """The attributes of ``data.random_attributes`` ("octave": the one asked for, or None) when the prompt
    asks for one note, one triad or arpeggio, or only an instrument; None when it is anything
    else (two notes, two instruments, "a minor chord" without a root). A note without an
    octave is taken in octave 4, an arpeggio without a direction as rising."""
    text = _normalise(prompt or "")
    found, instruments = notes(prompt), _findall(INSTRUMENTS, text)
    directions = _findall(_DIRECTIONS, text) if re.search(r"(?i)arpeggi|broken", text) else []
    if len(found) > 1 or len(instruments) > 1 or len(directions) > 1:
        return None
    attrs = dict(kind=None, instrument=instruments[0] if instruments else None, note=None, root=None,
                 quality=None, direction=None, octave=None)
    if not found:
        musical = re.search(rf"(?i)\b(?:major|minor|note|{_KIND})\b", text)
        return attrs if instruments and not musical else None
    n = found[0]
    if n["quality"] is None:
        return {**attrs, "kind": "note", "note": f"{n['name']}{n['octave'] or 4}", "octave": n["octave"]}
    kind = "arpeggio" if re.search(r"(?i)arpeggi|broken", text) else "chord"
    return {**attrs, "kind": kind, "root": n["name"], "quality": n["quality"], "octave": n["octave"],
            "direction": (directions or ["rising"])[0] if kind == "arpeggio" else None}


def canonical(prompt: str) -> str:
    """The training caption for what the prompt asks (``read``), or the prompt itself with
    symbols and spelled-out accidentals normalised when it asks for something else."""
    attrs = read(prompt)
    return _normalise(prompt or "") if attrs is None else caption(**attrs)
