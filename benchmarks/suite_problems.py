"""The problems of ``sampler_suite.py``: exact Gaussian-mixture oracles and the shipped networks.

Each problem gives both frameworks the same thing to integrate: a polydiff denoiser
``D(x, t, cond) -> x0`` on a polydiff schedule, and the same model as a diffusers pipeline would
call it (``model(x, timestep, i)`` returning the scheduler's ``prediction_type``) on the same
betas; the same starting noise ``z`` (polydiff's per-sample seeded noise, seeds 0 .. n-1); and
``ref``, the exact probability-flow ODE endpoint from ``z * sigma(t_max)`` at ``t_max``.

The reference is solved here, independently of the samplers under test: classical RK4 on
``dy/du = y - D(y)``, where ``y = x / alpha`` and ``u = log(sigma / alpha)`` (the PF-ODE in
variance-exploding coordinates, the same ODE for every solver of both frameworks), with steps
uniform in ``u``, then ``x0 = D(y)`` at the last level. Oracles integrate down to log-SNR 24
(sigma / alpha = 6e-6; the error of the final jump is below 1e-8 even for a component of
std 0.02); networks down to the schedule's t_min, where polydiff's samplers also take their last
network evaluation. Each reference is solved at two resolutions and their difference reported
(RK4: the finer one's own error is about 1/16 of it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import polydiff
import torch
from common import posterior_mean
from polydiff.noise import SeededNoise
from polydiff.schedules import DiscreteVP
from polydiff.testing import GaussianMixture

DIMS = (2, 16, 64, 256)
COMPONENTS = {2: 8, 16: 12, 64: 16, 256: 16}
STD_RANGE = (0.02, 0.6)
LOG_SNR_END = 24.0  # log(alpha^2 / sigma^2) where the oracle reference stops integrating


# -- the two discrete schedules, exactly as diffusers computes them ----------------------------

SCHEDULES = {
    # name: (beta_schedule, beta_start, beta_end)
    "ddpm-linear": ("linear", 1e-4, 0.02),
    "sd-scaled-linear": ("scaled_linear", 0.00085, 0.012),
}


def discrete_schedule(name: str) -> DiscreteVP:
    kind, b0, b1 = SCHEDULES[name]
    if kind == "linear":
        betas = torch.linspace(b0, b1, 1000, dtype=torch.float32)
    else:  # diffusers' "scaled_linear": linear in sqrt(beta)
        betas = torch.linspace(b0**0.5, b1**0.5, 1000, dtype=torch.float32) ** 2
    return DiscreteVP(torch.cumprod(1.0 - betas, dim=0))


def make_mixture(dim: int, schedule, seed: int = 0) -> GaussianMixture:
    """K components (``COMPONENTS[dim]``) with stds log-spaced over ``STD_RANGE`` (assigned at
    random), random weights in [0.5, 1.5] (normalised) and random means scaled so that the data
    has about unit RMS per coordinate."""
    g = torch.Generator().manual_seed(1000 + dim + seed)
    k = COMPONENTS[dim]
    std = torch.logspace(math.log10(STD_RANGE[0]), math.log10(STD_RANGE[1]), k, dtype=torch.float64)
    std = std[torch.randperm(k, generator=g)]
    weights = torch.rand(k, generator=g, dtype=torch.float64) + 0.5
    scale = math.sqrt(max(1.0 - float((std**2).mean()), 0.5))
    means = torch.randn(k, dim, generator=g, dtype=torch.float64) * scale
    return GaussianMixture(means, weights, std, schedule)


# -- the reference solve --------------------------------------------------------------------------

def rk4_reference(denoise_ve: Callable, y: torch.Tensor, u_start: float, u_end: float, steps: int):
    """RK4 on ``dy/du = y - D(y, u)`` from u_start down to u_end, then ``D`` at u_end."""
    us = torch.linspace(u_start, u_end, steps + 1, dtype=torch.float64).tolist()

    def f(y, u):
        return y - denoise_ve(y, u)

    for u0, u1 in zip(us, us[1:]):
        h = u1 - u0
        k1 = f(y, u0)
        k2 = f(y + 0.5 * h * k1, u0 + 0.5 * h)
        k3 = f(y + 0.5 * h * k2, u0 + 0.5 * h)
        k4 = f(y + h * k3, u1)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return denoise_ve(y, us[-1])


def rms(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per sample: root mean square over the coordinates (comparable across dimensions)."""
    d = (a.to(torch.float64) - b.to(torch.float64)).reshape(a.shape[0], -1)
    return d.pow(2).mean(1).sqrt()


