"""Adversarial diffusion (DDGAN): the posterior step against the forward process's marginals,
the losses and R1 against closed forms, a few-step generator that learns a mixture's modes,
exact resume with the discriminator's state, per-sample seeding of z, and the refusals."""
from __future__ import annotations

import json
import math

import polydiff
import pytest
import torch
from polydiff import InvalidInputError, TrainConfig, Trainer
from polydiff.adversarial import discriminator_loss, generator_loss, posterior, r1_penalty, trained_times
from polydiff.loop import resolve
from safetensors.torch import load_file

pytestmark = pytest.mark.usefixtures("polydiff_single_thread")
MODES = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
SPREAD = 0.05


def _features(t):
    return torch.stack([t, torch.sin(math.pi * t), torch.cos(math.pi * t)], dim=1)


class Generator(torch.nn.Module):
    latent_shape = (2,)

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(2 + 3 + 2, hidden), torch.nn.SiLU(),
                                       torch.nn.Linear(hidden, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, 2))

    def forward(self, x, t, cond=None, z=None):
        return self.net(torch.cat([x, _features(t), z], dim=1))


class Discriminator(torch.nn.Module):
    def __init__(self, hidden: int = 64):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(2 + 2 + 3, hidden), torch.nn.LeakyReLU(0.2),
                                       torch.nn.Linear(hidden, hidden), torch.nn.LeakyReLU(0.2),
                                       torch.nn.Linear(hidden, 1))

    def forward(self, xs, xt, t, cond=None):
        return self.net(torch.cat([xs, xt, _features(t)], dim=1)).squeeze(1)


def modes(n, generator):
    k = torch.randint(0, len(MODES), (n,), generator=generator)
    return MODES[k] + SPREAD * torch.randn(n, 2, generator=generator), None


def trainer(out, steps=2000, **overrides):
    config = TrainConfig(**{**dict(steps=steps, batch_size=256, lr=2e-3, betas=(0.5, 0.9), objective="ddgan", r1=0.1,
                                   few_steps=2, prediction="x0", schedule="vp-cosine", cond_dropout=0.0,
                                   ema_decay=0.99, progress=False, checkpoint_every=None, out=out,
                                   log_every=50), **overrides})
    with polydiff.seeded_init(config.seed):
        g, d = Generator(), Discriminator()
    return Trainer(g, config, modes, discriminator=d, model_config={"hidden": 64})


# -- the maths -----------------------------------------------------------------------------------


def test_the_posterior_step_keeps_the_forward_marginal():
    """x_t ~ q(x_t | x0), then x_s ~ q(x_s | x_t, x0): x_s must be N(a_s x0, s_s^2)."""
    sched = resolve("schedules", "vp-cosine")
    g = torch.Generator().manual_seed(0)
    n = 200_000
    x0 = torch.full((n, 1), 0.7, dtype=torch.float64)
    t, s = torch.full((n,), 0.8, dtype=torch.float64), torch.full((n,), 0.3, dtype=torch.float64)
    xt = sched.alpha(t)[:, None] * x0 + sched.sigma(t)[:, None] * torch.randn(n, 1, generator=g, dtype=torch.float64)
    xs = posterior(sched, x0, xt, t, s, torch.randn(n, 1, generator=g, dtype=torch.float64))
    a_s, s_s = float(sched.alpha(s[:1])), float(sched.sigma(s[:1]))
    assert abs(float(xs.mean()) - a_s * 0.7) < 5 * s_s / math.sqrt(n)
    assert abs(float(xs.std()) / s_s - 1) < 0.01
    at_zero = posterior(sched, x0[:5], xt[:5], t[:5], torch.zeros(5, dtype=torch.float64), torch.randn(5, 1, generator=g))
    assert torch.allclose(at_zero, x0[:5], atol=1e-12)  # the last step lands on x0 itself


def test_losses_and_r1_against_closed_forms():
    zero = torch.zeros(8)
    assert math.isclose(float(discriminator_loss(zero, zero)), 2 * math.log(2), rel_tol=1e-6)
    assert math.isclose(float(generator_loss(zero)), math.log(2), rel_tol=1e-6)
    assert float(discriminator_loss(zero, zero, "hinge")) == 2.0 and float(generator_loss(zero, "hinge")) == 0.0
    sure = discriminator_loss(torch.full((8,), 5.0), torch.full((8,), -5.0))
    assert float(sure) < 0.02  # a discriminator that is right and sure pays almost nothing
    w = torch.tensor([3.0, -4.0])
    x = torch.randn(16, 2, requires_grad=True)
    assert math.isclose(float(r1_penalty(x @ w, x)), 25.0, rel_tol=1e-6)  # |grad|^2 = |w|^2


