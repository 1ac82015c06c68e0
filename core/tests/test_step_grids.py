"""Tuned step grids: the search beats the best registered spacing on seeds it never saw, grids
are stored beside a checkpoint and found by runs that name no spacing, and a broken file is one
line."""
from __future__ import annotations

import dataclasses
import json
import math
import shutil

import polydiff
import pytest
import torch
from click.testing import CliRunner
from polydiff.cli import cli
from polydiff.errors import InvalidInputError
from polydiff.generation import Context
from polydiff.schedules import DiscreteVP
from polydiff.step_grids import FILE, grid_for, read_grids, search, write_grids
from polydiff.testing.oracle import GaussianMixture

pytestmark = pytest.mark.usefixtures("polydiff_single_thread")


@pytest.fixture(scope="module")
def mixture():
    g = torch.Generator().manual_seed(1)
    means = torch.randn(8, 32, generator=g, dtype=torch.float64) * 1.5 / math.sqrt(32)
    std = torch.logspace(math.log10(0.02), math.log10(0.6), 8, dtype=torch.float64)
    return GaussianMixture(means, torch.ones(8), std, DiscreteVP.linear(1e-4, 0.02, 1000))


def _held_out_error(gm, times, spacing_steps, seed=77, n=128):
    fine = polydiff.sample(gm, (n, 32), sampler="unipc", spacing="logsnr", steps=400, schedule=gm.schedule,
                           seed=seed, dtype=torch.float64)
    out = polydiff.sample(gm, (n, 32), sampler="unipc", spacing=times, steps=spacing_steps,
                          schedule=gm.schedule, seed=seed, dtype=torch.float64)
    return float(((out - fine) ** 2).mean(1).sqrt().mean())


def test_a_tuned_grid_beats_the_best_spacing_on_other_seeds(mixture):
    tuned = search(mixture, (64, 32), 6, sampler="unipc", seed=5000, reference_steps=400)
    assert tuned.steps == 6 and len(tuned.times) == 7 and tuned.times[0] == mixture.schedule.t_max
    assert tuned.error < 0.9 * tuned.start_error, tuned
    start = polydiff.components().spacings[tuned.start](mixture.schedule, 6)
    assert _held_out_error(mixture, tuned.times, 6) < _held_out_error(mixture, start, 6)


def test_heun_is_tuned_for_its_own_count_of_calls(mixture):
    tuned = search(mixture, (16, 32), 9, sampler="heun", seed=5000, rounds=1, reference_steps=64)
    assert tuned.steps == 5 and tuned.nfe == 9  # 2 calls a step, 1 on the last


def test_grids_round_trip_and_a_broken_file_is_one_line(tmp_path, mixture):
    tuned = search(mixture, (8, 32), 4, sampler="dpmpp_2m", seed=1, rounds=1, reference_steps=64)
    write_grids(tmp_path, [tuned])
    write_grids(tmp_path, [dataclasses.replace(tuned, error=0.5)])  # same key: replaced, not added
    grids = read_grids(tmp_path)
    assert len(grids) == 1 and grids[0]["error"] == 0.5
    assert grid_for(grids, "dpmpp_2m", 4, mixture.schedule.name) == tuned.times
    assert grid_for(grids, "dpmpp_2m", 5, mixture.schedule.name) is None
    assert grid_for(grids, "unipc", 4, mixture.schedule.name) is None
    (tmp_path / FILE).write_text(json.dumps({"format": 1, "grids": [{"sampler": "x", "steps": 2, "times": [0.5, 0.9]}]}))
    with pytest.raises(InvalidInputError, match="step-grids.json: not a step-grid file"):
        read_grids(tmp_path)


def test_load_trained_brings_the_grids_of_its_folder(tmp_path):
    import polydiff_example.backend as backend  # the example plugin's trained MLP

    shutil.copytree(backend.WEIGHTS_DIR, tmp_path / "mlp")
    assert polydiff.load_trained(tmp_path / "mlp", backend.PointsMLP).step_grids == []
    times = [polydiff.components().schedules["vp-cosine"].t_max, 0.5, 0.1, 0.0]
    (tmp_path / "mlp" / FILE).write_text(json.dumps({"format": 1, "grids": [
        {"sampler": "unipc", "steps": 3, "schedule": "vp-cosine", "times": times}]}))
    assert polydiff.load_trained(tmp_path / "mlp", backend.PointsMLP).step_grids[0]["times"] == times


