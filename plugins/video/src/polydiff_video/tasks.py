"""One plan per video task. Every task but ``style`` is the same sampling run with a different
set of known frames: the known frames go to the network as its context and are held by the
core's ``Replacement`` constraint, the rest are sampled. ``style`` is ``SDEdit`` over the whole
clip with one noise image shared by all frames."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import polydiff
import torch
from pydantic import BaseModel, Field

from .backend import TEXT_ENCODER, TOKENS, from_model, to_model
from .data import FPS, FRAMES, SIZE
from .io import MAX_FRAMES, read_clip

GUIDANCE = 3.0          # text-to-video
EDIT_GUIDANCE = 2.0     # tasks whose known frames carry most of the content, when prompted
MAX_GRID = 8            # interpolate: the finest time step is 1/8 of an input frame interval


class Playback(BaseModel):
    fps: float = Field(FPS, gt=0, le=60, description="playback rate of the written GIF/MP4")


class GenerateOptions(Playback):
    frames: int = Field(FRAMES, ge=1, le=MAX_FRAMES, description="clip length in frames")


class PredictOptions(Playback):
    frames: int = Field(4, ge=1, le=MAX_FRAMES, description="new frames to add")
    backward: bool = Field(False, description="predict the frames before the clip instead of after")


class InterpolateOptions(Playback):
    factor: float = Field(2.0, gt=0, le=MAX_GRID, description=(
        "output frames per input frame interval: 2 = twice as slow (one new frame between each "
        "pair), 0.5 = twice as fast, 2/3 = 1.5x as fast with generated in-between frames"))


class EditOptions(Playback):
    start: int = Field(..., ge=0, description="first frame to regenerate (0-based)")
    end: int | None = Field(None, ge=1, description="one past the last frame to regenerate (default: the end)")


class StyleOptions(Playback):
    strength: float = Field(0.6, gt=0.0, le=1.0, description="SDEdit strength: how much to change")
    shared_noise: bool = Field(True, description="one noise image for every frame (temporal consistency)")


class SharedNoiseSDEdit(polydiff.SDEdit):
    """SDEdit whose starting noise is the same image in every frame of a clip, so that what the
    noise adds does not flicker from frame to frame."""

    def start(self, z: torch.Tensor, grid) -> torch.Tensor:
        return super().start(z[:, :1].expand_as(z), grid)


def _text(request, context) -> tuple[dict, dict]:
    cond, uncond = context.condition(TEXT_ENCODER, [request.prompt] * request.n, max_tokens=TOKENS)
    keep = ("tokens", "mask")
    return {k: cond[k] for k in keep}, {k: uncond[k] for k in keep}


def _plan(request, context, clip: torch.Tensor, known: torch.Tensor, out: slice, guidance: float,
          exact: torch.Tensor | None = None, constraints=None, info=None) -> polydiff.Plan:
    """The plan of one sampling run over ``clip`` ([L, 3, H, W] in [0, 1], L >= FRAMES; only the
    frames flagged in ``known`` are used); ``out`` selects the frames to return. ``exact`` (a 0/1
    vector like ``known``) marks frames returned as the very input pixels."""
    n, dev = request.n, context.device
    frames = clip.shape[0]
    model_clip = to_model(clip).to(dev)[None].expand(n, -1, -1, -1, -1)
    flags = known.to(dev, torch.float32)[None].expand(n, -1)
    ctx = model_clip * flags[:, :, None, None, None]
    cond, uncond = _text(request, context)
    cond.update(context=ctx, known=flags)
    uncond.update(context=ctx, known=flags)
    if constraints is None:
        constraints = [polydiff.Replacement(ctx, flags[:, :, None, None, None])] if known.any() else []
    exact = known if exact is None else exact
    source = clip.cpu()

    def decode(x):
        pixels = from_model(x).cpu()
        pixels[:, exact.bool()] = source[exact.bool()]  # bit-exact input frames, not a round trip
        return list(pixels[:, out])

    return polydiff.Plan(shape=(frames, 3, SIZE, SIZE), cond=cond, uncond=uncond, constraints=constraints,
                         guidance=guidance, decode=decode,
                         info={"task": request.task, "frames": len(range(frames)[out]), **(info or {})})


def _prompted(request) -> float:
    return EDIT_GUIDANCE if request.prompt else 1.0


def _timeline(length: int) -> int:
    """Frames one sampling run holds: at least the model's window."""
    return max(length, FRAMES)


def _budget(field: str, frames: int) -> None:
    if frames > MAX_FRAMES:
        raise polydiff.InvalidInputError(
            f"{field}: the result would have {frames} frames, over the budget of {MAX_FRAMES} frames per clip")


def generate(request, context) -> polydiff.Plan:
    frames = request.options["frames"]
    length = _timeline(frames)
    blank = torch.zeros(length, 3, SIZE, SIZE)
    return _plan(request, context, blank, torch.zeros(length), slice(0, frames), GUIDANCE)


