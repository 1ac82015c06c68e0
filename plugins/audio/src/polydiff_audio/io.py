"""Reading user audio (WAV paths or arrays, resampled to the model rate with torchaudio) and
writing 16-bit PCM WAV with a spectrogram PNG beside it. soundfile does the file I/O:
torchaudio's own load/save need torchcodec."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polydiff
import torch

from .mel import SAMPLE_RATE


def read_audio(value, field: str, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Mono float32 [samples] at SAMPLE_RATE from a path (any rate soundfile reads; channels
    are averaged) or an array ([samples], or [channels, samples] / [samples, channels]) given
    at ``sample_rate``. Errors name ``field``."""
    if isinstance(value, (str, Path)):
        import soundfile

        if not Path(value).is_file():
            raise polydiff.InvalidInputError(f"{field}: no such file {str(value)!r}")
        try:
            array, sample_rate = soundfile.read(str(value), dtype="float32", always_2d=True)
        except (RuntimeError, soundfile.LibsndfileError, ValueError) as exc:
            raise polydiff.InvalidInputError(f"{field}: cannot read {str(value)!r} as audio ({exc})") from None
        array = array.mean(axis=1)
    else:
        array = np.asarray(value)
        if array.dtype == np.int16:
            array = array.astype(np.float32) / 32768.0
        if not np.issubdtype(array.dtype, np.number):
            raise polydiff.InvalidInputError(f"{field}: expected a waveform array, got {array.dtype}")
        array = array.astype(np.float32)
        if array.ndim == 2:
            array = array.mean(axis=0 if array.shape[0] <= 8 else 1)
        if array.ndim != 1:
            raise polydiff.InvalidInputError(f"{field}: expected a 1-D waveform or [channels, samples], got shape {array.shape}")
    if sample_rate is None or sample_rate <= 0:
        raise polydiff.InvalidInputError(f"{field}: sample rate must be positive, got {sample_rate}")
    if array.size == 0:
        raise polydiff.InvalidInputError(f"{field}: the audio is empty")
    if not np.isfinite(array).all():
        raise polydiff.InvalidInputError(f"{field}: the audio contains NaN or infinite samples")
    wave = torch.from_numpy(np.ascontiguousarray(array))
    if sample_rate != SAMPLE_RATE:
        import torchaudio

        wave = torchaudio.functional.resample(wave, int(sample_rate), SAMPLE_RATE)
    peak = float(wave.abs().max())
    return wave / peak if peak > 1.0 else wave


def to_pcm16(wave: torch.Tensor) -> np.ndarray:
    return (wave.clamp(-1, 1).cpu().numpy() * 32767).round().astype(np.int16)


def spectrogram_png(wave: torch.Tensor, path: Path) -> None:
    """The log-mel spectrogram as a PNG: time left to right, low frequencies at the bottom."""
    from PIL import Image

    from .mel import encode

    x = encode(wave[None].float())[0].numpy()
    level = np.clip((x + 1) / 2, 0, 1)[::-1]
    # a dark-blue -> orange -> yellow ramp: quiet bands stay dark, harmonics stand out
    stops = np.array([[0, 0, 10], [60, 15, 110], [200, 60, 60], [250, 160, 30], [255, 250, 200]], np.float32)
    pos = level * (len(stops) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(stops) - 2)
    frac = (pos - lo)[..., None]
    rgb = stops[lo] * (1 - frac) + stops[lo + 1] * frac
    image = Image.fromarray(rgb.astype(np.uint8)).resize((x.shape[1] * 3, x.shape[0] * 2), Image.NEAREST)
    image.save(path)


def save(path: Path, wave: torch.Tensor) -> list[Path]:
    """``path`` as 16-bit PCM WAV and its spectrogram as the same name with .png."""
    import soundfile

    soundfile.write(str(path), to_pcm16(wave), SAMPLE_RATE, subtype="PCM_16")
    spectrogram_png(wave, path.with_suffix(".png"))
    return [path, path.with_suffix(".png")]


def write(outputs, folder, request) -> list[Path]:
    """One 16-bit PCM WAV per sample with its spectrogram PNG beside it."""
    return [p for i, wave in enumerate(outputs) for p in save(Path(folder) / f"{request.task}-{i:03d}.wav", wave)]


def read(files) -> list[torch.Tensor]:
    """The inverse of ``write``: the waveform of each written WAV (PNGs are skipped)."""
    return [read_audio(p, str(p)) for p in files if Path(p).suffix.lower() == ".wav"]


def picture(x: torch.Tensor) -> np.ndarray:
    """The first log-mel spectrogram of a model-space batch, low pitches at the bottom, for figures."""
    return x[0].float().reshape(-1, x.shape[-1]).flip(0).clamp(-1.5, 1.5).numpy()
