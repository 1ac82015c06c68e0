"""``polydiff eval audio``: prompt adherence judged by the shipped checker (pitch within 50
cents for notes, major/minor for chords and arpeggios, instrument for all), and for continue /
edit how exactly the given audio is kept and how large the spectral jump at each join is,
next to the jump the original recording has at the same place. Style and denoise too."""
from __future__ import annotations

import math
import time

import numpy as np
import polydiff
import torch

from . import checker, data, mel, paraphrase
from .tasks import EDIT_TAPER, FADE, estimate_noise, subtract_noise

DB = 20 / math.log(10) * mel.SCALE   # model-space units -> dB of magnitude
FIGURES = ("pitch", "quality", "instrument", "octave")
LABELS = {"pitch": "note pitch: one note, within 50 cents", "quality": "major/minor: the asked triad (root and quality)",
          "instrument": "instrument", "octave": "octave followed (prompts that name one)"}


def _clip(attrs, seed):
    return torch.from_numpy(data.render(attrs, np.random.default_rng(seed)))[: 2 * mel.SAMPLE_RATE]


def _frame_jump(wave: torch.Tensor, at: int, gap: int = 2) -> float:
    """RMS difference (dB) over mel bands between the frames ``gap`` hops before and after
    sample ``at`` (each frame's window reaches about 2 hops either side)."""
    x = mel.encode(wave[None])[0] * DB
    i = at // mel.HOP
    a, b = max(i - gap, 0), min(i + gap, x.shape[-1] - 1)
    return float(((x[:, a] - x[:, b]) ** 2).mean().sqrt())


def _log_spectral_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over frames of the RMS log-mel difference in dB."""
    x, y = mel.encode(a[None])[0] * DB, mel.encode(b[None])[0] * DB
    return float(((x - y) ** 2).mean(0).sqrt().mean())


def caption_set(n: int, seed: int) -> list[tuple[str, dict]]:
    """n (training caption, attributes): half single notes, half chords and arpeggios."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        attrs = data.random_attributes(rng)
        if i % 2 == 0:
            attrs.update(kind="note", note=str(rng.choice(data.NOTES)), root=None, quality=None, direction=None)
        while i % 2 and attrs["kind"] == "note":
            attrs = data.random_attributes(rng)
        prompt = data.caption(**attrs)
        out.append((prompt, {**attrs, "octave": int(attrs["note"][-1]) if attrs["kind"] == "note" else None}))
    return out


