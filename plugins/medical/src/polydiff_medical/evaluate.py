"""``polydiff eval medical``: every task of the one checkpoint against the classic baseline a
clinician's tool would use, all baselines and metrics from scikit-image.

- MRI at 4x and 8x (Cartesian, 8 % centre): PSNR / SSIM vs zero-filled inverse FFT and vs
  total-variation compressed sensing (ISTA with scikit-image's TV denoiser as the proximal
  step, its weight picked per acceleration on separate calibration slices);
- CT at 18 and 36 views: vs filtered back-projection (ramp) and SART (2 sweeps);
- segmentation: Dice of the majority of 8 sampled masks vs Otsu's threshold inside the head,
  and the majority's error rate among pixels where 0, 1, ... 4 of the 8 samples disagree with
  it (calibration: it should rise with the disagreement);
- enhancement: denoising at noise 0.05 and 0.10 (clipped to [0, 1]) vs the noisy input,
  non-local means and TV; contrast enhancement of a dulled slice (0.3 x + 0.35 + noise) vs a
  linear stretch, the stretch followed by non-local means, and CLAHE;
  2x super-resolution vs bicubic interpolation;
- one ``polydiff generate medical --task reconstruct-mri`` from the command line, start-up
  included.

The test slices come from seeds the training never draws in practice (1e9 upwards).
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polydiff
import torch

from . import data, operators

TEST_SEED = 10**9
CALIBRATION_SEED = 2 * 10**9


def _metrics(truth: np.ndarray, estimate: np.ndarray) -> tuple[float, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    estimate = np.clip(estimate, 0, 1).astype(np.float64)
    truth = truth.astype(np.float64)
    return (float(peak_signal_noise_ratio(truth, estimate, data_range=1.0)),
            float(structural_similarity(truth, estimate, data_range=1.0)))


def _summary(rows: dict[str, list[tuple[float, float]]]) -> dict:
    return {name: {"psnr": round(float(np.mean([r[0] for r in v])), 2),
                   "ssim": round(float(np.mean([r[1] for r in v])), 4)} for name, v in rows.items()}


def _ours(task: str, image: np.ndarray, seed: int, steps: int | None, **options) -> np.ndarray:
    fields = {"steps": steps} if steps else {}
    return polydiff.generate("medical", task=task, init=image, seed=seed, **fields, **options).outputs[0]


def tv_cs(kspace: torch.Tensor, mask: torch.Tensor, weight: float, iterations: int = 60) -> np.ndarray:
    """Total-variation compressed sensing: ISTA on ||M F x - y||^2 (F orthonormal, so step 1)
    with scikit-image's Chambolle TV denoiser as the proximal step."""
    from skimage.restoration import denoise_tv_chambolle

    x = operators.zero_filled(kspace, mask).numpy()
    for _ in range(iterations):
        k = operators.fft2c(torch.from_numpy(x))
        x = x - operators.ifft2c(mask * k - kspace).real.numpy()
        x = denoise_tv_chambolle(x, weight=weight)
    return x


def _best_tv_weight(acceleration: float, slices: int = 3) -> float:
    images, _ = data.batch(slices, CALIBRATION_SEED)
    scores = {}
    for w in (0.002, 0.005, 0.01, 0.02, 0.04):
        psnrs = []
        for i, im in enumerate(images):
            mask = operators.cartesian_mask(data.SIZE, acceleration, seed=CALIBRATION_SEED + i)
            k = operators.fft2c(torch.from_numpy(im)) * mask
            psnrs.append(_metrics(im, tv_cs(k, mask, w))[0])
        scores[w] = float(np.mean(psnrs))
    return max(scores, key=scores.get)


