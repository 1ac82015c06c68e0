"""The audio condition encoder: the shared text encoder's sentence and word tokens of the
prompt's canonical caption (``score.canonical``: a paraphrase reaches the model in the words it
was trained on), plus the pitch classes the prompt names (``score.pitch_classes``) as one more
declared key."""
from __future__ import annotations

import numpy as np
import polydiff
import torch

from . import score

NAME = "audio-prompt"
TEXT_ENCODER = "minilm"              # from polydiff-text, looked up by name
TOKENS = 12                          # the whole prompt plus up to 11 words (captions use at most 9)
WORDS = r"[a-z]+#?\d?|\d+"           # "c#4" and "f#" stay one word; a bare "3" is a word too
OUTPUTS = ("sentence", "tokens", "mask", "pitch")


class AudioPrompt:
    def __init__(self, device: str = "cpu"):
        self.text = polydiff.load_encoder(TEXT_ENCODER, device)
        self.device = device

    def encode(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        cond = self.text.encode([score.canonical(p) for p in prompts], max_tokens=TOKENS, pattern=WORDS)
        pitch = np.stack([score.pitch_classes(p) for p in prompts])
        cond["pitch"] = torch.from_numpy(pitch).to(self.device)
        return cond
