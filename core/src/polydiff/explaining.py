"""``explain``: one figure of what diffusion does to a modality's data, drawn with its own model.

Rows: the forward process (one sample noised to increasing t by ``diffuse``), the reverse
process (the sampler's states ``x_t`` from noise to the sample, from ``sample(trajectory=True)``)
with the denoiser's clean estimate ``x0_hat`` under each state, and last the schedule's
log-SNR with the times the sampler visited, beside one edit: the first half of the sample's
last axis kept by ``Replacement`` (an image's left half, a spectrogram's first half second, a
point's x) and the rest generated again. The modality draws each panel (``Modality.picture``).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .errors import InvalidInputError

PANELS = 6  # states per strip


def explain(modality: str, out="out", *, prompt: str | None = None, seed: int = 0, steps: int | None = None,
            device: str = "cpu") -> Path:
    """Write ``out/explain-<modality>.png`` and return its path. ``prompt`` defaults to the
    generate task's example; ``steps`` to the task's own."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise InvalidInputError("explain draws with matplotlib: pip install 'polydiff[explain]'") from None
    from .editing import Replacement
    from .forward import diffuse
    from .generation import Context, SamplingRun
    from .loop import sample
    from .registries import components
    from .request import GenerateRequest

    mod = components().modalities.get_named(modality)
    if mod.picture is None:
        raise InvalidInputError(f"{modality}: this modality draws no pictures (Modality.picture), so it cannot be explained")
    task = mod.task("generate")
    # the example minus its few steps (a check's) and its n (the picture says how many it shows)
    example = {k: v for k, v in (task.example_arguments() or {}).items() if k not in ("steps", "n")}
    args = {**example, **({"prompt": prompt} if prompt is not None else {}), **({"steps": steps} if steps else {})}
    request = GenerateRequest.build(modality=modality, n=mod.picture_samples, seed=seed, device=device, **args)
    context = Context(request)
    plan = task.plan(request, context)
    run = SamplingRun(context, plan)
    loaded, options, denoiser = run.loaded, run.options, run.denoiser
    shape = (request.n, *plan.shape)
    path = sample(denoiser, shape, trajectory=True, **options)
    x0 = path.sample
    times = [k / (PANELS - 1) for k in range(PANELS)]
    forward = diffuse(x0, times, schedule=loaded.schedule, seed=seed, mask_id=loaded.mask_id)
    mask = torch.zeros_like(x0, dtype=torch.float32)
    mask[..., : max(1, x0.shape[-1] // 2)] = 1
    kept = Replacement(x0, mask if x0.is_floating_point() else mask.bool())
    edited = sample(denoiser, shape, **{**options, "seed": seed + 1, "constraints": [*plan.constraints, kept]})
    shown = torch.where(mask.bool(), x0, torch.zeros_like(x0)) if x0.is_floating_point() else x0
    picks = sorted({round(k * (len(path.t) - 1) / (PANELS - 1)) for k in range(PANELS)})

    first = _array(mod.picture(x0.cpu()))
    scale = (float(first.min()), float(first.max()))  # every panel on the clean sample's scale

    def panel(cell, batch, label, title=None):
        _panel(fig, cell, mod.picture(batch.cpu()), label, title, scale)
    ratio = min(max(first.shape[0] / first.shape[1], 0.15), 1.0)
    fig = Figure(figsize=(PANELS * 2.0, 3 * (2.0 * ratio + 0.45) + 2.6), layout="constrained")
    FigureCanvasAgg(fig)
    rows = fig.add_gridspec(4, 1, height_ratios=[2.0 * ratio + 0.45] * 3 + [2.6])
    strips = [rows[r].subgridspec(1, PANELS) for r in range(3)]
    for k, t in enumerate(times):
        panel(strips[0][k], forward[k], f"t = {t:.1f}",
               "forward: x_t = α(t)·x0 + σ(t)·ε" if k == 0 else None)
    for col, k in enumerate(picks):
        estimate = path.x0[k] if k < len(path.x0) else path.sample
        panel(strips[1][col], path.x[k], f"t = {path.t[k]:.2f}",
               f"reverse: the states x_t of {len(path.t) - 1} sampler steps" if col == 0 else None)
        panel(strips[2][col], estimate, "x0_hat" if k < len(path.x0) else "sample",
               "the denoiser's clean estimate from each state" if col == 0 else None)
    bottom = rows[3].subgridspec(1, 3, width_ratios=[3, 1.5, 1.5])
    _schedule_plot(fig.add_subplot(bottom[0]), loaded.schedule, path.t)
    panel(bottom[1], shown, "kept (first half of the last axis)", "an edit: Replacement")
    panel(bottom[2], edited, "the rest generated again")
    fig.suptitle(f"{modality}: {request.prompt or 'no prompt'!s} — schedule {loaded.schedule.name}, seed {seed}")
    target = Path(out) / f"explain-{modality}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    fig.savefig(tmp, format="png", dpi=100)
    os.replace(tmp, target)
    return target


def _array(picture):
    import numpy as np

    array = np.asarray(picture, dtype=np.float32)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != 3):
        raise InvalidInputError(f"Modality.picture returned shape {array.shape}; expected [H, W, 3] or [H, W]")
    return array


def _panel(fig, cell, picture, label: str, title: str | None, scale: tuple[float, float]) -> None:
    """One picture; a [H, W] one in the colour map over ``scale`` (lo, hi)."""
    ax = fig.add_subplot(cell)
    array = _array(picture)
    if array.ndim == 3:
        ax.imshow(array.clip(0, 1), interpolation="nearest")
    else:
        ax.imshow(array, cmap="magma", interpolation="nearest", aspect="auto", vmin=scale[0], vmax=scale[1])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(label, fontsize=8)
    if title:
        ax.set_title(title, fontsize=9, loc="left")


def _schedule_plot(ax, schedule, visited) -> None:
    """log-SNR(t) = log(α/σ) of the schedule, with the sampler's times marked; α and σ beside it."""
    from .schedules import Grid

    lo, hi = max(float(getattr(schedule, "t_min", 0.0)), 1e-3), float(schedule.t_max)
    curve = Grid.build(schedule, torch.linspace(lo, hi, 200).tolist())
    ax.plot(curve.t, curve.lam, color="#1f5fbf", label="log-SNR log(α/σ)")
    pts = Grid.build(schedule, [v for v in visited if lo <= v <= hi])
    if pts.t:
        ax.plot(pts.t, pts.lam, "o", color="#d04020", markersize=3, label="times the sampler visits")
    ax.set_xlabel("t")
    ax.set_ylabel("log-SNR")
    twin = ax.twinx()
    twin.plot(curve.t, curve.alpha, "--", color="#555555", linewidth=1, label="α(t)")
    twin.plot(curve.t, curve.sigma, ":", color="#555555", linewidth=1, label="σ(t)")
    twin.set_ylabel("α, σ")
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], fontsize=7, loc="upper right")
    ax.set_title(f"schedule {schedule.name}", fontsize=9, loc="left")
