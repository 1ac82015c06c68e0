"""The two points2d backends: the exact denoiser of the cluster mixture, E[x0 | x_t] in closed
form, and a small MLP trained with polydiff's own trainer.

Retrain the shipped MLP checkpoint's recipe (into ``out/train/BACKEND``; ``-o`` to choose) with::

    polydiff train points2d --backend points2d-mlp

(RECIPE below: 4000 steps, batch 256, seed 0; about half a minute on 2 CPU cores).
"""
import math
from pathlib import Path

import polydiff
import torch

from .data import CLUSTERS, STD, WEIGHTS, sample_clusters

WEIGHTS_DIR = Path(__file__).with_name("weights") / "points2d-mlp"
NULL = len(CLUSTERS)  # embedding row meaning "any cluster"
RECIPE = dict(steps=4000, batch_size=256, lr=2e-3, ema_decay=0.995, prediction="v",
              schedule="vp-cosine", cond_dropout=0.2, seed=0, log_every=200, checkpoint_every=1000)


def load_exact(device) -> polydiff.LoadedModel:
    means = torch.tensor(list(CLUSTERS.values()), dtype=torch.float32, device=device)
    log_w = torch.log(torch.tensor(WEIGHTS, dtype=torch.float32, device=device))
    schedule = polydiff.components().schedules["vp-cosine"]

    def net(x, t, cond):
        a = schedule.alpha(t).to(x.dtype)[:, None]
        s = schedule.sigma(t).to(x.dtype)[:, None]
        var = a**2 * STD**2 + s**2                                   # [B, 1]
        diff = x[:, None, :] - a[:, None, :] * means[None]           # [B, K, 2]
        logits = log_w[None] - 0.5 * (diff**2).sum(-1) / var         # [B, K]
        if cond is not None:  # cluster index per row, -1 for any cluster
            k = cond["cluster"]
            only = torch.nn.functional.one_hot(k.clamp(min=0), len(WEIGHTS)).bool()
            logits = torch.where((k[:, None] < 0) | only, logits, torch.full_like(logits, -torch.inf))
        resp = torch.softmax(logits, dim=1)
        posterior_means = means[None] + (a * STD**2 / var)[:, None, :] * diff
        return (resp[..., None] * posterior_means).sum(1)

    return polydiff.LoadedModel(net=net, schedule=schedule, prediction="x0",
                                config={"clusters": CLUSTERS, "weights": WEIGHTS, "std": STD})


class PointsMLP(torch.nn.Module):
    """net(x_t, t, {"cluster": index}) -> v prediction; index -1 means unconditional."""

    def __init__(self, hidden: int = 128):
        super().__init__()
        self.hidden = hidden
        self.embed = torch.nn.Embedding(NULL + 1, hidden)
        self.inp = torch.nn.Linear(2 + 4, hidden)
        self.body = torch.nn.Sequential(
            torch.nn.SiLU(), torch.nn.Linear(hidden, hidden), torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, 2))

    def forward(self, x, t, cond=None) -> torch.Tensor:
        freqs = torch.stack([torch.sin(math.pi * t), torch.cos(math.pi * t),
                             torch.sin(4 * math.pi * t), torch.cos(4 * math.pi * t)], dim=1)
        h = self.inp(torch.cat([x, freqs.to(x.dtype)], dim=1))
        if cond is not None:
            k = cond["cluster"]
            h = h + self.embed(torch.where(k < 0, torch.full_like(k, NULL), k))
        return self.body(h)


def train(out=None, progress=True, **overrides) -> Path:
    config = polydiff.TrainConfig(**{**RECIPE, **overrides, "out": Path(WEIGHTS_DIR if out is None else out),
                                     "progress": progress})
    with polydiff.seeded_init(config.seed):  # the initial weights follow the run's seed
        model = PointsMLP()
    trainer = polydiff.Trainer(model, config, sample_clusters,
                               null_cond=lambda n: {"cluster": torch.full((n,), -1, dtype=torch.long)},
                               model_config={"hidden": model.hidden})
    return trainer.fit()


def load_mlp(device) -> polydiff.LoadedModel:
    return polydiff.load_trained(WEIGHTS_DIR, PointsMLP, device)
