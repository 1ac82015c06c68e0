"""One plan per image task, each built on the core's editing constraints."""
from __future__ import annotations

import math

import numpy as np
import polydiff
import torch
from pydantic import BaseModel, Field
from torch.nn import functional as F

from .backend import TEXT_ENCODER, TOKENS, from_model, to_model
from .data import SIZE
from .io import read_image

DEFAULT_GUIDANCE = 3.0
MIN_NOISE = 0.5 / 255  # denoise: the estimate's floor, the rounding noise of 8-bit pixels


class InpaintOptions(BaseModel):
    resample: int = Field(3, ge=1, le=20, description="RePaint resampling count")


# The default strength, measured (24 shapes, each img2img'd to another colour with a prompt of
# colour and shape only, "a blue circle"; the shipped checker reads the result): at 0.6 the
# colour changed 15/24 and shape, size and position were kept 16/24; 0.7: 20/24, 17/24;
# 0.8: 23/24, 17/24; 0.9: 24/24, 13/24. 0.8 changes what is asked and keeps the most.
class Img2ImgOptions(BaseModel):
    strength: float = Field(0.8, gt=0.0, le=1.0, description="SDEdit strength: how much to change")


class DenoiseOptions(BaseModel):
    noise_level: float | None = Field(None, gt=0.0, le=1.0,
                                      description="noise std in [0, 1] pixel units (estimated if omitted)")


def estimate_noise(image: torch.Tensor) -> float:
    """Noise std (pixel units) from the median absolute deviation of diagonal pixel
    differences, which flat regions and sharp edges barely move."""
    d = (image[:, 1:, 1:] - image[:, :-1, :-1]).flatten()
    return float(d.abs().median() / 0.6745 / math.sqrt(2))


def _own_space(context) -> polydiff.ModelSpace:
    """The shipped model's space: 32x32 pixels in [-1, 1], prompts by the shared text encoder."""
    def condition(prompts):
        return context.condition(TEXT_ENCODER, prompts, max_tokens=TOKENS)

    return polydiff.ModelSpace(shape=(3, SIZE, SIZE), data_shape=(3, SIZE, SIZE), encode=to_model,
                               decode=from_model, condition=condition)


def space_of(context) -> polydiff.ModelSpace:
    """Where this request samples: a backend's own space (a user's model, perhaps latent) or ours."""
    return context.model().space or _own_space(context)


def _plan(request, context, *constraints, guidance: float = DEFAULT_GUIDANCE) -> polydiff.Plan:
    space = space_of(context)
    cond, uncond = space.condition([request.prompt or ""] * request.n)
    return polydiff.Plan(shape=tuple(space.shape), cond=cond, uncond=uncond, constraints=list(constraints),
                         guidance=guidance, decode=lambda x: list(space.decode(x).cpu()),
                         info={"task": request.task})


def _batch(image, request, context):
    """The input image in model space, one row per sample."""
    x = space_of(context).encode(image[None].to(context.device))
    return x.expand(request.n, *x.shape[1:])


def _sized(value, field, context):
    image = read_image(value, field)
    h, w = space_of(context).data_shape[1:]
    if image.shape[1:] != (h, w):
        raise polydiff.InvalidInputError(f"{field}: expected a {w}x{h} image, got {image.shape[2]}x{image.shape[1]}")
    return image


def _pixel_space(task, context):
    space = space_of(context)
    if space.latent:
        raise polydiff.InvalidInputError(
            f"task: {task} constrains pixels, and backend {context.backend.name!r} samples in a latent space; "
            "use img2img or inpaint with this model")
    return space


def _prompted(request) -> float:
    """Guidance for tasks whose input carries the content: only when a prompt asks for more."""
    return DEFAULT_GUIDANCE if request.prompt else 1.0


def generate(request, context) -> polydiff.Plan:
    return _plan(request, context)


def inpaint(request, context) -> polydiff.Plan:
    image = _sized(request.init, "init", context)
    mask = read_image(request.mask, "mask")
    if mask.shape[1:] != image.shape[1:]:
        raise polydiff.InvalidInputError(
            f"mask: size {mask.shape[2]}x{mask.shape[1]} differs from init {image.shape[2]}x{image.shape[1]}")
    regenerate = (mask.mean(0, keepdim=True) >= 0.5).float()   # white = regenerate
    # in a smaller (latent) space a cell is kept only if every pixel it covers is
    cells = F.interpolate(regenerate[None], size=space_of(context).shape[-2:], mode="area")[0]
    keep = (cells == 0).float().to(context.device)
    return _plan(request, context, polydiff.Replacement(_batch(image, request, context), keep,
                                                        resample=request.options["resample"]))


def img2img(request, context) -> polydiff.Plan:
    image = _sized(request.init, "init", context)
    return _plan(request, context, polydiff.SDEdit(_batch(image, request, context), request.options["strength"]))


def super_resolution(request, context) -> polydiff.Plan:
    size = _pixel_space("super-resolution", context).data_shape[-1]
    low = read_image(request.init, "init")
    if low.shape[1] != low.shape[2] or size % low.shape[1] or low.shape[1] >= size:
        raise polydiff.InvalidInputError(
            f"init: super-resolution takes a square image whose side divides {size} ({size // 4} or {size // 2}), "
            f"got {low.shape[2]}x{low.shape[1]}")
    f = size // low.shape[1]
    op = polydiff.LinearOperator(lambda x: F.avg_pool2d(x, f), lambda y: F.interpolate(y, scale_factor=f, mode="nearest"))
    return _plan(request, context, polydiff.Measurement(op, _batch(low, request, context)),
                 guidance=_prompted(request))


def denoise(request, context) -> polydiff.Plan:
    _pixel_space("denoise", context)
    noisy = _sized(request.init, "init", context)
    # a clean or flat image estimates as (nearly) noiseless: start at the least noise a pixel holds
    level = request.options["noise_level"] or max(estimate_noise(noisy), MIN_NOISE)
    start = polydiff.FromNoisy(_batch(noisy, request, context), 2 * level, context.model().schedule)
    return _plan(request, context, start, guidance=_prompted(request))   # 2: pixels -> [-1, 1]


def _image():
    from .data import render

    return render("red", "circle", "large", "center").transpose(1, 2, 0)


def _half_mask():
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[:, SIZE // 2:] = 1
    return mask


TASKS = [
    polydiff.Task("generate", "text to image (prompt, n, guidance)", generate,
                  example={"prompt": "a red circle", "steps": 2}),
    polydiff.Task("inpaint", "regenerate the white part of --mask in --init, guided by the prompt",
                  inpaint, options=InpaintOptions, needs=("init", "mask"),
                  example=lambda: {"prompt": "a red circle", "init": _image(), "mask": _half_mask(), "steps": 2}),
    polydiff.Task("img2img", "SDEdit: change --init towards the prompt (--strength in (0, 1])",
                  img2img, options=Img2ImgOptions, needs=("init",),
                  example=lambda: {"prompt": "a blue circle", "init": _image(), "strength": 0.5, "steps": 2}),
    polydiff.Task("super-resolution", "8x8 or 16x16 --init -> 32x32, consistent with the input",
                  super_resolution, needs=("init",),
                  example=lambda: {"init": _image().reshape(8, 4, 8, 4, 3).mean(axis=(1, 3)), "steps": 2}),
    polydiff.Task("denoise", "remove Gaussian noise from --init (--noise-level, or estimated)",
                  denoise, options=DenoiseOptions, needs=("init",),
                  example=lambda: {"init": np.clip(_image() + 0.05, 0, 1), "noise_level": 0.05, "steps": 2}),
]
