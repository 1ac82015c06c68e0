"""The forward process (``polydiff.diffuse``), the reverse path (``sample(trajectory=True)``) and
``polydiff explain``: exact formulas, variance preservation, per-sample seeding, masked tokens."""
from __future__ import annotations

import polydiff
import pytest
import torch
from polydiff import InvalidInputError, SeededNoise
from polydiff.testing import GaussianMixture


def test_diffuse_is_alpha_x0_plus_sigma_eps_for_every_gaussian_schedule():
    x0 = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    times = [0.0, 0.3, 0.7, 1.0]
    eps = SeededNoise.for_batch(5, 4).randn((3,))
    for name, schedule in polydiff.components().schedules.items():
        if getattr(schedule, "process", "gaussian") != "gaussian":
            continue
        states = polydiff.diffuse(x0, times, schedule=name, seed=5)
        assert states.shape == (4, 4, 3)
        t = torch.tensor(times, dtype=torch.float64).clamp(max=schedule.t_max)
        for k in range(len(times)):
            a, s = float(schedule.alpha(t[k:k + 1])), float(schedule.sigma(t[k:k + 1]))
            torch.testing.assert_close(states[k], a * x0 + s * eps, msg=name)
        # a sample's noise is its own seed's, whatever the batch
        torch.testing.assert_close(polydiff.diffuse(x0[2:3], times, schedule=name, seed=7), states[:, 2:3])


@pytest.mark.parametrize("schedule", ["vp-linear", "vp-cosine"])
def test_variance_preserving_and_clean_at_zero(schedule):
    x0 = torch.randn(20000, 2, generator=torch.Generator().manual_seed(1))
    states = polydiff.diffuse(x0, [0.0, 0.25, 0.5, 0.75, 1.0], schedule=schedule, seed=0)
    assert torch.allclose(states[0], x0, atol=1e-3)   # t = 0 is the data
    var = states.var(dim=1)
    assert torch.allclose(var, torch.ones_like(var), atol=0.05), var  # unit variance in, unit variance out
    corr = [float(torch.corrcoef(torch.stack([s[:, 0], x0[:, 0]]))[0, 1]) for s in states]
    assert all(a > b for a, b in zip(corr, corr[1:])) and corr[-1] < 0.05  # the data fades out


def test_masked_diffusion_hides_tokens_nested_at_the_schedule_rate():
    x0 = torch.randint(0, 9, (400, 32), generator=torch.Generator().manual_seed(2))
    times = [0.0, 0.25, 0.5, 0.75, 1.0]
    states = polydiff.diffuse(x0, times, schedule="mask-linear", seed=3, mask_id=9)
    schedule = polydiff.components().schedules.get_named("mask-linear")
    for k, t in enumerate(times):
        masked = states[k] == 9
        expect = 1 - float(schedule.alpha(torch.tensor([min(t, schedule.t_max)], dtype=torch.float64)))
        assert abs(float(masked.float().mean()) - expect) < 0.02
        assert torch.equal(states[k][~masked], x0[~masked])     # visible tokens are the data's
        if k:
            assert bool(((states[k - 1] == 9) <= masked).all())  # once masked, masked later too
    with pytest.raises(InvalidInputError, match="mask_id"):
        polydiff.diffuse(x0, times, schedule="mask-linear")
    with pytest.raises(InvalidInputError, match="integer tokens"):
        polydiff.diffuse(x0.float(), times, schedule="mask-linear", mask_id=9)
    with pytest.raises(InvalidInputError, match="times"):
        polydiff.diffuse(x0.float(), [0.5, 1.5])


def test_trajectory_is_the_path_of_the_same_sample():
    mixture = GaussianMixture([[-2.0], [2.0]], [0.3, 0.7], 0.3, schedule="vp-linear")
    plain = polydiff.sample(mixture.denoiser, (6, 1), steps=8, seed=4, schedule="vp-linear")
    path = polydiff.sample(mixture.denoiser, (6, 1), steps=8, seed=4, schedule="vp-linear", trajectory=True)
    assert isinstance(path, polydiff.Trajectory)
    assert torch.equal(path.sample, plain) and torch.equal(path.x[-1], plain)
    assert path.x.shape == (9, 6, 1) and path.x0.shape == (8, 6, 1) and len(path.t) == 9
    assert path.t[0] == 1.0 and path.t[-1] == 0.0 and all(a > b for a, b in zip(path.t, path.t[1:]))
    # the start is pure noise at sigma(1); the last estimates are the sample
    assert float(path.x[0].std()) > 0.5
    assert torch.allclose(path.x0[-1], plain, atol=1e-4)


def test_masked_trajectory_reveals_tokens_step_by_step():
    from polydiff.testing.masked import check_mixture

    mixture = check_mixture()
    path = polydiff.sample(mixture.denoiser, (5, mixture.length), steps=6, schedule="mask-linear",
                           mask_id=mixture.mask_id, seed=1, trajectory=True)
    hidden = [(s == mixture.mask_id).sum().item() for s in path.x]
    assert hidden[0] == 5 * mixture.length and hidden[-1] == 0
    assert all(a >= b for a, b in zip(hidden, hidden[1:]))


def test_explain_draws_a_figure_and_refuses_modalities_without_pictures(tmp_path, polydiff_single_thread):
    from polydiff import explain

    path = explain("points2d", tmp_path, steps=6)
    assert path == tmp_path / "explain-points2d.png"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert not list(tmp_path.glob(".*.tmp"))
    if "image" in polydiff.components().modalities:   # its example asks for 2 steps; explain uses its own
        image = explain("image", tmp_path, steps=3)
        assert image.is_file() and image != path
    if "text" in polydiff.components().modalities:
        with pytest.raises(InvalidInputError, match="draws no pictures"):
            explain("text", tmp_path)


def test_one_seed_per_sample_equals_each_sample_alone(polydiff_single_thread):
    from polydiff.testing import default_mixture

    mixture = default_mixture()
    together = polydiff.sample(mixture.denoiser, (3, 2), steps=4, seed=[7, 100, 3])
    for row, seed in zip(together, (7, 100, 3)):
        assert torch.equal(row, polydiff.sample(mixture.denoiser, (1, 2), steps=4, seed=seed)[0])
    with pytest.raises(InvalidInputError, match="seed: expected an integer or 3 integers"):
        polydiff.sample(mixture.denoiser, (3, 2), steps=4, seed=[1, 2])
