"""Core's implementation of ``run_generation``: the task's plan, the backend, guidance,
sampling and metadata. Plugins may wrap it (``wrapper=True``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from polydiff.result import Result

import functools
import math
import time

from polydiff.hookspecs import hookimpl


@hookimpl(trylast=True)
def run_generation(request, context) -> Result:
    from polydiff.denoisers import as_denoiser, guided
    from polydiff.errors import InvalidInputError
    from polydiff.loop import DEFAULTS, sample
    from polydiff.result import Result, describe_request

    modality, backend = context.modality, context.backend
    plan = context.task.plan(request, context)
    elements = request.n * math.prod(plan.shape)
    if elements > modality.max_elements:
        raise InvalidInputError(
            f"n x size: {request.n} samples of shape {tuple(plan.shape)} need {elements:,} values, "
            f"over this modality's memory budget of {modality.max_elements:,}; lower n or the size"
        )
    loaded = context.model()
    denoiser = as_denoiser(loaded.net, loaded.schedule, loaded.prediction)
    scale = plan.guidance if request.guidance is None else request.guidance
    denoiser = guided(denoiser, plan.cond, plan.uncond, scale)
    default_sampler, default_spacing = DEFAULTS[getattr(loaded.schedule, "process", "gaussian")]
    sampler, spacing = request.sampler or default_sampler, request.spacing or default_spacing
    steps = request.steps or plan.steps
    started = time.perf_counter()
    x = sample(
        denoiser, (request.n, *plan.shape), sampler=sampler, steps=steps, schedule=loaded.schedule,
        spacing=spacing, seed=request.seed, constraints=plan.constraints, device=context.device,
        progress=context.progress, mask_id=loaded.mask_id,
        sampler_options=_sampler_options(plan.sampler_options, sampler),
    )
    seconds = time.perf_counter() - started
    outputs = plan.decode(x) if plan.decode else list(x.cpu())
    metadata = {
        "request": describe_request(request),
        "resolved": {"sampler": sampler, "spacing": spacing, "steps": steps, "guidance": scale,
                     "schedule": loaded.schedule.name, "backend": backend.name,
                     "prediction": loaded.prediction, "device": context.device,
                     **({"sampler_options": plan.sampler_options} if plan.sampler_options else {})},
        "checkpoint_sha256": _checkpoint_hash(backend.checkpoint),
        "plugins": _versions(),
        "sampling_seconds": round(seconds, 4),
        **({"info": plan.info} if plan.info else {}),
    }
    return Result(modality=request.modality, outputs=outputs, samples=x, metadata=metadata,
                  writer=modality.write, request=request)


def _sampler_options(options: dict, sampler: str) -> dict:
    """The plan's sampler options, each one the sampler takes (else one line naming it)."""
    import inspect

    from polydiff.errors import InvalidInputError
    from polydiff.registries import components

    if not options:
        return {}
    fn = components().samplers.get_named(sampler).fn
    takes = [p.name for p in list(inspect.signature(fn).parameters.values())[3:]
             if p.name not in ("noise", "step", "mask_id") and p.kind is not p.VAR_KEYWORD]
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())
    for name in options:
        if name not in takes and not accepts_any:
            raise InvalidInputError(f"{name}: not an option of the sampler {sampler!r}"
                                    + (f"; it takes {', '.join(takes)}" if takes else "; it takes none"))
    return dict(options)


def _checkpoint_hash(path):
    if not path:
        return None
    import os

    stat = os.stat(path)
    return _hash_file(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _hash_file(path, mtime_ns, size):  # keyed on mtime and size: a retrained file is rehashed
    from polydiff.checkpoint import sha256_file

    return sha256_file(path)


def _versions() -> dict:
    from polydiff import __version__
    from polydiff.plugins import versions

    return {"polydiff": __version__, **versions}
