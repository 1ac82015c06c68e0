"""Editing constraints checked against the exact conditionals of a Gaussian mixture."""
from __future__ import annotations

import polydiff
import pytest
import torch
from polydiff.editing import FunctionOperator, LinearOperator, MaskOperator, Measurement, Replacement, SDEdit
from polydiff.registries import components
from polydiff.testing import GaussianMixture

N = 2000  # samples per distribution check: a fraction's sd is <= 0.011, a mean's ~0.5 / 45


# tiny tensors: one torch thread is fastest, and far faster on a busy machine
pytestmark = pytest.mark.usefixtures("polydiff_single_thread")


def _two_modes():
    """Modes at (-2, -2) (weight 0.7) and (2, 2) (0.3), std 0.5: the first coordinate alone
    tells the modes apart, and the rarer mode is the one we condition on below."""
    return GaussianMixture([[-2.0, -2.0], [2.0, 2.0]], [0.7, 0.3], 0.5)


def _mixture_stats(weights, means, std):
    """Mean and standard deviation of a 1-D Gaussian mixture."""
    mean = (weights * means).sum()
    var = (weights * (std**2 + means**2)).sum() - mean**2
    return mean.item(), var.sqrt().item()


def _run(gm, constraints, sampler="dpmpp_3m", steps=20, n=N, seed=0, dtype=torch.float64):
    return polydiff.sample(gm, (n, gm.dim), sampler=sampler, steps=steps, seed=seed, dtype=dtype,
                           constraints=constraints)


# -- Replacement ------------------------------------------------------------------------------

@pytest.mark.parametrize("sampler", [n for n, s in components().samplers.items() if s.process == "gaussian"])
def test_replacement_keeps_known_values_exactly(sampler):
    gm = GaussianMixture(torch.randn(3, 6, generator=torch.Generator().manual_seed(1)) * 2, [1, 1, 2], 0.5)
    known = torch.randn(2, 3, generator=torch.Generator().manual_seed(2))
    mask = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    x = polydiff.sample(gm, (8, 2, 3), sampler=sampler, steps=6, seed=3,
                        constraints=[Replacement(known, mask, resample=2)])
    keep = mask.bool().expand_as(x)
    assert torch.equal(x[keep], known.expand_as(x)[keep])
    assert torch.isfinite(x).all() and not torch.equal(x[0], x[1])


def test_a_soft_mask_fades_from_known_to_sampled_values():
    """Mask 0 samples freely (the mode at 0), mask 1 keeps the known 3.0 exactly, and values in
    between land in between, in order (nearer to known than the mask says: the pull compounds
    over the steps)."""
    gm = GaussianMixture(torch.zeros(1, 2), [1.0], 0.5)   # independent coordinates
    known = torch.tensor([3.0, 0.0])
    means = []
    for m in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = polydiff.sample(gm, (256, 2), steps=10, seed=4, sampler="euler",
                            constraints=[Replacement(known, torch.tensor([m, 0.0]))])
        means.append(float(x[:, 0].mean()))
    assert abs(means[0]) < 0.15 and means[-1] == 3.0
    assert all(lo < hi for lo, hi in zip(means, means[1:])), means
    assert means[1] > 0.25 * 3.0


@pytest.fixture(scope="module")
def inpainting():
    """Exact law of x[1] given x[0] = 1.5, and samples with and without resampling."""
    gm = _two_modes()
    known = torch.tensor([1.5, 0.0], dtype=torch.float64)
    mask = torch.tensor([1.0, 0.0], dtype=torch.float64)
    weights, means, _ = gm.posterior(torch.eye(2)[[0]], known[None, :1])
    exact = {
        "weights": weights[0],
        "right": (weights[0] * torch.special.ndtr(means[0, :, 1] / gm.std)).sum().item(),
        "mean_std": _mixture_stats(weights[0], means[0, :, 1], gm.std),
    }
    runs = {r: _run(gm, [Replacement(known, mask, resample=r)]) for r in (1, 8)}
    return gm, known, exact, runs


