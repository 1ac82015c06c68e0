"""Samplers, schedules and spacings checked against an exact denoiser (a Gaussian mixture).

Every registered sampler, schedule and spacing is covered, so a plugin's new one is tested too.
"""
from __future__ import annotations

import polydiff
import pytest
import torch
from polydiff import testing as kit
from polydiff.registries import components
from polydiff.testing import HostSyncs
from polydiff.testing.samplers import ORDER_STEPS

SAMPLERS = {n: s for n, s in components().samplers.items() if s.process == "gaussian"}  # masked: test_masked
DETERMINISTIC = [name for name, spec in SAMPLERS.items() if not spec.stochastic]
# (sampler, sampler_options): every stochastic sampler, plus DDIM made stochastic by eta = 1.
STOCHASTIC = [(name, {}) for name, spec in SAMPLERS.items() if spec.stochastic] + [("ddim", {"eta": 1.0})]
EVERY = [(name, {}) for name in SAMPLERS] + [("ddim", {"eta": 1.0})]


def _ids(cases):
    return [name + "".join(f"-{k}={v}" for k, v in options.items()) for name, options in cases]


# tiny tensors: one torch thread is fastest, and far faster on a busy machine
pytestmark = pytest.mark.usefixtures("polydiff_single_thread")


def _mixture():
    return kit.default_mixture()


# -- (a) deterministic samplers converge at their order ---------------------------------------
# The measurements are polydiff.testing's (the conformance kit every plugin runs).

STEPS = ORDER_STEPS  # the error must fall at every doubling; the order is read off the last two
# Samplers whose measured order is known to fall short of the registered one, with the reason.
# The test still requires them to converge at second order, and fails once the gap is closed.
KNOWN_ORDER_GAPS: dict[str, str] = {}  # sampler -> why it converges below its claimed order


@pytest.fixture(scope="module")
def ode_errors():
    """Mean endpoint distance to a 2000-step Heun solve of the same probability-flow ODE from the
    same initial noise. Every logsnr grid ends with the same final denoising step from t_min, so
    the endpoint error is the ODE solver's error at t_min carried through one smooth map."""
    gm = _mixture()  # the reference is a 2000-step Heun solve, ~5e-6 from the exact flow
    return {name: kit.ode_errors(name, gm, STEPS) for name in DETERMINISTIC}


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_sampler_converges_at_its_order(name, ode_errors):
    errs = ode_errors[name]
    assert all(b < a for a, b in zip(errs, errs[1:])), f"{name}: error not decreasing: {errs}"
    orders = kit.observed_orders(errs)
    claimed = SAMPLERS[name].order
    floor = min(claimed, 2) if name in KNOWN_ORDER_GAPS else claimed
    assert min(orders) >= floor - 0.5, f"{name}: observed orders {orders} for claimed {claimed}"
    if name in KNOWN_ORDER_GAPS:
        if min(orders) >= claimed - 0.5:
            pytest.fail(f"{name} now converges at order {orders}: remove it from KNOWN_ORDER_GAPS")
        pytest.xfail(f"{name}: observed order {min(orders):.2f} < {claimed}: {KNOWN_ORDER_GAPS[name]}")


# -- (b) stochastic samplers reproduce the mixture --------------------------------------------

def test_stochastic_sampler_list_is_not_empty():
    assert len(STOCHASTIC) >= 2


@pytest.mark.parametrize("name,options", STOCHASTIC, ids=_ids(STOCHASTIC))
def test_stochastic_sampler_matches_mixture(name, options):
    # Weights within 0.04, means within 0.1, spreads within 10 % of the separated mixture's
    # (3000 samples, 100 steps): see polydiff.testing.check_stochastic_sampler for the margins.
    kit.check_stochastic_sampler(name, options=options)


# -- (c) per-sample seeding -------------------------------------------------------------------

@pytest.mark.parametrize("name,options", EVERY, ids=_ids(EVERY))
def test_sample_does_not_depend_on_its_batch(name, options):
    kit.check_seeding(name, options=options)


