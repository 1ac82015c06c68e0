"""Core's implementation of ``run_generation``; plugins may wrap it (``wrapper=True``)."""
from polydiff.hookspecs import hookimpl


@hookimpl(trylast=True)
def run_generation(request, context):
    from polydiff.generation import run

    return run(request, context)
