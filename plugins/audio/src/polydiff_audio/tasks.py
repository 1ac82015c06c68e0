"""Each audio task as a sampling plan on the core's editing constraints, in log-mel space.

generate: noise -> clip.  continue / edit: the given audio's frames are kept by replacement
(RePaint resampling) and the rest is generated; the output waveform keeps the given samples
exactly outside the regenerated span (but for 16 ms crossfades at its edges), and Griffin-Lim
starts from the given audio's phase so the join is coherent. An edit's canvas starts just
before its span, so the new sound starts there with its own attack, and it fades back into
the given audio over the span's last 128 ms.  style: SDEdit from the given clip towards the
prompt.  denoise: the white-noise floor is estimated and subtracted from the mel magnitudes
(spectral subtraction), then SDEdit from there removes what subtraction leaves behind.
"""
from __future__ import annotations

import math

import numpy as np
import polydiff
import torch
from pydantic import BaseModel, Field

from . import mel
from .encoders import NAME
from .io import read_audio

DEFAULT_GUIDANCE = 1.5
OVERSUBTRACT = 1.5            # denoise: subtract this many times the estimated noise floor
MULTIPLE = 4                  # frame counts the UNet accepts (two halvings)
FADE = 256                    # samples of crossfade where generated audio meets given audio (16 ms)
EDIT_TAPER = 8                # edit: frames (128 ms) over which the span fades back into the given audio
EDIT_LEAD = 512               # edit: samples of given audio left on the canvas before the span (32 ms)
MIN_SAMPLES = mel.N_FFT       # the shortest clip the STFT (and its spectrogram PNG) can represent: 64 ms
MIN_SECONDS = MIN_SAMPLES / mel.SAMPLE_RATE
MAX_ELEMENTS = 64 * mel.SAMPLE_RATE // mel.HOP * mel.N_MELS  # n x seconds <= 64 (attention along time is quadratic)


class GenerateOptions(BaseModel):
    seconds: float = Field(2.0, ge=MIN_SECONDS, description="output length (s)")


class InputOptions(BaseModel):
    sample_rate: int = Field(mel.SAMPLE_RATE, gt=0, description="rate of an --init given as an array")


class KeepOptions(InputOptions):
    resample: int = Field(3, ge=1, le=20, description="RePaint resampling count")


class ContinueOptions(KeepOptions):
    seconds: float | None = Field(None, ge=MIN_SECONDS, description="total length (default: the input + 1 s)")


class EditOptions(KeepOptions):
    start: float = Field(ge=0.0, description="start of the span to regenerate (s)")
    end: float = Field(gt=0.0, description="end of the span to regenerate (s)")
    attack: bool = Field(True, description="the new sound starts at --start with its own attack; "
                         "false continues the sound around the span instead")


class StyleOptions(InputOptions):
    strength: float = Field(0.9, gt=0.0, le=1.0, description="SDEdit strength")


class DenoiseOptions(InputOptions):
    strength: float = Field(0.3, gt=0.0, le=1.0, description="how much to regenerate")
    noise_level: float | None = Field(None, gt=0.0, le=1.0, description="white-noise std (estimated if omitted)")


