"""Conformance checks: what each kind of registration must do, checked against analytic oracles.

Every ``check_*`` function checks one registration (given by name or as the registered object),
returns a one-line description of what it verified, and raises ``ConformanceError`` (an
``AssertionError``, so pytest shows it as a plain test failure) with a message naming the
registration and the broken promise. ``CheckSkipped`` means the check cannot run here (no CUDA
device, no example inputs declared). ``check_plugin(name)`` runs every check that applies to
what one plugin registered and returns a ``Report``.
"""
from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import math
import struct
import tempfile
import time
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import PluginError, PolydiffError
from ..contract import Backend, Encoder, LoadedModel, Modality, SamplerSpec, StepInfo
from .oracle import GaussianMixture
from .syncs import HostSyncs


class ConformanceError(AssertionError):
    """A registration breaks polydiff's contract; the message names it and says how."""


class CheckSkipped(Exception):
    """A check that cannot run here (no CUDA device, no example inputs); the message says why."""


def _fail(message: str):
    raise ConformanceError(message)


def _components():
    from ..registries import components

    return components()


def available_devices() -> list[str]:
    """The devices the kit checks on: ``cpu``, plus ``cuda`` when a CUDA device is present."""
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def _single_thread(fn):
    """Run with one torch thread: the oracle's tensors are tiny, and threads only cost time
    (ten times more on a busy machine)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        threads = torch.get_num_threads()
        if threads == 1:
            return fn(*args, **kwargs)
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)
    return wrapper


# ----------------------------------------------------------------------------- oracles


def default_mixture(std: float = 0.6, schedule="vp-linear") -> GaussianMixture:
    """The kit's reference data: three overlapping 2-D Gaussians (order measurements)."""
    return GaussianMixture([[-2.0, -1.0], [2.0, 1.0], [0.0, 3.0]], [0.3, 0.5, 0.2], std, schedule)


def separated_mixture(schedule="vp-linear") -> GaussianMixture:
    """Three 2-D Gaussians 4+ apart (std 0.5): a sample's nearest mean is its component with
    probability > 0.9999, so weights, means and spreads of samples can be estimated directly."""
    return GaussianMixture([[-2.0, -2.0], [2.0, -2.0], [0.0, 2.5]], [0.5, 0.3, 0.2], 0.5, schedule)


@functools.lru_cache(maxsize=1)
def _shared_mixture() -> GaussianMixture:
    return default_mixture()


# ----------------------------------------------------------------------------- samplers

ORDER_STEPS = (10, 20, 40, 80)  # the error must fall at each doubling; the order is read off the last two
ORDER_SAMPLES = 256
REFERENCE_STEPS = 2000  # a Heun solve this fine is ~5e-6 from the exact flow, far below what is measured


def _sampler(sampler, order=None, stochastic=None) -> SamplerSpec:
    if isinstance(sampler, str):
        spec = _components().samplers.get_named(sampler)
    elif isinstance(sampler, SamplerSpec):
        spec = sampler
    elif callable(sampler):
        spec = SamplerSpec(getattr(sampler, "__name__", "sampler"), sampler)
    else:
        raise TypeError(f"expected a sampler name, SamplerSpec or function, got {sampler!r}")
    if order is not None or stochastic is not None:
        spec = SamplerSpec(spec.name, spec.fn, spec.order if order is None else order,
                           spec.stochastic if stochastic is None else stochastic, spec.description)
    return spec


def _label(spec, options) -> str:
    return spec.name + "".join(f" {k}={v}" for k, v in (options or {}).items())


def _run(gm, n, sampler, steps, spacing="logsnr", seed=0, options=None, dtype=torch.float64):
    from ..loop import sample

    return sample(gm, (n, gm.dim), sampler=sampler, steps=steps, spacing=spacing, seed=seed,
                  dtype=dtype, sampler_options=options)


@functools.lru_cache(maxsize=8)
def _reference(gm, n, spacing, steps):
    return _run(gm, n, "heun", steps, spacing)


@_single_thread
def ode_errors(sampler, mixture: GaussianMixture | None = None, steps=ORDER_STEPS, n: int = ORDER_SAMPLES,
               spacing="logsnr", options: dict | None = None) -> list[float]:
    """Mean endpoint distance, at each step count, to a fine Heun solve of the same
    probability-flow ODE from the same initial noise. Every logsnr grid ends with the same
    final denoising step, so this is the solver's error carried through one smooth map."""
    gm = mixture if mixture is not None else _shared_mixture()
    spec = _sampler(sampler)
    ref = _reference(gm, n, spacing, REFERENCE_STEPS)
    return [(_run(gm, n, spec, k, spacing, options=options) - ref).norm(dim=1).mean().item() for k in steps]


def observed_orders(errors) -> list[float]:
    """Convergence orders log2(e(n) / e(2n)) over the last two doublings of ``errors``."""
    errors = list(errors)
    return [math.log2(a / b) if b > 0 else math.inf for a, b in zip(errors[-3:], errors[-2:])]


