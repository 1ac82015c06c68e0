"""Built-in samplers."""
from polydiff.hookspecs import hookimpl


@hookimpl
def register_samplers(register):
    from polydiff.samplers import BUILTIN_SAMPLERS

    for name, fn, order, stochastic in BUILTIN_SAMPLERS:
        register(name, fn, order=order, stochastic=stochastic)
