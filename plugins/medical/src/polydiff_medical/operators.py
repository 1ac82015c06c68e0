"""Measurement operators of MRI and CT, in torch (differentiable, CPU and CUDA).

MRI: the centred, orthonormal 2-D FFT with a Cartesian undersampling mask over phase-encode
lines (columns), with a fully sampled centre; k-space is complex, the image real. CT: the
parallel-beam Radon transform as a sparse matrix of bilinear ray weights, so its adjoint is
the exact transpose. The geometry is scikit-image's (``skimage.transform.radon`` with
``circle=True``: angle 0 sums down the columns, detector bins run with the column index), so
its filtered back-projection reads our sinograms.

Each ``*Consistency`` is a ``polydiff.Operator`` over the model-space batch [n, 2, H, W]
(image, mask in [-1, 1]): it measures the image channel and its ``project`` makes the image
agree with the measurement, leaving the mask channel to the model.
"""
from __future__ import annotations

import functools

import numpy as np
import polydiff
import torch


def fft2c(image: torch.Tensor) -> torch.Tensor:
    """Image [..., H, W] -> centred orthonormal k-space (complex)."""
    x = torch.fft.ifftshift(image.to(torch.complex64), dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1))


def ifft2c(kspace: torch.Tensor) -> torch.Tensor:
    """The inverse of ``fft2c`` (complex image)."""
    x = torch.fft.ifftshift(kspace, dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.ifft2(x, norm="ortho"), dim=(-2, -1))


