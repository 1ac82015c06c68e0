"""The audio plugin's procedural data and its automatic checker (fast: numpy only)."""
import numpy as np
import pytest
from polydiff_audio import checker, data


def _clips(n, seed, kinds):
    """n clips of the given kinds with uniformly random other attributes."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        attrs = data.random_attributes(rng)
        if attrs["kind"] in kinds:
            out.append((data.render(attrs, rng), attrs))
    return out


def test_pitch_names_and_frequencies():
    assert len(data.NOTES) == 36 and data.NOTES[0] == "C3" and data.NOTES[-1] == "B5"
    assert data.midi("C4") == 60 and data.midi("C#4") == 61 and data.midi("A4") == 69
    assert data.frequency("A4") == pytest.approx(440.0)
    assert data.frequency("C4") == pytest.approx(261.6256, abs=1e-3)
    assert data.frequency("A5") == pytest.approx(880.0)
    assert data.note_name(data.midi("F#4")) == "F#4"


def test_batches_are_seeded_and_well_formed():
    a, ca, aa = data.batch(8, seed=5)
    b, cb, ab = data.batch(8, seed=5)
    c, cc, _ = data.batch(8, seed=6)
    assert np.array_equal(a, b) and ca == cb and aa == ab
    assert not np.array_equal(a, c)
    assert a.shape == (8, data.CLIP_SAMPLES) and a.dtype == np.float32
    peaks = np.abs(a).max(axis=1)
    assert np.all(peaks >= 0.5 - 1e-4) and np.all(peaks <= 0.8 + 1e-4)


def test_clip_timing():
    """Onset within 50 ms, 1..2 s of sound, silent again before the canvas ends."""
    waves, _, _ = data.batch(24, seed=9)
    for w in waves:
        loud = np.flatnonzero(np.abs(w) > 1e-4)
        assert loud[0] <= 0.05 * data.SAMPLE_RATE + 1
        assert 1.0 * data.SAMPLE_RATE <= loud[-1] - loud[0] <= 2.15 * data.SAMPLE_RATE
        assert np.abs(w[-16:]).max() < 1e-6


def test_captions_cover_the_vocabulary():
    captions = data.all_captions()
    assert captions == sorted(set(captions)) and len(captions) < 3000
    for text in ("a plucked string playing an A minor chord", "a rising C major arpeggio on organ",
                 "a bell playing F#4", "a sine playing G3", "an A minor chord",
                 "a falling E minor arpeggio", "an F#4 note", "a bell", "an organ",
                 "a square playing a D# major chord", "an organ playing an F major chord"):
        assert text in captions, text
    _, said, _ = data.batch(200, seed=3)
    assert set(said) <= set(captions)


def test_captions_name_the_audio():
    rng = np.random.default_rng(0)
    for _ in range(50):
        _, text, attrs = data.example(rng, drop=0.0)
        if text == data.caption(None, attrs["instrument"]):
            continue  # an instrument-only caption
        assert text == data.caption(**attrs) and attrs["instrument"] in text
        _, text, attrs = data.example(rng, drop=1.0)
        if text != data.caption(None, attrs["instrument"]):
            assert attrs["instrument"] not in text


def test_prompt_pitch_classes_are_the_notes_the_caption_names():
    from polydiff_audio import score

    rng = np.random.default_rng(0)
    for _ in range(300):
        attrs = data.random_attributes(rng)
        named = np.flatnonzero(score.pitch_classes(data.caption(**attrs))).tolist()
        assert named == sorted({m % 12 for m in data.midis(attrs)}), data.caption(**attrs)
    assert not score.pitch_classes("a bell").any() and not score.pitch_classes("").any()
    assert not score.pitch_classes("A bell, a minor chord").any()    # articles are not notes
    assert np.flatnonzero(score.pitch_classes("an Eb major chord")).tolist() == [3, 7, 10]
    assert np.flatnonzero(score.pitch_classes("Bb3 then c#5")).tolist() == [1, 10]


def test_chords_and_arpeggios_play_the_right_notes():
    attrs = dict(kind="arpeggio", instrument="sine", note=None, root="A", quality="minor",
                 direction="falling", octave=3)
    assert data.midis(attrs) == [69, 64, 60, 57]
    assert data.midis({**attrs, "kind": "chord"}) == [57, 60, 64]
    assert data.midis({**attrs, "kind": "chord", "quality": "major", "octave": 4}) == [69, 73, 76]


@pytest.mark.parametrize("instrument", data.INSTRUMENTS)
def test_rendered_pitch_is_exact(instrument):
    rng = np.random.default_rng(1)
    for note in ("C3", "A4", "B5"):
        attrs = dict(kind="note", instrument=instrument, note=note, root=None, quality=None,
                     direction=None, octave=None)
        f = checker.fundamental(data.render(attrs, rng))
        assert abs(checker.cents(f, data.frequency(note))) < 10, (instrument, note, f)


def test_checker_reads_pitch_and_instrument_of_single_notes():
    clips = _clips(100, seed=21, kinds=("note",))
    instruments = [checker.instrument(w) == a["instrument"] for w, a in clips]
    assert np.mean(instruments) >= 0.97
    assert all(checker.note_ok(w, a["note"], tolerance_cents=10) for w, a in clips)


def test_checker_reads_chords_and_arpeggios():
    clips = _clips(60, seed=22, kinds=("chord", "arpeggio"))
    assert np.mean([checker.chord(w) == (a["root"], a["quality"]) for w, a in clips]) >= 0.95
    assert np.mean([checker.instrument(w) == a["instrument"] for w, a in clips]) >= 0.90


def test_checker_reports_silence():
    for quiet in (np.zeros(data.CLIP_SAMPLES, np.float32), np.full(1000, 1e-5)):
        assert checker.fundamental(quiet) is None
        assert checker.chord_quality(quiet) is None and checker.chord(quiet) is None
        assert checker.instrument(quiet) is None
        assert not checker.note_ok(quiet, "A4")
        assert set(checker.read_attributes(quiet).values()) == {None}


def test_read_attributes_of_a_known_clip():
    attrs = dict(kind="chord", instrument="organ", note=None, root="E", quality="minor",
                 direction=None, octave=3)
    wave = data.render(attrs, np.random.default_rng(4))
    found = checker.read_attributes(wave)
    assert found["quality"] == "minor" and found["root"] == "E" and found["instrument"] == "organ"
    assert found["octave"] == 3
    assert checker.read_attributes(wave[None, :].copy()) == found  # a [1, T] clip works too
