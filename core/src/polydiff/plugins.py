"""Plugin loading: built-ins, then the ``polydiff`` entry-point group, through one pluggy manager.

``POLYDIFF_PLUGINS`` limits which entry-point plugins load (unset: all; empty: none; ``a,b``:
only those). A plugin that fails to import (``SystemExit`` included), implements a hook that does
not exist, or raises in a ``register_*``/``register_commands`` hook is reported in one line,
disabled, and the rest carries on; ``POLYDIFF_STRICT_PLUGINS=1`` turns that into an error.

Every hook implementation of a non-built-in plugin is wrapped by ``guard``: whatever its code
raises (but a ``PolydiffError``, which already names its cause, or Ctrl-C) comes out as a
``PluginFault`` naming the plugin and the hook, so ``on_step`` or ``run_generation`` failing
during generation is one line (exit 1), never a traceback.
"""
from __future__ import annotations

import functools
import importlib
import os
import sys
from importlib.metadata import entry_points
from typing import Callable

import pluggy

from . import hookspecs
from .errors import PluginError, PolydiffError

BUILTIN_PLUGINS = ("polydiff.builtin.schedules", "polydiff.builtin.samplers", "polydiff.builtin.generation")

pm = pluggy.PluginManager("polydiff")
pm.add_hookspecs(hookspecs)
failures: dict[str, str] = {}   # plugin name -> one-line reason it was disabled
versions: dict[str, str] = {}   # plugin name -> distribution version
_loaded = False
_PASS = (PolydiffError, KeyboardInterrupt, GeneratorExit)  # not the plugin's fault to report


class PluginFault(PluginError):
    """A plugin's own code raised (or called ``sys.exit``) inside a hook."""

    def __init__(self, plugin: str, hook: str, cause: BaseException):
        self.plugin, self.hook, self.cause = plugin, hook, cause
        super().__init__(f"plugin {plugin!r} failed in {hook}: {one_line(cause)}")


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, however many lines the message had."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def strict() -> bool:
    return os.environ.get("POLYDIFF_STRICT_PLUGINS", "") not in ("", "0")


def report_failure(name: str, exc: BaseException) -> None:
    """Skip a broken plugin with one line on stderr (or raise, in strict mode)."""
    cause = exc.cause if isinstance(exc, PluginFault) else exc
    where = f"in {exc.hook}: " if isinstance(exc, PluginFault) else ""
    reason = where + one_line(cause)
    if strict():
        raise PluginError(f"plugin {name!r} failed to load: {reason}") from exc
    failures[name] = reason
    print(f"polydiff: skipped plugin {name!r}: {reason}", file=sys.stderr)


def disable(name: str, exc: BaseException) -> None:
    """Report ``name``'s failure in one line and unregister it, so none of its hooks run again."""
    report_failure(name, exc)
    if pm.has_plugin(name):
        pm.unregister(name=name)


def guard(fn: Callable, plugin: str, hook: str, *, generator: bool = False) -> Callable:
    """``fn`` (a hook implementation of ``plugin``) raising anything but a ``PolydiffError`` or
    Ctrl-C raises ``PluginFault`` instead. ``generator``: ``fn`` is a hook wrapper; exceptions
    pluggy throws into it from inner implementations pass through unchanged."""
    if generator:
        return _guard_wrapper(fn, plugin, hook)

    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _PASS:
            raise
        except BaseException as exc:  # SystemExit too: a plugin must not end the host
            raise PluginFault(plugin, hook, exc) from exc
    return guarded


def _guard_wrapper(fn, plugin: str, hook: str):
    def step(action, thrown=None):
        try:
            return action()
        except (StopIteration, *_PASS):
            raise
        except BaseException as exc:
            if exc is thrown:  # an inner implementation's error, passed on by the wrapper
                raise
            raise PluginFault(plugin, hook, exc) from exc

    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        gen = step(lambda: fn(*args, **kwargs))
        try:
            value = step(lambda: next(gen))
        except StopIteration:
            return None
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                gen.close()
                raise
            except BaseException as exc:
                action, thrown = (lambda exc=exc: gen.throw(exc)), exc
            else:
                action, thrown = (lambda sent=sent: gen.send(sent)), None
            try:
                value = step(action, thrown)
            except StopIteration as stop:
                return stop.value
    return guarded


def guard_plugin(plugin, name: str) -> None:
    """Wrap every hook implementation of a registered plugin with ``guard`` (once)."""
    for caller in pm.get_hookcallers(plugin) or ():
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and not getattr(impl.function, "_polydiff_guarded", False):
                impl.function = guard(impl.function, name, caller.name,
                                      generator=impl.wrapper or impl.hookwrapper)
                impl.function._polydiff_guarded = True


def ordered_impls(hook_name: str) -> list:
    """A hook's implementations in plugin registration order (built-ins first): the order in
    which ``register_*`` calls are collected, so a later plugin is the one that must override."""
    order = {name: i for i, (name, _) in enumerate(pm.list_name_plugin())}
    impls = getattr(pm.hook, hook_name).get_hookimpls()
    return sorted(impls, key=lambda impl: order.get(impl.plugin_name, len(order)))


def _register(plugin, name: str) -> None:
    try:
        pm.register(plugin, name=name)  # raises for a hookimpl whose arguments the spec lacks
        pm.check_pending()  # raises for a hookimpl with no spec (a misspelt hook)
    except (pluggy.PluginValidationError, ValueError) as exc:
        if pm.get_plugin(name) is plugin:
            pm.unregister(name=name)
        report_failure(name, exc)
        return
    if name not in BUILTIN_PLUGINS:
        guard_plugin(plugin, name)


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
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # any import-time failure, sys.exit included
            report_failure(ep.name, exc)
            continue
        versions[ep.name] = ep.dist.version if ep.dist else "?"
        _register(plugin, ep.name)
    return pm
