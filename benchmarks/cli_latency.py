"""Wall time of whole ``polydiff generate`` commands, start-up included, as a user types them:
the modality issues' latency targets (an image batch and a 2 s audio clip, each <= 10 s on a
2-core CPU). Each command runs ``--repeats`` times in a fresh process; the median is reported.

    .venv/bin/python benchmarks/cli_latency.py [--repeats 5] [--out benchmarks/results]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS

POLYDIFF = str(Path(sys.executable).with_name("polydiff"))
COMMANDS = [
    ("image", ["generate", "image", "a red circle", "-n", "4"], 10.0),
    ("audio", ["generate", "audio", "a plucked string playing an A minor chord", "--seconds", "2"], 10.0),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    lines = ["# CLI latency: whole `polydiff generate` commands, start-up included", "",
             f"{args.repeats} runs each in a fresh process (seed i for run i); median and all runs, seconds.", "",
             "| command | median (s) | runs (s) | target (s) | met |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv, target in COMMANDS:
            times = []
            for i in range(args.repeats):
                started = time.perf_counter()
                subprocess.run([POLYDIFF, *argv, "--seed", str(i), "--quiet", "-o", f"{tmp}/{name}{i}"],
                               check=True, stdout=subprocess.DEVNULL)
                times.append(time.perf_counter() - started)
            median = statistics.median(times)
            shown = " ".join(a if " " not in a else f'"{a}"' for a in argv)
            lines.append(f"| `polydiff {shown}` | {median:.2f} | {', '.join(f'{t:.2f}' for t in times)} | "
                         f"{target:g} | {'yes' if median <= target else '**no**'} |")
            print(lines[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cli_latency.md").write_text("\n".join(lines) + "\n")
    print(f"saved {args.out / 'cli_latency.md'}")


if __name__ == "__main__":
    main()
