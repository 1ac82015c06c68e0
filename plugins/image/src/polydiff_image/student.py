"""The few-step image backend: the shipped shapes-unet, with its default guidance, distilled
into a 4-step student (``polydiff.distill``: each of 4 DDIM steps learns to land where the
teacher's guided 20-step solve would be). It samples with one network call per step and no
guidance branch: 4 calls of batch n against the teacher's 20 calls of batch 2n.

Retrain the shipped checkpoint's recipe (into ``out/train/shapes-turbo``; ``-o`` to choose) with::

    polydiff train image --backend shapes-turbo

It solves 4096 teacher paths first (kept in the out folder, so a resumed run does not solve them
again), then fine-tunes a copy of the teacher on them (RECIPE). The shipped run, on one thread
beside two to three other jobs: the paths took 31 minutes, the 1000 steps 38 minutes (final
loss 0.009). Measured (benchmarks/few_step.py): caption-style adherence 96.9-100 % (the teacher
100 %), paraphrased 59-95 % (the teacher 65-95 %), 7.4-8.9x faster per image.
"""
from __future__ import annotations

from pathlib import Path

import polydiff
import torch

from . import backend, data
from .tasks import DEFAULT_GUIDANCE
from .unet import UNet

WEIGHTS_DIR = Path(__file__).with_name("weights") / "shapes-turbo"
RECIPE = dict(steps=1000, batch_size=64, lr=2e-4, lr_schedule="cosine", lr_final=1e-5, ema_decay=0.999,
              objective="distill", few_steps=4, prediction="v", schedule="vp-cosine", cond_dropout=0.0,
              grad_clip=1.0, seed=0, log_every=50, checkpoint_every=250, autocast="bf16",
              teacher_guidance=DEFAULT_GUIDANCE)
PATHS = dict(paths=4096, chunk=256, sub_steps=5)  # 4 x 5 = the teacher's 20 default steps


def train(out=None, progress=True, **overrides) -> Path:
    config = polydiff.TrainConfig(**{**RECIPE, **overrides, "out": Path(WEIGHTS_DIR if out is None else out),
                                     "progress": progress})
    encoder = polydiff.load_encoder(backend.TEXT_ENCODER)
    captions = data.all_captions()  # encoded once, as the teacher's training did (CaptionedData)
    index, table = {c: i for i, c in enumerate(captions)}, encoder.encode(captions, max_tokens=backend.TOKENS)
    null = encoder.encode([""], max_tokens=backend.TOKENS)

    def conditions(n: int, seed: int):
        """The training captions' distribution (attributes dropped as in training)."""
        rows = torch.tensor([index[c] for c in data.batch(n, seed)[1]])
        return {k: v[rows] for k, v in table.items()}, {k: v.expand(n, *v.shape[1:]) for k, v in null.items()}

    return polydiff.distill(backend.load("cpu"), UNet, config, shape=(3, data.SIZE, data.SIZE),
                            conditions=conditions, progress=progress, **PATHS)


def load(device, folder=None) -> polydiff.LoadedModel:
    return polydiff.load_trained(folder or WEIGHTS_DIR, UNet, device)
