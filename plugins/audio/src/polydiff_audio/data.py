"""Procedural, seeded 16 kHz clips of one instrument playing a note, a chord or an arpeggio.

Every clip has a caption. A caption may leave out the instrument ("an A minor chord") or say
only the instrument ("a bell"); the audio then shows a random value for what is not said, so
the model learns to fill in what the prompt does not say. Pitches are exact (no detune) so an
automatic checker can read them back.
"""
from __future__ import annotations

import functools

import numpy as np

SAMPLE_RATE = 16000
CLIP_SAMPLES = 32768  # 2.048 s, the training canvas

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
NOTES = tuple(f"{n}{octave}" for octave in (3, 4, 5) for n in NOTE_NAMES)  # C3 .. B5
INSTRUMENTS = ("sine", "organ", "plucked string", "bell", "square")
KINDS = ("note", "chord", "arpeggio")
QUALITIES = ("major", "minor")
DIRECTIONS = ("rising", "falling")
OCTAVES = (3, 4)  # octave of a chord's / arpeggio's root

ONLY_INSTRUMENT = 0.05  # chance that a caption says nothing but the instrument
NYQUIST_GUARD = 7600.0  # partials above this are left out, so nothing aliases
_ORGAN = np.array([1.0, 0.7, 0.5, 0.5, 0.3, 0.3, 0.1, 0.25])  # harmonics 1..8, drawbar-like
# Bell: (frequency ratio, amplitude, decay time relative to the fundamental's). The fundamental
# is the loudest and longest partial, so the heard (and detected) pitch is the note.
_BELL = ((1.0, 1.0, 1.0), (2.0, 0.25, 0.55), (2.76, 0.5, 0.4), (5.40, 0.25, 0.25),
         (8.93, 0.12, 0.15))
_KS_VARIANTS = 4  # distinct plucks per note, so plucked strings are not all identical
_TABLE = 4096  # wavetable length for the periodic timbres


# ---------------------------------------------------------------------------- pitch names
def midi(note: str) -> int:
    """MIDI number of a note name like "C#4" (C4 = 60, A4 = 69)."""
    name, octave = note[:-1], int(note[-1])
    return 12 * (octave + 1) + NOTE_NAMES.index(name)


def note_name(m: int) -> str:
    """Inverse of ``midi``: 61 -> "C#4"."""
    return f"{NOTE_NAMES[m % 12]}{m // 12 - 1}"


def frequency(note) -> float:
    """Equal temperament, A4 = 440 Hz; accepts a name ("A4") or a MIDI number."""
    m = midi(note) if isinstance(note, str) else note
    return 440.0 * 2.0 ** ((m - 69) / 12)


def midis(attrs: dict) -> list[int]:
    """The MIDI notes a clip plays, in playing order (all at once for a chord)."""
    if attrs["kind"] == "note":
        return [midi(attrs["note"])]
    root = 12 * (attrs.get("octave") or 3) + 12 + NOTE_NAMES.index(attrs["root"])
    tones = [root, root + (4 if attrs["quality"] == "major" else 3), root + 7]
    if attrs["kind"] == "chord":
        return tones
    tones.append(root + 12)
    return tones if attrs["direction"] == "rising" else tones[::-1]


# ---------------------------------------------------------------------------- captions
def _a(word: str) -> str:
    """Indefinite article by sound: an A, an E, an F ("eff"), an organ; a C, a bell."""
    return "an" if word[0] in "AEFaeiou" else "a"


def caption(kind=None, instrument=None, note=None, root=None, quality=None, direction=None,
            **_) -> str:
    """One deterministic sentence per kind; ``instrument=None`` leaves the instrument out and
    ``kind=None`` gives an instrument-only caption ("a bell")."""
    if kind is None:
        return f"{_a(instrument)} {instrument}"
    if kind == "note":
        if instrument:
            return f"{_a(instrument)} {instrument} playing {note}"
        return f"{_a(note)} {note} note"
    chord = f"{root} {quality}"
    if kind == "chord":
        text = f"{_a(chord)} {chord} chord"
        return f"{_a(instrument)} {instrument} playing {text}" if instrument else text
    text = f"{_a(direction)} {direction} {chord} arpeggio"
    return f"{text} on {instrument}" if instrument else text


def all_captions() -> list[str]:
    """Every caption ``example`` can write, sorted, for pre-encoding (653 of them)."""
    out = {caption(None, i) for i in INSTRUMENTS}
    for instrument in (None, *INSTRUMENTS):
        out.update(caption("note", instrument, note=n) for n in NOTES)
        for root in NOTE_NAMES:
            for q in QUALITIES:
                out.add(caption("chord", instrument, root=root, quality=q))
                out.update(caption("arpeggio", instrument, root=root, quality=q, direction=d)
                           for d in DIRECTIONS)
    return sorted(out)


