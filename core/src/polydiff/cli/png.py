"""A dependency-free PNG writer (8-bit RGB or grey), used for previews and the demo."""
from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes for a uint8 array of shape (H, W), (H, W, 1) or (H, W, 3)."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ValueError(f"PNG pixels must be uint8, got {pixels.dtype}")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ValueError(f"PNG pixels must be (H, W) or (H, W, 3), got {pixels.shape}")
    h, w = pixels.shape[:2]
    colour = 2 if pixels.ndim == 3 else 0
    rows = np.concatenate([np.zeros((h, 1), np.uint8), pixels.reshape(h, -1)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))


def write_png(path, pixels: np.ndarray) -> Path:
    """Write a PNG atomically (temporary file, then rename)."""
    path = Path(path)
    data = encode_png(pixels)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def scatter(points: np.ndarray, size: int = 256, extent: float = 4.0, colour=(40, 110, 220)) -> np.ndarray:
    """Rasterise 2-D points in [-extent, extent]^2 onto a white square, with faint axes."""
    img = np.full((size, size, 3), 255, np.uint8)
    img[size // 2, :] = img[:, size // 2] = 220
    pts = np.asarray(points, dtype=np.float64)
    ij = np.round((pts + extent) / (2 * extent) * (size - 1)).astype(int)
    keep = (ij >= 1).all(1) & (ij < size - 1).all(1)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            img[size - 1 - (ij[keep, 1] + dy), ij[keep, 0] + dx] = colour
    return img
