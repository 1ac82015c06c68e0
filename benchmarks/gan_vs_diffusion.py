"""GAN, Denoising Diffusion GAN, Diffusion-GAN, diffusion and its distilled student side by side
on a 2-D grid of 25 Gaussians.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gan_vs_diffusion.py [--seeds 3] [--steps 8000] [--hidden 256]

Data: 25 equal Gaussians at {-2, -1, 0, 1, 2}^2 with std 0.05, so every mode is known. Every
model is the same MLP (3 hidden layers of 256, SiLU) trained by ``polydiff.Trainer`` for the
same number of steps at batch 512 from the same seeds:

- diffusion: ``objective="denoise"``, v-prediction on vp-cosine; sampled at 1000 (ddpm), 50,
  20, 10 and 4 NFE (the best of unipc / dpmpp_2m / ddim at each, by modes and 3-sigma share);
- DDGAN (Xiao et al. 2022): ``objective="ddgan"`` with 2 and 4 steps, a discriminator of the
  same size seeing (x_s, x_t, t), non-saturating loss, R1 0.1;
- GAN: the same trainer with ``few_steps=1``, i.e. one step from pure noise: a plain GAN whose
  generator sees noise and z, the baseline a GAN user would train;
- Diffusion-GAN (Wang et al. 2023): ``objective="diffusion-gan"``, the GAN's one-step generator
  judged by a discriminator of the same size that sees real and fake samples noised by the
  forward process to a random t below an adaptive level (``dgan_levels=(0.02, 0.5)``);
- distilled: ``polydiff.distill`` of the diffusion model (trained as above, same seed) into 4
  ddim steps, on 8192 teacher paths (unipc, 8 steps per student step), steps/2 fine-tuning steps;
  its training time includes the teacher's.

Measured on 10000 samples per model and seed: modes hit (a mode counts with at least 20 samples
within 3 sigma of it), the share of samples within 3 sigma of some mode (quality), the KL
divergence of the mode histogram of those samples from the uniform one (coverage balance), NFE
and wall time per sample, training wall time, and how many seeds collapse (fewer than 20 of 25
modes). Writes results/gan_vs_diffusion.{md,json,png}.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import polydiff
import torch
from common import RESULTS, git_commit, load_note, machine

GRID = torch.tensor([[i, j] for i in (-2.0, -1.0, 0.0, 1.0, 2.0) for j in (-2.0, -1.0, 0.0, 1.0, 2.0)])
STD = 0.05
HIDDEN = 256
SAMPLES = 10_000
DIFFUSION_NFE = (1000, 50, 20, 10, 4)


def data(n, generator):
    k = torch.randint(0, len(GRID), (n,), generator=generator)
    return GRID[k] + STD * torch.randn(n, 2, generator=generator), None


def _features(t):
    return torch.stack([t, torch.sin(math.pi * t), torch.cos(math.pi * t)], dim=1)


def _mlp(inputs: int, act=torch.nn.SiLU) -> torch.nn.Sequential:
    return torch.nn.Sequential(torch.nn.Linear(inputs, HIDDEN), act(), torch.nn.Linear(HIDDEN, HIDDEN), act(),
                               torch.nn.Linear(HIDDEN, HIDDEN), act(), torch.nn.Linear(HIDDEN, 2))


class Denoiser(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _mlp(2 + 3)

    def forward(self, x, t, cond=None):
        return self.net(torch.cat([x, _features(t)], 1))


class Generator(torch.nn.Module):
    latent_shape = (2,)

    def __init__(self):
        super().__init__()
        self.net = _mlp(2 + 3 + 2)

    def forward(self, x, t, cond=None, z=None):
        return self.net(torch.cat([x, _features(t), z], 1))


class NoisyDiscriminator(torch.nn.Module):
    """Diffusion-GAN's judge: one sample at its noise level, D(x_t, t)."""

    def __init__(self):
        super().__init__()
        self.net = _mlp(2 + 3, act=lambda: torch.nn.LeakyReLU(0.2))
        self.net[-1] = torch.nn.Linear(HIDDEN, 1)

    def forward(self, xt, t, cond=None):
        return self.net(torch.cat([xt, _features(t)], 1)).squeeze(1)


