"""The diffusers backend against diffusers itself, on a tiny random Stable-Diffusion-shaped folder.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/diffusers_adapter.py [--repeats 9]

The folder (UNet2DConditionModel, AutoencoderKL, CLIPTextModel, 32x32 pixels, 8x8x4 latents) is
built by the test suite's ``tiny_sd_pipeline`` (plugins/diffusers/tests/conftest.py, imported by
path) and saved to a temporary folder; everything runs on the CPU at one torch thread.

1. Whole call: ``polydiff.generate(..., backend="diffusers", model=FOLDER)`` against
   ``StableDiffusionPipeline(..., output_type="np")`` with the matching scheduler, both warm.
2. Per step: the slope (t50 - t10) / 40 of the same calls at 10 and 50 steps.
3. Parity: ``polydiff.sample`` on diffusers' own timesteps from the same x_T (as test_parity.py
   does), the final latents against the pipeline's (``output_type="latent"``).
4. Defaults: ``generate`` with no sampler (unipc, logsnr-window) against the pipeline with the
   folder's saved DDIMScheduler, from the same standard-normal draw: different algorithms.

Timings are medians of ``--repeats`` interleaved (polydiff, diffusers) pairs with the spread (min-max).
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import polydiff
import torch
from common import RESULTS, git_commit, machine

TESTS = Path(__file__).resolve().parents[1] / "plugins" / "diffusers" / "tests"
PROMPT, GUIDANCE, SIDE = "a red circle", 3.0, 32
TIMED = ("ddim", "dpmpp_2m")
PARITY = ("ddim", "euler", "dpmpp_2m")
SHORT, LONG = 10, 50


def from_tests(name: str):
    """A module of the plugin's test suite, imported by path (its tiny builders and parity helpers)."""
    spec = importlib.util.spec_from_file_location(f"_diffusers_tests_{name}", TESTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


conftest, parity = from_tests("conftest"), from_tests("test_parity")


def build_folder(work: Path) -> Path:
    folder = work / "model"
    conftest.tiny_sd_pipeline(work).save_pretrained(folder)
    return folder


def open_pipeline(folder: Path):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def use_scheduler(pipe, sampler: str, saved: dict) -> None:
    pipe.scheduler = parity.diffusers_scheduler(sampler, saved)


def run_polydiff(folder: Path, steps: int, sampler: str | None = None):
    extra = {"sampler": sampler} if sampler else {}
    return polydiff.generate("image", PROMPT, backend="diffusers", model=str(folder), steps=steps,
                             guidance=GUIDANCE, seed=0, n=1, **extra)


def run_diffusers(pipe, steps: int, output_type: str = "np", latents=None):
    generator = torch.Generator().manual_seed(0)
    return pipe(PROMPT, num_inference_steps=steps, guidance_scale=GUIDANCE, height=SIDE, width=SIDE,
                generator=generator, latents=latents, output_type=output_type).images


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def whole_calls(folder, pipe, saved, repeats) -> list[dict]:
    """Per sampler and step count: whole-call seconds of both, and the part of polydiff's call
    spent in its sampling loop (``sampling_seconds`` in its metadata)."""
    rows = []
    for sampler in TIMED:
        use_scheduler(pipe, sampler, saved)
        for steps in (SHORT, 20):
            run_polydiff(folder, steps, sampler), run_diffusers(pipe, steps)  # warm
            ours, theirs, loop = [], [], []
            for _ in range(repeats):
                start = time.perf_counter()
                result = run_polydiff(folder, steps, sampler)
                ours.append(time.perf_counter() - start)
                loop.append(result.metadata["sampling_seconds"])
                theirs.append(seconds(lambda: run_diffusers(pipe, steps)))  # noqa: B023 (called now)
            rows.append({"sampler": sampler, "steps": steps, "polydiff": summary(ours), "diffusers": summary(theirs),
                         "polydiff_loop": summary(loop),
                         "ratio": statistics.median(ours) / statistics.median(theirs)})
    return rows


def slope(call) -> tuple[float, float]:
    """(per-step, per-call set-up) seconds of ``call(steps)`` from one SHORT- and one LONG-step run."""
    short, long = seconds(lambda: call(SHORT)), seconds(lambda: call(LONG))
    step = (long - short) / (LONG - SHORT)
    return step, short - SHORT * step


def per_step(folder, pipe, saved, repeats) -> list[dict]:
    """Per sampler: medians over pairs of the slope (t50 - t10) / 40 of each framework's whole
    call, and of the intercept (the per-call set-up: conditioning, decoding, ...)."""
    rows = []
    for sampler in TIMED:
        use_scheduler(pipe, sampler, saved)
        ours_call = functools.partial(run_polydiff, folder, sampler=sampler)
        theirs_call = functools.partial(run_diffusers, pipe)
        ours_call(LONG), theirs_call(LONG)  # warm
        ours, theirs = [], []
        for _ in range(repeats):
            ours.append(slope(ours_call))
            theirs.append(slope(theirs_call))
        (o_step, o_call), (d_step, d_call) = zip(*ours), zip(*theirs)
        rows.append({"sampler": sampler, "polydiff": summary(o_step), "diffusers": summary(d_step),
                     "ratio": statistics.median(o_step) / statistics.median(d_step),
                     "polydiff_setup": summary(o_call), "diffusers_setup": summary(d_call)})
    return rows


def differences(ours: torch.Tensor, theirs: torch.Tensor) -> dict:
    diff = float((ours - theirs).abs().max())
    return {"max_abs": diff, "max_rel": diff / float(theirs.abs().max())}


def endpoints(folder, pipe, saved) -> list[dict]:
    """Same x_T, same timesteps: polydiff.sample against the pipeline's final latents."""
    model, rows = parity.loaded(folder), []
    for sampler in PARITY:
        use_scheduler(pipe, sampler, saved)
        for steps in (SHORT, 20):
            pipe.scheduler.set_timesteps(steps)
            times = parity.times_of(pipe.scheduler, pipe.scheduler.config.num_train_timesteps)
            ours = parity.polydiff_run(model, sampler, times, 1, seed=0, prompt=PROMPT, guidance=GUIDANCE)
            start = parity.start_noise(model, times, 1, 0, model.space.shape)
            theirs = run_diffusers(pipe, steps, "latent", latents=start)
            rows.append({"sampler": sampler, "steps": steps, **differences(ours, theirs)})
    return rows


def defaults(folder, pipe, scheduler) -> list[dict]:
    """Each framework's default, from the same standard-normal draw z: polydiff scales it by
    sigma at the start of its own grid, the pipeline (with the folder's ``scheduler``) by its
    init_noise_sigma."""
    pipe.scheduler = scheduler
    shape = parity.loaded(folder).space.shape
    z = polydiff.SeededNoise.for_batch(0, 1).randn(shape)
    rows = []
    for steps in (SHORT, 20):
        result = run_polydiff(folder, steps)
        theirs = run_diffusers(pipe, steps, "latent", latents=z.clone())
        resolved = result.metadata["resolved"]
        rows.append({"steps": steps, "polydiff": f"{resolved['sampler']} + {resolved['spacing']}",
                     "diffusers": f"{type(scheduler).__name__} ({scheduler.config.timestep_spacing})",
                     **differences(result.samples, theirs)})
    return rows


def _ms(s: dict) -> str:
    return f"{s['median'] * 1e3:.1f} ({s['min'] * 1e3:.1f}-{s['max'] * 1e3:.1f})"


def report(res: dict, repeats: int, wall: float, note: str) -> str:
    lines = [
        "# The diffusers backend against diffusers, on a tiny random SD-shaped model\n",
        f"Tiny random Stable-Diffusion-shaped folder (`tiny_sd_pipeline` of plugins/diffusers/tests/conftest.py: "
        f"32x32 pixels, 8x8x4 latents), prompt {PROMPT!r}, guidance {GUIDANCE}, n=1, CPU at "
        f"{torch.get_num_threads()} torch thread(s). Timings: median of {repeats} interleaved pairs, spread min-max, "
        "both warm (models loaded once). Ratio = polydiff / diffusers (below 1: polydiff faster).\n",
        f"Produced by `benchmarks/diffusers_adapter.py` in {wall:.0f} s on {machine()}; {note}; "
        f"commit {git_commit()} (working tree may differ).\n",
        "## 1. Whole call\n",
        "`polydiff.generate(\"image\", ..., backend=\"diffusers\", sampler=S)` (its default spacing, "
        "logsnr-window: not diffusers' timesteps, the same number of network calls) vs "
        "`StableDiffusionPipeline(..., output_type=\"np\")` with DDIMScheduler / DPMSolverMultistepScheduler "
        "(dpmsolver++, order 2). Both decode with the VAE. \"polydiff loop\" is the `sampling_seconds` of its "
        "metadata: the sampling loop alone, without conditioning, decoding and metadata.\n",
        "| sampler | steps | polydiff ms | of which polydiff loop ms | diffusers ms | ratio |",
        "|---|---|---|---|---|---|",
        *(f"| {r['sampler']} | {r['steps']} | {_ms(r['polydiff'])} | {_ms(r['polydiff_loop'])} "
          f"| {_ms(r['diffusers'])} | **{r['ratio']:.2f}** |" for r in res["whole_call"]),
        f"\n## 2. Per step: (t{LONG} - t{SHORT}) / {LONG - SHORT} of the whole calls\n",
        "The same network (batch 2: conditioned and unconditioned), so the difference is the loop and the "
        f"guidance / condition handling. Set-up per call is the intercept t{SHORT} - {SHORT} x per-step "
        "(conditioning, x_T, decoding, output conversion, metadata).\n",
        "| sampler | polydiff ms/step | diffusers ms/step | ratio | polydiff set-up ms/call | diffusers set-up ms/call |",
        "|---|---|---|---|---|---|",
        *(f"| {r['sampler']} | {_ms(r['polydiff'])} | {_ms(r['diffusers'])} | **{r['ratio']:.2f}** "
          f"| {_ms(r['polydiff_setup'])} | {_ms(r['diffusers_setup'])} |" for r in res["per_step"]),
        "\n## 3. Endpoint agreement: same x_T, same timesteps\n",
        "`polydiff.sample` on times `(k + 1) / 1000` for diffusers' timesteps k (then 0), from "
        "`SeededNoise * sigma[0]` passed to the pipeline as `latents=`, `output_type=\"latent\"`. "
        "Euler: EulerDiscreteScheduler, timestep_spacing=\"leading\". max rel = max|diff| / max|diffusers|.\n",
        "| sampler | steps | max abs diff | max rel diff |",
        "|---|---|---|---|",
        *(f"| {r['sampler']} | {r['steps']} | {r['max_abs']:.2e} | {r['max_rel']:.2e} |" for r in res["endpoints"]),
        "\n## 4. Defaults: different algorithms, not parity\n",
        "`generate` with no sampler or spacing against the pipeline with the folder's saved scheduler, both "
        "from the same standard-normal draw (polydiff scales it by sigma at the start of its grid, diffusers by "
        "`init_noise_sigma` = 1). Different samplers and timesteps: this says how far apart the two defaults "
        "land on this untrained model, not whether either is right.\n",
        "| steps | polydiff default | diffusers default | max rel diff |",
        "|---|---|---|---|",
        *(f"| {r['steps']} | {r['polydiff']} | {r['diffusers']} | {r['max_rel']:.2e} |" for r in res["defaults"]),
    ]
    return "\n".join(lines) + "\n"


def load_note() -> str:
    return f"1-minute load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start"


def quiet() -> None:
    import diffusers.utils.logging as dlog
    import transformers

    dlog.set_verbosity_error(), dlog.disable_progress_bar()
    transformers.logging.set_verbosity_error(), transformers.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)  # the tiny scheduler's steps_offset=0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(1)
    quiet()
    start, note = time.time(), load_note()
    with tempfile.TemporaryDirectory() as work:
        folder = build_folder(Path(work))
        pipe = open_pipeline(folder)
        default, saved = pipe.scheduler, dict(pipe.scheduler.config)
        res = {"whole_call": whole_calls(folder, pipe, saved, args.repeats),
               "per_step": per_step(folder, pipe, saved, args.repeats),
               "endpoints": endpoints(folder, pipe, saved),
               "defaults": defaults(folder, pipe, default)}
    text = report(res, args.repeats, time.time() - start, note)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "diffusers_adapter.md").write_text(text)
    (out / "diffusers_adapter.json").write_text(json.dumps(res, indent=1))
    print(text)


if __name__ == "__main__":
    main()
