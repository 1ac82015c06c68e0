"""The components plugins registered, collected once through the hooks, and registering a
plugin at run time.

Registrations are collected in plugin order (built-ins first, then entry points as loaded). A
name must be plain (``NAME_PATTERN``) and new: registering one that is taken is an error naming
both plugins, unless the later call passes ``override=True``; the replaced plugin is kept in
``Registry.overridden`` (and generation metadata says who supplied an overridden component). A
plugin whose hook fails is disabled and the collection restarts without it, so nothing it
registered before failing stays behind. Every registration is kept in ``Registry.entries``.
"""
from __future__ import annotations

import difflib
import functools
import importlib
import re
import sys
from typing import Any, NamedTuple

from .contract import PROCESSES, Backend, Encoder, Modality, SamplerSpec
from .errors import PluginError, UnknownNameError
from .plugins import PluginFault, disable, guard_plugin, load_plugins, ordered_impls, strict

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")  # no spaces, quotes, slashes or newlines


class Entry(NamedTuple):
    """One registration: what a plugin registered under a name (it may be shadowed)."""

    name: str
    item: Any
    plugin: str


class Registry(dict):
    """name -> component, with the registering plugin kept in ``origin``, every registration in
    ``entries`` and, for a name replaced with ``override=True``, the replaced plugin in
    ``overridden``."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind, self.origin, self.entries, self.overridden = kind, {}, [], {}

    def add(self, name: str, item, plugin: str, override: bool = False) -> None:
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise PluginError(f"{self.kind} name {name!r} is not a valid name (1 to 64 letters, digits, "
                              "'.', '_', '+', '-'; starting with a letter or digit)")
        if not isinstance(override, bool):
            raise PluginError(f"{self.kind} {name!r}: override must be True or False, got {override!r}")
        if name in self:
            if not override:
                raise PluginError(f"{self.kind} {name!r} of plugin {plugin!r} is already registered by "
                                  f"plugin {self.origin[name]!r}; pass override=True to register() "
                                  "to replace it")
            self.overridden[name] = self.origin[name]
        self.entries.append(Entry(name, item, plugin))
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


def _collect(c: Components, hook_name: str, make_register) -> str | None:
    """Call one ``register_*`` hook of every plugin; the first plugin that fails is returned
    (its error kept in ``c.errors``), so the caller can disable it and start again."""
    load_plugins()
    for impl in ordered_impls(hook_name):
        try:
            impl.function(register=make_register(impl.plugin_name))
        except Exception as exc:  # one faulty plugin must not take the others down
            cause = exc.cause if isinstance(exc, PluginFault) else exc
            if strict():
                raise PluginError(f"plugin {impl.plugin_name!r} failed in {hook_name}: "
                                  f"{' '.join(str(cause).split())}") from exc
            c.errors[(impl.plugin_name, hook_name)] = cause
            return impl.plugin_name
    return None


@functools.lru_cache(maxsize=1)
def components() -> Components:
    """Everything the loaded plugins register. A plugin whose hook raises (or registers an
    invalid or taken name) is disabled with one line, and the collection is redone without it."""
    errors: dict = {}
    while True:
        c = _collect_all()
        new = [key for key in c.errors if key not in errors]
        c.errors = errors = {**errors, **c.errors}
        if not new:  # (a plugin that could not be disabled fails the same way: stop too)
            return c
        plugin, hook = new[0]
        disable(plugin, PluginFault(plugin, hook, errors[new[0]]))


def _collect_all() -> Components:
    from .schedules import NoiseSchedule
    from .spacing import Spacing

    c = Components()

    def schedules(plugin):
        def register(obj, *, override=False):
            if isinstance(obj, NoiseSchedule):
                c.schedules.add(obj.name, obj, plugin, override)
            elif isinstance(obj, Spacing):
                c.spacings.add(obj.name, obj, plugin, override)
            else:
                raise PluginError(f"register_schedules: expected a NoiseSchedule or Spacing, got {obj!r}")
        return register

    def samplers(plugin):
        def register(name, fn, *, order=1, stochastic=False, description=None, process="gaussian",
                     override=False):
            if process not in PROCESSES:
                raise PluginError(f"register_samplers: {name!r} has process {process!r}; expected one of {PROCESSES}")
            if not callable(fn):
                raise PluginError(f"register_samplers: {name!r} is not given a function, got {fn!r}")
            doc = description or ((fn.__doc__ or "").strip().splitlines() or [""])[0]
            c.samplers.add(name, SamplerSpec(name, fn, order, stochastic, doc, process), plugin, override)
        return register

    def typed(registry, cls):
        def make(plugin):
            def register(obj, *, override=False):
                if not isinstance(obj, cls):
                    raise PluginError(f"expected a {cls.__name__} to register, got {obj!r}")
                registry.add(obj.name, obj, plugin, override)
            return register
        return make

    for hook, make in (("register_schedules", schedules), ("register_samplers", samplers),
                       ("register_modalities", typed(c.modalities, Modality)),
                       ("register_encoders", typed(c.encoders, Encoder)),
                       ("register_backends", typed(c.backends, Backend))):
        if _collect(c, hook, make) is not None:
            return c  # components() disables the plugin and collects again
    return c


def overrides(**names) -> dict:
    """``{kind: plugin}`` for each component named (``sampler="unipc"``, ``backend=...``) that a
    plugin replaced with ``override=True``: what generation metadata records."""
    c = components()
    registries = {"sampler": c.samplers, "spacing": c.spacings, "schedule": c.schedules,
                  "modality": c.modalities, "backend": c.backends, "encoder": c.encoders}
    return {kind: registries[kind].origin[name] for kind, name in names.items()
            if isinstance(name, str) and name in registries[kind].overridden}


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
        guard_plugin(plugin, registered)
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