def random_attributes(rng: np.random.Generator) -> dict:
    """Uniform kind and instrument; unused keys are None."""
    attrs = dict(kind=str(rng.choice(KINDS)), instrument=str(rng.choice(INSTRUMENTS)), note=None,
                 root=None, quality=None, direction=None, octave=None)
    if attrs["kind"] == "note":
        attrs["note"] = str(rng.choice(NOTES))
    else:
        attrs.update(root=str(rng.choice(NOTE_NAMES)), quality=str(rng.choice(QUALITIES)),
                     octave=int(rng.choice(OCTAVES)))
        if attrs["kind"] == "arpeggio":
            attrs["direction"] = str(rng.choice(DIRECTIONS))
    return attrs


# ---------------------------------------------------------------------------- synthesis
def _ramp(n: int) -> np.ndarray:
    """Raised-cosine rise of n samples (no clicks)."""
    return 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / max(n, 1))


def _lagrange(delay: float, order: int = 3) -> np.ndarray:
    """FIR taps of a Lagrange fractional delay (nearly flat magnitude at low frequencies)."""
    k = np.arange(order + 1)
    return np.array([np.prod([(delay - j) / (i - j) for j in k if j != i]) for i in k])


def _ks_filter(f0: float, t60: float):
    """Delay N and loop taps (at delays N, N+1, ...) of a Karplus-Strong string tuned exactly.

    Loop filter = decay-stretched averager [1-S, S] (the KS lowpass) * Lagrange fractional
    delay; the fractional part is solved by bisection so the loop's phase delay at f0 is
    exactly sr / f0 (pitch error well below a cent). S is the largest value (at most 0.5,
    classic KS) that still lets the fundamental ring for about t60 seconds.
    """
    w = 2 * np.pi * f0 / SAMPLE_RATE
    per_period = 10.0 ** (-3.0 / (f0 * t60))
    limit = (1 - per_period**2) / (2 * (1 - np.cos(w)))
    s = 0.5 if limit >= 0.25 else 0.5 - np.sqrt(0.25 - limit)
    period = SAMPLE_RATE / f0
    n = int(np.floor(period - s - 1.5))

    def taps(d):
        return np.convolve([1 - s, s], _lagrange(d))

    def phase_delay(d):
        h = taps(d) @ np.exp(-1j * w * np.arange(5))
        return n - np.angle(h) / w

    lo, hi = 0.5, 2.5
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if phase_delay(mid) < period else (lo, mid)
    h = taps(0.5 * (lo + hi))
    gain = min(0.99999, per_period / abs(h @ np.exp(-1j * w * np.arange(5))))
    return n, gain * h


