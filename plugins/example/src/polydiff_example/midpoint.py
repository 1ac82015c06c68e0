"""An extra sampler, registered by a plugin like any built-in one."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def midpoint(model, x, grid, noise=None, step=None) -> torch.Tensor:
    """Explicit midpoint (RK2) on the probability-flow ODE in scaled space.

    The midpoint is the geometric mean of the two noise levels; the last step to 0 is Euler."""
    import math

    import polydiff
    import torch

    for i in range(len(grid)):
        at, st, as_, ss = grid.alpha[i], grid.sigma[i], grid.alpha[i + 1], grid.sigma[i + 1]
        x0 = model(x, grid.t[i])
        d = (x - at * x0) / st
        vt, vs = st / at, ss / as_
        if ss == 0:
            x = as_ * (x0 + vs * d)
        else:
            vm = math.sqrt(vt * vs)
            tm = float(grid.schedule.t_of_lam(torch.tensor(-math.log(vm), dtype=torch.float64)))
            am, sm = grid.schedule.floats(tm)
            xm = am * (x0 + vm * d)
            dm = (xm - am * model(xm, tm)) / sm
            x = as_ * (x0 + vt * d + (vs - vt) * dm)
        x = polydiff.after_step(step, grid, i, x, x0)
    return x
