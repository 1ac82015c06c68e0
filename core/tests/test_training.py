"""Trainer and checkpoints: losses for every prediction, safetensors + JSON round trips, atomic
saves, exact resume (also after SIGKILL), and DDP with two CPU processes under torchrun."""
from __future__ import annotations

import json
import math
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import polydiff
import pydantic
import pytest
import torch
from polydiff import InvalidInputError, NonFiniteError, TrainConfig, Trainer, load_checkpoint, save_checkpoint
from polydiff import checkpoint as ckpt
from polydiff.denoisers import target_for
from polydiff.loop import resolve
from safetensors import safe_open
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _training_helpers import CENTERS, TinyMLP, make_trainer, mixture  # noqa: E402


def _files(folder) -> set[str]:
    return {p.name for p in Path(folder).iterdir()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# tiny models: threads only add contention (and the subprocesses use one thread too)
pytestmark = pytest.mark.usefixtures("polydiff_single_thread")


@pytest.fixture
def no_pickle(monkeypatch):
    """Any use of pickle or torch.load fails the test."""
    def boom(*args, **kwargs):
        raise AssertionError("pickle must not be used")

    for mod, name in [(torch, "load"), (pickle, "load"), (pickle, "loads"), (pickle, "Unpickler")]:
        monkeypatch.setattr(mod, name, boom)


# -- (a) the loss goes down for every prediction type ------------------------------------------


def _fixed_batch(schedule_name, t_range):
    g = torch.Generator().manual_seed(123)
    x0, _ = mixture(4096, g)
    eps = torch.randn(x0.shape, generator=g)
    lo, hi = t_range
    t = lo + (hi - lo) * torch.rand(4096, generator=g)
    schedule = resolve("schedules", schedule_name)
    return x0, eps, t, schedule.alpha(t)[:, None], schedule.sigma(t)[:, None]


def _eval_loss(model, prediction, schedule_name, t_range) -> float:
    """MSE to the target on a fixed batch: independent of the trainer's own bookkeeping."""
    x0, eps, t, a, s = _fixed_batch(schedule_name, t_range)
    with torch.no_grad():
        out = model.eval()(a * x0 + s * eps, t, None)
    return torch.nn.functional.mse_loss(out, target_for(prediction, x0, eps, a, s)).item()


def _optimal_loss(prediction, schedule_name, t_range) -> float:
    """The same MSE for the exact posterior mean of the Gaussian mixture: the floor no model beats."""
    x0, eps, t, a, s = (v.double() for v in _fixed_batch(schedule_name, t_range))
    x_t, mu, std = a * x0 + s * eps, CENTERS.double(), 0.2
    var = a**2 * std**2 + s**2  # x_t | component k ~ N(alpha mu_k, var I)
    diff = x_t[:, None, :] - a[:, None] * mu[None]
    weights = torch.softmax(-(diff**2).sum(-1) / (2 * var), dim=1)
    x0_mean = (weights[..., None] * (mu[None] + (a * std**2 / var)[:, None] * diff)).sum(1)
    best = target_for(prediction, x0_mean, (x_t - a * x0_mean) / s, a, s)
    return torch.nn.functional.mse_loss(best, target_for(prediction, x0, eps, a, s)).item()


@pytest.mark.parametrize("prediction,schedule", [("eps", "vp-linear"), ("v", "vp-cosine"),
                                                 ("x0", "scaled-linear"), ("flow", "flow")])
def test_loss_decreases(tmp_path, prediction, schedule):
    torch.manual_seed(0)
    model = TinyMLP()
    config = TrainConfig(steps=200, batch_size=128, lr=5e-3, prediction=prediction, schedule=schedule,
                         log_every=25, checkpoint_every=None, out=tmp_path, progress=False, device="cpu")
    t_range = config.time_range()
    before = _eval_loss(model, prediction, schedule, t_range)
    path = Trainer(model, config, lambda n, g: (mixture(n, g)[0], None), model_config={"hidden": 64}).fit()
    assert path == tmp_path / "model.safetensors"
    tensors, info = load_checkpoint(tmp_path)
    trained = TinyMLP()
    trained.load_state_dict(tensors)  # the EMA weights, as generation would load them
    after = _eval_loss(trained, prediction, schedule, t_range)
    floor = _optimal_loss(prediction, schedule, t_range)
    assert floor < after < before
    assert after - floor < 0.4 * (before - floor), (before, after, floor)  # most of the gap closed
    assert info["prediction"] == prediction and info["schedule"] == schedule and info["step"] == 200
    assert info["model_config"] == {"hidden": 64} and info["train"]["steps"] == 200


def test_progress_bar_shows_loss_and_rate(tmp_path, capsys):
    make_trainer(tmp_path, steps=20, progress=True).fit()
    err = capsys.readouterr().err
    assert "loss=" in err and "it/s" in err


def test_non_finite_loss_is_reported(tmp_path):
    nan_data = lambda n, g: (torch.full((n, 2), float("nan")), None)  # noqa: E731
    config = TrainConfig(steps=5, log_every=5, out=tmp_path, progress=False, device="cpu")
    with pytest.raises(NonFiniteError, match="step 5"):
        Trainer(TinyMLP(), config, nan_data).fit()


# -- (b) checkpoints: safetensors + JSON, exact, no pickle --------------------------------------


def test_checkpoint_round_trip_is_exact(tmp_path, no_pickle):
    base = torch.randn(4, 6)
    tensors = {
        "w": torch.randn(3, 5), "half": torch.randn(7).half(), "bf": torch.randn(2, 2).bfloat16(),
        "ids": torch.arange(5), "mask": torch.tensor([True, False]), "scalar": torch.tensor(2.5),
        "strided": base.t(), "view": base[1:3],  # non-contiguous / shares storage with "strided"
    }
    config = {"model_config": {"hidden": [64, 128], "name": "x"}, "step": 3, "lr": 1e-3, "none": None}
    path = save_checkpoint(tmp_path, tensors, config)
    assert path == tmp_path / "model.safetensors"
    assert _files(tmp_path) == {"model.safetensors", "model.json"}

    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])  # safetensors: u64 header size, then a JSON header
    header = json.loads(raw[8:8 + n])
    assert header["w"]["dtype"] == "F32" and header["w"]["shape"] == [3, 5]
    assert not raw.startswith(b"PK") and not raw.startswith(b"\x80")  # neither torch.save nor pickle
    assert json.loads((tmp_path / "model.json").read_text())["model_config"] == config["model_config"]

    expected = {k: v.contiguous() for k, v in tensors.items()}
    assert _same(load_file(path), expected)  # plain safetensors can read it
    with safe_open(str(path), framework="pt") as f:
        assert json.loads(f.metadata()["polydiff_config"]) == config
    for where in (tmp_path, path, tmp_path / "model.json"):
        got, cfg = load_checkpoint(where)
        assert _same(got, expected) and cfg == config


