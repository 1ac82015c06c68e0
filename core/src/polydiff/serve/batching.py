"""Several requests, one sampling run: the server's micro-batching.

Requests whose plans share shape, steps, sampler options and resolved sampler, spacing,
schedule and device, and have no editing constraints, are sampled in ONE ``sample`` call: the
state of all their samples is one tensor, every row keeps its own request's seed (request seed
s, sample i: seed s + i), and the sampler's steps, noise draws and updates run once for all.

The network, however, is called on each request's own rows (with its own conditions and
guidance), as ``polydiff.generate`` of that request alone would call it. Why: the kernels are
not batch-invariant. Measured with torch 2.14 on CPU, ``nn.Linear`` returns other bits for a
batch of 1-3 rows than for the same rows inside a larger batch (cuBLAS and cuDNN also pick
their algorithms by batch size), so one network call over the concatenation changed about 5 %
of the PNGs by 1/255. Per-request calls keep every result bit-identical to running it alone,
which the server promises; what batching saves is the loop's per-step overhead, not the
network's arithmetic.
"""
from __future__ import annotations

import time
from typing import Callable


def segmented(denoisers: list, sizes: list[int]) -> Callable:
    """``D(x, t, cond)`` over the concatenated rows of several requests: request k's rows
    (``sizes[k]`` of them, in order) go to ``denoisers[k]``, whose outputs are concatenated."""
    import torch

    bounds, lo = [], 0
    for n in sizes:
        bounds.append((lo, lo + n))
        lo += n

    def denoiser(x, t, _cond=None, **latent):  # a generator's z splits with its rows
        return torch.cat([d(x[a:b], t[a:b], **{k: v[a:b] for k, v in latent.items()})
                          for d, (a, b) in zip(denoisers, bounds)])

    latents = {getattr(d, "latent", None) for d in denoisers}
    if len(latents) == 1 and None not in latents:  # one backend: the same z shape for every request
        denoiser.latent = latents.pop()
    return denoiser


def _batchable(plans, runs) -> bool:
    first, opts = plans[0], runs[0].options
    same = ("sampler", "spacing", "steps", "schedule", "device", "mask_id", "sampler_options")
    latent = getattr(runs[0].denoiser, "latent", None)
    return all(p.shape == first.shape and not p.constraints and not r.options["constraints"]
               and getattr(r.denoiser, "latent", None) == latent
               and all(r.options[k] == opts[k] for k in same) for p, r in zip(plans, runs))


def sample_together(requests, callback=None) -> list | None:
    """The ``Result`` of each request, sampled in one ``sample`` call, each bit-identical to
    ``polydiff.generate`` of that request alone; None when their plans cannot share a run
    (constraints, different shapes or resolved options), so the caller runs them one by one."""
    from ..builtin.generation import check_budget, make_result
    from ..generation import Context, SamplingRun
    from ..loop import sample

    contexts = [Context(r, callback=callback) for r in requests]
    plans = [c.task.plan(r, c) for r, c in zip(requests, contexts)]
    for r, c, p in zip(requests, contexts, plans):
        check_budget(r.n, p, c.modality)
    runs = [SamplingRun(c, p) for c, p in zip(contexts, plans)]
    if not _batchable(plans, runs):
        return None
    sizes = [r.n for r in requests]
    total = sum(sizes)
    check_budget(total, plans[0], contexts[0].modality)
    seeds = [r.seed + i for r in requests for i in range(r.n)]
    started = time.perf_counter()
    x = sample(segmented([run.denoiser for run in runs], sizes), (total, *plans[0].shape), callback=callback,
               **{**runs[0].options, "seed": seeds})
    seconds = time.perf_counter() - started
    results, lo = [], 0
    for r, c, p, run in zip(requests, contexts, plans, runs):
        results.append(make_result(r, c, p, run, x[lo:lo + r.n], seconds))
        lo += r.n
    return results
