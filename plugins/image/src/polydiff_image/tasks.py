"""Each image task as a sampling plan built on the core's editing constraints."""
from __future__ import annotations

import math

import numpy as np
import polydiff
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.nn import functional as F

from .backend import TEXT_ENCODER, encode_prompts, from_model, require_text_encoder, to_model
from .data import SIZE
from .images import read

DEFAULT_GUIDANCE = 3.0
DEFAULT_STRENGTH = 0.6


class ImageOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    noise_level: float | None = Field(None, gt=0.0, le=1.0, description="denoise: noise std in [0, 1] pixel units")
    resample: int = Field(3, ge=1, le=20, description="inpaint: RePaint resampling count")


class StartFromNoisy(polydiff.Constraint):
    """Denoising: a noisy image y = x + s n *is* x_t (scaled by alpha) at the time where
    sigma/alpha = s, so the run starts there from y itself, adding no noise."""

    def __init__(self, noisy: torch.Tensor, t_fraction: float):
        self.noisy, self.t_start = noisy, t_fraction

    def start(self, z, grid):
        return grid.alpha[0] * self.noisy


def estimate_noise(image: torch.Tensor) -> float:
    """Noise std (pixel units) from the median absolute deviation of diagonal pixel
    differences, which flat regions and sharp edges barely move."""
    d = (image[:, 1:, 1:] - image[:, :-1, :-1]).flatten()
    return float(d.abs().median() / 0.6745 / math.sqrt(2))


def _need(request, field):
    value = getattr(request, field)
    if value is None:
        raise polydiff.InvalidInputError(f"{field}: the {request.task} task needs --{field}")
    return value


def _batch(image, n, device):
    return to_model(image).to(device)[None].expand(n, -1, -1, -1)


def plan(request, context) -> polydiff.Plan:
    require_text_encoder()
    encoder = context.encoder(TEXT_ENCODER)
    n, task, device = request.n, request.task, context.device
    if request.strength is not None and task != "img2img":
        raise polydiff.InvalidInputError(f"strength: applies to img2img only, not {task}")
    cond = {k: v.to(device) for k, v in encode_prompts(encoder, [request.prompt or ""] * n).items()}
    uncond = {k: v.to(device) for k, v in encode_prompts(encoder, [""] * n).items()}
    constraints, guidance = [], DEFAULT_GUIDANCE
    if task == "inpaint":
        image = _square(read(_need(request, "init"), "init"), "init")
        mask = read(_need(request, "mask"), "mask")
        if mask.shape[1:] != image.shape[1:]:
            raise polydiff.InvalidInputError(
                f"mask: size {mask.shape[2]}x{mask.shape[1]} differs from init {image.shape[2]}x{image.shape[1]}")
        keep = (mask.mean(0, keepdim=True) < 0.5).float().to(device)   # white = regenerate
        constraints.append(polydiff.Replacement(_batch(image, n, device), keep, resample=request.options["resample"]))
    elif task == "img2img":
        image = _square(read(_need(request, "init"), "init"), "init")
        constraints.append(polydiff.SDEdit(_batch(image, n, device), request.strength or DEFAULT_STRENGTH))
    elif task == "super-resolution":
        low = read(_need(request, "init"), "init")
        if low.shape[1] != low.shape[2] or SIZE % low.shape[1] or low.shape[1] >= SIZE:
            raise polydiff.InvalidInputError(
                f"init: super-resolution takes a square image whose side divides {SIZE} (8 or 16), "
                f"got {low.shape[2]}x{low.shape[1]}")
        f = SIZE // low.shape[1]
        op = polydiff.LinearOperator(lambda x: F.avg_pool2d(x, f), lambda y: F.interpolate(y, scale_factor=f, mode="nearest"))
        constraints.append(polydiff.Measurement(op, _batch(low, n, device)))
        guidance = 1.0 if not request.prompt else guidance
    elif task == "denoise":
        noisy = _square(read(_need(request, "init"), "init"), "init")
        level = request.options["noise_level"] or estimate_noise(noisy)
        schedule = context.model().schedule
        t = float(schedule.t_of_lam(torch.tensor(-math.log(2 * level), dtype=torch.float64)))
        constraints.append(StartFromNoisy(_batch(noisy, n, device), min(t / schedule.t_max, 1.0)))
        guidance = 1.0 if not request.prompt else guidance
    return polydiff.Plan(shape=(3, SIZE, SIZE), cond=cond, uncond=uncond, constraints=constraints,
                         guidance=guidance, decode=lambda x: list(from_model(x).cpu()),
                         info={"task": task})


def _square(image, field):
    if image.shape[1:] != (SIZE, SIZE):
        raise polydiff.InvalidInputError(f"{field}: expected a {SIZE}x{SIZE} image, got {image.shape[2]}x{image.shape[1]}")
    return image


def examples(task: str) -> dict:
    """Small valid generate() arguments for each task (run by the conformance kit)."""
    from .data import render

    image = render("red", "circle", "large", "center").transpose(1, 2, 0)
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[:, SIZE // 2:] = 1
    small = image.reshape(8, 4, 8, 4, 3).mean(axis=(1, 3))
    return {
        "generate": {"prompt": "a red circle", "steps": 2},
        "inpaint": {"prompt": "a red circle", "init": image, "mask": mask, "steps": 2},
        "img2img": {"prompt": "a blue circle", "init": image, "strength": 0.5, "steps": 2},
        "super-resolution": {"init": small, "steps": 2},
        "denoise": {"init": np.clip(image + 0.05, 0, 1), "noise_level": 0.05, "steps": 2},
    }[task]