def _frames(samples: int) -> int:
    frames = math.ceil(samples / mel.HOP)
    return -(-frames // MULTIPLE) * MULTIPLE


def _angle(given: torch.Tensor | None, frames: int, request) -> torch.Tensor:
    """A unit-phase start for Griffin-Lim per sample: random from the sample's seed, replaced by
    the phase of ``given`` (the input's STFT, when there is one) wherever it is not silent."""
    phase = polydiff.SeededNoise.for_batch(request.seed, request.n).rand((mel.N_FFT // 2 + 1, frames))
    angle = torch.polar(torch.ones_like(phase), phase * 2 * math.pi)
    if given is not None:
        angle = torch.where(given.abs() > 1e-6, given / given.abs().clamp_min(1e-12), angle)
    return angle


def _crossfade(keep: torch.Tensor) -> torch.Tensor:
    """The weight of the given audio per sample: ``keep`` (0/1) with linear crossfades over the
    last / first FADE kept samples at each edge (only there does the output differ from the
    given audio; Griffin-Lim rebuilt those samples from their own phase)."""
    ramp = keep.clone()
    k = keep.numpy()
    for e in np.flatnonzero(np.diff(k) != 0):
        if k[e] == 1:   # kept up to e, generated from e + 1
            n = min(FADE, e + 1)
            ramp[e + 1 - n:e + 1] = torch.minimum(ramp[e + 1 - n:e + 1], torch.linspace(1, 0, n + 2)[1:-1])
        else:           # generated up to e, kept from e + 1
            n = min(FADE, len(k) - e - 1)
            ramp[e + 1:e + 1 + n] = torch.minimum(ramp[e + 1:e + 1 + n], torch.linspace(0, 1, n + 2)[1:-1])
    return ramp


def _given(request) -> torch.Tensor:
    """The --init audio, refused (before any file is written) when too short to represent."""
    given = read_audio(request.init, "init", request.options["sample_rate"])
    if given.shape[0] < MIN_SAMPLES:
        raise polydiff.InvalidInputError(
            f"init: the audio is {given.shape[0]} samples ({given.shape[0] / mel.SAMPLE_RATE:g} s) at "
            f"{mel.SAMPLE_RATE} Hz; at least {MIN_SAMPLES} ({MIN_SECONDS:g} s) are needed")
    return given


def _canvas(given: torch.Tensor, seconds: float) -> torch.Tensor:
    """The given audio on a canvas of whole frames ``seconds`` long (zero-padded or cut)."""
    padded = torch.zeros(_frames(int(round(seconds * mel.SAMPLE_RATE))) * mel.HOP)
    padded[: min(given.shape[0], padded.shape[0])] = given[: padded.shape[0]]
    return padded


def _whole(request) -> tuple[float, torch.Tensor]:
    """style and denoise: the given clip's length and its canvas."""
    given = _given(request)
    seconds = given.shape[0] / mel.SAMPLE_RATE
    return seconds, _canvas(given, seconds)


def _plan(request, context, seconds: float, *constraints, padded=None, keep_samples=None,
          keep_frames=None, fade=None, x0=None, lead=None, info=None) -> polydiff.Plan:
    """The plan every task shares: the prompt's condition and a decode through Griffin-Lim that
    starts from the given audio's phase, keeps ``keep_samples`` of it (crossfaded), blends the
    sample towards ``x0`` by ``fade`` first (edit) and puts ``lead`` back in front (edit)."""
    n, samples = request.n, int(round(seconds * mel.SAMPLE_RATE))
    cond, uncond = context.condition(NAME, [request.prompt] * n)
    lead = torch.zeros(0) if lead is None else lead

    def decode(x):
        given_stft = None if padded is None else mel.stft(padded[None], x.shape[-1])
        angle = _angle(given_stft, x.shape[-1], request)
        if fade is not None:   # edit: the new sound fades back into the given audio in log-mel
            x = fade * x0 + (1 - fade) * x
        magnitude = mel.magnitude(x.float().cpu())
        if keep_samples is None:
            waves = mel.griffin_lim(magnitude, angle=angle)
        else:   # kept frames are the given audio's own STFT, held fixed
            waves = mel.griffin_lim(magnitude, angle=angle, known=given_stft, known_frames=keep_frames.cpu() == 1)
            ramp = _crossfade(keep_samples)
            waves = ramp * padded + (1 - ramp) * waves.clamp(-1, 1)
        return [torch.cat([lead, w[:samples].clamp(-1, 1)]) for w in waves]

    return polydiff.Plan(shape=(mel.N_MELS, _frames(samples)), cond=cond, uncond=uncond,
                         constraints=list(constraints), guidance=DEFAULT_GUIDANCE if request.prompt else 1.0,
                         decode=decode, info={"task": request.task, "seconds": seconds, **(info or {})})


def _encoded(padded: torch.Tensor, request, context) -> torch.Tensor:
    return mel.encode(padded[None]).to(context.device).expand(request.n, -1, -1)


def _keep(request, context, seconds, padded, keep_samples, taper: int = 0, **decode) -> polydiff.Plan:
    """continue and edit: the given audio's frames under ``keep_samples`` kept by replacement;
    ``taper`` frames of fade back into it after sampling (edit)."""
    keep_frames = _kept_frames(keep_samples, padded.shape[0] // mel.HOP).to(context.device)
    x0 = _encoded(padded, request, context)
    keep = polydiff.Replacement(x0, keep_frames[None, None], resample=request.options["resample"])
    fade = _taper(keep_frames, taper)[None, None] if taper else None
    return _plan(request, context, seconds, keep, padded=padded, keep_samples=keep_samples,
                 keep_frames=keep_frames, fade=fade, x0=x0, **decode)


def generate(request, context) -> polydiff.Plan:
    return _plan(request, context, request.options["seconds"])


def continue_(request, context) -> polydiff.Plan:
    given = _given(request)
    seconds = request.options["seconds"] or given.shape[0] / mel.SAMPLE_RATE + 1.0
    if seconds * mel.SAMPLE_RATE <= given.shape[0]:
        raise polydiff.InvalidInputError(
            f"seconds: continue makes the clip longer; {seconds:g} s is not more than the given "
            f"{given.shape[0] / mel.SAMPLE_RATE:g} s")
    padded = _canvas(given, seconds)
    keep_samples = torch.zeros_like(padded)
    keep_samples[: given.shape[0]] = 1
    return _keep(request, context, seconds, padded, keep_samples)


def edit(request, context) -> polydiff.Plan:
    given = _given(request)
    start, end = _span(request.options, given.shape[0])
    info = {"seconds": given.shape[0] / mel.SAMPLE_RATE, "start": start, "end": end}
    # every training clip starts its sound at the start, so on the whole clip's canvas a span
    # at 0.8 s came out as a note's tail (a bell: near silence); a canvas that starts just
    # before the span lets the new sound begin there. attack=False keeps the whole canvas,
    # for a variation that continues the sound around the span.
    cut = max(0, int(start * mel.SAMPLE_RATE) - EDIT_LEAD) // mel.HOP * mel.HOP if request.options["attack"] else 0
    lead, given = given[:cut], given[cut:]
    seconds = given.shape[0] / mel.SAMPLE_RATE
    padded = _canvas(given, seconds)
    keep_samples = torch.ones_like(padded)   # the padding past the clip too: it is trimmed
    keep_samples[int(round((start - cut / mel.SAMPLE_RATE) * mel.SAMPLE_RATE)):
                 int(round((end - cut / mel.SAMPLE_RATE) * mel.SAMPLE_RATE))] = 0
    return _keep(request, context, seconds, padded, keep_samples, taper=EDIT_TAPER, lead=lead, info=info)


def style(request, context) -> polydiff.Plan:
    seconds, padded = _whole(request)
    change = polydiff.SDEdit(_encoded(padded, request, context), request.options["strength"])
    return _plan(request, context, seconds, change, padded=padded)


def denoise(request, context) -> polydiff.Plan:
    seconds, padded = _whole(request)
    level = request.options["noise_level"] or estimate_noise(padded)
    x0 = subtract_noise(padded, level).to(context.device).expand(request.n, -1, -1)
    change = polydiff.SDEdit(x0, request.options["strength"])
    return _plan(request, context, seconds, change, padded=padded, info={"noise_level": level})


def estimate_noise(wave: torch.Tensor) -> float:
    """White-noise std from the mel magnitudes: most (band, frame) cells of a clip hold no
    partial, so their median over the white-noise profile is the noise level."""
    ratio = mel.mel_magnitude(wave[None])[0] / mel.white_noise_profile()
    return float(ratio.median())


def subtract_noise(wave: torch.Tensor, level: float) -> torch.Tensor:
    """Model-space log-mel of ``wave`` with OVERSUBTRACT x the white-noise floor taken off."""
    magnitude = mel.mel_magnitude(wave[None]) - OVERSUBTRACT * level * mel.white_noise_profile()
    return mel.from_mel_magnitude(magnitude.clamp_min(0))


def _span(options, length: int) -> tuple[float, float]:
    start, end = options["start"], options["end"]
    seconds = length / mel.SAMPLE_RATE
    if not start < end:
        raise polydiff.InvalidInputError(f"start, end: start ({start:g} s) must be before end ({end:g} s)")
    if end > seconds + 1e-9:
        raise polydiff.InvalidInputError(
            f"end: the span {start:g}-{end:g} s reaches outside the {seconds:g} s clip")
    return start, end


def _kept_frames(keep_samples: torch.Tensor, frames: int) -> torch.Tensor:
    """A frame is kept when every sample under its analysis window is kept, so frames that touch
    the regenerated span are regenerated. (The STFT's own padding past the ends is kept.)"""
    half = mel.N_FFT // 2
    padded = torch.nn.functional.pad(keep_samples[None, None], (half, half), value=1.0)
    lowest = -torch.nn.functional.max_pool1d(-padded, mel.N_FFT + 1, stride=mel.HOP)[0, 0]
    return lowest[:frames]


def _taper(keep: torch.Tensor, width: int) -> torch.Tensor:
    """``keep`` (0/1 per frame) ramped over the first ``width`` regenerated frames beside each
    kept run (at most a quarter of them): the given audio's weight when an edit's sample is
    blended with it after sampling (a soft Replacement mask would compound over the steps)."""
    width = min(width, int((keep < 1).sum()) // 4)
    soft = keep.clone()
    for d in range(1, width + 1):
        near = torch.nn.functional.max_pool1d(keep[None, None], 2 * d + 1, stride=1, padding=d)[0, 0]
        soft = torch.maximum(soft, near * (1 - d / (width + 1)))
    return soft


def _clip(noise: float = 0.0) -> np.ndarray:
    """A second of A4 fading out (plus a little tonal noise), for the tasks' examples."""
    t = np.arange(mel.SAMPLE_RATE) / mel.SAMPLE_RATE
    return (0.5 * np.sin(2 * np.pi * 440 * t) * np.minimum(1, (1 - t) * 10) + noise * np.sin(t * 27200)).astype(np.float32)


TASKS = [
    polydiff.Task("generate", "text to a clip (prompt, --seconds, default 2)", generate,
                  options=GenerateOptions, example={"prompt": "a sine playing A4", "seconds": 1.0, "steps": 2}),
    polydiff.Task("continue", "extend --init to --seconds in total (default: 1 s more), guided by the prompt",
                  continue_, options=ContinueOptions, needs=("init",),
                  example=lambda: {"prompt": "a sine playing A4", "init": _clip(), "seconds": 1.5, "steps": 2}),
    polydiff.Task("edit", "regenerate --start..--end seconds of --init from the prompt, keeping the rest "
                  "(--attack false: continue the sound around the span)", edit, options=EditOptions,
                  needs=("init",),
                  example=lambda: {"prompt": "a bell playing C5", "init": _clip(), "start": 0.25, "end": 0.75,
                                   "steps": 2}),
    polydiff.Task("style", "SDEdit: the notes of --init played as the prompt says (--strength in (0, 1])",
                  style, options=StyleOptions, needs=("init",),
                  example=lambda: {"prompt": "organ", "init": _clip(), "strength": 0.5, "steps": 2}),
    polydiff.Task("denoise", "clean a noisy --init (--strength: how much to regenerate, default 0.3)",
                  denoise, options=DenoiseOptions, needs=("init",),
                  example=lambda: {"init": _clip(noise=0.01), "steps": 2}),
]
