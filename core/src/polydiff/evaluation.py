"""``polydiff.evaluate``: run a modality's evaluator and keep its report, so no evaluator writes
its own files: ``report.json`` (and ``report.md`` when the report has ``markdown``) in ``out``,
each written whole or not at all."""
from __future__ import annotations

import json
import os
from pathlib import Path


def evaluate(modality: str, out: str | Path | None = None, quick: bool = False, backend: str | None = None) -> dict:
    """The report of ``modality``'s evaluator (``quick``: a small run), saved under ``out``
    (default ``out/eval/MODALITY``), where the evaluator also leaves its samples. ``backend``
    evaluates another backend of the modality than its default, where the evaluator takes one."""
    import inspect

    from .errors import InvalidInputError
    from .registries import components

    registry = components()
    mod = registry.modalities.get_named(modality)
    if mod.evaluate is None:
        raise InvalidInputError(f"modality {mod.name!r} has no evaluator")
    options = {}
    if backend is not None:
        spec = registry.backends.get_named(backend)
        if spec.modality != mod.name:
            raise InvalidInputError(f"backend: {backend!r} is a backend of {spec.modality!r}, not {mod.name!r}")
        if "backend" not in inspect.signature(mod.evaluate).parameters:
            raise InvalidInputError(f"backend: the {mod.name} evaluator scores its default backend only")
        options["backend"] = backend
    folder = Path(out or f"out/eval/{mod.name}")
    report = mod.evaluate(out=folder, quick=quick, **options)
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "report.json", json.dumps(report, indent=2))
    if isinstance(report.get("markdown"), str):
        _write(folder / "report.md", report["markdown"])
    return report


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
