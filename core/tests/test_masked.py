"""The masked (absorbing-state) process against the categorical-mixture oracle: schedules, the
MDLM bound, samplers, token infilling, guidance on logits, training and the generate path."""
import math

import polydiff
import pytest
import torch
from polydiff import testing as kit
from polydiff.masked import mask_tokens, masked_loss
from polydiff.testing.masked import check_mixture, sampling_floor, tv_distance
from pydantic import BaseModel

pytestmark = pytest.mark.usefixtures("polydiff_single_thread")


@pytest.mark.parametrize("name", ["mask-linear", "mask-cosine"])
def test_mask_schedules_run_from_all_visible_to_all_masked(name):
    schedule = polydiff.components().schedules[name]
    t = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    alpha = schedule.alpha(t)
    assert schedule.process == "masked"
    assert float(schedule.alpha(torch.tensor(0.0))) == 1.0 and abs(float(schedule.alpha(torch.tensor(1.0)))) < 1e-12
    assert (alpha.diff() < 0).all() and torch.allclose(schedule.sigma(t), 1 - alpha)
    h = 1e-6   # the ELBO weight is -alpha'(t) / (1 - alpha(t)); check alpha' by central differences
    slope = (schedule.alpha(t + h) - schedule.alpha(t - h)) / (2 * h)
    assert torch.allclose(schedule.weight(t), -slope / (1 - alpha), rtol=1e-6)


def test_forward_process_keeps_a_token_with_probability_alpha():
    x0 = torch.randint(0, 5, (4000, 16), generator=torch.Generator().manual_seed(0))
    alpha = torch.tensor([0.0, 0.25, 0.5, 1.0]).repeat_interleave(1000)
    xt = mask_tokens(x0, alpha, 9, torch.rand(x0.shape, generator=torch.Generator().manual_seed(1)))
    visible = (xt != 9).double().reshape(4, -1).mean(1)
    assert torch.allclose(visible, torch.tensor([0.0, 0.25, 0.5, 1.0], dtype=torch.float64), atol=0.015)
    assert torch.equal(xt[xt != 9], x0[xt != 9])


def test_the_mdlm_bound_of_the_exact_denoiser_is_the_entropy_per_token():
    """With exact conditionals the continuous-time bound is tight (it averages the exact
    any-order autoregressive likelihood), so E[loss] = H(law) / L: the weight, its sign and the
    normalisation are all checked by one number."""
    gm, g = check_mixture(), torch.Generator().manual_seed(0)
    law = gm.law()
    entropy = float(-(law * law.log()).sum()) / gm.length
    x0 = gm.sample(200_000, generator=g)
    t = torch.rand(x0.shape[0], generator=g, dtype=torch.float64).clamp_min(1e-4)
    xt = mask_tokens(x0, gm.schedule.alpha(t), gm.mask_id, torch.rand(x0.shape, generator=g))
    loss = masked_loss(gm(xt), x0, xt, gm.schedule.weight(t), gm.mask_id)
    uniform = masked_loss(torch.zeros(*x0.shape, gm.vocab + 1), x0, xt, gm.schedule.weight(t), gm.mask_id)
    assert abs(float(loss) - entropy) < 0.01 * entropy, (float(loss), entropy)
    assert float(uniform) == pytest.approx(math.log(gm.vocab), rel=0.02)  # a model knowing nothing


def test_stratified_training_times_cover_every_slice_and_stay_uniform():
    """t_sampling="stratified" puts exactly one time in each 1/n slice of a batch, and each
    time is still uniform on [0, 1) over batches, so the loss stays the unbiased bound."""
    from polydiff.training import _training_times

    g = torch.Generator().manual_seed(0)
    t = _training_times(64, "stratified", g, "cpu")
    assert sorted((t * 64).floor().long().tolist()) == list(range(64))
    first = torch.stack([_training_times(8, "stratified", g, "cpu")[0] for _ in range(4000)])
    counts = torch.bincount((first * 10).floor().long(), minlength=10).double()
    assert float(((counts - 400) ** 2 / 400).sum()) < 27.9  # chi-square, 9 dof, p = 0.001
    config = polydiff.TrainConfig.build(schedule="mask-linear", prediction="logits", mask_id=4, t_sampling="stratified")
    assert config.t_sampling == "stratified"
    with pytest.raises(polydiff.InvalidInputError, match="t_sampling"):
        polydiff.TrainConfig.build(t_sampling="sobol")


@pytest.mark.parametrize("name", ["mdlm", "remask", "blocks"])
def test_each_masked_sampler_converges_to_the_exact_law(name):
    summary = kit.check_sampler(name)
    assert "exact infill" in summary and "no host syncs" in summary


def test_blocks_reveal_left_to_right():
    gm = check_mixture()
    seen = []
    polydiff.sample(gm, (4, 3), sampler="blocks", steps=3, sampler_options={"block": 1},
                    callback=lambda info: seen.append((info.x != gm.mask_id).sum(0).tolist()))
    assert seen == [[4, 0, 0], [4, 4, 0], [4, 4, 4]]


