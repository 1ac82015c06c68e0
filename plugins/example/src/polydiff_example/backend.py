"""The exact denoiser of the cluster mixture: E[x0 | x_t] in closed form."""
import polydiff
import torch

from .plugin import CLUSTERS, STD, WEIGHTS


def load(device):
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
            only = torch.nn.functional.one_hot(cond.clamp(min=0), len(WEIGHTS)).bool()
            logits = torch.where((cond[:, None] < 0) | only, logits, torch.full_like(logits, -torch.inf))
        resp = torch.softmax(logits, dim=1)
        posterior_means = means[None] + (a * STD**2 / var)[:, None, :] * diff
        return (resp[..., None] * posterior_means).sum(1)

    return polydiff.LoadedModel(net=net, schedule=schedule, prediction="x0",
                                config={"clusters": CLUSTERS, "weights": WEIGHTS, "std": STD})
