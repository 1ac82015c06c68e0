"""Noise schedules: ``x_t = alpha(t) * x0 + sigma(t) * eps`` for continuous ``t`` in [0, 1].

A schedule only defines ``alpha`` and ``sigma``; the log-SNR ``lam = log(alpha / sigma)`` and
its inverse come for free. Samplers read schedules through a precomputed ``Grid`` of Python
floats, so nothing here runs inside the sampling loop.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


class NoiseSchedule:
    """Base class. ``t_max`` is where sampling starts, ``t_min`` the smallest trained time."""

    name = "schedule"
    description = ""
    process = "gaussian"   # "masked" for the token schedules of ``polydiff.masked``
    t_min = 1e-3
    t_max = 1.0

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def lam(self, t: torch.Tensor) -> torch.Tensor:
        """Log signal-to-noise ratio log(alpha / sigma); decreasing in t."""
        return torch.log(self.alpha(t)) - torch.log(self.sigma(t))

    def t_of_lam(self, lam: torch.Tensor) -> torch.Tensor:
        """Inverse of ``lam`` by bisection in float64 (host-side only: used to build grids)."""
        lam = torch.as_tensor(lam, dtype=torch.float64)
        lo = torch.zeros_like(lam)
        hi = torch.ones_like(lam)
        for _ in range(80):
            mid = (lo + hi) / 2
            above = self.lam(mid) > lam  # lam decreases with t: root lies at larger t
            lo = torch.where(above, mid, lo)
            hi = torch.where(above, hi, mid)
        return (lo + hi) / 2

    def alpha_sigma(self, t) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha(t), sigma(t)); a schedule overrides it where the two share work."""
        return self.alpha(t), self.sigma(t)

    def floats(self, t: float) -> tuple[float, float]:
        """(alpha, sigma) at one time, as Python floats."""
        tt = torch.tensor(float(t), dtype=torch.float64)
        return float(self.alpha(tt)), float(self.sigma(tt))

    def __repr__(self):
        return f"<schedule {self.name}>"


class VPSchedule(NoiseSchedule):
    """Variance preserving: alpha^2 + sigma^2 = 1, defined by log(alpha^2) = log_alpha_bar(t)."""

    def log_alpha_bar(self, t) -> torch.Tensor:
        raise NotImplementedError

    def alpha(self, t) -> torch.Tensor:
        return torch.exp(0.5 * self.log_alpha_bar(t))

    def sigma(self, t) -> torch.Tensor:
        return torch.sqrt(-torch.expm1(self.log_alpha_bar(t)))

    def alpha_sigma(self, t) -> tuple[torch.Tensor, torch.Tensor]:
        lab = self.log_alpha_bar(t)  # once for both: it is most of a grid's set-up cost
        return torch.exp(0.5 * lab), torch.sqrt(-torch.expm1(lab))

    def lam(self, t) -> torch.Tensor:
        lab = self.log_alpha_bar(t)
        return 0.5 * lab - 0.5 * torch.log(-torch.expm1(lab))

    @staticmethod
    def _lab_of_lam(lam):
        """log(alpha^2) at log-SNR ``lam`` (alpha^2 = sigmoid(2 lam)), in float64."""
        return -torch.nn.functional.softplus(-2 * torch.as_tensor(lam, dtype=torch.float64))


class VPLinear(VPSchedule):
    """DDPM's linear betas (1e-4 to 0.02 over 1000 steps) as a continuous-time schedule."""

    name = "vp-linear"
    description = "DDPM linear betas, continuous time (beta 0.1 -> 20)"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0):
        self.beta_min, self.beta_max = beta_min, beta_max

    def log_alpha_bar(self, t) -> torch.Tensor:
        t = torch.as_tensor(t)
        return -(self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t**2)

    def t_of_lam(self, lam) -> torch.Tensor:
        """Closed form: the positive root of beta_min t + (beta_max - beta_min) t^2 / 2 = -lab."""
        lab = self._lab_of_lam(lam)
        a, b = 0.5 * (self.beta_max - self.beta_min), self.beta_min
        if a == 0:
            return (-lab / b).clamp(0.0, 1.0)
        t = 2 * (-lab) / (b + torch.sqrt(b * b + 4 * a * (-lab)))  # the stable form of the root
        return t.clamp(0.0, 1.0)


class VPScaledLinear(VPSchedule):
    """Stable Diffusion's scaled-linear betas: sqrt(beta) linear from sqrt(0.00085) to sqrt(0.012)."""

    name = "scaled-linear"
    description = "Stable Diffusion's scaled-linear betas, continuous time"

    def __init__(self, beta_start: float = 0.00085, beta_end: float = 0.012, steps: int = 1000):
        self.a, self.b, self.steps = math.sqrt(beta_start), math.sqrt(beta_end), steps

    def log_alpha_bar(self, t) -> torch.Tensor:
        t = torch.as_tensor(t)
        a, d = self.a, self.b - self.a
        return -self.steps * (a * a * t + a * d * t**2 + d * d * t**3 / 3)


class VPCosine(VPSchedule):
    """Improved-DDPM cosine schedule (offset s = 0.008); stops short of t = 1 where alpha = 0."""

    name = "vp-cosine"
    description = "cosine alpha_bar (Nichol & Dhariwal), offset 0.008"
    t_max = 0.999

    def __init__(self, s: float = 0.008):
        self.s = s

    def log_alpha_bar(self, t) -> torch.Tensor:
        t = torch.as_tensor(t)
        f = lambda u: torch.log(torch.cos((u + self.s) / (1 + self.s) * math.pi / 2) ** 2)  # noqa: E731
        return f(t) - f(torch.zeros_like(t))

    def t_of_lam(self, lam) -> torch.Tensor:
        """Closed form: cos((t + s) / (1 + s) pi / 2)^2 = alpha_bar * cos(s / (1 + s) pi / 2)^2."""
        lab = self._lab_of_lam(lam)
        c0 = math.cos(self.s / (1 + self.s) * math.pi / 2)
        angle = torch.arccos((torch.exp(0.5 * lab) * c0).clamp(max=1.0))
        return (angle * (2 / math.pi) * (1 + self.s) - self.s).clamp(0.0, 1.0)


