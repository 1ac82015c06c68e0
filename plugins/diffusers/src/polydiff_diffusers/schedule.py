"""A diffusers scheduler config as a polydiff schedule: its betas (computed as diffusers computes
them, in float32) become a ``polydiff.DiscreteVP`` with timestep k at t = (k + 1) / N, and its
prediction type one of polydiff's. Only the training-time noise is read: the sampling
algorithm the config names is replaced by whichever polydiff sampler the request asks for."""
from __future__ import annotations

import math
from pathlib import Path

import polydiff
import torch

PREDICTIONS = {"epsilon": "eps", "v_prediction": "v", "sample": "x0"}
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")


def betas_of(config: dict, where: Path) -> torch.Tensor:
    def field(name, default=None):
        value = config.get(name, default)
        if value is None:
            raise polydiff.InvalidInputError(f"{where}: {name} is missing, so the noise schedule cannot be mapped")
        return value

    if config.get("trained_betas") is not None:
        return torch.tensor(config["trained_betas"], dtype=torch.float32)
    n = int(field("num_train_timesteps", 1000))
    kind = field("beta_schedule", "linear")
    if kind == "linear":
        return torch.linspace(float(field("beta_start", 1e-4)), float(field("beta_end", 0.02)), n, dtype=torch.float32)
    if kind == "scaled_linear":
        lo, hi = float(field("beta_start", 1e-4)), float(field("beta_end", 0.02))
        return torch.linspace(lo**0.5, hi**0.5, n, dtype=torch.float32) ** 2
    if kind == "squaredcos_cap_v2":  # Nichol & Dhariwal's cosine alpha_bar, each beta capped at 0.999
        def abar(u):
            return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

        return torch.tensor([min(1 - abar((i + 1) / n) / abar(i / n), 0.999) for i in range(n)], dtype=torch.float32)
    raise polydiff.InvalidInputError(
        f"{where}: beta_schedule {kind!r} cannot be mapped to a polydiff schedule "
        f"(mapped: {', '.join(BETA_SCHEDULES)}, or trained_betas)")


def schedule_of(path: Path) -> tuple[polydiff.DiscreteVP, str]:
    """(schedule, prediction) of a folder's ``scheduler/scheduler_config.json``."""
    where = path / "scheduler" / "scheduler_config.json"
    from .folder import _json

    config = _json(where)
    if "beta_schedule" not in config and "trained_betas" not in config and "num_train_timesteps" not in config:
        raise polydiff.InvalidInputError(
            f"{where}: {config.get('_class_name', 'this scheduler')} defines no betas (a flow-matching or "
            "sigma-only scheduler), which the diffusers backend cannot map to a polydiff schedule")
    if config.get("rescale_betas_zero_snr"):
        raise polydiff.InvalidInputError(
            f"{where}: rescale_betas_zero_snr (zero terminal SNR) cannot be mapped: polydiff's discrete "
            "schedule keeps every level's signal above zero")
    prediction = config.get("prediction_type", "epsilon")
    if prediction not in PREDICTIONS:
        raise polydiff.InvalidInputError(
            f"{where}: prediction_type {prediction!r} is not one of {', '.join(PREDICTIONS)}")
    alphas_cumprod = torch.cumprod(1.0 - betas_of(config, where), dim=0)
    try:
        schedule = polydiff.DiscreteVP(alphas_cumprod)
    except ValueError as exc:
        raise polydiff.InvalidInputError(f"{where}: the betas give no usable schedule ({exc})") from None
    return schedule, PREDICTIONS[prediction]


def timesteps(schedule: polydiff.DiscreteVP, t: torch.Tensor) -> torch.Tensor:
    """The network's timestep for polydiff time ``t``: ``t N - 1``, snapped to the integer it is
    within float32 rounding of (a grid from diffusers' integer timesteps then feeds the
    network exactly the timesteps diffusers would)."""
    k = schedule.timestep(t.detach().to(torch.float64))
    near = k.round()
    return torch.where((k - near).abs() < 1e-3, near, k).clamp_min(0.0).to(torch.float32)