@_single_thread
def check_sampler_order(sampler, *, order: int | None = None, slack: float = 0.5, mixture=None,
                        steps=ORDER_STEPS, options: dict | None = None) -> dict:
    """A deterministic sampler's error on the mixture oracle falls at every doubling of the steps,
    at an observed order of at least ``order - slack`` (``order``: the registered one)."""
    spec = _sampler(sampler)
    claimed = spec.order if order is None else order
    errs = ode_errors(spec, mixture, steps, options=options)
    shown = ", ".join(f"{e:.3g}" for e in errs)
    if not all(b < a for a, b in zip(errs, errs[1:])):
        _fail(f"sampler {_label(spec, options)!r}: the error does not fall as the steps double "
              f"({'/'.join(map(str, steps))} steps: {shown})")
    orders = observed_orders(errs)
    if min(orders) < claimed - slack:
        _fail(f"sampler {_label(spec, options)!r}: observed order {min(orders):.2f} on the mixture "
              f"oracle, claimed {claimed} (errors {shown} at {'/'.join(map(str, steps))} steps)")
    return {"errors": errs, "orders": orders, "claimed": claimed}


@_single_thread
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
        _fail(f"sampler {name!r}: component weights {_vec(weights)}, expected {_vec(gm.weights)}")
    means, spreads = [], []
    for k in range(len(gm.weights)):
        xk = x[label == k]
        mean, spread = xk.mean(0), xk.std(0).mean().item()
        # sd of a mean <= 0.5 / sqrt(0.2 * 3000) = 0.02 per coordinate; 0.1 in norm leaves ~3.5 sd
        # plus the discretisation bias of 100 first-order steps (~0.03).
        if (mean - gm.means[k]).norm() > 0.1:
            _fail(f"sampler {name!r}: component {k} mean {_vec(mean)}, expected {_vec(gm.means[k])}")
        # sd of a sample std ~ 0.01; 10 % = 0.05 (first-order samplers under-disperse by ~3 %).
        if abs(spread - 0.5) > 0.05:
            _fail(f"sampler {name!r}: component {k} spread {spread:.3f}, expected 0.5")
        means.append(mean)
        spreads.append(spread)
    return {"weights": weights, "means": means, "spreads": spreads}


def _vec(v) -> str:
    return "[" + ", ".join(f"{float(x):.3f}" for x in torch.as_tensor(v).reshape(-1)) + "]"


@functools.lru_cache(maxsize=1)
def _seeding_mixture() -> GaussianMixture:
    means = torch.randn(3, 6, generator=torch.Generator().manual_seed(0)) * 2
    return GaussianMixture(means, [1, 2, 3], 0.7)


@_single_thread
def check_seeding(sampler, *, options: dict | None = None, steps: int = 6, n: int = 4, seed: int = 11) -> None:
    """Sample i of a batch seeded ``seed`` is bit-identical to that sample drawn alone with
    ``seed + i`` (samples of shape (2, 3), float32), and different samples differ."""
    from ..loop import sample

    spec, gm = _sampler(sampler), _seeding_mixture()
    name = _label(spec, options)
    batch = sample(gm, (n, 2, 3), sampler=spec, steps=steps, seed=seed, sampler_options=options)
    if batch.shape != (n, 2, 3) or batch.dtype != torch.float32:
        _fail(f"sampler {name!r}: returned {tuple(batch.shape)} {batch.dtype} for float32 samples "
              f"of shape {(n, 2, 3)}")
    for i in range(n):
        alone = sample(gm, (1, 2, 3), sampler=spec, steps=steps, seed=seed + i, sampler_options=options)
        if not torch.equal(batch[i], alone[0]):
            _fail(f"sampler {name!r}: sample {i} of a batch seeded {seed} differs from the same sample "
                  f"drawn alone with seed {seed + i}; draw all noise with the `noise` argument")
    if torch.equal(batch[0], batch[1]):
        _fail(f"sampler {name!r}: samples 0 and 1 of a batch are identical")


@_single_thread
def check_no_host_sync(sampler, *, options: dict | None = None, steps: int = 8, n: int = 5) -> None:
    """The sampler never reads a value of the state on the host (``.item()``, ``bool(t)``,
    boolean masks): on an accelerator each read stalls the loop."""
    from ..noise import SeededNoise
    from ..loop import build_grid

    spec, gm = _sampler(sampler), _shared_mixture()
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

        out = spec.fn(model, x, grid, noise=noise, callback=None, **(options or {}))
    name = _label(spec, options)
    if mode.ops:
        _fail(f"sampler {name!r} reads device values on the host: {', '.join(mode.ops)}")
    if not calls:
        _fail(f"sampler {name!r} never called the model")
    if not torch.is_tensor(out) or out.shape != x.shape or not torch.isfinite(out).all():
        _fail(f"sampler {name!r} returned {_describe(out)} for a state of shape {tuple(x.shape)}")


@_single_thread
def check_sampler(sampler, *, options: dict | None = None, order: int | None = None,
                  stochastic: bool | None = None) -> str:
    """All sampler checks: convergence at the claimed order on the mixture oracle (deterministic)
    or reproducing the mixture (stochastic), per-sample seeding, no host synchronisation."""
    spec = _sampler(sampler, order, stochastic)
    if spec.stochastic:
        stats = check_stochastic_sampler(spec, options=options)
        first = f"reproduces the mixture (weights {_vec(stats['weights'])})"
    else:
        measured = check_sampler_order(spec, options=options)
        first = f"order {min(measured['orders']):.2f} (claimed {spec.order})"
    check_seeding(spec, options=options)
    check_no_host_sync(spec, options=options)
    return f"{first}; per-sample seeds; no host syncs"


# ----------------------------------------------------------------------------- schedules


