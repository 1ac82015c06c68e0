"""One plan per text task, each a constraint on the one 48-token layout of :mod:`.backend`
(``text [SEP] <label> [EOS] [PAD]...`` / ``paragraph [SEP] summary [EOS] [PAD]...``):

- ``generate``: all 48 positions sampled, steered by the prompt ("a negative review of a phone");
- ``infill``: the given text kept exactly (``polydiff.Replacement``), each ``[MASK]`` / ``_`` is
  one token (one word or punctuation mark) to fill, [SEP] kept after the text;
- ``summarise``: paragraph + [SEP] kept, the summary sampled after them;
- ``sentiment``: text + [SEP] kept and [EOS] + padding after the label slot, so the label is the
  only unknown token: its probability is the denoiser's own at that slot, read during sampling.

User text is checked before any work: it must not be empty, must fit ``MAX_TEXT`` tokens, and
every word must be in the vocabulary (the model never saw ``[UNK]``, so an unknown word is
refused, naming it, rather than guessed at).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Callable

import polydiff
import torch
from pydantic import BaseModel, Field

from . import vocab
from .backend import LENGTH, MAX_TEXT, TEXT_ENCODER, ids

# generate's defaults, chosen by `polydiff eval text` (its temperature table): confidence-ordered
# reveals at temperature 0.5 without guidance parse far more often than ancestral sampling at
# temperature 1 or guidance 2 (which over-weights the prompt's words: "phone phone phone"), and
# keep nearly every sample distinct (0.2-0.3 parse a little more often and repeat themselves)
DEFAULT_GUIDANCE = 1.0
DEFAULT_SAMPLER = "remask"
DEFAULT_TEMPERATURE = 0.5
STEPS = {"generate": 48, "infill": 24, "summarise": 24, "sentiment": 1}


class SampleOptions(BaseModel):
    temperature: float = Field(DEFAULT_TEMPERATURE, ge=0.0, le=5.0,
                               description="divides the logits; 0: the most probable token, 1: the model's own law")


class EditOptions(BaseModel):
    temperature: float = Field(0.0, ge=0.0, le=5.0, description="divides the logits; 0: the most probable token")


class Probe(polydiff.Constraint):
    """Records the denoiser's log-probabilities at one position, over ``choices``, at the last
    call (the sentiment task's label slot; every other token is known, so each call agrees)."""

    processes = ("masked",)

    def __init__(self, position: int, choices: list[int]):
        self.position, self.choices, self.logp = position, choices, None

    def start(self, z, grid) -> torch.Tensor:
        return z

    def wrap(self, model, grid, noise) -> Callable:
        def probed(x, t):
            logits = model(x, t)
            self.logp = torch.log_softmax(logits[:, self.position, self.choices].float(), dim=-1)
            return logits
        return probed


def text_ids(value, field: str = "init", masks: bool = False) -> list[int]:
    """User text (or a .txt file holding it) -> token ids, refusing empty text, text over the budget, unknown words and
    (unless ``masks``) ``[MASK]``; the errors name ``field``."""
    if isinstance(value, Path) or (isinstance(value, str) and value.endswith(".txt") and Path(value).is_file()):
        try:
            value = Path(value).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise polydiff.InvalidInputError(f"{field}: cannot read {str(value)!r} ({exc})") from None
    if not isinstance(value, str):
        raise polydiff.InvalidInputError(f"{field}: expected text, got {type(value).__name__}")
    pieces = vocab.split(value)
    if not pieces:
        raise polydiff.InvalidInputError(f"{field}: the text is empty")
    unknown = vocab.unknown_words(value)
    if unknown:
        raise polydiff.InvalidInputError(
            f"{field}: not in the {vocab.size()}-token vocabulary: {', '.join(repr(w) for w in unknown)}")
    specials = sorted({p for p in pieces if p in vocab.SPECIALS and not (masks and p == vocab.MASK)})
    if specials:
        raise polydiff.InvalidInputError(f"{field}: the text may not contain {', '.join(specials)}")
    if len(pieces) > MAX_TEXT:
        raise polydiff.InvalidInputError(f"{field}: {len(pieces)} tokens, over the budget of {MAX_TEXT}")
    return [vocab.token_id(p) for p in pieces]


def _plan(request, context, known: list[int] | None = None, extra: tuple = (), decode=None,
          guidance: float = DEFAULT_GUIDANCE, sampler: str | None = None) -> polydiff.Plan:
    """The shared plan: the condition (the prompt's, or the empty prompt's), the kept tokens
    (``known``: LENGTH ids with -1 where sampled), the decoding, and the temperature, which
    every masked sampler takes (0: the most probable token, without a random draw)."""
    cond, uncond = context.condition(TEXT_ENCODER, [request.prompt or ""] * request.n, max_tokens=1)
    constraints = list(extra)
    if known is not None:
        row = torch.tensor(known, device=context.device)
        keep = (row >= 0)[None].expand(request.n, -1)
        constraints.append(polydiff.Replacement(row.clamp_min(0)[None].expand(request.n, -1), keep))
    if not request.prompt:
        uncond, guidance = None, 1.0
    return polydiff.Plan(shape=(LENGTH,), cond=cond, uncond=uncond, constraints=constraints,
                         guidance=guidance, decode=decode or partial(_decode, request.task),
                         steps=STEPS[request.task], sampler=sampler, info={"task": request.task},
                         sampler_options={"temperature": request.options["temperature"]})


def split_sequence(row: list[int]) -> tuple[list[int], list[int]]:
    """(text, tail) of a sampled sequence: the ids before the first [SEP], and those after it
    up to [EOS] (padding and a missing [SEP] / [EOS] tolerated)."""
    sep, eos, pad = ids(vocab.SEP), ids(vocab.EOS), ids(vocab.PAD)
    cut = row.index(sep) if sep in row else len(row)
    text, tail = row[:cut], row[cut + 1:]
    text = text[:text.index(eos)] if eos in text else text
    tail = tail[:tail.index(eos)] if eos in tail else tail
    return [i for i in text if i != pad], [i for i in tail if i != pad]


def _decode(task: str, x: torch.Tensor) -> list[dict]:
    out = []
    for row in x.cpu().tolist():
        text, tail = split_sequence(row)
        record = {"task": task, "text": vocab.decode(text), "tokens": row}
        if task == "generate":
            labels = [vocab.tokens()[i] for i in tail if vocab.tokens()[i] in vocab.LABELS]
            record["label"] = labels[0][1:-1] if len(tail) == 1 and labels else None
            record["summary"] = None if record["label"] or not tail else vocab.decode(tail)
        elif task == "summarise":
            record["summary"] = vocab.decode([i for i in tail if vocab.tokens()[i] not in vocab.LABELS])
        out.append(record)
    return out


def generate(request, context) -> polydiff.Plan:
    return _plan(request, context, sampler=DEFAULT_SAMPLER)


def infill(request, context) -> polydiff.Plan:
    text = text_ids(request.init, masks=True)
    mask = ids(vocab.MASK)
    if mask not in text:
        raise polydiff.InvalidInputError("init: no [MASK] (or _) to fill; mark each word to fill with one")
    known = [-1 if i == mask else i for i in text] + [ids(vocab.SEP)] + [-1] * (LENGTH - len(text) - 1)
    return _plan(request, context, known)


def summarise(request, context) -> polydiff.Plan:
    text = text_ids(request.init)
    known = text + [ids(vocab.SEP)] + [-1] * (LENGTH - len(text) - 1)
    return _plan(request, context, known)


def sentiment(request, context) -> polydiff.Plan:
    text = text_ids(request.init)
    slot, pad = len(text) + 1, ids(vocab.PAD)
    known = text + [ids(vocab.SEP), -1, ids(vocab.EOS)] + [pad] * (LENGTH - len(text) - 3)
    labels = [vocab.token_id(t) for t in vocab.LABELS]
    probe = Probe(slot, labels)

    def decode(x):
        probs = probe.logp.exp().cpu()
        out = []
        for row, p in zip(x.cpu().tolist(), probs):
            best = int(p.argmax())
            out.append({"task": "sentiment", "text": vocab.decode(split_sequence(row)[0]), "tokens": row,
                        "label": vocab.LABELS[best][1:-1], "probability": round(float(p[best]), 6),
                        "probabilities": {lab[1:-1]: round(float(q), 6) for lab, q in zip(vocab.LABELS, p)}})
        return out

    return _plan(request, context, known, extra=(probe,), decode=decode)


TASKS = [
    polydiff.Task("generate", "text from a prompt (\"a negative review of a phone\"); --temperature",
                  generate, options=SampleOptions, example={"prompt": "a positive review of a film", "steps": 4}),
    polydiff.Task("infill", "fill each [MASK] (or _) of --init with one word, the rest kept exactly",
                  infill, options=EditOptions, needs=("init",),
                  example={"init": "the phone is [MASK] and the battery [MASK] all day .", "steps": 2}),
    polydiff.Task("summarise", "a one-sentence summary of the paragraph --init", summarise, options=EditOptions,
                  needs=("init",),
                  example={"init": "it was a cold morning in paris . on monday , maria opened a bakery there .",
                           "steps": 2}),
    polydiff.Task("sentiment", "the sentiment of the review --init: label and probability, by the denoiser",
                  sentiment, options=EditOptions, needs=("init",),
                  example={"init": "the hotel is dirty and noisy .", "steps": 1}),
]
