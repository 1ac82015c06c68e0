"""The medical gallery of ``polydiff demo``: one case of each task on a held-out phantom, with
the classic baseline beside it where there is one, as 4x PNG previews."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polydiff
import torch

from . import data, operators
from .io import _png, heat, preview

CASE = 10**9 + 7  # a test seed: the evaluator's range, not drawn in training


def run(folder) -> list[Path]:
    from skimage.transform import iradon

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    image, mask = data.phantom(CASE)
    files = [_png(folder / "truth.png", preview(image, mask))]
    notes = ["truth: the held-out phantom (seed %d) with its lesion outlined in red" % CASE]

    def save(name, output, note, masked=False):
        files.append(_png(folder / f"{name}.png", preview(output[0], (output[1] >= 0.5) & masked)))
        notes.append(f"{name}: {note}")

    save("generate", polydiff.generate("medical", seed=0).outputs[0], "an unconditional sample with its mask", True)
    k_mask = operators.cartesian_mask(data.SIZE, 4)
    zf = operators.zero_filled(operators.fft2c(torch.from_numpy(image)) * k_mask, k_mask).numpy()
    files.append(_png(folder / "mri-zero-filled.png", preview(zf, np.zeros_like(zf))))
    notes.append("mri-zero-filled: the classic baseline at 4x (inverse FFT, missing lines set to 0)")
    save("reconstruct-mri", polydiff.generate("medical", task="reconstruct-mri", init=image, acceleration=4,
                                              seed=0).outputs[0], "MRI at 4x acceleration from its k-space")
    theta = operators.angles_for(18)
    sino = operators.Radon(data.SIZE, theta)(torch.from_numpy(image)[None].double())[0].numpy().T
    fbp = iradon(sino, theta=theta.numpy(), circle=True)
    files.append(_png(folder / "ct-fbp.png", preview(np.clip(fbp, 0, 1), np.zeros_like(fbp))))
    notes.append("ct-fbp: the classic baseline from 18 views (filtered back-projection)")
    save("reconstruct-ct", polydiff.generate("medical", task="reconstruct-ct", init=image, views=18,
                                             seed=0).outputs[0], "CT from 18 views")
    seg = polydiff.generate("medical", task="segment", init=image, n=8, seed=0)
    sampled = np.stack([o[1] for o in seg.outputs]) >= 0.5
    files.append(_png(folder / "segment.png", preview(image, sampled.mean(0) >= 0.5)))
    files.append(_png(folder / "segment-uncertainty.png", heat(sampled.std(0) / 0.5)))
    notes.append("segment: the majority of 8 sampled masks; segment-uncertainty: their spread (black: all agree)")
    noisy = np.clip(image + 0.1 * np.random.default_rng(0).standard_normal(image.shape), 0, 1).astype(np.float32)
    files.append(_png(folder / "noisy.png", preview(noisy, np.zeros_like(noisy))))
    save("enhance-denoise", polydiff.generate("medical", task="enhance", init=noisy, seed=0).outputs[0],
         "noisy.png (noise 0.1) denoised, the noise level estimated")
    dull = np.clip(0.3 * image + 0.35 + 0.015 * np.random.default_rng(1).standard_normal(image.shape), 0, 1)
    files.append(_png(folder / "dull.png", preview(dull, np.zeros_like(dull))))
    save("enhance-contrast", polydiff.generate("medical", task="enhance", init=dull.astype(np.float32),
                                               mode="contrast", seed=0).outputs[0],
         "dull.png (0.3 x truth + 0.35, noise 0.015) stretched to the full range and denoised")
    low = image.reshape(32, 2, 32, 2).mean(axis=(1, 3))
    save("enhance-super-resolution", polydiff.generate("medical", task="enhance", init=low, mode="super-resolution",
                                                       seed=0).outputs[0], "a 32x32 version of truth at 64x64")
    readme = folder / "README.txt"
    readme.write_text("Each PNG is a 64x64 slice at 4x; a red outline is the lesion mask.\n\n" + "\n".join(notes) + "\n")
    return files + [readme]