class DiscreteVP(VPSchedule):
    """A discrete-time VP schedule given by ``alphas_cumprod[k]``, k = 0 .. N-1 (DDPM's and
    diffusers' convention), in continuous time: timestep k sits at ``t = (k + 1) / N`` and
    log(alpha_bar) is interpolated linearly between neighbouring timesteps (and from 0 at t = 0),
    so the schedule takes exactly the discrete values on the grid. ``timestep(t)`` maps back."""

    name = "discrete-vp"
    description = "a discrete alphas_cumprod table (N steps) in continuous time"

    def __init__(self, alphas_cumprod):
        ac = torch.as_tensor(alphas_cumprod, dtype=torch.float64).reshape(-1)
        if len(ac) < 2 or not ((ac > 0) & (ac < 1)).all() or not (ac[1:] < ac[:-1]).all():
            raise ValueError("alphas_cumprod must decrease strictly inside (0, 1)")
        self.steps = len(ac)
        self.t_min = 1.0 / self.steps
        self._knots = {torch.device("cpu"): torch.cat([torch.zeros(1, dtype=torch.float64), ac.log()])}

    @classmethod
    def linear(cls, beta_start: float = 1e-4, beta_end: float = 0.02, steps: int = 1000) -> "DiscreteVP":
        """DDPM's linear betas (betas in float32, as diffusers computes them)."""
        betas = torch.linspace(beta_start, beta_end, steps, dtype=torch.float32)
        return cls(torch.cumprod(1.0 - betas, dim=0))

    def log_alpha_bar(self, t) -> torch.Tensor:
        t = torch.as_tensor(t)
        knots = self._knots.get(t.device)
        if knots is None:
            knots = self._knots[t.device] = self._knots[torch.device("cpu")].to(t.device)
        u = t.to(torch.float64).clamp(0.0, 1.0) * self.steps
        k = u.floor().clamp(max=self.steps - 1)
        frac = u - k
        k = k.long()
        return knots[k] * (1 - frac) + knots[k + 1] * frac

    def t_of_lam(self, lam) -> torch.Tensor:
        """Exact: the segment of the log(alpha_bar) table holding the level, then linear in it."""
        lab = self._lab_of_lam(lam)
        knots = self._knots[torch.device("cpu")]                       # decreasing, knots[0] = 0
        k = torch.searchsorted(-knots, -lab).clamp(1, self.steps)      # knots[k-1] >= lab > knots[k]
        lo, hi = knots[k - 1], knots[k]
        t = (k - 1 + (lo - lab) / (lo - hi)) / self.steps
        return t.clamp(0.0, 1.0)

    def timestep(self, t) -> torch.Tensor:
        """The (fractional) discrete timestep index of time ``t``: ``t * N - 1``."""
        return torch.as_tensor(t) * self.steps - 1


class EDM(NoiseSchedule):
    """Variance exploding (EDM/Karras): alpha = 1, sigma = sigma_max * t."""

    name = "edm"
    description = "variance exploding, sigma in [0.002, 80] (Karras et al.)"

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0):
        self.sigma_max = sigma_max
        self.t_min = sigma_min / sigma_max

    def alpha(self, t) -> torch.Tensor:
        return torch.ones_like(torch.as_tensor(t))

    def sigma(self, t) -> torch.Tensor:
        return self.sigma_max * torch.as_tensor(t)

    def t_of_lam(self, lam) -> torch.Tensor:
        return torch.exp(-torch.as_tensor(lam, dtype=torch.float64)) / self.sigma_max


class RectifiedFlow(NoiseSchedule):
    """Rectified flow / linear interpolation: alpha = 1 - t, sigma = t."""

    name = "flow"
    description = "rectified flow, alpha = 1 - t, sigma = t"
    t_max = 0.999

    def alpha(self, t) -> torch.Tensor:
        return 1 - torch.as_tensor(t)

    def sigma(self, t) -> torch.Tensor:
        return torch.as_tensor(t)

    def t_of_lam(self, lam) -> torch.Tensor:
        return torch.sigmoid(-torch.as_tensor(lam, dtype=torch.float64))


@dataclass(frozen=True)
class Grid:
    """The times a sampling run visits, with alpha, sigma and log-SNR as Python floats.

    ``t`` decreases and ends at 0, where sigma = 0 and the log-SNR is +inf.
    """

    t: tuple[float, ...]
    alpha: tuple[float, ...]
    sigma: tuple[float, ...]
    lam: tuple[float, ...]
    schedule: NoiseSchedule | None = None  # for samplers that visit times between grid points

    @classmethod
    def build(cls, schedule: NoiseSchedule, times) -> "Grid":
        t = torch.tensor([float(v) for v in times], dtype=torch.float64)
        a, s = schedule.alpha_sigma(t)
        lam = [_log_snr(ai, si) for ai, si in zip(a.tolist(), s.tolist())]
        return cls(tuple(t.tolist()), tuple(a.tolist()), tuple(s.tolist()), tuple(lam), schedule)

    def __len__(self):
        return len(self.t) - 1  # number of steps


def _log_snr(alpha: float, sigma: float) -> float:
    if sigma <= 0:
        return math.inf
    if alpha <= 0:
        return -math.inf
    return math.log(alpha / sigma)
