"""``polydiff eval text``: the shipped masked-diffusion model against its baselines.

- perplexity on held-out sequences (the 48-token layout, caption-conditioned): the diffusion
  model's MDLM bound (an upper bound on the NLL, Monte Carlo over stratified times, with its
  standard error) vs the autoregressive baseline (:mod:`.baselines_ar`, same network with a
  causal mask, same data and budget; trained first if missing, about an hour) vs the bigram LM. One token set
  for all three: every non-[PAD] token (text, [SEP], label or summary, [EOS]); both neural
  models' NLLs also include the [PAD] positions (they score the whole sequence), which only
  makes their figure larger;
- generation: the share of generated texts the grammar parses (``checker.parses_document``)
  and, for prompts asking for a sentiment, VADER's agreement, for the training captions and for
  prompts phrased as people type them (none of them a training caption or rewording);
- infill: token accuracy on one masked span of 1-3 tokens per held-out text vs the bigram's
  Viterbi fill; summarise: ROUGE-1/2 and fact accuracy vs the lead sentence; sentiment:
  accuracy and macro-F1 vs bag-of-words logistic regression and VADER, on held-out corpus
  reviews and on hand-written reviews (in-vocabulary, outside the grammar: the checker
  rejects them);
- samplers: grammatical share and VADER adherence vs steps for mdlm, remask and blocks.

``polydiff eval text`` saves the report as ``report.json`` + ``report.md`` under ``out``
(default out/eval/text); the AR baseline's checkpoint lives in ``out/ar``.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import polydiff
import torch

from . import backend, baselines, baselines_ar, checker, data, tasks, vocab

# prompts phrased as users type them: not training captions, not the trainer's rewordings
USER_PROMPTS = [
    ("write a negative review of a phone", "negative"), ("bad laptop review", "negative"),
    ("complain about a hotel", "negative"), ("a terrible restaurant", "negative"),
    ("i hated this game", "negative"),
    ("write a positive review of a film", "positive"), ("something nice about a hotel", "positive"),
    ("praise for a restaurant", "positive"), ("i loved this book", "positive"), ("great camera review", "positive"),
    ("an average review of a book", "neutral"), ("meh film review", "neutral"),
    ("a phone that is neither good nor bad", "neutral"),
]
CAPTION_PROMPTS = [(data.review_caption(s, p), s) for s, p in
                   [("positive", "phone"), ("negative", "hotel"), ("neutral", "film"), ("positive", "restaurant"),
                    ("negative", "laptop"), ("neutral", "camera"), ("positive", "game"), ("negative", "book")]]
HAND_WRITTEN = [
    ("i love this camera , the photos are sharp and clear .", "positive"),
    ("the staff are kind and the room is quiet , what a wonderful hotel !", "positive"),
    ("a superb book with charming characters and elegant writing .", "positive"),
    ("this laptop is fast and the keyboard is a joy .", "positive"),
    ("the food here is fresh and tasty and the service is quick .", "positive"),
    ("my family really enjoyed this game , the graphics are stunning .", "positive"),
    ("the film is funny and moving , you would love it .", "positive"),
    ("great phone , the battery lasts all day and the screen is bright .", "positive"),
    ("the room is dirty , the staff are rude and the breakfast is cold .", "negative"),
    ("i hate this phone , it dies before lunch .", "negative"),
    ("the plot is a mess and the acting is wooden , a waste of time .", "negative"),
    ("this camera is slow and the lens is soft .", "negative"),
    ("the food is cold and bland and the menu is tiny .", "negative"),
    ("a boring book with flat characters and clumsy writing .", "negative"),
    ("the laptop feels cheap and the trackpad is jumpy .", "negative"),
    ("the controls are clumsy and the graphics are ugly , i did not like this game .", "negative"),
    ("the hotel is standard , the room is small .", "neutral"),
    ("this phone is typical , the battery lasts about a day .", "neutral"),
    ("an ordinary film with a predictable ending .", "neutral"),
    ("the restaurant is average , the menu is short .", "neutral"),
    ("i have mixed feelings about the book , the story is simple .", "neutral"),
    ("the camera is decent and the lens is standard .", "neutral"),
    ("the game is long in places and the story is typical .", "neutral"),
    ("the laptop is plain , the keyboard is standard .", "neutral"),
]
SAMPLERS = ("mdlm", "remask", "blocks")
TEMPERATURES = (0.2, 0.3, 0.5, 1.0)
GENERATION_FIGURES = ("grammatical", "vader_adherence", "distinct")


def _layout_string(record: dict) -> str:
    tail = f"<{record['sentiment']}>" if record["kind"] == "review" else record["summary"]
    return f"{record['text']} [SEP] {tail}"


def _conds(prompts: list[str]) -> dict:
    return {"sentence": polydiff.load_encoder(backend.TEXT_ENCODER).encode(prompts, max_tokens=1)["sentence"]}


@torch.inference_mode()
def perplexity(records: list[dict], t_samples: int, seed: int, ar_folder: Path | None, batch: int = 64) -> dict:
    """Per-token NLL (nats) and perplexity of the diffusion bound, the AR model (left out when
    ``ar_folder`` is None) and the bigram."""
    x = torch.tensor([backend.record_sequence(r) for r in records])
    count = (x != backend.ids(vocab.PAD)).sum(1).double()            # non-PAD tokens per sequence
    cond = _conds([r["caption"] for r in records])
    net = backend.load("cpu").net
    mask_id = backend.ids(vocab.MASK)
    g = torch.Generator().manual_seed(seed)
    bounds = torch.zeros(len(records), t_samples, dtype=torch.float64)
    for k in range(t_samples):       # stratified times: one in each of t_samples equal bins
        t = ((k + torch.rand(len(records), generator=g)) / t_samples).clamp_min(1e-3)
        u = torch.rand(x.shape, generator=g)
        for lo in range(0, len(records), batch):
            sl = slice(lo, lo + batch)
            xt = torch.where(u[sl] < (1 - t[sl])[:, None], x[sl], torch.full_like(x[sl], mask_id))
            logits = net(xt, t[sl], {"sentence": cond["sentence"][sl]}).float()
            logits[..., mask_id] = -torch.inf
            ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), x[sl].flatten(), reduction="none")
            ce = (ce.view(xt.shape) * (xt == mask_id)).sum(1).double()
            bounds[sl, k] = ce / t[sl].double()                # MDLM linear schedule: weight 1 / t
    per_seq = bounds.mean(1)
    total = float(count.sum())
    nll = float(per_seq.sum()) / total
    se = float(math.sqrt(float((bounds.var(1) / t_samples).sum()))) / total
    ar_row = None
    if ar_folder is not None:
        ar_model, ar_steps = _ar_model(ar_folder)
        ar = 0.0
        for lo in range(0, len(records), batch):
            sl = slice(lo, lo + batch)
            ar += float(baselines_ar.nll(ar_model, x[sl], {"sentence": cond["sentence"][sl]}).double().sum())
        ar_row = {"nll": ar / total, "perplexity": math.exp(ar / total), "train_steps": ar_steps}
    train = data.batch(4000, 0, split="train")
    bigram = baselines.Bigram().fit([_layout_string(r) for r in train])
    big_ppl = bigram.perplexity([_layout_string(r) for r in records])
    return {"records": len(records), "tokens": int(total), "t_samples": t_samples,
            "diffusion": {"nll": nll, "nll_se": se, "perplexity": math.exp(nll),
                          "perplexity_range_2se": [math.exp(nll - 2 * se), math.exp(nll + 2 * se)]},
            "autoregressive": ar_row, "bigram": {"nll": math.log(big_ppl), "perplexity": big_ppl},
            "ratio_to_ar": math.exp(nll) / ar_row["perplexity"] if ar_row else None}


def _ar_model(folder: Path):
    """The AR baseline from ``folder`` (out/eval/text/ar), trained there first if missing."""
    if not (folder / "model.json").is_file():
        print(f"training the autoregressive baseline into {folder} (the diffusion RECIPE's budget: "
              "about 80 minutes on one CPU thread)", flush=True)
        baselines_ar.train(folder)
    _, config = polydiff.load_checkpoint(folder)
    return baselines_ar.load("cpu", folder), config.get("step")


def _sentiment_of(output: dict) -> str:
    return baselines.vader_label(output["text"])


def generation(prompts: list[tuple[str, str]], n: int, seed: int, **fields) -> dict:
    """Grammatical share, VADER adherence and diversity (the share of a prompt's ``n`` samples
    that differ from each other, averaged over prompts: a low temperature trades it away)."""
    rows, misses, distinct = [], [], []
    for j, (prompt, want) in enumerate(prompts):
        result = polydiff.generate("text", prompt, n=n, seed=seed + 1000 * j, **fields)
        distinct.append(len({out["text"] for out in result.outputs}) / len(result.outputs))
        for out in result.outputs:
            ok, got = checker.parses_document(out["text"]), _sentiment_of(out)
            rows.append((ok, got == want, out.get("label") == want))
            if (not ok or got != want) and len(misses) < 8:
                misses.append({"prompt": prompt, "text": out["text"], "parses": ok, "vader": got})
    a = np.array(rows, dtype=float)
    return {"samples": len(rows), "grammatical": float(a[:, 0].mean()), "vader_adherence": float(a[:, 1].mean()),
            "own_label_adherence": float(a[:, 2].mean()), "distinct": float(np.mean(distinct)), "misses": misses}


def infill(records: list[dict], seed: int) -> dict:
    rng = np.random.default_rng(seed)
    lm = baselines.Bigram().fit([r["text"] for r in data.batch(4000, 0, split="train")])
    hits, big_hits, total = 0, 0, 0
    mask = backend.ids(vocab.MASK)
    for i, r in enumerate(records):
        words = r["text"].split()
        span = int(rng.integers(1, 4))
        start = int(rng.integers(0, len(words) - span + 1))
        masked = words[:start] + [vocab.MASK] * span + words[start + span:]
        out = polydiff.generate("text", task="infill", init=" ".join(masked), seed=seed + i).outputs[0]
        filled = [vocab.tokens()[t] for t in out["tokens"][start:start + span]]
        big = [vocab.tokens()[t] for t in lm.infill_ids([vocab.token_id(w) if w != vocab.MASK else mask
                                                          for w in masked])[start:start + span]]
        truth = words[start:start + span]
        hits += sum(a == b for a, b in zip(filled, truth))
        big_hits += sum(a == b for a, b in zip(big, truth))
        total += span
    return {"texts": len(records), "tokens": total, "model_accuracy": hits / total, "bigram_accuracy": big_hits / total}


def summarise(records: list[dict], seed: int) -> dict:
    outs = [polydiff.generate("text", task="summarise", init=r["text"], seed=seed + i).outputs[0]["summary"]
            for i, r in enumerate(records)]
    lead = [baselines.lead_sentence(r["text"]) for r in records]
    refs = [r["summary"] for r in records]
    facts = [r["facts"] for r in records]
    return {"paragraphs": len(records),
            "model": {**baselines.rouge(outs, refs), "facts": baselines.fact_scores(outs, facts)},
            "lead": {**baselines.rouge(lead, refs), "facts": baselines.fact_scores(lead, facts)},
            "examples": [{"paragraph": r["text"], "model": o, "reference": r["summary"]}
                         for r, o in list(zip(records, outs))[:3]]}


def _macro_f1(predicted: list[str], truth: list[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth, predicted, labels=list(data.SENTIMENTS), average="macro", zero_division=0))


def sentiment(reviews: list[tuple[str, str]], bow) -> dict:
    texts, truth = [t for t, _ in reviews], [s for _, s in reviews]
    model = [polydiff.generate("text", task="sentiment", init=t, seed=0).outputs[0]["label"] for t in texts]
    out = {"reviews": len(texts)}
    for name, pred in (("model", model), ("bag_of_words", bow.predict(texts)),
                       ("vader", [baselines.vader_label(t) for t in texts])):
        out[name] = {"accuracy": float(np.mean([p == y for p, y in zip(pred, truth)])), "macro_f1": _macro_f1(pred, truth)}
    return out


def samplers(prompts: list[tuple[str, str]], n: int, steps: list[int], seed: int) -> dict:
    """Each sampler at each number of steps, at generate's default temperature and guidance."""
    out = {}
    for name in SAMPLERS:
        for s in steps:
            g = generation(prompts, n, seed, sampler=name, steps=s)
            out[f"{name}/{s}"] = {"sampler": name, "steps": s, **{k: g[k] for k in GENERATION_FIGURES}}
    return out


