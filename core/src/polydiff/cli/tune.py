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
@click.option("--held-out", type=click.IntRange(0, 4096), default=8, show_default=True,
              help="samples (seeds from --held-out-seed) on which a tuned grid must beat the default "
                   "spacing to be stored; 0 skips the check")
@click.option("--held-out-seed", type=int, default=0, show_default=True)
@click.option("--keep-worse", is_flag=True, help="store grids that lose on the held-out samples too")
@click.option("-o", "--out", help="folder for step-grids.json (default: the checkpoint's folder)")
@click.option("--device", default="cpu", show_default=True)
@click.option("--quiet", is_flag=True, help="no progress bar")
def tune_steps(modality, nfe, prompts, backend, sampler, task, batch, seed, reference_steps, rounds, held_out,
               held_out_seed, keep_worse, out, device, quiet) -> None:
    """Tune the times a run visits for MODALITY's model at each --nfe, against a fine reference
    solve on a calibration batch, and store them in step-grids.json beside the checkpoint, where
    runs of that sampler and step count find them when no --spacing is given. A grid is stored
    only where it also beats the default spacing on --held-out samples of other seeds (a grid
    tuned on a few samples can fit them and lose elsewhere)."""
    from ..errors import InvalidInputError
    from ..generation import Context
    from ..loop import DEFAULTS
    from ..request import GenerateRequest
    from ..step_grids import endpoint_errors, search, write_grids
    from .plugins import _table

    base = GenerateRequest.build(modality=modality, prompt=None, task=task, backend=backend, sampler=sampler,
                                 device=device, seed=seed)
    context = Context(base)
    if not prompts:
        example = context.task.example_arguments() or {}
        prompts = (example.get("prompt"),)
    folder = Path(out) if out else Path(context.backend.checkpoint or "").parent
    if not out and not context.backend.checkpoint:
        raise InvalidInputError(f"backend {context.backend.name!r} names no checkpoint file; give -o FOLDER")
    denoiser, shape, run, seeds = _batch(base, prompts, batch, seed, task)
    check = _batch(base, prompts, held_out, held_out_seed, task, "--held-out") if held_out else None
    if check and set(check[3]) & set(seeds):
        raise InvalidInputError("--held-out-seed: the held-out seeds overlap the calibration seeds")
    default_spacing = DEFAULTS["gaussian"][1]
    options = dict(schedule=run.options["schedule"], device=run.options["device"],
                   sampler_options=run.options["sampler_options"], reference_steps=reference_steps)
    tuned, rows = [], []
    for budget in nfe:
        found = search(denoiser, shape, budget, sampler=run.options["sampler"], seed=seeds, rounds=rounds,
                       progress=not quiet, **options)
        held = "-"
        keep = True
        if check:
            errors = endpoint_errors(check[0], check[1], {"default": default_spacing, "tuned": found.times},
                                     found.sampler, found.steps, seed=check[3], **options)
            found.calibration["held_out"] = {"n": held_out, "seed": held_out_seed, "default_spacing": default_spacing,
                                             "default_error": errors["default"], "error": errors["tuned"]}
            held = f"{errors['default']:.4g} -> {errors['tuned']:.4g}"
            keep = keep_worse or errors["tuned"] < errors["default"]
        if keep:
            tuned.append(found)
        rows.append((found.sampler, found.nfe, found.steps, f"{found.start} {found.start_error:.4g}",
                     f"{found.error:.4g}", held, "yes" if keep else "no (loses held out)"))
    _table(rows, ("sampler", "nfe", "steps", "best spacing, error", "tuned error",
                  f"held out: {default_spacing} -> tuned", "stored"))
    if not tuned:
        click.echo("no grid beat the default spacing on the held-out samples; nothing stored")
        return
    path = write_grids(folder, tuned)
    click.echo(str(path))


def _batch(base, prompts, batch, seed, task, option="--batch"):
    """(denoiser over the whole batch, its shape, the first prompt's run, the seeds) for
    ``batch`` samples split over ``prompts``, sample i from seed ``seed + i``."""
    from ..errors import InvalidInputError
    from ..generation import Context, SamplingRun
    from ..serve.batching import segmented

    sizes = [batch // len(prompts) + (i < batch % len(prompts)) for i in range(len(prompts))]
    if min(sizes) < 1:
        raise InvalidInputError(f"{option} {batch} is smaller than the {len(prompts)} prompts")
    runs, seeds, plans = [], [], []
    for prompt, n in zip(prompts, sizes):
        request = base.model_copy(update={"prompt": prompt, "n": n, "seed": seed + len(seeds)})
        ctx = Context(request)
        plans.append(ctx.task.plan(request, ctx))
        if plans[-1].constraints:
            raise InvalidInputError(f"tune-steps: the {task!r} task samples under constraints; tune 'generate'")
        runs.append(SamplingRun(ctx, plans[-1]))
        seeds += [request.seed + i for i in range(n)]
    return segmented([r.denoiser for r in runs], sizes), (batch, *plans[0].shape), runs[0], seeds
