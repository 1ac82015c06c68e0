"""The conformance kit (polydiff.testing): it passes what keeps polydiff's contracts and names
what breaks them. ``AllHooks`` implements every hook, so this file also exercises each one
through pluggy (see test_plugin_discipline.py)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import click
import numpy as np
import polydiff
import pytest
import torch
from polydiff import testing as kit
from polydiff.testing import CheckSkipped, ConformanceError, registered
from pydantic import BaseModel


@pytest.fixture(autouse=True)
def _one_thread(polydiff_single_thread):
    """Fixture from polydiff's own pytest plugin: tiny tensors run fastest on one thread."""


# --------------------------------------------------------------------------- a plugin with every hook

MEAN, STD = torch.tensor([1.0, -0.5, 0.25]), 0.3


class GentleVP(polydiff.VPSchedule):
    """A VP schedule with betas 0.1 -> 15."""

    name = "allhooks-vp"

    def log_alpha_bar(self, t):
        t = torch.as_tensor(t)
        return -(0.1 * t + 0.5 * 14.9 * t**2)


def ddim_x0(model, x, grid, noise=None, step=None):
    """Deterministic first-order step in x0 form."""
    for i in range(len(grid)):
        x0 = model(x, grid.t[i])
        x = grid.alpha[i + 1] * x0 + grid.sigma[i + 1] * (x - grid.alpha[i] * x0) / grid.sigma[i]
        x = polydiff.after_step(step, grid, i, x, x0)
    return x


class Affine:
    """A data encoder: data <-> model space by an affine map."""

    def __init__(self, device="cpu"):
        self.device = device

    def encode(self, x):
        return (torch.as_tensor(x, dtype=torch.float32) - 0.5) * 4

    def decode(self, z):
        return z / 4 + 0.5


def gaussian_backend(device):
    """The exact denoiser of N(MEAN, STD^2 I): E[x0 | x_t] is linear in x_t."""
    schedule = polydiff.components().schedules["vp-linear"]
    mean = MEAN.to(device)

    def net(x, t, cond):
        a, s = schedule.alpha(t)[:, None].to(x.dtype), schedule.sigma(t)[:, None].to(x.dtype)
        return mean + a * STD**2 / (a**2 * STD**2 + s**2) * (x - a * mean)

    return polydiff.LoadedModel(net=net, schedule=schedule, prediction="x0")


class VecOptions(BaseModel):
    scale: float = 1.0


def plan(request, context):
    scale = request.options.get("scale", 1.0)
    return polydiff.Plan(shape=(3,), decode=lambda x: [(scale * row).cpu().numpy() for row in x])


def write(outputs, folder, request):
    np.save(folder / "vectors.npy", np.stack(outputs))
    (folder / "vectors.json").write_text(json.dumps([o.tolist() for o in outputs]))
    return [folder / "vectors.npy", folder / "vectors.json"]


def read(files):
    path = next(f for f in files if f.suffix == ".json")
    return [np.array(row, dtype=np.float32) for row in json.loads(path.read_text())]


GENERATE = polydiff.Task("generate", "sample 3-vectors", plan, options=VecOptions, example={"scale": 1.0})


def vec_modality(*extra_tasks, writer=write, reader=read, formats=("npy", "json")):
    """The in-test modality: 3-vectors from one Gaussian, written as .npy and .json."""
    return polydiff.Modality(name="allhooks-vec", description="3-vectors from one Gaussian",
                             tasks=[GENERATE, *extra_tasks], write=writer, read=reader,
                             default_backend="allhooks-gauss", formats=formats)


