"""Calibrates the image checker on real renders and on negatives, because a checker that
cannot say no overstates every evaluator figure. Prints accuracy per attribute on every
vocabulary combination (jittered as in training) and the false-accept rate per negative kind.
Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/image_checker.py"""
import itertools

import numpy as np
import torch
from polydiff_image.checker import read_attributes
from polydiff_image.data import COLOURS, POSITIONS, SHAPES, SIZES, render

rng = np.random.default_rng(0)
combos = list(itertools.product(COLOURS, SHAPES, SIZES, POSITIONS))
keys = ("colour", "shape", "size", "position")


def jittered(k):
    return render(*k, jitter=(rng.uniform(-1.5, 1.5), rng.uniform(-1.5, 1.5), rng.uniform(-0.6, 0.6)))


right = dict.fromkeys(keys, 0)
for k in combos:
    found = read_attributes(torch.from_numpy(jittered(k))) or {}
    for name, value in zip(keys, k):
        right[name] += found.get(name) == value
print(f"positives: {len(combos)} renders; " + ", ".join(f"{n} {right[n]}/{len(combos)}" for n in keys))


def blur(img, passes=3):
    """A smear: box-blurred a few times (3x3), so edges fade over several pixels."""
    for _ in range(passes):
        padded = np.pad(img, ((0, 0), (1, 1), (1, 1)))
        img = sum(padded[:, dy:dy + 32, dx:dx + 32] for dy in range(3) for dx in range(3)) / 9
    return img.astype(np.float32)


places = list(itertools.permutations(POSITIONS, 2))
negatives = {
    "two shapes": [np.maximum(render(str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES)), "small", a),
                              render(str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES)), "small", b))
                   for a, b in places for _ in range(10)],
    "empty": [np.zeros((3, 32, 32), np.float32)] + [np.full((3, 32, 32), v, np.float32) for v in (0.1, 0.5, 1.0)],
    "noise": [rng.uniform(0, s, (3, 32, 32)).astype(np.float32) for s in (0.3, 0.6, 1.0) for _ in range(30)],
    "smear": [blur(render(*k)) for k in combos[::4]],
}
for kind, images in negatives.items():
    accepted = sum(read_attributes(torch.from_numpy(im)) is not None for im in images)
    print(f"negatives {kind}: accepted {accepted}/{len(images)}")