def _burst(rng, n: int) -> np.ndarray:
    """[_KS_VARIANTS, n] random-phase noise bursts with a 1/k harmonic slope and no DC.

    Plain white noise one period long gives every harmonic a random (Rayleigh) amplitude,
    so the fundamental is sometimes nearly missing; fixing the magnitudes (like a real pluck,
    about 1/k) and randomising only the phases keeps the pitch clear and the plucks varied.
    """
    k = np.arange(n // 2 + 1)
    mags = np.zeros((_KS_VARIANTS, len(k)))
    mags[:, 1:] = rng.uniform(0.8, 1.2, (_KS_VARIANTS, len(k) - 1)) / k[1:]
    phases = rng.uniform(0, 2 * np.pi, (_KS_VARIANTS, len(k)))
    return np.fft.irfft(mags * np.exp(1j * phases), n)


@functools.lru_cache(maxsize=None)
def _plucks(m: int) -> np.ndarray:
    """Karplus-Strong plucks of MIDI note m: [_KS_VARIANTS, CLIP_SAMPLES], peak 1, cached.

    A noise burst one period long (``_burst``) goes into the delay line. The recursion
    y[n] = x[n] + sum_j c_j y[n - N - j] only looks N or more samples back, so it runs a
    block of N samples at a time in numpy (all variants at once) instead of per sample.
    """
    f0 = frequency(m)
    t60 = 2.0 * (0.8 / 2.0) ** ((m - 48) / 35)  # 2 s at C3 down to 0.8 s at B5
    n, c = _ks_filter(f0, t60)
    rng = np.random.default_rng(1000 + m)  # fixed: the cache must not depend on call order
    burst = _burst(rng, n)
    pad = n + len(c)
    y = np.zeros((_KS_VARIANTS, pad + CLIP_SAMPLES))
    y[:, pad:pad + n] = burst
    for start in range(pad, pad + CLIP_SAMPLES, n):
        stop = min(start + n, pad + CLIP_SAMPLES)
        acc = y[:, start:stop]
        for j, cj in enumerate(c):
            acc += cj * y[:, start - n - j:stop - n - j]
    out = y[:, pad:]
    return (out / np.abs(out).max(axis=1, keepdims=True)).astype(np.float32)


def _additive(f0: float, ratios, amps, length: int, decays=None) -> np.ndarray:
    """Sum of sinusoids (partials above NYQUIST_GUARD dropped), optionally decaying."""
    ratios, amps = np.asarray(ratios, float), np.asarray(amps, float)
    decays = [None] * len(ratios) if decays is None else list(decays)
    keep = ratios * f0 < NYQUIST_GUARD
    t = np.arange(length) / SAMPLE_RATE
    out = np.zeros(length)
    for r, a, d in zip(ratios[keep], amps[keep], [d for d, k in zip(decays, keep) if k]):
        part = np.sin(2 * np.pi * r * f0 * t)
        out += a * (part if d is None else part * np.exp(-t / d))
    return out


@functools.lru_cache(maxsize=None)
def _period(instrument: str, m: int) -> np.ndarray:
    """One period of a periodic timbre as a wavetable (+ wrap-around sample), cached.

    Band-limited to NYQUIST_GUARD, so the square has only odd harmonics 1/k below it (no
    aliasing); reading it back with linear interpolation is ~10x cheaper than summing
    sinusoids, and its interpolation images sit below -80 dB.
    """
    f0 = frequency(m)
    if instrument == "organ":
        k, amps = np.arange(1, 9), _ORGAN
    else:
        k = np.arange(1, int(NYQUIST_GUARD / f0) + 1, 2)
        amps = 1.0 / k
    keep = k * f0 < NYQUIST_GUARD
    t = np.arange(_TABLE + 1) / _TABLE
    return (amps[keep, None] * np.sin(2 * np.pi * k[keep, None] * t)).sum(axis=0)


def _tone(instrument: str, m: int, sound: int, rng) -> np.ndarray:
    """One note: ``sound`` samples sounding, then the instrument's release to silence."""
    f0 = frequency(m)
    attack, release = {"sine": (0.03, 0.10), "organ": (0.01, 0.04), "square": (0.005, 0.03),
                       "plucked string": (0.001, 0.06), "bell": (0.002, 0.08)}[instrument]
    attack, release = int(attack * SAMPLE_RATE), int(release * SAMPLE_RATE)
    length = sound + release
    if instrument == "sine":
        wave = np.sin(2 * np.pi * f0 / SAMPLE_RATE * np.arange(length))
    elif instrument in ("organ", "square"):
        table = _period(instrument, m)
        phase = (np.arange(length) * (f0 / SAMPLE_RATE)) % 1.0 * _TABLE
        wave = np.interp(phase, np.arange(_TABLE + 1), table)
    elif instrument == "bell":
        tau = (3.0 * (1.5 / 3.0) ** ((m - 48) / 35)) / np.log(1000)  # fundamental T60 3 s .. 1.5 s
        wave = _additive(f0, [b[0] for b in _BELL], [b[1] for b in _BELL], length,
                         [tau * b[2] for b in _BELL])
    else:
        wave = _plucks(m)[rng.integers(_KS_VARIANTS)][:length].astype(float)
    env = np.ones(length)
    env[:attack] = _ramp(attack)
    env[sound:] = _ramp(release)[::-1]
    return wave * env


def render(attrs: dict, rng: np.random.Generator) -> np.ndarray:
    """The clip for full attributes: float32 [CLIP_SAMPLES], peak 0.5..0.8.

    Onset 0..50 ms, sounding 1..2 s (an arpeggio splits it into 4 equal slots, each note
    ringing until the next starts), then a release to silence inside the canvas.
    """
    onset = int(rng.integers(0, int(0.05 * SAMPLE_RATE) + 1))
    longest = (CLIP_SAMPLES - onset) / SAMPLE_RATE - 0.1  # room for the longest release
    total = int(rng.uniform(1.0, min(2.0, longest)) * SAMPLE_RATE)
    tones = midis(attrs)
    out = np.zeros(CLIP_SAMPLES)
    if attrs["kind"] == "arpeggio":
        slot = total // len(tones)
        starts = [onset + i * slot for i in range(len(tones))]
        lengths = [slot] * (len(tones) - 1) + [total - slot * (len(tones) - 1)]
    else:
        starts, lengths = [onset] * len(tones), [total] * len(tones)
    for m, start, sound in zip(tones, starts, lengths):
        wave = _tone(attrs["instrument"], m, sound, rng) * rng.uniform(0.85, 1.0)
        end = min(start + len(wave), CLIP_SAMPLES)
        out[start:end] += wave[:end - start]
    out *= rng.uniform(0.5, 0.8) / max(np.abs(out).max(), 1e-9)
    return out.astype(np.float32)


def example(rng: np.random.Generator, drop: float = 0.2) -> tuple[np.ndarray, str, dict]:
    """(wave, caption, attributes): the instrument is left out of the caption with
    probability ``drop``, and (independently) the caption is only the instrument with
    probability 0.05; what the caption does not say is still random in the audio."""
    attrs = random_attributes(rng)
    leave_out, only = rng.random() < drop, rng.random() < ONLY_INSTRUMENT
    wave = render(attrs, rng)
    if only:
        text = caption(None, attrs["instrument"])
    else:
        text = caption(**{**attrs, "instrument": None if leave_out else attrs["instrument"]})
    return wave, text, attrs


def batch(n: int, seed: int, drop: float = 0.2) -> tuple[np.ndarray, list[str], list[dict]]:
    """n examples from one seed: waves [n, CLIP_SAMPLES] float32, captions, attributes."""
    rng = np.random.default_rng(seed)
    items = [example(rng, drop) for _ in range(n)]
    return np.stack([i[0] for i in items]), [i[1] for i in items], [i[2] for i in items]
