"""The masked (absorbing-state) process for tokens: each token of ``x_0`` is kept with
probability ``alpha(t)`` and replaced by the mask token otherwise (MDLM, Sahoo et al. 2024).

A mask schedule is a ``NoiseSchedule`` whose ``sigma`` is the mask probability ``1 - alpha``,
so grids, spacings and the registry serve both processes; its log-SNR is the log-odds of a
token being visible. The denoiser predicts logits over the vocabulary for every position; the
training loss is the MDLM bound: cross-entropy on the masked positions weighted by
``-alpha'(t) / (1 - alpha(t))``.
"""
from __future__ import annotations

import math

import torch

from .schedules import NoiseSchedule


class MaskSchedule(NoiseSchedule):
    """Base class: define ``alpha(t)`` (1 at t = 0, 0 at t = 1) and its derivative ``dalpha``."""

    process = "masked"
    t_min = 1e-3
    t_max = 0.999   # a finite log-SNR at both ends, so every spacing works (all masked at the start)

    def sigma(self, t) -> torch.Tensor:
        return 1.0 - self.alpha(t)

    def dalpha(self, t) -> torch.Tensor:
        raise NotImplementedError

    def weight(self, t) -> torch.Tensor:
        """The ELBO weight of the cross-entropy at time t: ``-alpha'(t) / (1 - alpha(t))``."""
        return -self.dalpha(t) / self.sigma(t)


class MaskLinear(MaskSchedule):
    name = "mask-linear"
    description = "masked tokens: alpha(t) = 1 - t (MDLM's linear schedule; weight 1/t)"

    def alpha(self, t) -> torch.Tensor:
        return 1.0 - torch.as_tensor(t)

    def dalpha(self, t) -> torch.Tensor:
        return -torch.ones_like(torch.as_tensor(t))


class MaskCosine(MaskSchedule):
    name = "mask-cosine"
    description = "masked tokens: alpha(t) = cos(pi t / 2) (few tokens masked early on)"

    def alpha(self, t) -> torch.Tensor:
        return torch.cos(torch.as_tensor(t) * (math.pi / 2)).clamp_min(0.0)  # float32 cos(pi/2) < 0

    def dalpha(self, t) -> torch.Tensor:
        return -(math.pi / 2) * torch.sin(torch.as_tensor(t) * (math.pi / 2))


def never_mask(logits: torch.Tensor, mask_id: int) -> torch.Tensor:
    """``logits`` with the mask token ruled out: a denoised token is never the mask itself."""
    return logits.index_fill(-1, torch.tensor([mask_id], device=logits.device), -torch.inf)


def mask_tokens(x0: torch.Tensor, alpha: torch.Tensor, mask_id: int, u: torch.Tensor) -> torch.Tensor:
    """The forward process: token ``x0[i, l]`` [n, L] stays visible when ``u[i, l] < alpha[i]``
    (``u`` uniform on [0, 1), so with probability ``alpha``), else becomes ``mask_id``."""
    return torch.where(u < alpha.reshape(-1, *([1] * (x0.dim() - 1))), x0, torch.full_like(x0, mask_id))


def masked_loss(logits: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, weight: torch.Tensor,
                mask_id: int) -> torch.Tensor:
    """MDLM's bound per token: ``weight(t)`` x cross-entropy of ``x0`` at the masked positions
    of ``xt``, averaged over all positions (the visible ones contribute nothing)."""
    logits = never_mask(logits.float(), mask_id)
    nll = torch.nn.functional.cross_entropy(logits.flatten(0, -2), x0.flatten(), reduction="none")
    masked = (xt == mask_id).reshape(nll.shape).float()
    per_token = (nll * masked).reshape(x0.shape[0], -1).mean(dim=1)
    return (weight.float() * per_token).mean()
