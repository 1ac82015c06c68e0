"""1c. End to end: the image plugin's shipped UNet driven by polydiff and by a diffusers scheduler loop.

    .venv/bin/python benchmarks/end_to_end.py [--batch 8] [--nfe 10 20] [--device cpu|cuda|all]

Same network, prompt conditioning ("a red circle", through the plugin's minilm encoding), batch,
x_T and NFE in both. polydiff: ``polydiff.sample`` with its defaults over
``as_denoiser(net, vp-cosine, "v")``. diffusers: a pipeline's loop (``scale_model_input``, the
network, ``scheduler.step``) with DPMSolverMultistepScheduler (2M, its recommended default) and
UniPCMultistepScheduler, given the same schedule as 1000 trained betas (timestep k at
t = (k + 1) / 1000 * t_max) and prediction_type="v_prediction"; the network gets that t.

Reported per (framework, NFE): time per image (fastest of --repeats, divided by the batch), peak memory of the sampling
(CPU: the rise of the process's peak RSS, each measurement in a fresh process; CUDA:
``torch.cuda.max_memory_allocated``), and the endpoint RMSE to a fine reference solve of the same
probability-flow ODE from the same x_T (polydiff Heun, 250 steps in log-SNR), i.e. how well each
reaches what the model would give with unlimited steps.
Skips (exit 0, with a note) while the checkpoint is not there.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polydiff
import torch
from common import RESULTS, git_commit, load_note, machine

HERE = Path(__file__).resolve().parent
PROMPT = "a red circle"
SCHEDULERS = {"DPMSolverMultistep 2M": ("DPMSolverMultistepScheduler", {}),
              "UniPC": ("UniPCMultistepScheduler", {})}


def checkpoint_path() -> Path | None:
    try:
        from polydiff_image import backend
    except ImportError:
        return None
    path = backend.WEIGHTS_DIR / "model.safetensors"
    return path if path.is_file() else None


def _checkpoint_step():
    try:
        return json.loads(checkpoint_path().with_suffix(".json").read_text()).get("step", "?")
    except (OSError, ValueError, AttributeError):
        return "?"


def setup(device, batch):
    from polydiff_image import backend

    loaded = backend.load(str(device))
    encoder = polydiff.load_encoder(backend.TEXT_ENCODER, str(device))
    cond = encoder.encode([PROMPT] * batch, max_tokens=backend.TOKENS)  # what the image plugin plans
    return loaded, {k: v.to(device) for k, v in cond.items()}


def initial_state(schedule, batch, device):
    z = polydiff.SeededNoise.for_batch(0, batch, device=device).randn((3, 32, 32))
    return z * schedule.floats(schedule.t_max)[1]


def discrete_betas(schedule, n=1000):
    """The schedule on diffusers' grid: timestep k at t = (k + 1) / n * t_max."""
    t = torch.arange(1, n + 1, dtype=torch.float64) / n * schedule.t_max
    ac = schedule.alpha(t) ** 2
    prev = torch.cat([torch.ones(1, dtype=torch.float64), ac[:-1]])
    return (1 - ac / prev).clamp(max=0.999).numpy(), t


def run_polydiff(loaded, cond, x_t, nfe, device, options):
    D = polydiff.as_denoiser(loaded.net, loaded.schedule, loaded.prediction)
    # polydiff draws x_T itself from the same seeds: check it is the state given to diffusers
    return polydiff.sample(D, tuple(x_t.shape), steps=nfe, cond=cond, seed=0, device=device, **options)


def make_scheduler(loaded, label):
    """A diffusers scheduler on the model's schedule (built once, as a pipeline does at load)."""
    import diffusers

    cls, config = SCHEDULERS[label]
    betas, _ = discrete_betas(loaded.schedule)
    return getattr(diffusers, cls)(num_train_timesteps=1000, trained_betas=betas,
                                   prediction_type="v_prediction", **config)


def run_diffusers(loaded, cond, x_t, nfe, device, sched, options):
    t_max = loaded.schedule.t_max
    autocast = options.get("autocast")
    net = loaded.net
    with torch.no_grad():
        sched.set_timesteps(nfe, device=device)
        x = x_t * sched.init_noise_sigma
        for t in sched.timesteps:
            inp = sched.scale_model_input(x, t)
            tt = ((t.to(torch.float32) + 1) / 1000 * t_max).expand(x.shape[0])
            if autocast:
                with torch.autocast(device.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[autocast]):
                    v = net(inp, tt, cond)
                v = v.float()
            else:
                v = net(inp, tt, cond)
            x = sched.step(v, t, x, return_dict=False)[0]
    return x


