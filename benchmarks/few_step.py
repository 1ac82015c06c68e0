"""The few-step students (``polydiff.distill``: 4 unguided ddim steps) against the diffusion
models they came from (20 unipc steps with guidance): prompt adherence by the plugins' own
checkers (which can say no), on caption-style and freely phrased prompts, and warm time per
sample through ``polydiff.generate``, all in one run.

    .venv/bin/python benchmarks/few_step.py [--image-prompts 96] [--audio-prompts 120] [--repeats 9] [--out DIR]

- image: shapes-unet vs shapes-turbo, the image evaluator's adherence (``polydiff_image.evaluate``,
  seed 1234): colour, shape, size and position, and the one-shape rate;
- audio: notes-unet vs notes-turbo, the audio evaluator's adherence (``polydiff_audio.evaluate``,
  seed 1234, half as many paraphrases): pitch, chord (root and quality), instrument and octave.

Timings: the two backends interleaved (one call of each per repeat, after a warm-up call), the
median wall time per call divided by n; "network rows per sample" counts the denoiser's rows
(a guided step evaluates the network on twice the rows). Skips a modality whose student's
checkpoint is not there.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import polydiff
import torch
from common import RESULTS, git_commit, load_note, machine

PAIRS = {"image": ("shapes-unet", "shapes-turbo"), "audio": ("notes-unet", "notes-turbo")}
TIMED = {"image": [("a large red circle at the top", {"n": 1}), ("a large red circle at the top", {"n": 4})],
         "audio": [("a plucked string playing an A minor chord", {"n": 1, "seconds": 2.0})]}


def adherence(modality: str, backend: str, prompts: int) -> dict:
    if modality == "image":
        from polydiff_image import evaluate

        return {"caption-style": evaluate.adherence(prompts, 1234, None, backend=backend),
                "paraphrased": evaluate.adherence(prompts, 1234, None, phrase=evaluate.paraphrase, backend=backend)}
    from polydiff_audio import evaluate

    return evaluate.adherence(prompts, 1234, None, backend=backend)


def timings(modality: str, prompt: str, fields: dict, repeats: int) -> dict:
    backends = PAIRS[modality]
    times = {b: [] for b in backends}
    for b in backends:
        polydiff.generate(modality, prompt, seed=0, backend=b, **fields)  # load and warm
    for r in range(repeats):
        for b in backends:
            start = time.perf_counter()
            polydiff.generate(modality, prompt, seed=r, backend=b, **fields)
            times[b].append(time.perf_counter() - start)
    return {b: statistics.median(v) / fields["n"] for b, v in times.items()}


def sampling(modality: str, backend: str) -> dict:
    fields = {"seconds": 2.0} if modality == "audio" else {}
    resolved = polydiff.generate(modality, TIMED[modality][0][0], n=1, seed=0, backend=backend,
                                 **fields).metadata["resolved"]
    rows = resolved["steps"] * (2 if resolved["guidance"] != 1 else 1)
    return {**{k: resolved[k] for k in ("sampler", "steps", "guidance")}, "network_rows": rows}


def quality_rows(modality: str, quality: dict) -> list[str]:
    a, b = PAIRS[modality]
    lines = []
    if modality == "image":
        for style in ("caption-style", "paraphrased"):
            for k in ("colour", "shape", "size", "position"):
                lines.append(f"| {k} ({style}, {quality[a][style]['prompts']}) | " + " | ".join(
                    f"{quality[x][style]['accuracy'][k]:.1%}" for x in (a, b)) + " |")
            lines.append(f"| one shape per image ({style}) | " + " | ".join(
                f"{quality[x][style]['one_shape']:.1%}" for x in (a, b)) + " |")
        return lines
    for style, label in (("caption", "caption-style"), ("paraphrase", "paraphrased")):
        for f in ("pitch", "quality", "instrument", "octave"):
            cells = []
            for x in (a, b):
                hits = quality[x][style]["checker"][f].get("all")
                cells.append(f"{hits[0] / hits[1]:.1%} ({hits[1]})" if hits and hits[1] else "-")
            lines.append(f"| {f} ({label}) | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image-prompts", type=int, default=96)
    ap.add_argument("--audio-prompts", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    note = load_note()
    lines = [f"# Few-step students vs their teachers ({machine()}; {torch.get_num_threads()} threads; {note}; "
             f"commit {git_commit()})", "",
             "`.venv/bin/python benchmarks/few_step.py` — adherence by the plugins' shipped checkers (the "
             "evaluators' own prompts and seeds); time per sample: median of "
             f"{args.repeats} interleaved warm `polydiff.generate` calls.", ""]
    report = {}
    backends = polydiff.components().backends
    for modality, (teacher, student) in PAIRS.items():
        if student not in backends or teacher not in backends:
            lines += [f"{modality}: {student} is not installed; skipped.", ""]
            continue
        prompts = args.image_prompts if modality == "image" else args.audio_prompts
        quality = {b: adherence(modality, b, prompts) for b in (teacher, student)}
        speed = {f"n={f['n']}": timings(modality, p, f, args.repeats) for p, f in TIMED[modality]}
        how = {b: sampling(modality, b) for b in (teacher, student)}
        report[modality] = {"quality": quality, "seconds_per_sample": speed, "sampling": how}
        lines += [f"## {modality}", "", f"| | {teacher} | {student} |", "|---|---|---|",
                  "| sampling | " + " | ".join(f"{h['sampler']} {h['steps']} steps, guidance {h['guidance']:g}"
                                              for h in how.values()) + " |",
                  "| network rows per sample | " + " | ".join(str(h["network_rows"]) for h in how.values()) + " |",
                  *quality_rows(modality, quality)]
        for key, per in speed.items():
            lines.append(f"| ms per sample, {key} | {1000 * per[teacher]:.1f} | {1000 * per[student]:.1f} "
                         f"({per[teacher] / per[student]:.2f}x faster) |")
        lines.append("")
        print("\n".join(lines), flush=True)
    text = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "few_step.md").write_text(text)
    (args.out / "few_step.json").write_text(json.dumps(report, indent=2))
    print(f"saved {args.out / 'few_step.md'}")


if __name__ == "__main__":
    main()
