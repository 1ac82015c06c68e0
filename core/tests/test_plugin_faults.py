"""Plugin faults are contained: a plugin that fails to import (sys.exit included), raises in any
hook, or registers an invalid or taken name is reported in one line naming it and disabled;
`--help`, `plugins` and `plugins uninstall` keep working; a plugin's `on_step` or
`run_generation` failing during generation is one line and exit 1, never a traceback; a taken
name is replaced only with `override=True`, which generation metadata records.

Start-up faults run `polydiff` in a fresh process (an installed fake distribution); the rest
registers plugins in this process with `polydiff.register_plugin`.
"""
from __future__ import annotations

import json

import polydiff
import pytest
from click.testing import CliRunner
from polydiff import cli as cli_module
from polydiff import plugins as plugin_loading
from polydiff.errors import PluginError
from polydiff.registries import components
from test_plugins_cli import assert_clean_failure, fake_distribution, polydiff_cmd

pytestmark = pytest.mark.usefixtures("polydiff_single_thread")


def stderr_lines(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


# --------------------------------------------------------------------------- at start-up

STARTUP_FAULTS = {
    "import raises": 'raise RuntimeError("boom at import")\n',
    "import exits": 'import sys\nsys.exit("bye from import")\n',
    "register_commands raises": """
        from polydiff import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command(name="half-added")
            def half():
                pass
            raise RuntimeError("boom in commands")
    """,
    "register_commands exits": """
        import sys
        from polydiff import hookimpl

        @hookimpl
        def register_commands(cli):
            sys.exit(3)
    """,
}


@pytest.mark.parametrize("fault", sorted(STARTUP_FAULTS))
def test_a_plugin_failing_at_start_up_leaves_the_cli_working(tmp_path, fault):
    fake_distribution(tmp_path, "bad", STARTUP_FAULTS[fault])
    env = {"PYTHONPATH": str(tmp_path)}
    for args in (("--help",), ("plugins",), ("plugins", "uninstall", "example", "--dry-run")):
        proc = polydiff_cmd(*args, env=env)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        lines = stderr_lines(proc)
        plugin_lines = [line for line in lines if "'bad'" in line]
        assert len(plugin_lines) == 1 and "Traceback" not in proc.stderr, (args, proc.stderr)
    assert "half-added" not in polydiff_cmd("--help", env=env).stdout  # rolled back with its plugin
    report = json.loads(polydiff_cmd("plugins", "--json", env=env).stdout)
    assert "bad" not in {p["name"] for p in report["plugins"]}
    (failed,) = report["failed"]
    assert failed["name"] == "bad" and "\n" not in failed["error"], failed
    assert ("SystemExit" if "exits" in fault else "RuntimeError") in failed["error"]
    if "commands" in fault:
        assert "register_commands" in failed["error"]
    assert "FAILED: " in polydiff_cmd("plugins", env=env).stdout


def test_a_start_up_fault_is_an_error_in_strict_mode(tmp_path):
    fake_distribution(tmp_path, "bad", STARTUP_FAULTS["register_commands raises"])
    proc = polydiff_cmd("--help", env={"PYTHONPATH": str(tmp_path), "POLYDIFF_STRICT_PLUGINS": "1"})
    assert_clean_failure(proc, "'bad'", "boom in commands")


def sampler_module(name: str, then: str = "pass") -> str:
    """A plugin module registering an identity sampler called ``name``, then running ``then``."""
    return (f"from polydiff import hookimpl\n\n"
            f"def identity(model, x, grid, noise=None, step=None):\n    return x\n\n"
            f"@hookimpl\ndef register_samplers(register):\n    register({name!r}, identity)\n    {then}\n")


def test_plugins_deep_lists_a_plugin_whose_register_hook_raised_as_failed(tmp_path):
    fake_distribution(tmp_path, "halfway", sampler_module("half", then='raise ValueError("boom after one sampler")'))
    env = {"PYTHONPATH": str(tmp_path)}
    report = json.loads(polydiff_cmd("plugins", "--deep", "--json", env=env).stdout)
    assert "halfway" not in {p["name"] for p in report["plugins"]}
    assert [f["name"] for f in report["failed"]] == ["halfway"]
    assert "register_samplers" in report["failed"][0]["error"]
    proc = polydiff_cmd("samplers", env=env)
    assert proc.returncode == 0 and "ddim" in proc.stdout
    assert "half " not in proc.stdout  # what it registered before failing is gone too
    assert len([line for line in stderr_lines(proc) if "'halfway'" in line]) == 1, proc.stderr


def test_plugins_check_fails_a_plugin_taking_a_built_in_name(tmp_path):
    fake_distribution(tmp_path, "taker", sampler_module("ddim"))
    proc = polydiff_cmd("plugins", "check", "taker", env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL" in proc.stdout and "'polydiff.builtin.samplers'" in proc.stdout, proc.stdout


# --------------------------------------------------------------------------- in this process


@pytest.fixture
def forget_failures():
    """Plugins disabled by a test are forgotten afterwards (the loader's record is global)."""
    before = dict(plugin_loading.failures)
    yield plugin_loading.failures
    plugin_loading.failures.clear()
    plugin_loading.failures.update(before)
    polydiff.registries.clear_caches()


def identity(model, x, grid, noise=None, step=None):
    return x


class SamplerPlugin:
    """Registers ``name`` (optionally with override) as a sampler."""

    def __init__(self, name, **options):
        self.name, self.options = name, options

    @polydiff.hookimpl
    def register_samplers(self, register):
        register(self.name, identity, **self.options)


@pytest.mark.parametrize("name", ["", "two words", "line\nbreak", "tab\t", "slash/name", "x" * 65, 7])
def test_an_invalid_name_disables_its_plugin(forget_failures, name):
    with polydiff.register_plugin(SamplerPlugin(name), "badname"):
        samplers = components().samplers
        assert name not in samplers and "ddim" in samplers
        assert "not a valid name" in forget_failures["badname"]
        assert "\n" not in forget_failures["badname"]
        assert not plugin_loading.pm.has_plugin("badname")


@pytest.mark.parametrize("kind", ["sampler", "modality"])
def test_a_taken_name_is_an_error_naming_both_plugins(forget_failures, kind):
    if kind == "sampler":
        plugin, owner = SamplerPlugin("unipc"), "polydiff.builtin.samplers"
    else:
        modality = components().modalities["points2d"]
        owner = components().modalities.origin["points2d"]

        class plugin:  # noqa: N801 - a plugin module stand-in
            @polydiff.hookimpl
            def register_modalities(register):
                register(modality)
    with polydiff.register_plugin(plugin, "taker"):
        c = components()
        reason = forget_failures["taker"]
        assert f"'{owner}'" in reason and "'taker'" in reason and "override=True" in reason, reason
        registry = c.samplers if kind == "sampler" else c.modalities
        assert registry.origin["unipc" if kind == "sampler" else "points2d"] == owner
        assert ("taker", f"register_{'samplers' if kind == 'sampler' else 'modalities'}") in c.errors


def test_override_replaces_and_is_recorded_in_the_metadata(forget_failures, tmp_path):
    with polydiff.register_plugin(SamplerPlugin("unipc", override=True), "replacer"):
        c = components()
        assert c.samplers["unipc"].fn is identity and c.samplers.origin["unipc"] == "replacer"
        assert c.samplers.overridden["unipc"] == "polydiff.builtin.samplers"
        result = polydiff.generate("points2d", n=2, steps=2, seed=0, sampler="unipc")
        assert result.metadata["resolved"]["overrides"] == {"sampler": "replacer"}
        plain = polydiff.generate("points2d", n=2, steps=2, seed=0, sampler="ddim")
        assert "overrides" not in plain.metadata["resolved"]
        assert "replacer" not in forget_failures
    assert components().samplers.origin["unipc"] == "polydiff.builtin.samplers"


def test_override_must_be_a_bool(forget_failures):
    with polydiff.register_plugin(SamplerPlugin("unipc", override="yes"), "sloppy"):
        assert components().samplers.origin["unipc"] == "polydiff.builtin.samplers"
        assert "override must be True or False" in forget_failures["sloppy"]


class StepFails:
    def __init__(self, exc):
        self.exc = exc

    @polydiff.hookimpl
    def on_step(self, step):
        raise self.exc


class GenerationFails:
    @polydiff.hookimpl
    def run_generation(self, request, context):
        raise ZeroDivisionError("division in the plugin")


class WrapperFailsAfter:
    @polydiff.hookimpl(wrapper=True)
    def run_generation(self, request, context):
        result = yield
        raise KeyError("wrapper lost the result")
        return result  # pragma: no cover


class WrapperPassesThrough:
    """A well-behaved wrapper: errors of the inner implementation pass through it untouched."""

    calls = 0

    @polydiff.hookimpl(wrapper=True)
    def run_generation(self, request, context):
        WrapperPassesThrough.calls += 1
        return (yield)


GENERATION_FAULTS = [
    (StepFails(RuntimeError("bad step")), "on_step", "RuntimeError: bad step"),
    (StepFails(SystemExit(4)), "on_step", "SystemExit: 4"),
    (GenerationFails(), "run_generation", "ZeroDivisionError: division in the plugin"),
    (WrapperFailsAfter(), "run_generation", "KeyError"),
]


@pytest.fixture(scope="module")
def runner():
    cli_module._add_plugin_commands()
    return CliRunner()


@pytest.mark.parametrize("plugin, hook, cause", GENERATION_FAULTS, ids=lambda v: getattr(v, "__name__", None))
def test_a_hook_failing_during_generation_is_one_line_and_exit_1(runner, tmp_path, plugin, hook, cause):
    with polydiff.register_plugin(plugin, "faulty"):
        result = runner.invoke(cli_module.cli, ["generate", "points2d", "-n", "2", "--steps", "2", "--seed", "0",
                                                "--quiet", "-o", str(tmp_path / "out")], prog_name="polydiff")
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: plugin 'faulty' failed in " + hook), result.output
    assert cause in lines[0] and "Traceback" not in result.output
    with pytest.raises(PluginError, match=f"plugin 'faulty' failed in {hook}"):
        with polydiff.register_plugin(plugin, "faulty"):
            polydiff.generate("points2d", n=1, steps=2, seed=0)


def test_a_wrapper_passes_inner_errors_through_unchanged(monkeypatch):
    import polydiff.builtin.generation as core_generation

    def core_bug(*args):
        raise RuntimeError("a bug inside core")

    with polydiff.register_plugin(WrapperPassesThrough(), "polite"):
        result = polydiff.generate("points2d", n=1, steps=2, seed=0)
        assert len(result.outputs) == 1 and WrapperPassesThrough.calls == 1
        with polydiff.register_plugin(GenerationFails(), "inner"):
            with pytest.raises(PluginError, match="plugin 'inner' failed in run_generation"):
                polydiff.generate("points2d", n=1, steps=2, seed=0)
        monkeypatch.setattr(core_generation, "check_budget", core_bug)
        with pytest.raises(RuntimeError, match="a bug inside core"):  # not blamed on the wrapper
            polydiff.generate("points2d", n=1, steps=2, seed=0)
