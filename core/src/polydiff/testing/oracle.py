"""An exact denoiser for testing samplers: a mixture of isotropic Gaussians.

For data ``x0 ~ sum_k w_k N(mu_k, s_k^2 I)`` and ``x_t = alpha(t) x0 + sigma(t) eps`` the
posterior mean ``E[x0 | x_t]`` has a closed form, so a sampler run with ``denoiser`` can be
compared with true samples (``sample``), with a fine reference solve, or, for editing, with
the exact posterior given a linear observation ``A x0 = y`` (``posterior``, ``posterior_sample``).

Everything is computed in float64 and returned in the input's dtype. The denoiser uses only
tensor operations (no ``.item()``), so it adds no host synchronisation to a sampling loop, and
every row is computed on its own, so a sample's result does not depend on its batch.
"""
from __future__ import annotations

import functools
import math

import torch


class GaussianMixture:
    """``means`` [K, d], ``weights`` [K] (normalised here), ``std`` a scalar or [K] (one isotropic
    standard deviation per component), ``schedule`` a ``NoiseSchedule`` (or a registered name).

    Samples of any shape ``[n, *shape]`` with ``prod(shape) == d`` are accepted; they are
    flattened to ``[n, d]`` internally."""

    def __init__(self, means, weights, std, schedule="vp-linear"):
        if isinstance(schedule, str):
            from polydiff.registries import components

            schedule = components().schedules.get_named(schedule)
        self.schedule = schedule
        self.means = torch.as_tensor(means, dtype=torch.float64)
        k, self.dim = self.means.shape
        w = torch.as_tensor(weights, dtype=torch.float64)
        self.weights = w / w.sum()
        self.std = torch.as_tensor(std, dtype=torch.float64).expand(k).clone()
        if self.weights.shape != (k,) or (self.weights <= 0).any() or (self.std <= 0).any():
            raise ValueError("weights must be K positive numbers and std positive")

    # -- the exact denoiser ----------------------------------------------------------------

    def log_resp(self, x, t) -> torch.Tensor:
        """Log posterior component probabilities ``log p(k | x_t)``, shape [n, K]."""
        x = x.reshape(x.shape[0], -1).to(torch.float64)
        a, s = self._levels(t, x.shape[0])
        var = a**2 * self.std**2 + s**2                                   # [n, K]
        sq = ((x[:, None, :] - a[:, :, None] * self.means) ** 2).sum(-1)  # [n, K]
        logp = self.weights.log() - 0.5 * sq / var - 0.5 * self.dim * torch.log(2 * math.pi * var)
        return torch.log_softmax(logp, dim=1)

    def denoiser(self, x, t, cond=None) -> torch.Tensor:
        """``E[x0 | x_t = x]`` at time ``t`` (a float or a tensor of n times); same shape and
        dtype as ``x``."""
        xf = x.reshape(x.shape[0], -1).to(torch.float64)
        a, s = self._levels(t, x.shape[0])
        gain = a * self.std**2 / (a**2 * self.std**2 + s**2)                 # [n, K]
        per_k = self.means + gain[:, :, None] * (xf[:, None, :] - a[:, :, None] * self.means)
        x0 = (self.log_resp(xf, t).exp()[:, :, None] * per_k).sum(1)
        return x0.reshape(x.shape).to(x.dtype)

    __call__ = denoiser

    def _levels(self, t, n):
        """alpha(t), sigma(t) as [n, 1] float64 columns, for one time or one time per row."""
        t = t.to(torch.float64) if torch.is_tensor(t) else torch.tensor(t, dtype=torch.float64)
        t = t.reshape(-1).expand(n)
        return self.schedule.alpha(t)[:, None], self.schedule.sigma(t)[:, None]

    # -- true samples and exact conditionals ----------------------------------------------

    def sample(self, n: int, generator=None, return_labels: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``n`` true samples [n, d] in float64 (and their component labels)."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        x = self.means[k] + self.std[k, None] * z
        return (x, k) if return_labels else x

    def posterior(self, A, y) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The exact law of ``x0`` given ``A x0 = y`` (noiseless), for ``A`` [m, d] of rank m
        and ``y`` [n, m]: a mixture with weights [n, K] and means [n, K, d], and, within
        component k, covariance ``std[k]^2 * P`` with ``P = I - A^+ A`` (returned as [d, d]).

        A mask over coordinates is ``A = eye(d)[known_indices]``."""
        A = torch.as_tensor(A, dtype=torch.float64)
        y = torch.as_tensor(y, dtype=torch.float64).reshape(-1, A.shape[0])
        gram = A @ A.T
        resid = y[:, None, :] - self.means @ A.T                      # [n, K, m]
        sol = torch.linalg.solve(gram, resid.unsqueeze(-1)).squeeze(-1)  # (A A^T)^-1 resid
        var = self.std**2                                             # y | k ~ N(A mu_k, var_k A A^T)
        quad = (resid * sol).sum(-1) / var
        logp = self.weights.log() - 0.5 * quad - 0.5 * A.shape[0] * torch.log(var)
        weights = torch.softmax(logp, dim=1)
        means = self.means + sol @ A                                  # mu_k + A^+ (y - A mu_k)
        proj = torch.eye(self.dim, dtype=torch.float64) - torch.linalg.pinv(A) @ A
        return weights, means, proj

    def posterior_sample(self, A, y, n: int, generator=None) -> torch.Tensor:
        """``n`` exact samples of ``x0`` given ``A x0 = y`` for one observation ``y`` [m]."""
        weights, means, proj = self.posterior(A, y)
        k = torch.multinomial(weights[0], n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return means[0, k] + self.std[k, None] * (z @ proj)  # proj is symmetric and idempotent


def default_mixture(std: float = 0.6, schedule="vp-linear") -> GaussianMixture:
    """The kit's reference data: three overlapping 2-D Gaussians (order measurements)."""
    return GaussianMixture([[-2.0, -1.0], [2.0, 1.0], [0.0, 3.0]], [0.3, 0.5, 0.2], std, schedule)


def separated_mixture(schedule="vp-linear") -> GaussianMixture:
    """Three 2-D Gaussians 4+ apart (std 0.5): a sample's nearest mean is its component with
    probability > 0.9999, so weights, means and spreads of samples can be estimated directly."""
    return GaussianMixture([[-2.0, -2.0], [2.0, -2.0], [0.0, 2.5]], [0.5, 0.3, 0.2], 0.5, schedule)


@functools.lru_cache(maxsize=1)
def shared_mixture() -> GaussianMixture:
    """One ``default_mixture()`` per process, for checks that only need some oracle."""
    return default_mixture()