@_single_thread
def check_schedule(schedule, *, terminal_logsnr: float = -2.0) -> str:
    """alpha, sigma and the log-SNR are finite and monotone on [t_min, t_max], ``t_of_lam``
    inverts ``lam``; the ends are right: clean data at t = 0 (alpha = 1, sigma = 0 within 1e-2)
    and noise dominating at t_max (log-SNR <= ``terminal_logsnr``)."""
    from ..schedules import NoiseSchedule, VPSchedule

    sch = _components().schedules.get_named(schedule) if isinstance(schedule, str) else schedule
    if not isinstance(sch, NoiseSchedule):
        _fail(f"schedule {schedule!r} is not a NoiseSchedule")
    name = f"schedule {sch.name!r}"
    if not 0.0 <= sch.t_min < sch.t_max <= 1.0:
        _fail(f"{name}: need 0 <= t_min < t_max <= 1, got t_min={sch.t_min}, t_max={sch.t_max}")
    t = torch.linspace(sch.t_min, sch.t_max, 400, dtype=torch.float64)
    alpha, sigma, lam = sch.alpha(t), sch.sigma(t), sch.lam(t)
    for what, v in (("alpha", alpha), ("sigma", sigma), ("lam", lam)):
        if not torch.is_tensor(v) or v.shape != t.shape or not torch.isfinite(v).all():
            _fail(f"{name}: {what}(t) is not finite with t's shape on [t_min, t_max]")
    if not ((alpha > 0).all() and (sigma > 0).all()):
        _fail(f"{name}: alpha and sigma must be positive on [t_min, t_max]")
    if not (alpha[1:] <= alpha[:-1]).all():
        _fail(f"{name}: alpha increases with t")
    if not (sigma[1:] > sigma[:-1]).all():
        _fail(f"{name}: sigma does not strictly increase with t")
    if not (lam[1:] < lam[:-1]).all():
        _fail(f"{name}: the log-SNR does not strictly decrease with t")
    if not torch.allclose(lam, torch.log(alpha / sigma), atol=1e-9):
        _fail(f"{name}: lam(t) is not log(alpha(t) / sigma(t))")
    back = sch.t_of_lam(lam)
    if not torch.allclose(back, t, rtol=1e-6, atol=1e-9):
        _fail(f"{name}: t_of_lam(lam(t)) is off by up to {(back - t).abs().max().item():.3g}")
    if isinstance(sch, VPSchedule) and not torch.allclose(alpha**2 + sigma**2, torch.ones_like(t), atol=1e-12):
        _fail(f"{name}: a VP schedule needs alpha^2 + sigma^2 = 1")
    zero = torch.zeros(1, dtype=torch.float64)
    a0, s0 = float(sch.alpha(zero)[0]), float(sch.sigma(zero)[0])
    if abs(a0 - 1.0) > 1e-2 or abs(s0) > 1e-2:
        _fail(f"{name}: at t = 0 expected clean data (alpha 1, sigma 0), got alpha {a0:.4g}, sigma {s0:.4g}")
    end = float(lam[-1])
    if end > terminal_logsnr:
        _fail(f"{name}: log-SNR {end:.2f} at t_max = {sch.t_max}; noise must dominate there "
              f"(log-SNR <= {terminal_logsnr})")
    return f"monotone on [{sch.t_min:g}, {sch.t_max:g}]; log-SNR {float(lam[0]):.1f} -> {end:.1f}; invertible"


@_single_thread
def check_spacing(spacing, schedules=None) -> str:
    """For every schedule (default: all registered), 1 to 100 steps, from t_max or from half of
    it: ``steps + 1`` strictly decreasing times from the start to 0, and a grid of ``steps``
    steps ending at sigma = 0."""
    from ..loop import build_grid
    from ..spacing import Spacing

    sp = _components().spacings.get_named(spacing) if isinstance(spacing, str) else spacing
    if not isinstance(sp, Spacing):
        _fail(f"spacing {spacing!r} is not a Spacing")
    if schedules is None:
        schedules = list(_components().schedules.values())
    for sch in schedules:
        sch = _components().schedules.get_named(sch) if isinstance(sch, str) else sch
        for steps in (1, 2, 5, 20, 100):
            for t_start in (None, 0.5 * sch.t_max):
                where = f"spacing {sp.name!r} on {sch.name!r}, {steps} steps from {t_start or sch.t_max:g}"
                times = sp(sch, steps, t_start)
                if len(times) != steps + 1:
                    _fail(f"{where}: {len(times)} times, expected {steps + 1}")
                start = sch.t_max if t_start is None else t_start
                if times[0] != start or times[-1] != 0.0:
                    _fail(f"{where}: times run {times[0]!r} -> {times[-1]!r}, expected exactly "
                          f"{start!r} -> 0.0")
                if not all(b < a for a, b in zip(times, times[1:])):
                    _fail(f"{where}: times do not strictly decrease")
                grid = build_grid(sch, sp, steps)
                if len(grid) != steps or grid.sigma[-1] != 0.0:
                    _fail(f"{where}: the grid has {len(grid)} steps ending at sigma {grid.sigma[-1]}")
                if not all(b > a for a, b in zip(grid.lam, grid.lam[1:])):
                    _fail(f"{where}: the log-SNR does not increase along the grid")
    return f"valid on {len(schedules)} schedules, 1-100 steps"


# ----------------------------------------------------------------------------- encoders


def _as_array(value) -> np.ndarray:
    if torch.is_tensor(value):
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def _same(a, b) -> bool:
    if torch.is_tensor(a) or torch.is_tensor(b) or isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = _as_array(a), _as_array(b)
        return a.shape == b.shape and bool(np.array_equal(a, b))
    return a == b


