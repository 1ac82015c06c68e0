"""Gathers the benchmark tables into one page, ``RESULTS/README.md``, with the issue's targets checked.

    .venv/bin/python benchmarks/report.py [RESULTS_DIR]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from common import RESULTS

PARTS = ["accuracy.md", "sampler_suite.md", "overhead.md", "overhead_cuda.md", "end_to_end.md", "end_to_end_cuda.md",
         "oracle_errors.md", "cli_latency.md", "serve.md", "diffusers_adapter.md",
         "gan_vs_diffusion.md", "few_step.md"]


def targets(folder: Path) -> list[str]:
    lines = ["| target | measured | met |", "|---|---|---|"]
    acc = folder / "accuracy.json"
    if acc.is_file():
        a = json.loads(acc.read_text())
        for j, budget in enumerate(a["budgets"]):
            limit = 0.5 if budget == 10 else 1.0
            for who, cells in (("default " + a["label"].split("(", 1)[1].rstrip(")"), a["default"]),
                               ("best polydiff", a["polydiff_best"])):
                r = cells[j]["err"] / a["diffusers_best"][j]["err"]
                lines.append(f"| {budget} NFE: {who} endpoint error <= {limit:g} x diffusers' best "
                             f"({a['diffusers_best'][j]['label']}, {a['diffusers_best'][j]['setting']}) "
                             f"| {r:.2f} x | {'yes' if r <= limit else '**no**'} |")
    for name in ("overhead.json", "overhead_cuda.json"):
        path = folder / name
        if path.is_file():
            rows = json.loads(path.read_text())
            worst = max(rows, key=lambda r: r["p_step"] / r["d_step"])
            r = worst["p_step"] / worst["d_step"]
            lines.append(f"| per-step overhead <= diffusers' on {worst['device']}, every pair and batch "
                         f"(worst: {worst['polydiff']} vs {worst['diffusers']}, batch {worst['batch']}) "
                         f"| {r:.2f} x | {'yes' if r <= 1 else '**no**'} |")
    return lines


def suite_targets(folder: Path) -> list[str]:
    """Issue 21's accuracy targets on sampler_suite.py's problems: polydiff's best <= 1x diffusers'
    best at 5 NFE and <= 0.5x at 10 and 20 on every oracle of 16+ dimensions and the image model;
    the default within 1.2x of polydiff's best (each line names the worst problem)."""
    path = folder / "sampler_suite.json"
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    lines = []
    for budget in data["budgets"]:
        cells = [s for s in data["summary"] if s["budget"] == budget and (
            s["problem"].startswith("image") or not s["problem"].startswith("2-D") and "UNet" not in s["problem"])]
        limit = 1.0 if budget == 5 else 0.5
        for key, what, lim, versus in (("ratio_polydiff_best", "best polydiff", limit, "diffusers' best"),
                                       ("ratio_default_to_polydiff_best", "default", 1.2, "polydiff's best")):
            vals = [(s[key] if s[key] is not None else float("inf"), s["problem"]) for s in cells]
            if not vals:
                continue
            worst = max(vals)
            lines.append(f"| suite, {budget} NFE: {what} endpoint error <= {lim:g} x {versus} on every oracle of "
                         f"16+ dimensions and the image UNet (worst: {worst[1]}) | {worst[0]:.2f} x | "
                         f"{'yes' if worst[0] <= lim else '**no**'} |")
    return lines


def main():
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS
    body = [
        "# polydiff vs diffusers: benchmark results\n",
        "Reproduce with `./dev bench` (runs `benchmarks/run.sh`: installs the `bench` extra, then every "
        "part below). Ratios are polydiff / diffusers: below 1 is better for polydiff on every measure "
        "(error, time, memory).\n",
        "## Targets\n", "\n".join(targets(folder) + suite_targets(folder)), "",
    ]
    for part in PARTS:
        path = folder / part
        if path.is_file():
            text = path.read_text().strip().splitlines()
            body.append("\n" + "\n".join("#" + line if line.startswith("#") else line for line in text))
    (folder / "README.md").write_text("\n".join(body) + "\n")
    print(f"saved {folder / 'README.md'}")


if __name__ == "__main__":
    main()
