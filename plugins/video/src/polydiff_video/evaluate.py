"""``polydiff eval video``: every task of the one checkpoint against a simple baseline.

- generation: colour, shape and motion of the shipped checker vs the prompt;
- prediction (4 frames given, 4 predicted, no prompt): PSNR, SSIM and centroid error vs
  copying the last frame and vs moving it on at its last velocity;
- interpolation (every other frame given, factor 2; sliding, growing and shrinking clips):
  PSNR and centroid error of the new frames vs a linear cross-fade of their neighbours;
- edit: kept frames bit-exact, centroid error of the regenerated span;
- style (SDEdit to another colour): colour adherence and flicker vs frame-by-frame img2img
  through the image plugin (``polydiff.generate("image", task="img2img")``).
"""
from __future__ import annotations

import math
import time

import numpy as np
import polydiff
import torch
from torch.nn import functional as F

from . import data
from .checker import read_clip, read_frames, track

LOST = float(data.SIZE) / 2  # centroid error charged for a frame where nothing is found


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).mean())
    return 10 * math.log10(1 / max(mse, 1e-10))


def ssim(a: torch.Tensor, b: torch.Tensor, sigma: float = 1.5, size: int = 11) -> float:
    """Mean structural similarity of two stacks of frames [T, C, H, W] in [0, 1] (Gaussian
    window, the constants of Wang et al. 2004 for a data range of 1)."""
    k = torch.exp(-((torch.arange(size) - size // 2).float() ** 2) / (2 * sigma**2))
    k = (k / k.sum())
    win = (k[:, None] * k[None, :]).expand(a.shape[1], 1, size, size)
    blur = lambda x: F.conv2d(x, win, padding=size // 2, groups=a.shape[1])  # noqa: E731
    a, b = a.float().clamp(0, 1), b.float().clamp(0, 1)
    ma, mb = blur(a), blur(b)
    va, vb, cov = blur(a * a) - ma**2, blur(b * b) - mb**2, blur(a * b) - ma * mb
    c1, c2 = 0.01**2, 0.03**2
    score = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return float(score.mean())


def centroid_error(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean distance (px) between the shape's centroid in ``pred`` and in ``truth``, frame by frame."""
    d = np.linalg.norm(track(pred) - track(truth), axis=1)
    return float(np.where(np.isnan(d), LOST, d).mean())


def shift(frame: torch.Tensor, dx: float, dy: float) -> torch.Tensor:
    """``frame`` [3, H, W] moved by (dx, dy) pixels, bilinear, black coming in."""
    h, w = frame.shape[1:]
    theta = torch.tensor([[1.0, 0.0, -2 * float(dx) / w], [0.0, 1.0, -2 * float(dy) / h]], dtype=frame.dtype)[None]
    grid = F.affine_grid(theta, (1, 3, h, w), align_corners=False)
    return F.grid_sample(frame[None], grid, align_corners=False, padding_mode="zeros")[0]


def constant_velocity(given: torch.Tensor, new: int) -> torch.Tensor:
    """The last frame moved on at the centroid velocity of the last two given frames."""
    (x0, y0), (x1, y1) = track(given[-2:])
    vx, vy = (0.0, 0.0) if np.isnan([x0, y0, x1, y1]).any() else (x1 - x0, y1 - y0)
    return torch.stack([shift(given[-1], vx * k, vy * k) for k in range(1, new + 1)])


def _clips(n: int, seed: int, motions=None):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        facts = data.random_facts(rng)
        if motions and facts["motion"] not in motions:
            continue
        video, full = data.clip(facts["colour"], facts["shape"], facts["motion"], rng, facts["target"])
        out.append((torch.from_numpy(video), full))
    return out


def generation(prompts: int, seed: int, steps: int) -> dict:
    rng = np.random.default_rng(seed)
    hits = {"colour": 0, "shape": 0, "motion": 0}
    direction = [0, 0]
    misses = []
    for i in range(prompts):
        f = data.random_facts(rng)
        prompt = data.describe(f["colour"], f["shape"], f["motion"], f["target"])
        clip = polydiff.generate("video", prompt, seed=seed + i, steps=steps).outputs[0]
        found = read_clip(clip) or {}
        ok = {"colour": found.get("colour") == f["colour"], "shape": found.get("shape") == f["shape"],
              "motion": found.get("motion") == f["motion"]
              and (f["motion"] != "turn" or found.get("target") == f["target"])}
        for k in hits:
            hits[k] += ok[k]
        if f["motion"] in data.DIRECTIONS:
            direction[0] += ok["motion"]
            direction[1] += 1
        if not all(ok.values()) and len(misses) < 12:
            misses.append({"prompt": prompt, "read": {k: found.get(k) for k in ("colour", "shape", "motion")}})
    return {"accuracy": {k: v / prompts for k, v in hits.items()},
            "direction_accuracy": direction[0] / max(direction[1], 1), "direction_prompts": direction[1],
            "prompts": prompts, "misses": misses}


def prediction(clips: int, seed: int, steps: int, given: int = 4) -> dict:
    rows = {m: {"psnr": [], "ssim": [], "centroid": []} for m in ("model", "copy-last", "constant-velocity")}
    for i, (video, _) in enumerate(_clips(clips, seed)):
        new = data.FRAMES - given
        past, future = video[:given], video[given:]
        out = polydiff.generate("video", task="predict", init=past.permute(0, 2, 3, 1).numpy(), frames=new,
                                seed=seed + i, steps=steps).outputs[0][given:]
        guesses = {"model": out, "copy-last": past[-1:].expand(new, -1, -1, -1),
                   "constant-velocity": constant_velocity(past, new)}
        for name, guess in guesses.items():
            rows[name]["psnr"].append(psnr(guess, future))
            rows[name]["ssim"].append(ssim(guess, future))
            rows[name]["centroid"].append(centroid_error(guess, future))
    return {name: {k: float(np.mean(v)) for k, v in r.items()} for name, r in rows.items()} | {"clips": clips}


def interpolation(clips: int, seed: int, steps: int) -> dict:
    rows = {m: {"psnr": [], "centroid": []} for m in ("model", "cross-fade")}
    # turning clips change colour linearly, which a cross-fade reproduces exactly: left out
    for i, (video, _) in enumerate(_clips(clips, seed, motions=(*data.DIRECTIONS, "grow", "shrink"))):
        coarse = video[0:7:2]  # frames 0, 2, 4, 6; frames 1, 3, 5 are to be made
        out = polydiff.generate("video", task="interpolate", init=coarse.permute(0, 2, 3, 1).numpy(), factor=2,
                                seed=seed + i, steps=steps).outputs[0]
        truth = video[1:6:2]
        fade = (coarse[:-1] + coarse[1:]) / 2
        for name, guess in (("model", out[1:6:2]), ("cross-fade", fade)):
            rows[name]["psnr"].append(psnr(guess, truth))
            rows[name]["centroid"].append(centroid_error(guess, truth))
    return {name: {k: float(np.mean(v)) for k, v in r.items()} for name, r in rows.items()} | {"clips": clips}


def editing(clips: int, seed: int, steps: int) -> dict:
    exact, errors, fade_errors = 0, [], []
    for i, (video, facts) in enumerate(_clips(clips, seed, motions=tuple(data.DIRECTIONS))):
        prompt = data.describe(facts["colour"], facts["shape"], facts["motion"])
        out = polydiff.generate("video", prompt, task="edit", init=video.permute(0, 2, 3, 1).numpy(), start=3, end=6,
                                seed=seed + i, steps=steps).outputs[0]
        exact += bool(torch.equal(out[:3], video[:3]) and torch.equal(out[6:], video[6:]))
        errors.append(centroid_error(out[3:6], video[3:6]))
        w = torch.tensor([0.75, 0.5, 0.25])[:, None, None, None]
        fade_errors.append(centroid_error(w * video[2] + (1 - w) * video[6], video[3:6]))
    return {"kept_bit_exact": exact / clips, "span_centroid_error": float(np.mean(errors)),
            "cross_fade_centroid_error": float(np.mean(fade_errors)), "clips": clips}


def flicker(clip: torch.Tensor) -> dict:
    """Frame-to-frame jitter of what should stay constant in a sliding clip: the shape's mean
    colour (L1 over RGB) and its area (relative to the mean area)."""
    frames = read_frames(clip)
    if any(f is None for f in frames):
        return {"colour": 1.0, "area": 1.0}
    rgb = np.stack([f["rgb"] for f in frames])
    area = np.asarray([f["area"] for f in frames])
    return {"colour": float(np.abs(np.diff(rgb, axis=0)).sum(axis=1).mean()),
            "area": float(np.abs(np.diff(area)).mean() / max(area.mean(), 1e-6))}


def styling(clips: int, seed: int, steps: int, strength: float = 0.6) -> dict:
    rows = {m: {"colour_flicker": [], "area_flicker": [], "target_colour": [], "motion_kept": []}
            for m in ("model", "img2img-per-frame")}
    rng = np.random.default_rng(seed + 1)
    for i, (video, facts) in enumerate(_clips(clips, seed, motions=tuple(data.DIRECTIONS))):
        target = str(rng.choice([c for c in data.PALETTE if c != facts["colour"]]))
        frames_in = video.permute(0, 2, 3, 1).numpy()
        out = polydiff.generate("video", data.describe(target, facts["shape"], facts["motion"]), task="style",
                                init=frames_in, strength=strength, seed=seed + i, steps=steps).outputs[0]
        # the baseline: each frame alone through the image model, the same seed for every frame
        per_frame = torch.stack([
            polydiff.generate("image", f"a {target} {facts['shape']}", task="img2img", init=frame,
                              strength=strength, seed=seed + i, steps=steps).outputs[0] for frame in frames_in])
        for name, clip in (("model", out), ("img2img-per-frame", per_frame)):
            jitter = flicker(clip)
            found = read_frames(clip)
            rows[name]["colour_flicker"].append(jitter["colour"])
            rows[name]["area_flicker"].append(jitter["area"])
            rows[name]["target_colour"].append(np.mean([bool(f) and f["colour"] == target for f in found]))
            rows[name]["motion_kept"].append((read_clip(clip) or {}).get("motion") == facts["motion"])
    return {name: {k: float(np.mean(v)) for k, v in r.items()} for name, r in rows.items()} | {
        "clips": clips, "strength": strength}


def _markdown(r: dict) -> str:
    g, p, i, e, s = r["generation"], r["prediction"], r["interpolation"], r["edit"], r["style"]
    acc = g["accuracy"]
    lines = [f"# video evaluation (seed {r['seed']}, {r['steps']} steps, {r['seconds']} s)", "",
             f"Generation, {g['prompts']} prompts: colour {acc['colour']:.1%}, shape {acc['shape']:.1%}, "
             f"motion {acc['motion']:.1%}; direction on the {g['direction_prompts']} sliding prompts "
             f"{g['direction_accuracy']:.1%}", "",
             f"| prediction, 4 -> 4 frames ({p['clips']} clips) | PSNR (dB) | SSIM | centroid error (px) |",
             "|---|---|---|---|"]
    lines += [f"| {m} | {p[m]['psnr']:.2f} | {p[m]['ssim']:.3f} | {p[m]['centroid']:.2f} |"
              for m in ("model", "copy-last", "constant-velocity")]
    lines += ["", f"| interpolation x2, new frames ({i['clips']} clips) | PSNR (dB) | centroid error (px) |",
              "|---|---|---|"]
    lines += [f"| {m} | {i[m]['psnr']:.2f} | {i[m]['centroid']:.2f} |" for m in ("model", "cross-fade")]
    lines += ["", f"Edit (frames 3-5 regenerated, {e['clips']} clips): kept frames bit-exact in "
              f"{e['kept_bit_exact']:.0%}; span centroid error {e['span_centroid_error']:.2f} px "
              f"(cross-fade {e['cross_fade_centroid_error']:.2f} px)", "",
              f"| style to another colour, strength {s['strength']} ({s['clips']} clips) | colour flicker | "
              "area flicker | frames in target colour | motion kept |", "|---|---|---|---|---|"]
    lines += [f"| {m} | {s[m]['colour_flicker']:.4f} | {s[m]['area_flicker']:.4f} | {s[m]['target_colour']:.1%} | "
              f"{s[m]['motion_kept']:.1%} |" for m in ("model", "img2img-per-frame")]
    return "\n".join(lines) + "\n"


def run(out="out/eval/video", quick: bool = False, seed: int = 1234, steps: int = 20) -> dict:
    started = time.perf_counter()
    sizes = dict(prompts=4, clips=2) if quick else dict(prompts=64, clips=32)
    n, c = sizes["prompts"], sizes["clips"]
    report = {"seed": seed, "steps": steps,
              "generation": generation(n, seed, steps),
              "prediction": prediction(c, seed + 1000, steps),
              "interpolation": interpolation(c, seed + 2000, steps),
              "edit": editing(max(c // 2, 2), seed + 3000, steps),
              "style": styling(max(c // 2, 2), seed + 4000, steps)}
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["markdown"] = _markdown(report)
    return report