def test_trained_times_run_from_t_max_to_zero():
    sched = resolve("schedules", "vp-cosine")
    assert trained_times(sched, 4) == [sched.t_max * k / 4 for k in (4, 3, 2, 1, 0)]


# -- training and sampling -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddgan")
    return out, fit_on_one_thread(trainer(out))


def fit_on_one_thread(run):
    """A tiny MLP: more threads only contend (module fixtures run before the function-scoped
    single-thread one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run.fit()
    finally:
        torch.set_num_threads(threads)
    return run


def test_a_two_step_generator_covers_every_mode(trained):
    out, run = trained
    loaded = polydiff.load_trained(out, Generator)
    assert loaded.latent == (2,) and loaded.times == trained_times(loaded.schedule, 2)
    denoiser = polydiff.as_denoiser(loaded.net, loaded.schedule, loaded.prediction)
    denoiser.latent = loaded.latent
    x = polydiff.sample(denoiser, (2000, 2), sampler="ddpm", steps=2, spacing=loaded.times, seed=0)
    nearest = torch.cdist(x, MODES).min(1)
    share = torch.bincount(torch.cdist(x, MODES).argmin(1), minlength=4).float() / len(x)
    assert float(share.min()) > 0.18, share           # every mode, none starved (0.23-0.27 measured)
    assert float((nearest.values < 3 * SPREAD).float().mean()) > 0.5  # most within 3 sigma of one (0.63)
    assert len(run.d_history) == len(run.history) > 0  # both players' losses are logged


def test_z_is_seeded_per_sample(trained):
    out, _ = trained
    loaded = polydiff.load_trained(out, Generator)
    denoiser = polydiff.as_denoiser(loaded.net, loaded.schedule, loaded.prediction)
    denoiser.latent = loaded.latent
    common = dict(sampler="ddpm", steps=2, spacing=loaded.times)
    batch = polydiff.sample(denoiser, (5, 2), seed=10, **common)
    alone = polydiff.sample(denoiser, (1, 2), seed=13, **common)
    # the same draws; only the MLP's batched matmul may round differently (as tests/test_batch_invariance.py)
    assert torch.allclose(batch[3], alone[0], rtol=0, atol=1e-5)
    assert (batch[0] - batch[1]).abs().max() > 0.01  # z differs between samples


def test_resume_continues_both_players_exactly(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    trainer(straight, steps=12).fit()
    trainer(split, steps=5).fit()
    trainer(split, steps=12).fit()
    a, b = load_file(straight / "train_state.safetensors"), load_file(split / "train_state.safetensors")
    assert a.keys() == b.keys() and any(k.startswith("disc.") for k in a) and any(k.startswith("doptim.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("overrides, needle", [
    ({"prediction": "eps"}, "prediction: a ddgan generator predicts x0"),
    ({"schedule": "mask-linear", "prediction": "logits", "mask_id": 0}, "objective: ddgan needs a Gaussian schedule"),
    ({"few_steps": 0}, "few_steps"),
])
def test_bad_adversarial_configs_are_one_line(tmp_path, overrides, needle):
    with pytest.raises(InvalidInputError, match=needle):
        TrainConfig.build(**{**dict(objective="ddgan", prediction="x0", out=tmp_path), **overrides})


def test_the_players_must_be_what_ddgan_needs(tmp_path):
    config = dict(objective="ddgan", prediction="x0", out=tmp_path, progress=False)
    with pytest.raises(InvalidInputError, match="discriminator: objective='ddgan' needs"):
        Trainer(Generator(), TrainConfig(**config), modes)
    plain = torch.nn.Linear(2, 2)
    with pytest.raises(InvalidInputError, match="model: a ddgan generator declares latent_shape"):
        Trainer(plain, TrainConfig(**config), modes, discriminator=Discriminator())
    with pytest.raises(InvalidInputError, match="discriminator: only objective='ddgan'"):
        Trainer(Generator(), TrainConfig(out=tmp_path, progress=False), modes, discriminator=Discriminator())


# -- a few-step backend through generate ------------------------------------------------------------


class _Plugin:
    """Registers one loaded model as a points2d backend."""

    def __init__(self, loaded, name: str = "points2d-ddgan"):
        self.loaded, self.name = loaded, name

    @polydiff.hookimpl
    def register_backends(self, register):
        register(polydiff.Backend(name=self.name, modality="points2d", prediction="x0",
                                  load=lambda device: self.loaded))


def test_generate_samples_the_trained_times_and_refuses_others(trained):
    pytest.importorskip("polydiff_example")
    out, _ = trained
    with polydiff.testing.registered(_Plugin(polydiff.load_trained(out, Generator)), "ddgan-test"):
        result = polydiff.generate("points2d", "north", backend="points2d-ddgan", n=4, seed=0)
        assert result.metadata["resolved"]["spacing"] == "trained" and result.metadata["resolved"]["steps"] == 2
        assert result.metadata["resolved"]["sampler"] == "ddpm"
        alone = polydiff.generate("points2d", "north", backend="points2d-ddgan", n=1, seed=2)
        assert torch.allclose(torch.as_tensor(alone.outputs[0]), torch.as_tensor(result.outputs[2]), rtol=0, atol=1e-5)
        for fields, needle in [({"steps": 3}, "steps: backend 'points2d-ddgan' is a 2-step generator"),
                               ({"sampler": "euler"}, "sampler: backend 'points2d-ddgan' samples with ddpm"),
                               ({"spacing": "karras"}, "spacing: backend 'points2d-ddgan' samples the 3 times")]:
            with pytest.raises(InvalidInputError, match=needle):
                polydiff.generate("points2d", "north", backend="points2d-ddgan", n=1, seed=0, **fields)


DDP_SCRIPT = """
import sys
sys.path.insert(0, {here!r})
import os
from safetensors.torch import save_file
from test_adversarial import trainer
run = trainer({out!r}, steps=6)
run.fit()
rank = os.environ["RANK"]
save_file({{k: v.contiguous() for k, v in run.discriminator.state_dict().items()}}, {out!r} + f"-disc{{rank}}.safetensors")
save_file({{k: v.contiguous() for k, v in run.model.state_dict().items()}}, {out!r} + f"-gen{{rank}}.safetensors")
"""


def test_ddgan_under_ddp_two_processes(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "ddgan_ddp.py"
    script.write_text(DDP_SCRIPT.format(here=str(Path(__file__).parent), out=str(tmp_path / "ddp")))
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = load_file(tmp_path / "ddp" / "train_state.safetensors")
    assert any(k.startswith("disc.") for k in state)
    assert json.loads((tmp_path / "ddp" / "train_state.json").read_text())["world_size"] == 2
    for player in ("disc", "gen"):  # gradients were averaged across ranks: both hold the same weights
        a, b = (load_file(tmp_path / f"ddp-{player}{r}.safetensors") for r in (0, 1))
        assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), player


def test_a_few_step_backend_batches_in_the_server_as_alone(trained):
    pytest.importorskip("polydiff_example")
    from polydiff.serve.batching import sample_together

    out, _ = trained
    with polydiff.testing.registered(_Plugin(polydiff.load_trained(out, Generator)), "ddgan-test"):
        requests = [polydiff.GenerateRequest.build(modality="points2d", prompt="north", backend="points2d-ddgan",
                                                   n=n, seed=seed) for n, seed in ((2, 5), (1, 40))]
        together = sample_together(requests)
        assert together is not None  # one shared run: z is split with the rows
        for request, result in zip(requests, together):
            alone = polydiff.generate("points2d", "north", backend="points2d-ddgan", n=request.n, seed=request.seed)
            for a, b in zip(alone.outputs, result.outputs):
                assert torch.allclose(torch.as_tensor(a), torch.as_tensor(b), rtol=0, atol=1e-5)


def test_inpainting_by_replacement_runs_on_a_few_step_backend(trained):
    pytest.importorskip("polydiff_example")
    out, _ = trained
    with polydiff.testing.registered(_Plugin(polydiff.load_trained(out, Generator)), "ddgan-test"):
        result = polydiff.generate("points2d", task="inpaint", x=1.0, backend="points2d-ddgan", n=200, seed=0)
    points = torch.stack([torch.as_tensor(p) for p in result.outputs])
    assert torch.allclose(points[:, 0], torch.ones(200))  # the kept coordinate never changes
    assert float((points[:, 1].abs() - 1).abs().lt(3 * SPREAD).float().mean()) > 0.5  # y on a mode's row
