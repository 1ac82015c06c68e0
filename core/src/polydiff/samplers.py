"""Samplers: pure functions over a denoiser ``model(x, t) -> x0``.

Every sampler is ``fn(model, x, grid, noise=None, step=None, **options) -> x``. ``x`` is the
state at ``grid.t[0]``; ``grid`` holds the visited times ``t`` with their ``alpha``, ``sigma``
and log-SNR ``lam`` as Python floats (branching on them costs no host sync), ending at
``sigma = 0``; ``noise(x)`` draws per-sample seeded standard normals (seed 0 when not given);
``step``, when given, sees a ``StepInfo`` after every step and may set its ``x``: each sampler
ends step ``i`` with ``x = after_step(step, grid, i, x, x0)``.

Notation: ``x = alpha * x0 + sigma * eps``; step ``i`` goes from ``t`` to ``s`` (``at``, ``st``
are alpha and sigma at t; ``as_``, ``ss`` at s). Two coordinates read like the papers:
- scaled space (Karras et al. 2022): ``x~ = x / alpha`` at noise level ``v = sigma / alpha``,
  where the probability-flow ODE is ``dx~/dv = d = (x~ - x0) / v = eps``;
- log-SNR ``lam = log(alpha / sigma)``, step ``h = lam_s - lam_t`` (Lu et al. 2022), where it is
  solved exactly in x: ``x_s = (ss / st) x_t + as_ * int_0^1 e^{-h (1 - u)} x0(u) h du``.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .contract import StepInfo

if TYPE_CHECKING:
    import torch


def after_step(step, grid, i, x, x0) -> torch.Tensor:
    """End sampler step ``i``: show the state to ``step`` and return it as ``step`` left it.

    ``step`` is the sampler's ``step`` argument: ``None`` (then ``x`` is returned at no cost)
    or a callable given a ``polydiff.StepInfo(i, steps, t, x, x0)``, with ``t`` the time
    reached, that may set ``info.x``."""
    if step is None:
        return x
    info = StepInfo(i, len(grid), grid.t[i + 1], x, x0)
    step(info)
    return info.x


def _seeded(noise, x):
    """``noise``, or per-sample seeded noise from seed 0 when none was given."""
    if noise is not None:
        return noise
    from .noise import SeededNoise

    return SeededNoise.for_batch(0, x.shape[0], x.device, x.dtype)


def _levels(grid, i):
    """alpha and sigma at the two ends of step i: at, st, as_, ss."""
    return grid.alpha[i], grid.sigma[i], grid.alpha[i + 1], grid.sigma[i + 1]


def _combine(terms):
    """sum of coefficient * tensor over ``terms``: one new tensor, then one in-place fused
    multiply-add per tensor after the first; a tensor given twice has its coefficients added first."""
    merged = {}
    for c, v in terms:
        merged[id(v)] = (merged.get(id(v), (0.0, v))[0] + c, v)
    (c, v), *rest = merged.values()
    out = v * c
    for c, v in rest:
        out.add_(v, alpha=c)  # in place: out is this call's own tensor, one allocation in all
    return out


# -- first order: DDIM, its special cases and its ancestral sibling ------------------------------

def ddim(model, x, grid, noise=None, step=None, eta: float = 0.0) -> torch.Tensor:
    """DDIM (Song et al. 2021, eq. 12): ``x_s = as_ x0 + sqrt(ss^2 - c^2) eps + c z`` with
    ``c = eta *`` the std of DDPM's posterior q(x_s | x_t, x0). eta = 0 is deterministic (and
    is Euler's method, see ``euler``); eta = 1 is DDPM (see ``ddpm``)."""
    noise = _seeded(noise, x) if eta > 0 else noise
    for i in range(len(grid)):
        at, st, as_, ss = _levels(grid, i)
        x0 = model(x, grid.t[i])
        c = eta * ss / st * math.sqrt(max(st**2 - (at / as_ * ss) ** 2, 0.0)) if ss > 0 else 0.0
        k = math.sqrt(max(ss**2 - c**2, 0.0)) / st  # x_s = as_ x0 + k st eps, st eps = x - at x0
        x = _combine([(k, x), (as_ - k * at, x0)])
        if c > 0:
            x = x + c * noise(x)
        x = after_step(step, grid, i, x, x0)
    return x


def ddpm(model, x, grid, noise=None, step=None) -> torch.Tensor:
    """Ancestral sampling from the Gaussian posterior q(x_s | x_t, x0) (Ho et al. 2020): DDIM
    with eta = 1, whose step is that posterior's mean plus its std times fresh noise."""
    return ddim(model, x, grid, noise, step, eta=1.0)


def euler(model, x, grid, noise=None, step=None) -> torch.Tensor:
    """Euler's method on the probability-flow ODE in scaled space (Karras et al. 2022, Alg. 1
    without churn): ``x~_s = x~_t + d (v_s - v_t) = x0 + v_s eps``, i.e. ``x_s = as_ x0 + ss eps``,
    which is DDIM's step with eta = 0 (and DPM-Solver++'s first-order one)."""
    return ddim(model, x, grid, noise, step, eta=0.0)