def check_encoder(encoder, device: str = "cpu") -> str:
    """The encoder loads on ``device``. A condition encoder maps each example prompt (default:
    ``""``) to the same finite value every time; a data encoder's ``decode(encode(x))`` returns
    each example within its stated ``tolerance``."""
    spec = _components().encoders.get_named(encoder) if isinstance(encoder, str) else encoder
    if not isinstance(spec, Encoder):
        _fail(f"encoder {encoder!r} is not an Encoder")
    name = f"encoder {spec.name!r}"
    if spec.kind not in ("data", "condition"):
        _fail(f"{name}: kind must be 'data' or 'condition', got {spec.kind!r}")
    _need_device(device)
    obj = spec.load(device)
    if obj is None:
        _fail(f"{name}: load({device!r}) returned None")
    examples = spec.examples() if spec.examples is not None else None
    if spec.kind == "condition":
        examples = [""] if examples is None else list(examples)
        if not callable(obj):
            _fail(f"{name}: a condition encoder must be callable, prompt -> condition")
        for prompt in examples:
            first, second = obj(prompt), obj(prompt)
            if torch.is_tensor(first) and not torch.isfinite(first.float()).all():
                _fail(f"{name}: encoding {prompt!r} gave non-finite values")
            if not _same(first, second):
                _fail(f"{name}: encoding {prompt!r} twice gave different results")
        return f"encodes {len(examples)} prompt{'s' if len(examples) != 1 else ''} deterministically on {device}"
    for method in ("encode", "decode"):
        if not callable(getattr(obj, method, None)):
            _fail(f"{name}: a data encoder needs an `{method}` method")
    if not examples:
        raise CheckSkipped(f"{name}: declare Encoder(examples=...) so the kit can check the round trip")
    worst = 0.0
    for i, x in enumerate(examples):
        z = obj.encode(x)
        if torch.is_tensor(z) and not torch.isfinite(z.float()).all():
            _fail(f"{name}: encoding example {i} gave non-finite values")
        back, want = _as_array(obj.decode(z)).astype(np.float64), _as_array(x).astype(np.float64)
        if back.shape != want.shape:
            _fail(f"{name}: example {i} of shape {want.shape} decodes to shape {back.shape}")
        err = float(np.abs(back - want).max()) if want.size else 0.0
        if not err <= spec.tolerance:
            _fail(f"{name}: example {i} round-trips with error {err:.3g}, over its tolerance {spec.tolerance:g}")
        worst = max(worst, err)
    return f"{len(examples)} examples round-trip on {device} (max error {worst:.2g} <= {spec.tolerance:g})"


# ----------------------------------------------------------------------------- backends


def _need_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CheckSkipped("no CUDA device here")


def _example(mod: Modality, task: str) -> dict:
    if task not in mod.tasks:
        _fail(f"modality {mod.name!r} has no task {task!r} (tasks: {', '.join(mod.tasks)})")
    if mod.examples is None:
        if task == "generate":
            return {}
        raise CheckSkipped(f"modality {mod.name!r} declares no example inputs for task {task!r} "
                           "(set Modality.examples)")
    kwargs = mod.examples(task)
    if kwargs is None:
        raise CheckSkipped(f"modality {mod.name!r}: examples({task!r}) returned None")
    if not isinstance(kwargs, dict):
        _fail(f"modality {mod.name!r}: examples({task!r}) must return a dict of generate() arguments, "
              f"got {type(kwargs).__name__}")
    return dict(kwargs)


def check_backend(backend, device: str = "cpu", *, n: int = 2) -> str:
    """The backend loads on ``device`` into a ``LoadedModel`` with a schedule and its declared
    prediction type, and its network returns finite values of the declared shape (the shape its
    modality plans for a ``generate`` request) on that device, for the condition and the null
    condition."""
    from ..generation import Context
    from ..request import GenerateRequest
    from ..schedules import NoiseSchedule

    c = _components()
    spec = c.backends.get_named(backend) if isinstance(backend, str) else backend
    if not isinstance(spec, Backend):
        _fail(f"backend {backend!r} is not a Backend")
    name = f"backend {spec.name!r} on {device}"
    kind = device.split(":")[0]
    if kind not in spec.devices:
        raise CheckSkipped(f"backend {spec.name!r} declares devices {', '.join(spec.devices)} only")
    _need_device(device)
    if spec.modality not in c.modalities:
        _fail(f"{name}: it is for modality {spec.modality!r}, which no loaded plugin registers")
    if spec.checkpoint and not Path(spec.checkpoint).is_file():
        _fail(f"{name}: checkpoint file {spec.checkpoint!r} does not exist")
    loaded = spec.load(device)
    if not isinstance(loaded, LoadedModel):
        _fail(f"{name}: load() must return a polydiff.LoadedModel, got {type(loaded).__name__}")
    if not isinstance(loaded.schedule, NoiseSchedule):
        _fail(f"{name}: LoadedModel.schedule must be a NoiseSchedule, got {loaded.schedule!r}")
    if loaded.prediction != spec.prediction:
        _fail(f"{name}: the loaded model predicts {loaded.prediction!r}, the backend declares {spec.prediction!r}")
    mod = c.modalities[spec.modality]
    fields = {k: v for k, v in _example(mod, "generate").items() if k not in ("steps", "sampler", "seed")}
    fields.update(modality=mod.name, backend=spec.name, device=device, n=n)
    request = GenerateRequest.build(**fields)
    request.seed = 0
    plan = mod.plan(request, Context(request))
    shape = (n, *plan.shape)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device)
    t = torch.full((n,), 0.5, device=device)
    branches = [("condition", plan.cond)] + ([("null condition", plan.uncond)] if plan.uncond is not None else [])
    for what, cond in branches:
        with torch.inference_mode():
            out = loaded.net(x, t, cond)
        if not torch.is_tensor(out) or tuple(out.shape) != shape:
            _fail(f"{name}: the network returned {_describe(out)} for input of shape {shape} ({what})")
        if out.device.type != x.device.type:
            _fail(f"{name}: the network returned a tensor on {out.device} for input on {x.device}")
        if not torch.isfinite(out).all():
            _fail(f"{name}: the network returned NaN or infinity ({what})")
    return f"loads; predicts {loaded.prediction} on {loaded.schedule.name}; returns {shape}"


