"""Procedural 2-D slices: head phantoms of random ellipses in the spirit of Shepp-Logan, with
tissue classes and lesions, and the ground-truth lesion mask.

What varies, per slice (each slice from its own seed, so slice i of seed s is the same in any
batch): the head's centre, size and tilt; the skull's thickness; 2-4 tissue regions (grey
0.30-0.65) and 1-2 dark ventricles near the centre; 0-3 lesions (none in 15 % of slices) of
radius 1.5-5 px, bright (+0.20 to +0.45 over the tissue) or, one time in five, dark (-0.25);
a smooth linear bias field of up to +-10 %. Edges are anti-aliased (drawn at 2x, averaged).
Intensities are in [0, 1]; the mask is 1 inside a lesion.
"""
from __future__ import annotations

import numpy as np

SIZE = 64
_FINE = 2 * SIZE
_YS, _XS = np.mgrid[-1:1:_FINE * 1j, -1:1:_FINE * 1j]


def _ellipse(cx, cy, a, b, angle) -> np.ndarray:
    """Boolean [FINE, FINE] inside of an ellipse given in [-1, 1] coordinates."""
    ys, xs = _YS, _XS
    c, s = np.cos(angle), np.sin(angle)
    u, v = (xs - cx) * c + (ys - cy) * s, -(xs - cx) * s + (ys - cy) * c
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def _down(fine: np.ndarray) -> np.ndarray:
    return fine.reshape(SIZE, 2, SIZE, 2).mean(axis=(1, 3))


def phantom(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One slice ``(image, mask)``, each [SIZE, SIZE] float32."""
    rng = np.random.default_rng(seed)
    cx, cy = rng.uniform(-0.08, 0.08, 2)
    a, b = rng.uniform(0.72, 0.9), rng.uniform(0.62, 0.84)
    tilt = rng.uniform(-0.3, 0.3)
    skull = rng.uniform(0.07, 0.12)
    img = np.zeros((_FINE, _FINE), np.float32)
    img[_ellipse(cx, cy, a, b, tilt)] = rng.uniform(0.8, 1.0)
    brain = _ellipse(cx, cy, a - skull, b - skull, tilt)
    img[brain] = rng.uniform(0.40, 0.50)
    inner = lambda margin: (cx + rng.uniform(-1, 1) * (a - skull - margin) * 0.7,  # noqa: E731
                            cy + rng.uniform(-1, 1) * (b - skull - margin) * 0.7)
    for _ in range(rng.integers(2, 5)):
        ex, ey = inner(0.25)
        img[_ellipse(ex, ey, rng.uniform(0.12, 0.4), rng.uniform(0.1, 0.3), rng.uniform(0, np.pi)) & brain] = \
            rng.uniform(0.30, 0.65)
    for _ in range(rng.integers(1, 3)):
        vx, vy = cx + rng.uniform(-0.15, 0.15), cy + rng.uniform(-0.15, 0.15)
        img[_ellipse(vx, vy, rng.uniform(0.05, 0.16), rng.uniform(0.1, 0.25), tilt + rng.uniform(-0.4, 0.4))
            & brain] = rng.uniform(0.10, 0.20)
    lesions = np.zeros_like(img, dtype=bool)
    count = 0 if rng.random() < 0.15 else int(rng.integers(1, 4))
    for _ in range(count):
        lx, ly = inner(0.1)
        r = rng.uniform(1.5, 5.0) * 2 / SIZE
        region = _ellipse(lx, ly, r * rng.uniform(0.8, 1.25), r, rng.uniform(0, np.pi)) & brain
        contrast = -0.25 if rng.random() < 0.2 else rng.uniform(0.20, 0.45)
        img[region] = np.clip(img[region] + contrast, 0, 1)
        lesions |= region
    gx, gy = rng.uniform(-0.1, 0.1, 2)
    img *= 1 + gx * _XS + gy * _YS
    image = np.clip(_down(img), 0, 1).astype(np.float32)
    mask = (_down(lesions.astype(np.float32)) >= 0.5).astype(np.float32)
    return image, mask


def batch(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` slices ``(images, masks)``, each [n, SIZE, SIZE]; slice i uses seed ``seed + i``."""
    pairs = [phantom(seed + i) for i in range(n)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
