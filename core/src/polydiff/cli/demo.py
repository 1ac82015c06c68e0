"""``polydiff demo``: every registered sampler on a 2-D Gaussian mixture with an exact denoiser.

Writes one PNG with a panel per sampler (10 steps each, same seeds) next to true samples, and
a ``points2d`` generation when the example plugin is installed. Modality plugins add their own
galleries by implementing ``register_commands`` (see the plugin guide).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

MEANS = [[-2.0, -1.5], [2.0, -1.5], [0.0, 2.0], [0.0, 0.0]]
WEIGHTS = [0.3, 0.3, 0.3, 0.1]


def _panel(points, title_colour):
    from .png import scatter

    img = scatter(points, size=200, extent=4.0, colour=title_colour)
    img[:4, :] = title_colour  # a coloured bar on top tells panels apart
    return img


def _explained(out: Path) -> list[Path]:
    """`polydiff explain` for every modality that draws pictures (skipped without matplotlib)."""
    import importlib.util

    from ..explaining import explain
    from ..registries import components

    if importlib.util.find_spec("matplotlib") is None:
        print("explain figures skipped: pip install 'polydiff[explain]'")
        return []
    files = []
    for name, modality in sorted(components().modalities.items()):
        if modality.picture is not None:
            files.append(explain(name, out / "explain"))
            print(f"{name}: {files[-1]}")
    return files


def run_demo(out, steps: int = 10, n: int = 1000) -> list[Path]:
    import torch

    from ..loop import sample
    from ..registries import components
    from ..testing import GaussianMixture
    from .png import write_png

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    mixture = GaussianMixture(MEANS, WEIGHTS, 0.3, schedule="vp-linear")
    truth = mixture.sample(n, generator=torch.Generator().manual_seed(0)).numpy()
    panels, lines = [_panel(truth, (30, 30, 30))], ["true samples (dark bar)"]
    gaussian = {n: s for n, s in components().samplers.items() if s.process == "gaussian"}  # a 2-D mixture
    for name, spec in sorted(gaussian.items()):
        started = time.perf_counter()
        x = sample(mixture.denoiser, (n, 2), sampler=name, steps=steps, seed=0, dtype=torch.float64)
        ms = (time.perf_counter() - started) * 1e3
        colour = (200, 60, 40) if spec.stochastic else (40, 110, 220)
        panels.append(_panel(x.numpy(), colour))
        lines.append(f"{name:16s} {steps} steps  {ms:7.1f} ms  {'stochastic' if spec.stochastic else 'ODE'}")
    cols = 4
    rows = -(-len(panels) // cols)
    grid = np.full((rows * 204, cols * 204, 3), 255, np.uint8)
    for k, p in enumerate(panels):
        r, c = divmod(k, cols)
        grid[r * 204 + 2:r * 204 + 202, c * 204 + 2:c * 204 + 202] = p
    files = [write_png(out / "samplers.png", grid)]
    legend = out / "samplers.txt"
    legend.write_text("panels left to right, top to bottom:\n" + "\n".join(lines) + "\n")
    files.append(legend)
    for line in lines:
        print(line)
    if "points2d" in components().modalities:
        from ..generation import generate

        files += generate("points2d", "north", n=500, seed=0).save(out / "points2d", overwrite=True)
    files += _explained(out)
    for name, modality in sorted(components().modalities.items()):
        if modality.demo is not None:
            print(f"{name}: writing its gallery ...")
            files += modality.demo(out / name)
    print(f"demo written to {out.resolve()}")
    return files