# -- (d) no host synchronisation in the loop --------------------------------------------------

# HostSyncs (polydiff.testing) records ops that read a tensor's value on the host.


def test_sync_detector_sees_item_bool_and_masking():
    x = torch.randn(4)
    for read in (lambda v: float(v.sum()), lambda v: bool((v > 0).any()), lambda v: v[v > 0]):
        with HostSyncs() as everything:
            read(x)
        with HostSyncs(watch=[x]) as tainted:
            read(x * 2)  # x * 2 is computed from x, so it is watched too
        with HostSyncs(watch=[x]) as unrelated:
            read(torch.ones(3))
        assert everything.ops and tainted.ops and not unrelated.ops


@pytest.mark.parametrize("name,options", EVERY, ids=_ids(EVERY))
def test_sampler_loop_never_syncs(name, options):
    kit.check_no_host_sync(name, options=options)


def test_sample_syncs_do_not_grow_with_steps():
    """The whole ``sample`` call, constraints included, reads a fixed number of values on the
    host (building the grid, the final NaN check), however many steps it takes; a grid built
    by an earlier call is reused, so both runs here build theirs."""
    from polydiff.loop import _GRIDS

    gm = _mixture()
    known, mask = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0])
    counts = []
    for steps in (4, 8):
        _GRIDS.clear()
        with HostSyncs() as mode:
            polydiff.sample(gm, (3, 2), steps=steps,
                            constraints=[polydiff.Replacement(known, mask, resample=2)])
        counts.append(len(mode.ops))
    assert counts[0] == counts[1] <= 6, counts


# -- (e) schedules and spacings ---------------------------------------------------------------

SCHEDULES = components().schedules
SPACINGS = components().spacings


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_is_monotone_and_invertible(name):
    kit.check_schedule(SCHEDULES[name])


@pytest.mark.parametrize("spacing", list(SPACINGS))
@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_spacing_visits_decreasing_times_from_t_max_to_0(spacing, schedule):
    kit.check_spacing(SPACINGS[spacing], [SCHEDULES[schedule]])


# -- (f) one step contract: every sampler ends a step with polydiff.after_step ---------------

@pytest.mark.parametrize("name,options", EVERY, ids=_ids(EVERY))
def test_every_sampler_shows_each_step_and_takes_the_state_it_is_given(name, options):
    gm = _mixture()
    grid = polydiff.build_grid(gm.schedule, "logsnr", 6)
    noise = polydiff.SeededNoise.for_batch(0, 3)
    x = noise.randn((gm.dim,)) * grid.sigma[0]
    seen = []

    def model(x, t):
        return gm(x, torch.full((x.shape[0],), t))

    def pin(info):
        assert isinstance(info, polydiff.StepInfo) and info.steps == len(grid)
        assert info.t == grid.t[info.i + 1] and info.x.shape == info.x0.shape == x.shape
        seen.append(info.i)
        info.x = torch.zeros_like(info.x)  # a hook that moves the state: the sampler goes on from it

    out = SAMPLERS[name].fn(model, x, grid, noise=noise, step=pin, **options)
    assert seen == list(range(len(grid)))
    assert torch.equal(out, torch.zeros_like(x))


def test_after_step_without_a_step_returns_the_state_itself():
    x = torch.ones(2)
    assert polydiff.after_step(None, None, 0, x, None) is x  # no StepInfo, not even the grid read


@pytest.mark.parametrize("name,options", STOCHASTIC, ids=_ids(STOCHASTIC))
def test_stochastic_sampler_without_noise_uses_seed_0(name, options):
    gm = _mixture()
    grid = polydiff.build_grid(gm.schedule, "logsnr", 5)
    x = torch.randn(4, gm.dim, generator=torch.Generator().manual_seed(1)) * grid.sigma[0]

    def model(x, t):
        return gm(x, torch.full((x.shape[0],), t))

    fn = SAMPLERS[name].fn
    seeded = fn(model, x, grid, noise=polydiff.SeededNoise.for_batch(0, 4), **options)
    assert torch.equal(fn(model, x, grid, **options), seeded)
