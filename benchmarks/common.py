"""Shared pieces of the polydiff-vs-diffusers benchmarks.

The oracle is the exact posterior mean ``E[x0 | x_t]`` of a Gaussian mixture, evaluated at an
explicit noise level ``(alpha, sigma)``: polydiff passes the levels of its schedule at the time
it asks for, diffusers the level its scheduler assigns to the current state (``sigmas[i]`` or
``alphas_cumprod[timestep]``), so both frameworks get the exact denoiser for the state they hold.
Both run on the same noise schedule: diffusers' default 1000-step linear betas, which polydiff
reproduces exactly with ``DiscreteVP`` (timestep k at t = (k + 1) / 1000).
"""
from __future__ import annotations

import math
import platform
import subprocess
import sys
from pathlib import Path

import polydiff
import torch
from polydiff.noise import SeededNoise
from polydiff.schedules import DiscreteVP
from polydiff.testing import GaussianMixture

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    """One line naming the hardware and versions, for the tables' captions."""
    try:
        import diffusers

        dv = diffusers.__version__
    except ImportError:  # pragma: no cover
        dv = "not installed"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{cpu}{gpu}; torch {torch.__version__}, diffusers {dv}, polydiff {polydiff.__version__}, "
            f"Python {sys.version.split()[0]}")


def load_note() -> str:
    """The machine's load when a timing starts: timings taken beside other work are flagged."""
    try:
        import os

        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        return ""
    cores = os.cpu_count() or 1
    busy = " (other work was running: timings are the fastest repeats, still disturbed)" if load > 0.5 * cores else ""
    return f"1-minute load average {load:.1f} on {cores} cores at the start{busy}"


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# -- the shared schedule and oracle ------------------------------------------------------------

def schedule() -> DiscreteVP:
    """diffusers' default schedule (linear betas 1e-4 .. 0.02, 1000 steps), exactly."""
    return DiscreteVP.linear(1e-4, 0.02, 1000)


def mixture(sch=None) -> GaussianMixture:
    """The 2-D, 3-component mixture of benchmarks/oracle_errors.py."""
    return GaussianMixture([[-2.0, -1.0], [2.0, 1.0], [0.0, 3.0]], [0.3, 0.5, 0.2], 0.6,
                           sch if sch is not None else schedule())


def posterior_mean(gm: GaussianMixture, x: torch.Tensor, alpha, sigma) -> torch.Tensor:
    """``E[x0 | x_t = x]`` when ``x = alpha x0 + sigma eps``; alpha, sigma scalars or [n]."""
    xf = x.reshape(x.shape[0], -1).to(torch.float64)
    n = xf.shape[0]
    a = torch.as_tensor(alpha, dtype=torch.float64).reshape(-1, 1).expand(n, 1)
    s = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1).expand(n, 1)
    var = a**2 * gm.std**2 + s**2                                            # [n, K]
    sq = ((xf[:, None, :] - a[:, :, None] * gm.means) ** 2).sum(-1)
    logp = gm.weights.log() - 0.5 * sq / var - 0.5 * gm.dim * torch.log(2 * math.pi * var)
    resp = torch.softmax(logp, dim=1)
    per_k = gm.means + (a * gm.std**2 / var)[:, :, None] * (xf[:, None, :] - a[:, :, None] * gm.means)
    return (resp[:, :, None] * per_k).sum(1).reshape(x.shape).to(x.dtype)


class PolydiffOracle:
    """The oracle as a polydiff denoiser ``D(x, t, cond)``, counting calls (one call = one NFE)."""

    def __init__(self, gm: GaussianMixture):
        self.gm, self.schedule, self.calls = gm, gm.schedule, 0

    def __call__(self, x, t, cond=None):
        self.calls += 1
        t = t.to(torch.float64)
        return posterior_mean(self.gm, x, self.schedule.alpha(t), self.schedule.sigma(t))


def initial_state(sch, n: int, dim: int, seed: int = 0) -> torch.Tensor:
    """x_T exactly as ``polydiff.sample`` draws it: per-sample seeded noise times sigma(t_max)."""
    z = SeededNoise.for_batch(seed, n, dtype=torch.float64).randn((dim,))
    return z * sch.floats(sch.t_max)[1]


