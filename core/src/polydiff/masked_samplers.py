"""Samplers for the masked process: pure functions over ``model(x, t) -> logits``.

Every sampler is ``fn(model, x, grid, noise=None, step=None, *, mask_id, **options) -> x``
with ``x`` the tokens [n, L] at ``grid.t[0]`` (``mask_id`` where unknown) and ``grid`` the
visited times with ``alpha`` = the probability that a token is visible, rising to 1 at the
end. Visible tokens never change (MDLM's carry-over), so a ``Replacement`` of known tokens is
exact. ``noise.rand`` gives per-sample seeded uniforms: sample i of seed s is the same in any
batch. A denoised token is drawn by inverse CDF from one uniform per position (``temperature``
0 takes the most probable token). Nothing here waits for the device.
"""
from __future__ import annotations

import math

import torch

from .errors import InvalidInputError
from .masked import never_mask
from .samplers import after_step


def _uniforms(noise, x):
    if noise is not None:
        return noise
    from .noise import SeededNoise

    return SeededNoise.for_batch(0, x.shape[0], x.device)


def _denoise(model, x, t, noise, mask_id: int, temperature: float):
    """The denoiser's log-probabilities [n, L, V] at time t and one token drawn from them per position."""
    logp = torch.log_softmax(never_mask(model(x, t).float(), mask_id), dim=-1)
    if temperature == 0:
        return logp, logp.argmax(-1)
    probs = torch.softmax(logp / temperature, dim=-1)
    cdf = probs.cumsum(-1)
    u = noise.rand(x.shape[1:]).to(cdf.device) * cdf[..., -1]
    return logp, torch.searchsorted(cdf, u.unsqueeze(-1)).squeeze(-1).clamp_max(probs.shape[-1] - 1)


def mdlm(model, x, grid, noise=None, step=None, *, mask_id: int, temperature: float = 1.0) -> torch.Tensor:
    """Ancestral sampling (Sahoo et al. 2024): from t to s each masked token is revealed with
    probability ``(alpha_s - alpha_t) / (1 - alpha_t)`` as a draw from ``p(x0 | x_t)``."""
    noise = _uniforms(noise, x)
    for i in range(len(grid)):
        at, as_ = grid.alpha[i], grid.alpha[i + 1]
        _, x0 = _denoise(model, x, grid.t[i], noise, mask_id, temperature)
        reveal = noise.rand(x.shape[1:]).to(x.device) < (as_ - at) / max(1.0 - at, 1e-12)
        x = torch.where((x == mask_id) & reveal, x0, x)
        x = after_step(step, grid, i, x, x0)
    return x


def _reveal_confident(x, x0, logp, fraction: float, allowed, mask_id: int) -> torch.Tensor:
    """Reveal, per sample, ``fraction`` of the masked positions in ``allowed``: those where the
    denoiser is surest, by its top probability (LLaDA's low-confidence remasking; at temperature
    0 that is the drawn token's own probability). The choice does not look at the draw, so each
    revealed token is an exact draw given the state: one token per step samples the true law."""
    candidates = (x == mask_id) & allowed
    confidence = logp.amax(-1).masked_fill(~candidates, -torch.inf)
    count = torch.round(candidates.sum(dim=1) * fraction)
    rank = confidence.argsort(dim=1, descending=True, stable=True).argsort(dim=1)
    return torch.where(candidates & (rank < count[:, None]), x0, x)


def blocks(model, x, grid, noise=None, step=None, *, mask_id: int, temperature: float = 1.0,
           block: int = 8) -> torch.Tensor:
    """Semi-autoregressive remasking (Nie et al. 2025, LLaDA): the positions in blocks of
    ``block``, left to right; each block gets its share of the steps, over which the masked
    tokens in it are revealed most confident first, as many per step as the grid's alphas
    reveal, while the blocks to its right stay masked."""
    if block < 1:
        raise InvalidInputError(f"block: the block length must be at least 1, got {block}")
    length, steps = x.shape[1], len(grid)
    count = math.ceil(length / block)
    if steps < count:
        raise InvalidInputError(f"steps: the blocks sampler needs a step per block; {length} tokens in blocks "
                                f"of {block} are {count} blocks, more than the {steps} steps")
    noise, position, i = _uniforms(noise, x), torch.arange(length, device=x.device), 0
    for b in range(count):
        allowed = ((position >= b * block) & (position < (b + 1) * block))[None]
        share = steps // count + (b < steps % count)
        ends = [round(k * steps / share) for k in range(share + 1)]  # this block's walk down the grid
        for k in range(share):
            at, as_ = grid.alpha[ends[k]], grid.alpha[ends[k + 1]]
            logp, x0 = _denoise(model, x, grid.t[ends[k]], noise, mask_id, temperature)
            x = _reveal_confident(x, x0, logp, (as_ - at) / max(1.0 - at, 1e-12), allowed, mask_id)
            x = after_step(step, grid, i, x, x0)
            i += 1
    return x


def remask(model, x, grid, noise=None, step=None, *, mask_id: int, temperature: float = 1.0) -> torch.Tensor:
    """Confidence-based remasking over the whole sequence: ``blocks`` with one block."""
    return blocks(model, x, grid, noise, step, mask_id=mask_id, temperature=temperature, block=x.shape[1])


# (name, fn, order, stochastic): registered for the masked process by the built-in plugin
MASKED_SAMPLERS = [("mdlm", mdlm, 1, True), ("remask", remask, 1, True), ("blocks", blocks, 1, True)]
