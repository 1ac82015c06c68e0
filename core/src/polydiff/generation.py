"""``generate``: one path from a request to a ``Result`` for every modality and task.

The request is validated (``GenerateRequest``), then the ``run_generation`` hook produces the
``Result``: core's own implementation (``polydiff.builtin.generation``) asks the task's plan
for what to sample, loads the backend, applies guidance, samples and records metadata.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .result import Result

import functools
import random
from collections import OrderedDict
from typing import Any

from .contract import LoadedModel
from .errors import InvalidInputError
from .request import GenerateRequest, sampler_options

CONDITION_CACHE = 4096  # prompts whose encodings are kept per process (per encoder, device, options)


class Context:
    """What a task's ``plan(request, context)`` gets besides the request: the resolved device,
    the modality, task and backend, and loaders that cache across calls."""

    def __init__(self, request: GenerateRequest, progress: bool = False, callback=None) -> None:
        from .registries import components

        self.components = components()
        self.request = request
        self.progress, self.callback = progress, callback
        self.modality = self.components.modalities[request.modality]
        self.task = self.modality.task(request.task)
        self.backend = self.components.backends[request.backend or self.modality.default_backend]
        self.device = resolve_device(request.device, self.backend.devices)

    def encoder(self, name: str) -> Any:
        """A registered encoder, loaded once per process and device."""
        return _load_encoder(name, self.device)

    def model(self) -> LoadedModel:
        """The backend's ``LoadedModel``, loaded once per process and device."""
        return _load_backend(self.backend.name, self.device, self.request.model)

    def condition(self, encoder: str, prompts: list[str], **options: Any) -> tuple[dict, dict]:
        """``(cond, uncond)`` on the device: the condition encoder's ``encode`` of ``prompts`` and
        of as many empty prompts; each prompt is encoded once per process."""
        prompts = [p or "" for p in prompts]
        return (_encode_rows(encoder, self.device, prompts, options),
                _encode_rows(encoder, self.device, [""] * len(prompts), options))


_rows: OrderedDict = OrderedDict()  # (encoder, device, options, prompt) -> {key: row tensor}


def _encode_rows(name: str, device: str, prompts: list[str], options: dict) -> dict:
    import torch

    opts = tuple(sorted(options.items()))
    keys = [(name, device, opts, p) for p in prompts]
    missing = list(dict.fromkeys(k[3] for k in keys if k not in _rows))
    if missing:
        encoded = _load_encoder(name, device).encode(missing, **options)
        if not isinstance(encoded, dict):
            raise InvalidInputError(f"encoder {name!r}: encode() must return a dict of tensors, "
                                    f"got {type(encoded).__name__}")
        for i, p in enumerate(missing):
            _rows[(name, device, opts, p)] = {k: v[i].to(device) for k, v in encoded.items()}
    for k in keys:
        _rows.move_to_end(k)
    rows = [_rows[k] for k in keys]
    while len(_rows) > CONDITION_CACHE:
        _rows.popitem(last=False)
    return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}


