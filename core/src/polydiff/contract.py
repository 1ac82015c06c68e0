"""What plugins register: small declarative records. Importing this module never imports torch."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .errors import PluginError

if TYPE_CHECKING:  # the plan function's second argument; importing it here would load pydantic
    from .generation import Context


@dataclass
class SamplerSpec:
    name: str
    fn: Callable
    order: int = 1
    stochastic: bool = False
    description: str = ""
    process: str = "gaussian"   # the noise process it drives: "gaussian" or "masked"


PROCESSES = ("gaussian", "masked")  # what a schedule noises and a sampler drives


@dataclass
class Plan:
    """What one task decides for one request: the shape of a sample in model space, the
    condition and null condition (``uncond`` enables classifier-free guidance), editing
    constraints, and how to turn the sampled batch into outputs."""

    shape: tuple[int, ...]
    cond: Any = None
    uncond: Any = None
    constraints: list = field(default_factory=list)
    decode: Callable[[Any], list] | None = None   # model-space batch -> list of outputs
    guidance: float = 1.0                  # the task's default guidance scale
    steps: int = 20                        # the task's default number of steps
    sampler: str | None = None             # the task's default sampler (the request's wins)
    sampler_options: dict = field(default_factory=dict)  # e.g. a task's temperature or block length
    info: dict = field(default_factory=dict)      # extra metadata (e.g. evaluator hints)


INPUTS = ("init", "mask")  # request fields a task may need; core rejects them for other tasks


@dataclass
class Task:
    """One thing a modality does, with its own plan function and options.

    ``plan(request, context) -> Plan``. ``options``: a pydantic model of the task's own options
    (core rejects any other option, naming it and the task it belongs to). ``needs``: the
    request inputs it requires (``"init"``, ``"mask"``); core rejects a missing one, and one
    given to a task that does not need it. ``example``: small valid ``generate()`` arguments (a
    dict, or a function returning one), run by the conformance kit."""

    name: str
    description: str
    plan: Callable[[Any, Context], Plan]
    options: Any = None
    needs: tuple[str, ...] = ()
    example: dict | Callable[[], dict] | None = None

    def __post_init__(self):
        unknown = [n for n in self.needs if n not in INPUTS]
        if unknown:
            raise PluginError(f"task {self.name!r}: needs {unknown[0]!r}, not one of {', '.join(INPUTS)}")
        if self.options is not None and not hasattr(self.options, "model_json_schema"):
            raise PluginError(f"task {self.name!r}: options must be a pydantic model class")

    def option_names(self) -> list[str]:
        return list(self.options.model_fields) if self.options is not None else []

    def schema(self) -> dict:
        """The task as JSON: description, needed inputs and the options' JSON schema."""
        options = self.options.model_json_schema() if self.options is not None else {"properties": {}}
        return {"name": self.name, "description": self.description, "needs": list(self.needs),
                "options": options}

    def example_arguments(self) -> dict | None:
        return self.example() if callable(self.example) else self.example


@dataclass
class Modality:
    """A kind of data: its tasks, how its outputs are written and read back, its default backend.

    ``write(outputs, folder, request) -> paths`` saves decoded samples; ``read(files) -> outputs``
    is its inverse (required when ``formats`` are declared), within ``tolerance``."""

    name: str
    description: str
    tasks: list[Task]
    write: Callable[..., list]
    default_backend: str
    formats: tuple[str, ...] = ()
    read: Callable[[list], list] | None = None
    tolerance: float = 1e-4      # max |read(write(x)) - x| the formats promise (8-bit PNG: 1/255)
    max_elements: int = 2**24    # n * per-sample elements allowed in one call (memory budget)
    evaluate: Callable[..., dict] | None = None  # evaluate(out=folder, quick=bool) -> report (core saves it)
    demo: Callable[..., list] | None = None       # demo(folder) -> files, run by `polydiff demo`
    # picture(batch) -> one numpy picture of a model-space batch, noisy or clean (an image
    # [H, W, 3] in [0, 1], or [H, W] values shown with a colour map): `polydiff explain`'s panels
    picture: Callable[[Any], Any] | None = None
    picture_samples: int = 1     # samples in one picture (a scatter of points needs many)

    def __post_init__(self):
        self.tasks = list(self.tasks)
        if not self.tasks or not all(isinstance(t, Task) for t in self.tasks):
            raise PluginError(f"modality {self.name!r}: tasks must be a non-empty list of polydiff.Task")
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise PluginError(f"modality {self.name!r}: task names repeat: {', '.join(names)}")
        if self.formats and self.read is None:
            raise PluginError(f"modality {self.name!r}: declares formats {', '.join(self.formats)} "
                             "but no read(files), the inverse of write")

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise ValueError(f"task {name!r} is not one of {self.name}'s tasks: {', '.join(self.task_names)}")


