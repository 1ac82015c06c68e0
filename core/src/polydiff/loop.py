"""``sample``: run any sampler over any denoiser, with constraints, step hooks and a progress bar."""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from .contract import StepInfo
from .errors import InvalidInputError, NonFiniteError
from .heap import keep_heap
from .noise import SeededNoise
from .schedules import Grid, NoiseSchedule
from .spacing import Spacing, check_times

# The measured winner at 5, 10 and 20 NFE in benchmarks/accuracy.py (see benchmarks/results/).
DEFAULT_SAMPLER = "unipc"
DEFAULT_SPACING = "logsnr-window"
DEFAULT_SCHEDULE = "vp-linear"
# per process: (sampler, spacing) when none is named; masked steps are even in t (as MDLM's)
DEFAULTS = {"gaussian": (DEFAULT_SAMPLER, DEFAULT_SPACING), "masked": ("mdlm", "trailing")}


def resolve(kind: str, value) -> Any:
    """A registered component by name, or the object itself if one was passed."""
    if not isinstance(value, str):
        return value
    from .registries import components

    return getattr(components(), kind).get_named(value)


# built grids per schedule: a grid is a pure function of (schedule, spacing, steps, t_start) and
# immutable, and building one (a log-SNR inversion, float64 maths) is most of a call's set-up
_GRIDS: "weakref.WeakKeyDictionary[NoiseSchedule, dict]" = weakref.WeakKeyDictionary()
_GRIDS_PER_SCHEDULE = 64