def cartesian_mask(size: int, acceleration: float, centre: float = 0.08, seed: int = 0) -> torch.Tensor:
    """[size, size] 0/1 mask keeping about size/acceleration whole columns: the central
    ``centre`` fraction, and the rest drawn at random (seeded) among the outer columns.

    The mask is symmetric about the centre (column k is kept with its mirror): the k-space of
    a real image holds each line twice (as its mirror's conjugate), so an asymmetric mask would
    measure more than 1/acceleration of it, and a real-valued projection could not agree with it.
    """
    if not acceleration >= 1:
        raise polydiff.InvalidInputError(f"acceleration: must be at least 1, got {acceleration}")
    if not 0 <= centre <= 1:
        raise polydiff.InvalidInputError(f"centre: must be a fraction in [0, 1], got {centre}")
    mid = size // 2
    lines = max(1, round(size / acceleration))
    if lines >= size:
        return torch.ones(size, size)
    half = min((lines - 1) // 2, int(size * centre / 2))
    keep = np.zeros(size, bool)
    keep[mid - half:mid + half + 1] = True
    outer = np.array([j for j in range(1, mid - half)])  # each with its mirror size - j
    pairs = min(len(outer), max(0, (lines - int(keep.sum())) // 2))
    picked = np.random.default_rng(seed).choice(outer, size=pairs, replace=False)
    keep[picked] = True
    keep[size - picked] = True
    return torch.from_numpy(np.broadcast_to(keep[None, :], (size, size)).astype(np.float32).copy())


def zero_filled(kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The classic baseline: magnitude of the inverse FFT with unmeasured k-space set to 0."""
    return ifft2c(kspace * mask).abs()


def angles_for(views: int) -> torch.Tensor:
    """``views`` angles in degrees, evenly spaced over [0, 180)."""
    if not views >= 1:
        raise polydiff.InvalidInputError(f"views: must be at least 1, got {views}")
    return torch.arange(views, dtype=torch.float64) * (180.0 / views)


@functools.lru_cache(maxsize=16)
def _system(size: int, angles: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, column and weight of the Radon matrix [views * size, size * size] (COO)."""
    c = size // 2  # the rotation centre scikit-image uses
    theta = np.deg2rad(np.asarray(angles))[:, None, None]           # [V, 1, 1]
    s = (np.arange(size) - c)[None, :, None]                         # detector bins [1, D, 1]
    u = (np.arange(size) - c)[None, None, :]                         # points along a ray [1, 1, K]
    x = s * np.cos(theta) - u * np.sin(theta)
    y = s * np.sin(theta) + u * np.cos(theta)
    col, row = x + c, c - y
    c0, r0 = np.floor(col), np.floor(row)
    ray = np.broadcast_to(np.arange(len(angles) * size).reshape(len(angles), size, 1), col.shape)
    rows, cols, weights = [], [], []
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
        rr, cc = r0 + dr, c0 + dc
        w = (1 - np.abs(row - rr)) * (1 - np.abs(col - cc))
        ok = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size) & (w > 0)
        rows.append(ray[ok])
        cols.append((rr[ok] * size + cc[ok]).astype(np.int64))
        weights.append(w[ok])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(weights).astype(np.float32)


class Radon:
    """``A(image) -> sinogram``: [n, H, W] -> [n, views, H] (skimage's layout is its transpose),
    ``A.T(sinogram) -> image`` its exact adjoint (back-projection, unfiltered)."""

    def __init__(self, size: int, angles, device="cpu"):
        self.size, self.angles = size, tuple(float(a) for a in torch.as_tensor(angles).flatten().tolist())
        if not self.angles:
            raise polydiff.InvalidInputError("angles: at least one projection angle is needed")
        r, c, w = _system(size, self.angles)
        shape = (len(self.angles) * size, size * size)
        index = torch.from_numpy(np.stack([r, c]))
        self.matrix = torch.sparse_coo_tensor(index, torch.from_numpy(w), shape,
                                              check_invariants=False).coalesce().to(device)
        self.matrix_t = self.matrix.t().coalesce()

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        n = image.shape[0]
        flat = image.reshape(n, -1).to(self.matrix.dtype).t()
        return torch.sparse.mm(self.matrix, flat).t().reshape(n, len(self.angles), self.size)

    def T(self, sinogram: torch.Tensor) -> torch.Tensor:  # noqa: N802 - the adjoint's usual name
        n = sinogram.shape[0]
        flat = sinogram.reshape(n, -1).to(self.matrix.dtype).t()
        return torch.sparse.mm(self.matrix_t, flat).t().reshape(n, self.size, self.size)

    def least_squares(self, image: torch.Tensor, sinogram: torch.Tensor, iterations: int = 12) -> torch.Tensor:
        """``image`` moved towards the data: conjugate gradients on the normal equations for
        the correction d minimising ||A(image + d) - sinogram||, from d = 0 (so the parts of
        the image the views cannot see stay as they were)."""
        r = self.T(sinogram - self(image))
        d, p = torch.zeros_like(image), r.clone()
        rr = (r * r).flatten(1).sum(1)
        for _ in range(iterations):
            ap = self.T(self(p))
            alpha = rr / (p * ap).flatten(1).sum(1).clamp_min(1e-12)
            d = d + alpha[:, None, None] * p
            r = r - alpha[:, None, None] * ap
            rr_new = (r * r).flatten(1).sum(1)
            p = r + (rr_new / rr.clamp_min(1e-12))[:, None, None] * p
            rr = rr_new
        return image + d


def _pixels(x: torch.Tensor) -> torch.Tensor:
    return (x[:, 0].float() + 1) / 2


def _with_pixels(x: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    out = x.clone()
    out[:, 0] = (pixels * 2 - 1).to(x.dtype)
    return out


class KSpaceConsistency(polydiff.Operator):
    """Measures the image channel's k-space on ``mask``; ``project`` puts the measured lines
    back (the real part of the result: the images are real)."""

    def __init__(self, mask: torch.Tensor):
        self.mask = mask

    def __call__(self, x):
        return fft2c(_pixels(x)) * self.mask

    def project(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        k = fft2c(_pixels(x))
        return _with_pixels(x, ifft2c(self.mask * y + (1 - self.mask) * k).real)


class SinogramConsistency(polydiff.Operator):
    """Measures the image channel's sinogram; ``project`` is a few conjugate-gradient steps
    towards it (no closed-form projection exists with fewer views than pixels)."""

    def __init__(self, radon: Radon, iterations: int = 12):
        self.radon, self.iterations = radon, iterations

    def __call__(self, x):
        return self.radon(_pixels(x))

    def project(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _with_pixels(x, self.radon.least_squares(_pixels(x), y, self.iterations))


class DownsampleConsistency(polydiff.Operator):
    """Measures the image channel averaged over ``factor`` x ``factor`` blocks; ``project``
    adds the nearest-upsampled residual, so the block averages match exactly."""

    def __init__(self, factor: int):
        self.factor = factor

    def __call__(self, x):
        return torch.nn.functional.avg_pool2d(_pixels(x)[:, None], self.factor)[:, 0]

    def project(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        residual = y - self(x)
        up = residual.repeat_interleave(self.factor, -2).repeat_interleave(self.factor, -1)
        return _with_pixels(x, _pixels(x) + up)
