"""Modality-agnostic editing as constraints on a sampling run.

A constraint can choose where the run starts (``t_start``, ``start``), change what the
sampler's denoiser returns (``wrap``), change the state after every step (``after_step``) and
fix up the final sample (``finish``). Three mechanisms cover the editing tasks of every modality:

* ``Replacement`` – known values + mask, re-noised to the current level (inpainting,
  continuation, frame prediction, infilling), with RePaint-style resampling.
* ``SDEdit`` – start from a noised version of an input (img2img, style transfer).
* ``FromNoisy`` – start from a noisy input itself, at the time whose noise level matches its
  own (denoising).
* ``Measurement`` – consistency with ``y = A(x) + n``: projection when the operator has one,
  else a DPS-style gradient step through the denoiser (super-resolution, MRI, deblurring).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .errors import InvalidInputError


class Constraint:
    t_start: float | None = None  # start the run here instead of the schedule's t_max
    needs_grad = False            # True if ``wrap`` differentiates through the denoiser
    processes = ("gaussian",)     # the noise processes it applies to

    def start(self, z, grid) -> torch.Tensor:
        """Initial state from standard normal ``z`` at ``grid.t[0]``."""
        return grid.sigma[0] * z

    def wrap(self, model, grid, noise) -> Callable[..., torch.Tensor]:
        return model

    def after_step(self, i, x, grid, model, noise) -> torch.Tensor:
        """The state after sampler step ``i`` (now at ``grid.t[i + 1]``), possibly changed;
        ``model(x, t)`` is the run's (constrained) denoiser."""
        return x

    def finish(self, x) -> torch.Tensor:
        return x


def _check_like(name, value, x_shape):
    try:
        torch.broadcast_shapes(tuple(value.shape), tuple(x_shape))
    except RuntimeError:
        raise InvalidInputError(
            f"{name} has shape {tuple(value.shape)}, which does not fit samples of shape {tuple(x_shape)}"
        ) from None


class Replacement(Constraint):
    """Keep ``known`` where ``mask`` is 1; sample the rest. After every step the known part of
    the state is set to ``known`` noised to the current level. ``resample`` > 1 then repeats,
    ``resample - 1`` times, a jump back up one step (forward noising) and an ancestral step
    down again (RePaint's resampling), so the unknown part can catch up with the known part.
    A mask between 0 and 1 pulls towards ``known`` at every step, so the pull compounds: even
    0.25 ends close to ``known``. For a fade between known and new, blend after sampling.

    Integer ``known`` is tokens of the masked process: kept tokens are visible from the start
    and samplers never change a visible token, so the rest is sampled given them exactly."""

    processes = ("gaussian", "masked")

    def __init__(self, known: torch.Tensor, mask: torch.Tensor, resample: int = 1):
        if resample < 1:
            raise InvalidInputError(f"resample must be at least 1, got {resample}")
        _check_like("mask", mask, known.shape)
        self.tokens = not known.is_floating_point()
        self.known, self.resample = known, resample
        self.mask = mask.bool() if self.tokens else mask.to(known.dtype)

    def start(self, z, grid) -> torch.Tensor:
        if self.tokens:   # z is the all-mask state
            return torch.where(self.mask, self.known, z)
        return self.mask * (grid.alpha[0] * self.known) + grid.sigma[0] * z

    def wrap(self, model, grid, noise) -> Callable[..., torch.Tensor]:
        if self.tokens:
            return model
        known, mask = self.known, self.mask
        return lambda x, t: mask * known + (1 - mask) * model(x, t)

    def after_step(self, i, x, grid, model, noise) -> torch.Tensor:
        if self.tokens:   # a step hook may have changed the state: kept tokens stay kept
            return torch.where(self.mask, self.known, x)
        at, st, as_, ss = grid.alpha[i], grid.sigma[i], grid.alpha[i + 1], grid.sigma[i + 1]
        if ss == 0:
            return x  # the end: ``finish`` puts the known values in
        known, mask = self.known, self.mask
        a_ts = at / as_
        var_ts = max(st**2 - a_ts**2 * ss**2, 0.0)  # variance of x_t given x_s
        x = mask * (as_ * known + ss * noise(x)) + (1 - mask) * x
        for _ in range(self.resample - 1):
            xt = a_ts * x + math.sqrt(var_ts) * noise(x)
            x0 = model(xt, grid.t[i])
            x = (a_ts * ss**2 / st**2) * xt + (as_ * var_ts / st**2) * x0
            x = x + math.sqrt(var_ts * ss**2 / st**2) * noise(x)
            x = mask * (as_ * known + ss * noise(x)) + (1 - mask) * x
        return x

    def finish(self, x) -> torch.Tensor:
        if self.tokens:
            return torch.where(self.mask, self.known, x)
        return self.mask * self.known + (1 - self.mask) * x