class AllHooks:
    """Implements every polydiff hook."""

    def __init__(self):
        self.steps, self.generations = 0, 0

    @polydiff.hookimpl
    def register_schedules(self, register):
        register(GentleVP())
        register(polydiff.Spacing("allhooks-even", lambda schedule, steps, t_start:
                                  torch.linspace(t_start, 0.0, steps + 1, dtype=torch.float64).tolist(),
                                  "evenly to 0"))

    @polydiff.hookimpl
    def register_samplers(self, register):
        register("allhooks-ddim", ddim_x0, order=1)

    @polydiff.hookimpl
    def register_modalities(self, register):
        register(vec_modality())

    @polydiff.hookimpl
    def register_encoders(self, register):
        register(polydiff.Encoder("allhooks-affine", "data", Affine, "x -> 4 (x - 0.5)",
                                  examples=lambda: [torch.rand(4, 3), [0.0, 1.0]], tolerance=1e-6))

    @polydiff.hookimpl
    def register_backends(self, register):
        register(polydiff.Backend("allhooks-gauss", "allhooks-vec", gaussian_backend, prediction="x0",
                                  devices=("cpu", "cuda")))

    @polydiff.hookimpl
    def register_commands(self, cli):
        @cli.command(name="allhooks-hello")
        def hello():
            """Say hello."""
            click.echo("hello")

    @polydiff.hookimpl
    def on_step(self, step):
        self.steps += 1

    @polydiff.hookimpl(wrapper=True)
    def run_generation(self, request, context):
        self.generations += 1
        result = yield
        result.metadata["allhooks"] = True
        return result


def test_every_hook_is_exercised_and_the_plugin_passes_the_kit():
    plugin = AllHooks()
    with registered(plugin, "allhooks") as name:
        c = polydiff.components()
        assert {c.schedules.origin["allhooks-vp"], c.spacings.origin["allhooks-even"],
                c.samplers.origin["allhooks-ddim"], c.modalities.origin["allhooks-vec"],
                c.encoders.origin["allhooks-affine"], c.backends.origin["allhooks-gauss"]} == {name}
        report = kit.check_plugin(name, devices=["cpu"])
        result = polydiff.generate("allhooks-vec", n=3, steps=5, seed=0)
    assert report.ok, report
    kinds = {o.kind for o in report.outcomes if o.status == "ok"}
    assert kinds == {"sampler", "schedule", "spacing", "encoder", "backend", "modality", "options", "task",
                     "commands", "on_step", "generation"}, report
    assert result.metadata["allhooks"] is True and plugin.generations >= 1 and plugin.steps >= 5
    assert "allhooks-vec" not in polydiff.components().modalities  # unregistered on exit
    text = str(report)
    assert text.startswith("polydiff conformance of plugin 'allhooks'") and "0 failed" in text


def test_plugin_commands_reach_the_cli():
    from click.testing import CliRunner
    from polydiff.cli import cli

    group = click.Group("polydiff", commands=dict(cli.commands))
    with registered(AllHooks(), "allhooks"):
        polydiff.load_plugins().hook.register_commands(cli=group)
    run = CliRunner().invoke(group, ["allhooks-hello"])
    assert run.exit_code == 0 and run.output == "hello\n"


# --------------------------------------------------------------------------- samplers


def test_sampler_checks_pass_for_builtins_and_report_measurements():
    measured = kit.check_sampler_order("dpmpp_2m")
    assert min(measured["orders"]) > 1.5 and measured["claimed"] == 2
    assert "order" in kit.check_sampler("heun") and "reproduces" in kit.check_sampler("ddpm")


def test_overclaimed_order_is_named():
    with pytest.raises(ConformanceError, match=r"sampler 'ddim_x0': observed order \d\.\d+ .*claimed 2"):
        kit.check_sampler_order(ddim_x0, order=2)


def test_batch_dependent_noise_is_caught():
    def shared_noise(model, x, grid, noise=None, step=None):
        gen = torch.Generator().manual_seed(0)
        for i in range(len(grid)):
            x0 = model(x, grid.t[i])
            eps = torch.randn(x.shape, generator=gen)  # one stream for the whole batch: wrong
            x = grid.alpha[i + 1] * x0 + grid.sigma[i + 1] * eps
        return x

    with pytest.raises(ConformanceError, match=r"sample 0 of a batch seeded 11 differs from .* seed 11;"):
        kit.check_seeding(shared_noise)


def test_host_sync_is_caught():
    def syncing(model, x, grid, noise=None, step=None):
        for i in range(len(grid)):
            x = model(x, grid.t[i])
            if float(x.abs().max()) > 100:  # reads a device value on the host
                break
        return x

    with pytest.raises(ConformanceError, match="reads device values on the host: _local_scalar_dense"):
        kit.check_no_host_sync(syncing)


