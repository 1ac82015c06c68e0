"""One plan per points2d task."""
import polydiff
import torch
from pydantic import BaseModel, Field

ENCODER = "points2d-cluster"


class InpaintOptions(BaseModel):
    # the data lie within about +-4; far beyond, the network's inputs overflow (NaN), so the
    # bound names x instead of the model
    x: float = Field(ge=-100.0, le=100.0, description="the known x coordinate")


def generate(request, context) -> polydiff.Plan:
    """Points, from the cluster the prompt names (or any)."""
    cond, uncond = context.condition(ENCODER, [request.prompt] * request.n)
    return polydiff.Plan(shape=(2,), cond=cond, uncond=uncond, guidance=1.0,
                         decode=lambda x: list(x.cpu().numpy()))


def inpaint(request, context) -> polydiff.Plan:
    """y given x: the x coordinate is kept by replacement."""
    plan = generate(request, context)
    known = torch.tensor([request.options["x"], 0.0], device=context.device)
    mask = torch.tensor([1.0, 0.0], device=context.device)
    plan.constraints.append(polydiff.Replacement(known, mask, resample=4))
    return plan


TASKS = [
    polydiff.Task("generate", "sample points, optionally from one cluster named by the prompt",
                  generate, example={"prompt": "north"}),
    polydiff.Task("inpaint", "given the x coordinate (--x), sample y", inpaint,
                  options=InpaintOptions, example={"x": 1.0}),
]
