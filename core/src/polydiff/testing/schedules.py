"""Schedule and spacing checks: the noise levels are monotone and invertible with the right
ends, and every spacing gives a valid grid on every schedule."""
from __future__ import annotations

import torch

from .errors import fail
from .support import components, single_thread


@single_thread
def check_schedule(schedule, *, terminal_logsnr: float = -2.0) -> str:
    """alpha, sigma and the log-SNR are finite and monotone on [t_min, t_max], ``t_of_lam``
    inverts ``lam``; the ends are right: clean data at t = 0 (alpha = 1, sigma = 0 within 1e-2)
    and noise dominating at t_max (log-SNR <= ``terminal_logsnr``)."""
    from ..schedules import NoiseSchedule, VPSchedule

    sch = components().schedules.get_named(schedule) if isinstance(schedule, str) else schedule
    if not isinstance(sch, NoiseSchedule):
        fail(f"schedule {schedule!r} is not a NoiseSchedule")
    name = f"schedule {sch.name!r}"
    if not 0.0 <= sch.t_min < sch.t_max <= 1.0:
        fail(f"{name}: need 0 <= t_min < t_max <= 1, got t_min={sch.t_min}, t_max={sch.t_max}")
    t = torch.linspace(sch.t_min, sch.t_max, 400, dtype=torch.float64)
    alpha, sigma, lam = sch.alpha(t), sch.sigma(t), sch.lam(t)
    for what, v in (("alpha", alpha), ("sigma", sigma), ("lam", lam)):
        if not torch.is_tensor(v) or v.shape != t.shape or not torch.isfinite(v).all():
            fail(f"{name}: {what}(t) is not finite with t's shape on [t_min, t_max]")
    if not ((alpha > 0).all() and (sigma > 0).all()):
        fail(f"{name}: alpha and sigma must be positive on [t_min, t_max]")
    if not (alpha[1:] <= alpha[:-1]).all():
        fail(f"{name}: alpha increases with t")
    if not (sigma[1:] > sigma[:-1]).all():
        fail(f"{name}: sigma does not strictly increase with t")
    if not (lam[1:] < lam[:-1]).all():
        fail(f"{name}: the log-SNR does not strictly decrease with t")
    if not torch.allclose(lam, torch.log(alpha / sigma), atol=1e-9):
        fail(f"{name}: lam(t) is not log(alpha(t) / sigma(t))")
    pair = sch.alpha_sigma(t)
    if not (torch.allclose(pair[0], alpha, atol=1e-12) and torch.allclose(pair[1], sigma, atol=1e-12)):
        fail(f"{name}: alpha_sigma(t) disagrees with (alpha(t), sigma(t)); override both or neither")
    back = sch.t_of_lam(lam)
    if not torch.allclose(back, t, rtol=1e-6, atol=1e-9):
        fail(f"{name}: t_of_lam(lam(t)) is off by up to {(back - t).abs().max().item():.3g}")
    if isinstance(sch, VPSchedule) and not torch.allclose(alpha**2 + sigma**2, torch.ones_like(t), atol=1e-12):
        fail(f"{name}: a VP schedule needs alpha^2 + sigma^2 = 1")
    zero = torch.zeros(1, dtype=torch.float64)
    a0, s0 = float(sch.alpha(zero)[0]), float(sch.sigma(zero)[0])
    if abs(a0 - 1.0) > 1e-2 or abs(s0) > 1e-2:
        fail(f"{name}: at t = 0 expected clean data (alpha 1, sigma 0), got alpha {a0:.4g}, sigma {s0:.4g}")
    end = float(lam[-1])
    if end > terminal_logsnr:
        fail(f"{name}: log-SNR {end:.2f} at t_max = {sch.t_max}; noise must dominate there "
             f"(log-SNR <= {terminal_logsnr})")
    return f"monotone on [{sch.t_min:g}, {sch.t_max:g}]; log-SNR {float(lam[0]):.1f} -> {end:.1f}; invertible"


@single_thread
def check_spacing(spacing, schedules=None) -> str:
    """For every schedule (default: all registered), 1 to 100 steps, from t_max or from half of
    it: ``steps + 1`` strictly decreasing times from the start (or below it, for a spacing
    made with ``starts_at_t_start=False``) to 0, and a grid of ``steps``
    steps ending at sigma = 0."""
    from ..loop import build_grid
    from ..spacing import Spacing

    sp = components().spacings.get_named(spacing) if isinstance(spacing, str) else spacing
    if not isinstance(sp, Spacing):
        fail(f"spacing {spacing!r} is not a Spacing")
    if schedules is None:
        schedules = list(components().schedules.values())
    for sch in schedules:
        sch = components().schedules.get_named(sch) if isinstance(sch, str) else sch
        for steps in (1, 2, 5, 20, 100):
            for t_start in (None, 0.5 * sch.t_max):
                where = f"spacing {sp.name!r} on {sch.name!r}, {steps} steps from {t_start or sch.t_max:g}"
                times = sp(sch, steps, t_start)
                if len(times) != steps + 1:
                    fail(f"{where}: {len(times)} times, expected {steps + 1}")
                start = sch.t_max if t_start is None else t_start
                first_ok = times[0] == start if sp.starts_at_t_start else 0.0 < times[0] <= start
                if not first_ok or times[-1] != 0.0:
                    fail(f"{where}: times run {times[0]!r} -> {times[-1]!r}, expected "
                         + (f"exactly {start!r}" if sp.starts_at_t_start else f"at most {start!r}") + " -> 0.0")
                if not all(b < a for a, b in zip(times, times[1:])):
                    fail(f"{where}: times do not strictly decrease")
                grid = build_grid(sch, sp, steps)
                if len(grid) != steps or grid.sigma[-1] != 0.0:
                    fail(f"{where}: the grid has {len(grid)} steps ending at sigma {grid.sigma[-1]}")
                if not all(b > a for a, b in zip(grid.lam, grid.lam[1:])):
                    fail(f"{where}: the log-SNR does not increase along the grid")
    return f"valid on {len(schedules)} schedules, 1-100 steps"
