"""Procedural, seeded 32x32 images of one coloured shape on black, each with a caption.

A caption may leave out any attribute ("a triangle"); the image then shows a random value
for it, so the model learns to fill in what the prompt does not say.
"""
from __future__ import annotations

import numpy as np

SIZE = 32
COLOURS = {
    "red": (1.0, 0.1, 0.1), "green": (0.1, 0.8, 0.1), "blue": (0.15, 0.25, 1.0),
    "yellow": (1.0, 1.0, 0.1), "purple": (0.6, 0.1, 0.8), "cyan": (0.1, 0.9, 0.9),
    "white": (1.0, 1.0, 1.0), "orange": (1.0, 0.55, 0.05),
}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": 4.0, "large": 7.0}  # radius (half-width) in pixels
POSITIONS = {"center": (16, 16), "left": (8, 16), "right": (24, 16), "top": (16, 8), "bottom": (16, 24)}
POSITION_PHRASES = {"center": "in the center", "left": "on the left", "right": "on the right",
                    "top": "at the top", "bottom": "at the bottom"}
SUPERSAMPLE = 4


def caption(colour=None, shape=None, size=None, position=None) -> str:
    """"a small red circle on the left"; missing parts are left out ("a shape" if no shape)."""
    words = [w for w in (size, colour, shape or "shape") if w]
    text = ("an " if words[0][0] in "aeiou" else "a ") + " ".join(words)
    return text + (f" {POSITION_PHRASES[position]}" if position else "")


def render(colour: str, shape: str, size: str, position: str, jitter=(0.0, 0.0, 0.0)) -> np.ndarray:
    """One image as float32 [3, 32, 32] in [0, 1]; anti-aliased by supersampling."""
    n = SIZE * SUPERSAMPLE
    cx, cy = POSITIONS[position]
    r = SIZES[size] + jitter[2]
    cx, cy = cx + jitter[0], cy + jitter[1]
    coords = (np.arange(n) + 0.5) / SUPERSAMPLE
    x, y = np.meshgrid(coords, coords)
    dx, dy = x - cx, y - cy
    if shape == "circle":
        inside = dx**2 + dy**2 <= r**2
    elif shape == "square":
        inside = (np.abs(dx) <= r * 0.9) & (np.abs(dy) <= r * 0.9)
    else:  # upward triangle inscribed in the circle of radius r * 1.1
        rr = r * 1.15
        top, base = cy - rr, cy + rr / 2
        half = (y - top) / (base - top) * rr * np.sqrt(3) / 2
        inside = (y >= top) & (y <= base) & (np.abs(dx) <= half)
    cover = inside.reshape(SIZE, SUPERSAMPLE, SIZE, SUPERSAMPLE).mean(axis=(1, 3))
    return (np.asarray(COLOURS[colour], np.float32)[:, None, None] * cover[None]).astype(np.float32)


def random_attributes(rng: np.random.Generator) -> dict:
    return {"colour": str(rng.choice(list(COLOURS))), "shape": str(rng.choice(SHAPES)),
            "size": str(rng.choice(list(SIZES))), "position": str(rng.choice(list(POSITIONS)))}


def example(rng: np.random.Generator, drop: float = 0.25) -> tuple[np.ndarray, str, dict]:
    """(image [3, 32, 32] in [0, 1], caption, attributes) with each attribute left out of the
    caption with probability ``drop``."""
    attrs = random_attributes(rng)
    jitter = (rng.uniform(-1.5, 1.5), rng.uniform(-1.5, 1.5), rng.uniform(-0.6, 0.6))
    image = render(**attrs, jitter=jitter)
    said = {k: (v if rng.random() >= drop else None) for k, v in attrs.items()}
    return image, caption(**said), attrs


def all_captions() -> list[str]:
    """Every caption the generator can write (all attribute subsets)."""
    out = set()
    for c in [None, *COLOURS]:
        for s in [None, *SHAPES]:
            for z in [None, *SIZES]:
                for p in [None, *POSITIONS]:
                    out.add(caption(c, s, z, p))
    return sorted(out)


def batch(n: int, seed: int, drop: float = 0.25) -> tuple[np.ndarray, list[str], list[dict]]:
    """n examples from one seed: images [n, 3, 32, 32] in [0, 1], captions, attributes."""
    rng = np.random.default_rng(seed)
    items = [example(rng, drop) for _ in range(n)]
    return np.stack([i[0] for i in items]), [i[1] for i in items], [i[2] for i in items]