def test_replacement_with_resampling_samples_the_exact_conditional(inpainting):
    gm, known, exact, runs = inpainting
    # x[0] = 1.5 is 7 sd from the first mode: the conditional is the second component's x[1].
    assert exact["weights"][1] > 1 - 1e-9 and exact["right"] > 0.999
    mean, std = exact["mean_std"]
    assert abs(mean - 2.0) < 1e-6 and abs(std - 0.5) < 1e-6
    x = runs[8]
    assert torch.equal(x[:, 0], known[0].expand(N))
    u = x[:, 1]
    right = u[u > 0]
    # Measured (dpmpp_3m, 20 steps, resample 8, five seeds): 99.7-99.9 % in the right mode,
    # within it mean 1.98-1.99 and std 0.473-0.479. A fraction near 1 has sd ~0.001; a mean's
    # sd is 0.5 / sqrt(2000) = 0.011, a std's 0.008: the tolerances leave > 4 sd plus ~5 % for
    # the sampler's discretisation bias.
    assert (u > 0).double().mean() > exact["right"] - 0.015
    assert abs(right.mean() - mean) < 0.06
    assert abs(right.std() - std) < 0.1 * std


def test_resampling_is_what_makes_replacement_condition_the_unknown_part(inpainting):
    *_, runs = inpainting
    right = {r: (x[:, 1] > 0).double().mean().item() for r, x in runs.items()}
    # Plain replacement conditions only partly: ~69 % in the right mode (the prior gives 30 %),
    # because the unknown coordinate picks its mode while the known one is still buried in noise.
    assert 0.5 < right[1] < 0.85, right
    assert right[8] > right[1] + 0.1, right


# -- SDEdit -----------------------------------------------------------------------------------

def test_sdedit_strength_one_follows_the_prior():
    gm = _two_modes()
    init = torch.tensor([2.5, 1.5], dtype=torch.float64)  # in the rarer mode
    x = _run(gm, [SDEdit(init, 1.0)], sampler="ddpm")
    label = torch.cdist(x, gm.means).argmin(1)
    frac = torch.bincount(label, minlength=2).double() / N
    # At t_max alpha = 0.0066: the init shifts the start by < 0.02 sd, so the result is a prior
    # sample; binomial sd 0.01, tolerance 4 sd.
    assert (frac - gm.weights).abs().max() < 0.04, frac