def endpoint_error(x: torch.Tensor, ref: torch.Tensor) -> float:
    """The benchmark's metric: mean over samples of the per-sample RMS over coordinates."""
    return rms(x, ref).mean().item()


# -- problems -----------------------------------------------------------------------------------

@dataclass
class Problem:
    name: str
    kind: str                      # "oracle" or "network"
    shape: tuple                   # one sample's shape
    n: int
    schedule: object               # polydiff schedule
    denoiser: Callable             # polydiff D(x, t, cond)
    diffusers_config: dict         # schedule + prediction_type for any diffusers scheduler
    diffusers_model: Callable      # (scheduler) -> model(x, timestep, i) -> prediction
    dtype: torch.dtype
    cond: object = None
    description: str = ""
    ref: torch.Tensor | None = None
    ref_note: str = ""
    ref_check: float = float("nan")
    extra: dict = field(default_factory=dict)

    def noise(self, n=None, seed=0) -> torch.Tensor:
        """The unit noise of samples seed .. seed + n - 1, exactly as polydiff.sample draws it."""
        n = self.n if n is None else n
        return SeededNoise.for_batch(seed, n, dtype=self.dtype).randn(self.shape)

    def x_t(self) -> torch.Tensor:
        """The common start at t_max in variance-preserving space (what diffusers gets; a copy)."""
        if "x_t" not in self.extra:
            self.extra["x_t"] = self.noise() * self.schedule.floats(self.schedule.t_max)[1]
        return self.extra["x_t"].clone()


def _ve_levels(u: float):
    s = math.exp(u)
    return 1 / math.sqrt(1 + s * s), s / math.sqrt(1 + s * s)


def oracle_problem(dim: int, schedule_name: str, n: int, ref_steps: int) -> Problem:
    sch = discrete_schedule(schedule_name)
    gm = make_mixture(dim, sch)
    kind, b0, b1 = SCHEDULES[schedule_name]

    def denoiser(x, t, cond=None):
        t = t.to(torch.float64)
        return posterior_mean(gm, x, sch.alpha(t), sch.sigma(t))

    def diffusers_model(scheduler):
        from common import DiffusersOracle

        return DiffusersOracle(gm, scheduler)

    p = Problem(
        name=f"{dim}-D, {schedule_name}", kind="oracle", shape=(dim,), n=n, schedule=sch, denoiser=denoiser,
        diffusers_config=dict(beta_schedule=kind, beta_start=b0, beta_end=b1, prediction_type="epsilon"),
        diffusers_model=diffusers_model, dtype=torch.float64,
        description=(f"{gm.means.shape[0]} components, std {gm.std.min().item():.2g}..{gm.std.max().item():.2g}, "
                     f"data RMS {gm.sample(4000, torch.Generator().manual_seed(5)).pow(2).mean().sqrt().item():.2f}"),
        extra=dict(mixture=gm),
    )

    def denoise_ve(y, u):
        a, s = _ve_levels(u)
        return posterior_mean(gm, a * y, a, s)

    _solve_reference(p, denoise_ve, u_end=-LOG_SNR_END / 2, steps=ref_steps)
    return p


def _solve_reference(p: Problem, denoise_ve, u_end: float, steps: int):
    a, s = (float(v) for v in p.schedule.floats(p.schedule.t_max))
    y = p.x_t().to(torch.float64) / a
    u_start = math.log(s / a)
    with torch.inference_mode():
        coarse = rk4_reference(denoise_ve, y.clone(), u_start, u_end, steps // 2)
        fine = rk4_reference(denoise_ve, y.clone(), u_start, u_end, steps)
    p.ref = fine.to(p.dtype)
    p.ref_check = endpoint_error(coarse, fine)
    p.ref_note = (f"RK4 in log(sigma/alpha), {steps} steps ({4 * steps + 1} evaluations) from t_max to "
                  f"log-SNR log(alpha^2 / sigma^2) = {-2 * u_end:.3g}; {steps // 2} steps differ from it by {p.ref_check:.1e}")


# -- the shipped networks -------------------------------------------------------------------------

def _discrete_betas(schedule, n=1000):
    """The model's schedule on diffusers' grid: timestep k at t = (k + 1) / n * t_max (as
    benchmarks/end_to_end.py gives it to diffusers)."""
    t = torch.arange(1, n + 1, dtype=torch.float64) / n * schedule.t_max
    ac = schedule.alpha(t) ** 2
    prev = torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]])
    return (1 - ac / prev).clamp(max=0.999).numpy()


