"""The components plugins registered, collected once through the hooks, and registering a
plugin at run time.

The first registration of a name wins; pluggy calls later-registered plugins first, so a
third-party plugin overrides a built-in of the same name. Every registration is kept in
``Registry.entries``, shadowed ones too, so what a plugin registered can be listed without
calling its hooks again.
"""
from __future__ import annotations

import difflib
import functools
import importlib
import sys
from typing import Any, NamedTuple

from .contract import PROCESSES, Backend, Encoder, Modality, SamplerSpec
from .errors import PluginError, UnknownNameError
from .plugins import load_plugins, report_failure, strict


class Entry(NamedTuple):
    """One registration: what a plugin registered under a name (it may be shadowed)."""

    name: str
    item: Any
    plugin: str


class Registry(dict):
    """name -> component (the winning registration), with the registering plugin kept in
    ``origin`` and every registration, in call order, in ``entries``."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind, self.origin, self.entries = kind, {}, []

    def add(self, name: str, item, plugin: str) -> None:
        self.entries.append(Entry(name, item, plugin))
        if name not in self:
            self[name], self.origin[name] = item, plugin

    def by_plugin(self, plugin: str) -> list[Entry]:
        """What ``plugin`` registered here, winning or shadowed."""
        return [e for e in self.entries if e.plugin == plugin]

    def get_named(self, name: str) -> Any:
        if name in self:
            return self[name]
        close = difflib.get_close_matches(str(name), list(self), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(sorted(self)) or "none installed"
        raise UnknownNameError(f"unknown {self.kind} {name!r}{hint} (known: {known})")


KINDS = ("schedules", "spacings", "samplers", "modalities", "encoders", "backends")


class Components:
    def __init__(self):
        self.schedules = Registry("schedule")
        self.spacings = Registry("spacing")
        self.samplers = Registry("sampler")
        self.modalities = Registry("modality")
        self.encoders = Registry("encoder")
        self.backends = Registry("backend")
        self.errors: dict[tuple[str, str], Exception] = {}  # (plugin, hook) -> what it raised


def _collect(c: Components, hook_name: str, make_register) -> None:
    hook = getattr(load_plugins().hook, hook_name)
    for impl in reversed(hook.get_hookimpls()):  # pluggy's call order
        try:
            impl.function(register=make_register(impl.plugin_name))
        except Exception as exc:  # one faulty plugin must not take the others down
            if strict():
                raise PluginError(f"plugin {impl.plugin_name!r} failed in {hook_name}: {exc}") from exc
            c.errors[(impl.plugin_name, hook_name)] = exc
            report_failure(impl.plugin_name, exc)


@functools.lru_cache(maxsize=1)
def components() -> Components:
    from .schedules import NoiseSchedule
    from .spacing import Spacing

    c = Components()

    def schedules(plugin):
        def register(obj):
            if isinstance(obj, NoiseSchedule):
                c.schedules.add(obj.name, obj, plugin)
            elif isinstance(obj, Spacing):
                c.spacings.add(obj.name, obj, plugin)
            else:
                raise PluginError(f"register_schedules: expected a NoiseSchedule or Spacing, got {obj!r}")
        return register

    def samplers(plugin):
        def register(name, fn, *, order=1, stochastic=False, description=None, process="gaussian"):
            if process not in PROCESSES:
                raise PluginError(f"register_samplers: {name!r} has process {process!r}; expected one of {PROCESSES}")
            doc = description or ((fn.__doc__ or "").strip().splitlines() or [""])[0]
            c.samplers.add(name, SamplerSpec(name, fn, order, stochastic, doc, process), plugin)
        return register

    def typed(registry, cls):
        def make(plugin):
            def register(obj):
                if not isinstance(obj, cls):
                    raise PluginError(f"expected a {cls.__name__} to register, got {obj!r}")
                registry.add(obj.name, obj, plugin)
            return register
        return make

    _collect(c, "register_schedules", schedules)
    _collect(c, "register_samplers", samplers)
    _collect(c, "register_modalities", typed(c.modalities, Modality))
    _collect(c, "register_encoders", typed(c.encoders, Encoder))
    _collect(c, "register_backends", typed(c.backends, Backend))
    return c


def clear_caches() -> None:
    """Forget the collected components and everything loaded from them (encoders, backends,
    cached conditions): after plugins change, the next call sees the new set."""
    from .generation import clear_caches as clear_loaded

    components.cache_clear()
    clear_loaded()


class RegisteredPlugin:
    """What ``register_plugin`` returns: the plugin and its ``name``. As a context manager it
    gives the name and unregisters the plugin on exit."""

    def __init__(self, plugin, name: str):
        self.plugin, self.name = plugin, name

    def __enter__(self) -> str:
        return self.name

    def __exit__(self, *exc) -> None:
        unregister_plugin(self)

    def __repr__(self) -> str:
        return f"<RegisteredPlugin {self.name!r}>"


def register_plugin(plugin, name: str | None = None) -> RegisteredPlugin:
    """Register ``plugin`` at run time (a notebook, a test, a script), as if it were installed:
    a module, a module's name (``__name__``) or an object with ``@polydiff.hookimpl`` methods.
    Every cache is cleared, so its registrations are visible at once. ``with
    register_plugin(...) as name:`` unregisters it on exit; ``unregister_plugin`` does it by hand."""
    if isinstance(plugin, str):
        plugin = sys.modules.get(plugin) or importlib.import_module(plugin)
    pm = load_plugins()
    if pm.is_registered(plugin):
        raise PluginError(f"plugin {pm.get_name(plugin)!r} is already registered")
    try:
        registered = pm.register(plugin, name=name)
        if registered is None:
            raise PluginError(f"plugin {name!r} is blocked")
        pm.check_pending()
    except PluginError:
        raise
    except Exception as exc:  # a misspelt hook, wrong hook arguments, a name already taken
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        _forget_unknown_hooks(pm)
        raise PluginError(f"plugin {name or plugin!r}: {exc}".splitlines()[0]) from None
    clear_caches()
    return RegisteredPlugin(plugin, registered)


def _forget_unknown_hooks(pm) -> None:
    """pluggy keeps a caller for a misspelt hook name even after unregistering: drop empty ones."""
    for hook, caller in list(vars(pm.hook).items()):
        if not caller.has_spec() and not caller.get_hookimpls():
            delattr(pm.hook, hook)


def unregister_plugin(plugin) -> None:
    """Undo ``register_plugin``: ``plugin`` is the plugin, its name or the returned handle.
    Unregistering one that is no longer registered does nothing."""
    pm = load_plugins()
    if isinstance(plugin, RegisteredPlugin):
        plugin = plugin.plugin
    if isinstance(plugin, str):  # a plugin name, else a module's name
        plugin = pm.get_plugin(plugin) or sys.modules.get(plugin)
    if plugin is not None and pm.is_registered(plugin):
        pm.unregister(plugin)
    clear_caches()
