"""The default text backend: a masked-diffusion transformer (:mod:`.model`) trained by polydiff's
trainer on the corpus of :mod:`.data`, shipped as safetensors + JSON.

The sequence layout
-------------------
Every record is one fixed-length sequence of ``LENGTH`` = 48 tokens, so every task is a
constraint on the same layout (kept tokens are a ``polydiff.Replacement``)::

    review:  text [SEP] <label> [EOS] [PAD] ...      (label: <positive> <negative> <neutral>)
    fact:    paragraph [SEP] summary [EOS] [PAD] ...

The text (review or paragraph) has at most ``MAX_TEXT`` = 35 tokens and a summary at most
``MAX_SUMMARY`` = 10, so 35 + 1 + 10 + 1 = 47 <= 48: a sequence always ends in at least one
[PAD]. Free generation samples all 48 positions; the model decides the kind and the length.

Conditioning: the corpus caption ("a negative review of a phone") as the MiniLM sentence
vector (encoder ``minilm``, looked up by name), shown to the network as a prefix token. The
corpus's ``drop`` leaves the sentiment or the product out of a quarter of the review captions;
``PARAPHRASE_SHARE`` of the review captions are reworded ("poor phone review"), so prompts need
not be phrased like the corpus; ``cond_dropout`` swaps in the empty prompt for guidance.

Retrain the shipped checkpoint's recipe with ``OMP_NUM_THREADS=1 polydiff train text -o DIR``:
stage 1 (RECIPE below: 12000 steps of batch 64, cosine learning rate with warm-up, bf16
autocast; 102 minutes on one thread of a 2-core machine beside another training job, final loss
0.50) into DIR/stage-1, then each of STAGES from the stage before it (new data, a fresh cosine
cycle, stratified times) into DIR/stage-2, ... and DIR; the last stage's config is in
``weights/words-transformer/model.json``. A stage already finished in its folder is skipped, and
an interrupted one resumes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import polydiff
import torch

from . import data, vocab
from .model import Transformer

NAME = "words-transformer"
WEIGHTS_DIR = Path(__file__).with_name("weights") / NAME
TEXT_ENCODER = "minilm"
LENGTH, MAX_TEXT, MAX_SUMMARY = 48, 35, 10
RECIPE = dict(steps=12000, batch_size=64, lr=1e-3, lr_schedule="cosine", lr_final=5e-5, warmup=200,
              autocast="bf16", weight_decay=0.01, ema_decay=0.999,
              prediction="logits", schedule="mask-linear", cond_dropout=0.1, grad_clip=1.0, seed=0,
              log_every=50, checkpoint_every=250)
# later stages: the same network trained on from the previous stage's weights, each on new data
# (its own seed), with a fresh cosine cycle and stratified training times (a lower-variance MDLM
# loss); the shipped checkpoint is the last stage's
STAGES = [dict(steps=10000, lr=5e-4, lr_final=2e-5, warmup=200, t_sampling="stratified", seed=1),
          dict(steps=6000, lr=3e-4, lr_final=1e-5, warmup=200, t_sampling="stratified", seed=2)]
ARCH = dict(length=LENGTH, dim=192, layers=4, heads=4, cond_dim=384, dropout=0.0)

PARAPHRASE_SHARE = 0.3
# training rewordings of a review caption; evaluate.py's user prompts use other words
SYNONYMS = {"positive": ["good", "glowing", "happy"], "negative": ["poor", "critical", "unhappy"],
            "neutral": ["mixed", "so-so", "lukewarm"]}
_FORMS = {  # (said sentiment?, said product?) -> templates
    (True, True): ["{s} review of a {p}", "a {p} review that is {s}", "{y} {p} review", "a {y} review of the {p}"],
    (True, False): ["a {y} review", "{s} review", "a review that is {s}"],
    (False, True): ["{p} review", "a review about the {p}", "review of a {p}"],
}


def ids(token: str) -> int:
    return vocab.token_id(token)


def special_ids() -> dict[str, int]:
    return {t: ids(t) for t in (*vocab.SPECIALS, *vocab.LABELS)}


def sequence(text: list[int], tail: list[int]) -> list[int]:
    """``text [SEP] tail [EOS] [PAD]...`` as LENGTH ids (text and tail: token ids)."""
    out = [*text, ids(vocab.SEP), *tail, ids(vocab.EOS)]
    if len(text) > MAX_TEXT or len(out) > LENGTH:
        raise polydiff.InvalidInputError(f"text: {len(text)} tokens, over the budget of {MAX_TEXT}")
    return out + [ids(vocab.PAD)] * (LENGTH - len(out))


def record_sequence(record: dict) -> list[int]:
    """A corpus record in the layout: a review's label, or a paragraph's summary, after [SEP]."""
    tail = [ids(f"<{record['sentiment']}>")] if record["kind"] == "review" else vocab.encode(record["summary"])
    return sequence(vocab.encode(record["text"]), tail)


def paraphrase(caption: str, rng: np.random.Generator) -> str:
    """A rewording of a review caption (unchanged for other captions and when nothing is said)."""
    words = caption.split()
    if "review" not in words:
        return caption
    s = next((w for w in words if w in data.SENTIMENTS), None)
    p = next((w for w in words if w in data.PRODUCTS), None)
    forms = _FORMS.get((s is not None, p is not None))
    if not forms:
        return caption
    y = SYNONYMS[s][int(rng.integers(3))] if s else None
    return forms[int(rng.integers(len(forms)))].format(s=s, p=p, y=y)


def captions() -> list[str]:
    """Every caption training can show: the corpus's and their rewordings (and the empty one)."""
    out = {""}
    for s in (None, *data.SENTIMENTS):
        for p in (None, *data.PRODUCTS):
            c = data.review_caption(s, p)
            out.add(c)
            forms = _FORMS.get((s is not None, p is not None), [])
            ys = SYNONYMS[s] if s else [None]
            out.update(f.format(s=s, p=p, y=y) for f in forms for y in ys)
    out.update(data.fact_caption(e) for e in data.EVENTS)
    return sorted(out)