class Discriminator(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = _mlp(2 + 2 + 3, act=lambda: torch.nn.LeakyReLU(0.2))
        self.net[-1] = torch.nn.Linear(HIDDEN, 1)

    def forward(self, xs, xt, t, cond=None):
        return self.net(torch.cat([xs, xt, _features(t)], 1)).squeeze(1)


def params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def train(kind: str, few_steps: int, seed: int, steps: int, out: Path):
    """One training run; returns (LoadedModel, seconds, G-loss history, D-loss history)."""
    common = dict(steps=steps, batch_size=512, seed=seed, schedule="vp-cosine", cond_dropout=0.0, progress=False,
                  checkpoint_every=None, checkpoint_minutes=None, out=out, log_every=50, lr_schedule="cosine",
                  lr_final=1e-5)
    started = time.perf_counter()
    if kind in ("diffusion", "distill"):
        config = polydiff.TrainConfig(**common, lr=2e-3, prediction="v", ema_decay=0.999)
        with polydiff.seeded_init(seed):
            model = Denoiser()
        trainer = polydiff.Trainer(model, config, data)
    elif kind == "diffusion-gan":
        config = polydiff.TrainConfig(**common, lr=1e-3, betas=(0.5, 0.9), prediction="x0", objective="diffusion-gan",
                                      r1=0.1, ema_decay=0.99, dgan_levels=(0.02, 0.5))
        with polydiff.seeded_init(seed):
            model, disc = Generator(), NoisyDiscriminator()
        trainer = polydiff.Trainer(model, config, data, discriminator=disc)
    else:
        config = polydiff.TrainConfig(**common, lr=1e-3, betas=(0.5, 0.9), prediction="x0", objective="ddgan",
                                      few_steps=few_steps, r1=0.1, ema_decay=0.99)
        with polydiff.seeded_init(seed):
            model, disc = Generator(), Discriminator()
        trainer = polydiff.Trainer(model, config, data, discriminator=disc)
    trainer.fit()
    if kind == "distill":
        teacher = polydiff.load_trained(out, Denoiser)
        student = polydiff.TrainConfig(**{**common, "steps": steps // 2, "out": out / "student"}, lr=2e-4,
                                       prediction="v", ema_decay=0.999, objective="distill", few_steps=few_steps)
        polydiff.distill(teacher, Denoiser, student, shape=(2,), conditions=lambda n, s: (None, None), paths=8192,
                         chunk=8192, sub_steps=8, progress=False)
        out = out / "student"
    seconds = time.perf_counter() - started
    loaded = polydiff.load_trained(out, Denoiser if kind in ("diffusion", "distill") else Generator)
    return loaded, seconds, trainer.history, trainer.d_history


def measure(x: torch.Tensor) -> dict:
    dist = torch.cdist(x.double(), GRID.double())
    near, mode = dist.min(1)
    good = near < 3 * STD
    counts = torch.bincount(mode[good], minlength=len(GRID)).double()
    hit = int((counts >= 20).sum())
    p = counts / counts.sum().clamp_min(1)
    kl = float((p[p > 0] * (p[p > 0] * len(GRID)).log()).sum()) if counts.sum() > 0 else float("inf")
    return {"modes": hit, "within_3sigma": float(good.double().mean()), "kl_uniform": kl}


def draw(loaded, sampler: str, nfe: int, seed: int) -> tuple[torch.Tensor, float]:
    denoiser = polydiff.as_denoiser(loaded.net, loaded.schedule, loaded.prediction)
    if loaded.times is not None:
        denoiser.latent = loaded.latent
        kw = dict(sampler=loaded.sampler, steps=len(loaded.times) - 1, spacing=loaded.times)
    else:
        kw = dict(sampler=sampler, steps=nfe if sampler != "heun" else nfe // 2)
    polydiff.sample(denoiser, (64, 2), seed=seed, **kw)  # warm
    started = time.perf_counter()
    x = polydiff.sample(denoiser, (SAMPLES, 2), seed=seed, **kw)
    return x, (time.perf_counter() - started) / SAMPLES


def main():
    global HIDDEN
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--hidden", type=int, default=HIDDEN, help="width of every MLP")
    parser.add_argument("--models", default="gan,dgan,ddgan2,ddgan4,diffusion,distill4",
                        help="which to train (comma-separated)")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--merge", type=Path, help="keep the rows of models not trained now from this earlier "
                                                     "gan_vs_diffusion.json (their commit is listed)")
    args = parser.parse_args()
    earlier = json.loads(args.merge.read_text()) if args.merge else None
    if earlier is not None:
        differ = [k for k in ("steps", "seeds", "hidden") if earlier[k] != getattr(args, k)]
        if differ:
            raise SystemExit(f"--merge: {args.merge} was run with other {', '.join(differ)}")
    torch.set_num_threads(1)
    HIDDEN = args.hidden
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    note, started = load_note(), time.perf_counter()
    models = {"gan": ("GAN (1 step)", "ddgan", 1), "ddgan2": ("DDGAN, 2 steps", "ddgan", 2),
              "ddgan4": ("DDGAN, 4 steps", "ddgan", 4), "diffusion": ("diffusion", "diffusion", 0),
              "dgan": ("Diffusion-GAN (1 step)", "diffusion-gan", 1),
              "distill4": ("diffusion distilled, 4 steps", "distill", 4)}
    models = [models[m] for m in args.models.split(",")]
    rows, curves, scatter = [], {}, {}
    for name, kind, few_steps in models:
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory() as folder:
                loaded, seconds, g_hist, d_hist = train(kind, few_steps, seed, args.steps, Path(folder))
            if seed == 0:
                curves[name] = {"g": g_hist, "d": d_hist}
            budgets = DIFFUSION_NFE if kind == "diffusion" else (few_steps,)
            for nfe in budgets:
                samplers = (("ddpm",) if nfe == 1000 else ("unipc", "dpmpp_2m", "ddim")) if kind == "diffusion" \
                    else (loaded.sampler,)
                best = None
                for sampler in samplers:
                    x, per_sample = draw(loaded, sampler, nfe, seed=10_000 * (seed + 1))
                    m = {**measure(x), "sampler": sampler, "seconds_per_sample": per_sample}
                    if best is None or (m["modes"], m["within_3sigma"]) > (best["modes"], best["within_3sigma"]):
                        best, best_x = m, x
                rows.append({"model": name, "nfe": nfe, "seed": seed, "train_seconds": seconds,
                             "parameters": params(loaded.net), **best})
                if seed == 0:
                    scatter[f"{name} @ {nfe}"] = best_x[:3000]
                print(f"{name:16s} nfe {nfe:4d} seed {seed}: modes {best['modes']:2d}, 3-sigma "
                      f"{best['within_3sigma']:.3f}, KL {best['kl_uniform']:.3f} ({best['sampler']}), "
                      f"train {seconds:.0f} s", flush=True)
    report = {"machine": machine(), "note": note, "commit": git_commit(), "steps": args.steps, "seeds": args.seeds,
              "hidden": HIDDEN, "models": args.models,
              "rows": rows, "seconds": time.perf_counter() - started,
              "discriminator_parameters": params(Discriminator())}
    figure = "gan_vs_diffusion.png"
    if earlier is not None:  # earlier rows first, so the table keeps its order; this run's plot beside the old one
        trained = {r["model"] for r in rows}
        kept = [{**r, "commit": earlier["commit"]} for r in earlier["rows"] if r["model"] not in trained]
        report["rows"], report["merged"] = kept + rows, {"commit": earlier["commit"], "seconds": earlier["seconds"]}
        figure = "gan_vs_diffusion_added.png"
    report["figure"] = figure
    (out / "gan_vs_diffusion.json").write_text(json.dumps(report, indent=1))
    (out / "gan_vs_diffusion.md").write_text(markdown(report))
    plot(scatter, curves, out / figure)
    print(f"saved {out / 'gan_vs_diffusion.md'}")


def markdown(r: dict) -> str:
    groups: dict = {}
    for row in r["rows"]:
        groups.setdefault((row["model"], row["nfe"]), []).append(row)
    lines = ["# GAN, DDGAN, Diffusion-GAN, diffusion and distilled diffusion on 25 Gaussians (2-D)", "",
             f"Produced by `benchmarks/gan_vs_diffusion.py --seeds {r['seeds']} --steps {r['steps']} "
             f"--hidden {r['hidden']}"
             + (f" --models {r['models']} --merge EARLIER.json" if "merged" in r else "") + "` in "
             f"{r['seconds']:.0f} s on {r['machine']}; {r['note']}; commit {r['commit']}. One torch thread."
             + (f" Rows marked * are kept from an earlier run of the same command (commit {r['merged']['commit']}, "
                f"{r['merged']['seconds']:.0f} s; `--merge`); the others were trained in this one." if "merged" in r else ""),
             "",
             f"25 Gaussians at {{-2..2}}^2, std 0.05. Every network is the same MLP of 3 hidden layers of {r['hidden']} "
             f"(generator / denoiser {r['rows'][0]['parameters']:,} parameters, discriminator "
             f"{r['discriminator_parameters']:,}), trained by `polydiff.Trainer` for {r['steps']} steps of batch 512 "
             "from seeds 0..; 10000 samples each. Medians over seeds, min-max in brackets. A mode is hit with >= 20 "
             "samples within 3 sigma; KL is the mode histogram of those samples against uniform; a seed collapses "
             "below 20 of 25 modes. Diffusion: the best sampler at each NFE (ddpm at 1000).", "",
             "| model | NFE | modes hit | within 3 sigma | KL to uniform | collapsed seeds | us per sample | "
             "train s | sampler |", "|---|---|---|---|---|---|---|---|---|"]

    def med(rows, key, fmt):
        vals = [x[key] for x in rows]
        return f"{fmt.format(statistics.median(vals))} ({fmt.format(min(vals))}-{fmt.format(max(vals))})"

    for (model, nfe), rows in groups.items():
        collapsed = sum(x["modes"] < 20 for x in rows)
        samplers = sorted({x["sampler"] for x in rows})
        star = "*" if "merged" in r and rows[0].get("commit") == r["merged"]["commit"] else ""
        lines.append(f"| {model}{star} | {nfe} | {med(rows, 'modes', '{:.0f}')} | {med(rows, 'within_3sigma', '{:.3f}')} | "
                     f"{med(rows, 'kl_uniform', '{:.3f}')} | {collapsed}/{len(rows)} | "
                     f"{statistics.median(x['seconds_per_sample'] for x in rows) * 1e6:.1f} | "
                     f"{statistics.median(x['train_seconds'] for x in rows):.0f} | {', '.join(samplers)} |")
    lines += ["", "![samples and loss curves](gan_vs_diffusion.png)", ""]
    if r.get("figure", "gan_vs_diffusion.png") != "gan_vs_diffusion.png":
        lines += [f"![samples and loss curves of the models trained in this run]({r['figure']})", ""]
    return "\n".join(lines)


def plot(scatter: dict, curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(scatter)
    cols = max(5, len(curves))
    rows = math.ceil(len(names) / cols) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows))
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, name in zip(axes.flat, names):
        x = scatter[name]
        ax.set_axis_on()
        ax.scatter(x[:, 0], x[:, 1], s=0.5, alpha=0.4)
        ax.scatter(GRID[:, 0], GRID[:, 1], s=4, c="red")
        ax.set_xlim(-3, 3)
        ax.set_ylim(-3, 3)
        ax.set_title(name, fontsize=9)
    for ax, (name, c) in zip(axes[-1], curves.items()):
        ax.set_axis_on()
        ax.plot([s for s, _ in c["g"]], [v for _, v in c["g"]], label="generator" if c["d"] else "loss")
        if c["d"]:
            ax.plot([s for s, _ in c["d"]], [v for _, v in c["d"]], label="discriminator")
        ax.set_title(f"{name}: training loss", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    main()
