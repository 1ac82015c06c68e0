"""Built-in samplers."""
from polydiff.hookspecs import hookimpl


@hookimpl
def register_samplers(register) -> None:
    from polydiff.masked_samplers import MASKED_SAMPLERS
    from polydiff.samplers import BUILTIN_SAMPLERS

    for name, fn, order, stochastic in BUILTIN_SAMPLERS:
        register(name, fn, order=order, stochastic=stochastic)
    for name, fn, order, stochastic in MASKED_SAMPLERS:
        register(name, fn, order=order, stochastic=stochastic, process="masked")