def test_stochastic_sampler_with_wrong_spread_is_caught():
    ddpm = polydiff.components().samplers["ddpm"].fn

    def overdispersed(model, x, grid, noise=None, step=None):
        return ddpm(model, x, grid, noise=noise, step=step) + 0.5 * noise(x)

    with pytest.raises(ConformanceError, match=r"sampler 'overdispersed': component \d spread 0\.[67]"):
        kit.check_stochastic_sampler(overdispersed, steps=50)


# --------------------------------------------------------------------------- schedules and spacings


def test_schedule_checks():
    assert "monotone" in kit.check_schedule("vp-cosine")
    assert "monotone" in kit.check_schedule(GentleVP())

    class Weak(GentleVP):
        name = "weak"

        def log_alpha_bar(self, t):
            return -0.5 * torch.as_tensor(t)  # ends far from pure noise

    with pytest.raises(ConformanceError, match="schedule 'weak': log-SNR .* noise must dominate"):
        kit.check_schedule(Weak())

    class Backwards(polydiff.NoiseSchedule):
        name = "backwards"

        def alpha(self, t):
            return 1 - 0.5 * torch.as_tensor(t)

        def sigma(self, t):
            return 1.0 / (1 + torch.as_tensor(t))

    with pytest.raises(ConformanceError, match="schedule 'backwards': sigma does not strictly increase"):
        kit.check_schedule(Backwards())

    class HalfOverridden(GentleVP):
        name = "half-overridden"

        def alpha_sigma(self, t):  # sigma from another schedule than alpha
            return self.alpha(t), polydiff.components().schedules.get_named("vp-cosine").sigma(t)

    with pytest.raises(ConformanceError, match="half-overridden.*alpha_sigma"):
        kit.check_schedule(HalfOverridden())


def test_spacing_checks():
    assert "valid" in kit.check_spacing("karras")
    extra = polydiff.Spacing("extra", lambda s, steps, t0: torch.linspace(t0, 0, steps + 2).tolist())
    with pytest.raises(ConformanceError, match="spacing 'extra' on 'vp-linear', 1 steps .*3 times, expected 2"):
        kit.check_spacing(extra, ["vp-linear"])


# --------------------------------------------------------------------------- encoders


def test_data_encoder_checks():
    good = polydiff.Encoder("affine", "data", Affine, examples=lambda: [torch.rand(2, 3)], tolerance=1e-6)
    assert "round-trip" in kit.check_encoder(good)

    class Lossy(Affine):
        def decode(self, z):
            return torch.round(super().decode(z) * 10) / 10

    lossy = polydiff.Encoder("lossy", "data", Lossy, examples=lambda: [torch.rand(5, 3)], tolerance=1e-3)
    with pytest.raises(ConformanceError, match="encoder 'lossy': example 0 round-trips with error .* tolerance 0.001"):
        kit.check_encoder(lossy)
    with pytest.raises(CheckSkipped, match="examples"):
        kit.check_encoder(polydiff.Encoder("bare", "data", Affine))
    with pytest.raises(ConformanceError, match="kind must be"):
        kit.check_encoder(polydiff.Encoder("odd", "audio", Affine))


class Lengths:
    """A condition encoder: prompts -> {"length": [n], "mask": [n, 2]}, one row per prompt."""

    def __init__(self, device="cpu"):
        self.device = device

    def encode(self, prompts):
        return {"length": torch.tensor([float(len(p)) for p in prompts], device=self.device),
                "mask": torch.ones(len(prompts), 2, dtype=torch.bool, device=self.device)}


def lengths(load=Lengths, outputs=("length", "mask")):
    return polydiff.Encoder("lengths", "condition", load, outputs=outputs, examples=lambda: ["hi", "hello"])


def test_condition_encoder_checks():
    assert "3 prompts -> length, mask on cpu; deterministic, rows independent" in kit.check_encoder(lengths())
    with pytest.raises(ConformanceError, match=r"encoder 'lengths': a condition encoder declares its keys"):
        kit.check_encoder(lengths(outputs=()))

    class Flaky(Lengths):
        calls = 0

        def encode(self, prompts):
            Flaky.calls += 1
            return {**super().encode(prompts), "length": torch.full((len(prompts),), float(Flaky.calls))}

    with pytest.raises(ConformanceError, match=r"encoding \['hi', 'hello', ''\] twice gave different 'length'"):
        kit.check_encoder(lengths(Flaky))


