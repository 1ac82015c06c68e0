"""Step grids tuned for one model: which times a run of N steps visits, chosen for that model.

Why: the best generic spacing depends on the data (a 2-D mixture wants a log-SNR window that a
256-D one loses with, issue 21), so no fixed rule wins everywhere. ``tune_steps`` minimises the
endpoint error against a fine reference solve from the same noise, on a calibration batch:
a coordinate search in log-SNR over the grid's inner times, started from the best registered
spacing (so it is never worse than that spacing on the calibration batch). A grid is stored in
``step-grids.json`` beside the checkpoint; ``load_trained`` reads it and a run of that sampler and
step count uses it when no spacing is named (Align Your Steps' idea, found by search instead of
by a bound).
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .errors import InvalidInputError
from .spacing import check_times

FILE = "step-grids.json"
FORMAT = 1


@dataclass
class TunedGrid:
    """A tuned grid and how it was found (what ``step-grids.json`` keeps per sampler and steps)."""

    sampler: str
    steps: int
    nfe: int
    schedule: str
    times: list[float]
    error: float                  # endpoint error on the calibration batch (RMS per value)
    start: str                    # the registered spacing the search started from
    start_error: float
    calibration: dict = field(default_factory=dict)


def tune_steps(denoiser, shape, nfe: int, **options) -> list[float]:
    """The tuned times (``steps + 1`` of them, ending at 0) for ``polydiff.sample(denoiser,
    shape, spacing=times, steps=steps, ...)``; see ``search`` for the options."""
    return search(denoiser, shape, nfe, **options).times


def search(denoiser, shape, nfe: int, *, sampler=None, schedule=None, seed: int = 1000, cond=None,
           constraints=(), device=None, sampler_options=None, reference_steps: int = 256, rounds: int = 4,
           progress: bool = False) -> TunedGrid:
    """Tune the grid of ``sampler`` (default: the process's) at ``nfe`` denoiser calls for
    ``denoiser`` on a calibration batch of ``shape[0]`` samples from seeds ``seed, seed + 1, ...``
    (use other seeds than those you evaluate on). The reference is a ``reference_steps``-step
    UniPC solve, even in log-SNR, from the same noise. ``rounds`` halvings of the search step
    (0.5 in log-SNR first)."""
    from .loop import DEFAULTS, resolve
    from .registries import components

    schedule = resolve("schedules", schedule or getattr(denoiser, "schedule", None) or "vp-linear")
    if getattr(schedule, "process", "gaussian") != "gaussian":
        raise InvalidInputError("tune-steps: step grids are tuned for Gaussian-process models only")
    sampler = sampler or DEFAULTS["gaussian"][0]
    if components().samplers.get_named(sampler).stochastic:
        raise InvalidInputError(f"tune-steps: {sampler!r} is stochastic; tune a deterministic sampler")
    steps = steps_for(sampler, nfe, schedule)
    error = _scorer(denoiser, shape, sampler, steps, schedule=schedule, seed=seed, cond=cond,
                    constraints=constraints, device=device, sampler_options=sampler_options,
                    reference_steps=reference_steps)
    tried = {}
    for name, spacing in components().spacings.items():
        if spacing.starts_at_t_start:
            tried[name] = (error(spacing(schedule, steps)), spacing(schedule, steps))
    start = min(tried, key=lambda n: tried[n][0])
    best, times = tried[start]
    lam = _lams(schedule, times)
    lo, hi = (float(v) for v in schedule.lam(torch.tensor([schedule.t_max, schedule.t_min], dtype=torch.float64)))
    bar = _bar(progress, rounds * 2 * max(len(lam), 1))
    for r in range(rounds if lam else 0):
        delta = 0.5 / 2**r
        for j in range(len(lam)):
            for move in (delta, -delta):
                below = lam[j - 1] if j else lo
                above = lam[j + 1] if j + 1 < len(lam) else hi + 1e-9
                trial = lam[:j] + [min(max(lam[j] + move, below + 1e-3), above - 1e-3)] + lam[j + 1:]
                candidate = _times(schedule, trial)
                if candidate is not None:
                    e = error(candidate)
                    if e < best:
                        best, lam, times = e, trial, candidate
                if bar:
                    bar.update(1)
    if bar:
        bar.close()
    return TunedGrid(sampler=sampler, steps=steps, nfe=nfe, schedule=schedule.name, times=times, error=best,
                     start=start, start_error=tried[start][0],
                     calibration={"n": int(shape[0]), "seed": seed, "reference_steps": reference_steps,
                                  "rounds": rounds})


def endpoint_errors(denoiser, shape, spacings: dict, sampler: str, steps: int, **options) -> dict[str, float]:
    """Endpoint error (RMS per value, mean over samples) of each of ``spacings`` (label -> a
    spacing name or times) against the reference solve, on samples from ``options["seed"]``:
    the held-out check of a tuned grid against the spacing it would replace."""
    from .loop import resolve

    options["schedule"] = resolve("schedules", options.get("schedule") or getattr(denoiser, "schedule", None)
                                  or "vp-linear")
    error = _scorer(denoiser, shape, sampler, steps, **options)
    return {label: error(spacing) for label, spacing in spacings.items()}


def _scorer(denoiser, shape, sampler, steps, *, schedule, seed, cond=None, constraints=(), device=None,
            sampler_options=None, reference_steps=256):
    """error(spacing): the endpoint error of a ``steps``-step run of ``sampler`` against a
    ``reference_steps``-step UniPC solve, even in log-SNR, from the same noise."""
    from .loop import sample

    common = dict(schedule=schedule, seed=seed, cond=cond, constraints=constraints, device=device,
                  dtype=torch.float64 if _is_oracle(denoiser) else torch.float32)
    with torch.inference_mode():
        reference = sample(denoiser, shape, sampler="unipc", spacing="logsnr", steps=reference_steps, **common)

    def error(spacing) -> float:
        with torch.inference_mode():
            out = sample(denoiser, shape, sampler=sampler, spacing=spacing, steps=steps,
                         sampler_options=sampler_options, **common)
        return float(((out - reference).double() ** 2).flatten(1).mean(1).sqrt().mean())

    return error


def steps_for(sampler: str, nfe: int, schedule) -> int:
    """The most steps of ``sampler`` whose run makes at most ``nfe`` denoiser calls (Heun makes
    two per step but one on the last), counted on a one-value dry run."""
    from .loop import sample

    if not isinstance(nfe, int) or nfe < 1:
        raise InvalidInputError(f"nfe must be a positive integer, got {nfe!r}")

    def calls(steps):
        count = [0]

        def dry(x, t, cond=None):
            count[0] += 1
            return torch.zeros_like(x)

        sample(dry, (1, 1), sampler=sampler, steps=steps, schedule=schedule, spacing="logsnr")
        return count[0]

    steps = nfe
    while steps > 1 and calls(steps) > nfe:
        steps -= 1
    return steps


def _is_oracle(denoiser) -> bool:
    return type(denoiser).__module__.startswith("polydiff.testing")


def _lams(schedule, times) -> list[float]:
    """log-SNR of the inner evaluated times (neither the first, t_max, nor the final 0)."""
    inner = times[1:-1] if len(times) > 2 else []
    if not inner:
        return []
    return [float(v) for v in schedule.lam(torch.tensor(inner, dtype=torch.float64))]


def _times(schedule, lams) -> list[float] | None:
    ts = [float(v) for v in schedule.t_of_lam(torch.tensor(lams, dtype=torch.float64))]
    out = [float(schedule.t_max)] + ts + [0.0]
    if not all(b < a for a, b in zip(out, out[1:])):
        return None  # two times met in float: not a grid
    return out


def _bar(progress: bool, total: int):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="tuning", unit="solve", leave=False)


# -- stored grids ------------------------------------------------------------------------------

def read_grids(folder) -> list[dict]:
    """The grids in ``folder/step-grids.json`` (none when the file is absent); one line naming
    the file and the fault when it is not a step-grid file."""
    path = Path(folder) / FILE
    if not path.is_file():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("grids"), list):
            raise ValueError(f"expected {{\"format\": {FORMAT}, \"grids\": [...]}}")
        for g in data["grids"]:
            if not (isinstance(g.get("sampler"), str) and isinstance(g.get("steps"), int)):
                raise ValueError("a grid without sampler and steps")
            if len(check_times(g["times"])) != g["steps"] + 1:
                raise ValueError(f"{g['sampler']} at {g['steps']} steps: {len(g['times'])} times")
    except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError, InvalidInputError) as exc:
        raise InvalidInputError(f"{path}: not a step-grid file ({exc})") from None
    return data["grids"]


def grid_for(grids, sampler: str, steps: int, schedule: str) -> list[float] | None:
    """The stored times for this sampler, step count and schedule, or None."""
    for g in grids or ():
        if g["sampler"] == sampler and g["steps"] == steps and g.get("schedule") == schedule:
            return list(g["times"])
    return None


def write_grids(folder, tuned: list[TunedGrid]) -> Path:
    """Add (or replace, per sampler, steps and schedule) grids in ``folder/step-grids.json``,
    written atomically."""
    from .output import current_umask

    folder = Path(folder)
    kept = [g for g in read_grids(folder)
            if not any((g["sampler"], g["steps"], g.get("schedule")) == (t.sampler, t.steps, t.schedule)
                       for t in tuned)]
    grids = sorted(kept + [asdict(t) for t in tuned], key=lambda g: (g["sampler"], g["steps"]))
    text = json.dumps({"format": FORMAT, "grids": grids}, indent=1, allow_nan=False) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{FILE}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes it private; a checkpoint file is not
        os.replace(tmp, folder / FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return folder / FILE