def _describe(value) -> str:
    if torch.is_tensor(value):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


# ----------------------------------------------------------------------------- modalities


def _modality(modality) -> Modality:
    mod = _components().modalities.get_named(modality) if isinstance(modality, str) else modality
    if not isinstance(mod, Modality):
        _fail(f"modality {modality!r} is not a Modality")
    return mod


def _check_modality_spec(mod: Modality) -> str:
    c = _components()
    name = f"modality {mod.name!r}"
    if not isinstance(mod.tasks, dict) or "generate" not in mod.tasks:
        _fail(f"{name}: tasks must be a dict that includes 'generate' (the default task)")
    if mod.default_backend not in c.backends:
        _fail(f"{name}: default backend {mod.default_backend!r} is not registered")
    if c.backends[mod.default_backend].modality != mod.name:
        _fail(f"{name}: default backend {mod.default_backend!r} is for "
              f"{c.backends[mod.default_backend].modality!r}")
    if mod.options is not None and not hasattr(mod.options, "model_validate"):
        _fail(f"{name}: options must be a pydantic model class")
    for what in ("plan", "write"):
        if not callable(getattr(mod, what)):
            _fail(f"{name}: {what} must be callable")
    return f"tasks {', '.join(mod.tasks)}; default backend {mod.default_backend}"


def check_task(modality, task: str = "generate", *, device: str = "cpu", n: int = 2, steps: int = 4,
               seed: int = 0, read_tolerance: float = 1e-4) -> str:
    """Run one task with the modality's example inputs (``Modality.examples``; the ``generate``
    task runs without any): ``n`` finite samples, the same again for the same seed, sample i
    independent of its batch (``generate``), and files that read back (``check_writer``)."""
    from ..generation import generate

    mod = _modality(modality)
    _need_device(device)
    example = _example(mod, task)
    kwargs = {"n": n, "steps": steps, "seed": seed, "device": device, **example, "task": task}
    where = f"modality {mod.name!r}, task {task!r} on {device}"
    try:
        result = generate(mod.name, **kwargs)
    except PolydiffError as exc:
        _fail(f"{where}: generate({_kwargs(kwargs)}) failed: {exc}")
    count = kwargs["n"]
    samples = result.samples
    if len(result) != count:
        _fail(f"{where}: {len(result)} outputs for n={count}")
    if not torch.is_tensor(samples) or samples.shape[0] != count or not torch.isfinite(samples).all():
        _fail(f"{where}: samples must be a finite tensor of {count} rows, got {_describe(samples)}")
    again = generate(mod.name, **kwargs).samples
    same = torch.equal(again.cpu(), samples.cpu()) if device == "cpu" else torch.allclose(
        again.cpu(), samples.cpu(), atol=1e-5)
    if not same:
        _fail(f"{where}: the same request and seed gave different samples")
    if task == "generate" and count >= 2 and "n" not in example and "seed" not in example:
        solo = generate(mod.name, **{**kwargs, "n": 1, "seed": seed + 1}).samples
        diff = float((solo[0].cpu().double() - samples[1].cpu().double()).abs().max())
        scale = max(1.0, float(samples.abs().max()))
        if diff > 1e-3 * scale:
            _fail(f"{where}: sample 1 of a batch seeded {seed} differs from the same sample generated "
                  f"alone with seed {seed + 1} (by up to {diff:.3g}); sample i must use seed + i")
    with tempfile.TemporaryDirectory(prefix="polydiff-kit-") as folder:
        files = check_writer(mod, result, folder, read_tolerance=read_tolerance)
    return f"n={count}, {steps} steps: reproducible; wrote {', '.join(files)}; files read back"


def _kwargs(kwargs: dict) -> str:
    shown = []
    for k, v in kwargs.items():
        text = repr(v)
        shown.append(f"{k}={text if len(text) <= 40 else text[:37] + '...'}")
    return ", ".join(shown)


