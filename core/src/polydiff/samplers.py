"""Samplers: pure functions over a denoiser ``model(x, t) -> x0_hat``.

Every sampler has the signature ``fn(model, x, grid, noise=None, callback=None, **options)``
where ``grid`` holds the visited times with their alpha, sigma and log-SNR ``lam`` as Python
floats (so branching on them costs no host sync), ``noise(x)`` draws per-sample seeded
standard normals, and ``callback(i, x, x0)`` returns the (possibly changed) state.
Notation: ``x = alpha * x0 + sigma * eps``; ``t`` is the current time, ``s`` the next one;
``sigma/alpha`` is the scaled noise level of the equivalent variance-exploding ODE.
"""
from __future__ import annotations

import math


def _step(callback, i, x, x0):
    return x if callback is None else callback(i, x, x0)


def _eps(x, x0, a, s):
    return (x - a * x0) / s


def ddim(model, x, grid, noise=None, callback=None, eta: float = 0.0):
    """DDIM (Song et al. 2021); eta = 0 is deterministic, eta = 1 equals DDPM's posterior."""
    for i in range(len(grid)):
        at, st, as_, ss = grid.alpha[i], grid.sigma[i], grid.alpha[i + 1], grid.sigma[i + 1]
        x0 = model(x, grid.t[i])
        eps = _eps(x, x0, at, st)
        c = eta * ss / st * math.sqrt(max(st**2 - (at / as_) ** 2 * ss**2, 0.0)) if ss > 0 else 0.0
        x = as_ * x0 + math.sqrt(max(ss**2 - c**2, 0.0)) * eps
        if c > 0:
            x = x + c * noise(x)
        x = _step(callback, i, x, x0)
    return x


def ddpm(model, x, grid, noise=None, callback=None):
    """Ancestral sampling from the Gaussian posterior q(x_s | x_t, x0_hat) (Ho et al. 2020)."""
    for i in range(len(grid)):
        at, st, as_, ss = grid.alpha[i], grid.sigma[i], grid.alpha[i + 1], grid.sigma[i + 1]
        x0 = model(x, grid.t[i])
        a_ts = at / as_
        var_ts = st**2 - a_ts**2 * ss**2  # variance of x_t given x_s
        x = (a_ts * ss**2 / st**2) * x + (as_ * var_ts / st**2) * x0
        if ss > 0:
            x = x + math.sqrt(max(var_ts, 0.0) * ss**2 / st**2) * noise(x)
        x = _step(callback, i, x, x0)
    return x


def euler(model, x, grid, noise=None, callback=None):
    """Euler on the probability-flow ODE dx~/dsigma~ = eps in scaled space (x~ = x/alpha)."""
    for i in range(len(grid)):
        at, st, as_, ss = grid.alpha[i], grid.sigma[i], grid.alpha[i + 1], grid.sigma[i + 1]
        x0 = model(x, grid.t[i])
        d = _eps(x, x0, at, st)  # dx~/dsigma~
        vt, vs = st / at, ss / as_
        x = as_ * ((x0 + vt * d) + (vs - vt) * d)  # x~_s = x~_t + (sigma~_s - sigma~_t) d
        x = _step(callback, i, x, x0)
    return x


def euler_ancestral(model, x, grid, noise=None, callback=None, eta: float = 1.0):
    """Euler down to sigma_down, then fresh noise up to the next level (k-diffusion's ancestral step)."""
    for i in range(len(grid)):
        at, st, as_, ss = grid.alpha[i], grid.sigma[i], grid.alpha[i + 1], grid.sigma[i + 1]
        x0 = model(x, grid.t[i])
        d = _eps(x, x0, at, st)
        vt, vs = st / at, ss / as_  # scaled noise levels
        up = min(vs, eta * math.sqrt(max(vs**2 * (vt**2 - vs**2) / vt**2, 0.0)))
        down = math.sqrt(max(vs**2 - up**2, 0.0))
        x = as_ * (x0 + down * d)
        if up > 0:
            x = x + as_ * up * noise(x)
        x = _step(callback, i, x, x0)
    return x