@pytest.fixture
def with_grid(monkeypatch):
    """points2d's exact backend as if a 3-step unipc grid had been tuned for it."""
    real = Context.model
    times = [polydiff.components().schedules["vp-cosine"].t_max, 0.4, 0.05, 0.0]

    def model(self):
        return dataclasses.replace(real(self), step_grids=[
            {"sampler": "unipc", "steps": 3, "schedule": "vp-cosine", "times": times}])

    monkeypatch.setattr(Context, "model", model)
    return times


def test_a_run_naming_no_spacing_uses_the_tuned_grid_and_records_it(with_grid):
    tuned = polydiff.generate("points2d", "north", n=4, steps=3, seed=2, sampler="unipc", backend="points2d-exact")
    assert tuned.metadata["resolved"]["spacing"] == "tuned"
    assert tuned.metadata["resolved"]["times"] == with_grid
    direct = polydiff.generate("points2d", "north", n=4, steps=3, seed=2, sampler="unipc",
                               backend="points2d-exact", spacing="logsnr")
    assert direct.metadata["resolved"]["spacing"] == "logsnr" and "times" not in direct.metadata["resolved"]
    assert not torch.equal(torch.as_tensor(tuned.samples), torch.as_tensor(direct.samples))
    other_steps = polydiff.generate("points2d", "north", n=4, steps=4, seed=2, sampler="unipc",
                                    backend="points2d-exact")
    assert other_steps.metadata["resolved"]["spacing"] != "tuned"


def test_tune_steps_cli_writes_the_grid_and_refuses_a_stochastic_sampler(tmp_path):
    out = CliRunner().invoke(cli, ["tune-steps", "points2d", "--nfe", "4", "--prompt", "north", "--prompt", "east",
                                   "--batch", "8", "--reference-steps", "64", "--backend", "points2d-mlp",
                                   "-o", str(tmp_path), "--quiet"])
    assert out.exit_code == 0, out.output
    grids = read_grids(tmp_path)
    assert [(g["sampler"], g["steps"]) for g in grids] == [("unipc", 4)]
    assert "tuned error" in out.output and str(tmp_path / FILE) in out.output
    held = grids[0]["calibration"]["held_out"]  # stored, so it beat the default on seeds 0-7
    assert held["n"] == 8 and held["error"] < held["default_error"]
    bad = CliRunner().invoke(cli, ["tune-steps", "points2d", "--nfe", "4", "--sampler", "ddpm", "-o", str(tmp_path)])
    assert bad.exit_code == 1 and "stochastic" in bad.output


def test_tune_steps_cli_stores_a_grid_only_where_it_wins_on_held_out_seeds(tmp_path, monkeypatch):
    import polydiff.step_grids as step_grids

    args = ["tune-steps", "points2d", "--nfe", "4", "--batch", "4", "--held-out", "4", "--reference-steps", "32",
            "--rounds", "1", "--backend", "points2d-mlp", "-o", str(tmp_path), "--quiet"]
    monkeypatch.setattr(step_grids, "endpoint_errors", lambda *a, **k: {"default": 0.1, "tuned": 0.2})
    lost = CliRunner().invoke(cli, args)
    assert lost.exit_code == 0, lost.output
    assert "loses held out" in lost.output and "nothing stored" in lost.output
    assert not (tmp_path / FILE).exists()
    kept = CliRunner().invoke(cli, [*args, "--keep-worse"])
    assert kept.exit_code == 0, kept.output
    (grid,) = read_grids(tmp_path)
    assert grid["calibration"]["held_out"] == {"n": 4, "seed": 0, "default_spacing": "logsnr-window",
                                               "default_error": 0.1, "error": 0.2}
    overlap = CliRunner().invoke(cli, [*args, "--seed", "2"])
    assert overlap.exit_code == 1 and "overlap" in overlap.output