def paraphrase_set(n: int, seed: int) -> list[tuple[str, dict]]:
    """n (paraphrase, attributes): half single notes, then chords and arpeggios in turn."""
    rng = np.random.default_rng(seed)
    return [paraphrase.example(rng, "note" if i % 2 == 0 else data.KINDS[1 + i // 2 % 2]) for i in range(n)]


def played_octave(wave, attrs: dict) -> int | None:
    """The octave the clip plays in: its fundamental's for a note, its lowest clear note's
    (a tenth of the clip's tonal weight) for a chord or arpeggio."""
    if attrs["kind"] == "note":
        f = checker.fundamental(wave)
        return None if f is None else int(round(69 + 12 * math.log2(f / 440))) // 12 - 1
    found = checker.heard(wave)
    clear = [m for m, w in found[0].items() if w >= 0.1] if found else []
    return min(clear) // 12 - 1 if clear else None


def judge(wave, attrs: dict) -> dict:
    """Each figure for one clip, True / False, or None where the prompt does not ask it: pitch
    (one note, within 50 cents; any octave when none was asked), quality (a triad with the
    asked root and quality), instrument, octave (played in the asked one)."""
    out = {"instrument": checker.instrument(wave) == attrs["instrument"] if attrs["instrument"] else None,
           "pitch": None, "quality": None,
           "octave": played_octave(wave, attrs) == attrs["octave"] if attrs["octave"] else None}
    if attrs["kind"] == "note":
        out["pitch"] = checker.note_ok(wave, attrs["note"])
    else:
        out["quality"] = checker.chord(wave) == (attrs["root"], attrs["quality"])
    return out


def summarise(rows: list[dict]) -> dict:
    """{figure: {"all" | octave | "-": [hits, count]}}, by the octave the prompt asked for."""
    out = {f: {} for f in FIGURES}
    for row in rows:
        for f in FIGURES:
            if row[f] is not None:
                for key in ("all", str(row["asked_octave"] or "-")):
                    hit = out[f].setdefault(key, [0, 0])
                    hit[0], hit[1] = hit[0] + int(row[f]), hit[1] + 1
    return out


def adherence(prompts: int, seed: int, steps: int | None, judges=None, **fields) -> dict:
    """Both prompt sets generated (sample i from seed + i) and judged by each of ``judges``
    (name -> judge(wave, attrs); default the checker's ``judge``); ``fields`` go to generate
    (e.g. ``backend``)."""
    judges = judges or {"checker": judge}
    report = {}
    for name, items in (("caption", caption_set(prompts, seed)), ("paraphrase", paraphrase_set(prompts // 2, seed + 1))):
        rows = {j: [] for j in judges}
        misses = []
        for i, (prompt, attrs) in enumerate(items):
            wave = polydiff.generate("audio", prompt, seed=seed + i, steps=steps, **fields).outputs[0]
            for j, fn in judges.items():
                rows[j].append({**fn(wave, attrs), "asked_octave": attrs["octave"]})
            first = rows[next(iter(judges))][-1]
            if not all(first[f] in (True, None) for f in FIGURES) and len(misses) < 8:
                found = checker.read_attributes(wave)
                misses.append({"prompt": prompt, "read": {k: round(v, 1) if isinstance(v, float) else v
                                                          for k, v in found.items()}})
        report[name] = {"prompts": len(items), "misses": misses, **{j: summarise(r) for j, r in rows.items()}}
    return report


def _rate(hits) -> str:
    return f"{hits[0] / hits[1]:.1%} ({hits[1]})" if hits and hits[1] else "-"


def adherence_table(report: dict, judge_name: str = "checker", ceiling: dict | None = None) -> list[str]:
    """Markdown: each figure on the caption-style and the paraphrased prompts (and the
    representation's ceiling), then by the octave the prompt asked for ("-": none asked)."""
    cap, par = report["caption"][judge_name], report["paraphrase"][judge_name]
    head = " ceiling: real clips through mel + Griffin-Lim |" if ceiling else ""
    lines = ["| figure (clips) | caption-style prompts | paraphrased prompts |" + head,
             "|---|---|---|" + ("---|" if ceiling else "")]
    for f in FIGURES:
        extra = f" {ceiling[f]:.1%} |" if ceiling and f in ceiling else (" |" if ceiling else "")
        lines.append(f"| {LABELS[f]} | {_rate(cap[f].get('all'))} | {_rate(par[f].get('all'))} |{extra}")
    lines += ["", "| asked octave | " + " | ".join(f"{f}: caption / paraphrase" for f in FIGURES) + " |",
              "|---|" + "---|" * len(FIGURES)]
    for key in ("3", "4", "5", "-"):
        cells = [f"{_rate(cap[f].get(key))} / {_rate(par[f].get(key))}" for f in FIGURES]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return lines


def _kept(out: torch.Tensor, given: torch.Tensor, keep: slice) -> dict:
    a, b = out[keep], given[keep]
    noise = float(((a - b) ** 2).sum())
    return {"max_abs_error": float((a - b).abs().max()),
            "snr_db": 10 * math.log10(float((b**2).sum()) / noise) if noise > 0 else float("inf")}


def joins(clips: int, seed: int, steps: int) -> dict:
    """continue: the first second of a clip continued to 2 s. edit: 0.6-1.2 s of a clip
    regenerated from another prompt, from the clip's own prompt (which shows the joins alone),
    and from its own prompt with ``attack=False``. Each join's jump is compared with the
    original's jump at the same sample; an edit's start and end are reported apart (the new
    sound's attack is at the start; the given audio resumes at the end)."""
    rng = np.random.default_rng(seed)
    rows = {"continue": [], "edit": [], "edit_same_prompt": [], "edit_same_prompt_no_attack": []}
    sr = mel.SAMPLE_RATE
    for i in range(clips):
        attrs = data.random_attributes(rng)
        clip = _clip(attrs, seed + i)
        out = polydiff.generate("audio", data.caption(**attrs), task="continue", init=clip[:sr].numpy(),
                                seconds=2.0, seed=seed + i, steps=steps).outputs[0]
        rows["continue"].append({**_kept(out, clip, slice(0, sr - FADE)),
                                 "snr_with_fade_db": _kept(out, clip, slice(0, sr))["snr_db"],
                                 "jump_db": _frame_jump(out, sr), "original_jump_db": _frame_jump(clip, sr),
                                 "inner_jump_db": _frame_jump(out, int(1.5 * sr))})
        other = data.random_attributes(rng)
        a, b = int(0.6 * sr), int(1.2 * sr)
        outside = torch.ones(len(clip), dtype=torch.bool)
        outside[a - FADE:b + FADE] = False
        for key, prompt, attack in (("edit", data.caption(**other), True),
                                    ("edit_same_prompt", data.caption(**attrs), True),
                                    ("edit_same_prompt_no_attack", data.caption(**attrs), False)):
            out = polydiff.generate("audio", prompt, task="edit", init=clip.numpy(), start=0.6, end=1.2,
                                    attack=attack, seed=seed + i, steps=steps).outputs[0]
            kept = _kept(out[outside], clip[outside], slice(None))
            rows[key].append({**kept, "jump_start_db": _frame_jump(out, a), "jump_end_db": _frame_jump(out, b),
                              "original_start_db": _frame_jump(clip, a), "original_end_db": _frame_jump(clip, b),
                              "inner_jump_db": _frame_jump(out, (a + b) // 2)})
    return {task: {k: float(np.median([r[k] for r in rs])) for k in rs[0]} for task, rs in rows.items()}


def style_and_denoise(clips: int, seed: int, steps: int) -> dict:
    rng = np.random.default_rng(seed)
    styled, pitch_kept, noisy_lsd, sub_lsd, clean_lsd, levels = [], [], [], [], [], []
    for i in range(clips):
        note = str(rng.choice(data.NOTES))
        source, target = rng.choice(len(data.INSTRUMENTS), 2, replace=False)
        attrs = dict(kind="note", instrument=data.INSTRUMENTS[source], note=note)
        clip = _clip(attrs, seed + i)
        new = data.INSTRUMENTS[target]
        out = polydiff.generate("audio", data.caption("note", new, note=note), task="style", init=clip.numpy(),
                                seed=seed + i, steps=steps).outputs[0]
        styled.append(checker.instrument(out) == new)
        pitch_kept.append(checker.note_ok(out, note))
        noisy = clip + 0.05 * torch.randn(clip.shape, generator=torch.Generator().manual_seed(seed + i))
        out = polydiff.generate("audio", task="denoise", init=noisy.clamp(-1, 1).numpy(), seed=seed + i,
                                steps=steps).outputs[0]
        noisy = noisy.clamp(-1, 1)
        levels.append(estimate_noise(noisy))
        subtracted = mel.decode(subtract_noise(noisy, levels[-1]), generator=torch.Generator().manual_seed(i))[0]
        noisy_lsd.append(_log_spectral_distance(noisy, clip))
        sub_lsd.append(_log_spectral_distance(subtracted[: len(clip)], clip))
        clean_lsd.append(_log_spectral_distance(out, clip))
    return {"style": {"instrument_accuracy": float(np.mean(styled)), "pitch_kept": float(np.mean(pitch_kept))},
            "denoise": {"noisy_lsd_db": float(np.mean(noisy_lsd)), "subtraction_lsd_db": float(np.mean(sub_lsd)),
                        "denoised_lsd_db": float(np.mean(clean_lsd)), "estimated_level": float(np.mean(levels))}}


def round_trip(clips: int, seed: int) -> dict:
    """The representation's ceiling: real clips through log-mel and back (Griffin-Lim)."""
    rng = np.random.default_rng(seed)
    sc, pitch, quality, instrument = [], [], [], []
    for i in range(clips):
        attrs = data.random_attributes(rng)
        clip = _clip(attrs, seed + i)
        back = mel.decode(mel.encode(clip[None]), generator=torch.Generator().manual_seed(i))[0]
        sc.append(mel.spectral_convergence(clip[None], back[None]))
        instrument.append(checker.instrument(back) == attrs["instrument"])
        if attrs["kind"] == "note":
            pitch.append(checker.note_ok(back, attrs["note"]))
        else:
            quality.append(checker.chord(back) == (attrs["root"], attrs["quality"]))
    return {"spectral_convergence": float(np.median(sc)), "pitch": float(np.mean(pitch)),
            "quality": float(np.mean(quality)), "instrument": float(np.mean(instrument)), "clips": clips}


def run(out="out/eval/audio", quick: bool = False, seed: int = 1234, steps: int = 20) -> dict:
    started = time.perf_counter()
    prompts, clips = (4, 1) if quick else (120, 16)
    report = {"steps": steps, "seed": seed, "round_trip": round_trip(4 if quick else 60, seed + 30_000),
              "adherence": adherence(prompts, seed, steps), "joins": joins(clips, seed + 10_000, steps),
              **style_and_denoise(clips, seed + 20_000, steps)}
    report["seconds"] = round(time.perf_counter() - started, 1)
    rt, j = report["round_trip"], report["joins"]
    lines = [f"# audio evaluation ({prompts} caption-style and {prompts // 2} paraphrased prompts, {clips} clips "
             f"per editing task, {steps} steps, seed {seed})", "",
             *adherence_table(report["adherence"], ceiling=rt), "",
             f"Spectral convergence of the round trip (median): {rt['spectral_convergence']:.3f}", "",
             "Joins: the kept audio's largest sample error outside the 16 ms crossfades; the spectral jump "
             "(RMS over mel bands, dB, between frames 32 ms either side) at each join, next to the original "
             "recording's jump at the same place and the generated audio's own jump inside the new span. "
             "An edit's new sound starts at the span and fades back into the given audio over the span's last "
             f"{EDIT_TAPER * mel.HOP * 1000 // mel.SAMPLE_RATE} ms.", "",
             "| join (medians) | kept samples max error | kept SNR incl. fade (dB) | jump at join (dB) "
             "| original there (dB) | inside new audio (dB) |",
             "|---|---|---|---|---|---|",
             f"| continue 1 s -> 2 s | {j['continue']['max_abs_error']:.2g} | {j['continue']['snr_with_fade_db']:.1f} | "
             f"{j['continue']['jump_db']:.2f} | {j['continue']['original_jump_db']:.2f} | {j['continue']['inner_jump_db']:.2f} |",
             *[f"| {label}, start / end | {j[key]['max_abs_error']:.2g} | - | {j[key]['jump_start_db']:.2f} / "
               f"{j[key]['jump_end_db']:.2f} | {j[key]['original_start_db']:.2f} / {j[key]['original_end_db']:.2f} | "
               f"{j[key]['inner_jump_db']:.2f} |"
               for key, label in (("edit", "edit 0.6-1.2 s, another prompt"),
                                  ("edit_same_prompt", "edit 0.6-1.2 s, the clip's own prompt"),
                                  ("edit_same_prompt_no_attack", "the same with attack=False"))], "",
             f"style (SDEdit at the default strength 0.9, another instrument): instrument {report['style']['instrument_accuracy']:.1%}, "
             f"pitch kept {report['style']['pitch_kept']:.1%}",
             f"denoise (white noise std 0.05, estimated {report['denoise']['estimated_level']:.3f}): log-mel distance to the "
             f"clean clip {report['denoise']['noisy_lsd_db']:.2f} dB noisy, {report['denoise']['subtraction_lsd_db']:.2f} dB "
             f"after spectral subtraction alone, {report['denoise']['denoised_lsd_db']:.2f} dB denoised (subtraction + diffusion)"]
    report["markdown"] = "\n".join(lines) + "\n"
    return report