def reference(gm: GaussianMixture, n: int, seed: int = 0, steps: int = 4000) -> torch.Tensor:
    """The exact probability-flow ODE endpoint (sigma = 0) from ``initial_state``: a Heun solve
    uniform in log-SNR from t_max down to log-SNR 12 (sigma 6e-6), then one denoising step."""
    sch = gm.schedule
    lam = [float(sch.lam(torch.tensor(sch.t_max, dtype=torch.float64))), 12.0]
    times = sch.t_of_lam(torch.linspace(lam[0], lam[1], steps, dtype=torch.float64)).tolist()
    times[0] = sch.t_max
    return polydiff.sample(PolydiffOracle(gm), (n, gm.dim), sampler="heun", spacing=times + [0.0],
                           schedule=sch, seed=seed, dtype=torch.float64)


def sliced_w1(a, b, projections=256, seed=0):
    """Sliced Wasserstein-1 distance between two equal-size point sets (see oracle_errors.py)."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(a.shape[1], projections, generator=g, dtype=torch.float64)
    dirs /= dirs.norm(dim=0)
    pa, pb = (a @ dirs).sort(0).values, (b @ dirs).sort(0).values
    return (pa - pb).abs().mean().item()


# -- driving a diffusers scheduler the way its pipelines do ----------------------------------

VE_SCHEDULERS = ("EulerDiscreteScheduler", "HeunDiscreteScheduler")  # work on x / alpha


def diffusers_scheduler(cls_name: str, **config):
    import diffusers

    cls = getattr(diffusers, cls_name)
    return cls(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
               prediction_type="epsilon", **config)


def diffusers_levels(scheduler, i: int, timestep):
    """(alpha, sigma) of the state the scheduler hands the model at its i-th call."""
    sigmas = getattr(scheduler, "sigmas", None)
    if sigmas is not None and len(sigmas) == len(scheduler.timesteps) + 1:
        s = float(sigmas[i])  # variance-exploding sigma = sigma / alpha
        return 1 / math.sqrt(1 + s * s), s / math.sqrt(1 + s * s)
    ab = float(scheduler.alphas_cumprod[int(timestep)])
    return math.sqrt(ab), math.sqrt(1 - ab)


def diffusers_sample(scheduler, steps: int, x_t: torch.Tensor, eps_model):
    """The loop of a diffusers pipeline: ``eps_model(x, t, i)`` is called once per NFE.
    ``x_t`` is the initial state in variance-preserving space; returns the final sample."""
    scheduler.set_timesteps(steps)
    x = x_t
    if type(scheduler).__name__ in VE_SCHEDULERS:
        x = x_t * math.sqrt(1 + float(scheduler.sigmas[0]) ** 2)  # to the scheduler's x / alpha
    for i, t in enumerate(scheduler.timesteps):
        inp = scheduler.scale_model_input(x, t)
        x = scheduler.step(eps_model(inp, t, i), t, x, return_dict=False)[0]
    return x


class DiffusersOracle:
    """The same oracle as an eps-predicting model for a diffusers scheduler, counting calls."""

    def __init__(self, gm: GaussianMixture, scheduler):
        self.gm, self.scheduler, self.calls = gm, scheduler, 0

    def __call__(self, x, t, i):
        self.calls += 1
        a, s = diffusers_levels(self.scheduler, i, t)
        x0 = posterior_mean(self.gm, x, a, s)
        return (x - a * x0) / s


def diffusers_scheduler_for(cls_name: str, *, beta_schedule: str = "linear", beta_start: float = 1e-4,
                            beta_end: float = 0.02, trained_betas=None, prediction_type: str = "epsilon",
                            **config):
    """``diffusers_scheduler`` on any 1000-step beta schedule: ``beta_schedule`` "linear" or
    "scaled_linear" (Stable Diffusion's: linear in sqrt(beta)) from beta_start to beta_end, or an
    explicit ``trained_betas`` table; ``prediction_type`` as the model predicts."""
    import diffusers

    cls = getattr(diffusers, cls_name)
    return cls(num_train_timesteps=1000, beta_start=beta_start, beta_end=beta_end, beta_schedule=beta_schedule,
               trained_betas=trained_betas, prediction_type=prediction_type, **config)
