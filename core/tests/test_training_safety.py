"""Training that loses nothing and reproduces itself: the same `polydiff train` command gives the
same checkpoint bytes, SIGTERM/SIGINT save the state and a rerun resumes onto the uninterrupted
run's bytes, a resume of another run is refused, and every bad option is one line before work."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import polydiff
import pytest
import torch
from click.testing import CliRunner
from polydiff import InvalidInputError, load_checkpoint
from polydiff import cli as cli_module
from polydiff.registries import components

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _training_helpers import make_trainer, mixture  # noqa: E402

SCRIPT = Path(sys.executable).with_name("polydiff")
MLP = ["points2d", "--backend", "points2d-mlp"]
pytestmark = pytest.mark.usefixtures("polydiff_single_thread")


@pytest.fixture(scope="module")
def runner():
    cli_module._add_plugin_commands()
    if "points2d-mlp" not in components().backends:  # pragma: no cover - the example plugin ships it
        pytest.skip("the example plugin is not installed")
    return CliRunner()


def run(runner, *args):
    return runner.invoke(cli_module.cli, [str(a) for a in args], prog_name="polydiff")


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


# -- the same command, the same bytes ------------------------------------------------------------


def test_the_same_command_gives_the_same_checkpoint_bytes(runner, tmp_path):
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        result = run(runner, "train", *MLP, "--steps", 3, "--batch-size", 16, "--seed", seed,
                     "-o", tmp_path / name, "--quiet")
        assert result.exit_code == 0, result.output
    a, b, c = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert set(a) == {"model.safetensors", "model.json", "train_state.safetensors", "train_state.json"}
    assert a == b  # weights, optimizer state, JSON: byte for byte
    assert a["model.safetensors"] != c["model.safetensors"]  # the seed reaches the weights


def test_seeded_init_fixes_the_initial_weights_and_restores_the_rng():
    from polydiff.training import seeded_init

    state = torch.get_rng_state()
    with seeded_init(5):
        first = torch.nn.Linear(4, 4).weight.clone()
    with seeded_init(5):
        second = torch.nn.Linear(4, 4).weight.clone()
    with seeded_init(6):
        other = torch.nn.Linear(4, 4).weight.clone()
    assert torch.equal(first, second) and not torch.equal(first, other)
    assert torch.equal(torch.get_rng_state(), state)


# -- a signal saves the state; the rerun resumes onto the uninterrupted run ----------------------


def _cmd(out, *extra):
    base = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "polydiff"]
    return [*base, "train", *MLP, "--steps", "600", "--batch-size", "32", "-o", str(out), *extra]


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("POLYDIFF_PLUGINS", "POLYDIFF_STRICT_PLUGINS")}
    return {**env, "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_and_a_rerun_equals_the_uninterrupted_run(tmp_path, sig):
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(killed), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = bytearray()

    def read():
        while chunk := proc.stderr.read1(4096):
            seen.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not [int(n) for n in re.findall(rb"\| *(\d+)/600", bytes(seen)) if int(n) >= 20]:
            assert proc.poll() is None, bytes(seen)[-2000:]
            assert time.monotonic() < deadline, "no progress within 120 s"
            time.sleep(0.01)
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    reader.join(timeout=10)
    assert proc.returncode == 1, bytes(seen)[-2000:]
    last = bytes(seen).decode().replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith(f"Error: training stopped by {sig.name} at step "), last
    assert str(killed / "train_state.safetensors") in last, last
    _, state = load_checkpoint(killed, name="train_state")
    assert 20 <= state["step"] < 600
    assert "Traceback" not in bytes(seen).decode()

    resumed = subprocess.run(_cmd(killed, "--quiet"), env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    whole = subprocess.run(_cmd(tmp_path / "whole", "--quiet"), env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert whole.returncode == 0, whole.stderr[-2000:]
    assert files(killed) == files(tmp_path / "whole")


# -- checkpoints by the clock; resumes of another run refused ------------------------------------


def test_a_time_interval_saves_without_a_step_interval(tmp_path):
    trainer = make_trainer(tmp_path, steps=50, checkpoint_every=None, checkpoint_minutes=1e-9)
    calls = iter(range(6))

    def data_then_die(n, g):
        next(calls)  # StopIteration at the 7th batch: only the clock can have saved by then
        return mixture(n, g)

    trainer.data = data_then_die
    with pytest.raises(StopIteration):
        trainer.fit()
    _, state = load_checkpoint(tmp_path, name="train_state")
    assert state["step"] == 6


@pytest.mark.parametrize("field, value", [("batch_size", 32), ("seed", 8), ("backend", "other")])
def test_resume_refuses_another_run(tmp_path, field, value):
    make_trainer(tmp_path, steps=2, checkpoint_every=None, backend="tiny").fit()
    before = files(tmp_path)
    with pytest.raises(InvalidInputError) as info:
        make_trainer(tmp_path, steps=4, checkpoint_every=None, **{"backend": "tiny", field: value}).fit()
    message = str(info.value)
    assert message.startswith(f"{field}: ") and "\n" not in message and repr(value) in message
    assert files(tmp_path) == before
    make_trainer(tmp_path, steps=4, checkpoint_every=None, backend="tiny").fit()  # the same run resumes


def test_resume_with_another_batch_size_from_the_cli(runner, tmp_path):
    assert run(runner, "train", *MLP, "--steps", 2, "--batch-size", 8, "-o", tmp_path, "--quiet").exit_code == 0
    line = one_line_error(run(runner, "train", *MLP, "--steps", 4, "--batch-size", 9, "-o", tmp_path, "--quiet"))
    assert line.startswith("Error: batch_size: ") and "batch_size=8" in line


# -- the out folder and every option, checked before any work ------------------------------------


@pytest.fixture
def recipe(monkeypatch):
    """The points2d-mlp recipe replaced by a recorder: what the CLI would hand it."""
    calls = []
    spec = components().backends.get_named("points2d-mlp")
    monkeypatch.setattr(spec, "train", lambda **kw: calls.append(kw) or Path(kw["out"]) / "model.safetensors")
    monkeypatch.setattr(polydiff, "Trainer", lambda *a, **k: calls.append("Trainer"))
    return calls


def test_the_default_out_folder_is_the_users(runner, tmp_path, monkeypatch, recipe):
    monkeypatch.chdir(tmp_path)
    assert run(runner, "train", *MLP, "--steps", 5).exit_code == 0
    assert recipe[0]["out"] == "out/train/points2d-mlp" and recipe[0]["steps"] == 5
    assert recipe[0]["backend"] == "points2d-mlp"
    assert (tmp_path / "out" / "train" / "points2d-mlp").is_dir()  # proved writable before step 1
    assert run(runner, "train", *MLP, "-o", tmp_path / "mine").exit_code == 0
    assert recipe[1]["out"] == str(tmp_path / "mine")


@pytest.mark.parametrize("args, needle", [
    (["--steps", "0"], "steps: Input should be greater than 0"),
    (["--steps", "-1"], "steps: Input should be greater than 0"),
    (["--steps", "1e30"], "steps: Input should be a valid integer"),
    (["--steps", "1000000000"], "steps: Input should be less than or equal to 100000000"),
    (["--batch-size", "0"], "batch_size: Input should be greater than 0"),
    (["--batch-size", "1000000000"], "batch_size: Input should be less than or equal to 65536"),
    (["--seed", "-1"], "seed: Input should be greater than or equal to 0"),
    (["--seed", "x"], "seed: Input should be a valid integer"),
    (["--checkpoint-minutes", "0"], "checkpoint_minutes: Input should be greater than 0"),
    (["--checkpoint-minutes", "nan"], "checkpoint_minutes: not a number"),
    (["-o", ""], "out: name a checkpoint folder"),
    (["-o", "/proc/polydiff-no-such"], "out: cannot write checkpoints to /proc/polydiff-no-such"),
    (["--backend", "shapes-unet"], "backend 'shapes-unet' is for 'image', not 'points2d'"),
])
def test_bad_train_options_are_one_line_before_any_work(runner, tmp_path, recipe, args, needle):
    if "--backend" in args:
        result = run(runner, "train", "points2d", *args, "-o", tmp_path / "x")
    else:
        result = run(runner, "train", *MLP, *(args if "-o" in args else [*args, "-o", tmp_path / "x"]))
    assert needle in one_line_error(result)
    assert recipe == [] and not (tmp_path / "x").exists()


def _blocker(tmp_path) -> Path:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    return blocker


def test_an_out_path_that_is_a_file_is_refused_before_step_one(runner, tmp_path, recipe):
    blocker = _blocker(tmp_path)
    line = one_line_error(run(runner, "train", *MLP, "-o", blocker / "sub"))
    assert "out: cannot write checkpoints to" in line and recipe == []
    assert blocker.read_text() == "not a folder"


def test_the_trainer_checks_its_out_folder_before_step_one(tmp_path):
    blocker = _blocker(tmp_path)
    trainer = make_trainer(blocker, steps=2)
    trainer.data = lambda n, g: pytest.fail("a step ran before the out folder was checked")
    with pytest.raises(InvalidInputError, match="^out: cannot write checkpoints to"):
        trainer.fit()
    assert blocker.read_text() == "not a folder"
