"""Samplers, schedules and spacings checked against an exact denoiser (a Gaussian mixture).

Every registered sampler, schedule and spacing is covered, so a plugin's new one is tested too.
"""
from __future__ import annotations

import math
import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import polydiff
from polydiff.noise import SeededNoise
from polydiff.registry import components
from polydiff.sampling import build_grid
from polydiff.schedules import VPSchedule
from polydiff.testing import GaussianMixture

SAMPLERS = components().samplers
DETERMINISTIC = [name for name, spec in SAMPLERS.items() if not spec.stochastic]
# (sampler, sampler_options): every stochastic sampler, plus DDIM made stochastic by eta = 1.
STOCHASTIC = [(name, {}) for name, spec in SAMPLERS.items() if spec.stochastic] + [("ddim", {"eta": 1.0})]
EVERY = [(name, {}) for name in SAMPLERS] + [("ddim", {"eta": 1.0})]


def _ids(cases):
    return [name + "".join(f"-{k}={v}" for k, v in options.items()) for name, options in cases]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """These tensors are tiny: one thread is fastest, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _mixture(std=0.6):
    return GaussianMixture([[-2.0, -1.0], [2.0, 1.0], [0.0, 3.0]], [0.3, 0.5, 0.2], std, "vp-linear")


def _sample(denoiser, n, sampler, steps, spacing="logsnr", seed=0, dtype=torch.float64, **kw):
    return polydiff.sample(denoiser, (n, denoiser.dim), sampler=sampler, steps=steps, spacing=spacing,
                           seed=seed, dtype=dtype, **kw)


# -- (a) deterministic samplers converge at their order ---------------------------------------

STEPS = (10, 20, 40, 80)  # the error must fall at every doubling; the order is read off the last two
# Samplers whose measured order is known to fall short of the registered one, with the reason.
# The test still requires them to converge at second order, and fails once the gap is closed.
KNOWN_ORDER_GAPS: dict[str, str] = {}  # sampler -> why it converges below its claimed order


@pytest.fixture(scope="module")
def ode_errors():
    """Mean endpoint distance to a 2000-step Heun solve of the same probability-flow ODE from the
    same initial noise. Every logsnr grid ends with the same final denoising step from t_min, so
    the endpoint error is the ODE solver's error at t_min carried through one smooth map."""
    gm = _mixture()
    ref = _sample(gm, 256, "heun", 2000)  # its own error is ~5e-6, far below what is measured
    errors = {}
    for name in DETERMINISTIC:
        errors[name] = [(_sample(gm, 256, name, n) - ref).norm(dim=1).mean().item() for n in STEPS]
    return errors


@pytest.mark.parametrize("name", DETERMINISTIC)
def test_deterministic_sampler_converges_at_its_order(name, ode_errors):
    errs = ode_errors[name]
    assert all(b < a for a, b in zip(errs, errs[1:])), f"{name}: error not decreasing: {errs}"
    orders = [math.log2(a / b) for a, b in zip(errs[-3:], errs[-2:])]
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
    # Components 4+ apart with std 0.5: assigning a true sample to the nearest mean is wrong with
    # probability < 1e-4, so the assignment below estimates weights, means and spreads unbiasedly.
    gm = GaussianMixture([[-2.0, -2.0], [2.0, -2.0], [0.0, 2.5]], [0.5, 0.3, 0.2], 0.5)
    n = 3000
    x = _sample(gm, n, name, 100, seed=1, sampler_options=options)
    label = torch.cdist(x, gm.means).argmin(1)
    weights = torch.bincount(label, minlength=3).double() / n
    # Binomial sd of a weight <= sqrt(0.25 / 3000) = 0.009: 0.04 allows > 4 sd.
    assert (weights - gm.weights).abs().max() < 0.04, weights
    for k in range(3):
        xk = x[label == k]
        # sd of a component mean <= 0.5 / sqrt(0.2 * 3000) = 0.02 per coordinate; 0.1 in norm
        # leaves ~3.5 sd plus room for the discretisation bias of 100 first-order steps (~0.03).
        assert (xk.mean(0) - gm.means[k]).norm() < 0.1, (k, xk.mean(0))
        # sd of a sample std ~ 0.5 / sqrt(2 * 600 * 2) = 0.01; 10 % = 0.05 (first-order samplers
        # at 100 steps under-disperse by ~3 %).
        assert abs(xk.std(0).mean() - 0.5) < 0.05, (k, xk.std(0))


# -- (c) per-sample seeding -------------------------------------------------------------------

