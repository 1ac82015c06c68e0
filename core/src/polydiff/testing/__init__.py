"""Test kit for polydiff and its plugins: analytic oracles and conformance checks.

``check_plugin(name)`` checks everything one installed plugin registered (samplers, schedules,
spacings, modalities and their tasks, encoders, backends on every available device, commands,
step and generation hooks) and returns a readable ``Report``, raising ``ConformanceError`` when
something fails. The granular ``check_*`` functions check one registration each. The kit is also
a pytest plugin (entry point ``pytest11``) with fixtures such as ``polydiff_mixture``.

Names are imported lazily: importing this package (as pytest does at start-up) does not import
torch.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "GaussianMixture": "oracle",
    "HostSyncs": "syncs",
    "ConformanceError": "checks", "CheckSkipped": "checks", "Report": "checks", "Outcome": "checks",
    "check_plugin": "checks", "check_sampler": "checks", "check_sampler_order": "checks",
    "check_stochastic_sampler": "checks", "check_seeding": "checks", "check_no_host_sync": "checks",
    "check_schedule": "checks", "check_spacing": "checks", "check_modality": "checks",
    "check_task": "checks", "check_backend": "checks", "check_encoder": "checks",
    "check_commands": "checks", "check_step_hook": "checks", "check_generation_hook": "checks",
    "default_mixture": "checks", "separated_mixture": "checks", "ode_errors": "checks",
    "observed_orders": "checks", "available_devices": "checks", "registered": "checks",
    "read_back": "checks", "check_writer": "checks",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'polydiff.testing' has no attribute {name!r}")


def __dir__():
    return __all__