class SDEdit(Constraint):
    """Start from ``init`` noised to ``strength`` (0 < strength <= 1) of the way to pure noise."""

    def __init__(self, init: torch.Tensor, strength: float):
        if not 0.0 < float(strength) <= 1.0:
            raise InvalidInputError(f"strength must be in (0, 1], got {strength}")
        self.init, self.t_start = init, float(strength)

    def start(self, z, grid) -> torch.Tensor:
        return grid.alpha[0] * self.init + grid.sigma[0] * z


class FromNoisy(Constraint):
    """Denoising: an input ``y = x + s n`` *is* ``x_t / alpha`` at the time where
    ``sigma / alpha = s``, so the run starts there from ``alpha * y``, adding no noise.
    ``noise_level`` is ``s`` in model-space units; ``schedule`` is the model's."""

    def __init__(self, noisy: torch.Tensor, noise_level: float, schedule):
        if not float(noise_level) > 0.0:
            raise InvalidInputError(f"noise level must be positive, got {noise_level}")
        lam = torch.tensor(-math.log(float(noise_level)), dtype=torch.float64)
        self.noisy = noisy
        self.t_start = min(float(schedule.t_of_lam(lam)) / schedule.t_max, 1.0)

    def start(self, z, grid) -> torch.Tensor:
        return grid.alpha[0] * self.noisy


class Operator:
    """A measurement operator ``A``. Define ``project`` when a closed-form projection onto
    {x : A(x) = y} exists; otherwise the gradient of ||y - A(x)|| is used."""

    def __call__(self, x):
        raise NotImplementedError

    project = None


class MaskOperator(Operator):
    """Observe the entries where ``mask`` is 1 (y has the full shape, zeros elsewhere)."""

    def __init__(self, mask):
        self.mask = mask

    def __call__(self, x):
        return self.mask * x

    def project(self, x, y) -> torch.Tensor:
        return self.mask * y + (1 - self.mask) * x


class LinearOperator(Operator):
    """``forward`` with a right inverse ``pinv`` (forward(pinv(y)) == y): projection is
    x + pinv(y - forward(x)). Average pooling with nearest upsampling is one such pair."""

    def __init__(self, forward, pinv):
        self.forward, self.pinv = forward, pinv

    def __call__(self, x):
        return self.forward(x)

    def project(self, x, y) -> torch.Tensor:
        return x + self.pinv(y - self.forward(x))


class FunctionOperator(Operator):
    """Any differentiable ``fn``; consistency by gradient steps only."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, x):
        return self.fn(x)


class Measurement(Constraint):
    """Consistency with ``y = A(x) + n``. ``mode``: "project", "gradient" (DPS) or "auto"
    (project when the operator can). ``step`` scales the DPS step, normalised per sample by the
    residual norm as in Chung et al. (2023)."""

    def __init__(self, operator: Operator, y: torch.Tensor, mode: str = "auto", step: float = 1.0):
        if mode not in ("auto", "project", "gradient"):
            raise InvalidInputError(f"mode must be auto, project or gradient, got {mode!r}")
        can_project = getattr(operator, "project", None) is not None
        if mode == "project" and not can_project:
            raise InvalidInputError(f"{type(operator).__name__} has no projection; use mode='gradient'")
        self.operator, self.y, self.step = operator, y, float(step)
        self.project = mode == "project" or (mode == "auto" and can_project)
        self.needs_grad = not self.project

    def wrap(self, model, grid, noise) -> Callable[..., torch.Tensor]:
        A, y = self.operator, self.y
        if self.project:
            return lambda x, t: A.project(model(x, t), y)

        def dps(x, t):
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                x0 = model(xg, t)
                resid = (y - A(x0)).flatten(1)
                norm = resid.norm(dim=1)
                (grad,) = torch.autograd.grad(norm.sum(), xg)
            return (x0 - self.step * grad).detach()

        return dps

    def finish(self, x) -> torch.Tensor:
        return self.operator.project(x, self.y) if self.project else x