def mri(images: np.ndarray, steps) -> dict:
    report = {}
    for acc in (4, 8):
        weight = _best_tv_weight(acc)
        rows = {"zero-filled": [], "tv": [], "polydiff": []}
        for i, im in enumerate(images):
            mask = operators.cartesian_mask(data.SIZE, acc, seed=i)
            k = operators.fft2c(torch.from_numpy(im)) * mask
            rows["zero-filled"].append(_metrics(im, operators.zero_filled(k, mask).numpy()))
            rows["tv"].append(_metrics(im, tv_cs(k, mask, weight)))
            rows["polydiff"].append(_metrics(im, _ours("reconstruct-mri", im, i, steps, acceleration=acc,
                                                       mask_seed=i)[0]))
        report[f"{acc}x"] = {**_summary(rows), "tv_weight": weight}
    return report


def ct(images: np.ndarray, steps) -> dict:
    from skimage.transform import iradon, iradon_sart

    report = {}
    for views in (18, 36):
        theta = operators.angles_for(views)
        radon = operators.Radon(data.SIZE, theta)
        rows = {"fbp": [], "sart": [], "polydiff": []}
        for i, im in enumerate(images):
            sino = radon(torch.from_numpy(im)[None].double())[0].numpy().T  # scikit-image's layout
            rows["fbp"].append(_metrics(im, iradon(sino, theta=theta.numpy(), circle=True, filter_name="ramp")))
            sart = iradon_sart(sino, theta=theta.numpy())
            sart = iradon_sart(sino, theta=theta.numpy(), image=sart)
            rows["sart"].append(_metrics(im, sart))
            rows["polydiff"].append(_metrics(im, _ours("reconstruct-ct", im, i, steps, views=views)[0]))
        report[f"{views} views"] = _summary(rows)
    return report


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def segmentation(images: np.ndarray, masks: np.ndarray, steps, samples: int = 8) -> dict:
    from skimage.filters import threshold_otsu

    ours, otsu, errors, minorities = [], [], [], []
    for i, (im, truth) in enumerate(zip(images, masks)):
        head = im > 0.05
        otsu.append(dice((im > threshold_otsu(im[head])) & head, truth))
        fields = {"steps": steps} if steps else {}
        result = polydiff.generate("medical", task="segment", init=im, n=samples, seed=i * samples, **fields)
        sampled = np.stack([o[1] for o in result.outputs]) >= 0.5
        majority = sampled.mean(0) >= 0.5
        ours.append(dice(majority, truth))
        errors.append((majority != truth.astype(bool)).ravel())
        votes = sampled.sum(0)
        minorities.append(np.minimum(votes, samples - votes).ravel())
    errors, minority = np.concatenate(errors), np.concatenate(minorities)
    calibration = []
    for m in range(samples // 2 + 1):   # pixels where m of the samples disagree with the majority
        pick = minority == m
        calibration.append({"disagreeing": f"{m} of {samples}", "pixels": int(pick.sum()),
                            "error_rate": round(float(errors[pick].mean()), 4) if pick.any() else None})
    rates = [c["error_rate"] for c in calibration if c["error_rate"] is not None]
    return {"dice": {"polydiff": round(float(np.mean(ours)), 4), "otsu": round(float(np.mean(otsu)), 4)},
            "calibration": calibration, "calibrated": bool(all(a < b for a, b in zip(rates, rates[1:]))),
            "samples": samples, "slices": len(images)}


def enhancement(images: np.ndarray, steps) -> dict:
    from skimage.exposure import equalize_adapthist
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle
    from skimage.transform import resize

    from .tasks import estimate_noise, stretch

    report = {}
    for level in (0.05, 0.10):
        rows = {"noisy": [], "nl-means": [], "tv": [], "polydiff": []}
        for i, im in enumerate(images):
            # clipped to [0, 1] as any saved slice would be; every method gets the same input
            noisy = np.clip(im + level * np.random.default_rng(i).standard_normal(im.shape), 0, 1).astype(np.float32)
            rows["noisy"].append(_metrics(im, noisy))
            rows["nl-means"].append(_metrics(im, denoise_nl_means(noisy, h=0.8 * level, sigma=level, fast_mode=True)))
            rows["tv"].append(_metrics(im, denoise_tv_chambolle(noisy, weight=level)))
            rows["polydiff"].append(_metrics(im, _ours("enhance", noisy, i, steps, noise_level=level)[0]))
        report[f"denoise {level}"] = _summary(rows)
    rows = {"stretch": [], "stretch + nl-means": [], "clahe": [], "polydiff": []}
    for i, im in enumerate(images):
        dull = 0.3 * im + 0.35 + 0.015 * np.random.default_rng(i).standard_normal(im.shape)
        dull = np.clip(dull, 0, 1).astype(np.float32)
        stretched = stretch(torch.from_numpy(dull)).numpy()
        sigma = estimate_noise(torch.from_numpy(stretched))
        rows["stretch"].append(_metrics(im, stretched))
        rows["stretch + nl-means"].append(_metrics(im, denoise_nl_means(stretched, h=0.8 * sigma, sigma=sigma,
                                                                         fast_mode=True)))
        rows["clahe"].append(_metrics(im, equalize_adapthist(dull)))
        rows["polydiff"].append(_metrics(im, _ours("enhance", dull, i, steps, mode="contrast")[0]))
    report["contrast (0.3x + 0.35, noise 0.015)"] = _summary(rows)
    rows = {"bicubic": [], "polydiff": []}
    for i, im in enumerate(images):
        low = im.reshape(32, 2, 32, 2).mean(axis=(1, 3))
        rows["bicubic"].append(_metrics(im, resize(low, im.shape, order=3)))
        rows["polydiff"].append(_metrics(im, _ours("enhance", low, i, steps, mode="super-resolution")[0]))
    report["super-resolution 2x"] = _summary(rows)
    return report


def cli_seconds(image: np.ndarray) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "slice.npy", image)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "polydiff", "generate", "medical", "--task", "reconstruct-mri",
                        "--init", str(Path(tmp) / "slice.npy"), "--seed", "0", "-o", str(Path(tmp) / "out"),
                        "--quiet"], check=True, capture_output=True)
        return time.perf_counter() - started


