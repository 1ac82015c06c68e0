"""``generate``: one path from a request to a ``Result`` for every modality and task.

The modality turns the request into a ``Plan`` (sample shape, condition, editing constraints,
decoder); the core loads the backend, applies guidance, samples and records metadata.
"""
from __future__ import annotations

import functools
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import InvalidInputError
from .request import GenerateRequest

DEFAULT_STEPS = 20


@dataclass
class Plan:
    """What a modality decides for one request (see ``Modality.plan``)."""

    shape: tuple[int, ...]                 # one sample, in model space
    cond: Any = None
    uncond: Any = None                     # the null condition; enables classifier-free guidance
    constraints: list = field(default_factory=list)
    decode: Callable[[Any], list] | None = None   # model-space batch -> list of outputs
    guidance: float = 1.0                  # the modality's default guidance scale
    steps: int = DEFAULT_STEPS
    info: dict = field(default_factory=dict)      # extra metadata (e.g. evaluator hints)


class Context:
    """What ``run`` and a modality's ``plan`` share: resolved device and cached loaders."""

    def __init__(self, request: GenerateRequest, progress: bool = False):
        from .registries import components

        self.components = components()
        self.request = request
        self.progress = progress
        self.modality = self.components.modalities[request.modality]
        self.backend = self.components.backends[request.backend or self.modality.default_backend]
        self.device = resolve_device(request.device, self.backend.devices)

    def encoder(self, name: str):
        """A registered encoder, loaded once per process and device."""
        return _load_encoder(name, self.device)

    def model(self):
        return _load_backend(self.backend.name, self.device)


@functools.lru_cache(maxsize=16)
def _load_encoder(name, device):
    from .registries import components

    return components().encoders.get_named(name).load(device)


@functools.lru_cache(maxsize=8)
def _load_backend(name, device):
    from .registries import components

    return components().backends[name].load(device)


def resolve_device(device: str, supported=("cpu",)) -> str:
    import torch

    has_cuda = torch.cuda.is_available()
    if device == "auto":
        return "cuda" if has_cuda and "cuda" in supported else "cpu"
    if device.startswith("cuda"):
        if not has_cuda:
            raise InvalidInputError("device: CUDA was requested but no CUDA device is available")
        if "cuda" not in supported:
            raise InvalidInputError(f"device: this backend runs on {', '.join(supported)} only")
    return device


def generate(modality: str, prompt: str | None = None, *, progress: bool = False, **fields):
    """Generate (or edit) ``n`` samples of a modality; see ``GenerateRequest`` for the fields.

    Fields the request model does not know are modality options (``seconds=2``, ``frames=16``).
    """
    from .plugins import load_plugins

    request = GenerateRequest.build(modality=modality, prompt=prompt, **fields)
    if request.seed is None:
        request.seed = random.SystemRandom().randrange(2**31)
    return load_plugins().hook.run_generation(request=request, context=Context(request, progress))


def run(request: GenerateRequest, context: Context):
    """Core's implementation of the ``run_generation`` hook."""
    from .denoisers import as_denoiser, guided
    from .result import Result, describe_request
    from .loop import DEFAULT_SAMPLER, DEFAULT_SPACING, sample

    modality, backend = context.modality, context.backend
    plan: Plan = modality.plan(request, context)
    elements = request.n * math.prod(plan.shape)
    if elements > modality.max_elements:
        raise InvalidInputError(
            f"n x size: {request.n} samples of shape {tuple(plan.shape)} need {elements:,} values, "
            f"over this modality's budget of {modality.max_elements:,}; lower n or the size"
        )
    loaded = context.model()
    denoiser = as_denoiser(loaded.net, loaded.schedule, loaded.prediction)
    scale = plan.guidance if request.guidance is None else request.guidance
    denoiser = guided(denoiser, plan.cond, plan.uncond, scale)
    sampler = request.sampler or DEFAULT_SAMPLER
    spacing = request.spacing or DEFAULT_SPACING
    steps = request.steps or plan.steps
    started = time.perf_counter()
    x = sample(
        denoiser, (request.n, *plan.shape), sampler=sampler, steps=steps, schedule=loaded.schedule,
        spacing=spacing, seed=request.seed, constraints=plan.constraints, device=context.device,
        progress=context.progress,
    )
    seconds = time.perf_counter() - started
    outputs = plan.decode(x) if plan.decode else list(x.cpu())
    metadata = {
        "request": describe_request(request),
        "resolved": {"sampler": sampler, "spacing": spacing, "steps": steps, "guidance": scale,
                     "schedule": loaded.schedule.name, "backend": backend.name,
                     "prediction": loaded.prediction, "device": context.device},
        "checkpoint_sha256": _checkpoint_hash(backend.checkpoint),
        "plugins": _versions(),
        "sampling_seconds": round(seconds, 4),
        **({"info": plan.info} if plan.info else {}),
    }
    return Result(modality=request.modality, outputs=outputs, samples=x, metadata=metadata,
                  writer=modality.write, request=request)


def _checkpoint_hash(path):
    if not path:
        return None
    import os

    stat = os.stat(path)
    return _hash_file(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _hash_file(path, mtime_ns, size):  # keyed on mtime and size: a retrained file is rehashed
    from .checkpoint import sha256_file

    return sha256_file(path)


def _versions() -> dict:
    from . import __version__
    from .plugins import versions

    return {"polydiff": __version__, **versions}
