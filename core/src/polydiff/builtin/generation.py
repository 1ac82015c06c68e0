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
    from polydiff.generation import SamplingRun
    from polydiff.loop import sample

    plan = context.task.plan(request, context)
    check_budget(request.n, plan, context.modality)
    run = SamplingRun(context, plan)
    started = time.perf_counter()
    x = sample(run.denoiser, (request.n, *plan.shape), progress=context.progress, callback=context.callback,
               **run.options)
    return make_result(request, context, plan, run, x, time.perf_counter() - started)


def check_budget(n: int, plan, modality) -> None:
    """Refuse a batch over the modality's memory budget before anything is sampled."""
    from polydiff.errors import InvalidInputError

    elements = n * math.prod(plan.shape)
    if elements > modality.max_elements:
        raise InvalidInputError(
            f"n x size: {n} samples of shape {tuple(plan.shape)} need {elements:,} values, "
            f"over this modality's memory budget of {modality.max_elements:,}; lower n or the size"
        )


def make_result(request, context, plan, run, x, seconds: float) -> Result:
    """The ``Result`` of one request from its sampled batch ``x``: decoded outputs and metadata
    (shared with any caller that samples several requests in one batch, e.g. the server)."""
    from polydiff.reproduce import describe_inputs
    from polydiff.result import Result, describe_request

    opts, loaded, backend = run.options, run.loaded, context.backend
    outputs = plan.decode(x) if plan.decode else list(x.cpu())
    metadata = {
        "request": describe_request(request),
        "resolved": {"sampler": opts["sampler"], "spacing": run.spacing, "steps": opts["steps"],
                     **({"times": opts["spacing"]} if run.spacing in ("tuned", "trained") else {}),
                     "guidance": run.guidance,
                     "schedule": loaded.schedule.name, "backend": backend.name,
                     "prediction": loaded.prediction, "device": context.device,
                     **({"sampler_options": opts["sampler_options"]} if opts.get("sampler_options") else {}),
                     **_overrides(request, opts, loaded, backend, run.spacing)},
        "inputs": describe_inputs(request),
        "checkpoint_sha256": _checkpoint_hash(backend.checkpoint),
        **({"model": loaded.source} if loaded.source else {}),
        "plugins": _versions(),
        "sampling_seconds": round(seconds, 4),
        **({"info": plan.info} if plan.info else {}),
    }
    return Result(modality=request.modality, outputs=outputs, samples=x, metadata=metadata,
                  writer=context.modality.write, request=request)


def _overrides(request, opts, loaded, backend, run_spacing) -> dict:
    """``{"overrides": {kind: plugin}}`` when a plugin replaced a component used here."""
    from polydiff.registries import overrides

    found = overrides(modality=request.modality, sampler=opts["sampler"], spacing=run_spacing,
                      schedule=loaded.schedule.name, backend=backend.name)
    return {"overrides": found} if found else {}


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
