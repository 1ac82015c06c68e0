"""``diffuse``: the forward (noising) process of any registered schedule, per-sample seeded.

Gaussian schedules give ``x_t = alpha(t) x0 + sigma(t) eps``; the masked process hides each
token independently with probability ``1 - alpha(t)``. One noise draw per sample is shared by
all the times asked for, so a strip of states shows the same noise growing (and, for tokens,
a masked token stays masked at every later time); each state has exactly the marginal law of
the process at its time.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .errors import InvalidInputError
from .loop import resolve
from .masked import mask_tokens
from .noise import SeededNoise


def diffuse(x0: torch.Tensor, times: Sequence[float] | torch.Tensor, *, schedule="vp-linear", seed: int = 0,
            mask_id: int | None = None) -> torch.Tensor:
    """The states of ``x0`` [n, ...] at every time in ``times`` (each in [0, 1]): a tensor
    ``[len(times), n, ...]``. Sample i's noise comes from seed ``seed + i``, so it does not
    depend on the batch. A masked schedule needs integer tokens and ``mask_id``."""
    schedule = resolve("schedules", schedule)
    masked = getattr(schedule, "process", "gaussian") == "masked"
    if not isinstance(x0, torch.Tensor) or x0.dim() < 1 or x0.shape[0] < 1:
        raise InvalidInputError("x0 must be a tensor [n, ...] with at least one sample")
    if masked != (not x0.is_floating_point()):
        raise InvalidInputError(f"x0: the {'masked' if masked else 'Gaussian'} schedule {schedule.name!r} "
                                f"noises {'integer tokens' if masked else 'a float tensor'}, got {x0.dtype}")
    if masked and (mask_id is None or isinstance(mask_id, bool) or not isinstance(mask_id, int) or mask_id < 0):
        raise InvalidInputError(f"mask_id: the masked schedule {schedule.name!r} needs the mask token's id")
    t = torch.as_tensor(times, dtype=torch.float64).reshape(-1)
    if t.numel() == 0 or not bool(torch.isfinite(t).all()) or bool((t < 0).any() | (t > 1).any()):
        raise InvalidInputError(f"times must be one or more numbers in [0, 1], got {list(map(float, t))}")
    n, device = x0.shape[0], x0.device
    t = t.clamp(max=schedule.t_max)
    alpha = schedule.alpha(t)
    if masked:
        u = SeededNoise.for_batch(seed, n, device).rand(x0.shape[1:])
        return torch.stack([mask_tokens(x0, a.expand(n).to(device), mask_id, u) for a in alpha])
    eps = SeededNoise.for_batch(seed, n, device, x0.dtype).randn(x0.shape[1:])
    sigma = schedule.sigma(t)
    return torch.stack([a.to(x0.dtype) * x0 + s.to(x0.dtype) * eps for a, s in zip(alpha, sigma)])
