"""Sampler checks against the Gaussian-mixture oracle: convergence order (deterministic),
reproducing the mixture (stochastic), per-sample seeding, and no host synchronisation.

A sampler is given by registered name, ``SamplerSpec`` or plain function. The oracle's exact
denoiser makes every error the sampler's own, so the thresholds can be tight and are argued
from sampling statistics where they apply.
"""
from __future__ import annotations

import functools
import math

import torch

from ..contract import SamplerSpec
from .errors import fail
from .oracle import GaussianMixture, separated_mixture, shared_mixture
from .support import components, describe, single_thread
from .syncs import HostSyncs

ORDER_STEPS = (10, 20, 40, 80)  # the error must fall at each doubling; the order is read off the last two
ORDER_SAMPLES = 256
REFERENCE_STEPS = 2000  # a Heun solve this fine is ~5e-6 from the exact flow, far below what is measured


def _sampler(sampler, order=None, stochastic=None) -> SamplerSpec:
    if isinstance(sampler, str):
        spec = components().samplers.get_named(sampler)
    elif isinstance(sampler, SamplerSpec):
        spec = sampler
    elif callable(sampler):
        spec = SamplerSpec(getattr(sampler, "__name__", "sampler"), sampler)
    else:
        raise TypeError(f"expected a sampler name, SamplerSpec or function, got {sampler!r}")
    if order is not None or stochastic is not None:
        spec = SamplerSpec(spec.name, spec.fn, spec.order if order is None else order,
                           spec.stochastic if stochastic is None else stochastic, spec.description, spec.process)
    return spec


def _label(spec, options) -> str:
    return spec.name + "".join(f" {k}={v}" for k, v in (options or {}).items())


def _vec(v) -> str:
    return "[" + ", ".join(f"{float(x):.3f}" for x in torch.as_tensor(v).reshape(-1)) + "]"


def _run(gm, n, sampler, steps, spacing="logsnr", seed=0, options=None, dtype=torch.float64):
    from ..loop import sample

    return sample(gm, (n, gm.dim), sampler=sampler, steps=steps, spacing=spacing, seed=seed,
                  dtype=dtype, sampler_options=options)


@functools.lru_cache(maxsize=8)
def _reference(gm, n, spacing, steps):
    return _run(gm, n, "heun", steps, spacing)


@single_thread
def ode_errors(sampler, mixture: GaussianMixture | None = None, steps=ORDER_STEPS, n: int = ORDER_SAMPLES,
               spacing="logsnr", options: dict | None = None) -> list[float]:
    """Mean endpoint distance, at each step count, to a fine Heun solve of the same
    probability-flow ODE from the same initial noise. Every logsnr grid ends with the same
    final denoising step, so this is the solver's error carried through one smooth map."""
    gm = mixture if mixture is not None else shared_mixture()
    spec = _sampler(sampler)
    ref = _reference(gm, n, spacing, REFERENCE_STEPS)
    return [(_run(gm, n, spec, k, spacing, options=options) - ref).norm(dim=1).mean().item() for k in steps]


def observed_orders(errors) -> list[float]:
    """Convergence orders log2(e(n) / e(2n)) over the last two doublings of ``errors``."""
    errors = list(errors)
    return [math.log2(a / b) if b > 0 else math.inf for a, b in zip(errors[-3:], errors[-2:])]


@single_thread
def check_sampler_order(sampler, *, order: int | None = None, slack: float = 0.5, mixture=None,
                        steps=ORDER_STEPS, options: dict | None = None) -> dict:
    """A deterministic sampler's error on the mixture oracle falls at every doubling of the steps,
    at an observed order of at least ``order - slack`` (``order``: the registered one)."""
    spec = _sampler(sampler)
    claimed = spec.order if order is None else order
    errs = ode_errors(spec, mixture, steps, options=options)
    shown = ", ".join(f"{e:.3g}" for e in errs)
    if not all(b < a for a, b in zip(errs, errs[1:])):
        fail(f"sampler {_label(spec, options)!r}: the error does not fall as the steps double "
             f"({'/'.join(map(str, steps))} steps: {shown})")
    orders = observed_orders(errs)
    if min(orders) < claimed - slack:
        fail(f"sampler {_label(spec, options)!r}: observed order {min(orders):.2f} on the mixture "
             f"oracle, claimed {claimed} (errors {shown} at {'/'.join(map(str, steps))} steps)")
    return {"errors": errs, "orders": orders, "claimed": claimed}