def test_an_encoder_missing_a_declared_key_fails():
    with pytest.raises(ConformanceError, match=r"encoder 'lengths': encode\(\) lacks declared key 'tokens' "
                                               r"\(declared outputs: length, mask, tokens\)"):
        kit.check_encoder(lengths(outputs=("length", "mask", "tokens")))
    with pytest.raises(ConformanceError, match="returns undeclared key 'mask'"):
        kit.check_encoder(lengths(outputs=("length",)))


def test_an_encoder_whose_rows_depend_on_the_batch_fails():
    class Centred(Lengths):  # normalises over the batch: a prompt's row changes with its neighbours
        def encode(self, prompts):
            out = super().encode(prompts)
            return {**out, "length": out["length"] - out["length"].mean()}

    with pytest.raises(ConformanceError, match=r"'length' of 'hi' differs by 0\.333 between a batch of 3 "
                                               "and alone; rows must not depend on the batch"):
        kit.check_encoder(lengths(Centred))

    class Padded(Lengths):  # pads to the batch's longest prompt
        def encode(self, prompts):
            width = max(len(p) for p in prompts)
            return {**super().encode(prompts), "mask": torch.tensor(
                [[i < len(p) for i in range(width)] for p in prompts])}

    with pytest.raises(ConformanceError, match=r"'mask' of 'hi' has shape \(5,\) in a batch of 3, \(2,\) alone"):
        kit.check_encoder(lengths(Padded))


# --------------------------------------------------------------------------- backends and modalities


class Broken(AllHooks):
    """AllHooks with one fault, chosen by ``fault``."""

    def __init__(self, fault):
        super().__init__()
        self.fault = fault

    @polydiff.hookimpl
    def register_modalities(self, register):
        writer, formats = write, ("npy", "json")
        if self.fault == "format":
            formats = ("npy", "json", "png")
        if self.fault == "corrupt":
            def writer(outputs, folder, request):
                files = write(outputs, folder, request)
                (folder / "vectors.json").write_text("[1, 2")
                return files
        reader = (lambda files: [o + 1 for o in read(files)]) if self.fault == "read" else read
        edit = polydiff.Task("edit", "needs an input", plan, needs=("init",))
        register(vec_modality(edit, writer=writer, reader=reader, formats=formats))

    @polydiff.hookimpl
    def register_backends(self, register):
        def load(device):
            loaded = gaussian_backend(device)
            if self.fault == "shape":
                net = loaded.net
                loaded.net = lambda x, t, c: net(x, t, c)[:, :2]
            if self.fault == "nan":
                loaded.net = lambda x, t, c: x * float("nan")
            return loaded

        prediction = "eps" if self.fault == "prediction" else "x0"
        register(polydiff.Backend("allhooks-gauss", "allhooks-vec", load, prediction=prediction))


@pytest.mark.parametrize("fault, needle", [
    ("shape", "backend 'allhooks-gauss' on cpu: the network returned a tensor of shape (2, 2) for input of shape (2, 3)"),
    ("nan", "the network returned NaN"),
    ("prediction", "the loaded model predicts 'x0', the backend declares 'eps'"),
    ("format", "declares format 'png' but wrote only json, npy"),
    ("corrupt", "writer: read() of vectors.json, vectors.npy raised JSONDecodeError"),
    ("read", "modality 'allhooks-vec' writer: output 0 reads back off by 1"),
])
def test_faults_are_named_in_the_report(fault, needle):
    with registered(Broken(fault), "broken") as name:
        report = kit.check_plugin(name, devices=["cpu"], raise_on_failure=False)
        with pytest.raises(ConformanceError) as info:
            report.raise_for_failures()
    assert not report.ok
    failed = [o for o in report.outcomes if o.status == "FAIL"]
    assert any(needle in o.detail for o in failed), report
    assert needle in str(info.value)
    skipped = {o.name: o.detail for o in report.outcomes if o.status == "skip"}
    assert "task 'edit' declares no example inputs" in skipped["allhooks-vec:edit@cpu"]


def test_a_crash_in_plugin_code_says_where():
    class Crashing(AllHooks):
        @polydiff.hookimpl
        def register_backends(self, register):
            def load(device):
                raise RuntimeError("weights missing")
            register(polydiff.Backend("allhooks-gauss", "allhooks-vec", load, prediction="x0"))

    with registered(Crashing(), "crashing") as name:
        report = kit.check_plugin(name, devices=["cpu"], raise_on_failure=False)
    detail = next(o.detail for o in report.outcomes if o.name == "allhooks-gauss@cpu")
    assert detail.startswith("raised RuntimeError: weights missing (at test_testing_kit.py:")


