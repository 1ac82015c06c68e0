"""The few-step audio backend: the shipped notes-unet, with its default guidance, distilled into
a 4-step student (``polydiff.distill``: each of 4 DDIM steps learns to land where the teacher's
guided 20-step solve of a 2-second clip would be). One network call per step, no guidance
branch: 4 calls of batch n against the teacher's 20 calls of batch 2n.

Retrain the shipped checkpoint's recipe (into ``out/train/notes-turbo``; ``-o`` to choose) with::

    polydiff train audio --backend notes-turbo

It solves 2048 teacher paths first (kept in the out folder, so a resumed run does not solve them
again), then fine-tunes a copy of the teacher on them (RECIPE): 20 minutes in all for the shipped
run, on one thread beside three other jobs. Per clip it is 2.8x faster than the teacher, not 10x:
the mel-to-wave inversion (Griffin-Lim) costs as much as the 4 network calls.
"""
from __future__ import annotations

from pathlib import Path

import polydiff

from . import backend, data, encoders, mel
from .model import UNet1d
from .tasks import DEFAULT_GUIDANCE, _frames

WEIGHTS_DIR = Path(__file__).with_name("weights") / "notes-turbo"
RECIPE = dict(steps=1000, batch_size=32, lr=2e-4, lr_schedule="cosine", lr_final=1e-5, ema_decay=0.999,
              objective="distill", few_steps=4, prediction="v", schedule="vp-cosine", cond_dropout=0.0,
              grad_clip=1.0, seed=0, log_every=50, checkpoint_every=250, autocast="bf16",
              teacher_guidance=DEFAULT_GUIDANCE)
PATHS = dict(paths=2048, chunk=128, sub_steps=5)  # 4 x 5 = the teacher's 20 default steps
FRAMES = _frames(2 * mel.SAMPLE_RATE)  # a 2-second clip, as generate plans it


def train(out=None, progress=True, **overrides) -> Path:
    config = polydiff.TrainConfig(**{**RECIPE, **overrides, "out": Path(WEIGHTS_DIR if out is None else out),
                                     "progress": progress})
    encoder = polydiff.load_encoder(encoders.NAME)

    def conditions(n: int, seed: int):
        """The training captions' distribution (words dropped as in training)."""
        return encoder.encode(data.batch(n, seed)[1]), encoder.encode([""] * n)

    return polydiff.distill(backend.load("cpu"), UNet1d, config, shape=(mel.N_MELS, FRAMES),
                            conditions=conditions, progress=progress, **PATHS)


def load(device, folder=None) -> polydiff.LoadedModel:
    return polydiff.load_trained(folder or WEIGHTS_DIR, UNet1d, device)