def check_writer(modality, result, folder, *, read_tolerance: float = 1e-4) -> list[str]:
    """``result.save(folder)`` writes existing files plus ``metadata.json``, one file at least
    for each declared format, every file reads back in its format, and the modality's ``read``
    (if any) returns the outputs within ``read_tolerance``. Returns the written file names."""
    mod = _modality(modality)
    where = f"modality {mod.name!r} writer"
    paths = [Path(p) for p in result.save(folder)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        _fail(f"{where}: returned paths that do not exist: {', '.join(missing)}")
    meta = [p for p in paths if p.name == "metadata.json"]
    if not meta:
        _fail(f"{where}: no metadata.json was saved")
    metadata = json.loads(meta[0].read_text())
    for key in ("request", "resolved", "plugins"):
        if key not in metadata:
            _fail(f"{where}: metadata.json lacks {key!r}")
    data_files = [p for p in paths if p.name != "metadata.json"]
    if not data_files:
        _fail(f"{where}: write() returned no files")
    suffixes = {p.suffix.lstrip(".").lower() for p in data_files}
    for fmt in mod.formats:
        if fmt.lower().lstrip(".") not in suffixes:
            _fail(f"{where}: declares format {fmt!r} but wrote only {', '.join(sorted(suffixes))}")
    for p in data_files:
        try:
            read_back(p)
        except ConformanceError as exc:
            _fail(f"{where}: {exc}")
    if mod.read is not None:
        back = mod.read(data_files)
        if len(back) != len(result.outputs):
            _fail(f"{where}: read() returned {len(back)} outputs, {len(result.outputs)} were written")
        for i, (got, want) in enumerate(zip(back, result.outputs)):
            _compare(f"{where}: output {i}", got, want, read_tolerance)
    return sorted(p.name for p in data_files)


def _compare(where, got, want, tol):
    try:
        a, b = _as_array(got).astype(np.float64), _as_array(want).astype(np.float64)
    except (TypeError, ValueError):
        if got != want:
            _fail(f"{where} reads back as {got!r}, written {want!r}")
        return
    if a.shape != b.shape:
        _fail(f"{where} reads back with shape {a.shape}, written {b.shape}")
    err = float(np.abs(a - b).max()) if a.size else 0.0
    if not err <= tol * max(1.0, float(np.abs(b).max()) if b.size else 1.0):
        _fail(f"{where} reads back off by {err:.3g} (tolerance {tol:g})")


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def read_back(path) -> str:
    """Read a written file in the format its suffix names (csv, json, png, svg/xml, npy/npz,
    wav, txt/md, gif; any other must be non-empty); ``ConformanceError`` if it does not parse."""
    path = Path(path)
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if not data:
        _fail(f"{path.name} is empty")
    try:
        if suffix == ".json":
            json.loads(data)
        elif suffix == ".csv":
            rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
            if not rows or len({len(r) for r in rows if r}) != 1:
                raise ValueError("rows of different lengths")
        elif suffix == ".png":
            _check_png(data)
        elif suffix in (".svg", ".xml"):
            import xml.etree.ElementTree as ET

            ET.fromstring(data)
        elif suffix in (".npy", ".npz"):
            np.load(io.BytesIO(data), allow_pickle=False)
        elif suffix == ".wav":
            import wave

            with wave.open(io.BytesIO(data)) as w:
                if w.getnframes() < 1:
                    raise ValueError("no frames")
        elif suffix in (".txt", ".md"):
            data.decode("utf-8")
        elif suffix == ".gif":
            if data[:6] not in (b"GIF87a", b"GIF89a"):
                raise ValueError("no GIF header")
    except ConformanceError:
        raise
    except Exception as exc:
        _fail(f"{path.name} does not read back as {suffix.lstrip('.') or 'a file'}: {type(exc).__name__}: {exc}")
    return path.name


def _check_png(data: bytes) -> None:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("no PNG signature")
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"bad CRC in chunk {kind!r}")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None or not idat:
        raise ValueError("no IHDR or IDAT chunk")
    w, h, depth, colour, _, _, interlace = header
    raw = zlib.decompress(idat)
    if interlace == 0 and colour in _PNG_CHANNELS:
        expected = h * (1 + math.ceil(w * _PNG_CHANNELS[colour] * depth / 8))
        if len(raw) != expected:
            raise ValueError(f"{len(raw)} bytes of pixel data for {w}x{h}, expected {expected}")


def check_modality(modality, *, device: str = "cpu", n: int = 2, steps: int = 4) -> dict[str, str]:
    """The modality's declaration is consistent (``generate`` task, registered default backend)
    and every task it declares runs (``check_task``); tasks without example inputs are skipped.
    Returns {task: what was checked, or why it was skipped}."""
    mod = _modality(modality)
    _check_modality_spec(mod)
    done, problems = {}, []
    for task in mod.tasks:
        try:
            done[task] = check_task(mod, task, device=device, n=n, steps=steps)
        except CheckSkipped as exc:
            done[task] = f"skipped: {exc}"
        except ConformanceError as exc:
            problems.append(str(exc))
    if problems:
        _fail("; ".join(problems))
    return done


# ----------------------------------------------------------------------------- other hooks


def _impls(plugin_name: str, hook_name: str):
    from ..plugins import load_plugins

    return [i for i in getattr(load_plugins().hook, hook_name).get_hookimpls() if i.plugin_name == plugin_name]


@contextlib.contextmanager
def _counting(impls):
    """Count calls of these hook implementations (restored afterwards)."""
    calls = [0]
    originals = [impl.function for impl in impls]

    def wrap(fn):
        def counted(*args, **kwargs):
            calls[0] += 1
            return fn(*args, **kwargs)
        return counted

    for impl in impls:
        impl.function = wrap(impl.function)
    try:
        yield calls
    finally:
        for impl, fn in zip(impls, originals):
            impl.function = fn


def check_commands(plugin_name: str) -> str:
    """The plugin's ``register_commands`` adds at least one command to a click group, and each
    command's ``--help`` works."""
    import click
    from click.testing import CliRunner

    impls = _impls(plugin_name, "register_commands")
    if not impls:
        raise CheckSkipped(f"plugin {plugin_name!r} does not implement register_commands")
    group = click.Group("polydiff")
    for impl in impls:
        impl.function(cli=group)
    if not group.commands:
        _fail(f"plugin {plugin_name!r}: register_commands added no command")
    for name in group.commands:
        run = CliRunner().invoke(group, [name, "--help"])
        if run.exit_code != 0:
            _fail(f"plugin {plugin_name!r}: `polydiff {name} --help` exited {run.exit_code}: "
                  f"{' '.join(run.output.split())[:200]}")
    return f"adds {', '.join(sorted(group.commands))}; --help works"


