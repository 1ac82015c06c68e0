"""The audio checker's calibration: accuracy on real chords and arpeggios, false accepts on
clips that are not triads, and the same for the previous checker (which always named a triad).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/audio_checker.py [--clips 200] [--out benchmarks/results]

Positives: chords and arpeggios of every instrument, octaves 3 and 4 (``calibration.positives``),
right only when read as a chord with the right root and quality. Negatives
(``calibration.negatives``): single notes of every instrument (octaves 3-5), two-note dyads
(thirds and fifths), white and pink noise, and smears (chords blurred by 60 Hz x 3 frames,
back through Griffin-Lim); accepted when read as any triad. Each clip is measured raw and
through log-mel and back (as generated audio is). Chords in white noise show where the
checker stops hearing a chord.
"""
import argparse
import collections
from pathlib import Path

import numpy as np
from polydiff_audio import calibration, checker, data


def old_chord(wave):
    """The previous checker's reading: the triad (root C3..B4) whose three fundamentals are
    loudest in the whole-clip spectrum; it never says no."""
    spec = checker._spectrum(wave, data.SAMPLE_RATE)
    scores = {(r, q): sum(spec.near(data.frequency(r + i)) for i in (0, t, 7))
              for r in range(48, 72) for q, t in (("major", 4), ("minor", 3))}
    root, quality = max(scores, key=scores.get)
    return data.NOTE_NAMES[root % 12], quality


def _rate(rows, key):
    return f"{np.mean([r[key] for r in rows]):.1%}"


def generated(prompts: int) -> list[str]:
    """The shipped model's clips for the evaluator's caption-style prompts: its single notes are
    negatives harder than rendered ones; its chords show how the figure moves with TONE_MIN."""
    import polydiff
    from polydiff_audio import evaluate

    notes, chords = [], []
    for i, (prompt, a) in enumerate(evaluate.caption_set(prompts, 1234)):
        wave = polydiff.generate("audio", prompt, seed=1234 + i, steps=20).outputs[0]
        (notes if a["kind"] == "note" else chords).append((wave, a))
    third = [np.sort(checker._shares(checker.heard(w)[0]))[-3] for w, _ in notes]
    lines = [f"Generated single notes ({len(notes)}): third-strongest pitch class holds at most {max(third):.3f} "
             f"(95th percentile {np.quantile(third, 0.95):.3f}); real chords' weakest tone holds >= 0.17.", "",
             "| TONE_MIN | generated notes read as a chord | generated caption-style chords read right |", "|---|---|---|"]
    default = checker.TONE_MIN
    for tone in (0.05, 0.07, default, 0.14):
        checker.TONE_MIN = tone
        fa = sum(checker.chord(w) is not None for w, _ in notes)
        ok = np.mean([checker.chord(w) == (a["root"], a["quality"]) for w, a in chords])
        lines.append(f"| {tone:.2f}{' (used)' if tone == default else ''} | {fa} / {len(notes)} | {ok:.1%} of {len(chords)} |")
    checker.TONE_MIN = default
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--out", default=None)
    ap.add_argument("--generated", type=int, default=0, help="also judge the shipped model's clips for this many caption-style prompts")
    args = ap.parse_args()
    pos, neg = collections.defaultdict(list), collections.defaultdict(list)
    for i, (wave, a) in enumerate(calibration.positives(args.clips, seed=101)):
        for path, w in (("raw", wave), ("round trip", calibration.round_trip(wave, i))):
            truth = (a["root"], a["quality"])
            pos[(a["kind"], a["octave"], path)].append(
                {"new": checker.chord(w) == truth, "old": old_chord(w) == truth, "instrument": a["instrument"],
                 "one_note": checker.one_note(w)})
    for i, (wave, kind, detail) in enumerate(calibration.negatives(args.clips, seed=202)):
        for path, w in (("raw", wave), ("round trip", calibration.round_trip(wave, i))):
            group = f"{kind} ({detail.split()[0]})" if kind == "note" and detail.split()[0] in ("organ", "square") else kind
            row = {"new": checker.chord(w) is not None, "old": True, "old_own_root": False,
                   "one_note": checker.one_note(w)}
            if kind == "note":  # the old checker's worst case: its "major chord" on the note's own root
                row["old_own_root"] = old_chord(w) == (detail.split()[-1][:-1], "major")
            neg[(group, path)].append(row)
            if group != kind:
                neg[(kind, path)].append(row)
    lines = ["| positives: chord or arpeggio | octave | clips | new checker (right root and quality) | old checker "
             "| read as one note |", "|---|---|---|---|---|---|"]
    for (kind, octave, path), rows in sorted(pos.items()):
        lines.append(f"| {kind}, {path} | {octave} | {len(rows)} | {_rate(rows, 'new')} | {_rate(rows, 'old')} "
                     f"| {_rate(rows, 'one_note')} |")
    per_instrument = collections.defaultdict(list)
    for rows in pos.values():
        for r in rows:
            per_instrument[r["instrument"]].append(r)
    by_instrument = ", ".join(f"{k} {_rate(v, 'new')}" for k, v in sorted(per_instrument.items()))
    lines.append(f"| all, by instrument | 3-4 | | {by_instrument} | |")
    lines += ["", "| negatives | clips | new checker: false accepts (read as a triad) | old checker: false accepts "
              "| old: a major chord on a note's own root | read as one note |", "|---|---|---|---|---|---|"]
    for (group, path), rows in sorted(neg.items()):
        own = _rate(rows, "old_own_root") if group.startswith("note") else "-"
        lines.append(f"| {group}, {path} | {len(rows)} | {_rate(rows, 'new')} | {_rate(rows, 'old')} | {own} "
                     f"| {_rate(rows, 'one_note')} |")
    lines += ["", "| chords + white noise, SNR (dB) | 20 | 10 | 0 | -10 |", "|---|---|---|---|---|"]
    rng = np.random.default_rng(303)
    chords = calibration.positives(40, seed=404)
    snr = []
    for db in (20, 10, 0, -10):
        ok = []
        for wave, a in chords:
            noise = rng.standard_normal(len(wave)) * np.sqrt((wave**2).mean() / 10 ** (db / 10))
            ok.append(checker.chord((wave + noise).astype(np.float32)) == (a["root"], a["quality"]))
        snr.append(f"{np.mean(ok):.0%}")
    lines.append(f"| read as the right triad ({len(chords)} clips) | " + " | ".join(snr) + " |")
    if args.generated:
        lines += ["", *generated(args.generated)]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "audio_checker.md").write_text(text)


if __name__ == "__main__":
    main()
