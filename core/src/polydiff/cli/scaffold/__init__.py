"""``polydiff plugins new NAME``: write a complete, installable plugin distribution.

The files come from ``template/`` (package data): every ``*.tmpl`` file is copied with its
``{{placeholders}}`` filled in, ``PACKAGE`` in a path becomes the import package and
``gitignore`` becomes ``.gitignore``. Only the standard library is used (no torch), and an
existing folder is never touched: the project is written to a temporary folder next to it and
renamed into place at the end.
"""
from __future__ import annotations

import keyword
import os
import re
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from ...errors import InvalidInputError
from ...output import current_umask

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_HINT = "lower-case letters and digits, words joined by '-' or '_', starting with a letter (e.g. 'weather')"


def names_for(name: str, modality: str | None = None) -> dict[str, str]:
    """The names a plugin called ``name`` gets: distribution, import package, entry point and
    modality. Raises ``InvalidInputError`` naming the field for a name that cannot work."""
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > 40:
        raise InvalidInputError(f"name: {name!r} is not a valid plugin name; use {_HINT}")
    if re.match(r"^polydiff(?:[-_]|$)", name):
        raise InvalidInputError(f"name: leave out the 'polydiff' prefix ({name!r}); "
                                "the distribution is called polydiff-NAME anyway")
    modality = name if modality is None else modality
    if not isinstance(modality, str) or not _NAME.match(modality) or len(modality) > 40:
        raise InvalidInputError(f"modality: {modality!r} is not a valid modality name; use {_HINT}")
    package = "polydiff_" + name.replace("-", "_")
    if not package.isidentifier() or keyword.iskeyword(package):  # pragma: no cover - regex prevents it
        raise InvalidInputError(f"name: {name!r} does not make a Python package name")
    return {"name": name, "modality": modality, "package": package,
            "distribution": "polydiff-" + name.replace("_", "-")}


def _taken(names: dict[str, str]) -> None:
    """Refuse a name an installed plugin or the catalogue already uses (cheap: no plugin loads)."""
    from importlib.metadata import entry_points

    installed = {ep.name: (ep.dist.name if ep.dist else ep.name) for ep in entry_points(group="polydiff")}
    if names["name"] in installed:
        raise InvalidInputError(f"name: a plugin called {names['name']!r} is already installed "
                                f"({installed[names['name']]}); choose another name")
    try:
        from ..catalogue import read_catalogue

        catalogue = read_catalogue()
    except Exception:  # no catalogue (e.g. a broken install): nothing more to compare with
        return
    for entry in catalogue.plugins.values():
        if names["name"] == entry.name:
            raise InvalidInputError(f"name: {names['name']!r} is the catalogue plugin {entry.distribution}; "
                                    "choose another name")
        if names["modality"] in entry.modalities:
            raise InvalidInputError(f"modality: {names['modality']!r} is provided by the catalogue plugin "
                                    f"{entry.name!r}; choose another name (--modality)")


def _render(text: str, values: dict[str, str], where: str) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    left = re.search(r"\{\{\w+\}\}", text)
    if left:  # pragma: no cover - a template bug, caught by the tests
        raise RuntimeError(f"template {where}: unknown placeholder {left.group(0)}")
    return text


def _template_files(root=None):
    """(relative path parts, template text) for every template file."""
    root = root or resources.files(__name__).joinpath("template")
    stack = [(root, ())]
    while stack:
        folder, parts = stack.pop()
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.is_dir():
                if entry.name != "__pycache__":
                    stack.append((entry, (*parts, entry.name)))
            elif entry.name.endswith(".tmpl"):
                yield (*parts, entry.name[: -len(".tmpl")]), entry.read_text(encoding="utf-8")


def new_plugin(name: str, modality: str | None = None, parent: str | os.PathLike = ".") -> Path:
    """Write the plugin project ``parent/name`` and return its folder.

    It is a complete distribution ``polydiff-NAME``: pyproject.toml with the ``polydiff`` entry
    point, a package registering a modality (default name: ``name``), a condition and a data
    encoder and an exact denoiser backend, a data generator, tests that run polydiff's
    conformance kit, a README. Never overwrites: an existing folder is an error."""
    from ... import __version__

    names = names_for(name, modality)
    parent = Path(parent)
    if not parent.is_dir():
        raise InvalidInputError(f"dir: {str(parent)!r} is not an existing folder")
    target = parent / name
    if target.exists() or target.is_symlink():
        raise InvalidInputError(f"name: {str(target)!r} already exists; choose another name or folder "
                                "(nothing was overwritten)")
    _taken(names)
    values = {**names, "polydiff_version": __version__}
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=parent))
    try:
        for parts, text in _template_files():
            parts = [names["package"] if p == "PACKAGE" else p for p in parts]
            stem = parts[-1]
            if stem == "gitignore":
                stem = ".gitignore"
            parts[-1] = stem.replace("PACKAGE", names["package"])
            path = staging.joinpath(*parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_render(text, values, "/".join(parts)), encoding="utf-8")
        staging.chmod(0o777 & ~current_umask())
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
