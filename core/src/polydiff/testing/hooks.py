"""Checks of the hooks that register nothing: CLI commands, step hooks and generation hooks
take part when polydiff calls them, and nothing breaks."""
from __future__ import annotations

import contextlib

import torch

from .errors import CheckSkipped, fail
from .modalities import as_modality, example_arguments
from .oracle import shared_mixture
from .support import components, describe, single_thread


def _impls(plugin_name: str, hook_name: str):
    from ..plugins import load_plugins

    return [i for i in getattr(load_plugins().hook, hook_name).get_hookimpls() if i.plugin_name == plugin_name]


@contextlib.contextmanager
def _counting(impls):
    """Count calls of these hook implementations (restored afterwards)."""
    calls = [0]
    originals = [impl.function for impl in impls]

    def wrap(fn):
        def counted(*args, **kwargs):
            calls[0] += 1
            return fn(*args, **kwargs)
        return counted

    for impl in impls:
        impl.function = wrap(impl.function)
    try:
        yield calls
    finally:
        for impl, fn in zip(impls, originals):
            impl.function = fn


def check_commands(plugin_name: str) -> str:
    """The plugin's ``register_commands`` adds at least one command to a click group, and each
    command's ``--help`` works."""
    import click
    from click.testing import CliRunner

    impls = _impls(plugin_name, "register_commands")
    if not impls:
        raise CheckSkipped(f"plugin {plugin_name!r} does not implement register_commands")
    group = click.Group("polydiff")
    for impl in impls:
        impl.function(cli=group)
    if not group.commands:
        fail(f"plugin {plugin_name!r}: register_commands added no command")
    for name in group.commands:
        run = CliRunner().invoke(group, [name, "--help"])
        if run.exit_code != 0:
            fail(f"plugin {plugin_name!r}: `polydiff {name} --help` exited {run.exit_code}: "
                 f"{' '.join(run.output.split())[:200]}")
    return f"adds {', '.join(sorted(group.commands))}; --help works"


@single_thread
def check_step_hook(plugin_name: str, *, steps: int = 4) -> str:
    """The plugin's ``on_step`` is called once per step of a sampling run, which still ends in
    finite samples of the right shape."""
    from ..loop import sample

    impls = _impls(plugin_name, "on_step")
    if not impls:
        raise CheckSkipped(f"plugin {plugin_name!r} does not implement on_step")
    with _counting(impls) as calls:
        x = sample(shared_mixture(), (3, 2), sampler="euler", steps=steps, seed=0)
    if calls[0] != steps * len(impls):
        fail(f"plugin {plugin_name!r}: on_step was called {calls[0]} times in {steps} steps")
    if x.shape != (3, 2) or not torch.isfinite(x).all():
        fail(f"plugin {plugin_name!r}: sampling with its on_step hook gave {describe(x)}")
    return f"called at each of {steps} steps; samples intact"


def check_generation_hook(plugin_name: str, modality: str | None = None) -> str:
    """The plugin's ``run_generation`` takes part in ``generate`` (of ``modality``, default: one
    of its own modalities, else any installed one) and a ``Result`` comes back."""
    from ..generation import generate
    from ..result import Result

    impls = _impls(plugin_name, "run_generation")
    if not impls:
        raise CheckSkipped(f"plugin {plugin_name!r} does not implement run_generation")
    c = components()
    if modality is None:  # its own modality, else the cheapest-looking one (no weights to load)
        own = [m for m, p in c.modalities.origin.items() if p == plugin_name]
        weights = {m: bool(getattr(c.backends.get(c.modalities[m].default_backend), "checkpoint", None))
                   for m in c.modalities}
        modality = (own or sorted(c.modalities, key=lambda m: (weights[m], m)) or [None])[0]
    if modality is None:
        raise CheckSkipped("no modality is installed to generate with")
    mod = as_modality(modality)
    example = example_arguments(mod, "generate")
    with _counting(impls) as calls:
        result = generate(mod.name, **{"n": 1, "steps": 2, "seed": 0, **example, "device": "cpu"})
    if calls[0] < len(impls):
        fail(f"plugin {plugin_name!r}: its run_generation was not called by generate()")
    if not isinstance(result, Result) or len(result) < 1:
        fail(f"plugin {plugin_name!r}: generate() returned {result!r} with its run_generation hook")
    return f"wraps generate({mod.name!r}); a Result comes back"
