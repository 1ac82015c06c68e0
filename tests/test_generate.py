"""End-to-end tests of the generate API through the separately installed example plugin."""
import json

import polydiff
import pytest
import torch
from polydiff.errors import InvalidInputError, NonFiniteError, UnknownNameError


def test_example_plugin_is_discovered_through_its_entry_point():
    c = polydiff.components()
    assert c.modalities.origin["points2d"] == "example"
    assert c.samplers.origin["midpoint"] == "example"
    assert c.backends["points2d-exact"].modality == "points2d"
    assert c.samplers.origin["dpmpp_2m"] == "polydiff.builtin.samplers"


def test_generate_points_follow_the_prompted_cluster(tmp_path):
    result = polydiff.generate("points2d", "north", n=400, steps=12, seed=1)
    pts = torch.as_tensor(result.samples)
    assert pts.shape == (400, 2)
    # north cluster is centred at (0, 2.5) with std 0.35
    assert abs(pts[:, 0].mean()) < 0.1 and abs(pts[:, 1].mean() - 2.5) < 0.1
    assert 0.25 < pts[:, 1].std() < 0.45
    files = result.save(tmp_path)
    assert {p.name for p in files} == {"points.csv", "points.svg", "metadata.json"}
    import xml.etree.ElementTree as ET

    assert len(ET.parse(tmp_path / "points.svg").getroot()[0]) == 400  # one dot per point
    assert len((tmp_path / "points.csv").read_text().splitlines()) == 401


def test_extra_sampler_from_the_plugin_works_in_sample_and_generate():
    unconditional = polydiff.generate("points2d", n=2000, steps=8, sampler="midpoint", seed=0)
    pts = torch.as_tensor(unconditional.samples)
    east = (pts[:, 0] > 1.25).float().mean()
    assert abs(east - 0.4) < 0.05  # the east cluster carries weight 0.4
    assert unconditional.metadata["resolved"]["sampler"] == "midpoint"


def test_metadata_regenerates_the_same_output(tmp_path):
    first = polydiff.generate("points2d", "west", n=5, steps=6, sampler="dpmpp_2m_sde")
    first.save(tmp_path)
    meta = json.loads((tmp_path / "metadata.json").read_text())
    request = meta["request"]
    again = polydiff.generate(request.pop("modality"), request.pop("prompt"), **request)
    assert torch.equal(first.samples, again.samples)
    assert meta["plugins"]["example"] == "0.1.0" and meta["resolved"]["schedule"] == "vp-cosine"


def test_a_sample_does_not_depend_on_its_batch():
    batch = polydiff.generate("points2d", n=4, steps=6, sampler="ddpm", seed=10).samples
    alone = polydiff.generate("points2d", n=1, steps=6, sampler="ddpm", seed=12).samples
    assert torch.equal(batch[2], alone[0])


def test_inpaint_keeps_the_known_coordinate_exactly():
    result = polydiff.generate("points2d", task="inpaint", x=-2.5, n=300, steps=15, seed=0)
    pts = result.samples
    assert torch.equal(pts[:, 0], torch.full((300,), -2.5))
    assert abs(pts[:, 1].mean()) < 0.1  # x = -2.5 identifies the west cluster, centred at y = 0


def test_guidance_runs_both_branches_in_one_batched_call():
    calls = []

    def D(x, t, cond):
        calls.append(x.shape[0])
        return torch.where(cond[:, None] >= 0, torch.ones_like(x), torch.zeros_like(x))

    cond, uncond = torch.tensor([0, 1]), torch.tensor([-1, -1])
    g = polydiff.guided(D, cond, uncond, scale=3.0)
    out = g(torch.zeros(2, 2), torch.full((2,), 0.5))
    assert calls == [4] and torch.allclose(out, torch.full((2, 2), 3.0))


@pytest.mark.parametrize("prediction", ["eps", "v", "x0", "flow"])
@pytest.mark.parametrize("schedule", ["vp-linear", "edm", "flow"])
def test_prediction_adapters_recover_x0(prediction, schedule):
    s = polydiff.components().schedules[schedule]
    gen = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(8, 3, generator=gen), torch.randn(8, 3, generator=gen)
    t = torch.linspace(0.05, 0.95, 8)
    a, sg = s.alpha(t)[:, None], s.sigma(t)[:, None]
    xt = a * x0 + sg * eps
    target = polydiff.target_for(prediction, x0, eps, a, sg)
    D = polydiff.as_denoiser(lambda x, tt, c: target, s, prediction)
    assert torch.allclose(D(xt, t), x0, atol=1e-4)


