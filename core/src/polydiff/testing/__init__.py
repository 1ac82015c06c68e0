"""Test kit for polydiff and its plugins: analytic oracles and conformance checks.

``check_plugin(name)`` checks everything one installed plugin registered (samplers, schedules,
spacings, modalities and their tasks, encoders, backends on every available device, commands,
step and generation hooks) and returns a readable ``Report``, raising ``ConformanceError`` when
something fails. The granular ``check_*`` functions check one registration each. The kit is also
a pytest plugin (entry point ``pytest11``) with fixtures such as ``polydiff_mixture``.

One module per concern: ``samplers``, ``schedules``, ``encoders``, ``backends``, ``modalities``,
``hooks``, ``report``; ``oracle``, ``masked`` (the token oracle) and ``syncs`` are the instruments, ``errors`` the outcomes.
Names are imported lazily: importing this package (as pytest does at start-up) does not import
torch.
"""
from __future__ import annotations

import importlib

_LAZY = {  # name -> "module" (of this package) or "module:attribute" (relative to it)
    "GaussianMixture": "oracle", "default_mixture": "oracle", "separated_mixture": "oracle",
    "HostSyncs": "syncs",
    "CategoricalMixture": "masked", "check_masked_sampler": "masked", "tv_distance": "masked",
    "ConformanceError": "errors", "CheckSkipped": "errors",
    "check_sampler": "samplers", "check_sampler_order": "samplers", "check_stochastic_sampler": "samplers",
    "check_seeding": "samplers", "check_no_host_sync": "samplers", "ode_errors": "samplers",
    "observed_orders": "samplers",
    "check_schedule": "schedules", "check_spacing": "schedules",
    "check_encoder": "encoders",
    "check_backend": "backends",
    "check_modality": "modalities", "check_task": "modalities", "check_task_options": "modalities",
    "check_writer": "modalities",
    "check_commands": "hooks", "check_step_hook": "hooks", "check_generation_hook": "hooks",
    "Report": "report", "Outcome": "report", "check_plugin": "report",
    "available_devices": "support",
    "registered": "..registries:register_plugin",  # the one run-time registration, as a kit name
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        module, _, attribute = _LAZY[name].partition(":")
        if not module.startswith("."):
            module = "." + module
        value = getattr(importlib.import_module(module, __name__), attribute or name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'polydiff.testing' has no attribute {name!r}")


def __dir__():
    return __all__
