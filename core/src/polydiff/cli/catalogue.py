"""The plugin catalogue, ``registry.toml``: every known plugin, where it comes from, what it provides.

There is one copy, at the repository root; the package reaches it through the symlink
``polydiff/cli/registry.toml`` (a wheel carries a plain copy of it). A folder ``source`` is relative
to the directory holding the real file, i.e. the repository root, so folder sources can only be
installed from a checkout; elsewhere ``install_command`` says so instead of guessing.

``requires`` lists what a plugin needs besides its own distribution. An item that is a catalogue
plugin's name or distribution, alone (``"polydiff-text"`` or ``"text"``), means that plugin: it is
installed from its own catalogue source, before the plugin that needs it, in the same pip command
(so a plugin that depends on an unpublished one resolves); a plugin's own name in its own list
is the library it is named after (``diffusers`` requires ``"diffusers==0.42.1"``). Any other item is a plain pip
requirement (``"scipy>=1.10"``) passed to pip as written. The ``polydiff-*`` names belong to the
catalogue: an item named ``polydiff-something`` that is not a catalogue plugin is an error, as
are a version on a catalogue plugin (its source decides it) and a cycle.

Nothing reaches pip unchecked: a requirement is a PEP 508 requirement by name (no pip option, no
URL or ``pkg @ file://``), a ``source`` a folder inside the repository or such a requirement, and
a ``distribution`` never polydiff or one of its dependencies (``plugins uninstall`` removes it).

Importing this module does not import torch.
"""
from __future__ import annotations

import difflib
import functools
import re
import sys
from importlib.metadata import PackageNotFoundError, distribution, entry_points
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError, field_validator

from ..errors import InvalidInputError, PluginError, PolydiffError, UnknownNameError
from ..request import describe

CATALOGUE_PATH = Path(__file__).with_name("registry.toml")
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_DIST_NAME = re.compile(rf"^{_NAME}$")
_VERSION = r"(?:~=|===|==|!=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+"
# A PEP 508 requirement by name only: extras, versions and a marker, but never a URL
# (``pkg @ file://...``) or anything else pip would read as an option, a path or an index.
_REQUIREMENT = re.compile(rf"^({_NAME})\s*(\[\s*{_NAME}(?:\s*,\s*{_NAME})*\s*\])?\s*"
                          rf"({_VERSION}(?:\s*,\s*{_VERSION})*)?\s*(;\s*[A-Za-z0-9_ .'\"<>=!~,()-]+)?$")
# What a catalogue plugin must never be, so `plugins uninstall` cannot remove polydiff's own
# dependencies (the installed polydiff's declared requirements are added in ``core_distributions``).
CORE_DISTRIBUTIONS = ("polydiff", "torch", "numpy", "pluggy", "pydantic", "pydantic-core", "safetensors",
                      "click", "tqdm", "tomli", "typing-extensions", "packaging", "pip", "setuptools",
                      "wheel", "fastapi", "uvicorn", "python-multipart", "starlette")


