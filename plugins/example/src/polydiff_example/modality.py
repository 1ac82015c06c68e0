"""How the points2d modality turns a request into a sampling plan, and writes results."""
import csv
from pathlib import Path

import numpy as np
import polydiff
import torch
from pydantic import BaseModel, ConfigDict

from .plugin import CLUSTERS


class PointsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: float | None = None  # the known x coordinate for the inpaint task


class ClusterNames:
    """Condition encoder: a prompt naming a cluster -> its index; no prompt -> -1 (any)."""

    def __init__(self, device="cpu"):
        self.device = device

    def __call__(self, prompt):
        if not prompt:
            return -1
        words = prompt.lower().split()
        names = [i for i, name in enumerate(CLUSTERS) if name in words]
        if len(names) != 1:
            raise polydiff.InvalidInputError(
                f"prompt: name one cluster of {', '.join(CLUSTERS)} (got {prompt!r})")
        return names[0]


def plan(request, context):
    index = context.encoder("points2d-cluster")(request.prompt)
    cond = torch.full((request.n,), index, dtype=torch.long, device=context.device)
    constraints = []
    if request.task == "inpaint":
        if request.options.get("x") is None:
            raise polydiff.InvalidInputError("x: the inpaint task needs the known x coordinate (--x)")
        known = torch.tensor([request.options["x"], 0.0], device=context.device)
        mask = torch.tensor([1.0, 0.0], device=context.device)
        constraints.append(polydiff.Replacement(known, mask, resample=4))
    return polydiff.Plan(shape=(2,), cond=cond, uncond=torch.full_like(cond, -1),
                         constraints=constraints, guidance=1.0,
                         decode=lambda x: list(x.cpu().numpy()))


def write(outputs, folder, request):
    folder = Path(folder)
    points = np.stack(outputs)
    with open(folder / "points.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["x", "y"])
        writer.writerows([[f"{v:.6f}" for v in row] for row in points.tolist()])
    from polydiff.cli.png import scatter, write_png

    write_png(folder / "points.png", scatter(points))
    return [folder / "points.csv", folder / "points.png"]


def read(files):
    """The points in ``points.csv`` among ``files`` (the inverse of ``write``)."""
    path = next(Path(f) for f in files if Path(f).suffix == ".csv")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1:]
    return [np.array([float(v) for v in row], dtype=np.float32) for row in rows if row]


def examples(task):
    """Small valid inputs per task, run by polydiff's conformance kit (polydiff.testing)."""
    return {"generate": {"prompt": "north"}, "inpaint": {"x": 1.0}}.get(task)
