"""The audio evaluator's prompt adherence before and after: the old checker (always a triad)
beside the new one, and the old prompt parser beside the new one, on caption-style and
paraphrased prompts.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/audio_prompts.py [--prompts 120] [--out benchmarks/results]

Each parser runs in its own process (the old one patched in: its regular expression, the
prompt given to the text encoder as typed, the old word pattern); every clip is judged by
both checkers. Same prompts, seeds (1234 + i) and 20 steps as ``polydiff eval audio``.
"""
import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

_OLD_NOTE = re.compile(r"(?<![\w#])([A-Ga-g])([#b]?)(?:(\d)|\s+(major|minor))(?![\w#])", re.IGNORECASE)
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def old_pitch_classes(prompt):
    """The parser before this change, verbatim: an octave ends the match; no spelled accidentals."""
    out = np.zeros(12, np.float32)
    for letter, accidental, octave, quality in _OLD_NOTE.findall(prompt or ""):
        if not octave and letter.islower():
            continue
        root = (_LETTERS[letter.upper()] + {"#": 1, "b": -1, "": 0}[accidental]) % 12
        for step in (0,) if octave else (0, {"major": 4, "minor": 3}[quality.lower()], 7):
            out[(root + step) % 12] = 1.0
    return out


def old_judge(wave, attrs):
    """The old evaluator's figures: pitch = fundamental within 50 cents; major/minor = the
    quality of whichever triad scored highest (root not checked); no octave figure."""
    from audio_checker import old_chord
    from polydiff_audio import checker, data

    f = checker.fundamental(wave)
    out = {"instrument": checker.instrument(wave) == attrs["instrument"] if attrs["instrument"] else None,
           "pitch": None, "quality": None, "octave": None}
    if attrs["kind"] == "note":
        out["pitch"] = f is not None and abs(checker.cents(f, data.frequency(attrs["note"]))) <= 50
    else:
        out["quality"] = old_chord(wave)[1] == attrs["quality"]
    return out


def measure(parser: str, prompts: int, path: str) -> None:
    from polydiff_audio import encoders, evaluate, score

    if parser == "old":
        score.pitch_classes, score.canonical, encoders.WORDS = old_pitch_classes, lambda p: p or "", r"[a-z]+#?\d?"
    report = evaluate.adherence(prompts, 1234, 20, judges={"new checker": evaluate.judge, "old checker": old_judge})
    Path(path).write_text(json.dumps(report))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=120)
    ap.add_argument("--out", default=None)
    ap.add_argument("--measure", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--json", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        return measure(args.measure, args.prompts, args.json)
    from polydiff_audio import evaluate

    out = Path(args.out or "out/bench-audio")
    out.mkdir(parents=True, exist_ok=True)
    reports = {}
    for parser in ("old", "new"):
        path = out / f"audio_prompts_{parser}.json"
        subprocess.run([sys.executable, __file__, "--measure", parser, "--prompts", str(args.prompts),
                        "--json", str(path)], check=True)
        reports[parser] = json.loads(path.read_text())
    lines = [f"# audio prompt adherence: {args.prompts} caption-style and {args.prompts // 2} paraphrased prompts", ""]
    for parser, judge in (("old", "old checker"), ("old", "new checker"), ("new", "old checker"), ("new", "new checker")):
        lines += [f"## {parser} parser, {judge}", "", *evaluate.adherence_table(reports[parser], judge), ""]
    for parser in ("old", "new"):
        lines += [f"misses ({parser} parser, new checker, first few):", ""]
        for name in ("caption", "paraphrase"):
            lines += [f"- {m['prompt']!r}: read {m['read']}" for m in reports[parser][name]["misses"]]
        lines.append("")
    text = "\n".join(lines)
    print(text)
    (out / "audio_prompts.md").write_text(text)


if __name__ == "__main__":
    main()