def test_checkpoint_errors_name_the_path(tmp_path):
    with pytest.raises(InvalidInputError, match="model.json"):
        load_checkpoint(tmp_path)
    with pytest.raises(InvalidInputError, match="not plain JSON"):
        save_checkpoint(tmp_path, {"a": torch.ones(1)}, {"bad": object()})
    with pytest.raises(InvalidInputError, match="not plain JSON"):
        save_checkpoint(tmp_path, {"a": torch.ones(1)}, {"bad": float("nan")})
    with pytest.raises(InvalidInputError, match="named tensor"):
        save_checkpoint(tmp_path, {"a": [1, 2]}, {})
    assert _files(tmp_path) == set()

    path = save_checkpoint(tmp_path, {"a": torch.arange(1000.0)}, {"k": 1}, name="net")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # a flipped bit in the tensor data
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidInputError, match=r"corrupt checkpoint .*net\.safetensors"):
        load_checkpoint(tmp_path, name="net")
    path.write_bytes(bytes(data[:50]))  # truncated
    with pytest.raises(InvalidInputError, match=r"net\.safetensors"):
        load_checkpoint(tmp_path, name="net")
    (tmp_path / "net.json").write_text("{not json")
    with pytest.raises(InvalidInputError, match=r"net\.json"):
        load_checkpoint(tmp_path / "net.safetensors")


# -- (c) atomic saves ---------------------------------------------------------------------------


