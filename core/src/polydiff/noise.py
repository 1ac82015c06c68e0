"""Per-sample seeded noise: row i of every draw comes from its own generator seeded ``seed + i``,
so a sample's result does not depend on the batch it is generated in."""
from __future__ import annotations

import torch


class SeededNoise:
    def __init__(self, seeds, device="cpu", dtype=torch.float32):
        self.seeds = [int(s) for s in seeds]
        self.device, self.dtype = torch.device(device), dtype
        self.generators = [torch.Generator(self.device).manual_seed(s) for s in self.seeds]

    @classmethod
    def for_batch(cls, seed: int, n: int, device="cpu", dtype=torch.float32) -> "SeededNoise":
        return cls(range(seed, seed + n), device, dtype)

    def __call__(self, like: torch.Tensor) -> torch.Tensor:
        """A standard normal tensor shaped like ``like``, one generator per row."""
        return self.randn(like.shape[1:])

    def randn(self, shape) -> torch.Tensor:
        """Standard normals ``[len(seeds), *shape]``, row i from seed i."""
        return self._draw(torch.randn, shape)

    def rand(self, shape) -> torch.Tensor:
        """Uniforms on [0, 1) ``[len(seeds), *shape]``, row i from seed i (e.g. a decoder's
        random phases: a sample's output stays independent of its batch)."""
        return self._draw(torch.rand, shape)

    def _draw(self, fn, shape) -> torch.Tensor:
        return torch.stack([fn(tuple(shape), generator=g, device=self.device, dtype=self.dtype)
                            for g in self.generators])