class CatalogueEntry(BaseModel):
    """One ``[plugins.NAME]`` table; ``name`` comes from the table's key."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str
    distribution: str
    source: str
    modalities: list[str] = []
    tasks: list[str] = []
    requires: list[str] = []
    description: str

    @field_validator("name", "distribution")
    @classmethod
    def _dist_name(cls, value: str) -> str:
        if not _DIST_NAME.match(value):
            raise ValueError(f"{value!r} is not a valid name (letters, digits, '.', '_', '-')")
        return value

    @field_validator("distribution")
    @classmethod
    def _not_core(cls, value: str) -> str:
        if _normalise(value) in core_distributions():
            raise ValueError(f"{value!r} is polydiff or one of its dependencies, not a plugin "
                             "(`plugins uninstall` would remove it)")
        return value

    @field_validator("modalities", "tasks")
    @classmethod
    def _plain_names(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _DIST_NAME.match(item):
                raise ValueError(f"{item!r} is not a valid name (letters, digits, '.', '_', '-')")
        return value

    @field_validator("source", "description")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if not value.strip() or "\n" in value:
            raise ValueError("must be one non-empty line")
        return value.strip()

    @field_validator("requires")
    @classmethod
    def _requirements(cls, value: list[str]) -> list[str]:
        seen = set()
        for item in value:
            _check_requirement(item)
            name = _normalise(requirement_name(item))
            if name in seen:
                raise ValueError(f"{item!r} is listed twice")
            seen.add(name)
        return [item.strip() for item in value]

    @field_validator("source")
    @classmethod
    def _folder_or_package(cls, value: str) -> str:
        if _looks_like_folder(value):
            parts = value.replace("\\", "/").split("/")
            if Path(value).is_absolute() or value.startswith(("~", "/", "\\")) or ":" in value:
                raise ValueError(f"folder source {value!r} must be relative to the repository root")
            if ".." in parts:
                raise ValueError(f"folder source {value!r} leaves the repository ('..')")
            if not all(_DIST_NAME.match(p) or p in ("", ".") for p in parts):
                raise ValueError(f"folder source {value!r}: only letters, digits, '.', '_', '-' in folder names")
            return value
        _check_requirement(value)
        return value

    @property
    def is_folder(self) -> bool:
        """True when ``source`` is a folder of the repository, False for a pip requirement."""
        return _looks_like_folder(self.source)


def _check_requirement(item: str) -> None:
    """A pip requirement by name (PEP 508, no URL); a ``ValueError`` saying what is wrong."""
    text = item.strip()
    if text.startswith("-"):
        raise ValueError(f"{item!r} is a pip option, not a requirement (options are not allowed)")
    if "://" in text or "@" in text:
        raise ValueError(f"{item!r} is a URL requirement; only index package names are allowed")
    if not _REQUIREMENT.match(text):
        raise ValueError(f"{item!r} is neither a plugin's name nor a pip requirement (PEP 508, by name)")
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # pragma: no cover - the regex alone then
        return
    try:
        Requirement(text)
    except InvalidRequirement as exc:
        raise ValueError(f"{item!r} is not a valid requirement: {' '.join(str(exc).split())}") from None


@functools.lru_cache(maxsize=1)
def core_distributions() -> frozenset[str]:
    """Normalised names of polydiff and its dependencies (declared ones included, when installed)."""
    from importlib.metadata import requires

    try:
        declared = requires("polydiff") or []
    except PackageNotFoundError:
        declared = []
    names = {requirement_name(r.split(";")[0]) for r in declared}
    return frozenset(_normalise(n) for n in (*CORE_DISTRIBUTIONS, *names))


def requirement_name(requirement: str) -> str:
    """The project name a ``requires`` item starts with: ``"scipy>=1"`` -> ``"scipy"``."""
    match = _REQUIREMENT.match(requirement.strip())
    return match.group(1) if match else requirement.strip()


def _looks_like_folder(source: str) -> bool:
    return "://" not in source and "@" not in source and ("/" in source or source.startswith("."))


class Catalogue(BaseModel):
    """All entries of one ``registry.toml``; ``path`` is where it was read from."""

    model_config = ConfigDict(extra="forbid")

    plugins: dict[str, CatalogueEntry] = {}
    _path: Path | None = PrivateAttr(default=None)

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def root(self) -> Path | None:
        """The directory that folder sources are relative to (the repository root in a checkout)."""
        return self._path.resolve().parent if self._path is not None else None

    def get(self, name: str) -> CatalogueEntry:
        """The entry called ``name`` (or whose distribution is ``name``)."""
        if name in self.plugins:
            return self.plugins[name]
        for entry in self.plugins.values():
            if _normalise(entry.distribution) == _normalise(name):
                return entry
        raise UnknownNameError(f"unknown plugin {name!r}{_hint(name, self.names())} "
                               f"(known: {', '.join(sorted(self.plugins)) or 'none'}; "
                               "see `polydiff plugins available`)")

    def names(self) -> list[str]:
        return sorted({*self.plugins, *(e.distribution for e in self.plugins.values())})

    def required_plugin(self, requirement: str, of: str | None = None) -> CatalogueEntry | None:
        """The catalogue plugin a ``requires`` item of plugin ``of`` names (by name or
        distribution), or None when the item is a plain pip requirement. A plugin named after
        the library it wraps (``diffusers``) requires that library by the same name: an item
        naming the requiring plugin itself by its name is the pip project."""
        name = _normalise(requirement_name(requirement))
        for key, entry in self.plugins.items():
            if name == _normalise(entry.distribution) or (name == _normalise(key) and key != of):
                return entry
        return None

    def required_plugins(self, entry: CatalogueEntry) -> list[CatalogueEntry]:
        """The catalogue plugins ``entry`` requires directly, in the order it lists them."""
        return [p for p in (self.required_plugin(r, entry.name) for r in entry.requires) if p is not None]

    def pip_requirements(self, entry: CatalogueEntry) -> list[str]:
        """The plain pip requirements among ``entry.requires``."""
        return [r for r in entry.requires if self.required_plugin(r, entry.name) is None]

    def install_order(self, name: str) -> list[CatalogueEntry]:
        """Plugin ``name`` and every catalogue plugin it requires, transitively: each once,
        every plugin after the ones it requires. A cycle is an ``InvalidInputError`` naming it."""
        order: list[CatalogueEntry] = []
        done: set[str] = set()

        def visit(entry: CatalogueEntry, path: list[str]) -> None:
            if entry.name in done:
                return
            if entry.name in path:
                cycle = " -> ".join([*path[path.index(entry.name):], entry.name])
                raise InvalidInputError(f"plugin {path[0]!r}: requires form a cycle: {cycle}")
            for required in self.required_plugins(entry):
                visit(required, [*path, entry.name])
            done.add(entry.name)
            order.append(entry)

        visit(self.get(name), [])
        return order

    def dependents(self, name: str) -> list[str]:
        """The catalogue plugins that require plugin ``name``, directly or not."""
        target = self.get(name).name
        return sorted(key for key in self.plugins if key != target
                      and target in {e.name for e in self.install_order(key)})

    def _requires_problems(self) -> list[str]:
        """What is wrong with the ``requires`` of every entry (each a complete sentence)."""
        problems = []
        distributions = [e.distribution for e in self.plugins.values()]
        for key, entry in self.plugins.items():
            for item in entry.requires:
                plugin, name = self.required_plugin(item, key), requirement_name(item)
                if plugin is not None and item != name:
                    problems.append(f"plugin {key!r}: field 'requires': {item!r} names the catalogue "
                                    f"plugin {plugin.name!r}; list it alone, {name!r} (its source decides "
                                    "the version)")
                elif plugin is None and _normalise(name).startswith("polydiff-"):
                    problems.append(f"plugin {key!r}: field 'requires': unknown plugin {name!r}"
                                    f"{_hint(name, distributions)} (a polydiff-* requirement must be a "
                                    "plugin of this catalogue)")
        if problems:
            return problems
        for key in self.plugins:
            try:
                self.install_order(key)
            except InvalidInputError as exc:
                problems.append(str(exc))
                break  # every member of the cycle would report the same one
        return problems

    def source_folder(self, entry: CatalogueEntry) -> Path:
        """The absolute folder of a folder source; a clear error when it is not there."""
        if not entry.is_folder:
            raise InvalidInputError(f"plugin {entry.name!r} comes from the package {entry.source!r}, not a folder")
        root = (self.root or Path.cwd()).resolve()
        folder = root / entry.source
        if not folder.resolve().is_relative_to(root):  # a symlink out of the repository
            raise InvalidInputError(f"plugin {entry.name!r}: source folder {entry.source!r} leaves the "
                                    f"repository {str(root)!r}")
        if not folder.is_dir():
            raise PluginError(
                f"plugin {entry.name!r}: source folder {str(folder)!r} does not exist (the catalogue "
                f"{str(self.path)!r} is not in a checkout of the polydiff repository that has it; "
                "install from a checkout, or pass the plugin's folder: "
                "`polydiff plugins install ./path/to/plugin`)")
        return folder


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _hint(name: str, choices) -> str:
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def read_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read and validate a catalogue (default: the one shipped with polydiff).

    Raises ``InvalidInputError`` naming the file, the broken entry and its field."""
    path = Path(path) if path is not None else CATALOGUE_PATH
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PluginError(f"plugin catalogue {str(path)!r} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PluginError(f"plugin catalogue {str(path)!r} cannot be read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"plugins"})
    if unknown:
        raise InvalidInputError(f"{path}: unknown top-level key {unknown[0]!r} "
                                "(expected only [plugins.NAME] tables)")
    tables = data.get("plugins", {})
    if not isinstance(tables, dict):
        raise InvalidInputError(f"{path}: 'plugins' must be a table of [plugins.NAME] tables")
    entries, problems = {}, []
    for name, table in tables.items():
        if not isinstance(table, dict):
            problems.append(f"plugin {name!r}: expected a [plugins.{name}] table, got {type(table).__name__}")
            continue
        if "name" in table and table["name"] != name:
            problems.append(f"plugin {name!r}: field 'name' is {table['name']!r}, but the table is "
                            f"[plugins.{name}] (leave 'name' out; the key is the name)")
            continue
        try:
            entries[name] = CatalogueEntry.model_validate({**table, "name": name})
        except ValidationError as exc:
            fields = [f for f in CatalogueEntry.model_fields if f != "name"]
            problems.append(f"plugin {name!r}: " + describe(exc, fields=fields, unknown="unknown field"))
    catalogue = Catalogue(plugins=entries)
    catalogue._path = path
    if not problems:
        problems = catalogue._requires_problems()
    if problems:
        raise InvalidInputError(f"{path}: invalid plugin catalogue: " + "; ".join(problems))
    return catalogue


