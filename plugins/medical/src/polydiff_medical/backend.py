"""The default medical backend: ``SliceUNet`` trained by polydiff's ``Trainer`` on procedural
head phantoms and their lesion masks, shipped as safetensors + JSON.

Retrain the shipped checkpoint's recipe (into ``out/train/BACKEND``; ``-o`` to choose) with::

    OMP_NUM_THREADS=1 polydiff train medical

Half of the training pairs show the model nothing (it learns the joint distribution of slices
and masks: the prior that reconstruction and enhancement use), half show it the image (it
learns the mask given the image: segmentation). See ``RECIPE`` for the rest.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polydiff
import torch

from . import data
from .model import SliceUNet

NAME = "slice-unet"
DESCRIPTION = "UNet over (image, lesion mask) told which is known, trained on procedural head phantoms"
WEIGHTS_DIR = Path(__file__).with_name("weights") / NAME
CHECKPOINT = WEIGHTS_DIR / "model.safetensors"
RECIPE = dict(steps=6000, batch_size=32, lr=1e-3, lr_schedule="cosine", lr_final=5e-5, warmup=200,
              autocast="bf16", weight_decay=0.0, ema_decay=0.999, prediction="v", schedule="vp-cosine",
              cond_dropout=0.0, grad_clip=1.0, seed=0, log_every=50, checkpoint_every=250)
ARCH = dict(channels=32, mults=(1, 2, 2, 2), attention=True)
SEGMENT_SHARE = 0.5  # training pairs whose image is shown


def to_model(image, mask=None) -> torch.Tensor:
    """[n, H, W] image in [0, 1] (and mask in {0, 1}) -> model space [n, 2, H, W] in [-1, 1]."""
    image = torch.as_tensor(np.asarray(image), dtype=torch.float32)
    mask = torch.zeros_like(image) if mask is None else torch.as_tensor(np.asarray(mask), dtype=torch.float32)
    return torch.stack([image, mask], dim=1) * 2 - 1


def from_model(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Model space -> (image in [0, 1], mask probability in [0, 1]), each [n, H, W]."""
    y = (x.float().clamp(-1, 1) + 1) / 2
    return y[:, 0], y[:, 1]


def condition(n: int, image: torch.Tensor | None = None, device="cpu") -> dict:
    """The condition for ``n`` samples: nothing known, or the model-space image known."""
    context = torch.zeros(n, 2, data.SIZE, data.SIZE, device=device)
    known = torch.zeros(n, 2, device=device)
    if image is not None:
        context[:, 0] = image.to(device)
        known[:, 0] = 1
    return {"context": context, "known": known}


class Pairs:
    """The trainer's data: phantoms and masks, each pair shown its image with ``SEGMENT_SHARE``."""

    def __call__(self, batch_size: int, generator: torch.Generator):
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        images, masks = data.batch(batch_size, seed)
        x0 = to_model(images, masks)
        shown = torch.rand(batch_size, generator=generator) < SEGMENT_SHARE
        known = torch.stack([shown.float(), torch.zeros(batch_size)], dim=1)
        return x0, {"context": x0 * known[:, :, None, None], "known": known}


def train(out=None, progress=True, **overrides) -> Path:
    config = polydiff.TrainConfig.build(**{**RECIPE, **overrides, "out": Path(WEIGHTS_DIR if out is None else out),
                                           "progress": progress})
    with polydiff.seeded_init(config.seed):
        model = SliceUNet(**ARCH)
    return polydiff.Trainer(model, config, Pairs(), model_config=model.config).fit()


def load(device, folder=None) -> polydiff.LoadedModel:
    return polydiff.load_trained(folder or WEIGHTS_DIR, SliceUNet, device)
