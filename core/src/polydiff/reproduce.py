"""Making a result again from its ``metadata.json``: the request as recorded, its input files
checked against their recorded hashes, and the new files compared with the old ones."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InvalidInputError

if TYPE_CHECKING:
    from .result import Result

ARRAY = "<array shape="


def describe_inputs(request) -> dict:
    """``{field: {"path", "sha256"}}`` for every input file the request names (``init``,
    ``mask`` and file-valued task options), so a result records exactly what it was made from."""
    from .checkpoint import sha256_file

    named = {"init": request.init, "mask": request.mask,
             **{f"options.{k}": v for k, v in request.options.items()}}
    return {key: {"path": str(value), "sha256": sha256_file(value)} for key, value in named.items()
            if isinstance(value, (str, os.PathLike)) and str(value) and os.path.isfile(value)}


def recorded(metadata_path) -> dict:
    """The metadata of a saved result, or one line saying why it cannot be regenerated."""
    path = Path(metadata_path)
    if path.is_dir():
        path = path / "metadata.json"
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidInputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError(f"{path}: not a polydiff metadata.json ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("request"), dict):
        raise InvalidInputError(f"{path}: not a polydiff metadata.json (no request)")
    request = meta["request"]
    for key, value in request.items():
        if isinstance(value, str) and value.startswith(ARRAY):
            raise InvalidInputError(f"{key}: the result was made from an array, which metadata.json does "
                                    "not keep; pass inputs as files to make results regenerable")
    if request.get("seed") is None:
        raise InvalidInputError(f"{path}: the request records no seed")
    for key, given in (meta.get("inputs") or {}).items():
        _check_input(key, given)
    return dict(meta, folder=str(path.parent))


def regenerate(metadata, **overrides) -> "Result":
    """``generate`` again with the recorded request (``overrides`` such as ``device`` replace
    fields); raises before any work if an input file is missing or changed. ``metadata`` is a
    ``metadata.json`` path (or its folder), or what ``recorded`` returned for one."""
    from .generation import generate

    meta = metadata if isinstance(metadata, dict) else recorded(metadata)
    fields = dict(meta["request"], **overrides)
    options = fields.pop("options", None) or {}
    return generate(fields.pop("modality"), fields.pop("prompt", None), **fields, **options)


def compare(old_folder, new_folder, files) -> list[str]:
    """The recorded files that differ (or are missing) between two result folders."""
    old, new = Path(old_folder), Path(new_folder)
    return [name for name in files
            if not (old / name).is_file() or (old / name).read_bytes() != (new / name).read_bytes()]


def _check_input(key: str, given) -> None:
    from .checkpoint import sha256_file

    field = key.removeprefix("options.")
    if not isinstance(given, dict) or not isinstance(given.get("path"), str):
        raise InvalidInputError(f"{field}: the recorded input is malformed")
    path = given["path"]
    if not os.path.isfile(path):
        raise InvalidInputError(f"{field}: input file {path} is gone (run from the folder the result was made in)")
    if sha256_file(path) != given.get("sha256"):
        raise InvalidInputError(f"{field}: input file {path} changed since the result was made (sha256 differs)")