def installed_version(dist_name: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return distribution(dist_name).version
    except PackageNotFoundError:
        return None


def _pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", *args]


def _constraints(root: Path | None) -> list[str]:
    if root is not None and (root / "constraints.txt").is_file():
        return ["-c", str(root / "constraints.txt")]
    return []


def is_path(name: str) -> bool:
    """Whether ``plugins install NAME`` means a local folder rather than a catalogue name."""
    return "/" in name or "\\" in name or name.startswith(".") or name.startswith("~")


def _in_catalogue(name: str, catalogue: Catalogue | None) -> bool:
    try:
        (catalogue if catalogue is not None else read_catalogue()).get(name)
    except PolydiffError:
        return False
    return True


def install_command(name: str, catalogue: Catalogue | None = None, *, editable: bool = True,
                    extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The pip command (in this interpreter's environment) that installs plugin ``name``.

    ``name`` is a catalogue name or distribution, or a local folder (``./my-plugin``). A catalogue
    plugin comes with every catalogue plugin it requires, in one pip command, dependencies first
    (``install_order``), followed by the plain pip requirements they list. Folder sources are
    installed editable (``editable`` applies to a local folder given by the user); a
    ``constraints.txt`` next to the catalogue is passed with ``-c``."""
    if is_path(name) or (Path(name).is_dir() and not _in_catalogue(name, catalogue)):
        root = catalogue.root if catalogue is not None else CATALOGUE_PATH.resolve().parent
        folder = Path(name).expanduser().resolve()
        if not folder.is_dir():
            raise InvalidInputError(f"source folder {str(folder)!r} does not exist")
        if not ((folder / "pyproject.toml").is_file() or (folder / "setup.py").is_file()):
            raise InvalidInputError(f"folder {str(folder)!r} is not a Python project "
                                    "(no pyproject.toml or setup.py)")
        return _pip("install", *_constraints(root), *(["-e"] if editable else []), str(folder), *extra)
    catalogue = catalogue if catalogue is not None else read_catalogue()
    targets, requirements = [], []
    for entry in catalogue.install_order(name):
        targets += ["-e", str(catalogue.source_folder(entry))] if entry.is_folder else [entry.source]
        requirements += [r for r in catalogue.pip_requirements(entry) if r not in requirements]
    return _pip("install", *_constraints(catalogue.root), *targets, *requirements, *extra)


def installed_plugin_distributions() -> dict[str, str]:
    """entry-point name -> distribution name, for the installed ``polydiff`` entry points."""
    return {ep.name: ep.dist.name for ep in entry_points(group="polydiff") if ep.dist is not None}


def uninstall_distribution(name: str, catalogue: Catalogue | None = None) -> str:
    """The distribution that ``plugins uninstall name`` removes: a catalogue plugin's, or an
    installed plugin's (by entry-point or distribution name)."""
    catalogue = catalogue if catalogue is not None else read_catalogue()
    if name in catalogue.plugins:
        return catalogue.plugins[name].distribution
    installed = installed_plugin_distributions()
    if name in installed:
        if _normalise(installed[name]) in core_distributions():
            raise InvalidInputError(f"plugin {name!r} comes from {installed[name]!r}, polydiff or one of "
                                    "its dependencies; remove it with pip if you mean to")
        return installed[name]
    for dist in [*installed.values(), *(e.distribution for e in catalogue.plugins.values())]:
        if _normalise(dist) == _normalise(name):
            return dist
    if _normalise(name) == "polydiff":
        raise InvalidInputError("polydiff itself is not a plugin; use `pip uninstall polydiff`")
    if _normalise(name) in core_distributions():
        raise InvalidInputError(f"{name!r} is one of polydiff's dependencies, not a plugin")
    choices = {*catalogue.names(), *installed, *installed.values()}
    raise UnknownNameError(f"unknown plugin {name!r}{_hint(name, choices)} "
                           f"(installed: {', '.join(sorted(installed)) or 'none'})")


def uninstall_command(name: str, catalogue: Catalogue | None = None,
                      extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The pip command (in this interpreter's environment) that removes plugin ``name``."""
    return _pip("uninstall", "-y", uninstall_distribution(name, catalogue), *extra)
