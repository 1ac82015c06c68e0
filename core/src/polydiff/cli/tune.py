"""``polydiff tune-steps``: tune a model's step grids and store them beside its checkpoint."""
from __future__ import annotations

from pathlib import Path

import click


@click.command("tune-steps")
@click.argument("modality")
@click.option("--nfe", type=click.IntRange(1, 1000), multiple=True, required=True,
              help="denoiser calls per run (repeat for several budgets)")
@click.option("--prompt", "prompts", multiple=True, help="calibration prompt (repeat; default: the task's example)")
@click.option("--backend", help="backend (default: the modality's)")
@click.option("--sampler", help="sampler to tune for (default: the one runs use)")
@click.option("--task", default="generate", show_default=True)
@click.option("--batch", type=click.IntRange(1, 4096), default=16, show_default=True, help="calibration samples")
@click.option("--seed", type=int, default=1000, show_default=True,
              help="first calibration seed (keep it apart from the seeds you judge results on)")
@click.option("--reference-steps", type=click.IntRange(16, 10000), default=256, show_default=True)
@click.option("--rounds", type=click.IntRange(1, 10), default=4, show_default=True,
              help="halvings of the search step (each costs 2 solves per inner time)")
@click.option("-o", "--out", help="folder for step-grids.json (default: the checkpoint's folder)")
@click.option("--device", default="cpu", show_default=True)
@click.option("--quiet", is_flag=True, help="no progress bar")
def tune_steps(modality, nfe, prompts, backend, sampler, task, batch, seed, reference_steps, rounds, out,
               device, quiet) -> None:
    """Tune the times a run visits for MODALITY's model at each --nfe, against a fine reference
    solve on a calibration batch, and store them in step-grids.json beside the checkpoint, where
    runs of that sampler and step count find them when no --spacing is given."""
    from ..errors import InvalidInputError
    from ..generation import Context, SamplingRun
    from ..request import GenerateRequest
    from ..serve.batching import segmented
    from ..step_grids import search, write_grids
    from .plugins import _table

    base = GenerateRequest.build(modality=modality, prompt=None, task=task, backend=backend, sampler=sampler,
                                 device=device, seed=seed)
    context = Context(base)
    if not prompts:
        example = context.task.example_arguments() or {}
        prompts = (example.get("prompt"),)
    sizes = [batch // len(prompts) + (i < batch % len(prompts)) for i in range(len(prompts))]
    if min(sizes) < 1:
        raise InvalidInputError(f"--batch {batch} is smaller than the {len(prompts)} prompts")
    runs, seeds = [], []
    for prompt, n in zip(prompts, sizes):
        request = base.model_copy(update={"prompt": prompt, "n": n, "seed": seed + len(seeds)})
        ctx = Context(request)
        plan = ctx.task.plan(request, ctx)
        if plan.constraints:
            raise InvalidInputError(f"tune-steps: the {task!r} task samples under constraints; tune 'generate'")
        runs.append((SamplingRun(ctx, plan), plan))
        seeds += [request.seed + i for i in range(n)]
    run, plan = runs[0]
    denoiser = segmented([r.denoiser for r, _ in runs], sizes)
    folder = Path(out) if out else Path(context.backend.checkpoint or "").parent
    if not out and not context.backend.checkpoint:
        raise InvalidInputError(f"backend {context.backend.name!r} names no checkpoint file; give -o FOLDER")
    tuned = []
    for budget in nfe:
        found = search(denoiser, (batch, *plan.shape), budget, sampler=run.options["sampler"],
                       schedule=run.options["schedule"], seed=seeds, device=run.options["device"],
                       sampler_options=run.options["sampler_options"], reference_steps=reference_steps,
                       rounds=rounds, progress=not quiet)
        tuned.append(found)
    path = write_grids(folder, tuned)
    _table([(t.sampler, t.nfe, t.steps, f"{t.start} {t.start_error:.4g}", f"{t.error:.4g}",
             f"{t.error / t.start_error:.2f}" if t.start_error else "-") for t in tuned],
           ("sampler", "nfe", "steps", "best spacing, error", "tuned error", "ratio"))
    click.echo(str(path))
