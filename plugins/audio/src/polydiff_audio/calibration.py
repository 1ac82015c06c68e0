"""Real clips the checker is calibrated on: positives (chords and arpeggios of ``data``) and
negatives it must refuse as chords (single notes, two-note dyads, white and pink noise, and
smears: chords blurred in time and frequency until their partials run together).

Why: a checker measured on positives alone can answer "major" to anything; the evaluator's
figures mean something only if the same checker is seen to say no. Every clip may be sent
through the model's own representation (log-mel and back, ``round_trip``), as generated
audio is.
"""
from __future__ import annotations

import numpy as np
import torch

from . import data, mel

NEGATIVE_KINDS = ("note", "dyad", "white noise", "pink noise", "smear")


def attributes(kind: str, instrument: str, **kw) -> dict:
    return {**dict(kind=kind, instrument=instrument, note=None, root=None, quality=None, direction=None,
                   octave=None), **kw}


def round_trip(wave: np.ndarray, seed: int = 0) -> np.ndarray:
    """Through log-mel and back (InverseMelScale + Griffin-Lim), as a generated clip is."""
    x = mel.encode(torch.from_numpy(wave)[None])
    return mel.decode(x, generator=torch.Generator().manual_seed(seed))[0].numpy()


def _chord(rng, kind: str, instrument: str, octave: int) -> tuple[np.ndarray, dict]:
    attrs = attributes(kind, instrument, root=str(rng.choice(data.NOTE_NAMES)), octave=octave,
                       quality=str(rng.choice(data.QUALITIES)),
                       direction=str(rng.choice(data.DIRECTIONS)) if kind == "arpeggio" else None)
    return data.render(attrs, rng), attrs


def positives(n: int, seed: int) -> list[tuple[np.ndarray, dict]]:
    """n (wave, attrs) chords and arpeggios: every 20 hold each kind x instrument x octave 3/4."""
    rng = np.random.default_rng(seed)
    return [_chord(rng, data.KINDS[1 + i % 2], data.INSTRUMENTS[i // 2 % 5], data.OCTAVES[i // 10 % 2])
            for i in range(n)]


def _envelope(rng) -> np.ndarray:
    """A clip's shape in time: silent lead-in, 1-2 s sounding, 50 ms ramps."""
    env = np.zeros(data.CLIP_SAMPLES)
    start = int(rng.integers(0, 800))
    stop = start + int(rng.uniform(1.0, 1.9) * data.SAMPLE_RATE)
    env[start:stop] = 1.0
    ramp = np.minimum(np.arange(stop - start), np.arange(stop - start)[::-1]) / 800
    env[start:stop] = np.minimum(1.0, ramp)
    return env


def _noise(rng, pink: bool) -> np.ndarray:
    x = rng.standard_normal(data.CLIP_SAMPLES)
    if pink:  # 1/f power: amplitude 1/sqrt(f)
        spec = np.fft.rfft(x)
        spec[1:] /= np.sqrt(np.arange(1, len(spec)))
        spec[0] = 0
        x = np.fft.irfft(spec, data.CLIP_SAMPLES)
    return x * _envelope(rng)


def smear(wave: np.ndarray, seed: int, hz: float = 60.0, frames: float = 3.0) -> np.ndarray:
    """The clip's magnitude STFT blurred by Gaussians (``hz`` across frequency, ``frames`` hops
    across time), back to a wave by Griffin-Lim: energy where the chord was, no partials."""
    x = torch.from_numpy(wave)[None]
    mag = mel.stft(x, mel.frames_for(x.shape[-1])).abs()[0].numpy()
    for axis, sigma in ((0, hz / (data.SAMPLE_RATE / mel.N_FFT)), (1, frames)):
        k = np.arange(-int(3 * sigma) - 1, int(3 * sigma) + 2)
        kernel = np.exp(-0.5 * (k / sigma) ** 2)
        mag = np.apply_along_axis(np.convolve, axis, mag, kernel / kernel.sum(), "same")
    back = mel.griffin_lim(torch.from_numpy(mag).float()[None], generator=torch.Generator().manual_seed(seed))
    return back[0, :len(wave)].numpy()


def negatives(n: int, seed: int) -> list[tuple[np.ndarray, str, str]]:
    """n (wave, kind, detail) clips that are not triads, cycling through NEGATIVE_KINDS;
    notes and dyads cycle through every instrument, notes through octaves 3-5."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind, instrument = NEGATIVE_KINDS[i % len(NEGATIVE_KINDS)], data.INSTRUMENTS[i // 5 % 5]
        if kind == "note":
            note = f"{rng.choice(data.NOTE_NAMES)}{3 + i // 25 % 3}"
            wave, detail = data.render(attributes("note", instrument, note=note), rng), f"{instrument} {note}"
        elif kind == "dyad":
            low = int(12 * (4 + rng.integers(2)) + rng.integers(12))
            step = int(rng.choice((3, 4, 7)))
            s = int(rng.integers(1 << 30))
            wave = sum(data.render(attributes("note", instrument, note=data.note_name(m)), np.random.default_rng(s))
                       for m in (low, low + step))
            detail = f"{instrument} {data.note_name(low)}+{step}"
        elif kind == "smear":
            chord, attrs = _chord(rng, data.KINDS[1 + i // 25 % 2], instrument, data.OCTAVES[i // 50 % 2])
            wave, detail = smear(chord, i), f"{attrs['instrument']} {attrs['root']} {attrs['quality']} {attrs['kind']}"
        else:
            wave, detail = _noise(rng, kind == "pink noise"), kind
        out.append(((0.6 * wave / np.abs(wave).max()).astype(np.float32), kind, detail))
    return out
