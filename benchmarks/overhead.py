"""1b. Framework overhead: wall time per step of the sampling loop around a near-free denoiser.

    .venv/bin/python benchmarks/overhead.py [--repeats 15] [--device cpu|cuda|all]

The denoiser is ``x * 0.5`` (returned as x0 to polydiff and as epsilon to diffusers), so what is
timed is the framework: polydiff's ``sample`` (its model wrapper, NaN bookkeeping, step hooks and
the sampler's arithmetic) against a diffusers pipeline's scheduler loop (``scale_model_input``,
the model call and ``scheduler.step``, under ``torch.no_grad`` as its pipelines run it).
Per-step time is the slope between a 10-step and a 50-step run, so per-call set-up (schedule
grids, ``set_timesteps``, drawing x_T) is left out; it is reported on its own. Each is the
fastest of ``--repeats`` runs (as ``timeit`` does: the least disturbed by anything else running).
Shapes: [batch, 3, 32, 32] (the image plugin's size), float32.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import polydiff
import torch
from common import RESULTS, diffusers_scheduler, git_commit, load_note, machine, schedule

# polydiff sampler (spacing) <-> diffusers scheduler (config)
PAIRS = [
    ("ddim", "trailing", "DDIM", "DDIMScheduler", {"clip_sample": False, "timestep_spacing": "trailing"}),
    ("euler", "trailing", "Euler", "EulerDiscreteScheduler", {"timestep_spacing": "trailing"}),
    ("dpmpp_2m", "logsnr", "DPMSolverMultistep 2M", "DPMSolverMultistepScheduler", {}),
    ("dpmpp_3m", "logsnr", "DPMSolverMultistep 3M", "DPMSolverMultistepScheduler", {"solver_order": 3}),
    ("unipc", "logsnr-window", "UniPC (order 2)", "UniPCMultistepScheduler", {}),
]
BATCHES = (1, 64)
STEPS = (10, 50)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_polydiff(sampler, spacing, steps, batch, device, sch):
    denoiser = lambda x, t, c: x * 0.5  # noqa: E731
    _sync(device)
    start = time.perf_counter()
    x = polydiff.sample(denoiser, (batch, 3, 32, 32), sampler=sampler, steps=steps, spacing=spacing,
                        schedule=sch, seed=0, device=device)
    _sync(device)
    assert x.shape[0] == batch
    return time.perf_counter() - start


def time_diffusers(cls, config, steps, batch, device):
    sched = diffusers_scheduler(cls, **config)
    gen = torch.Generator(device).manual_seed(0)
    model = lambda x, t: x * 0.5  # noqa: E731
    _sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        sched.set_timesteps(steps, device=device)
        x = torch.randn((batch, 3, 32, 32), generator=gen, device=device) * sched.init_noise_sigma
        for t in sched.timesteps:
            inp = sched.scale_model_input(x, t)
            x = sched.step(model(inp, t), t, x, return_dict=False)[0]
    _sync(device)
    return time.perf_counter() - start


def slope(fn, repeats):
    """Per-step and per-call seconds: ``repeats`` pairs of a 10- and a 50-step run, each pair
    giving one per-step estimate (the slope), and a 1-step run beside each pair giving one
    set-up estimate (its time less the pair's per-step time: extrapolated over one step, not
    ten, so the per-step noise hardly enters it); returns their medians and the per-step spread
    (min, max) across the pairs, which shows whether the cost is steady from call to call."""
    fn(1)  # warm up
    fn(STEPS[0])
    fn(STEPS[1])
    per_step, per_call = [], []
    for _ in range(repeats):
        one, short, long = fn(1), fn(STEPS[0]), fn(STEPS[1])
        step = (long - short) / (STEPS[1] - STEPS[0])
        per_step.append(step)
        per_call.append(one - step)
    return statistics.median(per_step), statistics.median(per_call), (min(per_step), max(per_step))


def measure(device, repeats):
    """diffusers first, before any ``polydiff.sample`` call sets polydiff's heap thresholds
    (process-wide, see polydiff/heap.py), so diffusers runs with malloc as its users have it;
    then polydiff; then diffusers again at batch 64 under the same thresholds, so the table
    shows how much of the difference is the allocator."""
    sch = schedule()
    rows = {}
    for pd_name, _spacing, df_label, cls, config in PAIRS:
        for batch in BATCHES:
            rows[pd_name, batch] = r = dict(device=device.type, polydiff=pd_name, diffusers=df_label, batch=batch)
            r["d_step"], r["d_call"], r["d_spread"] = slope(
                lambda s: time_diffusers(cls, config, s, batch, device), repeats)  # noqa: B023 (called now)
    for pd_name, spacing, df_label, cls, config in PAIRS:
        for batch in BATCHES:
            r = rows[pd_name, batch]
            r["p_step"], r["p_call"], r["p_spread"] = slope(
                lambda s: time_polydiff(pd_name, spacing, s, batch, device, sch), repeats)  # noqa: B023
            if batch > 1:
                r["d_heap_step"], _, _ = slope(lambda s: time_diffusers(cls, config, s, batch, device), repeats)  # noqa: B023
            print(f"  {device.type} b={batch} {pd_name}: {r['p_step'] * 1e6:.0f} us/step vs {df_label}: "
                  f"{r['d_step'] * 1e6:.0f} us/step", flush=True)
    return list(rows.values())


def _us(v):
    return f"{v * 1e6:.0f}"


def table(rows):
    out = ["| device | batch | polydiff sampler | diffusers scheduler | polydiff us/step (spread) "
           "| diffusers us/step (spread) | ratio | diffusers us/step, polydiff's heap thresholds "
           "| polydiff us/call set-up | diffusers us/call set-up |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ps, ds = r["p_spread"], r["d_spread"]
        heap = _us(r["d_heap_step"]) if "d_heap_step" in r else "-"
        out.append(f"| {r['device']} | {r['batch']} | {r['polydiff']} | {r['diffusers']} "
                   f"| {_us(r['p_step'])} ({_us(ps[0])}-{_us(ps[1])}) | {_us(r['d_step'])} ({_us(ds[0])}-{_us(ds[1])}) "
                   f"| **{r['p_step'] / r['d_step']:.2f}** | {heap} | {_us(r['p_call'])} | {_us(r['d_call'])} |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="all", help="cpu, cuda or all (cuda only where available)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads on CPU (0: torch's default)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [torch.device(d) for d in devices if d != "cuda" or torch.cuda.is_available()]
    start, load = time.time(), load_note()
    rows = [r for d in devices for r in measure(d, args.repeats)]
    text = (
        "# 1b. Framework overhead per sampling step: polydiff vs diffusers\n\n"
        "Denoiser `x * 0.5` (near free), shape [batch, 3, 32, 32] float32. Per-step time is the slope "
        f"between {STEPS[0]}- and {STEPS[1]}-step runs, the median of {args.repeats} pairs, with the spread "
        "(min-max) across the pairs; set-up per call (grid / set_timesteps, x_T, the end of the call) is a 1-step "
        "run's time less one step's, the median over the repeats. "
        "diffusers is timed before polydiff first runs (polydiff sets glibc's mmap and trim thresholds "
        "process-wide at its first `sample`, see `polydiff/heap.py`), and again at batch 64 after, "
        "under the same thresholds. polydiff: `polydiff.sample` (inference_mode, "
        "NaN bookkeeping on the device, step hooks); diffusers: a pipeline's loop (`scale_model_input`, "
        "model, `scheduler.step`) under no_grad. Ratio = polydiff / diffusers (below 1: polydiff faster).\n\n"
        f"Produced by `benchmarks/overhead.py` in {time.time() - start:.0f} s on {machine()}; "
        f"{torch.get_num_threads()} CPU threads; {load}; commit {git_commit()}.\n\n" + table(rows) + "\n"
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "overhead.md" if devices != [torch.device("cuda")] else "overhead_cuda.md"
    (out / name).write_text(text)
    (out / name.replace(".md", ".json")).write_text(json.dumps(rows, indent=1))
    print(text)
    print(f"saved {out / name}")


if __name__ == "__main__":
    main()
