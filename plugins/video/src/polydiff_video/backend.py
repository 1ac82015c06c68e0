"""The default video backend: ``ClipUNet`` trained by polydiff's ``Trainer`` on the procedural
clips with random known-frame patterns (MCVD's masking), shipped as safetensors + JSON.

Retrain the shipped checkpoint's recipe (into ``out/train/BACKEND``; ``-o`` to choose) with::

    OMP_NUM_THREADS=1 polydiff train video

(``RECIPE`` below: 10000 steps of batch 32, cosine learning rate with warm-up, bf16 autocast;
87 minutes on one CPU thread beside one other training job, final loss 0.037; a run resumed
from its ``train_state`` draws exactly what an uninterrupted one does). Prompts are
embedded by the registered text encoder ``TEXT_ENCODER`` (polydiff-text), looked up by name.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polydiff
import torch

from . import data
from .model import ClipUNet

NAME = "clip-unet"
DESCRIPTION = "space-time UNet (frames as channels, random known-frame masks) trained on procedural clips"
WEIGHTS_DIR = Path(__file__).with_name("weights") / NAME
CHECKPOINT = WEIGHTS_DIR / "model.safetensors"
TEXT_ENCODER = "minilm"
TOKENS = 12  # the sentence vector and up to 11 words (captions have at most 7)
# cond_dropout 0: the null prompt is drawn by the data itself (data.sample's ``blank``),
# so that dropping the prompt never drops the known frames.
RECIPE = dict(steps=10000, batch_size=32, lr=1e-3, lr_schedule="cosine", lr_final=5e-5, warmup=200,
              autocast="bf16", weight_decay=0.0, ema_decay=0.999,
              prediction="v", schedule="vp-cosine", cond_dropout=0.0, grad_clip=1.0, seed=0,
              log_every=50, checkpoint_every=250)
ARCH = dict(window=data.FRAMES, channels=32, mults=(1, 2, 2), depth=1, cond_dim=384)
PATTERNS = ("none", "past", "future", "stride", "ends", "subset")
PATTERN_WEIGHTS = (0.25, 0.25, 0.1, 0.15, 0.1, 0.15)


def to_model(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """[0, 1] pixels -> model space [-1, 1]."""
    return torch.as_tensor(frames, dtype=torch.float32) * 2 - 1


def from_model(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(-1, 1) + 1) / 2


def known_pattern(kind: str, frames: int, rng: np.random.Generator) -> np.ndarray:
    """A 0/1 vector over frames saying which ones the model is shown."""
    keep = np.zeros(frames, np.float32)
    if kind == "past":
        keep[:rng.integers(1, frames - 1)] = 1
    elif kind == "future":
        keep[frames - rng.integers(1, frames - 1):] = 1
    elif kind == "stride":
        step = int(rng.choice([2, 3, 4, 7]))
        keep[rng.integers(0, step)::step] = 1
    elif kind == "ends":
        keep[:rng.integers(1, 4)] = 1
        keep[frames - rng.integers(1, 4):] = 1
    elif kind == "subset":
        keep = (rng.random(frames) < 0.5).astype(np.float32)
    return keep


def draw(batch_size: int, seed: int) -> tuple[torch.Tensor, list[str]]:
    clips, captions, _ = data.batch(batch_size, seed)
    return to_model(clips), captions


class MaskedClips:
    """The trainer's data: caption rows from ``polydiff.CaptionedData`` plus, per clip, a random
    known-frame pattern: ``context`` holds the known frames (zero elsewhere), ``known`` the flags."""

    def __init__(self, encode):
        self.captioned = polydiff.CaptionedData(draw, data.captions(), encode)

    def __call__(self, batch_size: int, generator: torch.Generator):
        x0, cond = self.captioned(batch_size, generator)
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))
        kinds = rng.choice(len(PATTERNS), size=batch_size, p=PATTERN_WEIGHTS)
        known = torch.from_numpy(np.stack([known_pattern(PATTERNS[k], x0.shape[1], rng) for k in kinds]))
        context = x0 * known[:, :, None, None, None]
        return x0, {"tokens": cond["tokens"], "mask": cond["mask"], "context": context, "known": known}


def train(out=None, progress=True, **overrides) -> Path:
    config = polydiff.TrainConfig.build(**{**RECIPE, **overrides, "out": Path(WEIGHTS_DIR if out is None else out),
                                           "progress": progress})
    encoder = polydiff.load_encoder(TEXT_ENCODER)
    source = MaskedClips(lambda texts: {k: v for k, v in encoder.encode(texts, max_tokens=TOKENS).items()
                                        if k in ("tokens", "mask")})
    with polydiff.seeded_init(config.seed):  # the initial weights follow the run's seed
        model = ClipUNet(**ARCH)
    return polydiff.Trainer(model, config, source, model_config=model.config).fit()


def load(device, folder=None) -> polydiff.LoadedModel:
    return polydiff.load_trained(folder or WEIGHTS_DIR, ClipUNet, device)
