"""One request model for every ``generate`` call: Python API, CLI and any server alike.

Names (modality, task, sampler, spacing, backend) are checked against what the installed
plugins registered, so every mistake is reported before any work starts, naming its field.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
    init: Any = None      # a file path or an array, meaning depends on the task
    mask: Any = None
    strength: float | None = Field(None, gt=0.0, le=1.0)
    options: dict[str, Any] = Field(default_factory=dict, description="modality-specific options")

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
        if self.task not in modality.tasks:
            raise ValueError(f"task {self.task!r} is not one of {self.modality}'s tasks: {', '.join(modality.tasks)}")
        if self.sampler is not None:
            c.samplers.get_named(self.sampler)
        if self.spacing is not None:
            c.spacings.get_named(self.spacing)
        backend = c.backends.get_named(self.backend or modality.default_backend)
        if backend.modality != self.modality:
            raise ValueError(f"backend {backend.name!r} is for {backend.modality!r}, not {self.modality!r}")
        options_model = getattr(modality, "options", None)
        if options_model is not None:
            self.options = options_model(**self.options).model_dump()
        elif self.options:
            raise ValueError(f"{self.modality} takes no options (got {', '.join(self.options)})")
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


def describe(exc: ValidationError) -> str:
    """'field: message' for each problem pydantic found, on one line."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p != "options") or "request"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown option"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)
