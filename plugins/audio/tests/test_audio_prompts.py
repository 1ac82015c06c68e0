"""The prompt reader (score) against a table of phrasings people type: the pitch classes it
conditions the model on, and the canonical caption the text encoder sees (fast: no model)."""
import numpy as np
import pytest
from polydiff_audio import data, score

C, Cs, D, Ds, E, F, Fs, G, Gs, A, As, B = range(12)
PHRASINGS = [  # phrase -> pitch classes
    ("a D3 major chord", [D, Fs, A]),
    ("a D3 major chord played on a bell", [D, Fs, A]),
    ("C sharp", [Cs]),
    ("c sharp on a bell", [Cs]),
    ("E flat", [Ds]),
    ("C sharp 3 on a bell", [Cs]),
    ("B flat", [As]),
    ("b flat", [As]),
    ("A flat", [Gs]),
    ("A sharp", [As]),
    ("middle C", [C]),
    ("middle C on an organ", [C]),
    ("a minor triad on D", [D, F, A]),
    ("a major chord built on E flat", [Ds, G, As]),
    ("D minor arpeggio", [D, F, A]),
    ("F# minor", [Fs, A, Cs]),
    ("F♯ minor", [Fs, A, Cs]),
    ("E♭ major chord", [Ds, G, As]),
    ("E flat major chord", [Ds, G, As]),
    ("B♭3", [As]),
    ("G# 5 on a bell", [Gs]),
    ("e minor chord on square", [E, G, B]),
    ("an A minor chord", [A, C, E]),
    ("A minor", [A, C, E]),
    ("Cmaj chord", [C, E, G]),
    ("a D note", [D]),
    ("an organ playing A4", [A]),
    ("I'd like to hear a bell playing an E flat major chord", [Ds, G, As]),
    ("please play G4 on the organ", [G]),
    ("Bb3 then c#5", [Cs, As]),
    ("A bell", []),                       # the article is not the note A
    ("a minor chord", []),                # some minor chord: no root named
    ("A bell, a minor chord", []),
    ("a sharp attack on a bell", []),     # "a sharp" is an article and an adjective
    ("a b c", []),
    ("20 db of organ", []),
    ("", []),
]
CANONICAL = [  # phrase -> what the text encoder reads
    ("a D3 major chord played on a bell", "a bell playing a D major chord"),
    ("I'd like to hear a bell playing an E flat major chord", "a bell playing a D# major chord"),
    ("middle C on an organ", "an organ playing C4"),
    ("C sharp", "a C#4 note"),
    ("C sharp 3 on a bell", "a bell playing C#3"),
    ("E flat 5", "a D#5 note"),
    ("square wave, note B♭ 3", "a square playing A#3"),
    ("a minor triad on D", "a D minor chord"),
    ("descending B flat minor arpeggio, square wave", "a falling A# minor arpeggio on square"),
    ("D minor arpeggio played by plucked strings", "a rising D minor arpeggio on plucked string"),
    ("sine wave", "a sine"),
    ("organ", "an organ"),
    ("a minor chord", "a minor chord"),          # nothing to name it by: left as written
    ("Bb3 then c#5", "Bb3 then c#5"),            # two notes: left as written
    ("a bell or an organ playing C4", "a bell or an organ playing C4"),
]


@pytest.mark.parametrize("phrase,expected", PHRASINGS)
def test_pitch_classes_of_a_phrasing(phrase, expected):
    assert np.flatnonzero(score.pitch_classes(phrase)).tolist() == sorted(expected)


@pytest.mark.parametrize("phrase,expected", CANONICAL)
def test_canonical_caption_of_a_phrasing(phrase, expected):
    assert score.canonical(phrase) == expected


def test_octave_and_quality_are_read_together():
    found = score.read("a D3 major chord played on a bell")
    assert (found["kind"], found["root"], found["quality"], found["octave"], found["instrument"]) == (
        "chord", "D", "major", 3, "bell")


def test_every_training_caption_is_its_own_canonical_caption():
    """The model was trained on these exact words: the reader must not change any of them."""
    captions = data.all_captions()
    assert [score.canonical(c) for c in captions] == captions


def test_the_evaluators_paraphrases_are_read_as_what_they_ask():
    from polydiff_audio import paraphrase

    rng = np.random.default_rng(1)
    for i in range(150):
        prompt, attrs = paraphrase.example(rng, data.KINDS[i % 3])
        assert prompt not in data.all_captions()
        found = score.read(prompt)
        assert {k: found[k] for k in attrs} == attrs, prompt