def _network_problem(name, loaded, cond, shape, n, ref_steps, description) -> Problem:
    sch = loaded.schedule
    net = loaded.net
    D = polydiff.as_denoiser(net, sch, loaded.prediction)
    prediction_type = {"v": "v_prediction", "eps": "epsilon", "x0": "sample"}[loaded.prediction]
    t_max = sch.t_max

    def diffusers_model(scheduler):
        def model(x, timestep, i):
            tt = ((torch.as_tensor(timestep, dtype=torch.float32) + 1) / 1000 * t_max).expand(x.shape[0])
            return net(x.to(torch.float32), tt, cond)
        return model

    p = Problem(name=name, kind="network", shape=shape, n=n, schedule=sch, denoiser=D, cond=cond,
                diffusers_config=dict(trained_betas=_discrete_betas(sch), prediction_type=prediction_type),
                diffusers_model=diffusers_model, dtype=torch.float32, description=description,
                extra=dict(step_grids=list(getattr(loaded, "step_grids", None) or [])))

    def denoise_ve(y, u):
        a, s = _ve_levels(u)
        t = sch.t_of_lam(torch.tensor(-u, dtype=torch.float64)).clamp(sch.t_min, sch.t_max)  # lam = log(alpha/sigma)
        tt = t.to(torch.float32).expand(y.shape[0])
        return D((a * y).to(torch.float32), tt, cond).to(torch.float64)

    lam_end = float(sch.lam(torch.tensor(sch.t_min, dtype=torch.float64)))
    _solve_reference(p, denoise_ve, u_end=-lam_end, steps=ref_steps)
    return p


IMAGE_PROMPT = "a red circle"  # as benchmarks/end_to_end.py
AUDIO_PROMPT = "a C major chord"


def image_problem(n: int, ref_steps: int) -> Problem | str:
    """The image plugin's shipped UNet, conditioned on IMAGE_PROMPT without guidance (as
    end_to_end.py); a string says why it is skipped."""
    try:
        from polydiff_image import backend
    except ImportError:
        return "the image plugin is not installed"
    if not (backend.WEIGHTS_DIR / "model.safetensors").is_file():
        return "the image plugin's checkpoint is not there"
    loaded = backend.load("cpu")
    encoder = polydiff.load_encoder(backend.TEXT_ENCODER, "cpu")
    cond = encoder.encode([IMAGE_PROMPT] * n, max_tokens=backend.TOKENS)
    return _network_problem("image UNet (shapes, 3x32x32)", loaded, cond, (3, 32, 32), n, ref_steps,
                            f"prompt {IMAGE_PROMPT!r}, no guidance; {loaded.schedule.name}, "
                            f"{loaded.prediction}-prediction, float32")


def audio_problem(n: int, ref_steps: int) -> Problem | str:
    """The audio plugin's shipped 1-D UNet over log-mel frames (2 s clip: 128 mels x 128 frames),
    conditioned on AUDIO_PROMPT without guidance."""
    try:
        from polydiff_audio import backend, encoders, mel, tasks
    except ImportError:
        return "the audio plugin is not installed"
    if not (backend.WEIGHTS_DIR / "model.safetensors").is_file():
        return "the audio plugin's checkpoint is not there"
    loaded = backend.load("cpu")
    encoder = polydiff.load_encoder(encoders.NAME, "cpu")
    cond = encoder.encode([AUDIO_PROMPT] * n)
    frames = math.ceil(2 * mel.SAMPLE_RATE / mel.HOP)
    shape = (mel.N_MELS, -(-frames // tasks.MULTIPLE) * tasks.MULTIPLE)  # what the audio task plans for 2 s
    return _network_problem(f"audio UNet (notes, {shape[0]}x{shape[1]} log-mel)", loaded, cond, shape, n, ref_steps,
                            f"prompt {AUDIO_PROMPT!r}, no guidance; {loaded.schedule.name}, "
                            f"{loaded.prediction}-prediction, float32")
