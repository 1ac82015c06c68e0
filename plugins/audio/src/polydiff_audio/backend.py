"""The default audio backend: a text-conditioned 1-D UNet over log-mel frames, trained by
polydiff's trainer on the procedural clips of ``data``, shipped as safetensors + JSON.

Retrain the shipped checkpoint's recipe (into ``out/train/BACKEND``; ``-o`` to choose) with::

    polydiff train audio

(RECIPE below: 12500 steps of batch 32 with bf16 autocast; 3.3-3.8 steps/s on 2 CPU cores,
about an hour. The shipped run took 63 minutes on one thread, OMP_NUM_THREADS=1.)
Prompts are encoded by the plugin's ``audio-prompt`` condition encoder (``encoders``): the
shared text encoder's tokens plus the notes the prompt names.
"""
from __future__ import annotations

from pathlib import Path

import polydiff
import torch

from . import data, encoders, mel
from .model import UNet1d

WEIGHTS_DIR = Path(__file__).with_name("weights") / "notes-unet"
RECIPE = dict(steps=12500, batch_size=32, lr=1e-3, weight_decay=0.0, ema_decay=0.999,
              prediction="v", schedule="vp-cosine", cond_dropout=0.1, grad_clip=1.0, seed=0,
              log_every=50, checkpoint_every=250, autocast="bf16")
ARCH = dict(mels=mel.N_MELS, channels=128, mults=(1, 1, 1), blocks=1, cond_dim=384, max_tokens=encoders.TOKENS,
            text_width=128, emb=128, pitch_classes=12)


def draw(batch_size: int, seed: int) -> tuple[torch.Tensor, list[str]]:
    """One training batch from one seed: log-mel clips and their captions."""
    waves, captions, _ = data.batch(batch_size, seed)
    return mel.encode(torch.from_numpy(waves)), captions


def train(out=None, progress=True, **overrides) -> Path:
    config = polydiff.TrainConfig(**{**RECIPE, **overrides, "out": Path(WEIGHTS_DIR if out is None else out),
                                     "progress": progress})
    encoder = polydiff.load_encoder(encoders.NAME)
    source = polydiff.CaptionedData(draw, data.all_captions(), encoder.encode)
    with polydiff.seeded_init(config.seed):  # the initial weights follow the run's seed
        model = UNet1d(**ARCH)
    trainer = polydiff.Trainer(model, config, source, null_cond=source.null_cond, model_config=model.config)
    return trainer.fit()


def load(device, folder=None) -> polydiff.LoadedModel:
    return polydiff.load_trained(folder or WEIGHTS_DIR, UNet1d, device)
