"""The spread of the text model's training loss over batches, independent vs stratified times.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/text_loss_variance.py [--batches 150] [--folder DIR]

The MDLM bound of the shipped text transformer (or the checkpoint in ``--folder``) on the same
``--batches`` training batches of 64, once with independent uniform times and once with
``t_sampling="stratified"`` (one time per 1/64 slice): both estimate the same bound, and the
smaller spread is what stage 2 of the text recipe trains with.
"""
from __future__ import annotations

import argparse

import torch
from polydiff.masked import mask_tokens, masked_loss
from polydiff.training import _training_times
from polydiff_text import backend, vocab


@torch.inference_mode()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=150)
    parser.add_argument("--folder")
    args = parser.parse_args()
    loaded = backend.load("cpu", args.folder)
    source, mask_id, g = backend.source(), backend.ids(vocab.MASK), torch.Generator().manual_seed(0)
    batches = [source(64, g) for _ in range(args.batches)]
    print("| times | mean loss | std over batches |\n|---|---|---|")
    for sampling in ("uniform", "stratified"):
        losses = []
        for x0, cond in batches:
            t = 0.001 + 0.998 * _training_times(x0.shape[0], sampling, g, "cpu")
            xt = mask_tokens(x0, loaded.schedule.alpha(t), mask_id, torch.rand(x0.shape, generator=g))
            losses.append(float(masked_loss(loaded.net(xt, t, cond), x0, xt, loaded.schedule.weight(t), mask_id)))
        loss = torch.tensor(losses)
        print(f"| {sampling} | {float(loss.mean()):.4f} | {float(loss.std()):.4f} |")


if __name__ == "__main__":
    main()