@_single_thread
def check_step_hook(plugin_name: str, *, steps: int = 4) -> str:
    """The plugin's ``on_step`` is called once per step of a sampling run, which still ends in
    finite samples of the right shape."""
    from ..loop import sample

    impls = _impls(plugin_name, "on_step")
    if not impls:
        raise CheckSkipped(f"plugin {plugin_name!r} does not implement on_step")
    with _counting(impls) as calls:
        x = sample(_shared_mixture(), (3, 2), sampler="euler", steps=steps, seed=0)
    if calls[0] != steps * len(impls):
        _fail(f"plugin {plugin_name!r}: on_step was called {calls[0]} times in {steps} steps")
    if x.shape != (3, 2) or not torch.isfinite(x).all():
        _fail(f"plugin {plugin_name!r}: sampling with its on_step hook gave {_describe(x)}")
    return f"called at each of {steps} steps; samples intact"


def check_generation_hook(plugin_name: str, modality: str | None = None) -> str:
    """The plugin's ``run_generation`` takes part in ``generate`` (of ``modality``, default: one
    of its own modalities, else any installed one) and a ``Result`` comes back."""
    from ..generation import generate
    from ..result import Result

    impls = _impls(plugin_name, "run_generation")
    if not impls:
        raise CheckSkipped(f"plugin {plugin_name!r} does not implement run_generation")
    c = _components()
    if modality is None:  # its own modality, else the cheapest-looking one (no weights to load)
        own = [m for m, p in c.modalities.origin.items() if p == plugin_name]
        weights = {m: bool(getattr(c.backends.get(c.modalities[m].default_backend), "checkpoint", None))
                   for m in c.modalities}
        modality = (own or sorted(c.modalities, key=lambda m: (weights[m], m)) or [None])[0]
    if modality is None:
        raise CheckSkipped("no modality is installed to generate with")
    mod = _modality(modality)
    example = _example(mod, "generate")
    with _counting(impls) as calls:
        result = generate(mod.name, **{"n": 1, "steps": 2, "seed": 0, **example, "device": "cpu"})
    if calls[0] < len(impls):
        _fail(f"plugin {plugin_name!r}: its run_generation was not called by generate()")
    if not isinstance(result, Result) or len(result) < 1:
        _fail(f"plugin {plugin_name!r}: generate() returned {result!r} with its run_generation hook")
    return f"wraps generate({mod.name!r}); a Result comes back"


# ----------------------------------------------------------------------------- registering by hand


def _clear_caches() -> None:
    from .. import generation, registries

    registries.components.cache_clear()
    generation._load_encoder.cache_clear()
    generation._load_backend.cache_clear()


@contextlib.contextmanager
def registered(plugin, name: str | None = None):
    """Register ``plugin`` (a module, a module's name such as ``__name__``, or an object with
    ``@polydiff.hookimpl`` methods) for the duration of the ``with`` block, as if it were
    installed; yields its plugin name. Handy to try or test hooks without packaging them.
    Components are collected afresh on entry and on exit, so call it outside code that holds on
    to ``polydiff.components()``."""
    import importlib
    import sys

    from ..plugins import load_plugins

    if isinstance(plugin, str):
        plugin = sys.modules.get(plugin) or importlib.import_module(plugin)
    pm = load_plugins()
    name = pm.register(plugin, name=name)
    if name is None:
        raise PluginError(f"plugin {plugin!r} is already registered or blocked")
    try:
        pm.check_pending()
    except Exception as exc:
        pm.unregister(plugin)
        raise PluginError(f"plugin {name!r}: {exc}") from None
    _clear_caches()
    try:
        yield name
    finally:
        pm.unregister(plugin)
        _clear_caches()


# ----------------------------------------------------------------------------- the plugin report


@dataclass
class Outcome:
    """One check's result: ``status`` is "ok", "FAIL" or "skip"."""

    kind: str
    name: str
    status: str
    detail: str
    seconds: float = 0.0


