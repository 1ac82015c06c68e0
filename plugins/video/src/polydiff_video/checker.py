"""Reads a clip back without a learned classifier: per frame the shape's colour, shape, area and
centroid, and for the clip what it does (which way it moves, growing, shrinking, turning into
another colour, or nothing), so that prompt adherence and motion can be scored."""
from __future__ import annotations

import numpy as np
import torch

from .data import DIRECTIONS, PALETTE

# normalised palette (brightest channel = 1): what hue a foreground mean is closest to
_HUES = {name: np.asarray(rgb) / max(rgb) for name, rgb in PALETTE.items()}
# an upward triangle's mass sits low: the skewness of its rows is about -0.57 (0 for the others);
# box fill (area / soft bounding box) then tells a square (1) from a circle (pi / 4)
TRIANGLE_SKEW = -0.25
SQUARE_FILL = 0.885
MIN_SPEED = 0.4     # px per frame over the first two frames to count as moving
AREA_CHANGE = 1.6   # last/first area ratio to count as growing (its inverse: shrinking)


def _hue(rgb: np.ndarray) -> str:
    unit = rgb / max(float(rgb.max()), 1e-6)
    return min(_HUES, key=lambda name: float(((_HUES[name] - unit) ** 2).sum()))


def read_frames(clip: torch.Tensor) -> list[dict | None]:
    """Per frame of ``clip`` ([T, 3, H, W] in [0, 1]): {"colour", "shape", "area", "cx", "cy",
    "rgb"}, or None for a frame where nothing stands out from the background."""
    pixels = clip.detach().float().cpu().numpy()
    bright = pixels.max(axis=1)                                   # [T, H, W]
    peak = bright.reshape(len(bright), -1).max(axis=1)            # [T]
    solid = bright > 0.5 * peak[:, None, None]
    cover = np.clip(bright / np.maximum(peak, 1e-6)[:, None, None], 0, 1)
    cover = np.where(cover > 0.15, cover, 0.0)                    # ignore faint noise
    area = cover.sum(axis=(1, 2))
    ys = np.arange(pixels.shape[2])[None, :, None] + 0.5
    xs = np.arange(pixels.shape[3])[None, None, :] + 0.5
    cx = (cover * xs).sum(axis=(1, 2)) / np.maximum(area, 1e-6)
    cy = (cover * ys).sum(axis=(1, 2)) / np.maximum(area, 1e-6)
    width = cover.max(axis=1).sum(axis=1)                         # soft extent along x
    height = cover.max(axis=2).sum(axis=1)
    fill = area / np.maximum(width * height, 1e-6)
    var_y = (cover * (ys - cy[:, None, None]) ** 2).sum(axis=(1, 2)) / np.maximum(area, 1e-6)
    skew = (cover * (ys - cy[:, None, None]) ** 3).sum(axis=(1, 2)) / np.maximum(area * var_y**1.5, 1e-6)
    out: list[dict | None] = []
    for k in range(len(pixels)):
        if peak[k] < 0.25 or solid[k].sum() < 3:
            out.append(None)
            continue
        rgb = (pixels[k] * solid[k]).sum(axis=(1, 2)) / solid[k].sum()
        shape = ("triangle" if skew[k] < TRIANGLE_SKEW else
                 "square" if fill[k] >= SQUARE_FILL else "circle")
        out.append({"colour": _hue(rgb), "shape": shape, "area": float(area[k]), "cx": float(cx[k]),
                    "cy": float(cy[k]), "rgb": rgb})
    return out


def _majority(values: list[str]) -> str:
    return max(sorted(set(values)), key=values.count)


def motion_of(frames: list[dict]) -> str:
    """What the shape does, from its per-frame readings (all present): a direction of
    ``DIRECTIONS`` (from its first two steps; a later bounce does not change it), "grow",
    "shrink", "turn" or "static"."""
    vx = (frames[2]["cx"] - frames[0]["cx"]) / 2
    vy = (frames[2]["cy"] - frames[0]["cy"]) / 2
    if max(abs(vx), abs(vy)) >= MIN_SPEED and max(abs(vx), abs(vy)) >= 2 * min(abs(vx), abs(vy)):
        step = (int(np.sign(vx)), 0) if abs(vx) > abs(vy) else (0, int(np.sign(vy)))
        return next(name for name, d in DIRECTIONS.items() if d == step)
    ratio = frames[-1]["area"] / max(frames[0]["area"], 1e-6)
    if ratio >= AREA_CHANGE:
        return "grow"
    if ratio <= 1 / AREA_CHANGE:
        return "shrink"
    if _hue(frames[0]["rgb"]) != _hue(frames[-1]["rgb"]):
        return "turn"
    return "static"


def read_clip(clip: torch.Tensor) -> dict | None:
    """{"colour" (of the first frame), "shape" (most frames'), "motion", "target" (the last
    frame's colour), "track" [(cx, cy) per frame]}; None if any frame shows nothing."""
    frames = read_frames(clip)
    if any(f is None for f in frames) or len(frames) < 3:
        return None
    return {"colour": frames[0]["colour"], "shape": _majority([f["shape"] for f in frames]),
            "motion": motion_of(frames), "target": frames[-1]["colour"],
            "track": [(f["cx"], f["cy"]) for f in frames]}


def track(clip: torch.Tensor) -> np.ndarray:
    """Centroid per frame, [T, 2] (x, y) in pixels; NaN where a frame shows nothing."""
    return np.asarray([(f["cx"], f["cy"]) if f else (np.nan, np.nan) for f in read_frames(clip)])