@dataclass
class Encoder:
    """``kind`` is "data" (data <-> model space) or "condition" (prompts -> condition).
    ``load(device)`` returns the working encoder object. A condition encoder's object has
    ``encode(prompts: list[str], **options) -> dict[str, Tensor]``, one row per prompt, with
    exactly the keys ``outputs`` declares (e.g. sentence vector, word tokens, mask); a data
    encoder's has ``encode`` and ``decode``."""

    name: str
    kind: str
    load: Callable[..., Any]
    description: str = ""
    # examples() -> a few inputs: prompts for a condition encoder, data for a data encoder
    # (whose loaded object has ``encode`` and ``decode``); checked by polydiff.testing.
    examples: Callable[[], list] | None = None
    tolerance: float = 1e-5  # max |decode(encode(x)) - x| a data encoder promises
    outputs: tuple[str, ...] = ()  # a condition encoder's keys, each [n, ...] for n prompts


@dataclass
class Backend:
    """A denoiser backend. ``load(device)`` returns a ``LoadedModel``.

    ``models=True``: the backend runs a user's model rather than shipping one; a request must
    name it (``model=FOLDER``, or a name from ``polydiff models add``) and core calls
    ``load(device, model=FOLDER)`` with the folder resolved."""

    name: str
    modality: str
    load: Callable[..., Any]
    prediction: str = "eps"
    devices: tuple[str, ...] = ("cpu",)
    checkpoint: str | None = None  # path of the weights file, hashed into result metadata
    description: str = ""
    train: Callable[..., Any] | None = None  # train(out=None, progress=True, **overrides) -> path
    models: bool = False  # load(device, model=FOLDER): runs the user's model named by the request


@dataclass
class ModelSpace:
    """How a backend that brings its own encoders (a user's latent model, say) maps a
    modality's data and prompts to the space it samples in, so the modality's tasks plan in
    that space instead of their own. ``encode`` takes a batch of data as the modality's tasks
    read it (``data_shape`` per sample), ``decode`` gives one back; ``condition(prompts)``
    returns ``(cond, uncond)``, or ``(None, None)`` for an unconditional model. ``latent``:
    model space is not data space, so constraints written on data (a measurement of pixels,
    a noise level in pixel units) do not apply there."""

    shape: tuple[int, ...]
    data_shape: tuple[int, ...]
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]
    condition: Callable[[list], tuple] = lambda prompts: (None, None)
    latent: bool = False


@dataclass
class LoadedModel:
    """A ready network ``net(x, t, cond)`` with the schedule and prediction it was trained for."""

    net: Callable
    schedule: Any
    prediction: str
    config: dict = field(default_factory=dict)
    mask_id: int | None = None   # the mask token of a masked-process model
    step_grids: list = field(default_factory=list)  # grids tuned for it (step-grids.json, polydiff.tune_steps)
    space: ModelSpace | None = None  # its own data and prompt encoders, where it brings them
    source: dict = field(default_factory=dict)  # a user's model: its folder and weight hashes (metadata)
    # a few-step model samples with its one ``sampler`` over exactly the ``times`` it was trained
    # on: a DDGAN generator (ddpm; net(x, t, cond, z=z) with z of ``latent`` shape per sample,
    # drawn from the sample's seed) or a distilled student (ddim; the teacher's ``guidance``
    # distilled in, so it runs without guidance's second branch)
    latent: tuple[int, ...] | None = None
    times: list[float] | None = None
    sampler: str | None = None
    guidance: float | None = None


@dataclass
class StepInfo:
    """What step hooks see after sampler step ``i`` (of ``steps``); set ``x`` to change the state."""

    i: int
    steps: int
    t: float
    x: Any
    x0: Any
