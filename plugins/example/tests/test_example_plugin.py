"""The example plugin's own tests."""
import polydiff
import pytest
import torch
from polydiff_example.backend import load_exact as load
from polydiff_example.encoders import ClusterNames


def test_cluster_names_encode_prompts():
    names = ClusterNames()
    assert names.encode(["", "the north cluster"])["cluster"].tolist() == [-1, 1]
    with pytest.raises(polydiff.InvalidInputError, match="prompt"):
        names.encode(["east and west"])


def test_exact_denoiser_is_conditional_on_the_cluster():
    model = load("cpu")
    x = torch.zeros(3, 2)
    t = torch.full((3,), 0.9)
    x0 = model.net(x, t, {"cluster": torch.tensor([0, 2, -1])})
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


def test_shipped_mlp_checkpoint_learned_the_cluster_weights():
    x = polydiff.generate("points2d", n=2000, backend="points2d-mlp", steps=20, seed=0).samples
    means = torch.tensor([[2.5, 0.0], [0.0, 2.5], [-2.5, 0.0], [0.0, -2.5]])
    share = torch.bincount(torch.cdist(x, means).argmin(1), minlength=4) / len(x)
    assert torch.allclose(share, torch.tensor([0.4, 0.3, 0.2, 0.1]), atol=0.04), share


def test_train_command_runs_end_to_end(tmp_path):
    from click.testing import CliRunner
    from polydiff.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    run = CliRunner().invoke(cli, ["train", "points2d", "--backend", "points2d-mlp", "--steps", "20",
                                   "--batch-size", "32", "--out", str(tmp_path), "--quiet"])
    assert run.exit_code == 0, run.output
    tensors, config = polydiff.load_checkpoint(tmp_path)
    assert config["step"] == 20 and config["prediction"] == "v"