def build_grid(schedule, spacing, steps: int, t_start: float | None = None) -> Grid:
    if isinstance(spacing, (list, tuple)):
        times = check_times(spacing)
        return Grid.build(schedule, times)
    spacing = resolve("spacings", spacing)
    if not isinstance(spacing, Spacing):
        raise InvalidInputError(f"spacing must be a name, a Spacing or a list of times, got {spacing!r}")
    if t_start is not None:
        t_start = min(float(t_start) * schedule.t_max, schedule.t_max)
    key = (spacing, steps, t_start)
    try:
        cached = _GRIDS.setdefault(schedule, {})
        grid = cached.get(key)
    except TypeError:  # a schedule or spacing that cannot be a key: built every time
        cached, grid = {}, None
    if grid is None:
        grid = Grid.build(schedule, spacing(schedule, steps, t_start))
        if len(cached) >= _GRIDS_PER_SCHEDULE:
            cached.pop(next(iter(cached)))
        cached[key] = grid
    return grid


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
    sampler=None,
    steps: int = 20,
    schedule: NoiseSchedule | str | None = None,
    spacing=None,
    seed: int | Sequence[int] = 0,
    cond=None,
    constraints: Sequence = (),
    device=None,
    dtype=torch.float32,
    callback: Callable | None = None,
    progress: bool = False,
    sampler_options: dict | None = None,
    compile: bool | dict = False,
    autocast: str | None = None,
    channels_last: bool = False,
    mask_id: int | None = None,
    trajectory: bool = False,
) -> torch.Tensor | Trajectory:
    """Draw ``shape[0]`` samples with the denoiser ``D(x, t, cond) -> x0_hat``.

    The schedule's process decides the rest: a Gaussian schedule samples real tensors from
    noise; a masked one (``mask-linear``, ``mask-cosine``) samples tokens [n, L] from all
    ``mask_id`` (default: the denoiser's ``.mask_id``) with ``D(tokens, t, cond) -> logits``
    [n, L, V]. ``sampler`` and ``spacing`` default to the process's own (``DEFAULTS``); a
    sampler of the other process is refused.

    Sample i uses seed ``seed + i`` for all of its noise, so it is the same whatever the batch;
    ``seed`` may also be one seed per sample (how a server samples several requests at once).
    ``schedule`` defaults to the denoiser's ``.schedule`` attribute, else ``vp-linear``.
    ``callback(info)`` sees a ``polydiff.StepInfo`` after every step, after the constraints and
    the ``on_step`` hooks, and may change the state by setting ``info.x``, as they may.

    Speed options (all off by default; the loop itself never waits for the device):
    ``compile``: ``torch.compile`` the denoiser (True, or a dict of ``torch.compile`` arguments,
    e.g. ``{"mode": "reduce-overhead"}`` for CUDA graphs); the first call pays the compilation.
    ``autocast``: ``"bf16"`` or ``"fp16"`` runs the denoiser under ``torch.autocast`` on the
    sampling device (the sampler's own state stays in ``dtype``).
    ``channels_last``: keep 4-D states in channels-last memory format (convert the network
    with ``net.to(memory_format=torch.channels_last)`` too).

    ``trajectory=True`` returns a ``polydiff.Trajectory`` instead of the samples: the reverse
    path, every state ``x_t`` from the start to the end and the denoiser's ``x0_hat`` at every
    step (copies kept on the sampling device).
    """
    shape = _check_shape(shape)
    keep_heap()
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise InvalidInputError(f"steps must be a positive integer, got {steps!r}")
    schedule = resolve("schedules", schedule or getattr(denoiser, "schedule", None) or DEFAULT_SCHEDULE)
    process = getattr(schedule, "process", "gaussian")
    spec = resolve("samplers", sampler or DEFAULTS[process][0])
    fn = getattr(spec, "fn", spec)
    _check_process(spec, schedule, constraints)
    device = torch.device(device or "cpu")
    t_start = min((c.t_start for c in constraints if c.t_start is not None), default=None)
    grid = build_grid(schedule, spacing or DEFAULTS[process][1], steps, t_start)
    noise = _row_noise(seed, shape[0], device, dtype)
    masked = process == "masked"
    if masked:
        mask_id = _mask_id(mask_id, denoiser)
        sampler_options = {"mask_id": mask_id, **(sampler_options or {})}

    latent = getattr(denoiser, "latent", None)  # a generator's noise input, per sample from its seed
    net = _speed_up(denoiser, compile, autocast, device)
    memory_format = torch.channels_last if channels_last and len(shape) == 4 else None
    acc = torch.float64 if dtype == torch.float64 else torch.float32
    sums = []  # one sum per denoiser output: a NaN or infinity anywhere makes it non-finite;
    # checked once at the end (one reduction per step, no host sync in the loop)
    times: dict = {}  # t -> the [batch] tensor of t, made once per distinct time and batch size

    def model(x, t):
        tt = times.get((t, x.shape[0]))
        if tt is None:
            tt = times[t, x.shape[0]] = torch.full((x.shape[0],), t, device=device, dtype=dtype)
        x0 = net(x, tt, cond) if latent is None else net(x, tt, cond, z=noise.randn(latent))
        if (x0.shape[:-1] if masked else x0.shape) != x.shape:
            raise InvalidInputError(f"denoiser returned shape {tuple(x0.shape)} for input {tuple(x.shape)}"
                                    + (" (a masked-process denoiser returns logits [*input, vocabulary])"
                                       if masked else ""))
        if x0.dtype != x.dtype and not masked:
            x0 = x0.to(x.dtype)
        if memory_format is not None:
            x0 = x0.contiguous(memory_format=memory_format)
        sums.append(x0.detach().sum(dtype=acc))
        return x0

    for c in constraints:
        model = c.wrap(model, grid, noise)

    step_hooks = _step_hooks()
    bar = _progress(len(grid)) if progress else None
    path: list | None = [] if trajectory else None

    def on_step(info: StepInfo):  # the sampler's ``step``: constraints, hooks, callback, bar
        for c in constraints:
            info.x = c.after_step(info.i, info.x, grid, model, noise)
        for hook in step_hooks:
            hook(step=info)
        if callback is not None:
            callback(info)
        if path is not None:
            path.append((info.t, info.x.clone(), info.x0.detach().clone()))
        if bar is not None:
            bar.update(1)

    needs_grad = any(c.needs_grad for c in constraints)
    with torch.no_grad() if needs_grad else torch.inference_mode():
        if masked:   # every token masked; constraints start from that
            z = x = torch.full(shape, mask_id, dtype=torch.long, device=device)
        else:
            z = noise.randn(shape[1:])
            x = z * grid.sigma[0]
        for c in constraints:
            x = c.start(z, grid)
        if memory_format is not None:
            x = x.contiguous(memory_format=memory_format)
        start = x.clone() if trajectory else None
        try:
            needs_step = constraints or step_hooks or callback is not None or bar is not None or trajectory
            x = fn(model, x, grid, noise=noise, step=on_step if needs_step else None,
                   **(sampler_options or {}))
        finally:
            if bar is not None:
                bar.close()
        for c in constraints:
            x = c.finish(x)
    total = x.sum(dtype=acc) + (torch.stack(sums).sum() if sums else 0)
    if not bool(torch.isfinite(total)):
        raise NonFiniteError("the model returned NaN or infinity during sampling")
    if path is None:
        return x
    return Trajectory(sample=x, t=[float(grid.t[0])] + [float(t) for t, _, _ in path],
                      x=torch.stack([start] + [s for _, s, _ in path]), x0=torch.stack([e for _, _, e in path]))


