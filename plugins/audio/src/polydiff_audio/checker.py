"""Read pitch, chord and instrument back from a clip: the evaluator's automatic judge.

Everything works on magnitude spectra only (phase is what a mel -> Griffin-Lim round trip
destroys), looks at partials with a tolerance of a few tens of cents, and compares levels in
dB, so it survives the smearing that round trip adds. It can say no: a clip is a chord only
when the notes it plays form a triad (``read_chord``), and one note only when one pitch class
dominates (``one_note``), so single notes, dyads, noise and smears are not scored as chords.
"""
from __future__ import annotations

import numpy as np

from .data import NOTE_NAMES, SAMPLE_RATE, frequency

SILENCE = 1e-3  # peak amplitude below which a clip counts as silent
F_LO, F_HI = 110.0, 1100.0  # fundamental search range (C3 = 131 Hz .. B5 = 988 Hz, margins)
_FFT = 1 << 18  # long zero-padded FFT: 0.06 Hz bins for sub-cent peak interpolation
_CELL = 5  # cents per cell of the log-frequency spectrum
_FLOOR_DB = 60.0  # levels are mapped to [0, 1] over this range below the clip's loudest peak


def cents(f: float, g: float) -> float:
    """Interval from g up to f in cents (1200 per octave)."""
    return 1200.0 * float(np.log2(f / g))


def _silent(wave) -> bool:
    return wave is None or len(wave) == 0 or float(np.max(np.abs(wave))) < SILENCE


def _as_array(wave) -> np.ndarray:
    """numpy float64 1-D from numpy or torch input."""
    if hasattr(wave, "detach"):
        wave = wave.detach().cpu().numpy()
    return np.asarray(wave, np.float64).reshape(-1)


def _tukey(n: int, taper: float = 0.1) -> np.ndarray:
    """Flat window with raised-cosine ends: a Hann window over the whole clip would hide the
    first and last notes of an arpeggio."""
    w = np.ones(n)
    m = int(taper * n)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(m) + 0.5) / m)
    w[:m], w[n - m:] = ramp, ramp[::-1]
    return w


class _Spectrum:
    """Whole-clip magnitude spectrum, plus a log-frequency view in cells of _CELL cents
    (each cell = the loudest bin in it, as a level in [0, 1])."""

    def __init__(self, wave: np.ndarray, sr: int):
        self.sr = sr
        x = wave - wave.mean()
        self.mag = np.abs(np.fft.rfft(x * _tukey(len(x)), max(_FFT, len(x))))
        self.hz_per_bin = sr / max(_FFT, len(x))
        db = 20 * np.log10(self.mag / self.mag.max() + 1e-12)
        # Levels run from 1 at the loudest bin to 0 at the floor: 60 dB down, or 15 dB over
        # the median (background hiss) if that is higher, so noise cannot add up to a pitch.
        band = db[int(F_LO / self.hz_per_bin):int(7900 / self.hz_per_bin)]
        floor = -_FLOOR_DB if len(band) == 0 else max(-_FLOOR_DB, float(np.median(band)) + 15)
        self.level = np.clip(1 - db / floor, 0, None)
        lo_c, hi_c = 1200 * np.log2(F_LO / 2 / 440), 1200 * np.log2(7900 / 440)
        self.c0 = lo_c
        edges_c = np.arange(lo_c, hi_c + _CELL, _CELL)
        edges = np.round(440 * 2 ** (edges_c / 1200) / self.hz_per_bin).astype(int)
        self.cells = np.maximum.reduceat(self.level, edges)[:-1]

    def cell(self, hz):
        """Cell index of a frequency (array ok)."""
        return np.round((1200 * np.log2(np.asarray(hz) / 440) - self.c0) / _CELL).astype(int)

    def near(self, hz: float, tol_cents: float = 35.0) -> float:
        """Loudest level within +-tol_cents of hz."""
        lo = int(hz * 2 ** (-tol_cents / 1200) / self.hz_per_bin)
        hi = int(np.ceil(hz * 2 ** (tol_cents / 1200) / self.hz_per_bin)) + 1
        return float(self.level[lo:hi].max()) if lo < len(self.level) else 0.0

    def centroid(self, hz: float, tol_cents: float = 80.0) -> float:
        """Power centroid within +-tol_cents of hz: exact for a clean partial, and it averages
        the cluster of bins a mel / Griffin-Lim round trip smears a partial into."""
        lo = int(hz * 2 ** (-tol_cents / 1200) / self.hz_per_bin)
        hi = int(np.ceil(hz * 2 ** (tol_cents / 1200) / self.hz_per_bin)) + 1
        p = self.mag[lo:hi] ** 2
        return float((p * np.arange(lo, hi)).sum() / max(p.sum(), 1e-30) * self.hz_per_bin)

    def peak(self, hz: float, tol_cents: float = 35.0) -> float:
        """Frequency of the loudest bin within +-tol_cents of hz, parabola-interpolated."""
        lo = int(hz * 2 ** (-tol_cents / 1200) / self.hz_per_bin)
        hi = int(np.ceil(hz * 2 ** (tol_cents / 1200) / self.hz_per_bin)) + 1
        i = lo + int(np.argmax(self.mag[lo:hi]))
        a, b, c = np.log(self.mag[i - 1:i + 2] + 1e-20)
        den = a - 2 * b + c
        d = 0.5 * (a - c) / den if den < 0 else 0.0
        return (i + float(np.clip(d, -0.5, 0.5))) * self.hz_per_bin


