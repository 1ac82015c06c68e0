"""img2img strength: how often the asked colour appears and the rest is kept, per strength.

    .venv/bin/python benchmarks/img2img_strength.py

24 rendered shapes (every colour, shape, size and position in turn), each sent by img2img to
another colour with a prompt of colour and shape only ("a blue circle"); the image plugin's
checker reads the result. Chose the image plugin's default strength (README, "Images from text").
"""
import numpy as np
import polydiff
from polydiff_image.checker import read_attributes
from polydiff_image.data import COLOURS, SHAPES, caption, render

POSITIONS = ["center", "left", "right", "top", "bottom"]


def cases() -> list[tuple]:
    colours = list(COLOURS)
    return [(colours[k % 8], SHAPES[k % 3], ["small", "large"][k % 2], POSITIONS[k % 5],
             colours[(k % 8 + 1 + k // 8) % 8]) for k in range(24)]


def main() -> None:
    print("| strength | colour changed | shape, size and position kept |\n|---|---|---|")
    for strength in (0.6, 0.7, 0.8, 0.9):
        changed = kept = 0
        for i, (colour, shape, size, position, target) in enumerate(cases()):
            source = render(colour, shape, size, position).transpose(1, 2, 0)
            out = polydiff.generate("image", caption(target, shape), task="img2img", init=source,
                                    strength=strength, seed=i).outputs[0]
            seen = read_attributes(out) or {}
            changed += seen.get("colour") == target
            kept += (seen.get("shape"), seen.get("size"), seen.get("position")) == (shape, size, position)
        n = len(cases())
        print(f"| {strength} | {changed}/{n} | {kept}/{n} |", flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