def test_mdlm_gets_closer_with_steps_on_a_longer_sequence():
    probs = torch.rand(3, 6, 4, generator=torch.Generator().manual_seed(2)) ** 3
    gm = kit.CategoricalMixture([0.5, 0.3, 0.2], probs)
    law = gm.law()
    tvs = [tv_distance(gm, polydiff.sample(gm, (4000, 6), sampler="mdlm", steps=s, seed=3), law) for s in (1, 4, 64)]
    assert tvs[0] > tvs[1] > tvs[2], tvs
    assert tvs[2] < 1.5 * sampling_floor(law, 4000) + 0.02, tvs


def test_the_wrong_process_is_one_clear_error():
    gm = check_mixture()
    with pytest.raises(polydiff.InvalidInputError, match=r"sampler: 'unipc' drives the gaussian process.*"
                       r"'mask-linear' is masked; use one of: blocks, mdlm, remask"):
        polydiff.sample(gm, (2, 3), sampler="unipc")
    with pytest.raises(polydiff.InvalidInputError, match="'mdlm' drives the masked process"):
        polydiff.sample(kit.default_mixture(), (2, 2), sampler="mdlm")
    with pytest.raises(polydiff.InvalidInputError, match="SDEdit does not apply to the masked process"):
        polydiff.sample(gm, (2, 3), constraints=[polydiff.SDEdit(torch.zeros(2, 3), 0.5)])
    with pytest.raises(polydiff.InvalidInputError, match="mask_id: the masked process needs"):
        polydiff.sample(lambda x, t, c: gm(x), (2, 3), schedule="mask-linear")
    with pytest.raises(polydiff.InvalidInputError, match="steps: the blocks sampler needs a step per block"):
        polydiff.sample(gm, (2, 3), sampler="blocks", steps=2, sampler_options={"block": 1})
    with pytest.raises(polydiff.InvalidInputError, match=r"logits \[\*input, vocabulary\]"):
        polydiff.sample(lambda x, t, c: torch.zeros(x.shape), (2, 3), schedule="mask-linear", mask_id=3)


def test_token_replacement_never_changes_kept_tokens_whatever_a_step_hook_does():
    gm = check_mixture()
    known = torch.tensor([[1, 0, 2]]).expand(6, -1)
    keep = torch.tensor([True, False, True])

    def scribble(info):   # a hook that overwrites everything; the constraint runs before it
        info.x = torch.zeros_like(info.x)

    x = polydiff.sample(gm, (6, 3), steps=4, constraints=[polydiff.Replacement(known, keep)], callback=scribble)
    assert torch.equal(x[:, keep], known[:, keep])


def test_guidance_mixes_log_probabilities():
    a = kit.CategoricalMixture([1.0], [[[0.7, 0.2, 0.1]] * 2])
    b = kit.CategoricalMixture([1.0], [[[0.2, 0.2, 0.6]] * 2])
    net = lambda x, t, cond: torch.where(cond[:, None, None] > 0, a(x), b(x))  # noqa: E731
    denoiser = polydiff.as_denoiser(net, a.schedule, "logits")
    x = torch.full((1, 2), a.mask_id)
    out = polydiff.guided(denoiser, torch.ones(1), torch.zeros(1), 2.0)(x, torch.ones(1))
    expected = 2 * a.probs[0].log() - b.probs[0].log()
    assert torch.allclose(torch.softmax(out[0, :, :3], -1), torch.softmax(expected, -1).float(), atol=1e-5)


class TokenMLP(torch.nn.Module):
    def __init__(self, length=3, vocab=4, width=64):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.net = torch.nn.Sequential(torch.nn.Linear(length * width + 1, width * 2), torch.nn.SiLU(),
                                       torch.nn.Linear(width * 2, length * vocab))
        self.length, self.vocab = length, vocab

    def forward(self, x, t, cond=None):
        h = torch.cat([self.embed(x).flatten(1), t[:, None].float()], dim=1)
        return self.net(h).reshape(x.shape[0], self.length, self.vocab)


def test_the_trainer_learns_a_masked_model_that_samples_the_law(tmp_path):
    gm = check_mixture()
    config = polydiff.TrainConfig(steps=400, batch_size=256, lr=3e-3, schedule="mask-linear", prediction="logits",
                                  mask_id=gm.mask_id, ema_decay=0.99, log_every=100, checkpoint_every=None,
                                  out=tmp_path / "ckpt", progress=False, device="cpu")
    data = lambda n, g: (gm.sample(n, generator=g), None)  # noqa: E731
    trainer = polydiff.Trainer(TokenMLP(), config, data, model_config={})
    folder = trainer.fit()
    loaded = polydiff.load_trained(folder, TokenMLP)
    assert loaded.mask_id == gm.mask_id and loaded.prediction == "logits" and loaded.schedule.name == "mask-linear"
    law = gm.law()
    entropy = float(-(law * law.log()).sum()) / gm.length
    first, last = trainer.history[0][1], trainer.history[-1][1]
    assert last < first and last < 1.1 * entropy, (trainer.history, entropy)
    denoiser = polydiff.as_denoiser(loaded.net, loaded.schedule, loaded.prediction)
    x = polydiff.sample(denoiser, (3000, 3), steps=16, seed=0, mask_id=loaded.mask_id)
    assert tv_distance(gm, x, law) < 0.12