def euler_ancestral(model, x, grid, noise=None, step=None, eta: float = 1.0) -> torch.Tensor:
    """Euler down to the scaled level ``down``, then fresh noise of scaled std ``up`` to the next
    level, ``down^2 + up^2 = v_s^2`` (k-diffusion's ancestral step); eta = 0 is ``euler``."""
    noise = _seeded(noise, x)
    for i in range(len(grid)):
        at, st, as_, ss = _levels(grid, i)
        x0 = model(x, grid.t[i])
        d = (x - at * x0) / st
        vt, vs = st / at, ss / as_
        up = min(vs, eta * math.sqrt(max(vs**2 * (vt**2 - vs**2) / vt**2, 0.0)))
        down = math.sqrt(max(vs**2 - up**2, 0.0))
        x = as_ * (x0 + down * d)  # x~ = x~_t + d (down - v_t)
        if up > 0:
            x = x + as_ * up * noise(x)
        x = after_step(step, grid, i, x, x0)
    return x


# -- second order, one step at a time ------------------------------------------------------------

def heun(model, x, grid, noise=None, step=None) -> torch.Tensor:
    """Heun's method (Karras et al. 2022, Alg. 1) taken in log-SNR: an Euler (DDIM) step, then
    the step again with x0 along it the straight line between the x0 at its two ends, integrated
    exactly (the trapezoid rule of the exponential integrator, DPM-Solver-2's Heun form). Why not
    Karras's scaled-space form: there the end slope ``(x~_s - x0_s) / v_s`` multiplies the change
    in x0 by ``v_t / v_s``, which blows up on grids with large log-SNR steps (logsnr, karras and
    uniform spacings near sigma = 0); here every weight lies in [0, 1]. For small steps the two
    agree to second order. The last step, to sigma = 0, is Euler's (the data prediction)."""
    for i in range(len(grid)):
        st, as_, ss = grid.sigma[i], grid.alpha[i + 1], grid.sigma[i + 1]
        x0 = model(x, grid.t[i])
        if ss == 0:
            x_next = as_ * x0
        else:
            first = [(ss / st, x)]
            x_euler = _combine(first + [(-as_ * math.expm1(grid.lam[i] - grid.lam[i + 1]), x0)])
            x0_end = model(x_euler, grid.t[i + 1])
            x_next = _combine(first + _exp_terms(grid, i, [(grid.lam[i], x0), (grid.lam[i + 1], x0_end)]))
        x = after_step(step, grid, i, x_next, x0)
    return x


# -- multistep in log-SNR (DPM-Solver++, UniPC) --------------------------------------------------

# The largest ratio of sum |w_k| to |sum w_k| a multistep step may have: 44/12 for third order
# on an evenly spaced grid (Adams-Bashforth's 23/12, -16/12, 5/12), so even grids keep full order.
AMPLIFICATION = 4.0


def dpmpp_2m_sde(model, x, grid, noise=None, step=None, eta: float = 1.0) -> torch.Tensor:
    """DPM-Solver++(2M) and its SDE variant (Lu et al. 2022, Alg. 2; k-diffusion's midpoint form):
    ``x_s = (ss/st) e^{-eta h} x + as_ (1 - e^{-(1 + eta) h}) D + ss sqrt(1 - e^{-2 eta h}) z``,
    ``D = (1 + 1/(2r)) x0 - 1/(2r) x0_prev`` with ``r = h_prev / h``; D = x0 on the first step,
    and the last, to sigma = 0, is the data prediction itself. Where the step before was much
    shorter (``1 + 1/r > AMPLIFICATION``) the step is first order, as on the first step, since
    the extrapolation would multiply x0's error. eta = 0 is ``dpmpp_2m``."""
    noise = _seeded(noise, x) if eta > 0 else noise
    prev = None  # (h, x0) of the step before
    for i in range(len(grid)):
        st, as_, ss = grid.sigma[i], grid.alpha[i + 1], grid.sigma[i + 1]
        h = grid.lam[i + 1] - grid.lam[i]
        x0 = model(x, grid.t[i])
        if ss == 0:
            x = as_ * x0
        else:
            cx, c = ss / st * math.exp(-eta * h), -as_ * math.expm1(-(1 + eta) * h)
            r = prev[0] / h if prev is not None else 0.0
            if r * (AMPLIFICATION - 1) < 1:  # first step, or D's weights would sum to more than
                x = _combine([(cx, x), (c, x0)])  # AMPLIFICATION in size: first order (see there)
            else:
                x = _combine([(cx, x), (c * (1 + 1 / (2 * r)), x0), (-c / (2 * r), prev[1])])
            if eta > 0:
                x = x + ss * math.sqrt(-math.expm1(-2 * eta * h)) * noise(x)
        prev = h, x0
        x = after_step(step, grid, i, x, x0)
    return x