def _spectrum(wave, sr: int) -> _Spectrum | None:
    x = _as_array(wave)
    return None if _silent(x) else _Spectrum(x, sr)


def _fundamental(spec: _Spectrum) -> float:
    cands = 440 * 2 ** ((spec.c0 + _CELL * np.arange(len(spec.cells))) / 1200)
    cands = cands[(cands >= F_LO) & (cands <= F_HI)]
    base = spec.cell(cands)
    score = np.zeros(len(cands))
    for k in range(1, 11):
        idx = base + int(round(1200 * np.log2(k) / _CELL))
        ok = idx < len(spec.cells)
        score[ok] += 0.8 ** (k - 1) * spec.cells[idx[ok]]
    return spec.centroid(spec.peak(cands[int(np.argmax(score))]))


def fundamental(wave, sr: int = SAMPLE_RATE) -> float | None:
    """Fundamental (Hz) of a single note, or None for silence.

    Harmonic sum over a log-frequency spectrum: a candidate scores the levels at its first
    10 harmonics with decreasing weights, so the true f0 beats f0/2 (whose extra odd
    multiples are empty) and 2*f0 (which misses the fundamental). The estimate is then the
    power centroid around the fundamental's own peak: sub-cent on clean audio.
    """
    spec = _spectrum(wave, sr)
    return None if spec is None else _fundamental(spec)


def note_ok(wave, note, tolerance_cents: float = 50.0) -> bool:
    """Whether the clip is one note (``one_note``) whose fundamental is within tolerance of
    ``note``: a chord whose lowest tone is the note is not that note."""
    f = fundamental(wave)
    return f is not None and abs(cents(f, frequency(note))) <= tolerance_cents and one_note(wave)


_FRAME, _HOP, _PAD = 4096, 1024, 8192
_BELL_RATIOS = (2.76, 5.40, 8.93)
_TOL = 35.0  # cents: how far a partial may sit from where a relation puts it
_MASK = 120.0  # cents: a peak this close to a louder one is ignored
_SPREAD = 50.0  # cents: half-width over which a partial's power is gathered
_STEP = 512  # samples per level step of the decay measure
_DECAYING = -3.0  # dB under the recent peak: below this a sound is plucked / struck


def _blackman_harris(n: int) -> np.ndarray:
    """4-term window: -92 dB sidelobes, so weak partials are not buried under leakage."""
    t = 2 * np.pi * np.arange(n) / n
    return 0.35875 - 0.48829 * np.cos(t) + 0.14128 * np.cos(2 * t) - 0.01168 * np.cos(3 * t)


