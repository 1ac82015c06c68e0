"""``polydiff eval image``: prompt adherence by the shipped checker, and PSNR of the editing
tasks against simple baselines (mean fill, bicubic, the noisy input)."""
from __future__ import annotations

import math
import time

import numpy as np
import polydiff
import torch

from . import data
from .checker import count_shapes, read_attributes

ATTRIBUTES = ("colour", "shape", "size", "position")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).mean())
    return 10 * math.log10(1.0 / max(mse, 1e-10))


# phrasings a user types that the training captions do not contain (held out for evaluation)
SYNONYMS = {"red": "scarlet", "green": "emerald", "blue": "navy blue", "yellow": "golden", "purple": "violet",
            "cyan": "turquoise", "white": "white", "orange": "orange", "small": "tiny", "large": "big",
            "circle": "disc", "square": "box", "triangle": "triangle"}
PLACES = {"center": "in the middle", "left": "on the left side", "right": "to the right",
          "top": "near the top", "bottom": "down at the bottom"}
TEMPLATES = ("I would like a picture of a {size} {colour} {shape} placed {place}",
             "please draw a {size} {colour} {shape} {place}", "an image showing a {size} {colour} {shape} {place}")


def paraphrase(attrs: dict, rng: np.random.Generator) -> str:
    """A freely phrased prompt for ``attrs`` from held-out templates and synonyms."""
    words = {k: SYNONYMS[attrs[k]] for k in ("colour", "shape", "size")}
    return str(rng.choice(TEMPLATES)).format(place=PLACES[attrs["position"]], **words)


def adherence(prompts: int, seed: int, steps: int | None, phrase=None, **fields) -> dict:
    """Accuracy per attribute and the one-shape rate, by the checker that can say no; ``phrase``
    writes the prompt (default: the training caption style)."""
    rng = np.random.default_rng(seed)
    hits = {k: 0 for k in ATTRIBUTES}
    one_shape, misses, resolved = 0, [], {}
    for i in range(prompts):
        attrs = data.random_attributes(rng)
        prompt = phrase(attrs, rng) if phrase else data.caption(**attrs)
        result = polydiff.generate("image", prompt, n=1, seed=seed + i, steps=steps, **fields)
        resolved = result.metadata["resolved"]
        one_shape += count_shapes(result.outputs[0]) == 1
        found = read_attributes(result.outputs[0]) or {}
        for k in ATTRIBUTES:
            hits[k] += found.get(k) == attrs[k]
        if found != attrs and len(misses) < 10:
            misses.append({"prompt": prompt, "read": found})
    return {"accuracy": {k: hits[k] / prompts for k in ATTRIBUTES}, "one_shape": one_shape / prompts,
            "prompts": prompts, "misses": misses,
            "sampled": {k: resolved.get(k) for k in ("backend", "sampler", "steps", "spacing", "guidance")}}


