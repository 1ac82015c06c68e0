"""The hooks a polydiff plugin may implement (pluggy project ``polydiff``).

``register_*`` hooks receive a ``register`` callback instead of returning values, so new
keyword arguments can be added to the callback later without breaking any plugin.
"""
from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("polydiff")
hookimpl = HookimplMarker("polydiff")


@hookspec
def register_schedules(register) -> None:
    """Register noise schedules (``NoiseSchedule``) and step spacings (``Spacing``)."""


@hookspec
def register_samplers(register) -> None:
    """Register sampler functions: ``register(name, fn, order=..., stochastic=...)``."""


@hookspec
def register_modalities(register) -> None:
    """Register a ``Modality``: its data spec, tasks, file formats and default backend."""


@hookspec
def register_encoders(register) -> None:
    """Register data encoders and condition encoders (text, class, ...) as ``Encoder``."""


@hookspec
def register_backends(register) -> None:
    """Register denoiser backends (``Backend``): architecture, checkpoint, prediction, devices."""


@hookspec
def register_commands(cli) -> None:
    """Add commands to the ``polydiff`` click group."""


@hookspec
def on_step(step) -> None:
    """Observe (or change ``step.x``) after every sampler step; ``step`` is a ``StepInfo``."""


@hookspec(firstresult=True)
def run_generation(request, context) -> None:
    """Produce a ``Result`` for a request; wrap it (``wrapper=True``) to time, log or watermark."""
