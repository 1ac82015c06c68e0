"""Backend checks: the backend loads where it says it runs, and its network accepts what its
modality's ``generate`` task plans, condition and null condition alike."""
from __future__ import annotations

from pathlib import Path

import torch

from ..contract import Backend, LoadedModel
from .errors import CheckSkipped, fail
from .modalities import example_arguments
from .support import components, describe, need_device


def check_backend(backend, device: str = "cpu", *, n: int = 2, model: str | None = None) -> str:
    """The backend loads on ``device`` into a ``LoadedModel`` with a schedule and its declared
    prediction type, and its network returns finite values of the declared shape (the shape the
    ``generate`` task of its modality plans, from that task's example) on that device, for the
    condition and the null condition. A backend that runs users' models (``models=True``) is
    checked on the folder ``model`` (its prediction is the folder's), and skipped without one."""
    from ..generation import Context
    from ..request import GenerateRequest
    from ..schedules import NoiseSchedule

    c = components()
    spec = c.backends.get_named(backend) if isinstance(backend, str) else backend
    if not isinstance(spec, Backend):
        fail(f"backend {backend!r} is not a Backend")
    name = f"backend {spec.name!r} on {device}"
    if device.split(":")[0] not in spec.devices:
        raise CheckSkipped(f"backend {spec.name!r} declares devices {', '.join(spec.devices)} only")
    need_device(device)
    if spec.modality not in c.modalities:
        fail(f"{name}: it is for modality {spec.modality!r}, which no loaded plugin registers")
    if spec.checkpoint and not Path(spec.checkpoint).is_file():
        fail(f"{name}: checkpoint file {spec.checkpoint!r} does not exist")
    if spec.models and model is None:
        raise CheckSkipped(f"backend {spec.name!r} runs users' models: check it with model=FOLDER")
    if spec.models:
        from ..user_models import resolve_model

        model = resolve_model(model)
    loaded = spec.load(device, model=model) if spec.models else spec.load(device)
    if not isinstance(loaded, LoadedModel):
        fail(f"{name}: load() must return a polydiff.LoadedModel, got {type(loaded).__name__}")
    if not isinstance(loaded.schedule, NoiseSchedule):
        fail(f"{name}: LoadedModel.schedule must be a NoiseSchedule, got {loaded.schedule!r}")
    if loaded.prediction != spec.prediction and not spec.models:
        fail(f"{name}: the loaded model predicts {loaded.prediction!r}, the backend declares {spec.prediction!r}")
    mod = c.modalities[spec.modality]
    fields = {k: v for k, v in example_arguments(mod, "generate").items() if k not in ("steps", "sampler", "seed")}
    fields.update(modality=mod.name, task="generate", backend=spec.name, device=device, n=n,
                  **({"model": model} if spec.models else {}))
    request = GenerateRequest.build(**fields)
    request.seed = 0
    context = Context(request)
    plan = context.task.plan(request, context)
    shape = (n, *plan.shape)
    g = torch.Generator().manual_seed(0)
    masked = getattr(loaded.schedule, "process", "gaussian") == "masked"
    if masked:   # tokens, half of them masked; the network returns logits over its vocabulary
        if not isinstance(loaded.mask_id, int):
            fail(f"{name}: a masked-process model needs LoadedModel.mask_id, got {loaded.mask_id!r}")
        x = torch.randint(0, loaded.mask_id + 1, shape, generator=g)
        x = torch.where(torch.rand(shape, generator=g) < 0.5, loaded.mask_id, x).to(device)
    else:
        x = torch.randn(shape, generator=g).to(device)
    t = torch.full((n,), 0.5, device=device)
    branches = [("condition", plan.cond)] + ([("null condition", plan.uncond)] if plan.uncond is not None else [])
    for what, cond in branches:
        with torch.inference_mode():
            out = loaded.net(x, t, cond)
        fits = torch.is_tensor(out) and (tuple(out.shape[:-1]) == shape and out.shape[-1] > loaded.mask_id
                                         if masked else tuple(out.shape) == shape)
        if not fits:
            expected = f"logits [*{shape}, vocabulary > mask id {loaded.mask_id}]" if masked else f"shape {shape}"
            fail(f"{name}: the network returned {describe(out)} for input of shape {shape}; expected {expected} ({what})")
        if out.device.type != x.device.type:
            fail(f"{name}: the network returned a tensor on {out.device} for input on {x.device}")
        if not torch.isfinite(out).all():
            fail(f"{name}: the network returned NaN or infinity ({what})")
    return f"loads; predicts {loaded.prediction} on {loaded.schedule.name}; returns {shape}"
