"""A tiny denoiser and a 2-D Gaussian mixture, shared by test_training.py and the scripts it
runs in subprocesses (torchrun, the kill test)."""
from __future__ import annotations

import math
import time

import torch

CENTERS = torch.tensor([[1.5, 1.5], [-1.5, 1.5], [1.5, -1.5], [-1.5, -1.5]])
NULL = len(CENTERS)  # the class index that means "no condition"


class TinyMLP(torch.nn.Module):
    """net(x, t, cond) for 2-D points, with a class embedding and a dropout layer (so the
    trainer's control of the global RNG is exercised too)."""

    def __init__(self, hidden: int = 64, dropout: float = 0.0):
        super().__init__()
        self.embed = torch.nn.Embedding(NULL + 1, hidden)
        self.inp = torch.nn.Linear(2 + 3, hidden)
        self.body = torch.nn.Sequential(
            torch.nn.SiLU(), torch.nn.Dropout(dropout), torch.nn.Linear(hidden, hidden),
            torch.nn.SiLU(), torch.nn.Linear(hidden, 2),
        )

    def forward(self, x, t, cond=None):
        feats = torch.stack([t, torch.sin(math.pi * t), torch.cos(math.pi * t)], dim=1)
        h = self.inp(torch.cat([x, feats], dim=1))
        if cond is not None:
            h = h + self.embed(cond)
        return self.body(h)


def mixture(batch_size: int, generator: torch.Generator, delay: float = 0.0):
    """(x0, class) from four Gaussians; ``delay`` slows a run down for the kill test."""
    if delay:
        time.sleep(delay)
    k = torch.randint(0, len(CENTERS), (batch_size,), generator=generator)
    return CENTERS[k] + 0.2 * torch.randn(batch_size, 2, generator=generator), k


def null_cond(n: int) -> torch.Tensor:
    return torch.full((n,), NULL, dtype=torch.long)


def make_trainer(out, *, steps=40, init_seed=0, delay=0.0, **overrides):
    """A conditional trainer with dropout everywhere; ``init_seed`` sets the initial weights."""
    from polydiff import TrainConfig, Trainer

    torch.manual_seed(init_seed)
    model = TinyMLP(dropout=0.1)
    config = dict(steps=steps, batch_size=64, lr=3e-3, ema_decay=0.99, cond_dropout=0.2,
                  log_every=10, checkpoint_every=10, out=str(out), progress=False, device="cpu",
                  seed=7)
    config.update(overrides)
    data = (lambda n, g: mixture(n, g, delay)) if delay else mixture
    return Trainer(model, TrainConfig(**config), data, null_cond=null_cond,
                   model_config={"hidden": 64, "kind": "tiny-mlp"})