def reference(loaded, cond, device, batch, steps=250):
    sch = loaded.schedule
    D = polydiff.as_denoiser(loaded.net, sch, loaded.prediction)
    return polydiff.sample(D, (batch, 3, 32, 32), sampler="heun", spacing="logsnr", steps=steps, cond=cond,
                           seed=0, device=device)


def _status_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss():
    """Resets the process's peak RSS to its current RSS (Linux: clear_refs 5); returns it in KiB."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return _status_kib("VmRSS")
    except OSError:  # not Linux, or not allowed: the lifetime peak
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_rss():
    try:
        return _status_kib("VmHWM")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def worker(args):
    """One measurement in this process: prints a JSON line."""
    device = torch.device(args.device)
    loaded, cond = setup(device, args.batch)
    x_t = initial_state(loaded.schedule, args.batch, device)
    options = json.loads(args.options)
    if options.get("channels_last"):
        loaded.net.to(memory_format=torch.channels_last)
    if args.framework == "polydiff":
        fn = lambda: run_polydiff(loaded, cond, x_t, args.nfe_one, device, options)  # noqa: E731
    else:
        sched = make_scheduler(loaded, args.framework)  # before the memory baseline
        fn = lambda: run_diffusers(loaded, cond, x_t, args.nfe_one, device, sched, options)  # noqa: E731
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    base_rss = _reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated()
    out = fn()  # warm-up (and compilation, when asked for)
    times = []
    for _ in range(args.repeats):
        sync()
        start = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - start)
    peak = ((torch.cuda.max_memory_allocated() - base_cuda) / 2**20 if device.type == "cuda"
            else (_peak_rss() - base_rss) / 1024)
    np.save(args.save, out.float().cpu().numpy(), allow_pickle=False)
    print(json.dumps(dict(time=min(times) / args.batch, peak_mib=peak)))


def measure(framework, nfe, device, batch, repeats, options, tmp):
    save = tmp / f"{framework.replace(' ', '_')}_{nfe}_{device}_{abs(hash(json.dumps(options)))}.npy"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--framework", framework,
           "--nfe-one", str(nfe), "--device", device, "--batch", str(batch), "--repeats", str(repeats),
           "--options", json.dumps(options), "--save", str(save)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE)
    if out.returncode != 0:
        raise RuntimeError(f"{framework} worker failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["x"] = torch.from_numpy(np.load(save, allow_pickle=False))
    save.unlink()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--nfe", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ref-steps", type=int, default=250, help="Heun steps of the reference solve")
    parser.add_argument("--device", default="all", help="cpu, cuda or all (cuda only where available)")
    parser.add_argument("--out", default=str(RESULTS))
    # internal: one measurement per process
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--framework", help=argparse.SUPPRESS)
    parser.add_argument("--nfe-one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    reason = None
    if checkpoint_path() is None:
        reason = ("the image plugin's checkpoint (plugins/image/src/polydiff_image/weights/shapes-unet/"
                  "model.safetensors) is not there yet; `polydiff train image` makes it")
    else:
        try:
            setup(torch.device("cpu"), 1)
        except Exception as exc:  # noqa: BLE001 - e.g. weights from another version of the UNet
            reason = f"the checkpoint does not load: {str(exc).splitlines()[0]}"
    if reason is not None:
        note = f"# 1c. End to end with the image UNet\n\nSkipped: {reason}.\n"
        (out / "end_to_end.md").write_text(note)
        print(note)
        return
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d != "cuda" or torch.cuda.is_available()]
    tmp = (out / ".tmp").resolve()  # workers run in another folder
    tmp.mkdir(exist_ok=True)
    start, load = time.time(), load_note()
    rows = []
    for device in devices:
        dev = torch.device(device)
        loaded, cond = setup(dev, args.batch)
        ref = reference(loaded, cond, dev, args.batch, args.ref_steps).float().cpu()
        # polydiff's own x_T must be the one handed to diffusers
        x_t = initial_state(loaded.schedule, args.batch, dev)
        del loaded
        configs = [("fp32", {}, {})]
        if device == "cuda":
            configs += [("bf16 autocast", {"autocast": "bf16"}, {"autocast": "bf16"}),
                        ("bf16 + compile + channels-last", {"autocast": "bf16", "compile": True,
                                                             "channels_last": True}, None)]
        for nfe in args.nfe:
            for label, p_opts, d_opts in configs:
                p = measure("polydiff", nfe, device, args.batch, args.repeats, p_opts, tmp)
                p_err = ((p["x"] - ref) ** 2).mean().sqrt().item()
                for df in SCHEDULERS:
                    if d_opts is None:
                        d = None
                    else:
                        d = measure(df, nfe, device, args.batch, args.repeats, d_opts, tmp)
                    d_err = None if d is None else ((d["x"] - ref) ** 2).mean().sqrt().item()
                    rows.append(dict(device=device, nfe=nfe, config=label, diffusers=df, p=p, d=d,
                                     p_err=p_err, d_err=d_err))
                    print(f"  {device} {nfe} NFE {label}: polydiff {p['time'] * 1e3:.1f} ms/img "
                          f"{p['peak_mib']:.0f} MiB rmse {p_err:.4f}"
                          + ("" if d is None else f" | {df} {d['time'] * 1e3:.1f} ms/img {d['peak_mib']:.0f} "
                                                  f"MiB rmse {d_err:.4f}"), flush=True)
        del x_t
    try:
        tmp.rmdir()
    except OSError:
        pass

    def r(a, b):
        return "-" if b is None or a is None or b == 0 else f"**{a / b:.2f}**"

    lines = ["| device | NFE | precision | diffusers scheduler | polydiff ms/image | diffusers ms/image | ratio "
             "| polydiff peak MiB | diffusers peak MiB | ratio | polydiff RMSE to reference "
             "| diffusers RMSE to reference | ratio |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        p, d = row["p"], row["d"]
        dt = None if d is None else d["time"]
        dm = None if d is None else d["peak_mib"]
        lines.append(
            f"| {row['device']} | {row['nfe']} | {row['config']} | {row['diffusers']} | {p['time'] * 1e3:.1f} | "
            + ("-" if d is None else f"{dt * 1e3:.1f}") + f" | {r(p['time'], dt)} | {p['peak_mib']:.0f} | "
            + ("-" if d is None else f"{dm:.0f}") + f" | {r(p['peak_mib'], dm) if dm and dm > 1 else '-'} | "
            f"{row['p_err']:.4f} | " + ("-" if row["d_err"] is None else f"{row['d_err']:.4f}")
            + f" | {r(row['p_err'], row['d_err'])} |")
    from polydiff.loop import DEFAULT_SAMPLER, DEFAULT_SPACING

    text = (
        "# 1c. End to end: the shipped image UNet, polydiff vs diffusers\n\n"
        f"Batch {args.batch}, prompt embedding of {PROMPT!r}, same x_T; polydiff defaults "
        f"({DEFAULT_SAMPLER} + {DEFAULT_SPACING}); diffusers schedulers at their defaults on the same "
        "schedule (trained_betas, v_prediction). Time per image: fastest of "
        f"{args.repeats} runs after a warm-up, divided by the batch. Peak memory: rise of the peak RSS of a "
        "fresh process during sampling (CPU; the network's weights are loaded before) or of "
        "`torch.cuda.max_memory_allocated` (CUDA). RMSE to reference: pixel-space ([-1, 1]) root mean "
        f"square distance to a {args.ref_steps}-step Heun solve of the same ODE from the same x_T. Ratio = polydiff / diffusers.\n\n"
        f"Produced by `benchmarks/end_to_end.py` in {time.time() - start:.0f} s on {machine()}; "
        f"{torch.get_num_threads()} CPU threads; checkpoint {checkpoint_path().relative_to(HERE.parent)} "
        f"(training step {_checkpoint_step()}); {load}; commit {git_commit()}.\n\n"
        + "\n".join(lines) + "\n"
    )
    name = "end_to_end.md" if devices != ["cuda"] else "end_to_end_cuda.md"
    (out / name).write_text(text)
    print(text)
    print(f"saved {out / name}")


if __name__ == "__main__":
    main()
