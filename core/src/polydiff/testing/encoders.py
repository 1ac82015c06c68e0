"""Encoder checks. A condition encoder gives exactly its declared keys, one finite row per
prompt, the same every time and whatever the batch (``Context.condition`` caches rows per
prompt, so a batch-dependent row would be wrong). A data encoder round-trips its examples."""
from __future__ import annotations

import numpy as np
import torch

from ..contract import Encoder
from .errors import CheckSkipped, fail
from .support import as_array, components, need_device

ROW_TOLERANCE = 1e-5  # a prompt encoded in a batch vs alone: float noise of batched matmuls only


def check_encoder(encoder, device: str = "cpu") -> str:
    """The encoder loads on ``device``. A condition encoder's ``encode(prompts)`` (its
    ``examples()`` and ``""``) returns a dict with exactly the declared ``outputs``, each a
    finite tensor with one row per prompt, equal when encoded twice, and each row equal to that
    prompt encoded alone; a data encoder's ``decode(encode(x))`` returns each example within
    its stated ``tolerance``."""
    spec = components().encoders.get_named(encoder) if isinstance(encoder, str) else encoder
    if not isinstance(spec, Encoder):
        fail(f"encoder {encoder!r} is not an Encoder")
    if spec.kind not in ("data", "condition"):
        fail(f"encoder {spec.name!r}: kind must be 'data' or 'condition', got {spec.kind!r}")
    if spec.kind == "condition" and not spec.outputs:
        fail(f"encoder {spec.name!r}: a condition encoder declares its keys, Encoder(outputs=(...))")
    need_device(device)
    obj = spec.load(device)
    if obj is None:
        fail(f"encoder {spec.name!r}: load({device!r}) returned None")
    examples = list(spec.examples()) if spec.examples is not None else None
    if spec.kind == "condition":
        return _check_condition(spec, obj, list(dict.fromkeys([*(examples or []), ""])), device)
    return _check_data(spec, obj, examples, device)


def _check_condition(spec: Encoder, obj, prompts: list[str], device: str) -> str:
    name = f"encoder {spec.name!r}"
    if not callable(getattr(obj, "encode", None)):
        fail(f"{name}: a condition encoder needs an `encode(prompts)` method")
    batch = _encoded(name, obj, prompts, set(spec.outputs))
    again = _encoded(name, obj, prompts, set(spec.outputs))
    for key, value in batch.items():
        if not torch.equal(value.cpu(), again[key].cpu()):
            fail(f"{name}: encoding {prompts!r} twice gave different {key!r}")
    for i, prompt in enumerate(prompts):
        alone = _encoded(name, obj, [prompt], set(spec.outputs))
        for key, value in batch.items():
            row, single = value[i].cpu(), alone[key][0].cpu()
            if row.shape != single.shape:
                fail(f"{name}: {key!r} of {prompt!r} has shape {tuple(row.shape)} in a batch of "
                     f"{len(prompts)}, {tuple(single.shape)} alone; rows must not depend on the batch")
            err = float((row.double() - single.double()).abs().max()) if row.numel() else 0.0
            if not err <= ROW_TOLERANCE:
                fail(f"{name}: {key!r} of {prompt!r} differs by {err:.3g} between a batch of "
                     f"{len(prompts)} and alone; rows must not depend on the batch")
    keys = ", ".join(sorted(spec.outputs))
    return f"{len(prompts)} prompts -> {keys} on {device}; deterministic, rows independent of the batch"


def _encoded(name: str, obj, prompts: list[str], keys: set[str]) -> dict:
    out = obj.encode(list(prompts))
    if not isinstance(out, dict):
        fail(f"{name}: encode() must return a dict of tensors, got a {type(out).__name__}")
    if set(out) != keys:
        missing, extra = sorted(keys - set(out)), sorted(set(out) - keys)
        said = [f"lacks declared key {', '.join(map(repr, missing))}"] if missing else []
        said += [f"returns undeclared key {', '.join(map(repr, extra))}"] if extra else []
        fail(f"{name}: encode() {' and '.join(said)} (declared outputs: {', '.join(sorted(keys))})")
    for key, value in out.items():
        if not torch.is_tensor(value) or value.dim() == 0 or value.shape[0] != len(prompts):
            shape = tuple(value.shape) if torch.is_tensor(value) else type(value).__name__
            fail(f"{name}: {key!r} must be a tensor with one row per prompt, got {shape} for "
                 f"{len(prompts)} prompts")
        if (value.is_floating_point() or value.is_complex()) and not torch.isfinite(value).all():
            fail(f"{name}: {key!r} has non-finite values for {prompts!r}")
    return out


def _check_data(spec: Encoder, obj, examples, device: str) -> str:
    name = f"encoder {spec.name!r}"
    for method in ("encode", "decode"):
        if not callable(getattr(obj, method, None)):
            fail(f"{name}: a data encoder needs an `{method}` method")
    if not examples:
        raise CheckSkipped(f"{name}: declare Encoder(examples=...) so the kit can check the round trip")
    worst = 0.0
    for i, x in enumerate(examples):
        z = obj.encode(x)
        if torch.is_tensor(z) and not torch.isfinite(z.float()).all():
            fail(f"{name}: encoding example {i} gave non-finite values")
        back, want = as_array(obj.decode(z)).astype(np.float64), as_array(x).astype(np.float64)
        if back.shape != want.shape:
            fail(f"{name}: example {i} of shape {want.shape} decodes to shape {back.shape}")
        err = float(np.abs(back - want).max()) if want.size else 0.0
        if not err <= spec.tolerance:
            fail(f"{name}: example {i} round-trips with error {err:.3g}, over its tolerance {spec.tolerance:g}")
        worst = max(worst, err)
    return f"{len(examples)} examples round-trip on {device} (max error {worst:.2g} <= {spec.tolerance:g})"
