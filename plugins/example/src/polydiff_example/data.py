"""The points2d data: a mixture of four named Gaussian clusters in the plane."""
import torch

CLUSTERS = {"east": (2.5, 0.0), "north": (0.0, 2.5), "west": (-2.5, 0.0), "south": (0.0, -2.5)}
WEIGHTS = (0.4, 0.3, 0.2, 0.1)
STD = 0.35


def sample_clusters(batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
    """Training data for ``Trainer``: points and their condition, ``{"cluster": index}``."""
    means = torch.tensor(list(CLUSTERS.values()))
    k = torch.multinomial(torch.tensor(WEIGHTS), batch_size, replacement=True, generator=generator)
    return means[k] + STD * torch.randn(batch_size, 2, generator=generator), {"cluster": k}
