"""Reads colour, shape, size and position back from a 32x32 shapes image, so prompt
adherence can be measured without a learned classifier."""
from __future__ import annotations

import math

import numpy as np
import torch

from .data import COLOURS, POSITIONS, SIZES, render

# expected foreground area (pixels) of each shape at each size, from the renderer's geometry
AREA = {
    "circle": {k: math.pi * r**2 for k, r in SIZES.items()},
    "square": {k: (1.8 * r) ** 2 for k, r in SIZES.items()},
    "triangle": {k: 3 * math.sqrt(3) / 4 * (1.15 * r) ** 2 for k, r in SIZES.items()},
}


SPECK = 3  # solid pixels below which a blob is noise, not a shape


def count_shapes(image: torch.Tensor) -> int:
    """Separate shapes in ``image``: 8-connected blobs of at least SPECK pixels brighter than
    half the peak (0 when nothing reaches 0.25 or the background is not dark, as in noise), so
    two shapes, noise or an empty frame fail."""
    brightness = image.detach().float().cpu().numpy().max(axis=0)
    if brightness.max() < 0.25 or np.median(brightness) > 0.1 * brightness.max():
        return 0
    return sum(size >= SPECK for size in _blob_sizes(brightness > 0.5 * brightness.max()))


def _blob_sizes(mask: np.ndarray) -> list[int]:
    """Pixel counts of the 8-connected blobs of ``mask`` (a flood fill; images are 32x32)."""
    seen, sizes = np.zeros_like(mask), []
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        seen[start], stack, size = True, [start], 0
        while stack:
            y, x = stack.pop()
            size += 1
            for ny in range(max(y - 1, 0), min(y + 2, mask.shape[0])):
                for nx in range(max(x - 1, 0), min(x + 2, mask.shape[1])):
                    if mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        sizes.append(size)
    return sizes


def read_attributes(image: torch.Tensor) -> dict | None:
    """{"colour", "shape", "size", "position"} of the one shape in ``image`` ([3, H, W] in
    [0, 1]), or None unless exactly one shape stands out from the background."""
    img = image.detach().float().cpu().numpy()
    brightness = img.max(axis=0)
    solid = brightness > 0.5 * brightness.max()
    if brightness.max() < 0.25 or solid.sum() < 4 or count_shapes(image) != 1:
        return None
    colour_rgb = (img * solid).sum(axis=(1, 2)) / solid.sum()
    peak = max(colour_rgb.max(), 1e-6)
    colour = min(COLOURS, key=lambda c: np.sum((np.asarray(COLOURS[c]) / max(COLOURS[c]) - colour_rgb / peak) ** 2))
    coverage = np.clip(brightness / peak, 0, 1)
    area = float(coverage.sum())
    cy = (coverage * np.arange(img.shape[1])[:, None]).sum() / area + 0.5
    cx = (coverage * np.arange(img.shape[2])[None, :]).sum() / area + 0.5
    shape = min(AREA, key=lambda s: _mismatch(coverage, s, area, cx, cy))
    size = min(SIZES, key=lambda z: abs(math.log(area / AREA[shape][z])))
    position = min(POSITIONS, key=lambda p: (POSITIONS[p][0] - cx) ** 2 + (POSITIONS[p][1] - cy) ** 2)
    return {"colour": colour, "shape": shape, "size": size, "position": position}


def _mismatch(coverage, shape, area, cx, cy) -> float:
    """Squared difference between the coverage map and ``shape`` rendered with the same area
    and centroid (all three shapes have their centroid at the render centre)."""
    radius = SIZES["small"] * math.sqrt(area / AREA[shape]["small"])
    cx0, cy0 = POSITIONS["center"]
    template = render("white", shape, "small", "center", jitter=(cx - cx0, cy - cy0, radius - SIZES["small"]))[0]
    return float(((template - coverage) ** 2).sum())