def test_failed_save_leaves_previous_checkpoint(tmp_path, monkeypatch):
    old = {"w": torch.randn(16, 16)}
    save_checkpoint(tmp_path, old, {"step": 1})
    new = {"w": torch.randn(16, 16)}

    def dies_mid_write(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x00" * 100)  # half a file, then the disk is full
        raise OSError("No space left on device")

    with monkeypatch.context() as m:
        m.setattr("safetensors.torch.save_file", dies_mid_write)
        with pytest.raises(OSError):
            save_checkpoint(tmp_path, new, {"step": 2})
    assert _files(tmp_path) == {"model.safetensors", "model.json"}
    got, cfg = load_checkpoint(tmp_path)
    assert _same(got, old) and cfg == {"step": 1}

    def json_dump_fails(*args, **kwargs):
        raise KeyboardInterrupt  # even an interrupt while writing the JSON leaves no trace

    with monkeypatch.context() as m:
        m.setattr(ckpt.json, "dump", json_dump_fails)
        with pytest.raises(KeyboardInterrupt):
            save_checkpoint(tmp_path, new, {"step": 2})
    assert _files(tmp_path) == {"model.safetensors", "model.json"}
    got, cfg = load_checkpoint(tmp_path)
    assert _same(got, old) and cfg == {"step": 1}

    (tmp_path / ".model.0123456789ab.tmp").write_bytes(b"left by a SIGKILL")
    save_checkpoint(tmp_path, new, {"step": 2})  # the next save sweeps it away
    assert _files(tmp_path) == {"model.safetensors", "model.json"}
    assert _same(load_checkpoint(tmp_path)[0], new)


def test_death_between_the_two_renames_stays_consistent(tmp_path, monkeypatch):
    """Tensors renamed, JSON not yet: the loader must not pair new tensors with the old config."""
    save_checkpoint(tmp_path, {"w": torch.zeros(3)}, {"step": 1})
    real_replace, calls = os.replace, []

    def second_rename_dies(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("killed")
        real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", second_rename_dies)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, {"w": torch.ones(3)}, {"step": 2})
    monkeypatch.undo()
    assert _files(tmp_path) == {"model.safetensors", "model.json"}
    got, cfg = load_checkpoint(tmp_path)
    assert torch.equal(got["w"], torch.ones(3)) and cfg == {"step": 2}


# -- (d) resume gives the same run --------------------------------------------------------------


def test_resume_matches_uninterrupted_run(tmp_path, no_pickle):
    whole = make_trainer(tmp_path / "whole", steps=40)
    rng = torch.get_rng_state()
    whole.fit()
    assert torch.equal(torch.get_rng_state(), rng)  # fit leaves the caller's RNG alone

    make_trainer(tmp_path / "split", steps=20).fit()
    second = make_trainer(tmp_path / "split", steps=40, init_seed=1)  # other init: must be overwritten
    second.fit()
    assert second.history == whole.history[2:]

    for name in ("model", "train_state"):
        a, ca = load_checkpoint(tmp_path / "whole", name=name)
        b, cb = load_checkpoint(tmp_path / "split", name=name)
        assert _same(a, b), name
        assert ca["step"] == cb["step"] == 40
    state, info = load_checkpoint(tmp_path / "whole", name="train_state")
    assert {k.split(".")[0] for k in state} == {"model", "ema", "optim"}
    assert info["optimizer"]["param_groups"][0]["lr"] == 3e-3

    with pytest.raises(InvalidInputError, match="prediction"):
        make_trainer(tmp_path / "split", steps=60, prediction="v").fit()


def test_cosine_learning_rate_with_warmup_and_exact_resume(tmp_path):
    from polydiff.training import learning_rate

    c = TrainConfig(steps=100, lr=1e-3, lr_schedule="cosine", lr_final=1e-4, warmup=10)
    curve = [learning_rate(c, k) for k in range(100)]
    assert curve[0] == pytest.approx(1e-4)  # warm-up: a tenth of lr at the first step
    assert curve[9] == pytest.approx(1e-4 + 9e-4 * 0.5 * (1 + math.cos(math.pi * 0.09)))
    assert curve[50] == pytest.approx(1e-4 + 9e-4 * 0.5)  # half-way: the mean of lr and lr_final
    assert all(a >= b for a, b in zip(curve[9:], curve[10:]))  # decreasing after the warm-up
    assert curve[-1] > 1e-4 and learning_rate(c, 100) == pytest.approx(1e-4)
    assert learning_rate(TrainConfig(lr=2e-3), 500) == 2e-3  # constant by default

    # the curve depends on the step only, so a run stopped at 20 of 30 resumes onto it exactly
    cosine = dict(lr_schedule="cosine", lr_final=3e-4, warmup=5)
    whole = make_trainer(tmp_path / "whole", steps=30, **cosine)
    whole.fit()
    assert whole.optimizer.param_groups[0]["lr"] == pytest.approx(learning_rate(whole.config, 29))
    stopped = make_trainer(tmp_path / "split", steps=30, **cosine)
    calls = iter(range(21))

    def data_then_die(n, g):
        next(calls)  # StopIteration at the 21st batch: the run dies after its step-20 checkpoint
        return mixture(n, g)

    stopped.data = data_then_die
    with pytest.raises(StopIteration):
        stopped.fit()
    resumed = make_trainer(tmp_path / "split", steps=30, init_seed=1, **cosine)
    resumed.fit()
    assert resumed.history == whole.history[2:]
    assert _same(load_checkpoint(tmp_path / "whole")[0], load_checkpoint(tmp_path / "split")[0])
    with pytest.raises(pydantic.ValidationError, match="lr_final"):
        TrainConfig(lr_schedule="cosine", lr=1e-4, lr_final=1e-3)


# -- (e) SIGKILL, then resume -------------------------------------------------------------------

KILL_SCRIPT = """
import sys
sys.path.insert(0, {helpers!r})
from _training_helpers import make_trainer
make_trainer(sys.argv[1], steps=int(sys.argv[2]), delay=0.02).fit()
"""


def test_resume_after_sigkill(tmp_path):
    steps, out = 100, tmp_path / "killed"
    script = tmp_path / "train.py"
    script.write_text(KILL_SCRIPT.format(helpers=str(HERE)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(steps)], env=env)
    try:
        deadline = time.monotonic() + 120
        while not (out / "train_state.json").exists():
            assert proc.poll() is None, "the training process ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    _, info = load_checkpoint(out, name="train_state")
    assert 0 < info["step"] < steps

    resumed = make_trainer(out, steps=steps, init_seed=3)
    resumed.fit()
    assert not [p for p in out.iterdir() if p.suffix == ".tmp"]  # a kill mid-save is cleaned up
    make_trainer(tmp_path / "whole", steps=steps).fit()
    a, _ = load_checkpoint(out)
    b, _ = load_checkpoint(tmp_path / "whole")
    assert _same(a, b)


# -- (f) DDP under torchrun, two CPU processes --------------------------------------------------

DDP_SCRIPT = """
import json, os, sys
sys.path.insert(0, {helpers!r})
from safetensors.torch import save_file
from _training_helpers import make_trainer

out = sys.argv[1]
rank = int(os.environ["RANK"])
trainer = make_trainer(out, steps=20, init_seed=rank)  # different initial weights per rank
path = trainer.fit()
assert (trainer.rank, trainer.world_size) == (rank, 2)
save_file({{k: v.contiguous() for k, v in trainer.model.state_dict().items()}}, f"{{out}}/rank{{rank}}.safetensors")
save_file({{k: v.contiguous() for k, v in trainer.ema.items()}}, f"{{out}}/ema{{rank}}.safetensors")
with open(f"{{out}}/history{{rank}}.json", "w") as f:
    json.dump({{"history": trainer.history, "path": str(path)}}, f)
"""


def test_ddp_two_processes_on_cpu(tmp_path):
    out = tmp_path / "ddp"
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT.format(helpers=str(HERE)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(script), str(out)],
        env=env, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert {"model.safetensors", "model.json", "train_state.safetensors", "train_state.json"} <= _files(out)
    raw0, raw1 = load_file(out / "rank0.safetensors"), load_file(out / "rank1.safetensors")
    assert _same(raw0, raw1)  # gradients were averaged: the ranks stayed in step
    assert _same(load_file(out / "ema0.safetensors"), load_file(out / "ema1.safetensors"))
    state, info = load_checkpoint(out, name="train_state")
    assert info["world_size"] == 2 and info["step"] == 20
    assert _same({k[6:]: v for k, v in state.items() if k.startswith("model.")}, raw0)
    h0, h1 = (json.loads((out / f"history{r}.json").read_text()) for r in (0, 1))
    assert h0["history"] != h1["history"]  # each rank drew its own data
    assert h0["path"] == h1["path"] == str(out / "model.safetensors")


# -- (g) bad configuration ----------------------------------------------------------------------


@pytest.mark.parametrize("field,value", [
    ("steps", 0), ("batch_size", -1), ("lr", 0), ("ema_decay", 1.5), ("cond_dropout", -0.1),
    ("grad_clip", 0), ("prediction", "noise"), ("schedule", "vp-linaer"), ("betas", (0.9, 1.0)),
    ("device", "gpu"), ("log_every", 0), ("lr_decay", 0.5),
])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(pydantic.ValidationError) as info:
        TrainConfig(**{field: value})
    assert field in str(info.value)


def test_bad_config_messages():
    with pytest.raises(pydantic.ValidationError, match="did you mean 'vp-linear'"):
        TrainConfig(schedule="vp-linaer")
    with pytest.raises(pydantic.ValidationError, match="t_min"):
        TrainConfig(t_min=0.5, t_max=0.2)
    with pytest.raises(pydantic.ValidationError, match="Extra inputs"):
        TrainConfig(lr_decay=0.5)
    assert TrainConfig(schedule="edm").time_range() == (pytest.approx(0.002 / 80), 1.0)


def test_bad_trainer_inputs(tmp_path):
    config = TrainConfig(steps=2, out=tmp_path, progress=False, device="cpu")
    with pytest.raises(InvalidInputError, match="model_config"):
        Trainer(TinyMLP(), config, mixture, model_config={"f": lambda: 0})
    with pytest.raises(InvalidInputError, match="null_cond"):
        Trainer(TinyMLP(), config, mixture, null_cond=lambda n: torch.zeros(n, 3, dtype=torch.long)).fit()
    with pytest.raises(pydantic.ValidationError, match="steps"):
        Trainer(TinyMLP(), {"steps": -1}, mixture)
    assert polydiff.Trainer is Trainer and polydiff.save_checkpoint is save_checkpoint


def test_load_trained_gives_a_ready_model(tmp_path):
    path = make_trainer(tmp_path, steps=3, checkpoint_every=None).fit()
    loaded = polydiff.load_trained(path.parent, lambda hidden, kind: TinyMLP(hidden), "cpu")
    tensors, config = load_checkpoint(tmp_path)
    assert not loaded.net.training and not any(p.requires_grad for p in loaded.net.parameters())
    assert all(torch.equal(loaded.net.state_dict()[k], v) for k, v in tensors.items())
    assert loaded.schedule.name == config["schedule"] and loaded.prediction == config["prediction"]
    with pytest.raises(InvalidInputError, match="no checkpoint"):
        polydiff.load_trained(tmp_path / "missing", TinyMLP, "cpu")


def test_captioned_data_encodes_once_and_gathers_rows():
    calls = []

    def encode(captions):
        calls.append(list(captions))
        return {"emb": torch.tensor([[float(len(c))] for c in captions])}

    def draw(n, seed):
        g = torch.Generator().manual_seed(seed)
        picks = torch.randint(0, 3, (n,), generator=g).tolist()
        return torch.tensor(picks, dtype=torch.float32), [["a", "bb", "ccc"][i] for i in picks]

    source = polydiff.CaptionedData(draw, ["a", "bb", "ccc"], encode)
    x0, cond = source(16, torch.Generator().manual_seed(0))
    assert torch.equal(cond["emb"][:, 0], x0 + 1)          # row i encodes the caption drawn for x0[i]
    again, _ = source(16, torch.Generator().manual_seed(0))
    assert torch.equal(again, x0)                          # the trainer's generator fixes the batch
    assert calls == [["a", "bb", "ccc"], [""]]             # encoded once, plus the null prompt
    assert source.null_cond(4)["emb"].tolist() == [[0.0]] * 4
    with pytest.raises(KeyError, match="'dddd' is not among"):
        polydiff.CaptionedData(lambda n, s: (torch.zeros(1), ["dddd"]), ["a"], encode)(1, torch.Generator())
