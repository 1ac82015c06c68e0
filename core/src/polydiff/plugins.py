"""Plugin loading: built-ins, then the ``polydiff`` entry-point group, through one pluggy manager.

``POLYDIFF_PLUGINS`` limits which entry-point plugins load (unset: all; empty: none; ``a,b``:
only those). A plugin that fails to import, or implements a hook that does not exist, is
reported in one line and skipped; ``POLYDIFF_STRICT_PLUGINS=1`` turns that into an error.
"""
from __future__ import annotations

import importlib
import os
import sys
from importlib.metadata import entry_points

import pluggy

from . import hookspecs
from .errors import PluginError

BUILTIN_PLUGINS = ("polydiff.builtin.schedules", "polydiff.builtin.samplers", "polydiff.builtin.generation")

pm = pluggy.PluginManager("polydiff")
pm.add_hookspecs(hookspecs)
failures: dict[str, str] = {}   # plugin name -> one-line reason it was skipped
versions: dict[str, str] = {}   # plugin name -> distribution version
_loaded = False


def strict() -> bool:
    return os.environ.get("POLYDIFF_STRICT_PLUGINS", "") not in ("", "0")


def report_failure(name: str, exc: BaseException) -> None:
    """Skip a broken plugin with one line on stderr (or raise, in strict mode)."""
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line, all of it
    if strict():
        raise PluginError(f"plugin {name!r} failed to load: {reason}") from exc
    failures[name] = reason
    print(f"polydiff: skipped plugin {name!r}: {reason}", file=sys.stderr)


def _register(plugin, name: str) -> None:
    try:
        pm.register(plugin, name=name)  # raises for a hookimpl whose arguments the spec lacks
        pm.check_pending()  # raises for a hookimpl with no spec (a misspelt hook)
    except (pluggy.PluginValidationError, ValueError) as exc:
        if pm.get_plugin(name) is plugin:
            pm.unregister(name=name)
        report_failure(name, exc)


def load_plugins() -> pluggy.PluginManager:
    """Load every plugin once; later calls return the same manager."""
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    for module in BUILTIN_PLUGINS:
        _register(importlib.import_module(module), module)
    wanted = os.environ.get("POLYDIFF_PLUGINS")
    allow = None if wanted is None else {w.strip() for w in wanted.split(",") if w.strip()}
    for ep in entry_points(group="polydiff"):
        dist = ep.dist.name if ep.dist else ep.name
        if allow is not None and ep.name not in allow and dist not in allow:
            continue
        if pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # any import-time failure must not break the rest
            report_failure(ep.name, exc)
            continue
        versions[ep.name] = ep.dist.version if ep.dist else "?"
        _register(plugin, ep.name)
    return pm
