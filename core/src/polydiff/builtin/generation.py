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
    from polydiff.errors import InvalidInputError
    from polydiff.generation import SamplingRun
    from polydiff.loop import sample
    from polydiff.result import Result, describe_request

    modality, backend = context.modality, context.backend
    plan = context.task.plan(request, context)
    elements = request.n * math.prod(plan.shape)
    if elements > modality.max_elements:
        raise InvalidInputError(
            f"n x size: {request.n} samples of shape {tuple(plan.shape)} need {elements:,} values, "
            f"over this modality's memory budget of {modality.max_elements:,}; lower n or the size"
        )
    run = SamplingRun(context, plan)
    loaded, opts = run.loaded, run.options
    started = time.perf_counter()
    x = sample(run.denoiser, (request.n, *plan.shape), progress=context.progress, **opts)
    seconds = time.perf_counter() - started
    outputs = plan.decode(x) if plan.decode else list(x.cpu())
    metadata = {
        "request": describe_request(request),
        "resolved": {"sampler": opts["sampler"], "spacing": opts["spacing"], "steps": opts["steps"],
                     "guidance": run.guidance,
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
