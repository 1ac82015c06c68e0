"""Every mistake on the command line is one line naming the field or cause: exit code 1, no
traceback, nothing written, and no work started (no model, encoder or data built).

Most cases use click's CliRunner in this process; two run the real `polydiff` in a subprocess.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polydiff
import pytest
from click.testing import CliRunner
from polydiff import cli as cli_module
from polydiff.errors import InvalidInputError
from polydiff.registries import components
from polydiff.request import describe
from polydiff.training import TrainConfig

SCRIPT = Path(sys.executable).with_name("polydiff")


@pytest.fixture(scope="module")
def runner():
    cli_module._add_plugin_commands()
    return CliRunner()


def needs(*modalities):
    known = set(components().modalities)
    missing = [m for m in modalities if m not in known]
    if missing:  # pragma: no cover - the built-in plugins provide them
        pytest.skip(f"modality {missing[0]!r} is not installed")


@pytest.fixture
def spies(monkeypatch):
    """Fail loudly if a command starts real work: loading an encoder or building a Trainer."""
    calls = []

    def spy(what):
        def record(*args, **kwargs):
            calls.append(what)
            raise AssertionError(f"{what} was called before the input was validated")
        return record

    monkeypatch.setattr(polydiff, "load_encoder", spy("load_encoder"))
    monkeypatch.setattr(polydiff, "Trainer", spy("Trainer"))
    monkeypatch.setattr("polydiff.training.Trainer", spy("Trainer"))
    for spec in components().backends.values():  # the recipes themselves: checked before them
        if spec.train is not None:
            monkeypatch.setattr(spec, "train", spy(f"{spec.name}.train"))
    return calls


def assert_one_line_error(result, *needles):
    """Exit code 1, nothing on stdout, one line `Error: ...` on stderr holding every needle."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def run(runner, *args):
    return runner.invoke(cli_module.cli, [str(a) for a in args], prog_name="polydiff")


# --------------------------------------------------------------------------- generate


@pytest.mark.parametrize("modality, args, needles", [
    ("image", ["--steps", "0"], ["steps: Input should be greater than or equal to 1"]),
    ("image", ["-n", "0"], ["n: Input should be greater than or equal to 1"]),
    ("image", ["--sampler", "nosuch"], ["unknown sampler 'nosuch'"]),
    ("image", ["--spacing", "nosuch"], ["unknown spacing 'nosuch'"]),
    ("image", ["--guidance", "-1"], ["guidance: Input should be greater than or equal to 0"]),
    ("image", ["--device", "gpu"], ["device: must be 'auto', 'cpu', 'cuda' or 'cuda:N'"]),
    ("image", ["--task", "nosuch"], ["task 'nosuch' is not one of image's tasks"]),
    ("image", ["--task", "inpaint"], ["init: the inpaint task needs --init"]),
    ("image", ["--backend", "notes-unet"], ["backend 'notes-unet' is for 'audio', not 'image'"]),
    ("image", ["--seconds", "2"], ["seconds: not an option of image's generate task"]),
    ("image", ["--sampler", "ddim", "--sampler-option", "blok=1"], ["blok: not an option of the sampler 'ddim'"]),
    ("image", ["--sampler-option", "eta=1"], ["sampler_options: name the sampler they are for"]),
    ("audio", ["--seconds", "-1"], ["seconds: Input should be greater than or equal to"]),
    ("nosuch", [], ["unknown modality 'nosuch'"]),
])
def test_generate_errors(runner, tmp_path, spies, modality, args, needles):
    if modality != "nosuch":
        needs(modality, "audio")
    out = tmp_path / "out"
    result = run(runner, "generate", modality, "a red circle", *args, "-o", out, "--quiet")
    assert_one_line_error(result, *needles)
    assert not out.exists() and spies == []


