"""The audio part of ``polydiff demo``: a few generated clips, then one edit of each kind."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polydiff
import torch

from . import data
from .io import save
from .mel import SAMPLE_RATE

PROMPTS = ["a plucked string playing an A minor chord", "a rising C major arpeggio on organ",
           "a bell playing E5", "a square playing G3", "a falling D minor arpeggio on sine"]


def run(folder) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files, lines = [], []
    for i, prompt in enumerate(PROMPTS):
        files += save(folder / f"generate-{i}.wav", polydiff.generate("audio", prompt, seed=i).outputs[0])
        lines.append(f"generate-{i}.wav: {prompt!r}")
    source = {"kind": "note", "instrument": "organ", "note": "A4", "root": None, "quality": None, "direction": None}
    original = torch.from_numpy(data.render(source, np.random.default_rng(0))[:SAMPLE_RATE * 2])
    files += save(folder / "original.wav", original)
    lines.append("original.wav: the clip the edits start from (an organ playing A4, 2 s)")
    edits = [
        ("continue", "an organ playing A4", dict(init=original[:SAMPLE_RATE].numpy(), seconds=2.0),
         "the first second of original.wav, continued to 2 s"),
        ("edit", "a bell playing E5", dict(init=original.numpy(), start=0.8, end=1.4),
         "original.wav with 0.8-1.4 s regenerated as 'a bell playing E5'"),
        ("style", "a plucked string playing A4", dict(init=original.numpy(), strength=0.9),
         "original.wav played by a plucked string (SDEdit, strength 0.9)"),
    ]
    noisy = (original + 0.05 * torch.randn(original.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    files += save(folder / "noisy.wav", noisy)
    lines.append("noisy.wav: original.wav plus white noise (std 0.05)")
    edits.append(("denoise", None, dict(init=noisy.numpy()), "noisy.wav denoised"))
    for task, prompt, fields, what in edits:
        out = polydiff.generate("audio", prompt, task=task, seed=0, **fields).outputs[0]
        files += save(folder / f"{task}.wav", out)
        lines.append(f"{task}.wav: {what}")
    (folder / "README.txt").write_text("Each WAV has its log-mel spectrogram beside it as a PNG.\n"
                                       + "\n".join(lines) + "\n")
    return files + [folder / "README.txt"]