class SamplingRun:
    """What one request samples with, resolved once for ``generate`` and ``explain`` alike: the
    loaded model, the guided denoiser, and ``sample``'s keyword arguments (``options``). The
    request's sampler, spacing, steps and guidance win over the plan's and the process's own;
    with no spacing named, a grid tuned for the model at this sampler and step count (its
    ``step_grids``) wins over the process's spacing, unless a constraint starts the run late."""

    def __init__(self, context: Context, plan) -> None:
        from .denoisers import as_denoiser, guided
        from .loop import DEFAULTS, _check_process

        request = context.request
        self.loaded = loaded = context.model()
        self.guidance = plan.guidance if request.guidance is None else request.guidance
        if loaded.guidance is not None:  # distilled in: the student runs unguided
            if request.guidance is not None and request.guidance != loaded.guidance:
                raise InvalidInputError(f"guidance: backend {context.backend.name!r} has guidance "
                                        f"{loaded.guidance:g} distilled in; leave --guidance out")
            self.guidance = 1.0
        self.denoiser = guided(as_denoiser(loaded.net, loaded.schedule, loaded.prediction),
                               plan.cond, plan.uncond, self.guidance)
        default_sampler, default_spacing = DEFAULTS[getattr(loaded.schedule, "process", "gaussian")]
        if loaded.times is not None:  # a few-step generator samples its own times, no others
            self.denoiser.latent = loaded.latent
            default_sampler = _few_step(request, plan, loaded, context.backend.name)
        sampler = request.sampler or plan.sampler or default_sampler
        # a sampler of the other noise process is the mistake to name, before its options
        _check_process(context.components.samplers.get_named(sampler), loaded.schedule, plan.constraints)
        steps = request.steps or plan.steps
        self.spacing = request.spacing or default_spacing  # the name recorded; options get the times
        tuned = None
        if loaded.times is not None:
            steps, tuned, self.spacing = len(loaded.times) - 1, list(loaded.times), "trained"
        elif request.spacing is None and not any(c.t_start is not None for c in plan.constraints):
            from .step_grids import grid_for

            tuned = grid_for(loaded.step_grids, sampler, steps, loaded.schedule.name)
            self.spacing = "tuned" if tuned else self.spacing
        self.options = dict(
            sampler=sampler, spacing=tuned or self.spacing, steps=steps,
            schedule=loaded.schedule, seed=request.seed, constraints=plan.constraints, device=context.device,
            mask_id=loaded.mask_id, sampler_options=sampler_options({**plan.sampler_options, **request.sampler_options}, sampler))


def _few_step(request, plan, loaded, backend: str) -> str:
    """The sampler of a few-step model (a DDGAN's ddpm, the posterior step it was trained with;
    a distilled student's ddim), after refusing, in one line, what it cannot do: other step
    counts, samplers or spacings, and runs that start part-way (img2img, SDEdit), whose start
    time it was not trained on."""
    trained, own = len(loaded.times) - 1, loaded.sampler or "ddpm"
    if request.steps is not None and request.steps != trained:
        raise InvalidInputError(f"steps: backend {backend!r} is a {trained}-step generator, trained for exactly "
                                f"those {trained} steps; leave --steps out or give {trained}")
    if (request.sampler or own) != own:
        raise InvalidInputError(f"sampler: backend {backend!r} samples with {own}, the step it was "
                                f"trained with, not {request.sampler!r}")
    if request.spacing is not None:
        raise InvalidInputError(f"spacing: backend {backend!r} samples the {trained + 1} times it was trained on")
    if any(c.t_start is not None for c in plan.constraints):
        raise InvalidInputError(f"task: {request.task} starts part-way through the process, which the "
                                f"{trained}-step model {backend!r} was not trained for; use a diffusion backend")
    return own


def load_encoder(name: str, device: str = "cpu") -> Any:
    """The registered encoder ``name``, loaded once per process and device (what
    ``Context.encoder`` returns; for training code, which has no request)."""
    return _load_encoder(name, device)


@functools.lru_cache(maxsize=16)
def _load_encoder(name, device):
    from .registries import components

    return components().encoders.get_named(name).load(device)


@functools.lru_cache(maxsize=8)
def _load_backend(name, device, model=None):
    from .registries import components

    spec = components().backends[name]
    return spec.load(device, model=model) if spec.models else spec.load(device)


def clear_caches() -> None:
    """Forget loaded encoders, backends and cached conditions (after plugins change)."""
    _load_encoder.cache_clear()
    _load_backend.cache_clear()
    _rows.clear()


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


def generate(modality: str, prompt: str | None = None, *, progress: bool = False, callback=None,
             **fields) -> Result:
    """Generate (or edit) ``n`` samples of a modality; see ``GenerateRequest`` for the fields.

    Fields the request model does not know are the task's options (``seconds=2``, ``frames=16``).
    ``callback(info)`` sees a ``StepInfo`` after every sampler step (progress; raising stops the run).
    """
    from .plugins import load_plugins

    request = GenerateRequest.build(modality=modality, prompt=prompt, **fields)
    if request.seed is None:
        request.seed = random.SystemRandom().randrange(2**31)
    return load_plugins().hook.run_generation(request=request, context=Context(request, progress, callback))