def heun(model, x, grid, noise=None, callback=None):
    """Heun's second-order method in scaled space (Karras et al. 2022); Euler for the last step to 0."""
    for i in range(len(grid)):
        at, st, as_, ss = grid.alpha[i], grid.sigma[i], grid.alpha[i + 1], grid.sigma[i + 1]
        x0 = model(x, grid.t[i])
        d = _eps(x, x0, at, st)
        vt, vs = st / at, ss / as_
        x_euler = as_ * (x0 + vs * d)
        if ss == 0:
            x = x_euler
        else:
            d2 = _eps(x_euler, model(x_euler, grid.t[i + 1]), as_, ss)
            x = as_ * (x0 + vt * d + (vs - vt) * (d + d2) / 2)
        x = _step(callback, i, x, x0)
    return x


def dpmpp_2m(model, x, grid, noise=None, callback=None):
    """DPM-Solver++(2M) (Lu et al. 2022): second-order multistep in log-SNR, data prediction."""
    x0_prev, h_prev = None, None
    for i in range(len(grid)):
        st, as_, ss = grid.sigma[i], grid.alpha[i + 1], grid.sigma[i + 1]
        h = grid.lam[i + 1] - grid.lam[i]
        x0 = model(x, grid.t[i])
        d = x0
        if x0_prev is not None and ss > 0:
            r = h_prev / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
        x = (ss / st) * x - as_ * math.expm1(-h) * d
        x0_prev, h_prev = x0, h
        x = _step(callback, i, x, x0)
    return x


def dpmpp_2m_sde(model, x, grid, noise=None, callback=None, eta: float = 1.0):
    """DPM-Solver++(2M) SDE variant (midpoint form): the ODE step damped by eta plus fresh noise."""
    x0_prev, h_prev = None, None
    for i in range(len(grid)):
        st, as_, ss = grid.sigma[i], grid.alpha[i + 1], grid.sigma[i + 1]
        h = grid.lam[i + 1] - grid.lam[i]
        x0 = model(x, grid.t[i])
        if ss == 0:
            x = as_ * x0
        else:
            eh = eta * h
            w = -math.expm1(-h - eh)
            x = (ss / st) * math.exp(-eh) * x + as_ * w * x0
            if x0_prev is not None:
                x = x + as_ * 0.5 * w * (h / h_prev) * (x0 - x0_prev)
            if eta > 0:
                x = x + ss * math.sqrt(-math.expm1(-2 * eh)) * noise(x)
        x0_prev, h_prev = x0, h
        x = _step(callback, i, x, x0)
    return x


def dpmpp_3m(model, x, grid, noise=None, callback=None):
    """DPM-Solver++(3M): third-order multistep in log-SNR; lower order to warm up and at the end."""
    hist = []  # (x0, h) of earlier steps, newest first
    for i in range(len(grid)):
        st, as_, ss = grid.sigma[i], grid.alpha[i + 1], grid.sigma[i + 1]
        h = grid.lam[i + 1] - grid.lam[i]
        x0 = model(x, grid.t[i])
        phi1 = math.expm1(-h)
        x = (ss / st) * x - as_ * phi1 * x0
        if ss > 0 and hist:
            phi2 = phi1 / h + 1
            r0 = hist[0][1] / h
            d1_0 = (x0 - hist[0][0]) / r0
            if len(hist) == 1:
                x = x + as_ * phi2 * d1_0
            else:
                r1 = hist[1][1] / h
                d1_1 = (hist[0][0] - hist[1][0]) / r1
                d1 = d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1)
                d2 = (d1_0 - d1_1) / (r0 + r1)  # ~ h^2 x0''/2
                phi3 = phi2 / h - 0.5
                x = x + as_ * phi2 * d1 - 2 * as_ * phi3 * d2  # Taylor term h^2 x0'' phi3
        hist = [(x0, h)] + hist[:1]
        x = _step(callback, i, x, x0)
    return x


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
]