@pytest.mark.parametrize("fields, needle", [
    (dict(schedule="mask-linear", prediction="eps", mask_id=4), "prediction: a masked schedule"),
    (dict(schedule="vp-linear", prediction="logits"), "prediction: a Gaussian schedule"),
    (dict(schedule="mask-cosine", prediction="logits"), "mask_id: the masked schedule 'mask-cosine'"),
])
def test_train_config_matches_the_process(fields, needle):
    with pytest.raises(polydiff.InvalidInputError, match=needle):
        polydiff.TrainConfig.build(**fields)


def test_float_data_for_a_masked_schedule_is_refused(tmp_path):
    config = polydiff.TrainConfig(steps=1, schedule="mask-linear", prediction="logits", mask_id=3,
                                  out=tmp_path, progress=False, device="cpu")
    trainer = polydiff.Trainer(TokenMLP(), config, lambda n, g: (torch.zeros(n, 3), None))
    with pytest.raises(polydiff.InvalidInputError, match="integer tokens"):
        trainer.fit()


class TokenPlugin:
    """A masked-process modality on the oracle: generate, and infill through a Replacement."""

    @polydiff.hookimpl
    def register_modalities(self, register):
        def generate(request, context):
            block = request.options["block"]
            return polydiff.Plan(shape=(3,), sampler_options={} if block is None else {"block": block})

        class GenerateOptions(BaseModel):
            block: int | None = None

        def infill(request, context):
            known = torch.tensor(request.options["tokens"])
            return polydiff.Plan(shape=(3,), constraints=[polydiff.Replacement(known.expand(request.n, -1),
                                                                                known != -1)])

        class InfillOptions(BaseModel):
            tokens: list[int]

        register(polydiff.Modality(
            name="tokens3", description="three tokens", default_backend="tokens3-oracle",
            tasks=[polydiff.Task("generate", "sample", generate, options=GenerateOptions),
                   polydiff.Task("infill", "fill the -1s", infill, options=InfillOptions)],
            write=lambda outputs, folder, request: []))

    @polydiff.hookimpl
    def register_backends(self, register):
        def load(device):   # the oracle resolves its schedule: only once the registry is built
            gm = check_mixture()
            return polydiff.LoadedModel(net=lambda x, t, cond: gm(x), schedule=gm.schedule,
                                        prediction="logits", mask_id=gm.mask_id)

        register(polydiff.Backend("tokens3-oracle", "tokens3", load, prediction="logits"))


def test_generate_runs_a_masked_backend_with_its_own_defaults_and_constraints():
    with kit.registered(TokenPlugin(), "tokens3"):
        result = polydiff.generate("tokens3", n=4, steps=6, seed=0)
        filled = polydiff.generate("tokens3", task="infill", tokens=[2, -1, -1], n=50, steps=6, seed=0)
        blocks = polydiff.generate("tokens3", n=2, steps=3, sampler="blocks", block=1, seed=0)
        with pytest.raises(polydiff.InvalidInputError, match="sampler: 'unipc' drives the gaussian process"):
            polydiff.generate("tokens3", sampler="unipc")
        with pytest.raises(polydiff.InvalidInputError, match="block: not an option of the sampler 'mdlm'; it takes temperature"):
            polydiff.generate("tokens3", block=1)
    assert result.metadata["resolved"]["sampler"] == "mdlm" and result.metadata["resolved"]["spacing"] == "trailing"
    assert result.samples.dtype == torch.long and not (result.samples == 3).any()
    assert (filled.samples[:, 0] == 2).all()
    assert blocks.metadata["resolved"]["sampler_options"] == {"block": 1}
    # given a 2 first, the component preferring 2 dominates: most other tokens are 2 as well
    assert float((filled.samples[:, 1:] == 2).double().mean()) > 0.6


def test_the_demo_sampler_gallery_skips_masked_samplers(tmp_path):
    """The demo draws every Gaussian sampler on a 2-D mixture; masked samplers are not for it."""
    from polydiff.cli.demo import run_demo

    files = run_demo(tmp_path, steps=3, n=50)
    legend = (tmp_path / "samplers.txt").read_text()
    assert "unipc" in legend and "mdlm" not in legend and all(f.exists() for f in files)