def editing(images: int, seed: int, steps: int | None, **fields) -> dict:
    from PIL import Image

    truth, captions, attrs = data.batch(images, seed, drop=0.0)
    truth = torch.from_numpy(truth)
    scores = {t: {"model": [], "baseline": []} for t in ("inpaint", "super-resolution", "denoise")}
    refused: dict[str, str] = {}  # a task the backend refuses (a few-step one: denoise starts part-way)

    def edit(task: str, *args, **kw):
        if task in refused:
            return None
        try:
            return polydiff.generate("image", *args, task=task, steps=steps, **fields, **kw).outputs[0]
        except polydiff.InvalidInputError as exc:
            if not str(exc).startswith("task:"):
                raise
            refused[task] = str(exc)
            return None

    gen = torch.Generator().manual_seed(seed)
    for i in range(images):
        x, caption = truth[i], captions[i]
        # inpaint: a 14x14 box over the shape, the caption as prompt; baseline fills the mean of the rest
        cx, cy = data.POSITIONS[attrs[i]["position"]]
        mask = torch.zeros(32, 32)
        mask[max(cy - 7, 0):cy + 7, max(cx - 7, 0):cx + 7] = 1
        out = edit("inpaint", caption, init=x.permute(1, 2, 0).numpy(), mask=mask.numpy(), seed=seed + i)
        known = x * (1 - mask)
        fill = known.sum((1, 2), keepdim=True) / (1 - mask).sum()
        if out is not None:
            scores["inpaint"]["model"].append(psnr(out, x))
            scores["inpaint"]["baseline"].append(psnr(known + mask * fill, x))
        # super-resolution from 8x8 (average pooling); baseline: bicubic
        low = torch.nn.functional.avg_pool2d(x[None], 4)[0]
        out = edit("super-resolution", init=low.permute(1, 2, 0).numpy(), seed=seed + i)
        pil = Image.fromarray((low.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))
        bicubic = torch.from_numpy(np.asarray(pil.resize((32, 32), Image.BICUBIC), np.float32) / 255).permute(2, 0, 1)
        if out is not None:
            scores["super-resolution"]["model"].append(psnr(out, x))
            scores["super-resolution"]["baseline"].append(psnr(bicubic, x))
        # denoise: Gaussian noise of std 0.2 (clipped to [0, 1]); baseline: the noisy input itself
        noisy = (x + 0.2 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
        out = edit("denoise", init=noisy.permute(1, 2, 0).numpy(), noise_level=0.2, seed=seed + i)
        if out is not None:
            scores["denoise"]["model"].append(psnr(out, x))
            scores["denoise"]["baseline"].append(psnr(noisy, x))
    return {t: {"refused": refused[t]} if t in refused else
            {k: float(np.mean(v)) for k, v in s.items()} | {"gain_db": float(np.mean(s["model"]) - np.mean(s["baseline"]))}
            for t, s in scores.items()}


def run(out="out/eval/image", quick: bool = False, seed: int = 1234, steps: int | None = None,
        backend: str | None = None) -> dict:
    """``steps`` None: the task's default (20 for diffusion; a few-step backend's own count)."""
    started = time.perf_counter()
    prompts, images = (6, 2) if quick else (96, 24)
    fields = {"backend": backend} if backend else {}
    report = {"seed": seed, "adherence": adherence(prompts, seed, steps, **fields),
              "paraphrased": adherence(prompts, seed, steps, phrase=paraphrase, **fields),
              "editing": editing(images, seed + 10_000, steps, **fields)}
    sampled = report["adherence"]["sampled"]
    report["steps"], report["backend"] = sampled["steps"], sampled["backend"]
    report["seconds"] = round(time.perf_counter() - started, 1)
    acc, par = report["adherence"], report["paraphrased"]
    lines = [f"# image evaluation: {sampled['backend']}, {sampled['sampler']} {sampled['steps']} steps, guidance "
             f"{sampled['guidance']:g} ({prompts} prompts, {images} edit images, seed {seed})", "",
             "| attribute | caption-style | paraphrased |", "|---|---|---|"]
    lines += [f"| {k} | {acc['accuracy'][k]:.1%} | {par['accuracy'][k]:.1%} |" for k in ATTRIBUTES]
    lines += [f"| one shape per image | {acc['one_shape']:.1%} | {par['one_shape']:.1%} |"]
    lines += ["", "| task | model PSNR (dB) | baseline PSNR (dB) | gain (dB) |", "|---|---|---|---|"]
    names = {"inpaint": "inpaint vs mean fill", "super-resolution": "super-resolution 8->32 vs bicubic",
             "denoise": "denoise (std 0.2) vs noisy input"}
    lines += [f"| {names[t]} | refused by {sampled['backend']} | - | - |" if "refused" in s else
              f"| {names[t]} | {s['model']:.2f} | {s['baseline']:.2f} | {s['gain_db']:+.2f} |"
              for t, s in report["editing"].items()]
    report["markdown"] = "\n".join(lines) + "\n"
    return report
