"""The checker says no: real chords and arpeggios are read with their root and quality, and
single notes, dyads, noise and smears are not chords (fast: numpy, a few round trips)."""
import numpy as np
import pytest
from polydiff_audio import calibration, checker, data


@pytest.fixture(scope="module")
def positives():
    return calibration.positives(20, seed=5)   # every kind x instrument x octave 3/4 once


@pytest.fixture(scope="module")
def negatives():
    return calibration.negatives(25, seed=6)   # every negative kind x instrument once


def test_chords_and_arpeggios_are_read_with_root_quality_and_octave(positives):
    for wave, a in positives:
        found = checker.read_chord(wave)
        assert (found["root"], found["quality"], found["octave"]) == (a["root"], a["quality"], a["octave"]), (a, found)


def test_chords_survive_the_model_representation(positives):
    for i, (wave, a) in enumerate(positives[:10]):
        assert checker.chord(calibration.round_trip(wave, i)) == (a["root"], a["quality"]), a


def test_what_is_not_a_triad_is_not_a_chord(negatives):
    for wave, kind, detail in negatives:
        assert checker.chord(wave) is None, (kind, detail, checker.read_chord(wave))


@pytest.mark.parametrize("instrument", ["organ", "square"])
def test_a_single_note_whose_fifth_harmonic_is_a_major_third_is_not_a_chord(instrument):
    """The 5th harmonic sits two octaves and a major third up; the old checker called a third
    of these notes a major chord on their own root."""
    rng = np.random.default_rng(7)
    for note in ("C3", "A3", "E4", "G4"):
        wave = data.render(calibration.attributes("note", instrument, note=note), rng)
        for w in (wave, calibration.round_trip(wave)):
            assert checker.chord(w) is None and checker.one_note(w) and checker.note_ok(w, note)


def test_a_wrong_root_is_wrong_and_a_chord_is_not_a_note(positives):
    wave, a = positives[0]
    assert checker.chord(wave) == (a["root"], a["quality"])
    other = data.NOTE_NAMES[(data.NOTE_NAMES.index(a["root"]) + 2) % 12]
    assert checker.chord(wave) != (other, a["quality"])
    lowest = data.note_name(data.midis(a)[0] if a["kind"] == "chord" else min(data.midis(a)))
    assert not checker.one_note(wave) and not checker.note_ok(wave, lowest)


def test_a_chord_buried_in_noise_is_refused():
    wave, a = calibration.positives(1, seed=8)[0]
    noise = np.random.default_rng(0).standard_normal(len(wave)) * np.sqrt((wave**2).mean())
    assert checker.chord((wave + 0.1 * noise).astype(np.float32)) == (a["root"], a["quality"])
    assert checker.chord((wave + noise).astype(np.float32)) is None     # 0 dB SNR
