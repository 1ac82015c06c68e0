"""What plugins register: small declarative records. Importing this module never imports torch."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class SamplerSpec:
    name: str
    fn: Callable
    order: int = 1
    stochastic: bool = False
    description: str = ""


@dataclass
class Modality:
    """A kind of data. ``plan(request, model)`` turns a validated request into a ``Plan``;
    ``write(outputs, folder, request)`` saves decoded samples and returns the file paths."""

    name: str
    description: str
    tasks: dict[str, str]
    plan: Callable[..., Any]
    write: Callable[..., list]
    default_backend: str
    formats: tuple[str, ...] = ()
    options: Any = None  # a pydantic model of modality-specific options (seconds, frames, ...)
    max_elements: int = 2**24  # n * per-sample elements allowed in one call (memory budget)
    evaluate: Callable[..., dict] | None = None  # evaluate(out=folder, quick=bool) -> report
    demo: Callable[..., list] | None = None       # demo(folder) -> files, run by `polydiff demo`
    # examples(task) -> generate() keyword arguments (prompt, init, options...) that make a
    # small valid request for that task; the conformance kit (polydiff.testing) runs each one.
    examples: Callable[[str], dict] | None = None
    # read(files) -> outputs: the inverse of ``write``; the kit checks written files read back.
    read: Callable[..., list] | None = None


@dataclass
class Encoder:
    """``kind`` is "data" (data <-> model space) or "condition" (prompt -> embedding).
    ``load(device)`` returns the working encoder object."""

    name: str
    kind: str
    load: Callable[..., Any]
    description: str = ""
    # examples() -> a few inputs: prompts for a condition encoder, data for a data encoder
    # (whose loaded object has ``encode`` and ``decode``); checked by polydiff.testing.
    examples: Callable[[], list] | None = None
    tolerance: float = 1e-5  # max |decode(encode(x)) - x| a data encoder promises


@dataclass
class Backend:
    """A denoiser backend. ``load(device)`` returns a ``LoadedModel``."""

    name: str
    modality: str
    load: Callable[..., Any]
    prediction: str = "eps"
    devices: tuple[str, ...] = ("cpu",)
    checkpoint: str | None = None  # path of the weights file, hashed into result metadata
    description: str = ""
    train: Callable[..., Any] | None = None  # train(out=None, progress=True, **overrides) -> path


@dataclass
class LoadedModel:
    """A ready network ``net(x, t, cond)`` with the schedule and prediction it was trained for."""

    net: Callable
    schedule: Any
    prediction: str
    config: dict = field(default_factory=dict)


@dataclass
class StepInfo:
    """What step hooks see after sampler step ``i`` (of ``steps``); set ``x`` to change the state."""

    i: int
    steps: int
    t: float
    x: Any
    x0: Any