def dpmpp_2m(model, x, grid, noise=None, step=None) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2): second-order multistep in log-SNR, data
    prediction; ``dpmpp_2m_sde`` with eta = 0."""
    return dpmpp_2m_sde(model, x, grid, noise, step, eta=0.0)


def _exp_terms(grid, i, points):
    """The x0 part of an exponential-integrator step i in log-SNR, data prediction:
    ``as_ * int_0^1 e^{-h(1-u)} P(u) h du`` with P the polynomial in ``u = (lam - lam_t) / h``
    through ``points`` [(lam, x0)], the first at lam_t; integrated exactly, it is
    ``sum_k w_k x0_k``, w_k that integral for the Lagrange basis polynomial L_k. Returns [(w_k, x0_k)].
    """
    lt, ls = grid.lam[i], grid.lam[i + 1]
    h = ls - lt
    us = [0.0 if lam == lt else 1.0 if lam == ls else (lam - lt) / h for lam, _ in points]
    nodes = [(u, v) for u, (_, v) in zip(us, points) if math.isfinite(u)]  # none at lam = -inf
    m0 = -math.expm1(-h)  # m_n = int_0^1 e^{-h(1-u)} u^n h du = 1 - n m_{n-1} / h
    m1 = 1 - m0 / h
    m2 = 1 - 2 * m1 / h
    terms = []
    for k, (uk, v) in enumerate(nodes):
        others = [u for j, (u, _) in enumerate(nodes) if j != k]  # L_k = prod (u - u_j) / (uk - u_j)
        if not others:
            w = m0
        elif len(others) == 1:
            w = (m1 - others[0] * m0) / (uk - others[0])
        else:
            a, b = others
            w = (m2 - (a + b) * m1 + a * b * m0) / ((uk - a) * (uk - b))
        terms.append((grid.alpha[i + 1] * w, v))
    return terms


def _stable_terms(grid, i, points):
    """``_exp_terms`` through as many of ``points`` (newest first) as keep the step stable: the
    order drops while the polynomial's weights would amplify x0's errors more than third order
    on an even grid does. On uneven grids (e.g. even in t, where late log-SNR steps are many
    times the earlier ones) extrapolating a quadratic to the far end multiplies the error."""
    for n in range(len(points), 0, -1):
        terms = _exp_terms(grid, i, points[:n])
        if n == 1 or sum(abs(w) for w, _ in terms) <= AMPLIFICATION * abs(sum(w for w, _ in terms)):
            return terms


def _exp_multistep(model, x, grid, step, corrector):
    """Predictor: x0 along step i is the polynomial through the last three x0 (fewer while
    warming up, or where that would be unstable), extrapolated; the last step, to sigma = 0, is
    the data prediction itself. Corrector: once x0 is known at the end of step i - 1, that step
    is integrated again through it and the x0 before it (now an interpolation) and the
    difference from the predictor's terms added to the state."""
    past, predicted = [], None  # (lam, x0) of the last evaluations, newest first; last step's terms
    for i in range(len(grid)):
        x0 = model(x, grid.t[i])
        if corrector and predicted is not None:
            corrected = _stable_terms(grid, i - 1, [past[0], (grid.lam[i], x0)] + past[1:2])
            x = x + _combine(corrected + [(-w, v) for w, v in predicted])
        past = [(grid.lam[i], x0)] + past[:2]
        if grid.sigma[i + 1] == 0:
            x = grid.alpha[i + 1] * x0
        else:
            predicted = _stable_terms(grid, i, past)
            x = _combine([(grid.sigma[i + 1] / grid.sigma[i], x)] + predicted)
        x = after_step(step, grid, i, x, x0)
    return x


def dpmpp_3m(model, x, grid, noise=None, step=None) -> torch.Tensor:
    """DPM-Solver++(3M) (Lu et al. 2022): third-order multistep in log-SNR, data prediction, with
    exact exponential-integrator weights (x0 extrapolated by the quadratic through the last
    three x0); the last step, to sigma = 0, is the data prediction itself."""
    return _exp_multistep(model, x, grid, step, corrector=False)


def unipc(model, x, grid, noise=None, step=None, corrector: bool = True) -> torch.Tensor:
    """UniPC's predictor-corrector scheme (Zhao et al. 2023) with exact exponential-integrator
    weights: the ``dpmpp_3m`` predictor, and a corrector free of extra NFE that integrates the
    step just taken again through the x0 found at its end (added to the state after any change
    ``step`` made to it); ``corrector=False`` is ``dpmpp_3m``."""
    return _exp_multistep(model, x, grid, step, corrector)


BUILTIN_SAMPLERS = [
    # name, function, order, stochastic
    ("ddpm", ddpm, 1, True),
    ("ddim", ddim, 1, False),
    ("euler", euler, 1, False),
    ("euler_ancestral", euler_ancestral, 1, True),
    ("heun", heun, 2, False),
    ("dpmpp_2m", dpmpp_2m, 2, False),
    ("dpmpp_2m_sde", dpmpp_2m_sde, 2, True),
    ("dpmpp_3m", dpmpp_3m, 3, False),
    ("unipc", unipc, 3, False),
]
