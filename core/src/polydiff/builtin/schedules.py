"""Built-in noise schedules and step spacings."""
from polydiff.hookspecs import hookimpl


@hookimpl
def register_schedules(register):
    from polydiff.schedules import EDM, RectifiedFlow, VPCosine, VPLinear, VPScaledLinear
    from polydiff.spacing import BUILTIN_SPACINGS

    for schedule in (VPLinear(), VPCosine(), VPScaledLinear(), EDM(), RectifiedFlow()):
        register(schedule)
    for spacing in BUILTIN_SPACINGS:
        register(spacing)
