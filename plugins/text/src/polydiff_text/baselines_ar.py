"""The autoregressive baseline: the diffusion model's transformer (:mod:`.model`, same size)
with a causal mask, trained on the same 48-token sequences (:mod:`.backend`'s layout), with the
same caption conditioning, condition dropout, optimizer, learning-rate curve
(:func:`polydiff.learning_rate`), bf16 autocast, EMA, batch size and number of steps, by plain
next-token cross-entropy over all 48 positions (the positions the diffusion loss covers).

It lives outside the package (default ``out/eval/text/ar``): it is a yardstick for the
evaluator, which trains it when it is missing (``python -m polydiff_text.baselines_ar [--out
DIR] [--steps N]``; about 0.4 s a step on one CPU thread,
so the RECIPE's 12000 steps take about 80 minutes).
"""
from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import polydiff
import torch
from torch.nn import functional as F

from . import backend, vocab
from .model import Transformer

DEFAULT_DIR = Path("out/eval/text/ar")


def _seed(seed: int, step: int, stream: str) -> int:
    key = f"ar/{seed}/{step}/{stream}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


def nll(model: Transformer, tokens: torch.Tensor, cond) -> torch.Tensor:
    """Per-position negative log-likelihood [n, L] of ``tokens`` under the causal model."""
    logits = model(tokens, torch.zeros(tokens.shape[0], device=tokens.device), cond).float()
    logits = logits.index_fill(-1, torch.tensor([backend.ids(vocab.MASK)], device=tokens.device), -torch.inf)
    return F.cross_entropy(logits.flatten(0, 1), tokens.flatten(), reduction="none").view(tokens.shape)


@torch.inference_mode(False)
@torch.enable_grad()
def train(out=None, steps: int | None = None, progress: bool = True, log=print) -> Path:
    """Train the causal model with the diffusion RECIPE's budget; return the checkpoint path.
    Gradients are switched on here, since an evaluator calls this under inference mode."""
    recipe = backend.RECIPE
    steps = steps or recipe["steps"]
    curve = polydiff.TrainConfig.build(**{**recipe, "steps": steps, "mask_id": backend.ids(vocab.MASK)})
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(recipe.get("autocast"))
    out = Path(out or DEFAULT_DIR)
    source = backend.source()
    torch.manual_seed(recipe["seed"])
    model = Transformer(vocab.size(), **{**backend.ARCH, "causal": True})
    opt = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    gdata, gnoise = torch.Generator(), torch.Generator()
    started, total, count = time.time(), 0.0, 0
    info = {"model_config": model.config, "prediction": "logits", "kind": "autoregressive baseline",
            "recipe": {**recipe, "steps": steps}}
    for step in range(steps):
        gdata.manual_seed(_seed(recipe["seed"], step, "data"))
        gnoise.manual_seed(_seed(recipe["seed"], step, "noise"))
        x0, cond = source(recipe["batch_size"], gdata)
        drop = torch.rand(x0.shape[0], generator=gnoise) < recipe["cond_dropout"]
        null = source.null_cond(x0.shape[0])
        cond = {k: torch.where(drop[:, None], null[k], v) for k, v in cond.items()}
        for group in opt.param_groups:
            group["lr"] = polydiff.learning_rate(curve, step)
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            loss = nll(model, x0, cond).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe["grad_clip"])
        opt.step()
        decay = min(recipe["ema_decay"], (1 + step + 1) / (10 + step + 1))
        with torch.no_grad():
            for k, v in model.state_dict().items():
                ema[k].lerp_(v, 1 - decay) if ema[k].is_floating_point() else ema[k].copy_(v)
        total, count = total + float(loss.detach()), count + 1
        done = step + 1
        if done % recipe["log_every"] == 0 or done == steps:
            if progress:
                log(f"ar step {done}/{steps} loss {total / count:.4f} ({time.time() - started:.0f} s)")
            total, count = 0.0, 0
        if done % recipe["checkpoint_every"] == 0 or done == steps:
            path = polydiff.save_checkpoint(out, ema, {**info, "step": done,
                                                       "seconds": round(time.time() - started)})
    return path


def load(device="cpu", folder=None) -> Transformer:
    tensors, config = polydiff.load_checkpoint(folder or DEFAULT_DIR, device=device)
    model = Transformer(**config["model_config"]).to(device)
    model.load_state_dict(tensors)
    return model.eval().requires_grad_(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(DEFAULT_DIR))
    parser.add_argument("--steps", type=int)
    args = parser.parse_args()
    print(train(args.out, args.steps, log=lambda m: print(m, flush=True)))


if __name__ == "__main__":
    main()