@dataclass
class Report:
    """What ``check_plugin`` found; ``str(report)`` is a readable table, ``report.ok`` the verdict."""

    plugin: str
    version: str | None = None
    outcomes: list[Outcome] = field(default_factory=list)

    def of(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def ok(self) -> bool:
        return not self.of("FAIL")

    def __str__(self) -> str:
        head = (f"polydiff conformance of plugin {self.plugin!r}"
                + (f" {self.version}" if self.version else "")
                + f": {len(self.of('ok'))} passed, {len(self.of('FAIL'))} failed, {len(self.of('skip'))} skipped")
        width = max([len(o.name) for o in self.outcomes] + [4])
        lines = [f"  {o.status:<4}  {o.kind:<10} {o.name:<{width}}  {o.detail}"
                 + (f"  [{o.seconds:.1f} s]" if o.seconds >= 0.05 else "") for o in self.outcomes]
        return "\n".join([head, *lines])

    def raise_for_failures(self) -> "Report":
        if not self.ok:
            raise ConformanceError(str(self))
        return self


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" (at {Path(last.filename).name}:{last.lineno})"


def _attempt(report: Report, kind: str, name: str, fn, *args, **kwargs) -> None:
    start = time.perf_counter()
    try:
        detail, status = fn(*args, **kwargs), "ok"
    except CheckSkipped as exc:
        detail, status = str(exc), "skip"
    except ConformanceError as exc:
        detail, status = str(exc), "FAIL"
    except PolydiffError as exc:
        detail, status = f"{type(exc).__name__}: {exc}", "FAIL"
    except Exception as exc:  # a crash in the plugin's code: say what and where
        detail, status = f"raised {type(exc).__name__}: {exc}{_where(exc)}", "FAIL"
    detail = " ".join(str(detail or "").split())
    report.outcomes.append(Outcome(kind, name, status, detail, time.perf_counter() - start))


def _plugin_name(name: str, pm) -> str:
    from importlib.metadata import entry_points

    from ..plugins import failures

    if pm.has_plugin(name) or name in failures:
        return name
    for ep in entry_points(group="polydiff"):
        if ep.dist is not None and ep.dist.name.replace("_", "-").lower() == name.replace("_", "-").lower():
            return ep.name
    loaded = sorted(n for n, p in pm.list_name_plugin() if p is not None)
    raise ConformanceError(f"plugin {name!r} is not loaded (loaded: {', '.join(loaded)}); is it installed "
                           "(`polydiff plugins`), and not left out by POLYDIFF_PLUGINS?")


def _registered_names(plugin_name: str) -> dict[str, list[str]]:
    """Everything the plugin's register_* hooks register, by registry, shadowed names included."""
    found: dict[str, list[str]] = {k: [] for k in ("schedules", "spacings", "samplers", "modalities",
                                                    "encoders", "backends")}

    def by_object(kind):
        def register(obj, *args, **kwargs):
            found[kind].append(obj.name)
        return register

    def schedules(obj):
        from ..spacing import Spacing

        found["spacings" if isinstance(obj, Spacing) else "schedules"].append(obj.name)

    def samplers(name, fn, **kwargs):
        found["samplers"].append(name)

    hooks = {"register_schedules": schedules, "register_samplers": samplers,
             "register_modalities": by_object("modalities"), "register_encoders": by_object("encoders"),
             "register_backends": by_object("backends")}
    for hook, register in hooks.items():
        for impl in _impls(plugin_name, hook):
            impl.function(register=register)
    return found


def check_plugin(name: str, *, devices=None, raise_on_failure: bool = True) -> Report:
    """Check everything the installed plugin ``name`` (entry-point or distribution name)
    registered: samplers, schedules, spacings, encoders and backends on each device (default:
    ``available_devices()``), modalities and each of their tasks, commands, step and generation
    hooks. Returns the ``Report``; raises ``ConformanceError`` with it if a check failed (unless
    ``raise_on_failure=False``)."""
    from ..plugins import failures, load_plugins, versions

    pm = load_plugins()
    plugin_name = _plugin_name(name, pm)
    report = Report(plugin_name, versions.get(plugin_name))
    if plugin_name in failures:
        report.outcomes.append(Outcome("plugin", plugin_name, "FAIL", f"failed to load: {failures[plugin_name]}"))
        return report.raise_for_failures() if raise_on_failure else report
    explicit = devices is not None
    devices = list(devices) if explicit else available_devices()
    c = _components()
    try:
        names = _registered_names(plugin_name)
    except Exception as exc:
        report.outcomes.append(Outcome("plugin", plugin_name, "FAIL",
                                       f"a register hook raised {type(exc).__name__}: {exc}{_where(exc)}"))
        return report.raise_for_failures() if raise_on_failure else report

    def active(kind: str) -> list[str]:
        registry, out = getattr(c, kind), []
        for n in dict.fromkeys(names[kind]):
            owner = registry.origin.get(n)
            if owner == plugin_name:
                out.append(n)
            else:
                report.outcomes.append(Outcome(kind.rstrip("s").replace("modalitie", "modality"), n, "skip",
                                               f"overridden by plugin {owner!r}"))
        return out

    for n in active("samplers"):
        _attempt(report, "sampler", n, check_sampler, c.samplers[n])
    for n in active("schedules"):
        _attempt(report, "schedule", n, check_schedule, c.schedules[n])
    for n in active("spacings"):
        _attempt(report, "spacing", n, check_spacing, c.spacings[n])
    for n in active("encoders"):
        for device in devices:
            _attempt(report, "encoder", f"{n}@{device}", check_encoder, c.encoders[n], device)
    for n in active("backends"):
        spec = c.backends[n]
        absent = [] if explicit else [d for d in spec.devices if d == "cuda" and d not in devices]
        for device in [*devices, *absent]:  # a declared CUDA device that is absent shows as skipped
            _attempt(report, "backend", f"{n}@{device}", check_backend, spec, device)
    for n in active("modalities"):
        mod = c.modalities[n]
        _attempt(report, "modality", n, _check_modality_spec, mod)
        backend = c.backends.get(mod.default_backend)
        for device in devices:
            if backend is not None and device.split(":")[0] not in backend.devices:
                continue
            for task in mod.tasks:
                _attempt(report, "task", f"{n}:{task}@{device}", check_task, mod, task, device=device)
    hooks = {h.name for h in pm.get_hookcallers(pm.get_plugin(plugin_name)) or ()}
    if "register_commands" in hooks:
        _attempt(report, "commands", plugin_name, check_commands, plugin_name)
    if "on_step" in hooks:
        _attempt(report, "on_step", plugin_name, check_step_hook, plugin_name)
    if "run_generation" in hooks:
        _attempt(report, "generation", plugin_name, check_generation_hook, plugin_name)
    if not report.outcomes:
        report.outcomes.append(Outcome("plugin", plugin_name, "skip", "registers nothing the kit can check"))
    return report.raise_for_failures() if raise_on_failure else report
