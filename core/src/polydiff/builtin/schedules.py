"""Built-in noise schedules and step spacings."""
from polydiff.hookspecs import hookimpl


@hookimpl
def register_schedules(register) -> None:
    from polydiff.masked import MaskCosine, MaskLinear
    from polydiff.schedules import EDM, RectifiedFlow, VPCosine, VPLinear, VPScaledLinear
    from polydiff.spacing import BUILTIN_SPACINGS

    for schedule in (VPLinear(), VPCosine(), VPScaledLinear(), EDM(), RectifiedFlow(), MaskLinear(), MaskCosine()):
        register(schedule)
    for spacing in BUILTIN_SPACINGS:
        register(spacing)
