"""The example plugin's own tests."""
import pytest
import torch

import polydiff
from polydiff_example.backend import load
from polydiff_example.modality import ClusterNames


def test_cluster_names_encode_prompts():
    names = ClusterNames()
    assert names(None) == -1 and names("the north cluster") == 1
    with pytest.raises(polydiff.InvalidInputError, match="prompt"):
        names("east and west")


def test_exact_denoiser_is_conditional_on_the_cluster():
    model = load("cpu")
    x = torch.zeros(3, 2)
    t = torch.full((3,), 0.9)
    x0 = model.net(x, t, torch.tensor([0, 2, -1]))
    assert x0[0, 0] > 2.0 and x0[1, 0] < -2.0   # east, west
    assert abs(x0[2, 0]) < 2.0                    # any cluster: a blend


def test_midpoint_sampler_is_second_order_on_the_exact_denoiser():
    model = load("cpu")
    D = polydiff.as_denoiser(model.net, model.schedule, "x0")
    x0 = lambda steps: polydiff.sample(D, (64, 2), sampler="midpoint", steps=steps,  # noqa: E731
                                       schedule=model.schedule, seed=0, dtype=torch.float64)
    ref = polydiff.sample(D, (64, 2), sampler="heun", steps=400, schedule=model.schedule,
                          seed=0, dtype=torch.float64)
    errors = [(x0(n) - ref).norm(dim=1).mean().item() for n in (16, 32, 64)]
    orders = [torch.log2(torch.tensor(a / b)).item() for a, b in zip(errors, errors[1:])]
    assert errors[0] > errors[1] > errors[2]
    assert min(orders) > 1.5, (errors, orders)