def predict(request, context) -> polydiff.Plan:
    given = read_clip(request.init, "init")
    new, backward = request.options["frames"], request.options["backward"]
    total = given.shape[0] + new
    _budget("frames", total)
    length = _timeline(total)
    clip = torch.zeros(length, 3, SIZE, SIZE)
    known = torch.zeros(length)
    # forward: the given frames first, padding (sampled, then dropped) after the new ones;
    # backward: the given frames last, padding before the new ones
    first = length - given.shape[0] if backward else 0
    clip[first:first + given.shape[0]] = given
    known[first:first + given.shape[0]] = 1
    out = slice(length - total, length) if backward else slice(0, total)
    return _plan(request, context, clip, known, out, _prompted(request), info={"given": given.shape[0], "new": new})


def grid_of(factor: float) -> tuple[int, int]:
    """``factor`` as p/q: the run samples at 1/p of an input interval and keeps every q-th frame."""
    ratio = Fraction(factor).limit_denominator(MAX_GRID)
    if ratio <= 0:
        raise polydiff.InvalidInputError(f"factor: {factor} is too small (at least 1/{MAX_GRID})")
    if ratio.numerator > MAX_GRID:
        raise polydiff.InvalidInputError(f"factor: {factor} needs steps finer than 1/{MAX_GRID} of a frame")
    return ratio.numerator, ratio.denominator


def interpolate(request, context) -> polydiff.Plan:
    given = read_clip(request.init, "init")
    if given.shape[0] < 2:
        raise polydiff.InvalidInputError("init: interpolation needs a clip of at least 2 frames")
    p, q = grid_of(request.options["factor"])
    fine = (given.shape[0] - 1) * p + 1
    _budget("factor", fine)
    length = _timeline(fine)
    clip = torch.zeros(length, 3, SIZE, SIZE)
    known = torch.zeros(length)
    clip[0:fine:p] = given
    known[0:fine:p] = 1
    return _plan(request, context, clip, known, slice(0, fine, q), _prompted(request),
                 info={"grid": [p, q], "given": given.shape[0]})


def edit(request, context) -> polydiff.Plan:
    given = read_clip(request.init, "init")
    frames = given.shape[0]
    start, end = request.options["start"], request.options["end"]
    end = frames if end is None else end
    if not start < end <= frames:
        raise polydiff.InvalidInputError(
            f"start/end: the span {start}..{end} is not inside the clip of {frames} frames "
            f"(need 0 <= start < end <= {frames})")
    length = _timeline(frames)
    clip = torch.zeros(length, 3, SIZE, SIZE)
    clip[:frames] = given
    known = torch.zeros(length)
    known[:frames] = 1
    known[start:end] = 0
    return _plan(request, context, clip, known, slice(0, frames),
                 GUIDANCE if request.prompt else 1.0, info={"span": [start, end]})


def style(request, context) -> polydiff.Plan:
    given = read_clip(request.init, "init")
    frames = given.shape[0]
    length = _timeline(frames)
    clip = torch.zeros(length, 3, SIZE, SIZE)
    clip[:frames] = given
    clip[frames:] = given[-1]  # padding frames start from the last one
    init = to_model(clip).to(context.device)[None].expand(request.n, -1, -1, -1, -1)
    kind = SharedNoiseSDEdit if request.options["shared_noise"] else polydiff.SDEdit
    return _plan(request, context, clip, torch.zeros(length), slice(0, frames), GUIDANCE,
                 constraints=[kind(init, request.options["strength"])], info={"strength": request.options["strength"]})


def example_clip(motion: str = "right", frames: int = FRAMES) -> np.ndarray:
    """A red circle clip [T, H, W, 3] in [0, 1], for the task examples and tests."""
    from .data import clip

    video, _ = clip("red", "circle", motion, np.random.default_rng(0), frames=frames)
    return video.transpose(0, 2, 3, 1)


TASKS = [
    polydiff.Task("generate", "text to video (--frames, --fps)", generate, options=GenerateOptions,
                  example={"prompt": "a red circle moving to the right", "steps": 2}),
    polydiff.Task("predict", "continue --init by --frames new frames (--backward: before it)", predict,
                  options=PredictOptions, needs=("init",),
                  example=lambda: {"init": example_clip()[:4], "frames": 4, "steps": 2}),
    polydiff.Task("interpolate", "change speed: --factor 2 slow motion, 0.5 twice as fast, "
                  "non-integer steps generate in-between frames", interpolate, options=InterpolateOptions,
                  needs=("init",), example=lambda: {"init": example_clip()[::2], "factor": 2, "steps": 2}),
    polydiff.Task("edit", "regenerate frames --start..--end of --init from the prompt, keep the rest",
                  edit, options=EditOptions, needs=("init",),
                  example=lambda: {"prompt": "a blue square moving to the right", "init": example_clip(),
                                   "start": 3, "end": 6, "steps": 2}),
    polydiff.Task("style", "SDEdit the whole clip towards the prompt (--strength), noise shared across frames",
                  style, options=StyleOptions, needs=("init",),
                  example=lambda: {"prompt": "a blue circle moving to the right", "init": example_clip(),
                                   "strength": 0.5, "steps": 2}),
]