@pytest.mark.parametrize("strength", [0.1, 0.2])
def test_sdedit_small_strength_stays_near_the_init(strength):
    gm = _two_modes()
    init = torch.tensor([2.5, 1.5], dtype=torch.float64)
    x = _run(gm, [SDEdit(init, strength)], sampler="ddpm")
    t = strength * gm.schedule.t_max
    a, s = gm.schedule.floats(t)
    # Ancestral sampling from x_t ~ N(a init, s^2) draws x0 from p(x0 | x_t), whose mean averaged
    # over x_t is E[D(x_t)]: computed here by Monte Carlo (sd < 0.002) with the exact denoiser.
    xt = a * init + s * torch.randn(100_000, 2, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    expected = gm(xt, t).mean(0)
    assert (x.mean(0) - expected).norm() < 0.06, (x.mean(0), expected)  # sample sd ~0.01
    assert (torch.cdist(x, gm.means).argmin(1) == 1).all()  # nothing leaves the init's mode
    assert (x - init).norm(dim=1).mean() < 2 * s / a  # sd of the noise added is s / a per axis
    far = _run(gm, [SDEdit(init, 1.0)], sampler="ddpm", n=200)
    assert (x - init).norm(dim=1).mean() < 0.5 * (far - init).norm(dim=1).mean()


@pytest.mark.parametrize("strength", [0.0, -0.1, 1.5, float("nan")])
def test_sdedit_rejects_strength_outside_0_1(strength):
    with pytest.raises(polydiff.InvalidInputError):
        SDEdit(torch.zeros(2), strength)


# -- Measurement consistency ------------------------------------------------------------------

def test_mask_operator_projection_keeps_observed_entries():
    gm = _two_modes()
    mask = torch.tensor([1.0, 0.0], dtype=torch.float64)
    y = torch.tensor([1.5, 0.0], dtype=torch.float64)
    x = _run(gm, [Measurement(MaskOperator(mask), y)])
    assert torch.equal(x[:, 0], y[0].expand(N))
    # Projecting only the denoiser's output conditions the unknown coordinate partly, like plain
    # replacement (measured: ~70 % in the right mode, against 30 % under the prior).
    assert (x[:, 1] > 0).double().mean() > 0.5


def _pairs():
    """A(x) = the average of each pair of coordinates, with pinv(y) = y repeated."""
    return LinearOperator(lambda x: (x[:, 0::2] + x[:, 1::2]) / 2,
                          lambda y: y.repeat_interleave(2, dim=1))


def test_linear_operator_projection_samples_the_noiseless_posterior():
    # On the line x0 + x1 = 0 lie the modes (2, -2) and (-2, 2); (2, 2) is 5.7 sd away.
    gm = GaussianMixture([[2.0, -2.0], [-2.0, 2.0], [2.0, 2.0]], [0.3, 0.5, 0.2], 0.5)
    y = torch.zeros(1, 1, dtype=torch.float64)
    x = _run(gm, [Measurement(_pairs(), y)], sampler="ddpm", steps=50)
    assert torch.allclose((x[:, 0] + x[:, 1]) / 2, torch.zeros(N, dtype=torch.float64), atol=1e-12)

    weights, means, proj = gm.posterior(torch.tensor([[0.5, 0.5]]), y)
    assert abs(weights[0, 0].item() - 0.375) < 1e-6  # 0.3 / (0.3 + 0.5)
    first = x[:, 0] > 0
    std_on_line = (gm.std[0] * proj[0, 0].sqrt()).item()  # 0.5 / sqrt(2) along x0
    # Projecting the denoiser's output is an approximation of posterior sampling that does not
    # converge to it: with ancestral sampling (50 or 200 steps, five seeds) 37-40 % land in the
    # first mode (exact 37.5 %), mode means are shrunk by 2-6 % towards 0 (norm error <= 0.18)
    # and stds are 0.37-0.42 (exact 0.354). ODE samplers do worse: stds ~0.47.
    # Tolerances: 0.05 on the fraction (4.5 sd), 0.25 on means, 30 % on stds.
    assert abs(first.double().mean() - weights[0, 0]) < 0.05
    for sel, k in ((first, 0), (~first, 1)):
        assert (x[sel].mean(0) - means[0, k]).norm() < 0.25, (k, x[sel].mean(0))
        assert abs(x[sel, 0].std() - std_on_line) < 0.3 * std_on_line, (k, x[sel, 0].std())


def test_function_operator_dps_reduces_the_residual():
    gm = GaussianMixture([[2.0, -2.0], [-2.0, 2.0], [2.0, 2.0]], [0.3, 0.5, 0.2], 0.5)
    fn = lambda x: (x[:, 0::2] + x[:, 1::2]) / 2  # noqa: E731
    y = torch.zeros(1, 1, dtype=torch.float64)
    with pytest.raises(polydiff.InvalidInputError):
        Measurement(FunctionOperator(fn), y, mode="project")
    free = _run(gm, [], sampler="dpmpp_2m")
    dps = _run(gm, [Measurement(FunctionOperator(fn), y)], sampler="dpmpp_2m")
    r_free, r_dps = (fn(free) - y).abs().mean().item(), (fn(dps) - y).abs().mean().item()
    # Measured over five seeds: 0.33 with DPS against 0.60-0.65 without: require 30 % less.
    assert torch.isfinite(dps).all() and r_dps < 0.7 * r_free, (r_dps, r_free)


# -- FromNoisy ----------------------------------------------------------------------------------

def test_from_noisy_samples_the_exact_posterior_given_the_noisy_input():
    """y = x0 + s n is x_t / alpha where sigma / alpha = s, so an ancestral run from there draws
    p(x0 | y): here its mode weights and within-mode means have a closed form."""
    gm, s = _two_modes(), 1.0
    y = torch.tensor([0.4, 0.4], dtype=torch.float64)
    var = gm.std**2 + s**2                                            # p(y | mode k) = N(mu_k, var I)
    logits = gm.weights.log() - ((y - gm.means) ** 2).sum(1) / (2 * var)
    weights = torch.softmax(logits, 0)
    means = gm.means + (gm.std**2 / var)[:, None] * (y - gm.means)    # E[x0 | y, mode k]
    start = polydiff.FromNoisy(y.expand(N, 2), s, gm.schedule)
    x = polydiff.sample(gm, (N, 2), sampler="ddpm", steps=200, spacing="uniform", seed=0,
                        dtype=torch.float64, constraints=[start])
    second = torch.cdist(x, gm.means).argmin(1) == 1   # sd of the fraction: 0.008
    assert abs(second.double().mean() - weights[1]) < 0.03, (second.double().mean(), weights)
    assert (x[second].mean(0) - means[1]).norm() < 0.1 and (x[~second].mean(0) - means[0]).norm() < 0.1


def test_from_noisy_rejects_a_level_that_is_not_positive():
    with pytest.raises(polydiff.InvalidInputError, match="noise level"):
        polydiff.FromNoisy(torch.zeros(2), 0.0, components().schedules["vp-cosine"])