@pytest.mark.parametrize("value, needle", [("eta", "'eta' is not NAME=VALUE"), ("eta=half", "eta: 'half' is not a number")])
def test_a_malformed_sampler_option_is_a_usage_error(runner, tmp_path, spies, value, needle):
    out = tmp_path / "out"
    result = run(runner, "generate", "points2d", "north", "--sampler", "ddim", "--sampler-option", value, "-o", out)
    assert result.exit_code == 2 and needle in result.stderr and "Traceback" not in result.output, result.output
    assert not out.exists() and spies == []


def test_sampler_options_from_the_command_line_are_typed_and_recorded(runner, tmp_path):
    import json

    out = tmp_path / "out"
    result = run(runner, "generate", "points2d", "north", "-n", "8", "--seed", "1", "--sampler", "ddim",
                 "--sampler-option", "eta=1", "-o", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "metadata.json").read_text())["request"]["sampler_options"] == {"eta": 1}


# --------------------------------------------------------------------------- train and eval


@pytest.mark.parametrize("args, needles", [
    (["image", "--steps", "-5"], ["steps: Input should be greater than 0"]),
    (["image", "--steps", "0"], ["steps: Input should be greater than 0"]),
    (["image", "--batch-size", "0"], ["batch_size: Input should be greater than 0"]),
    (["audio", "--batch-size", "-3", "--steps", "0"],
     ["steps: Input should be greater than 0", "batch_size: Input should be greater than 0"]),
    (["nosuch"], ["unknown modality 'nosuch'"]),
    (["image", "--backend", "nosuch"], ["unknown backend 'nosuch'"]),
    (["image", "--backend", "notes-unet"], ["backend 'notes-unet' is for 'audio', not 'image'"]),
    (["points2d", "--backend", "points2d-exact"], ["backend 'points2d-exact' has no training recipe"]),
])
def test_train_errors_before_any_work(runner, tmp_path, spies, args, needles):
    needs("image", "audio", "points2d")
    out = tmp_path / "checkpoint"
    result = run(runner, "train", *args, "--out", out, "--quiet")
    assert_one_line_error(result, *needles)
    assert not out.exists(), "a checkpoint folder was written"
    assert spies == [], f"work started: {spies}"


def test_train_reports_a_plugins_own_validation_error_in_one_line(runner, tmp_path, monkeypatch):
    """A recipe that builds a bad TrainConfig itself (pydantic's error) is still one line."""
    needs("image")
    spec = components().backends.get_named("shapes-unet")
    monkeypatch.setattr(spec, "train", lambda **kw: polydiff.TrainConfig(lr=-1, steps=0))
    result = run(runner, "train", "image", "--out", tmp_path / "x", "--quiet")
    assert_one_line_error(result, "steps: Input should be greater than 0",
                          "lr: Input should be greater than 0")


@pytest.mark.parametrize("args, needles", [
    (["nosuch"], ["unknown modality 'nosuch'"]),
    (["points2d"], ["modality 'points2d' has no evaluator"]),
])
def test_eval_errors(runner, tmp_path, args, needles):
    needs("points2d")
    out = tmp_path / "report"
    assert_one_line_error(run(runner, "eval", *args, "-o", out), *needles)
    assert not out.exists()


@pytest.mark.parametrize("args, needles", [
    (["image", "--backend", "points2d-mlp"], ["backend: 'points2d-mlp' is a backend of 'points2d', not 'image'"]),
    (["image", "--backend", "nosuch"], ["nosuch"]),
    (["audio", "--backend", "notes-unet"], ["backend: the audio evaluator scores its default backend only"]),
])
def test_eval_backend_errors(runner, tmp_path, args, needles):
    needs("points2d", "image", "audio")
    out = tmp_path / "report"
    assert_one_line_error(run(runner, "eval", *args, "-o", out), *needles)
    assert not out.exists()


# --------------------------------------------------------------------------- listings and plugins


def test_tasks_of_an_unknown_modality(runner):
    assert_one_line_error(run(runner, "tasks", "nosuch"), "unknown modality 'nosuch'")


