"""A small trained backend for points2d: an MLP trained with polydiff's own trainer.

Reproduce the shipped checkpoint with::

    polydiff train points2d --backend points2d-mlp

(defaults below: 4000 steps, batch 256, seed 0; about half a minute on 2 CPU cores).
"""
import math
from pathlib import Path

import polydiff
import torch

from .plugin import CLUSTERS, STD, WEIGHTS

WEIGHTS_DIR = Path(__file__).with_name("weights") / "points2d-mlp"
NULL = len(CLUSTERS)  # embedding row meaning "any cluster"
RECIPE = dict(steps=4000, batch_size=256, lr=2e-3, ema_decay=0.995, prediction="v",
              schedule="vp-cosine", cond_dropout=0.2, seed=0, log_every=200, checkpoint_every=1000)


class PointsMLP(torch.nn.Module):
    """net(x_t, t, cluster) -> v prediction; cluster -1 means unconditional."""

    def __init__(self, hidden: int = 128):
        super().__init__()
        self.hidden = hidden
        self.embed = torch.nn.Embedding(NULL + 1, hidden)
        self.inp = torch.nn.Linear(2 + 4, hidden)
        self.body = torch.nn.Sequential(
            torch.nn.SiLU(), torch.nn.Linear(hidden, hidden), torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, 2))

    def forward(self, x, t, cond=None):
        freqs = torch.stack([torch.sin(math.pi * t), torch.cos(math.pi * t),
                             torch.sin(4 * math.pi * t), torch.cos(4 * math.pi * t)], dim=1)
        h = self.inp(torch.cat([x, freqs.to(x.dtype)], dim=1))
        if cond is not None:
            h = h + self.embed(torch.where(cond < 0, torch.full_like(cond, NULL), cond))
        return self.body(h)


def sample_clusters(batch_size, generator):
    """Training data: (points, cluster index) from the mixture the exact backend describes."""
    means = torch.tensor(list(CLUSTERS.values()))
    k = torch.multinomial(torch.tensor(WEIGHTS), batch_size, replacement=True, generator=generator)
    return means[k] + STD * torch.randn(batch_size, 2, generator=generator), k


def train(out=None, progress=True, **overrides):
    config = polydiff.TrainConfig(**{**RECIPE, **overrides, "out": Path(out or WEIGHTS_DIR),
                                     "progress": progress})
    model = PointsMLP()
    trainer = polydiff.Trainer(model, config, sample_clusters,
                               null_cond=lambda n: torch.full((n,), -1, dtype=torch.long),
                               model_config={"hidden": model.hidden})
    return trainer.fit()


def load(device):
    return polydiff.load_trained(WEIGHTS_DIR, PointsMLP, device)