@single_thread
def check_stochastic_sampler(sampler, *, options: dict | None = None, n: int = 3000, steps: int = 100,
                             seed: int = 1) -> dict:
    """A stochastic sampler's samples reproduce the separated mixture: component weights within
    0.04, component means within 0.1, spreads within 10 %."""
    spec = _sampler(sampler)
    gm = separated_mixture()
    x = _run(gm, n, spec, steps, seed=seed, options=options)
    label = torch.cdist(x, gm.means).argmin(1)
    weights = torch.bincount(label, minlength=len(gm.weights)).double() / n
    name = _label(spec, options)
    # Binomial sd of a weight <= sqrt(0.25 / 3000) = 0.009: 0.04 allows > 4 sd.
    if (weights - gm.weights).abs().max() > 0.04:
        fail(f"sampler {name!r}: component weights {_vec(weights)}, expected {_vec(gm.weights)}")
    means, spreads = [], []
    for k in range(len(gm.weights)):
        xk = x[label == k]
        mean, spread = xk.mean(0), xk.std(0).mean().item()
        # sd of a mean <= 0.5 / sqrt(0.2 * 3000) = 0.02 per coordinate; 0.1 in norm leaves ~3.5 sd
        # plus the discretisation bias of 100 first-order steps (~0.03).
        if (mean - gm.means[k]).norm() > 0.1:
            fail(f"sampler {name!r}: component {k} mean {_vec(mean)}, expected {_vec(gm.means[k])}")
        # sd of a sample std ~ 0.01; 10 % = 0.05 (first-order samplers under-disperse by ~3 %).
        if abs(spread - 0.5) > 0.05:
            fail(f"sampler {name!r}: component {k} spread {spread:.3f}, expected 0.5")
        means.append(mean)
        spreads.append(spread)
    return {"weights": weights, "means": means, "spreads": spreads}


@functools.lru_cache(maxsize=1)
def _seeding_mixture() -> GaussianMixture:
    means = torch.randn(3, 6, generator=torch.Generator().manual_seed(0)) * 2
    return GaussianMixture(means, [1, 2, 3], 0.7)


@single_thread
def check_seeding(sampler, *, options: dict | None = None, steps: int = 6, n: int = 4, seed: int = 11) -> None:
    """Sample i of a batch seeded ``seed`` is bit-identical to that sample drawn alone with
    ``seed + i`` (samples of shape (2, 3), float32), and different samples differ."""
    from ..loop import sample

    spec, gm = _sampler(sampler), _seeding_mixture()
    name = _label(spec, options)
    batch = sample(gm, (n, 2, 3), sampler=spec, steps=steps, seed=seed, sampler_options=options)
    if batch.shape != (n, 2, 3) or batch.dtype != torch.float32:
        fail(f"sampler {name!r}: returned {tuple(batch.shape)} {batch.dtype} for float32 samples "
             f"of shape {(n, 2, 3)}")
    for i in range(n):
        alone = sample(gm, (1, 2, 3), sampler=spec, steps=steps, seed=seed + i, sampler_options=options)
        if not torch.equal(batch[i], alone[0]):
            fail(f"sampler {name!r}: sample {i} of a batch seeded {seed} differs from the same sample "
                 f"drawn alone with seed {seed + i}; draw all noise with the `noise` argument")
    if torch.equal(batch[0], batch[1]):
        fail(f"sampler {name!r}: samples 0 and 1 of a batch are identical")


@single_thread
def check_no_host_sync(sampler, *, options: dict | None = None, steps: int = 8, n: int = 5) -> None:
    """The sampler never reads a value of the state on the host (``.item()``, ``bool(t)``,
    boolean masks): on an accelerator each read stalls the loop. The sampler is called as
    ``fn(model, x, grid, noise=noise, **options)``, with no step observer."""
    from ..loop import build_grid
    from ..noise import SeededNoise

    spec, gm = _sampler(sampler), shared_mixture()
    grid = build_grid(gm.schedule, "logsnr", steps)
    seeded = SeededNoise.for_batch(0, n)
    x = seeded.randn((gm.dim,)) * grid.sigma[0]
    calls = []
    with HostSyncs(watch=[x]) as mode:
        def noise(like):  # fresh noise would live on the device too: watch it
            return mode.watch(seeded(like))

        def model(x, t):
            calls.append(t)
            return gm(x, torch.full((n,), t))

        out = spec.fn(model, x, grid, noise=noise, **(options or {}))
    name = _label(spec, options)
    if mode.ops:
        fail(f"sampler {name!r} reads device values on the host: {', '.join(mode.ops)}")
    if not calls:
        fail(f"sampler {name!r} never called the model")
    if not torch.is_tensor(out) or out.shape != x.shape or not torch.isfinite(out).all():
        fail(f"sampler {name!r} returned {describe(out)} for a state of shape {tuple(x.shape)}")


@single_thread
def check_sampler(sampler, *, options: dict | None = None, order: int | None = None,
                  stochastic: bool | None = None) -> str:
    """All sampler checks: convergence at the claimed order on the mixture oracle (deterministic)
    or reproducing the mixture (stochastic), per-sample seeding, no host synchronisation. A sampler
    of the masked process is checked against the categorical mixture (``testing.masked``)."""
    spec = _sampler(sampler, order, stochastic)
    if spec.process == "masked":
        from .masked import check_masked_sampler

        return check_masked_sampler(spec, options=options)
    if spec.stochastic:
        stats = check_stochastic_sampler(spec, options=options)
        first = f"reproduces the mixture (weights {_vec(stats['weights'])})"
    else:
        measured = check_sampler_order(spec, options=options)
        first = f"order {min(measured['orders']):.2f} (claimed {spec.order})"
    check_seeding(spec, options=options)
    check_no_host_sync(spec, options=options)
    return f"{first}; per-sample seeds; no host syncs"
