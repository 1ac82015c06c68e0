"""The default image backend: a small text-conditioned UNet, trained by polydiff's trainer on
the procedural shapes data, shipped as safetensors + JSON.

Retrain the shipped checkpoint's recipe (into ``out/train/BACKEND``; ``-o`` to choose) with::

    polydiff train image

(RECIPE below: 4000 steps of batch 64 with bf16 autocast: 1.6 steps/s on 2 idle CPU cores,
about 42 minutes; the shipped run took 73 minutes on one thread beside another job). Prompts
are embedded by the registered text encoder named ``TEXT_ENCODER`` (from the polydiff-text
plugin), looked up by name.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polydiff
import torch

from . import data
from .unet import UNet

WEIGHTS_DIR = Path(__file__).with_name("weights") / "shapes-unet"
TEXT_ENCODER = "minilm"
TOKENS = 16  # the whole prompt plus up to 15 words (captions use at most 9)
RECIPE = dict(steps=4000, batch_size=64, lr=1e-3, weight_decay=0.0, ema_decay=0.999,
              prediction="v", schedule="vp-cosine", cond_dropout=0.1, grad_clip=1.0, seed=0,
              log_every=50, checkpoint_every=250, autocast="bf16")
ARCH = dict(channels=32, mults=(1, 2, 2), blocks=2, cond_dim=384, dropout=0.0)


def to_model(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """[0, 1] pixels -> model space [-1, 1]."""
    return torch.as_tensor(images, dtype=torch.float32) * 2 - 1


def from_model(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) / 2)


def draw(batch_size: int, seed: int) -> tuple[torch.Tensor, list[str]]:
    """One training batch from one seed: images in model space and their captions."""
    images, captions, _ = data.batch(batch_size, seed)
    return to_model(images), captions


def train(out=None, progress=True, **overrides) -> Path:
    config = polydiff.TrainConfig(**{**RECIPE, **overrides, "out": Path(WEIGHTS_DIR if out is None else out),
                                     "progress": progress})
    encoder = polydiff.load_encoder(TEXT_ENCODER)
    source = polydiff.CaptionedData(draw, data.all_captions(), lambda c: encoder.encode(c, max_tokens=TOKENS))
    with polydiff.seeded_init(config.seed):  # the initial weights follow the run's seed
        model = UNet(**ARCH)
    trainer = polydiff.Trainer(model, config, source, null_cond=source.null_cond, model_config=model.config)
    return trainer.fit()


def load(device, folder=None) -> polydiff.LoadedModel:
    return polydiff.load_trained(folder or WEIGHTS_DIR, UNet, device)
