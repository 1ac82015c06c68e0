"""``sample``: run any sampler over any denoiser, with constraints, step hooks and a progress bar."""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from .errors import InvalidInputError, NonFiniteError
from .noise import SeededNoise
from .schedules import Grid, NoiseSchedule
from .spacing import Spacing, check_times
from .specs import StepInfo

DEFAULT_SAMPLER = "dpmpp_3m"
DEFAULT_SPACING = "logsnr"
DEFAULT_SCHEDULE = "vp-linear"


def resolve(kind: str, value):
    """A registered component by name, or the object itself if one was passed."""
    if not isinstance(value, str):
        return value
    from .registry import components

    return getattr(components(), kind).get_named(value)


def build_grid(schedule, spacing, steps: int, t_start: float | None = None) -> Grid:
    if isinstance(spacing, (list, tuple)):
        times = check_times(spacing)
    else:
        spacing = resolve("spacings", spacing)
        if not isinstance(spacing, Spacing):
            raise InvalidInputError(f"spacing must be a name, a Spacing or a list of times, got {spacing!r}")
        if t_start is not None:
            t_start = min(float(t_start) * schedule.t_max, schedule.t_max)
        times = spacing(schedule, steps, t_start)
    return Grid.build(schedule, times)


def _check_shape(shape) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise InvalidInputError(f"shape must be a tuple of positive integers, got {shape!r}") from None
    if len(shape) < 1 or any(s < 1 for s in shape):
        raise InvalidInputError(f"shape must be a tuple of positive integers, got {shape!r}")
    return shape


def sample(
    denoiser: Callable,
    shape: Sequence[int],
    *,
    sampler="dpmpp_3m",
    steps: int = 20,
    schedule: NoiseSchedule | str | None = None,
    spacing="logsnr",
    seed: int = 0,
    cond=None,
    constraints: Sequence = (),
    device=None,
    dtype=torch.float32,
    callback: Callable | None = None,
    progress: bool = False,
    sampler_options: dict | None = None,
):
    """Draw ``shape[0]`` samples with the denoiser ``D(x, t, cond) -> x0_hat``.

    Sample i uses seed ``seed + i`` for all of its noise, so it is the same whatever the batch.
    ``schedule`` defaults to the denoiser's ``.schedule`` attribute, else ``vp-linear``.
    """
    shape = _check_shape(shape)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise InvalidInputError(f"steps must be a positive integer, got {steps!r}")
    schedule = resolve("schedules", schedule or getattr(denoiser, "schedule", None) or DEFAULT_SCHEDULE)
    spec = resolve("samplers", sampler)
    fn = getattr(spec, "fn", spec)
    device = torch.device(device or "cpu")
    t_start = min((c.t_start for c in constraints if c.t_start is not None), default=None)
    grid = build_grid(schedule, spacing, steps, t_start)
    noise = SeededNoise.for_batch(seed, shape[0], device, dtype)

    bad = torch.zeros((), dtype=torch.bool, device=device)  # NaN seen, checked once at the end

    def model(x, t):
        nonlocal bad
        x0 = denoiser(x, torch.full((x.shape[0],), t, device=device, dtype=dtype), cond)
        if x0.shape != x.shape:
            raise InvalidInputError(f"denoiser returned shape {tuple(x0.shape)} for input {tuple(x.shape)}")
        bad = bad | ~torch.isfinite(x0).all()
        return x0

    for c in constraints:
        model = c.wrap(model, grid, noise)

    step_hooks = _step_hooks()
    bar = _progress(len(grid)) if progress else None

    def on_step(i, x, x0):
        for c in constraints:
            x = c.after_step(i, x, grid, model, noise)
        if step_hooks or callback:
            info = StepInfo(i, len(grid), grid.t[i + 1], x, x0)
            for hook in step_hooks:
                hook(step=info)
            if callback is not None:
                callback(info)
            x = info.x
        if bar is not None:
            bar.update(1)
        return x

    needs_grad = any(c.needs_grad for c in constraints)
    with torch.no_grad() if needs_grad else torch.inference_mode():
        z = noise.randn(shape[1:])
        x = z * grid.sigma[0]
        for c in constraints:
            x = c.start(z, grid)
        try:
            x = fn(model, x, grid, noise=noise, callback=on_step, **(sampler_options or {}))
        finally:
            if bar is not None:
                bar.close()
        for c in constraints:
            x = c.finish(x)
    if bool(bad) or not bool(torch.isfinite(x).all()):
        raise NonFiniteError("the model returned NaN or infinity during sampling")
    return x


def _step_hooks():
    from .plugins import load_plugins

    hook = load_plugins().hook.on_step
    return [impl.function for impl in reversed(hook.get_hookimpls())]


def _progress(total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="sampling", unit="step", leave=False)
