"""A training data source for caption-conditioned models, shared by every modality that
learns from generated (data, caption) pairs."""
from __future__ import annotations

import torch


class CaptionedData:
    """``source(batch_size, generator) -> (x0, condition rows)`` for ``Trainer``.

    ``draw(batch_size, seed) -> (x0 batch, captions)`` makes one batch from one seed (taken
    from the trainer's generator, so resumed runs draw the same data). Every caption in
    ``captions`` is encoded once up front by ``encode(list of str) -> dict of tensors``; each
    step only gathers rows. ``null_cond(n)`` is the encoding of the empty prompt, for condition
    dropout (classifier-free guidance).
    """

    def __init__(self, draw, captions, encode):
        self.draw = draw
        self.index = {c: i for i, c in enumerate(captions)}
        self.table = encode(list(captions))
        self.null = encode([""])

    def __call__(self, batch_size, generator):
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        x0, captions = self.draw(batch_size, seed)
        unknown = [c for c in captions if c not in self.index]
        if unknown:
            raise KeyError(f"caption {unknown[0]!r} is not among the captions encoded up front")
        rows = torch.tensor([self.index[c] for c in captions])
        return x0, {k: v[rows] for k, v in self.table.items()}

    def null_cond(self, n) -> dict[str, torch.Tensor]:
        return {k: v.expand(n, *v.shape[1:]) for k, v in self.null.items()}