def temperatures(prompts: list[tuple[str, str]], n: int, seed: int) -> dict:
    """generate's default sampler at each temperature, unguided and at guidance 2: what each
    buys in grammar and prompt adherence and costs in diversity."""
    out = {}
    for w in (1.0, 2.0):
        for t in TEMPERATURES:
            g = generation(prompts, n, seed, temperature=t, guidance=w)
            out[f"{t}/{w}"] = {"temperature": t, "guidance": w, **{k: g[k] for k in GENERATION_FIGURES}}
    return out


def run(out="out/eval/text", quick: bool = False, seed: int = 1234, autoregressive: bool = True) -> dict:
    """The whole table; ``autoregressive=False`` leaves the AR baseline out of the perplexity
    rows (it is trained first when missing, about 80 minutes)."""
    started = time.perf_counter()
    size = dict(ppl=48, t=4, n=1, infill=12, summ=8, sent=30, sampler_n=1, steps=[8, 24]) if quick else \
        dict(ppl=300, t=8, n=4, infill=120, summ=80, sent=200, sampler_n=2, steps=[8, 16, 48])
    held = data.heldout(max(size["ppl"], size["infill"], 2 * size["sent"], 2 * size["summ"]))
    reviews = [r for r in held if r["kind"] == "review"]
    facts = [r for r in held if r["kind"] == "fact"]
    report: dict = {"seed": seed, "quick": quick}
    report["generate"] = {"captions": generation(CAPTION_PROMPTS, size["n"], seed),
                          "user_prompts": generation(USER_PROMPTS, size["n"], seed + 1)}
    report["infill"] = infill(held[:size["infill"]], seed)
    report["summarise"] = summarise(facts[:size["summ"]], seed)
    train_reviews = [r for r in data.batch(4000, 0, split="train") if r["kind"] == "review"]
    bow = baselines.BagOfWords().fit([r["text"] for r in train_reviews], [r["sentiment"] for r in train_reviews])
    hand = HAND_WRITTEN[::4] if quick else HAND_WRITTEN
    report["sentiment"] = {"heldout": sentiment([(r["text"], r["sentiment"]) for r in reviews[:size["sent"]]], bow),
                           "hand_written": {**sentiment(hand, bow),
                                            "checker_rejects": float(np.mean([not checker.parses(t) for t, _ in hand]))}}
    sampler_prompts = [p for i, p in enumerate(USER_PROMPTS + CAPTION_PROMPTS) if i % 3 == 0]
    report["samplers"] = samplers(sampler_prompts[:2] if quick else sampler_prompts, size["sampler_n"],
                                  size["steps"], seed + 2)
    report["temperatures"] = temperatures((CAPTION_PROMPTS + USER_PROMPTS)[::4] if quick else CAPTION_PROMPTS + USER_PROMPTS,
                                          size["n"], seed + 3)
    report["perplexity"] = perplexity(held[:size["ppl"]], size["t"], seed,
                                      Path(out) / "ar" if autoregressive else None)   # last: the AR
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["markdown"] = markdown(report)
    return report   # polydiff.evaluate saves report.json and report.md under out