@pytest.mark.parametrize("args, needles", [
    (["install", "exampel", "--dry-run"], ["unknown plugin 'exampel'", "did you mean 'example'"]),
    (["install", "./no/such/folder", "--dry-run"], ["does not exist"]),
    (["uninstall", "exampel", "--dry-run"], ["unknown plugin 'exampel'", "did you mean 'example'"]),
    (["uninstall", "polydiff"], ["polydiff itself is not a plugin"]),
    (["new", "Bad Name"], ["name: 'Bad Name' is not a valid plugin name"]),
    (["new", "9lives"], ["name: '9lives' is not a valid plugin name"]),
    (["check", "nosuch"], ["plugin 'nosuch' is not loaded"]),
])
def test_plugins_errors(runner, tmp_path, monkeypatch, args, needles):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(run(runner, "plugins", *args), *needles)
    assert list(tmp_path.iterdir()) == [], "something was written"


def test_new_never_overwrites(runner, tmp_path):
    (tmp_path / "taken").mkdir()
    assert_one_line_error(run(runner, "plugins", "new", "taken", "-d", tmp_path), "already exists")
    assert list((tmp_path / "taken").iterdir()) == []


# --------------------------------------------------------------------------- the formatter


def test_train_config_build_is_one_invalid_input_line():
    with pytest.raises(InvalidInputError) as info:
        TrainConfig.build(steps=-5, batch_size=0)
    assert str(info.value) == ("steps: Input should be greater than 0; "
                               "batch_size: Input should be greater than 0")
    with pytest.raises(InvalidInputError, match=r"^stesp: unknown option; did you mean 'steps'\?$"):
        TrainConfig.build(stesp=10)
    with pytest.raises(InvalidInputError, match=r"^t_min \(0.5\) must be smaller than t_max"):
        TrainConfig.build(t_min=0.5, t_max=0.2)
    assert TrainConfig.build(steps=3).steps == 3


def test_describe_is_the_one_formatter():
    import pydantic

    class Model(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        size: int = pydantic.Field(1, gt=0)
        options: dict[str, int] = {}

    with pytest.raises(pydantic.ValidationError) as info:
        Model(size=0, colour="red", options={"k": "x"})
    assert describe(info.value) == ("size: Input should be greater than 0; k: Input should be a valid "
                                    "integer, unable to parse string as an integer; colour: unknown option")
    assert describe(info.value, hide=(), fields=["size", "color"], unknown="unknown field").endswith(
        "options.k: Input should be a valid integer, unable to parse string as an integer; "
        "colour: unknown field; did you mean 'color'?")


# --------------------------------------------------------------------------- the real command


def polydiff_cmd(*args, env=None):
    full_env = {k: v for k, v in os.environ.items() if k not in ("POLYDIFF_PLUGINS", "POLYDIFF_STRICT_PLUGINS")}
    full_env.update(env or {})
    if SCRIPT.exists():
        command = [str(SCRIPT), *args]
    else:  # pragma: no cover
        command = [sys.executable, "-c", "import sys; from polydiff.cli import main; sys.exit(main())", *args]
    return subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=120)


def test_real_command_train_with_bad_steps(tmp_path):
    needs("image")
    out = tmp_path / "checkpoint"
    proc = polydiff_cmd("train", "image", "--steps", "-5", "--out", str(out))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout == "" and proc.stderr == "Error: steps: Input should be greater than 0\n", proc.stderr
    assert not out.exists()


@pytest.mark.parametrize("command", ["samplers", "schedules", "modalities"])
def test_listings_with_a_broken_plugin_in_strict_mode(tmp_path, command):
    (tmp_path / "broken_mod.py").write_text('raise RuntimeError("boom at import")\n')
    info = tmp_path / "fake_broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[polydiff]\nbroken = broken_mod\n")
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])),
           "POLYDIFF_STRICT_PLUGINS": "1"}
    proc = polydiff_cmd(command, env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "'broken'" in lines[0] and "boom at import" in lines[0], proc.stderr