@pytest.mark.parametrize("builtin", ["polydiff.builtin.schedules", "polydiff.builtin.generation"])
def test_builtin_plugins_pass_the_kit(builtin):
    """Core's own plugins run the same kit (the built-in samplers: test_samplers_oracle.py)."""
    report = kit.check_plugin(builtin, devices=["cpu"])
    assert report.ok and len(report.of("ok")) >= (10 if builtin.endswith("schedules") else 1), report


def test_a_plugin_that_failed_to_load_fails_the_kit(monkeypatch):
    from polydiff import plugins

    monkeypatch.setitem(plugins.failures, "ghost", "ModuleNotFoundError: No module named 'scipy'")
    report = kit.check_plugin("ghost", raise_on_failure=False)
    assert not report.ok and report.outcomes[0].detail == (
        "failed to load: ModuleNotFoundError: No module named 'scipy'")


def test_plugins_check_command_exits_1_on_a_failure():
    from click.testing import CliRunner
    from polydiff.cli import _add_plugin_commands, cli

    _add_plugin_commands()
    with registered(Broken("nan"), "broken"):
        run = CliRunner().invoke(cli, ["plugins", "check", "broken", "--device", "cpu"])
    assert run.exit_code == 1, run.output
    assert "polydiff conformance of plugin 'broken'" in run.stdout and "FAIL" in run.stdout


def test_unknown_plugin_is_a_clear_error():
    with pytest.raises(ConformanceError, match=r"plugin 'nosuch' is not loaded \(loaded: .*example"):
        kit.check_plugin("nosuch")


def test_check_plugin_accepts_the_distribution_name():
    from polydiff.testing.report import _plugin_name

    assert _plugin_name("polydiff-example", polydiff.load_plugins()) == "example"
    assert _plugin_name("polydiff_example", polydiff.load_plugins()) == "example"


def test_task_options_are_checked():
    with registered(Broken("none"), "broken"):
        assert kit.check_task_options("allhooks-vec", "generate") == (
            "options scale; schema is JSON; an unknown option is rejected by name")
        assert kit.check_task_options("allhooks-vec", "edit") == (
            "no options; schema is JSON; an unknown option was not tried (no example inputs)")
        with pytest.raises(ConformanceError, match="modality 'allhooks-vec' has no task 'nosuch'"):
            kit.check_task_options("allhooks-vec", "nosuch")


class Tiny:
    """Registers one sampler, under a name of its choosing."""

    def __init__(self, sampler="tiny-ddim"):
        self.sampler = sampler

    @polydiff.hookimpl
    def register_samplers(self, register):
        register(self.sampler, ddim_x0, order=1)


class Overriding(Tiny):
    """Tiny, replacing a sampler of the same name on purpose."""

    @polydiff.hookimpl
    def register_samplers(self, register):
        register(self.sampler, ddim_x0, order=1, override=True)


def test_an_overridden_registration_is_reported_as_skipped():
    with registered(Tiny(), "tiny-first") as first, registered(Overriding(), "tiny-second") as second:
        samplers = polydiff.components().samplers
        assert samplers.origin["tiny-ddim"] == second and samplers.overridden["tiny-ddim"] == first
        report = kit.check_plugin(first, devices=["cpu"])
    assert [(o.kind, o.name, o.status, o.detail) for o in report.outcomes] == [
        ("sampler", "tiny-ddim", "skip", "overridden by plugin 'tiny-second'")]


def test_a_taken_name_without_override_fails_the_later_plugin_naming_both():
    from polydiff import plugins

    try:
        with registered(Tiny(), "tiny-first") as first, registered(Tiny(), "tiny-second") as second:
            assert polydiff.components().samplers.origin["tiny-ddim"] == first
            report = kit.check_plugin(second, devices=["cpu"], raise_on_failure=False)
    finally:
        plugins.failures.pop("tiny-second", None)
    failed = [o.detail for o in report.of("FAIL")]
    assert len(failed) == 1 and "'tiny-ddim' of plugin 'tiny-second' is already registered by plugin " \
        "'tiny-first'; pass override=True" in failed[0], report