@dataclass
class Trajectory:
    """The reverse path of ``sample(..., trajectory=True)``: ``x[k]`` is the state at time
    ``t[k]`` (``x[0]`` the starting noise or mask, ``x[-1]`` before any constraint's finish),
    ``x0[k]`` the denoiser's clean estimate made in step k (``len(t) - 1`` steps), and
    ``sample`` what ``sample`` would have returned."""

    sample: torch.Tensor
    t: list[float]
    x: torch.Tensor
    x0: torch.Tensor


AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _check_process(spec, schedule, constraints) -> None:
    """One line when a sampler or constraint is for the other noise process than the schedule's."""
    process = getattr(schedule, "process", "gaussian")
    drives = getattr(spec, "process", "gaussian")
    if drives != process:
        from .registries import components

        fitting = sorted(n for n, s in components().samplers.items() if s.process == process)
        raise InvalidInputError(
            f"sampler: {getattr(spec, 'name', spec)!r} drives the {drives} process, but the schedule "
            f"{schedule.name!r} is {process}; use one of: {', '.join(fitting)}")
    for c in constraints:
        if process not in getattr(c, "processes", ("gaussian",)):
            raise InvalidInputError(f"{type(c).__name__} does not apply to the {process} process")


def _mask_id(mask_id, denoiser) -> int:
    mask_id = getattr(denoiser, "mask_id", None) if mask_id is None else mask_id
    if mask_id is None or isinstance(mask_id, bool) or not isinstance(mask_id, int) or mask_id < 0:
        raise InvalidInputError(f"mask_id: the masked process needs the mask token's id (a non-negative "
                                f"integer, or the denoiser's .mask_id), got {mask_id!r}")
    return mask_id


def _speed_up(denoiser, compile, autocast, device):
    """The denoiser, optionally compiled and run under autocast (see ``sample``)."""
    if autocast is not None and autocast not in AUTOCAST:
        raise InvalidInputError(f"autocast must be one of {sorted(AUTOCAST)} or None, got {autocast!r}")
    net = denoiser
    if compile:
        options = compile if isinstance(compile, dict) else {}
        compiled = torch.compile(denoiser, **options)
        if options.get("mode") in ("reduce-overhead", "max-autotune"):
            # CUDA graphs reuse their output buffers at the next call, and multistep samplers
            # keep earlier outputs: hand out copies
            net = lambda x, t, cond: compiled(x, t, cond).clone()  # noqa: E731
        else:
            net = compiled
    if autocast is None:
        return net
    inner, kind, half = net, device.type, AUTOCAST[autocast]

    def autocast_denoiser(x, t, cond):
        with torch.autocast(kind, dtype=half):
            return inner(x, t, cond)

    return autocast_denoiser


def _step_hooks():
    from .plugins import load_plugins

    hook = load_plugins().hook.on_step
    return [impl.function for impl in reversed(hook.get_hookimpls())]


def _row_noise(seed, n: int, device, dtype) -> SeededNoise:
    if isinstance(seed, int) and not isinstance(seed, bool):
        return SeededNoise.for_batch(seed, n, device, dtype)
    seeds = list(seed)
    if len(seeds) != n or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise InvalidInputError(f"seed: expected an integer or {n} integers (one per sample), got {seed!r}")
    return SeededNoise(seeds, device, dtype)


def _progress(total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="loop", unit="step", leave=False)
