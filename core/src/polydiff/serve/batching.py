"""Several requests, one sampling run: the server's micro-batching.

Requests that share modality, task, backend, steps, sampler, spacing, guidance and options,
and whose plans differ only in their conditions, are sampled together: conditions are stacked
row-wise and every row keeps its own request's seed (request seed s, sample i: seed s + i), so
each result is the one ``polydiff.generate`` gives for that request alone, up to what the
network's kernels do with another batch size (bit-exact for the example plugin's networks).
"""
from __future__ import annotations

import dataclasses
import time


def _stack(parts):
    """Row-wise concatenation of conditions (tensors, dicts of tensors or all None); None when
    the parts cannot be stacked."""
    import torch

    if all(p is None for p in parts):
        return None, True
    if all(torch.is_tensor(p) for p in parts):
        return torch.cat(parts), True
    if all(isinstance(p, dict) for p in parts) and len({tuple(sorted(p)) for p in parts}) == 1:
        keys = list(parts[0])
        if all(torch.is_tensor(p[k]) for p in parts for k in keys):
            return {k: torch.cat([p[k] for p in parts]) for k in keys}, True
    return None, False


def sample_together(requests, callback=None) -> list | None:
    """The ``Result`` of each request, sampled in one batch; None when their plans cannot be
    merged (constraints, different shapes or defaults), so the caller runs them one by one."""
    from ..builtin.generation import check_budget, make_result
    from ..generation import Context, SamplingRun
    from ..loop import sample

    contexts = [Context(r) for r in requests]
    plans = [c.task.plan(r, c) for r, c in zip(requests, contexts)]
    first = plans[0]
    same = all(p.shape == first.shape and p.guidance == first.guidance and p.steps == first.steps
               and p.sampler_options == first.sampler_options and not p.constraints for p in plans)
    cond, ok_cond = _stack([p.cond for p in plans])
    uncond, ok_uncond = _stack([p.uncond for p in plans])
    if not (same and ok_cond and ok_uncond):
        return None
    total = sum(r.n for r in requests)
    merged = contexts[0].request.model_copy(update={"n": total})
    context = Context(merged, callback=callback)
    plan = dataclasses.replace(first, cond=cond, uncond=uncond)
    check_budget(total, plan, context.modality)
    run = SamplingRun(context, plan)
    seeds = [r.seed + i for r in requests for i in range(r.n)]
    started = time.perf_counter()
    x = sample(run.denoiser, (total, *plan.shape), callback=callback, **{**run.options, "seed": seeds})
    seconds = time.perf_counter() - started
    results, lo = [], 0
    for r, c, p in zip(requests, contexts, plans):
        results.append(make_result(r, c, p, run, x[lo:lo + r.n], seconds))
        lo += r.n
    return results