def test_a_register_hook_that_raises_fails_the_report_and_disables_the_plugin():
    from polydiff import plugins

    class Raising(Tiny):
        @polydiff.hookimpl
        def register_schedules(self, register):
            raise RuntimeError("no schedule today")

    try:
        with registered(Raising(), "raising") as name:
            report = kit.check_plugin(name, devices=["cpu"], raise_on_failure=False)
            left = "tiny-ddim" in polydiff.components().samplers
    finally:
        plugins.failures.pop("raising", None)
    failed = [o.detail for o in report.of("FAIL")]
    assert len(failed) == 1 and failed[0].startswith(
        "register_schedules raised RuntimeError: no schedule today (at test_testing_kit.py:"), report
    assert report.of("ok") == [] and not left  # the plugin is disabled: nothing of it stays registered


class Counting(AllHooks):
    """AllHooks whose backend counts how often it is loaded."""

    loads = 0

    @polydiff.hookimpl
    def register_backends(self, register):
        def load(device):
            Counting.loads += 1
            return gaussian_backend(device)

        register(polydiff.Backend("allhooks-gauss", "allhooks-vec", load, prediction="x0"))


def test_register_plugin_is_the_one_registration_and_clears_every_cache():
    assert kit.registered is polydiff.register_plugin

    def model():
        request = polydiff.GenerateRequest.build(modality="allhooks-vec", device="cpu")
        return polydiff.Context(request).model()

    with polydiff.register_plugin(Counting(), "counting") as name:
        assert name == "counting"
        model(), model()
        assert Counting.loads == 1  # loaded once per process and device
        handle = polydiff.register_plugin(Tiny(), "tiny")
        assert polydiff.components().samplers.origin["tiny-ddim"] == "tiny"
        model()
        assert Counting.loads == 2  # registering cleared the loaded backends
        polydiff.unregister_plugin(handle)
        assert "tiny-ddim" not in polydiff.components().samplers
        model()
        assert Counting.loads == 3  # and so did unregistering
        polydiff.unregister_plugin(handle)  # a second time does nothing
    assert "allhooks-vec" not in polydiff.components().modalities


def test_register_plugin_refuses_what_it_cannot_register():
    plugin = Tiny()
    with registered(plugin, "tiny"):
        with pytest.raises(polydiff.PluginError, match="plugin 'tiny' is already registered"):
            polydiff.register_plugin(plugin, "tiny-again")
        with pytest.raises(polydiff.PluginError, match="Plugin name already registered"):
            polydiff.register_plugin(Tiny(), "tiny")

    class Misspelt:
        @polydiff.hookimpl
        def register_sampler(self, register):  # no such hook
            pass

    misspelt = Misspelt()
    with pytest.raises(polydiff.PluginError, match="plugin 'misspelt'.*register_sampler"):
        polydiff.register_plugin(misspelt, "misspelt")
    assert not polydiff.load_plugins().is_registered(misspelt)
    assert not hasattr(polydiff.load_plugins().hook, "register_sampler")  # no trace left


# --------------------------------------------------------------------------- the pytest plugin


def test_pytest_plugin_loads_without_torch_and_provides_fixtures(tmp_path):
    (tmp_path / "test_probe.py").write_text(textwrap.dedent("""
        import sys

        def test_startup_is_light(request):
            assert request.config.pluginmanager.has_plugin("polydiff")
            assert "torch" not in sys.modules

        def test_fixtures(polydiff_mixture, polydiff_components, polydiff_devices, polydiff_check):
            assert polydiff_mixture.dim == 2 and "cpu" in polydiff_devices
            assert "euler" in polydiff_components.samplers and callable(polydiff_check)
    """))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_probe.py"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed" in proc.stdout


def test_granular_modality_and_backend_checks_on_the_example_plugin():
    done = kit.check_modality("points2d")
    assert set(done) == {"generate", "inpaint"} and all("read back" in d for d in done.values())
    assert "rejected by name" in kit.check_task_options("points2d", "inpaint")
    assert "returns (2, 2)" in kit.check_backend("points2d-mlp", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(CheckSkipped, match="no CUDA device here"):
            kit.check_backend("points2d-exact", "cuda")
