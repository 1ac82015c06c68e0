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


def _combine(terms):
    """sum of coefficient * tensor, with one fused multiply-add per term after the first."""
    (c, v), *rest = terms
    out = v * c
    for c, v in rest:
        out = out.add(v, alpha=c)
    return out


def _eps(x, x0, a, s):
    return (x - a * x0) / s


def ddim(model, x, grid, noise=None, callback=None, eta: float = 0.0):
    """DDIM (Song et al. 2021); eta = 0 is deterministic, eta = 1 equals DDPM's posterior."""
    for i in range(len(grid)):
        at, st, as_, ss = grid.alpha[i], grid.sigma[i], grid.alpha[i + 1], grid.sigma[i + 1]
        x0 = model(x, grid.t[i])
        c = eta * ss / st * math.sqrt(max(st**2 - (at / as_) ** 2 * ss**2, 0.0)) if ss > 0 else 0.0
        k = math.sqrt(max(ss**2 - c**2, 0.0)) / st  # x_s = as_ x0 + k st eps, st eps = x - at x0
        x = _combine([(k, x), (as_ - k * at, x0)])
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
        # x~_s = x~_t + (sigma~_s - sigma~_t) d with x~ = x / alpha, d = dx~/dsigma~ = (x - at x0) / st
        k = as_ * (ss / as_ - st / at) / st
        x = _combine([(as_ / at + k, x), (-k * at, x0)])
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
        c = -as_ * math.expm1(-h)  # x_s = (ss/st) x + c d, d = x0 (+ its slope term)
        if x0_prev is not None and ss > 0:
            r = h_prev / h
            x = _combine([(ss / st, x), (c * (1 + 1 / (2 * r)), x0), (-c / (2 * r), x0_prev)])
        else:
            x = _combine([(ss / st, x), (c, x0)])
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


def _exp_weights(us, st, as_, ss, h):
    """Weights of one exponential-integrator step in log-SNR (data prediction) from t to
    s = t + h, with x0 along the step taken as the polynomial in u = (lam - lam_t) / h through
    x0(0) and x0 at the nodes ``us`` (none, one or two), integrated exactly:
    x_s = (ss/st) x + as_ * int_0^1 e^{-h(1-u)} P(u) h du = cx x + c0 x0(0) + sum_j w_j x0(u_j)."""
    phi1 = math.expm1(-h)
    cx, c0 = ss / st, -as_ * phi1
    if not us or ss == 0:
        return cx, c0, []
    phi2 = phi1 / h + 1  # int e^{-h(1-u)} u h du
    A, B = as_ * phi2, -2 * as_ * (phi2 / h - 0.5)  # weights of b1 and b2 in P = x0 + b1 u + b2 u^2
    if len(us) == 1:
        w = [A / us[0]]  # b1 = (x0(u_a) - x0(0)) / u_a
    else:
        ua, ub = us
        det = ua * ub * (ub - ua)
        # b1 = (ub^2 da - ua^2 db) / det, b2 = (ua db - ub da) / det, d = x0(u) - x0(0)
        w = [(A * ub * ub - B * ub) / det, (-A * ua * ua + B * ua) / det]
    return cx, c0 - sum(w), w


def dpmpp_3m(model, x, grid, noise=None, callback=None):
    """DPM-Solver++(3M) (Lu et al. 2022): third-order multistep in log-SNR, data prediction; x0
    extrapolated by the quadratic through the last three x0 (lower order while warming up), and
    the last step to sigma = 0 is the data prediction itself."""
    return _exp_multistep(model, x, grid, callback, corrector=False)


def unipc(model, x, grid, noise=None, callback=None, corrector: bool = True):
    """Predictor-corrector multistep in log-SNR (UniPC's scheme, Zhao et al. 2023, with exact
    exponential-integrator weights). Predictor: DPM-Solver++(3M), x0 extrapolated by the quadratic
    through the last three x0 (lower order while warming up). Corrector, free of extra NFE: once
    x0 is known at the new point, the step just taken is integrated again with the quadratic
    through the new x0 and the two before it (an interpolation, not an extrapolation), and the
    difference is added to the state (after any change made to it by the step's callback)."""
    return _exp_multistep(model, x, grid, callback, corrector)


def _exp_multistep(model, x, grid, callback, corrector):
    hist = []  # (lam, x0) of the last two evaluations, newest first
    last = None  # the step just taken, for the corrector: (lam, st, as_, ss, h, x0, nodes, c0, w)
    for i in range(len(grid)):
        lt, st, as_, ss = grid.lam[i], grid.sigma[i], grid.alpha[i + 1], grid.sigma[i + 1]
        x0 = model(x, grid.t[i])
        if corrector and last is not None:
            lp, stp, asp, ssp, hp, x0p, used, c0p, wp = last
            nodes = [(1.0, x0)] + [(u, v) for u, v in used[:1]]
            _, c0, w = _exp_weights([u for u, _ in nodes], stp, asp, ssp, hp)
            # the corrected step minus the predicted one: only the x0 terms differ
            terms = [(c0 - c0p, x0p)] + [(wj, v) for wj, (_, v) in zip(w, nodes)]
            terms += [(-wj, v) for wj, (_, v) in zip(wp, used)]
            x = x + _combine(terms)
        h = grid.lam[i + 1] - lt
        nodes = []
        if ss > 0:
            nodes = [((l - lt) / h, v) for l, v in hist]
            nodes = [(u, v) for u, v in nodes if math.isfinite(u)]
        cx, c0, w = _exp_weights([u for u, _ in nodes], st, as_, ss, h)
        if ss > 0:
            pred = _combine([(cx, x), (c0, x0)] + [(wj, v) for wj, (_, v) in zip(w, nodes)])
            last = (lt, st, as_, ss, h, x0, nodes, c0, w)
        else:  # the last step, to sigma = 0: the data prediction itself
            pred, last = x0 * as_, None
        hist = [(lt, x0)] + hist[:1]
        x = _step(callback, i, pred, x0)
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
    ("unipc", unipc, 3, False),
]
