"""The maths of adversarial diffusion (Denoising Diffusion GANs, Xiao et al. 2022), as pure
functions the ``Trainer`` uses when ``objective="ddgan"``.

A generator ``G(x_t, t, cond, z=z) -> x0_hat`` models each of a few large denoising steps:
from ``x_t`` it proposes a clean sample, and the forward process's posterior
``q(x_s | x_t, x0_hat)`` takes it to the next time ``s``. A discriminator
``D(x_s, x_t, t, cond) -> logit`` tells real pairs ``(x_s, x_t)`` from generated ones. Sampling
is the core's ``ddpm`` sampler (that same posterior step) over the trained times, so a DDGAN is
a backend like any other. One step (``few_steps=1``: from pure noise to data) is a plain
conditional GAN, the baseline DDGAN is measured against.

Diffusion-GAN (Wang et al. 2023, ``objective="diffusion-gan"``) keeps the one-step generator but
judges real and generated samples after the forward process has noised both to a random time
below a level that adapts to the discriminator (``adapt_level``): ``D(x_t, t, cond) -> logit``.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from .denoisers import _bcast


def trained_times(schedule, steps: int) -> list[float]:
    """The ``steps + 1`` times a few-step generator is trained and sampled on, from
    ``schedule.t_max`` to 0, even in t (DDGAN's 2-8 steps cover the whole process)."""
    t_max = float(schedule.t_max)
    return [t_max * (steps - k) / steps for k in range(steps + 1)]


def posterior(schedule, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, s: torch.Tensor,
              eps: torch.Tensor) -> torch.Tensor:
    """A draw of ``x_s ~ q(x_s | x_t, x0)`` for ``s < t`` (per row), with standard normal ``eps``:
    mean ``(a_ts s_s^2 x_t + a_s sig_ts^2 x0) / s_t^2``, variance ``sig_ts^2 s_s^2 / s_t^2``,
    where ``a_ts = a_t / a_s`` and ``sig_ts^2 = s_t^2 - a_ts^2 s_s^2``; ``s = 0`` gives ``x0``."""
    a_t, s_t = _bcast(schedule.alpha(t), x0), _bcast(schedule.sigma(t), x0)
    a_s, s_s = _bcast(schedule.alpha(s), x0), _bcast(schedule.sigma(s), x0)
    a_ts = a_t / a_s
    var_ts = (s_t**2 - a_ts**2 * s_s**2).clamp_min(0)
    mean = (a_ts * s_s**2 * xt + a_s * var_ts * x0) / s_t**2
    return mean + (var_ts * s_s**2 / s_t**2).sqrt() * eps


def adapt_level(level: torch.Tensor, confidence: torch.Tensor, target: float, step: float, low: float,
                high: float) -> torch.Tensor:
    """Diffusion-GAN's adaptive noise level (Wang et al. 2023): when the discriminator is surer
    of the real inputs than ``target`` (``confidence``: the mean sign of its logits on them) it
    is overfitting, so more noise; less otherwise. Moves by ``step``, kept in [low, high]."""
    return (level + step * torch.sign(confidence - target)).clamp(low, high)


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, kind: str = "non-saturating") -> torch.Tensor:
    """The discriminator's loss on the logits of real and generated inputs: the logistic loss
    (``softplus(-real) + softplus(fake)``) or the hinge (``relu(1 - real) + relu(1 + fake)``)."""
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss(fake: torch.Tensor, kind: str = "non-saturating") -> torch.Tensor:
    """The generator's loss on the discriminator's logits of its samples: non-saturating
    ``softplus(-fake)`` (Goodfellow et al.'s practical form) or, with the hinge, ``-fake``."""
    if kind == "hinge":
        return -fake.mean()
    return F.softplus(-fake).mean()


def r1_penalty(real_logits: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): the mean squared norm of the discriminator's gradient at the
    real inputs, the first ``len(real_logits)`` rows of ``inputs`` (which must require grad; any
    further rows, e.g. fakes judged in the same call, are left out); it keeps the discriminator
    smooth on the data."""
    (grad,) = torch.autograd.grad(real_logits.sum(), inputs, create_graph=True)
    return grad[: len(real_logits)].pow(2).flatten(1).sum(1).mean()
