"""The notes a prompt names, as a 12-bin pitch-class vector the model is conditioned on
beside the text encoder's tokens.

Why: a word vector for "minor" says nothing about *which* note is the third; learning that
"C" + "minor" means E-flat is a conjunction the denoiser never picked up from the diffusion
loss (a model given only the word tokens picked major or minor by its noise seed, whatever
the prompt said). Naming the pitch classes makes the third as direct an input as the root,
and single notes teach the same bins.

Read as notes: a letter A-G with an optional sharp or flat and an octave digit ("C#4",
"Bb3"), or a letter with an optional accidental followed by "major" or "minor" (a triad:
"A minor", "Eb major"). A bare letter is not a note, so the article in "A bell" is not an A.
"""
from __future__ import annotations

import re

import numpy as np

_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NOTE = re.compile(r"(?<![\w#])([A-Ga-g])([#b]?)(?:(\d)|\s+(major|minor))(?![\w#])", re.IGNORECASE)
_THIRD = {"major": 4, "minor": 3}


def pitch_classes(prompt: str) -> np.ndarray:
    """[12] float32, 1 where the prompt names a note of that pitch class (C = 0, C# = 1, ...)."""
    out = np.zeros(12, np.float32)
    for letter, accidental, octave, quality in _NOTE.findall(prompt or ""):
        if not octave and letter.islower():
            continue    # "a minor chord" is read as "some minor chord", not A minor
        root = (_LETTERS[letter.upper()] + {"#": 1, "b": -1, "": 0}[accidental]) % 12
        steps = (0,) if octave else (0, _THIRD[quality.lower()], 7)
        for step in steps:
            out[(root + step) % 12] = 1.0
    return out
