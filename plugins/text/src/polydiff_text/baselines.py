"""The classic baselines a text model is compared against, trained on the corpus of :mod:`.data`:

- ``Bigram``: a bigram language model with add-k smoothing over the plugin's vocabulary;
  per-token perplexity, and infilling (each masked span filled by the most probable path between
  its neighbours, Viterbi over the vocabulary);
- ``BagOfWords``: logistic regression over word counts (scikit-learn), a sentiment classifier;
- ``vader_label``: VADER's sentiment (compound >= 0.05 positive, <= -0.05 negative, else
  neutral), a lexicon that never saw the corpus: the independent checker of prompted reviews;
- ``lead_sentence`` as a summary, scored with ROUGE-1/2 (``rouge``, the rouge-score package) and
  ``fact_accuracy`` (who / what / where / when found in a summary).

scikit-learn, vaderSentiment and rouge-score are imported inside the functions that use them.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from . import data, vocab

# --- bigram language model -----------------------------------------------------------------


class Bigram:
    """P(next | previous) = (count + k) / (count(previous) + k V), over vocab.py's ids; every
    text is wrapped in BOS ... EOS."""

    def __init__(self, k: float = 0.1):
        self.k = k
        self.V = vocab.size()
        self.counts = np.zeros((self.V, self.V), np.float64)

    def fit(self, texts: list[str]) -> Bigram:
        bos, eos = vocab.token_id(vocab.BOS), vocab.token_id(vocab.EOS)
        for text in texts:
            ids = [bos, *vocab.encode(text), eos]
            np.add.at(self.counts, (ids[:-1], ids[1:]), 1)
        return self

    @property
    def logprob(self) -> np.ndarray:
        """[V, V] log P(column | row)."""
        p = (self.counts + self.k) / (self.counts.sum(1, keepdims=True) + self.k * self.V)
        return np.log(p)

    def perplexity(self, texts: list[str]) -> float:
        """Per-token perplexity (EOS counted as a token, BOS not)."""
        lp = self.logprob
        bos, eos = vocab.token_id(vocab.BOS), vocab.token_id(vocab.EOS)
        total, n = 0.0, 0
        for text in texts:
            ids = [bos, *vocab.encode(text), eos]
            total += float(lp[ids[:-1], ids[1:]].sum())
            n += len(ids) - 1
        return math.exp(-total / max(n, 1))

    def infill(self, text: str) -> str:
        """``text`` with every run of ``[MASK]`` / ``_`` replaced by the most probable words
        between its neighbours (BOS / EOS at the ends); returned in the corpus's spacing."""
        return vocab.decode(self.infill_ids(vocab.encode(text)), tidy=False)

    def infill_ids(self, ids: list[int]) -> list[int]:
        lp = self.logprob.copy()
        mask, bos, eos = (vocab.token_id(t) for t in (vocab.MASK, vocab.BOS, vocab.EOS))
        # a filled word is a real word: never a special token or a label
        banned = [vocab.token_id(t) for t in (*vocab.SPECIALS, *vocab.LABELS)]
        out = list(ids)
        i = 0
        while i < len(out):
            if out[i] != mask:
                i += 1
                continue
            j = i
            while j < len(out) and out[j] == mask:
                j += 1
            left = out[i - 1] if i > 0 else bos
            right = out[j] if j < len(out) else eos
            out[i:j] = self._viterbi(lp, left, right, j - i, banned)
            i = j
        return out

    @staticmethod
    def _viterbi(lp: np.ndarray, left: int, right: int, length: int, banned: list[int]) -> list[int]:
        score = lp[left].copy()            # best log-prob of a path ending in each word
        score[banned] = -np.inf
        back = []
        for _ in range(length - 1):
            total = score[:, None] + lp      # [previous, next]
            best = total.argmax(0)
            score = total[best, np.arange(len(score))]
            score[banned] = -np.inf
            back.append(best)
        score = score + lp[:, right]
        path = [int(score.argmax())]
        for best in reversed(back):
            path.append(int(best[path[-1]]))
        return path[::-1]


# --- sentiment -----------------------------------------------------------------------------


class BagOfWords:
    """Logistic regression over word counts (unigrams): review text -> sentiment."""

    def __init__(self, C: float = 1.0):
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.linear_model import LogisticRegression

        self.vectorizer = CountVectorizer(token_pattern=r"[^ ]+", lowercase=True)
        self.model = LogisticRegression(C=C, max_iter=1000)

    def fit(self, texts: list[str], labels: list[str]) -> BagOfWords:
        self.model.fit(self.vectorizer.fit_transform(texts), labels)
        return self

    def predict(self, texts: list[str]) -> list[str]:
        return [str(p) for p in self.model.predict(self.vectorizer.transform(texts))]

    def accuracy(self, texts: list[str], labels: list[str]) -> float:
        return float(np.mean([p == y for p, y in zip(self.predict(texts), labels)]))


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_compound(text: str) -> float:
    """VADER's compound score of ``text``, in [-1, 1]."""
    return float(_vader().polarity_scores(text)["compound"])


