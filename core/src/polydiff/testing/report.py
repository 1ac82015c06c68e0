"""``check_plugin``: every check that applies to what one plugin registered, gathered in a
readable ``Report`` rather than stopping at the first failure."""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PolydiffError
from .backends import check_backend
from .encoders import check_encoder
from .errors import CheckSkipped, ConformanceError
from .hooks import check_commands, check_generation_hook, check_step_hook
from .modalities import check_modality_spec, check_task, check_task_options
from .samplers import check_sampler
from .schedules import check_schedule, check_spacing
from .support import available_devices, components


@dataclass
class Outcome:
    """One check's result: ``status`` is "ok", "FAIL" or "skip"."""

    kind: str
    name: str
    status: str
    detail: str
    seconds: float = 0.0


@dataclass
class Report:
    """What ``check_plugin`` found; ``str(report)`` is a readable table, ``report.ok`` the verdict."""

    plugin: str
    version: str | None = None
    outcomes: list[Outcome] = field(default_factory=list)

    def of(self, status: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def ok(self) -> bool:
        return not self.of("FAIL")

    def __str__(self) -> str:
        head = (f"polydiff conformance of plugin {self.plugin!r}"
                + (f" {self.version}" if self.version else "")
                + f": {len(self.of('ok'))} passed, {len(self.of('FAIL'))} failed, {len(self.of('skip'))} skipped")
        width = max([len(o.name) for o in self.outcomes] + [4])
        lines = [f"  {o.status:<4}  {o.kind:<10} {o.name:<{width}}  {o.detail}"
                 + (f"  [{o.seconds:.1f} s]" if o.seconds >= 0.05 else "") for o in self.outcomes]
        return "\n".join([head, *lines])

    def raise_for_failures(self) -> "Report":
        if not self.ok:
            raise ConformanceError(str(self))
        return self


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f" (at {Path(last.filename).name}:{last.lineno})"


def _attempt(report: Report, kind: str, name: str, fn, *args, **kwargs) -> None:
    start = time.perf_counter()
    try:
        detail, status = fn(*args, **kwargs), "ok"
    except CheckSkipped as exc:
        detail, status = str(exc), "skip"
    except ConformanceError as exc:
        detail, status = str(exc), "FAIL"
    except PolydiffError as exc:
        detail, status = f"{type(exc).__name__}: {exc}", "FAIL"
    except Exception as exc:  # a crash in the plugin's code: say what and where
        detail, status = f"raised {type(exc).__name__}: {exc}{_where(exc)}", "FAIL"
    detail = " ".join(str(detail or "").split())
    report.outcomes.append(Outcome(kind, name, status, detail, time.perf_counter() - start))


def _plugin_name(name: str, pm) -> str:
    from importlib.metadata import entry_points

    from ..plugins import failures

    if pm.has_plugin(name) or name in failures:
        return name
    for ep in entry_points(group="polydiff"):
        if ep.dist is not None and ep.dist.name.replace("_", "-").lower() == name.replace("_", "-").lower():
            return ep.name
    loaded = sorted(n for n, p in pm.list_name_plugin() if p is not None)
    raise ConformanceError(f"plugin {name!r} is not loaded (loaded: {', '.join(loaded)}); is it installed "
                           "(`polydiff plugins`), and not left out by POLYDIFF_PLUGINS?")


def _registered(report: Report, registry, plugin_name: str) -> list[str]:
    """The names whose winning registration is the plugin's; its shadowed registrations are
    reported as skipped, naming the plugin that won."""
    active = []
    for entry in registry.by_plugin(plugin_name):
        if registry[entry.name] is entry.item:
            if entry.name not in active:
                active.append(entry.name)
            continue
        owner = registry.origin[entry.name]
        why = (f"overridden by plugin {owner!r}" if owner != plugin_name
               else "registered again by the same plugin; the first registration wins")
        report.outcomes.append(Outcome(registry.kind, entry.name, "skip", why))
    return active


def check_plugin(name: str, *, devices=None, raise_on_failure: bool = True) -> Report:
    """Check everything the installed plugin ``name`` (entry-point or distribution name)
    registered: samplers, schedules, spacings, encoders and backends on each device (default:
    ``available_devices()``), modalities, each task's options and runs, commands, step and
    generation hooks. Returns the ``Report``; raises ``ConformanceError`` with it if a check
    failed (unless ``raise_on_failure=False``)."""
    from ..plugins import failures, load_plugins, versions

    pm = load_plugins()
    plugin_name = _plugin_name(name, pm)
    report = Report(plugin_name, versions.get(plugin_name))
    c = components()
    hook_errors = {hook: exc for (plugin, hook), exc in c.errors.items() if plugin == plugin_name}
    for hook, exc in hook_errors.items():
        report.outcomes.append(Outcome("plugin", plugin_name, "FAIL",
                                       f"{hook} raised {type(exc).__name__}: {exc}{_where(exc)}"))
    if plugin_name in failures and not hook_errors:
        report.outcomes.append(Outcome("plugin", plugin_name, "FAIL", f"failed to load: {failures[plugin_name]}"))
        return report.raise_for_failures() if raise_on_failure else report
    explicit = devices is not None
    devices = list(devices) if explicit else available_devices()

    for n in _registered(report, c.samplers, plugin_name):
        _attempt(report, "sampler", n, check_sampler, c.samplers[n])
    for n in _registered(report, c.schedules, plugin_name):
        _attempt(report, "schedule", n, check_schedule, c.schedules[n])
    for n in _registered(report, c.spacings, plugin_name):
        _attempt(report, "spacing", n, check_spacing, c.spacings[n])
    for n in _registered(report, c.encoders, plugin_name):
        for device in devices:
            _attempt(report, "encoder", f"{n}@{device}", check_encoder, c.encoders[n], device)
    for n in _registered(report, c.backends, plugin_name):
        spec = c.backends[n]
        absent = [] if explicit else [d for d in spec.devices if d == "cuda" and d not in devices]
        for device in [*devices, *absent]:  # a declared CUDA device that is absent shows as skipped
            _attempt(report, "backend", f"{n}@{device}", check_backend, spec, device)
    for n in _registered(report, c.modalities, plugin_name):
        mod = c.modalities[n]
        _attempt(report, "modality", n, check_modality_spec, mod)
        backend = c.backends.get(mod.default_backend)
        for task in mod.tasks:
            _attempt(report, "options", f"{n}:{task.name}", check_task_options, mod, task)
            for device in devices:
                if backend is not None and device.split(":")[0] not in backend.devices:
                    continue
                _attempt(report, "task", f"{n}:{task.name}@{device}", check_task, mod, task, device=device)
    hooks = {h.name for h in pm.get_hookcallers(pm.get_plugin(plugin_name)) or ()}
    if "register_commands" in hooks:
        _attempt(report, "commands", plugin_name, check_commands, plugin_name)
    if "on_step" in hooks:
        _attempt(report, "on_step", plugin_name, check_step_hook, plugin_name)
    if "run_generation" in hooks:
        _attempt(report, "generation", plugin_name, check_generation_hook, plugin_name)
    if not report.outcomes:
        report.outcomes.append(Outcome("plugin", plugin_name, "skip", "registers nothing the kit can check"))
    return report.raise_for_failures() if raise_on_failure else report
