"""Step spacings: which times a sampling run visits, separate from the noise schedule.

Each spacing maps ``(schedule, steps, t_start)`` to ``steps + 1`` decreasing times ending at 0.
The first is ``t_start`` for all but ``leading``, which (as diffusers' spacing of that name)
starts one stride below it; a sampling run starts its noise at whichever time comes first.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .errors import InvalidInputError
from .schedules import NoiseSchedule


@dataclass(frozen=True)
class Spacing:
    name: str
    fn: Callable[[NoiseSchedule, int, float], list]
    description: str = ""
    starts_at_t_start: bool = True  # False: the first time may lie below t_start ("leading")

    def __call__(self, schedule: NoiseSchedule, steps: int, t_start: float | None = None) -> list[float]:
        if steps < 1:
            raise InvalidInputError(f"steps must be at least 1, got {steps}")
        t_start = schedule.t_max if t_start is None else float(t_start)
        times = [float(v) for v in self.fn(schedule, steps, t_start)]
        return check_times(times)


def check_times(times) -> list[float]:
    """Validate an explicit time list: strictly decreasing, in [0, 1]; a final 0 is appended."""
    times = [float(v) for v in times]
    if not times:
        raise InvalidInputError("spacing: the time list is empty")
    if times[-1] != 0.0:
        times.append(0.0)
    if len(times) < 2 or any(b >= a for a, b in zip(times, times[1:])):
        raise InvalidInputError(f"spacing: times must strictly decrease to 0, got {times}")
    if times[0] > 1.0 or times[-1] < 0.0:
        raise InvalidInputError("spacing: times must lie in [0, 1]")
    return times


def _ends(schedule: NoiseSchedule, steps: int, t_start: float, values: torch.Tensor) -> list[float]:
    return values.tolist() + [0.0] if steps > 1 else [t_start, 0.0]


def uniform(schedule, steps, t_start) -> torch.Tensor:
    """Evaluations evenly spaced from t_start down to t_min, then a last step to 0."""
    t_min = min(schedule.t_min, t_start / (steps + 1))
    return _ends(schedule, steps, t_start, torch.linspace(t_start, t_min, steps, dtype=torch.float64))


def trailing(schedule, steps, t_start) -> torch.Tensor:
    """Evenly spaced from t_start to 0 inclusive (diffusers' "trailing")."""
    return torch.linspace(t_start, 0.0, steps + 1, dtype=torch.float64).tolist()


def leading(schedule, steps, t_start) -> list[float]:
    """diffusers' "leading": strides of t_start / steps from t_min up, the top one left out, so
    the first evaluation is at ``t_min + t_start (steps - 1) / steps`` (timesteps 900, 800, ..., 0
    of 1000 at 10 steps). Starting below t_max skips the highest noise levels, where x0 is
    about the data mean; diffusers' edge at 5 NFE on Gaussian mixtures comes mostly from this."""
    t_min = min(schedule.t_min, t_start / (steps + 1))
    return [t_min + t_start * (steps - 1 - i) / steps for i in range(steps)] + [0.0]


def karras(schedule, steps, t_start, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. (2022): sigma/alpha spaced uniformly in sigma^(1/rho), then 0."""
    t_min = min(schedule.t_min, t_start / 2)
    lo, hi = (-schedule.lam(torch.tensor(v, dtype=torch.float64)) for v in (t_min, t_start))
    s_max, s_min = torch.exp(hi), torch.exp(lo)
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    sig = (s_max ** (1 / rho) + ramp * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho
    out = schedule.t_of_lam(-torch.log(sig))
    out[0] = t_start
    return _ends(schedule, steps, t_start, out)


def logsnr(schedule, steps, t_start) -> torch.Tensor:
    """Uniform in log-SNR between t_start and t_min, then 0 (DPM-Solver's choice)."""
    t_min = min(schedule.t_min, t_start / 2)
    lam = schedule.lam(torch.tensor([t_start, t_min], dtype=torch.float64))
    out = schedule.t_of_lam(torch.linspace(float(lam[0]), float(lam[1]), steps, dtype=torch.float64))
    out[0] = t_start
    return _ends(schedule, steps, t_start, out)


def logsnr_window(schedule, steps, t_start) -> torch.Tensor:
    """Uniform in log-SNR over a window that widens with the number of steps, then 0.

    The window is ``[lo, hi]`` with ``hi = 1.5 ln(steps / 1.5)`` and ``lo = -max(2.5, hi - 0.5)``,
    clipped to the schedule's range; the first step goes from t_start straight to the window's
    second point. Rationale: for data of about unit scale (images in [-1, 1], normalised latents)
    E[x0 | x_t] hardly changes at log-SNR below about -3 (it is the data mean) nor above a few
    units (it has converged), so few steps are best spent inside; the window's top balances the
    error of the final jump to sigma = 0 (about e^(-2 hi)) against a third-order solver's step
    error (about h^3), and reaches the schedule's end, as plain ``logsnr``, for many steps.
    Measured in benchmarks/accuracy.py (and on two other mixtures while choosing the constants).
    """
    t_min = min(schedule.t_min, t_start / 2)
    lam_start, lam_end = (float(v) for v in schedule.lam(torch.tensor([t_start, t_min], dtype=torch.float64)))
    if steps == 1:
        return [t_start, 0.0]
    hi = min(1.5 * math.log(steps / 1.5), lam_end)
    lo = max(-max(2.5, hi - 0.5), lam_start)
    if not hi > lo:  # the window lies outside the range left to sample: plain log-SNR uniform
        lo, hi = lam_start, lam_end
    out = schedule.t_of_lam(torch.linspace(lo, hi, steps, dtype=torch.float64))
    out[0] = t_start
    return _ends(schedule, steps, t_start, out)


BUILTIN_SPACINGS = [
    Spacing("uniform", uniform, "even in t from t_max to t_min, then 0"),
    Spacing("linspace", uniform, "diffusers' name for uniform: even in t from t_max to t_min, then 0"),
    Spacing("leading", leading, "diffusers' leading: even in t from one stride below t_max to t_min, then 0",
            starts_at_t_start=False),
    Spacing("trailing", trailing, "even in t from t_max to 0"),
    Spacing("karras", karras, "Karras rho = 7 in sigma/alpha"),
    Spacing("logsnr", logsnr, "even in log-SNR"),
    Spacing("logsnr-window", logsnr_window, "even in log-SNR over a window that widens with the steps"),
]