def markdown(r: dict) -> str:
    p, g, i, s = r["perplexity"], r["generate"], r["infill"], r["summarise"]
    d = p["diffusion"]
    lines = [f"# text evaluation ({'quick' if r['quick'] else 'full'}, seed {r['seed']}, {r.get('seconds', 0)} s)", "",
             f"Perplexity on {p['records']} held-out sequences ({p['tokens']} non-PAD tokens, caption-conditioned):", "",
             "| model | NLL / token (nats) | perplexity |", "|---|---|---|",
             f"| masked diffusion (MDLM bound, {p['t_samples']} t samples) | {d['nll']:.4f} ± {d['nll_se']:.4f} "
             f"| {d['perplexity']:.3f} |",
             *([f"| autoregressive (same network, causal; {p['autoregressive']['train_steps']} steps) "
                f"| {p['autoregressive']['nll']:.4f} | {p['autoregressive']['perplexity']:.3f} |"]
               if p["autoregressive"] else []),
             f"| bigram (add-0.1) | {p['bigram']['nll']:.4f} | {p['bigram']['perplexity']:.3f} |", "",
             (f"Diffusion / AR perplexity: {p['ratio_to_ar']:.3f} (target <= 1.3)" if p["ratio_to_ar"]
              else "The autoregressive baseline was left out of this run."), "",
             "| generation | samples | grammatical | VADER adherence | own label adherence | distinct |",
             "|---|---|---|---|---|---|"]
    for k, v in g.items():
        lines.append(f"| {k.replace('_', ' ')} | {v['samples']} | {v['grammatical']:.1%} | {v['vader_adherence']:.1%} "
                     f"| {v['own_label_adherence']:.1%} | {v['distinct']:.0%} |")
    lines += ["", "| infill (1-3 masked tokens per text) | token accuracy |", "|---|---|",
              f"| masked diffusion | {i['model_accuracy']:.1%} |", f"| bigram Viterbi fill | {i['bigram_accuracy']:.1%} |",
              "", f"| summarise ({s['paragraphs']} paragraphs) | ROUGE-1 | ROUGE-2 | all four facts |", "|---|---|---|---|",
              f"| masked diffusion | {s['model']['rouge1']:.1f} | {s['model']['rouge2']:.1f} | {s['model']['facts']['all']:.1%} |",
              f"| lead sentence | {s['lead']['rouge1']:.1f} | {s['lead']['rouge2']:.1f} | {s['lead']['facts']['all']:.1%} |",
              "", "| sentiment | reviews | model acc / F1 | bag-of-words acc / F1 | VADER acc / F1 |", "|---|---|---|---|---|"]
    for k, v in r["sentiment"].items():
        lines.append(f"| {k.replace('_', ' ')} | {v['reviews']} | {v['model']['accuracy']:.1%} / {v['model']['macro_f1']:.3f} "
                     f"| {v['bag_of_words']['accuracy']:.1%} / {v['bag_of_words']['macro_f1']:.3f} "
                     f"| {v['vader']['accuracy']:.1%} / {v['vader']['macro_f1']:.3f} |")
    lines.append(f"\nThe grammar checker rejects {r['sentiment']['hand_written']['checker_rejects']:.0%} "
                 "of the hand-written reviews (they are outside the corpus grammar).")
    lines += ["", f"Samplers at temperature {tasks.DEFAULT_TEMPERATURE}, guidance {tasks.DEFAULT_GUIDANCE:g}:", "",
              "| sampler | steps | grammatical | VADER adherence | distinct |", "|---|---|---|---|---|"]
    lines += [f"| {v['sampler']} | {v['steps']} | {v['grammatical']:.1%} | {v['vader_adherence']:.1%} "
              f"| {v['distinct']:.0%} |" for v in r["samplers"].values()]
    lines += ["", f"generate's sampler ({tasks.DEFAULT_SAMPLER}, {tasks.STEPS['generate']} steps) by temperature "
              "and guidance, on the caption and user prompts:", "",
              "| temperature | guidance | grammatical | VADER adherence | distinct |", "|---|---|---|---|---|"]
    lines += [f"| {v['temperature']} | {v['guidance']:g} | {v['grammatical']:.1%} | {v['vader_adherence']:.1%} "
              f"| {v['distinct']:.0%} |" for v in r["temperatures"].values()]
    return "\n".join(lines) + "\n"
