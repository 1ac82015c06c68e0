"""The components plugins registered, collected once through the hooks.

The first registration of a name wins; pluggy calls later-registered plugins first, so a
third-party plugin overrides a built-in of the same name.
"""
from __future__ import annotations

import difflib
import functools

from .errors import PluginError, UnknownNameError
from .plugins import load_plugins, report_failure, strict
from .contract import Backend, Encoder, Modality, SamplerSpec


class Registry(dict):
    """name -> component, with the registering plugin kept in ``origin``."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind, self.origin = kind, {}

    def add(self, name: str, item, plugin: str) -> None:
        if name not in self:
            self[name], self.origin[name] = item, plugin

    def get_named(self, name: str):
        if name in self:
            return self[name]
        close = difflib.get_close_matches(str(name), list(self), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known = ", ".join(sorted(self)) or "none installed"
        raise UnknownNameError(f"unknown {self.kind} {name!r}{hint} (known: {known})")


class Components:
    def __init__(self):
        self.schedules = Registry("schedule")
        self.spacings = Registry("spacing")
        self.samplers = Registry("sampler")
        self.modalities = Registry("modality")
        self.encoders = Registry("encoder")
        self.backends = Registry("backend")


def _collect(hook_name: str, make_register) -> None:
    hook = getattr(load_plugins().hook, hook_name)
    for impl in reversed(hook.get_hookimpls()):  # pluggy's call order
        try:
            impl.function(register=make_register(impl.plugin_name))
        except Exception as exc:  # one faulty plugin must not take the others down
            if strict():
                raise PluginError(f"plugin {impl.plugin_name!r} failed in {hook_name}: {exc}") from exc
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
        def register(name, fn, *, order=1, stochastic=False, description=None):
            doc = description or ((fn.__doc__ or "").strip().splitlines() or [""])[0]
            c.samplers.add(name, SamplerSpec(name, fn, order, stochastic, doc), plugin)
        return register

    def typed(registry, cls):
        def make(plugin):
            def register(obj):
                if not isinstance(obj, cls):
                    raise PluginError(f"expected a {cls.__name__} to register, got {obj!r}")
                registry.add(obj.name, obj, plugin)
            return register
        return make

    _collect("register_schedules", schedules)
    _collect("register_samplers", samplers)
    _collect("register_modalities", typed(c.modalities, Modality))
    _collect("register_encoders", typed(c.encoders, Encoder))
    _collect("register_backends", typed(c.backends, Backend))
    return c


def register_plugin(plugin, name: str | None = None) -> None:
    """Register a plugin object or module at run time (a notebook, a test) and refresh the
    component registries so its registrations are visible at once."""
    pm = load_plugins()
    pm.register(plugin, name=name)
    pm.check_pending()
    components.cache_clear()


def unregister_plugin(plugin) -> None:
    load_plugins().unregister(plugin)
    components.cache_clear()
