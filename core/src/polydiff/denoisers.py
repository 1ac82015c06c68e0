"""The denoiser contract ``D(x_t, t, cond) -> x0_hat`` and the adapters that produce it.

Networks predict eps, v, x0 or flow velocity; ``as_denoiser`` turns any of them into an x0
predictor for a schedule, and ``guided`` applies classifier-free guidance with both branches
in one batched call. Samplers only ever see x0_hat.
"""
from __future__ import annotations

from typing import Callable

import torch

from .errors import InvalidInputError

PREDICTIONS = ("eps", "v", "x0", "flow", "logits")  # logits: the masked process's denoiser


def _bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


def x0_from(prediction: str, out, x, alpha, sigma) -> torch.Tensor:
    """x0 implied by a network output of the given kind (alpha, sigma broadcast to x)."""
    if prediction == "x0":
        return out
    if prediction == "eps":
        return (x - sigma * out) / alpha
    if prediction == "v":  # v = alpha * eps - sigma * x0
        return (alpha * x - sigma * out) / (alpha**2 + sigma**2)
    if prediction == "flow":  # u = eps - x0
        return (x - sigma * out) / (alpha + sigma)
    raise InvalidInputError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")


def target_for(prediction: str, x0, eps, alpha, sigma) -> torch.Tensor:
    """The training target of a network of the given kind; the inverse of ``x0_from``."""
    if prediction == "x0":
        return x0
    if prediction == "eps":
        return eps
    if prediction == "v":
        return alpha * eps - sigma * x0
    if prediction == "flow":
        return eps - x0
    raise InvalidInputError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")


def as_denoiser(net, schedule, prediction: str = "eps") -> Callable[..., torch.Tensor]:
    """Wrap ``net(x, t, cond)`` predicting ``prediction`` into ``D(x, t, cond) -> x0_hat``;
    logits become log-probabilities, so guidance mixes log-probabilities (as it mixes x0)."""
    if prediction not in PREDICTIONS:
        raise InvalidInputError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    if prediction == "logits":
        def token_denoiser(x, t, cond=None):
            return torch.log_softmax(net(x, t, cond).float(), dim=-1).clamp_min(-1e4)  # no -inf - -inf

        token_denoiser.schedule, token_denoiser.prediction = schedule, prediction
        return token_denoiser

    def denoiser(x, t, cond=None, **latent):  # latent: a generator's z (see LoadedModel.latent)
        a, s = _bcast(schedule.alpha(t), x), _bcast(schedule.sigma(t), x)
        return x0_from(prediction, net(x, t, cond, **latent), x, a, s)

    denoiser.schedule, denoiser.prediction = schedule, prediction
    return denoiser


def _cat(a, b):
    if a is None:
        return None
    if isinstance(a, torch.Tensor):
        return torch.cat([a, b])
    if isinstance(a, dict):
        return {k: _cat(a[k], b[k]) for k in a}
    if isinstance(a, (list, tuple)):
        return type(a)(list(a) + list(b))
    raise InvalidInputError(f"cannot batch a condition of type {type(a).__name__}")


def guided(denoiser, cond, uncond, scale: float) -> Callable[..., torch.Tensor]:
    """Classifier-free guidance: D_u + scale * (D_c - D_u), both branches in one call."""
    if scale == 1.0 or uncond is None:
        return lambda x, t, _c=None, **latent: denoiser(x, t, cond, **latent)
    both = _cat(cond, uncond)

    def guided_denoiser(x, t, _cond=None, **latent):  # both branches see the same z
        latent = {k: torch.cat([v, v]) for k, v in latent.items()}
        out_c, out_u = denoiser(torch.cat([x, x]), torch.cat([t, t]), both, **latent).chunk(2)
        return out_u + scale * (out_c - out_u)

    return guided_denoiser