def _frames(x: np.ndarray, sr: int):
    """Magnitude STFT [frames, bins] of 256 ms frames every 64 ms, and Hz per bin."""
    x = np.concatenate([np.zeros(_FRAME // 2), x, np.zeros(_FRAME // 2)])
    starts = np.arange(0, len(x) - _FRAME + 1, _HOP)
    segs = x[starts[:, None] + np.arange(_FRAME)] * _blackman_harris(_FRAME)
    return np.abs(np.fft.rfft(segs, _PAD, axis=1)), sr / _PAD


def _hiss_db(db: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Background level [frames, hi - lo] for bins lo..hi of dB frames [frames, bins]: the
    20th percentile of each half-octave band, interpolated. The noise of a generated clip is
    far from white, so one median for the whole spectrum would let low hiss pass as partials."""
    edges = np.unique(np.round(lo * 2.0 ** (np.arange(0, np.log2(hi / lo) + 0.5, 0.5))).astype(int))
    edges[-1] = hi
    centres = np.sqrt(edges[:-1] * edges[1:].astype(float))
    bands = zip(edges[:-1], edges[1:])
    levels = np.stack([np.percentile(db[:, a:b], 20, axis=1) for a, b in bands], 1)
    x = np.log(np.arange(lo, hi))
    return np.stack([np.interp(x, np.log(centres), row) for row in levels])


def _partials(mag: np.ndarray, hiss: np.ndarray, hz: float):
    """(frequencies, energies) of one frame's partials between 100 Hz and 7.8 kHz, low to high.

    Peaks must clear both 50 dB below the loudest and 12 dB above ``hiss`` (the background
    level from ``_hiss_db``, per bin from 100 Hz). A peak with a louder one within _MASK
    cents is dropped: Griffin-Lim leaves such side peaks next to strong partials (chord
    tones are >= 3 semitones apart). Each
    partial is the power centroid and total power within +-_SPREAD cents of its peak, which
    gathers the cluster of bins a round trip smears a partial into.
    """
    lo, hi = int(100 / hz), int(7800 / hz)
    db = 20 * np.log10(mag + 1e-12)
    floor = np.maximum(db[lo:hi].max() - 50, hiss + 12)
    seg = db[lo - 1:hi + 1]
    is_peak = (seg[1:-1] > seg[:-2]) & (seg[1:-1] >= seg[2:]) & (seg[1:-1] > floor)
    peaks = np.flatnonzero(is_peak) + lo
    near = np.abs(np.log2(peaks[:, None] / peaks[None, :])) < _MASK / 1200
    peaks = peaks[~(near & (db[peaks][None, :] > db[peaks][:, None])).any(axis=1)]
    if len(peaks) == 0:
        return np.zeros(0), np.zeros(0)
    power = mag**2
    cum = np.concatenate([[0.0], np.cumsum(power)])
    fcum = np.concatenate([[0.0], np.cumsum(power * np.arange(len(power)))])
    lo_j = np.floor(peaks * 2 ** (-_SPREAD / 1200)).astype(int)
    hi_j = np.minimum(np.ceil(peaks * 2 ** (_SPREAD / 1200)).astype(int) + 1, len(power))
    energy = cum[hi_j] - cum[lo_j]
    return (fcum[hi_j] - fcum[lo_j]) / np.maximum(energy, 1e-30) * hz, energy


def _walk(freqs: np.ndarray, energy: np.ndarray) -> list[tuple[float, float, str, int]]:
    """(frequency, energy, label, owner) of one frame's partials, walked upwards: a peak that no
    earlier fundamental explains becomes a fundamental (if loud enough and low enough), otherwise
    it is labelled by how it relates to one (even or odd harmonic, or a bell's inharmonic
    partial); "both" when two relations explain it. ``owner`` is the index of the partial of
    the fundamental it belongs to (its own for a fundamental, -1 for "other" and "both")."""
    loudest, funds, out = energy.max(), [], []
    for i, (f, e) in enumerate(zip(freqs, energy)):
        labels = {}
        for j, q in funds:
            r = f / q
            k = round(r)
            if k >= 2 and abs(1200 * np.log2(r / k)) < _TOL:
                labels.setdefault("even" if k % 2 == 0 else "odd", j)
            if any(abs(1200 * np.log2(r / ratio)) < _TOL for ratio in _BELL_RATIOS):
                labels.setdefault("bell", j)
        if not labels:
            if e > loudest * 10 ** (-2.5) and f < F_HI * 1.1:
                funds.append((i, f))
                out.append((f, e, "fund", i))
            else:
                out.append((f, e, "other", -1))
        elif len(labels) == 1:
            (label, owner), = labels.items()
            out.append((f, e, label, owner))
        else:
            out.append((f, e, "both", -1))
    return out


def _loud_partials(x: np.ndarray, sr: int):
    """The partials (``_partials``) of each frame whose tonal level is within 25 dB of the
    loudest frame's, and the share of those frames' 100 Hz - 7.8 kHz energy the partials hold
    (near 1 for clean notes; low for noise and for a smear, whose energy lies between peaks)."""
    mag, hz = _frames(x, sr)
    total_db = 10 * np.log10((mag**2).sum(axis=1) + 1e-20)
    frames = np.flatnonzero(total_db > total_db.max() - 50)
    lo, hi = int(100 / hz), int(7800 / hz)
    hiss = _hiss_db(20 * np.log10(mag[frames] + 1e-12), lo, hi)
    partials = [_partials(mag[i], h, hz) for i, h in zip(frames, hiss)]
    tonal = np.array([10 * np.log10(e.sum() + 1e-30) for _, e in partials])
    keep = [k for k, (_, e) in enumerate(partials) if len(e) and tonal[k] >= tonal.max() - 25]
    band = (mag[frames[keep], lo:hi] ** 2).sum()
    share = sum(partials[k][1].sum() for k in keep) / max(band, 1e-30)
    return [partials[k] for k in keep], float(share)


def features(wave, sr: int = SAMPLE_RATE) -> dict | None:
    """Timbre features that do not need to know the notes (None for silence).

    In each loud frame the spectral peaks are walked upwards: a peak that no earlier
    fundamental explains becomes a fundamental; otherwise it is labelled by how it relates to
    one (even or odd harmonic, or a bell's inharmonic partial ratio 2.76/5.40/8.93); a peak
    explained two ways is left out. Energies of each label relative to the fundamentals'
    tell the spectra apart (sine: none; square: odd only; organ and string: even and odd;
    bell: inharmonic). ``decay`` (see ``_decay``) tells plucked and struck
    sounds from sustained ones.
    """
    x = _as_array(wave)
    if _silent(x):
        return None
    totals = dict(fund=0.0, even=0.0, odd=0.0, bell=0.0, other=0.0, both=0.0)
    for freqs, energy in _loud_partials(x, sr)[0]:
        for _, e, label, _ in _walk(freqs, energy):
            totals[label] += e
    fund = max(totals.pop("fund"), 1e-20)
    out = {k: float(10 * np.log10(v / fund + 1e-6)) for k, v in totals.items()}
    out["decay"] = _decay(x)
    return out


def _decay(x: np.ndarray) -> float:
    """How far the level sits below its own recent peak: median over the sounding 32 ms
    steps of (level - loudest level of the last ~0.2 s), in dB.

    Sustained sounds stay near 0 (chord beating dips a little); plucked and struck notes
    fall several dB within 0.2 s after each onset, which also holds for every note of a
    fast arpeggio (an onset only resets the reference). Steps must be well above the
    background (the 10th percentile level, where hiss sits if there is any), so a note
    dying into hiss still reads as decaying.
    """
    n = len(x) // _STEP
    if n < 8:
        return 0.0
    level = 10 * np.log10((x[:n * _STEP].reshape(n, _STEP) ** 2).mean(axis=1) + 1e-20)
    top = level.max()
    threshold = max(top - 40, min(np.percentile(level, 10) + 10, top - 15))
    back = np.stack([np.concatenate([np.full(k, -np.inf), level[:n - k]]) for k in range(7)])
    below = level - back.max(axis=0)
    on = np.flatnonzero(level > threshold)
    return float(np.median(below[on])) if len(on) >= 4 else 0.0


def instrument(wave, sr: int = SAMPLE_RATE) -> str | None:
    """One of INSTRUMENTS, by rules on ``features`` (thresholds sit in wide gaps between the
    classes measured on raw and mel round-tripped clips), or None for silence."""
    f = features(wave, sr)
    if f is None:
        return None
    if f["bell"] > max(f["odd"], f["even"] - 6, -25.0):
        return "bell"  # inharmonic partials outweigh the harmonics: nothing else has them
    if f["decay"] < _DECAYING:  # the sound dies away
        return "plucked string"
    if f["even"] > -12:
        return "organ"
    return "square" if f["odd"] > -25 else "sine"


def heard(wave, sr: int = SAMPLE_RATE) -> tuple[dict[int, float], float] | None:
    """The notes a clip plays: ({MIDI note: share of the clip's tonal weight}, tonal share),
    or None for silence.

    In each loud frame the walked partials (``_walk``) give the fundamentals; a fundamental's
    weight is its own energy plus that of the harmonics it explains, each frame's weights sum
    to 1, and the shares are their mean over frames weighted by the frame's amplitude, so a
    chord's tones (at once) and an arpeggio's (in turn) count alike, and a plucked chord's
    attack counts more than the tail its lowest string rings on alone. The tonal share is
    ``_loud_partials``'.
    """
    x = _as_array(wave)
    if _silent(x):
        return None
    frames, share = _loud_partials(x, sr)
    loudness = np.array([np.sqrt(e.sum()) for _, e in frames])
    notes: dict[int, float] = {}
    for (freqs, energy), frame_weight in zip(frames, loudness / loudness.sum()):
        walked = _walk(freqs, energy)
        weight = {}
        for _, e, _, owner in walked:
            if owner >= 0:
                weight[owner] = weight.get(owner, 0.0) + e
        total = sum(weight.values())
        for i, w in weight.items():
            m = int(round(69 + 12 * np.log2(walked[i][0] / 440)))
            notes[m] = notes.get(m, 0.0) + w / total * frame_weight
    return notes, share


# Measured on real clips, raw and through log-mel and back (benchmarks/audio_checker.py):
TONAL_MIN = 0.75   # partials' share of the energy (chords >= 0.88; noise, smears <= 0.60)
TONE_MIN = 0.10    # share each tone of a triad must hold (chords >= 0.17; a dyad's stray third ~0.01)
OTHER_MAX = 0.25   # share it may leave to other pitch classes (chords <= 0.01; noise >= 0.43)
NOTE_MIN = 0.75    # share one pitch class must hold for a clip to be one note (notes 1.0; dyads <= 0.65)


def _shares(notes: dict[int, float]) -> np.ndarray:
    out = np.zeros(12)
    for m, w in notes.items():
        out[m % 12] += w
    return out


def read_chord(wave, sr: int = SAMPLE_RATE) -> dict | None:
    """{"chord": bool, "root", "quality", "octave" (the root's lowest octave), "why"} or None for
    silence. A chord is a clip whose notes (``heard``) are tonal (partials hold TONAL_MIN of the
    energy), whose three strongest pitch classes form a major or minor triad, each holding
    TONE_MIN, and which leaves at most OTHER_MAX to other pitch classes. Thresholds sit in the
    gaps measured on real clips (``calibration``; benchmarks/audio_checker.py)."""
    found = heard(wave, sr)
    if found is None:
        return None
    notes, tonal = found
    share = _shares(notes)
    top = sorted(int(k) for k in np.argsort(-share)[:3])
    out = {"chord": False, "root": None, "quality": None, "octave": None}
    if tonal < TONAL_MIN:
        return {**out, "why": f"not tonal (partials hold {tonal:.0%} of the energy)"}
    triad = next(((r, q) for r in top for q, third in (("major", 4), ("minor", 3))
                  if sorted({r, (r + third) % 12, (r + 7) % 12}) == top), None)
    if triad is None:
        return {**out, "why": "the strongest three pitch classes are not a triad"}
    if share[top].min() < TONE_MIN or 1 - share[top].sum() > OTHER_MAX:
        return {**out, "why": f"tones {np.round(share[top], 2).tolist()}, other {1 - share[top].sum():.2f}"}
    root, quality = triad
    lowest = min(m for m, w in notes.items() if m % 12 == root and w >= 0.05 * share[root])
    return {"chord": True, "root": NOTE_NAMES[root], "quality": quality, "octave": lowest // 12 - 1, "why": ""}


def chord(wave, sr: int = SAMPLE_RATE) -> tuple[str, str] | None:
    """(root name, "major" | "minor") of a root-position triad or its arpeggio, or None for a
    clip that is not one (a single note, a dyad, noise, a smear) and for silence."""
    found = read_chord(wave, sr)
    return (found["root"], found["quality"]) if found and found["chord"] else None


def chord_quality(wave, sr: int = SAMPLE_RATE) -> str | None:
    """"major" or "minor" for a chord or an arpeggio (None for anything else)."""
    found = chord(wave, sr)
    return found[1] if found else None


def one_note(wave, sr: int = SAMPLE_RATE) -> bool:
    """Whether one pitch class holds NOTE_MIN of a tonal clip's notes (octaves of it count)."""
    found = heard(wave, sr)
    return found is not None and found[1] >= TONAL_MIN and _shares(found[0]).max() >= NOTE_MIN


def read_attributes(wave, sr: int = SAMPLE_RATE) -> dict:
    """pitch_hz (as if one note), root, quality and octave (None unless a triad) and instrument
    of a clip; all None for silence."""
    spec = _spectrum(wave, sr)
    if spec is None:
        return {"pitch_hz": None, "root": None, "quality": None, "octave": None, "instrument": None}
    found = read_chord(wave, sr)
    return {"pitch_hz": _fundamental(spec), "root": found["root"], "quality": found["quality"],
            "octave": found["octave"], "instrument": instrument(wave, sr)}
