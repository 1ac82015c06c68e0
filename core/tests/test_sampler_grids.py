"""Every deterministic sampler improves with steps on every registered spacing, and the
multistep solvers stay stable on grids far from even in log-SNR.

The oracle is harder than the order test's: 32 dimensions, components from very narrow to
wide, on diffusers' discrete DDPM schedule, where the old Heun (scaled space) and unguarded
third-order multistep steps blew up (issue 21)."""
from __future__ import annotations

import math

import polydiff
import pytest
import torch
from polydiff.registries import components
from polydiff.schedules import DiscreteVP
from polydiff.testing.oracle import GaussianMixture

pytestmark = pytest.mark.usefixtures("polydiff_single_thread")

SAMPLERS = [n for n, s in components().samplers.items() if s.process == "gaussian" and not s.stochastic]
SPACINGS = list(components().spacings)
N, DIM = 64, 32


@pytest.fixture(scope="module")
def problem():
    g = torch.Generator().manual_seed(3)
    k = 8
    means = torch.randn(k, DIM, generator=g, dtype=torch.float64) * 1.5 / math.sqrt(DIM)
    std = torch.logspace(math.log10(0.02), math.log10(0.6), k, dtype=torch.float64)
    sch = DiscreteVP.linear(1e-4, 0.02, 1000)
    gm = GaussianMixture(means, torch.ones(k), std, sch)
    lam = sch.lam(torch.tensor([sch.t_max, 0.0005], dtype=torch.float64)).clamp(max=14.0)
    times = sch.t_of_lam(torch.linspace(float(lam[0]), float(lam[1]), 1500, dtype=torch.float64)).tolist()
    times[0] = sch.t_max
    ref = polydiff.sample(gm, (N, DIM), sampler="unipc", spacing=times + [0.0], schedule=sch, seed=5,
                          dtype=torch.float64)
    return gm, ref


def _error(problem, sampler, spacing, nfe):
    gm, ref = problem
    steps = (nfe + 1) // 2 if sampler == "heun" else nfe  # Heun: 2 calls a step, 1 for the last
    out = polydiff.sample(gm, (N, DIM), sampler=sampler, spacing=spacing, steps=steps, schedule=gm.schedule,
                          seed=5, dtype=torch.float64)
    return float(((out - ref) ** 2).mean(1).sqrt().mean())


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_error_falls_with_steps_on_every_spacing(problem, sampler, spacing):
    errors = [_error(problem, sampler, spacing, nfe) for nfe in (5, 10, 20, 40)]
    assert all(b < a for a, b in zip(errors, errors[1:])), f"{sampler} on {spacing}: errors {errors}"
    assert errors[-1] < 0.5 * errors[0], f"{sampler} on {spacing}: errors {errors}"


def _uneven(schedule, steps):
    """Times even in t, plus one very short step near the start: log-SNR steps whose lengths
    vary a hundredfold, as a step-grid search or a user's list may give."""
    times = torch.linspace(1.0, schedule.t_min, steps).tolist()
    return [times[0], times[0] - 1e-3] + times[1:] + [0.0]


@pytest.mark.parametrize("sampler", ["dpmpp_2m", "dpmpp_3m", "unipc"])
def test_multistep_solvers_stay_stable_on_uneven_grids(problem, sampler):
    gm, _ = problem
    for steps in (4, 8, 16):
        grid = _uneven(gm.schedule, steps)
        multistep, first_order = (_error(problem, s, grid, len(grid) - 1) for s in (sampler, "ddim"))
        assert multistep < 1.2 * first_order, f"{sampler}, {steps} steps on an uneven grid: {multistep} vs ddim {first_order}"


def test_grids_are_built_once_per_schedule_spacing_and_steps():
    """A call's set-up reuses the grid of an earlier call with the same settings (grids are
    immutable), and any change of schedule, spacing, steps or start builds its own."""
    from polydiff.loop import build_grid
    from polydiff.schedules import VPLinear

    first, other = VPLinear(), VPLinear(beta_max=10.0)
    grid = build_grid(first, "logsnr", 10)
    assert build_grid(first, "logsnr", 10) is grid
    assert build_grid(other, "logsnr", 10).t != grid.t
    assert len(build_grid(first, "logsnr", 12)) == 12
    assert build_grid(first, "karras", 10).t != grid.t
    assert build_grid(first, "logsnr", 10, t_start=0.5).t[0] == pytest.approx(0.5 * first.t_max)
    assert build_grid(first, [0.9, 0.5], 2).t == (0.9, 0.5, 0.0)
