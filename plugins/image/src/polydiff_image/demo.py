"""The image gallery of ``polydiff demo``: prompts, then one edit of each kind."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polydiff
import torch
from PIL import Image

from . import data
from .io import grid

PROMPTS = ["a red circle", "a large blue square on the left", "a small yellow triangle at the top",
           "a green circle on the right", "a purple square at the bottom", "a white triangle",
           "an orange circle in the center", "a large cyan triangle"]


def _save(path, images, scale=4):
    g = grid(images, cols=len(images))
    Image.fromarray(np.kron(g, np.ones((scale, scale, 1), np.uint8))).save(path)
    return path


def run(folder) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    outs = [polydiff.generate("image", p, n=1, seed=i).outputs[0] for i, p in enumerate(PROMPTS)]
    files.append(_save(folder / "generate.png", outs))
    (folder / "generate.txt").write_text("\n".join(PROMPTS) + "\n")
    x = torch.from_numpy(data.render("red", "circle", "large", "center"))
    hwc = x.permute(1, 2, 0).numpy()
    mask = np.zeros((32, 32), np.float32)
    mask[8:24, 8:24] = 1
    inpaint = polydiff.generate("image", "a blue square", task="inpaint", init=hwc, mask=mask, seed=0).outputs[0]
    files.append(_save(folder / "inpaint.png", [x, x * torch.from_numpy(1 - mask), inpaint]))
    img2img = polydiff.generate("image", "a green circle in the center", task="img2img", init=hwc, strength=0.7, seed=0).outputs[0]
    files.append(_save(folder / "img2img.png", [x, img2img]))
    low = torch.nn.functional.avg_pool2d(x[None], 4)[0]
    sr = polydiff.generate("image", task="super-resolution", init=low.permute(1, 2, 0).numpy(), seed=0).outputs[0]
    files.append(_save(folder / "super-resolution.png", [torch.nn.functional.interpolate(low[None], scale_factor=4)[0], sr, x]))
    noisy = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    den = polydiff.generate("image", task="denoise", init=noisy.permute(1, 2, 0).numpy(), noise_level=0.2, seed=0).outputs[0]
    files.append(_save(folder / "denoise.png", [noisy, den, x]))
    (folder / "README.txt").write_text(
        "generate.png: one image per prompt in generate.txt\n"
        "inpaint.png: original, masked input, inpainted with 'a blue square'\n"
        "img2img.png: original, SDEdit (strength 0.7) towards 'a green circle in the center'\n"
        "super-resolution.png: 8x8 input (nearest), 32x32 result, original\n"
        "denoise.png: noisy input (std 0.2), denoised, original\n")
    return files + [folder / "README.txt"]
