"""Modality checks: the declaration is consistent, every task runs from its example
arguments (``Task.example``), its options are declared and enforced, and ``result.save``
writes files that the modality's own ``read`` turns back into the outputs."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..contract import Modality, Task
from ..errors import InvalidInputError, PolydiffError
from .errors import CheckSkipped, ConformanceError, fail
from .support import as_array, components, describe, need_device

UNKNOWN_OPTION = "not_an_option"  # what check_task_options passes; no task may accept it


def as_modality(modality) -> Modality:
    mod = components().modalities.get_named(modality) if isinstance(modality, str) else modality
    if not isinstance(mod, Modality):
        fail(f"modality {modality!r} is not a Modality")
    return mod


def as_task(mod: Modality, task) -> Task:
    if isinstance(task, Task):
        return task
    if task not in mod.task_names:
        fail(f"modality {mod.name!r} has no task {task!r} (tasks: {', '.join(mod.task_names)})")
    return mod.task(task)


def example_arguments(mod: Modality, task) -> dict:
    """The task's example ``generate()`` arguments; ``generate`` runs without any, another task
    without an example is skipped."""
    t = as_task(mod, task)
    kwargs = t.example_arguments()
    if kwargs is None:
        if t.name == "generate":
            return {}
        raise CheckSkipped(f"modality {mod.name!r}: task {t.name!r} declares no example inputs "
                           "(set Task(example=...))")
    if not isinstance(kwargs, dict):
        fail(f"modality {mod.name!r}: task {t.name!r}'s example must be a dict of generate() "
             f"arguments, got {type(kwargs).__name__}")
    return dict(kwargs)


def check_modality_spec(modality) -> str:
    """A ``generate`` task (the default); a registered default backend for this modality;
    callable plans and writer; a ``read`` when formats are declared."""
    mod = as_modality(modality)
    c, name = components(), f"modality {mod.name!r}"
    if "generate" not in mod.task_names:
        fail(f"{name}: tasks must include 'generate' (the default task)")
    if mod.default_backend not in c.backends:
        fail(f"{name}: default backend {mod.default_backend!r} is not registered")
    if c.backends[mod.default_backend].modality != mod.name:
        fail(f"{name}: default backend {mod.default_backend!r} is for "
             f"{c.backends[mod.default_backend].modality!r}")
    for t in mod.tasks:
        if not callable(t.plan):
            fail(f"{name}: task {t.name!r}'s plan must be callable")
    if not callable(mod.write):
        fail(f"{name}: write must be callable")
    if mod.formats and not callable(mod.read):
        fail(f"{name}: declares formats {', '.join(mod.formats)} but no read(files), the inverse of write")
    return f"tasks {', '.join(mod.task_names)}; default backend {mod.default_backend}"


def check_task_options(modality, task: str = "generate") -> str:
    """The task's schema (``task.schema()``, its options included) is JSON, and core rejects an
    option the task does not declare, naming it (tried with the task's example arguments)."""
    from ..generation import generate

    mod = as_modality(modality)
    t = as_task(mod, task)
    where = f"modality {mod.name!r}, task {t.name!r}"
    try:
        json.dumps(t.schema())
    except (TypeError, ValueError) as exc:
        fail(f"{where}: task.schema() is not JSON: {exc}")
    names = t.option_names()
    if UNKNOWN_OPTION in names:
        fail(f"{where}: declares the option {UNKNOWN_OPTION!r}, which the kit uses as an unknown one")
    shown = f"options {', '.join(names)}" if names else "no options"
    try:
        example = example_arguments(mod, t)
    except CheckSkipped:
        return f"{shown}; schema is JSON; an unknown option was not tried (no example inputs)"
    options = {**(example.pop("options", None) or {}), UNKNOWN_OPTION: 1}
    kwargs = {**example, "task": t.name, "options": options, "n": 1, "steps": 1, "seed": 0, "device": "cpu"}
    try:
        generate(mod.name, **kwargs)
    except InvalidInputError as exc:
        if UNKNOWN_OPTION not in str(exc):
            fail(f"{where}: an unknown option was rejected without naming it: {exc}")
    else:
        fail(f"{where}: generate(options={{{UNKNOWN_OPTION!r}: 1}}) ran; core must reject an unknown option")
    return f"{shown}; schema is JSON; an unknown option is rejected by name"


def check_modality(modality, *, device: str = "cpu", n: int = 2, steps: int = 4) -> dict[str, str]:
    """The modality's declaration is consistent (``generate`` task, registered default backend)
    and every task it declares has enforced options (``check_task_options``) and runs
    (``check_task``); tasks without example inputs are skipped. Returns {task: what was checked,
    or why it was skipped}."""
    mod = as_modality(modality)
    check_modality_spec(mod)
    done, problems = {}, []
    for t in mod.tasks:
        try:
            check_task_options(mod, t)
            done[t.name] = check_task(mod, t, device=device, n=n, steps=steps)
        except CheckSkipped as exc:
            done[t.name] = f"skipped: {exc}"
        except ConformanceError as exc:
            problems.append(str(exc))
    if problems:
        fail("; ".join(problems))
    return done


def check_task(modality, task: str = "generate", *, device: str = "cpu", n: int = 2, steps: int = 4,
               seed: int = 0) -> str:
    """Run one task with its example arguments (``Task.example``; ``generate`` runs without
    one): ``n`` finite samples, the same again for the same seed, sample i independent of its
    batch (``generate``), and files that read back (``check_writer``)."""
    from ..generation import generate

    mod = as_modality(modality)
    t = as_task(mod, task)
    need_device(device)
    example = example_arguments(mod, t)
    kwargs = {"n": n, "steps": steps, "seed": seed, "device": device, **example, "task": t.name}
    where = f"modality {mod.name!r}, task {t.name!r} on {device}"
    try:
        result = generate(mod.name, **kwargs)
    except PolydiffError as exc:
        fail(f"{where}: generate({_kwargs(kwargs)}) failed: {exc}")
    count = kwargs["n"]
    samples = result.samples
    if len(result) != count:
        fail(f"{where}: {len(result)} outputs for n={count}")
    if not torch.is_tensor(samples) or samples.shape[0] != count or not torch.isfinite(samples).all():
        fail(f"{where}: samples must be a finite tensor of {count} rows, got {describe(samples)}")
    again = generate(mod.name, **kwargs).samples
    same = torch.equal(again.cpu(), samples.cpu()) if device == "cpu" else torch.allclose(
        again.cpu(), samples.cpu(), atol=1e-5)
    if not same:
        fail(f"{where}: the same request and seed gave different samples")
    if t.name == "generate" and count >= 2 and "n" not in example and "seed" not in example:
        solo = generate(mod.name, **{**kwargs, "n": 1, "seed": seed + 1}).samples
        diff = float((solo[0].cpu().double() - samples[1].cpu().double()).abs().max())
        scale = max(1.0, float(samples.abs().max()))
        if diff > 1e-3 * scale:
            fail(f"{where}: sample 1 of a batch seeded {seed} differs from the same sample generated "
                 f"alone with seed {seed + 1} (by up to {diff:.3g}); sample i must use seed + i")
    with tempfile.TemporaryDirectory(prefix="polydiff-kit-") as folder:
        files = check_writer(mod, result, folder)
    return f"n={count}, {steps} steps: reproducible; wrote {', '.join(files)}; files read back"


def _kwargs(kwargs: dict) -> str:
    shown = []
    for k, v in kwargs.items():
        text = repr(v)
        shown.append(f"{k}={text if len(text) <= 40 else text[:37] + '...'}")
    return ", ".join(shown)


def check_writer(modality, result, folder) -> list[str]:
    """``result.save(folder)`` writes existing files plus ``metadata.json`` (with the request,
    what was resolved and the plugins), at least one file per declared format, and the
    modality's ``read`` turns the files back into the outputs within ``modality.tolerance``
    (relative to the largest output value, when above 1). Returns the written file names."""
    mod = as_modality(modality)
    where = f"modality {mod.name!r} writer"
    paths = [Path(p) for p in result.save(folder)]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        fail(f"{where}: returned paths that do not exist: {', '.join(missing)}")
    meta = [p for p in paths if p.name == "metadata.json"]
    if not meta:
        fail(f"{where}: no metadata.json was saved")
    metadata = json.loads(meta[0].read_text())
    for key in ("request", "resolved", "plugins"):
        if key not in metadata:
            fail(f"{where}: metadata.json lacks {key!r}")
    data_files = [p for p in paths if p.name != "metadata.json"]
    if not data_files:
        fail(f"{where}: write() returned no files")
    suffixes = {p.suffix.lstrip(".").lower() for p in data_files}
    names = [p.name.lower() for p in data_files]
    for fmt in mod.formats:
        if not any(name.endswith("." + fmt.lower().lstrip(".")) for name in names):  # "nii.gz" too
            fail(f"{where}: declares format {fmt!r} but wrote only {', '.join(sorted(suffixes))}")
    names = sorted(p.name for p in data_files)
    if mod.read is None:
        return names
    try:
        back = list(mod.read(data_files))
    except Exception as exc:  # a file that does not parse: say which error, not a crash
        fail(f"{where}: read() of {', '.join(names)} raised {type(exc).__name__}: {exc}")
    if len(back) != len(result.outputs):
        fail(f"{where}: read() returned {len(back)} outputs, {len(result.outputs)} were written")
    for i, (got, want) in enumerate(zip(back, result.outputs)):
        _compare(f"{where}: output {i}", got, want, mod.tolerance)
    return names


def _compare(where, got, want, tol):
    try:
        a, b = as_array(got).astype(np.float64), as_array(want).astype(np.float64)
    except (TypeError, ValueError):
        if got != want:
            fail(f"{where} reads back as {got!r}, written {want!r}")
        return
    if a.shape != b.shape:
        fail(f"{where} reads back with shape {a.shape}, written {b.shape}")
    err = float(np.abs(a - b).max()) if a.size else 0.0
    if not err <= tol * max(1.0, float(np.abs(b).max()) if b.size else 1.0):
        fail(f"{where} reads back off by {err:.3g} (tolerance {tol:g})")
