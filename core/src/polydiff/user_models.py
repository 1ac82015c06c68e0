"""Users' own models by name: ``polydiff models add NAME FOLDER`` keeps ``NAME -> FOLDER`` in
``models.json`` of polydiff's config folder (``$POLYDIFF_HOME``, else
``$XDG_CONFIG_HOME/polydiff``, else ``~/.config/polydiff``), so a request may say ``model=NAME``
where it would say the folder. Only a folder is recorded: whether it holds a model a backend
can run is the backend's to say when it loads it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .errors import InvalidInputError
from .registries import NAME_PATTERN


def config_folder() -> Path:
    if os.environ.get("POLYDIFF_HOME"):
        return Path(os.environ["POLYDIFF_HOME"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base).expanduser() / "polydiff"


def _file() -> Path:
    return config_folder() / "models.json"


def registered_models() -> dict[str, str]:
    """``{name: folder}`` of the models added with ``add_model``."""
    path = _file()
    if not path.exists():
        return {}
    try:
        models = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{path}: not a readable models file ({exc}); fix or delete it") from None
    if not isinstance(models, dict) or not all(isinstance(v, str) for v in models.values()):
        raise InvalidInputError(f"{path}: expected a JSON object of name -> folder; fix or delete it")
    return models


def _write(models: dict) -> None:
    path = _file()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(dict(sorted(models.items())), indent=2) + "\n")
        os.replace(tmp, path)  # atomic: a reader sees the old file or the new one
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def add_model(name: str, folder, *, replace: bool = False) -> Path:
    """Record ``name`` for the model in ``folder`` (kept as an absolute path)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidInputError(f"name: {name!r} is not a valid model name (letters, digits, '.', '_', '+', '-')")
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise InvalidInputError(f"folder: {folder} is not a folder")
    models = registered_models()
    if name in models and not replace and models[name] != str(path):
        raise InvalidInputError(f"name: {name!r} already names {models[name]}; remove it first or pass --replace")
    models[name] = str(path)
    _write(models)
    return path


def remove_model(name: str) -> None:
    models = registered_models()
    if name not in models:
        raise InvalidInputError(f"name: no model registered as {name!r}" + _known(models))
    del models[name]
    _write(models)


def resolve_model(value: str) -> str:
    """A registered name's folder, else ``value`` itself as an absolute folder path."""
    models = registered_models()
    if value in models:
        return models[value]
    path = Path(value).expanduser()
    if not path.is_dir():
        raise InvalidInputError(f"model: {value!r} is neither a folder nor a registered model name" + _known(models))
    return str(path.resolve())


def _known(models: dict) -> str:
    return f" (registered: {', '.join(sorted(models))})" if models else " (none registered: polydiff models add NAME FOLDER)"