def run(out="out/eval/medical", quick: bool = False, steps: int | None = None) -> dict:
    started = time.perf_counter()
    n = 3 if quick else 24
    images, masks = data.batch(n, TEST_SEED)
    lesioned, lesion_masks = zip(*[p for p in (data.phantom(TEST_SEED + 10**6 + j) for j in range(4 * n))
                                   if p[1].any()][:n])
    report = {"slices": n, "steps": steps or "task default",
              "mri": mri(images, steps), "ct": ct(images, steps),
              "segmentation": segmentation(np.stack(lesioned), np.stack(lesion_masks), steps),
              "enhancement": enhancement(images, steps),
              "cli_reconstruct_mri_seconds": round(cli_seconds(images[0]), 2)}
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["markdown"] = _markdown(report)
    return report


def _markdown(r: dict) -> str:
    lines = [f"# polydiff eval medical ({r['slices']} test slices, steps: {r['steps']})", "",
             "| task | setting | method | PSNR (dB) | SSIM |", "|---|---|---|---|---|"]
    for task in ("mri", "ct", "enhancement"):
        for setting, methods in r[task].items():
            for method, m in methods.items():
                if isinstance(m, dict):
                    lines.append(f"| {task} | {setting} | {method} | {m['psnr']:.2f} | {m['ssim']:.3f} |")
    s = r["segmentation"]
    lines += ["", f"Segmentation Dice ({s['slices']} slices with lesions, majority of {s['samples']} samples): "
              f"polydiff {s['dice']['polydiff']:.3f}, Otsu inside the head {s['dice']['otsu']:.3f}.", "",
              "| samples disagreeing with the majority | pixels | error rate of the majority |", "|---|---|---|"]
    lines += [f"| {c['disagreeing']} | {c['pixels']} | {c['error_rate']} |" for c in s["calibration"]]
    lines += ["", f"Error rate rises with uncertainty: {'yes' if s['calibrated'] else 'no'}.", "",
              f"One `reconstruct-mri` from the CLI, start-up included: {r['cli_reconstruct_mri_seconds']:.1f} s. "
              f"Evaluation took {r['seconds']:.0f} s."]
    return "\n".join(lines) + "\n"
