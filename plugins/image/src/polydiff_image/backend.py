"""The default image backend: a small text-conditioned UNet, trained by polydiff's trainer on
the procedural shapes data, shipped as safetensors + JSON.

Reproduce the shipped checkpoint with::

    polydiff train image

(RECIPE below: 1500 steps of batch 64 with bf16 autocast, about 15 minutes on 2 idle CPU
cores). Prompts are embedded by the registered text encoder named ``TEXT_ENCODER`` (from the
polydiff-text plugin), looked up by name.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polydiff
import torch

from . import data
from .unet import UNet

WEIGHTS_DIR = Path(__file__).with_name("weights") / "shapes-unet"
TEXT_ENCODER = "minilm"
RECIPE = dict(steps=1500, batch_size=64, lr=1e-3, weight_decay=0.0, ema_decay=0.999,
              prediction="v", schedule="vp-cosine", cond_dropout=0.1, grad_clip=1.0, seed=0,
              log_every=50, checkpoint_every=250, autocast="bf16")
ARCH = dict(channels=32, mults=(1, 2, 2), blocks=2, cond_dim=384, dropout=0.0)


def require_text_encoder():
    if TEXT_ENCODER not in polydiff.components().encoders:
        raise polydiff.PluginError(f"the image plugin needs the {TEXT_ENCODER!r} text encoder: "
                                   "polydiff plugins install text")


def text_encoder(device="cpu"):
    require_text_encoder()
    return polydiff.components().encoders[TEXT_ENCODER].load(device)


def to_model(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """[0, 1] pixels -> model space [-1, 1]."""
    return torch.as_tensor(images, dtype=torch.float32) * 2 - 1


def from_model(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) / 2)


TOKENS = 16  # the whole prompt plus up to 15 words (captions use at most 9)


def encode_prompts(encoder, prompts) -> dict:
    """The model's condition: the sentence embedding of each prompt followed by the embedding
    of each of its words on its own, with a mask. In context MiniLM gives "left" and "right"
    nearly the same vector (cosine 0.99); alone they differ (0.41), so the model can learn
    where to draw; the leading sentence vector keeps paraphrases close."""
    prompts = list(prompts)
    words = [re.findall(r"[a-z]+", p.lower())[: TOKENS - 1] for p in prompts]
    vocab = sorted({w for ws in words for w in ws})
    table = dict(zip(vocab, encoder(vocab))) if vocab else {}
    sentences = encoder(prompts)
    tokens = torch.zeros(len(prompts), TOKENS, sentences.shape[1], device=sentences.device)
    mask = torch.zeros(len(prompts), TOKENS, device=sentences.device)
    for i, ws in enumerate(words):
        tokens[i, 0], mask[i, : len(ws) + 1] = sentences[i], 1.0
        for j, w in enumerate(ws, start=1):
            tokens[i, j] = table[w]
    return {"tokens": tokens, "mask": mask}


class ShapesData:
    """``data(batch_size, generator) -> (images, prompt tokens)`` for the trainer; every
    caption the generator can write is encoded once up front."""

    def __init__(self, device="cpu"):
        encoder = text_encoder(device)
        captions = data.all_captions()
        self.index = {c: i for i, c in enumerate(captions)}
        self.table = encode_prompts(encoder, captions)
        self.null = encode_prompts(encoder, [""])

    def __call__(self, batch_size, generator):
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        images, captions, _ = data.batch(batch_size, seed)
        rows = torch.tensor([self.index[c] for c in captions])
        return to_model(images), {k: v[rows] for k, v in self.table.items()}

    def null_cond(self, n):
        return {k: v.expand(n, *v.shape[1:]) for k, v in self.null.items()}


def train(out=None, progress=True, **overrides):
    config = polydiff.TrainConfig(**{**RECIPE, **overrides, "out": Path(out or WEIGHTS_DIR),
                                     "progress": progress})
    source = ShapesData()
    model = UNet(**ARCH)
    trainer = polydiff.Trainer(model, config, source, null_cond=source.null_cond,
                               model_config=model.config)
    return trainer.fit()


def load(device, folder=None):
    tensors, config = polydiff.load_checkpoint(folder or WEIGHTS_DIR, device=device)
    model = UNet(**config["model_config"]).to(device)
    model.load_state_dict(tensors)
    model.eval().requires_grad_(False)
    schedule = polydiff.components().schedules[config["schedule"]]
    return polydiff.LoadedModel(net=model, schedule=schedule, prediction=config["prediction"],
                                config=config)
