"""The default audio backend: a text-conditioned 1-D UNet over log-mel frames, trained by
polydiff's trainer on the procedural clips of ``data``, shipped as safetensors + JSON.

Reproduce the shipped checkpoint with::

    polydiff train audio

(RECIPE below: 12500 steps of batch 32 with bf16 autocast; 3.3-3.8 steps/s on 2 CPU cores,
about an hour. The shipped run took 63 minutes on one thread, OMP_NUM_THREADS=1.)
Prompts are embedded by the registered text encoder named ``TEXT_ENCODER`` (from the
polydiff-text plugin), looked up by name, and read for the notes they name (``score``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polydiff
import torch

from . import data, mel, score
from .model import UNet1d

WEIGHTS_DIR = Path(__file__).with_name("weights") / "notes-unet"
TEXT_ENCODER = "minilm"
TOKENS = 12                        # the whole prompt plus up to 11 words (captions use at most 9)
WORDS = r"[a-z]+#?\d?"             # "c#4" and "f#" stay one word
RECIPE = dict(steps=12500, batch_size=32, lr=1e-3, weight_decay=0.0, ema_decay=0.999,
              prediction="v", schedule="vp-cosine", cond_dropout=0.1, grad_clip=1.0, seed=0,
              log_every=50, checkpoint_every=250, autocast="bf16")
ARCH = dict(mels=mel.N_MELS, channels=128, mults=(1, 1, 1), blocks=1, cond_dim=384, max_tokens=TOKENS,
            text_width=128, emb=128, pitch_classes=12)


def require_text_encoder():
    if TEXT_ENCODER not in polydiff.components().encoders:
        raise polydiff.PluginError(f"the audio plugin needs the {TEXT_ENCODER!r} text encoder: "
                                   "polydiff plugins install text")


def text_encoder(device="cpu"):
    require_text_encoder()
    return polydiff.components().encoders[TEXT_ENCODER].load(device)


def encode_prompts(encoder, prompts) -> dict:
    """Sentence + per-word tokens from the shared text encoder (see its ``word_tokens``) and
    the pitch classes the prompt names (``score.pitch_classes``)."""
    cond = encoder.word_tokens(prompts, TOKENS, WORDS)
    cond["pitch"] = torch.from_numpy(np.stack([score.pitch_classes(p) for p in prompts]))
    return cond


def draw(batch_size: int, seed: int):
    """One training batch from one seed: log-mel clips and their captions."""
    waves, captions, _ = data.batch(batch_size, seed)
    return mel.encode(torch.from_numpy(waves)), captions


def train(out=None, progress=True, **overrides):
    config = polydiff.TrainConfig(**{**RECIPE, **overrides, "out": Path(out or WEIGHTS_DIR),
                                     "progress": progress})
    encoder = text_encoder()
    source = polydiff.CaptionedData(draw, data.all_captions(), lambda c: encode_prompts(encoder, c))
    model = UNet1d(**ARCH)
    trainer = polydiff.Trainer(model, config, source, null_cond=source.null_cond, model_config=model.config)
    return trainer.fit()


def load(device, folder=None):
    return polydiff.load_trained(folder or WEIGHTS_DIR, UNet1d, device)
