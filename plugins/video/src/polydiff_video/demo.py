"""The video gallery of ``polydiff demo``: clips from prompts, then one of each editing task,
each as an animated GIF and a contact sheet (frames left to right), 4x enlarged."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import polydiff
import torch

from . import data
from .io import save_gif, save_sheet

PROMPTS = ["a red circle moving to the right", "a blue square moving up", "a yellow triangle growing",
           "a green circle turning purple"]


def _both(folder: Path, name: str, frames: torch.Tensor, fps: float = data.FPS) -> list[Path]:
    return [save_gif(frames, folder / f"{name}.gif", fps, scale=4), save_sheet(frames, folder / f"{name}.png", scale=4)]


def run(folder) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files, notes = [], []
    for i, prompt in enumerate(PROMPTS):
        clip = polydiff.generate("video", prompt, seed=i).outputs[0]
        files += _both(folder, f"generate-{i}", clip)
        notes.append(f"generate-{i}: generated from the prompt {prompt!r}")
    source, _ = data.clip("orange", "square", "right", np.random.default_rng(7))
    source = torch.from_numpy(source)
    frames_in = source.permute(0, 2, 3, 1).numpy()
    files += _both(folder, "source", source)
    notes.append("source: the input clip of the tasks below (an orange square moving to the right, bouncing)")
    runs = {
        "predict": (dict(task="predict", init=frames_in[:4], frames=4),
                    "frames 0-3 of source given, frames 4-7 predicted"),
        "predict-backward": (dict(task="predict", init=frames_in[4:], frames=4, backward=True),
                             "frames 4-7 of source given, frames 0-3 predicted"),
        "interpolate-slow": (dict(task="interpolate", init=frames_in[::2], factor=2, fps=data.FPS * 2),
                             "every other frame of source given, the frames between generated (factor 2)"),
        "interpolate-fast": (dict(task="interpolate", init=frames_in, factor=2 / 3),
                             "source at 1.5x speed: times 0, 1.5, 3, 4.5, 6; the half-frame times generated"),
        "edit": (dict(task="edit", prompt="an orange square moving to the right", init=frames_in, start=3, end=6),
                 "frames 3-5 of source regenerated, the others kept bit-exact"),
        "style": (dict(task="style", prompt="a cyan square moving to the right", init=frames_in, strength=0.6),
                  "source restyled towards 'a cyan square moving to the right' (SDEdit, shared noise)"),
    }
    for name, (fields, note) in runs.items():
        clip = polydiff.generate("video", seed=0, **fields).outputs[0]
        files += _both(folder, name, clip, fields.get("fps", data.FPS))
        notes.append(f"{name}: {note}")
    readme = folder / "README.txt"
    readme.write_text("Each clip is NAME.gif (animated) and NAME.png (its frames left to right), 4x enlarged.\n\n"
                      + "\n".join(notes) + "\n")
    return files + [readme]
