"""One request model for every ``generate`` call: Python API, CLI and any server alike.

Names (modality, task, sampler, spacing, backend) are checked against what the installed
plugins registered, so every mistake is reported before any work starts, naming its field.
"""
from __future__ import annotations

import difflib
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .contract import INPUTS
from .errors import InvalidInputError


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    modality: str
    task: str = "generate"
    prompt: str | None = None
    n: int = Field(1, ge=1, le=4096, description="number of samples")
    steps: int | None = Field(None, ge=1, le=10_000)
    sampler: str | None = None
    spacing: str | None = None
    guidance: float | None = Field(None, ge=0.0, le=100.0)
    seed: int | None = Field(None, ge=0, lt=2**63 - 4096)
    device: str = "auto"
    backend: str | None = None
    model: str | None = Field(None, description="a user's model, for backends that run one: a folder, "
                              "or a name from `polydiff models add`")
    init: Any = None      # a file path or an array, meaning depends on the task
    mask: Any = None
    options: dict[str, Any] = Field(default_factory=dict, description="the task's own options")
    sampler_options: dict[str, Any] = Field(
        default_factory=dict, description="the sampler's own options (ddim's eta, blocks' block), over the task's")

    @field_validator("sampler_options")
    @classmethod
    def _numbers(cls, v: dict) -> dict:
        for name, value in v.items():
            if not isinstance(value, (bool, int, float)):
                raise ValueError(f"{name} must be a number or true/false, got {value!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v not in ("auto", "cpu") and not (v == "cuda" or v.startswith("cuda:")):
            raise ValueError("must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
        return v

    @model_validator(mode="after")
    def _names(self):
        from .registries import components

        c = components()
        modality = c.modalities.get_named(self.modality)
        task = modality.task(self.task)
        if self.sampler is not None:
            c.samplers.get_named(self.sampler)
        if self.spacing is not None:
            c.spacings.get_named(self.spacing)
        if self.sampler_options:
            if self.sampler is None:
                raise ValueError("sampler_options: name the sampler they are for (--sampler)")
            sampler_options(self.sampler_options, self.sampler)
        backend = c.backends.get_named(self.backend or modality.default_backend)
        if backend.modality != self.modality:
            raise ValueError(f"backend {backend.name!r} is for {backend.modality!r}, not {self.modality!r}")
        if self.model is not None and not backend.models:
            raise ValueError(f"model: backend {backend.name!r} ships its own model and takes no --model "
                             "(a backend that runs users' models does, e.g. --backend diffusers)")
        if backend.models:
            if self.model is None:
                raise ValueError(f"model: backend {backend.name!r} runs a model of yours: give --model FOLDER "
                                 "(or a name from `polydiff models add`)")
            from .user_models import resolve_model

            self.model = resolve_model(self.model)
        for field in INPUTS:
            given = getattr(self, field) is not None
            if field in task.needs and not given:
                raise ValueError(f"{field}: the {task.name} task needs --{field}")
            if given and field not in task.needs:
                raise ValueError(f"{field}: the {task.name} task takes no --{field}")
        self.options = _task_options(modality, task, self.options)
        return self

    @classmethod
    def build(cls, **fields) -> "GenerateRequest":
        """Validate, turning pydantic's report into one ``InvalidInputError`` line."""
        known = set(cls.model_fields)
        options = dict(fields.pop("options", None) or {})
        options.update({k: fields.pop(k) for k in list(fields) if k not in known})
        try:
            return cls(**fields, options=options)
        except ValidationError as exc:
            raise InvalidInputError(describe(exc)) from None


def sampler_options(options: dict, sampler: str) -> dict:
    """``options``, each one the sampler's function takes (else one line naming it)."""
    import inspect

    from .registries import components

    if not options:
        return {}
    params = list(inspect.signature(components().samplers.get_named(sampler).fn).parameters.values())
    takes = [p.name for p in params[3:] if p.name not in ("noise", "step", "mask_id") and p.kind is not p.VAR_KEYWORD]
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params)
    for name in options:
        if name not in takes and not accepts_any:
            raise InvalidInputError(f"{name}: not an option of the sampler {sampler!r}"
                                    + (f"; it takes {', '.join(takes)}" if takes else "; it takes none"))
    return dict(options)


def _task_options(modality, task, options: dict) -> dict:
    """The task's options validated by its pydantic model, defaults filled in; an option of
    another task (or of none) is named, with the tasks it belongs to."""
    allowed = task.option_names()
    for name in options:
        if name not in allowed:
            owners = [t.name for t in modality.tasks if name in t.option_names()]
            where = f"; it belongs to {', '.join(owners)}" if owners else ""
            takes = f" (it takes {', '.join(allowed)})" if allowed else " (it takes none)"
            raise ValueError(f"{name}: not an option of {modality.name}'s {task.name} task{where}{takes}")
    if task.options is None:
        return {}
    try:
        values = task.options(**options).model_dump()
    except ValidationError as exc:
        raise ValueError(describe(exc)) from None
    for name, value in values.items():  # an unbounded float option takes NaN without a word
        if not_a_number(value):
            raise ValueError(f"{name}: not a number (got {value})")
    return values


NUMERIC_CHECKS = ("greater_than", "less_than", "finite_number", "multiple_of", "int_", "float_")  # pydantic's


def not_a_number(value) -> bool:
    """NaN or an infinity, as a float or as the text a command line gives ("nan", "-inf")."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return False
    return isinstance(value, float) and not math.isfinite(value)


def describe(exc: ValidationError, *, hide: tuple[str, ...] = ("options",), fields=None,
             unknown: str = "unknown option") -> str:
    """'field: message' for each problem pydantic found, on one line.

    The one formatter for every pydantic model polydiff validates (requests, task options,
    ``TrainConfig``, the plugin catalogue): ``hide`` drops container names from a location
    (``options.seconds`` reads ``seconds``); an unexpected field reads ``unknown``, with a
    "did you mean" taken from ``fields`` (the valid names) when one is close."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p not in hide)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"].startswith(NUMERIC_CHECKS) and not_a_number(err.get("input")):  # not "should be > 0"
            msg = f"not a number (got {err['input']})"
        elif err["type"] == "extra_forbidden":
            msg = unknown
            if fields is not None and err["loc"]:
                close = difflib.get_close_matches(str(err["loc"][-1]), list(fields), n=1)
                msg += f"; did you mean {close[0]!r}?" if close else ""
        parts.append(f"{loc}: {msg}" if loc else msg)  # a whole-request check names its field itself
    return "; ".join(parts)