def draw(batch_size: int, seed: int) -> tuple[torch.Tensor, list[str]]:
    """One training batch from one seed: sequences [n, LENGTH] and their captions."""
    records = data.batch(batch_size, seed, split="train")
    rng = np.random.default_rng(seed ^ 0x5EED)
    said = [paraphrase(r["caption"], rng) if rng.random() < PARAPHRASE_SHARE else r["caption"] for r in records]
    return torch.tensor([record_sequence(r) for r in records]), said


def encode_captions(encoder) -> Callable[[list[str]], dict]:
    return lambda prompts: {"sentence": encoder.encode(prompts, max_tokens=1)["sentence"]}


def source() -> polydiff.CaptionedData:
    """The training data with every caption's encoding made up front."""
    return polydiff.CaptionedData(draw, captions(), encode_captions(polydiff.load_encoder(TEXT_ENCODER)))


def build(**config) -> Transformer:
    return Transformer(**config)


def _fit(out: Path, recipe: dict, progress: bool, start: Path | None = None) -> Path:
    """One trainer run of ``recipe`` into ``out``; ``start``: a checkpoint folder whose weights
    the network starts from (else the run's seeded initialisation)."""
    config = polydiff.TrainConfig.build(**{**recipe, "mask_id": ids(vocab.MASK), "out": out, "progress": progress})
    data_source = source()
    with polydiff.seeded_init(config.seed):  # the initial weights follow the run's seed
        model = Transformer(vocab.size(), **ARCH)
    if start is not None:
        tensors, _ = polydiff.load_checkpoint(start)
        model.load_state_dict(tensors)
    trainer = polydiff.Trainer(model, config, data_source, null_cond=data_source.null_cond, model_config=model.config)
    return trainer.fit()


def _finished(folder: Path, steps: int) -> bool:
    if not (folder / "model.json").is_file():
        return False
    return polydiff.load_checkpoint(folder)[1].get("step", 0) >= steps


def train(out=None, progress=True, **overrides) -> Path:
    """Stage 1 (RECIPE) into ``out/stage-1``, each of STAGES from the previous one's weights
    into ``out/stage-2``, ..., the last into ``out``; the CLI's overrides apply to the last. A
    finished stage already in its folder (model.json at its steps) is used as it is."""
    out = Path(WEIGHTS_DIR if out is None else out)
    recipes = [RECIPE] + [{**RECIPE, **stage} for stage in STAGES]
    recipes[-1] = {**recipes[-1], **overrides}
    previous = None
    for k, recipe in enumerate(recipes, start=1):
        folder = out if k == len(recipes) else out / f"stage-{k}"
        if k == len(recipes) or not _finished(folder, recipe["steps"]):
            path = _fit(folder, recipe, progress, start=previous)
        previous = folder
    return path


def load(device, folder=None) -> polydiff.LoadedModel:
    return polydiff.load_trained(folder or WEIGHTS_DIR, build, device)