@pytest.mark.parametrize("fields, field", [
    (dict(sampler="nosuch"), "sampler"),
    (dict(spacing="nosuch"), "spacing"),
    (dict(backend="nosuch"), "backend"),
    (dict(task="nosuch"), "task"),
    (dict(steps=0), "steps"),
    (dict(n=0), "n"),
    (dict(strength=1.5), "strength"),
    (dict(device="tpu"), "device"),
    (dict(colour="red"), "colour"),
    (dict(task="inpaint"), "x"),
    (dict(n=600, steps=2), "budget"),
])
def test_bad_input_gets_one_clear_message_naming_the_field(fields, field, monkeypatch):
    monkeypatch.setattr(polydiff.components().modalities["points2d"], "max_elements", 1000)
    with pytest.raises((InvalidInputError, UnknownNameError)) as info:
        polydiff.generate("points2d", **fields)
    message = str(info.value)
    assert "\n" not in message
    assert field in message or (field == "budget" and "budget" in message)


def test_unknown_modality_suggests_a_close_name():
    with pytest.raises(UnknownNameError, match="did you mean 'points2d'"):
        polydiff.generate("points2", n=1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_asking_for_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(InvalidInputError, match="no CUDA device"):
        polydiff.generate("points2d", device="cuda")


def test_a_model_returning_nan_is_reported():
    with pytest.raises(NonFiniteError, match="NaN"):
        polydiff.sample(lambda x, t, c: x * float("nan"), (2, 2), steps=3)


def test_a_model_returning_the_wrong_shape_is_reported():
    with pytest.raises(InvalidInputError, match="shape"):
        polydiff.sample(lambda x, t, c: x[:, :1], (2, 2), steps=3)


def test_a_failed_save_leaves_no_partial_files(tmp_path):
    result = polydiff.generate("points2d", n=3, steps=2, seed=0)

    def broken_writer(outputs, folder, request):
        (folder / "half.csv").write_text("x,y\n")
        raise OSError("disk full")

    result.writer = broken_writer
    with pytest.raises(OSError):
        result.save(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []  # no folder, no staging left behind


class _StepCounter:
    """A plugin implementing the per-step and around-generate hooks."""

    def __init__(self):
        self.steps, self.wrapped = [], 0

    @polydiff.hookimpl
    def on_step(self, step):
        self.steps.append(step.i)

    @polydiff.hookimpl(wrapper=True)
    def run_generation(self, request, context):
        result = yield
        self.wrapped += 1
        result.metadata["wrapped"] = True
        return result


def test_step_and_generation_hooks_are_called():
    plugin = _StepCounter()
    polydiff.register_plugin(plugin, name="step-counter")
    try:
        result = polydiff.generate("points2d", n=2, steps=5, seed=0)
    finally:
        polydiff.unregister_plugin(plugin)
    assert plugin.steps == [0, 1, 2, 3, 4]
    assert plugin.wrapped == 1 and result.metadata["wrapped"] is True


def test_a_step_hook_may_change_the_state():
    def pin(step):
        step.x = torch.zeros_like(step.x)

    x = polydiff.sample(lambda x, t, c: torch.ones_like(x), (3, 2), steps=4, callback=pin)
    assert torch.equal(x, torch.zeros(3, 2))


class _SamplerOverride:
    """A third-party plugin that replaces a built-in sampler of the same name, on purpose."""

    @polydiff.hookimpl
    def register_samplers(self, register):
        def euler(model, x, grid, noise=None, step=None):
            return x * 0 + 7.0

        register("euler", euler, order=1, override=True)


def test_a_plugin_overrides_a_builtin_sampler_of_the_same_name():
    plugin = _SamplerOverride()
    polydiff.register_plugin(plugin, name="override")
    try:
        assert polydiff.components().samplers.origin["euler"] == "override"
        assert polydiff.components().samplers.overridden["euler"] == "polydiff.builtin.samplers"
        x = polydiff.sample(lambda x, t, c: x, (2, 2), sampler="euler", steps=2)
        assert torch.equal(x, torch.full((2, 2), 7.0))
    finally:
        polydiff.unregister_plugin(plugin)
    assert polydiff.components().samplers.origin["euler"] == "polydiff.builtin.samplers"
