"""Diffusion-GAN: the adaptive noise level against its rule, a one-step generator judged through
instance noise that finds every mode of a mixture, and an exact resume with the level's state."""
from __future__ import annotations

import math

import polydiff
import pytest
import torch
from polydiff import InvalidInputError, TrainConfig, Trainer
from polydiff.adversarial import adapt_level, trained_times
from safetensors.torch import load_file
from test_adversarial import MODES, SPREAD, Generator, fit_on_one_thread, modes

pytestmark = pytest.mark.usefixtures("polydiff_single_thread")


class NoisyDiscriminator(torch.nn.Module):
    """D(x_t, t): judges one (possibly noised) sample at its noise level."""

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(2 + 3, hidden), torch.nn.LeakyReLU(0.2),
                                       torch.nn.Linear(hidden, hidden), torch.nn.LeakyReLU(0.2),
                                       torch.nn.Linear(hidden, 1))

    def forward(self, xt, t, cond=None):
        feats = torch.stack([t, torch.sin(math.pi * t), torch.cos(math.pi * t)], dim=1)
        return self.net(torch.cat([xt, feats], dim=1)).squeeze(1)


def trainer(out, steps=2000, **overrides):
    config = TrainConfig(**{**dict(steps=steps, batch_size=256, lr=2e-3, betas=(0.5, 0.9), objective="diffusion-gan",
                                   r1=0.1, prediction="x0", schedule="vp-cosine", cond_dropout=0.0, ema_decay=0.99,
                                   progress=False, checkpoint_every=None, out=out, log_every=50,
                                   dgan_levels=(0.02, 0.5), dgan_step=0.002), **overrides})
    with polydiff.seeded_init(config.seed):
        g, d = Generator(), NoisyDiscriminator()
    return Trainer(g, config, modes, discriminator=d, model_config={"hidden": 64})


def test_the_level_rises_when_the_discriminator_is_too_sure_and_stays_in_range():
    level = torch.tensor(0.1)
    assert float(adapt_level(level, torch.tensor(0.9), 0.6, 0.01, 0.0, 1.0)) == pytest.approx(0.11)
    assert float(adapt_level(level, torch.tensor(0.2), 0.6, 0.01, 0.0, 1.0)) == pytest.approx(0.09)
    assert float(adapt_level(level, torch.tensor(1.0), 0.6, 0.5, 0.0, 0.3)) == pytest.approx(0.3)
    assert float(adapt_level(level, torch.tensor(-1.0), 0.6, 0.5, 0.05, 0.3)) == pytest.approx(0.05)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("dgan")
    return out, fit_on_one_thread(trainer(out))


def test_a_one_step_generator_judged_through_noise_covers_every_mode(trained):
    out, run = trained
    loaded = polydiff.load_trained(out, Generator)
    assert loaded.times == trained_times(loaded.schedule, 1) and loaded.sampler == "ddpm" and loaded.latent == (2,)
    denoiser = polydiff.as_denoiser(loaded.net, loaded.schedule, loaded.prediction)
    denoiser.latent = loaded.latent
    x = polydiff.sample(denoiser, (2000, 2), sampler="ddpm", steps=1, spacing=loaded.times, seed=0)
    share = torch.bincount(torch.cdist(x, MODES).argmin(1), minlength=4).float() / len(x)
    assert float(share.min()) > 0.15, share  # measured 0.24-0.27 per mode
    near = float((torch.cdist(x, MODES).min(1).values < 3 * SPREAD).float().mean())
    assert near > 0.3, near  # measured 0.66
    levels = [v for _, v in run.level_history]
    assert len(levels) == len(run.history) and all(0.02 - 1e-6 <= v <= 0.5 + 1e-6 for v in levels)
    assert max(levels) > 0.02 + 1e-3  # it moved (measured: up to 0.26 early on, back to 0.02)


def test_resume_continues_the_level_and_both_players_exactly(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    trainer(straight, steps=12, dgan_step=0.01).fit()
    trainer(split, steps=5, dgan_step=0.01).fit()
    trainer(split, steps=12, dgan_step=0.01).fit()
    a, b = load_file(straight / "train_state.safetensors"), load_file(split / "train_state.safetensors")
    assert a.keys() == b.keys() and "level" in a
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("overrides, needle", [
    ({"prediction": "v"}, "prediction: a diffusion-gan generator predicts x0"),
    ({"dgan_levels": (0.5, 0.1)}, "dgan_levels"),
])
def test_bad_diffusion_gan_configs_are_one_line(tmp_path, overrides, needle):
    with pytest.raises(InvalidInputError, match=needle):
        TrainConfig.build(**{**dict(objective="diffusion-gan", prediction="x0", out=tmp_path), **overrides})