def vader_label(text: str, threshold: float = 0.05) -> str:
    """positive (compound >= threshold), negative (<= -threshold) or neutral."""
    c = vader_compound(text)
    return "positive" if c >= threshold else "negative" if c <= -threshold else "neutral"


def label_accuracy(predicted: list[str], truth: list[str]) -> dict:
    """Accuracy overall and per true class: {"all": .., "positive": .., ...}."""
    out = {"all": float(np.mean([p == t for p, t in zip(predicted, truth)]))}
    for s in data.SENTIMENTS:
        pairs = [(p, t) for p, t in zip(predicted, truth) if t == s]
        out[s] = float(np.mean([p == t for p, t in pairs])) if pairs else float("nan")
    return out


# --- summaries -----------------------------------------------------------------------------


def lead_sentence(text: str) -> str:
    """The first sentence: the lead-sentence summary."""
    parts = data.sentences(text)
    return parts[0] if parts else ""


def rouge(candidates: list[str], references: list[str]) -> dict:
    """Mean ROUGE-1 and ROUGE-2 F-measure (x100) of candidates against references."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2"], use_stemmer=False)
    scores = [scorer.score(r, c) for c, r in zip(candidates, references)]
    return {k: 100 * float(np.mean([s[k].fmeasure for s in scores])) for k in ("rouge1", "rouge2")}


FACT_FIELDS = ("who", "what", "where", "when")
_RIVALS = {"who": [n for names in data.NAMES.values() for n in names], "what": [e[0] for e in data.EVENTS.values()],
           "where": data.CITIES, "when": data.WHENS}


def _contains(words: list[str], phrase: str) -> bool:
    p = phrase.split()
    return any(words[i:i + len(p)] == p for i in range(len(words) - len(p) + 1))


def fact_accuracy(summary: str, facts: dict) -> dict:
    """Per field, whether ``summary`` states the fact: its phrase appears and no other value of
    the same field does (a summary naming two cities gets "where" wrong)."""
    words = data.tokens(summary)
    out = {}
    for f in FACT_FIELDS:
        others = [v for v in _RIVALS[f] if v != facts[f]]
        out[f] = _contains(words, facts[f]) and not any(_contains(words, v) for v in others)
    return out


def fact_scores(summaries: list[str], facts: list[dict]) -> dict:
    """Mean fact accuracy per field, and the share of summaries with all four right."""
    rows = [fact_accuracy(s, f) for s, f in zip(summaries, facts)]
    out = {f: float(np.mean([r[f] for r in rows])) for f in FACT_FIELDS}
    out["all"] = float(np.mean([all(r.values()) for r in rows]))
    return out


# --- all of them at once ---------------------------------------------------------------------


def report(train: int = 4000, heldout: int = 1000, seed: int = 0) -> dict:
    """Every baseline trained on ``train`` records of the train split and scored on the fixed
    held-out set (``data.heldout``)."""
    rng = np.random.default_rng(seed)
    tr, ho = data.batch(train, seed, split="train"), data.heldout(heldout)
    lm = Bigram().fit([r["text"] for r in tr])
    ho_texts = [r["text"] for r in ho]
    shuffled = [" ".join(rng.permutation(t.split())) for t in ho_texts]
    reviews_tr = [r for r in tr if r["kind"] == "review"]
    reviews = [r for r in ho if r["kind"] == "review"]
    facts = [r for r in ho if r["kind"] == "fact"]
    bow = BagOfWords().fit([r["text"] for r in reviews_tr], [r["sentiment"] for r in reviews_tr])
    truth = [r["sentiment"] for r in reviews]
    leads = [lead_sentence(r["text"]) for r in facts]
    return {
        "bigram": {"heldout_perplexity": lm.perplexity(ho_texts), "shuffled_perplexity": lm.perplexity(shuffled)},
        "bag_of_words": label_accuracy(bow.predict([r["text"] for r in reviews]), truth),
        "vader": label_accuracy([vader_label(r["text"]) for r in reviews], truth),
        "lead_summary": {**rouge(leads, [r["summary"] for r in facts]),
                         "facts": fact_scores(leads, [r["facts"] for r in facts])},
        "train": len(tr), "heldout": {"reviews": len(reviews), "facts": len(facts)},
    }
