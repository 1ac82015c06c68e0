"""The condition encoder: a prompt naming a cluster -> its index (-1: any cluster)."""
import polydiff
import torch

from .data import CLUSTERS

OUTPUTS = ("cluster",)


class ClusterNames:
    def __init__(self, device: str = "cpu"):
        self.device = device

    def encode(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        return {"cluster": torch.tensor([self.index(p) for p in prompts], device=self.device)}

    def index(self, prompt: str | None) -> int:
        if not prompt:
            return -1
        words = prompt.lower().split()
        names = [i for i, name in enumerate(CLUSTERS) if name in words]
        if len(names) != 1:
            raise polydiff.InvalidInputError(
                f"prompt: name one cluster of {', '.join(CLUSTERS)} (got {prompt!r})")
        return names[0]