@pytest.mark.parametrize("name,options", EVERY, ids=_ids(EVERY))
def test_sample_does_not_depend_on_its_batch(name, options):
    gm = GaussianMixture(torch.randn(3, 6, generator=torch.Generator().manual_seed(0)) * 2, [1, 2, 3], 0.7)
    seed, n = 11, 4
    batch = polydiff.sample(gm, (n, 2, 3), sampler=name, steps=6, seed=seed, sampler_options=options)
    assert batch.shape == (n, 2, 3) and batch.dtype == torch.float32
    for i in range(n):
        alone = polydiff.sample(gm, (1, 2, 3), sampler=name, steps=6, seed=seed + i,
                                sampler_options=options)
        assert torch.equal(batch[i], alone[0]), f"{name}: sample {i} differs from its solo run"
    assert not torch.equal(batch[0], batch[1])


# -- (d) no host synchronisation in the loop --------------------------------------------------

SYNC_OPS = {"_local_scalar_dense", "nonzero", "masked_select", "equal", "is_nonzero"}


class HostSyncs(TorchDispatchMode):
    """Records ops that read a tensor's value on the host (``.item()``, ``bool(t)``, ``float(t)``,
    boolean-mask indexing): on an accelerator each one waits for the device.

    With ``watch``, only values computed from the watched tensors count (taint tracking), so
    host-side arithmetic on fresh CPU tensors, e.g. looking up a schedule, is not reported."""

    def __init__(self, watch=None):
        super().__init__()
        self.ops = []
        self._watched = None if watch is None else {}
        for t in watch or ():
            self.watch(t)

    def watch(self, t):
        key = id(t)
        self._watched[key] = weakref.ref(t, lambda _, key=key: self._watched.pop(key, None))
        return t

    def _is_watched(self, t):
        ref = self._watched.get(id(t))
        return ref is not None and ref() is t

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
        if self._watched is None or any(self._is_watched(a) for a in inputs):
            name = func.overloadpacket.__name__
            if name in SYNC_OPS or (name == "index" and _bool_index(args)):
                self.ops.append(name)
            if self._watched is not None:
                for o in tree_flatten(out)[0]:
                    if isinstance(o, torch.Tensor):
                        self.watch(o)
        return out


def _bool_index(args):
    """Boolean-mask indexing: its output shape depends on the data."""
    return len(args) > 1 and any(i is not None and i.dtype == torch.bool for i in args[1])


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
    gm = _mixture()
    n = 5
    grid = build_grid(gm.schedule, "logsnr", 8)
    seeded = SeededNoise.for_batch(0, n)
    x = seeded.randn((2,)) * grid.sigma[0]
    calls = []
    with HostSyncs(watch=[x]) as mode:
        def noise(like):  # fresh noise would live on the device too: watch it
            return mode.watch(seeded(like))

        def model(x, t):
            calls.append(t)
            return gm(x, torch.full((n,), t))

        out = SAMPLERS[name].fn(model, x, grid, noise=noise, callback=None, **options)
    assert mode.ops == [], f"{name} reads device values on the host: {mode.ops}"
    assert calls and out.shape == x.shape and torch.isfinite(out).all()


def test_sample_syncs_do_not_grow_with_steps():
    """The whole ``sample`` call, constraints included, reads a fixed number of values on the
    host (building the grid, the final NaN check), however many steps it takes."""
    gm = _mixture()
    known, mask = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 0.0])
    counts = []
    for steps in (4, 8):
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
    sch = SCHEDULES[name]
    t = torch.linspace(sch.t_min, sch.t_max, 400, dtype=torch.float64)
    alpha, sigma, lam = sch.alpha(t), sch.sigma(t), sch.lam(t)
    assert torch.isfinite(alpha).all() and torch.isfinite(sigma).all() and torch.isfinite(lam).all()
    assert (alpha > 0).all() and (sigma > 0).all()
    assert (alpha[1:] <= alpha[:-1]).all(), "alpha must not increase"
    assert (sigma[1:] > sigma[:-1]).all(), "sigma must increase"
    assert (lam[1:] < lam[:-1]).all(), "log-SNR must decrease"
    assert torch.allclose(lam, torch.log(alpha / sigma), atol=1e-9)
    back = sch.t_of_lam(lam)
    assert torch.allclose(back, t, rtol=1e-6, atol=1e-9), (back - t).abs().max()
    if isinstance(sch, VPSchedule):
        assert torch.allclose(alpha**2 + sigma**2, torch.ones_like(t), atol=1e-12)


@pytest.mark.parametrize("spacing", list(SPACINGS))
@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_spacing_visits_decreasing_times_from_t_max_to_0(spacing, schedule):
    sch, sp = SCHEDULES[schedule], SPACINGS[spacing]
    for steps in (1, 2, 5, 20, 100):
        for t_start in (None, 0.5 * sch.t_max):
            times = sp(sch, steps, t_start)
            assert len(times) == steps + 1
            assert times[0] == (sch.t_max if t_start is None else t_start)
            assert times[-1] == 0.0
            assert all(b < a for a, b in zip(times, times[1:])), times
            grid = build_grid(sch, sp, steps)
            assert len(grid) == steps and grid.sigma[-1] == 0.0
            assert all(b > a for a, b in zip(grid.lam, grid.lam[1:]))
