"""The text corpus (data.py), its vocabulary (vocab.py) and the grammar's recogniser (checker.py)."""
import json

import numpy as np
import pytest
from polydiff_text import checker, data, vocab


@pytest.fixture(scope="module")
def corpus():
    return data.batch(600, 3)


def test_corpus_is_deterministic_per_seed():
    assert data.batch(50, 7) == data.batch(50, 7)
    assert data.batch(50, 7) != data.batch(50, 8)
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    assert [data.example(rng_a) for _ in range(5)] == [data.example(rng_b) for _ in range(5)]


def test_records_carry_what_they_promise(corpus):
    kinds = {r["kind"] for r in corpus}
    assert kinds == {"review", "fact"}
    for r in corpus:
        assert r["text"] == r["text"].lower() and "  " not in r["text"]
        assert set(r["text"].split()) <= set(data.VOCABULARY)
        n = len(data.sentences(r["text"]))
        if r["kind"] == "review":
            assert r["sentiment"] in data.SENTIMENTS and r["product"] in data.PRODUCTS and 1 <= n <= 3
            assert r["caption"].startswith("a ") and "review" in r["caption"]
        else:
            assert 2 <= n <= 4 and set(r["facts"]) == {"who", "what", "where", "when"}
            assert r["summary"] == data.summary_of(r["facts"])
            assert r["caption"].startswith("a short news paragraph about ")
    full = data.batch(200, 4, drop=0.0)
    assert all(r["caption"] == data.review_caption(r["sentiment"], r["product"]) for r in full if r["kind"] == "review")
    assert data.review_caption("negative", "phone") == "a negative review of a phone"
    # the summary is not always the lead sentence, so a lead baseline is beatable
    facts = [r for r in corpus if r["kind"] == "fact"]
    lead_is_summary = np.mean([data.sentences(r["text"])[0] == r["summary"] for r in facts])
    assert 0.05 < lead_is_summary < 0.4
    assert {r["shape"] for r in facts} == set(data.FACT_SHAPES)


def test_heldout_split_is_fixed_and_disjoint_from_train():
    held = data.heldout(100)
    assert held == data.heldout(100) and all(data.split_of(r) == "heldout" for r in held)
    train = data.batch(400, 0, split="train")
    assert not {r["text"] for r in train} & {r["text"] for r in held}
    fact_key = lambda r: tuple(sorted(r["facts"].items()))  # noqa: E731
    assert not {fact_key(r) for r in train if r["kind"] == "fact"} & {fact_key(r) for r in held if r["kind"] == "fact"}


def test_vocabulary_ids_are_fixed_and_cover_the_grammar():
    toks = vocab.tokens()
    assert toks[:6] == vocab.SPECIALS and toks[6:9] == vocab.LABELS
    assert json.loads(vocab.FILE.read_text())["tokens"] == list(toks)
    # a word the grammar gains must be appended to vocab.json (python -m polydiff_text.vocab)
    assert vocab.build(list(toks)) == list(toks), "vocab.json lacks grammar words: run python -m polydiff_text.vocab"
    assert len(set(toks)) == len(toks) and 250 <= vocab.size() <= 600


def test_vocab_round_trip(corpus):
    for r in corpus[:200]:
        ids = vocab.encode(r["text"])
        assert vocab.token_id(vocab.UNK) not in ids
        assert vocab.decode(ids, tidy=False) == r["text"]
    assert vocab.decode(vocab.encode("the phone is great , and it lasts .")) == "the phone is great, and it lasts."
    pad = vocab.token_id(vocab.PAD)
    assert vocab.decode([vocab.token_id(vocab.BOS), *vocab.encode("the film"), vocab.token_id(vocab.EOS), pad, pad]) == "the film"


def test_user_text_masks_and_unknown_words():
    ids = vocab.encode("The Movie was [MASK] and the acting _!")
    mask = vocab.token_id(vocab.MASK)
    assert ids.count(mask) == 2 and ids[-1] == vocab.token_id("!")
    assert vocab.split("The film, was GREAT.") == ["the", "film", ",", "was", "great", "."]
    assert vocab.unknown_words("The Movie was [mask] and the zorgle movie") == ["movie", "zorgle"]
    assert ids[1] == vocab.token_id(vocab.UNK)
    assert vocab.encode("<positive> [SEP]") == [vocab.token_id("<positive>"), vocab.token_id(vocab.SEP)]


def test_checker_accepts_every_corpus_text_sentence_and_summary(corpus):
    assert all(checker.parses_document(r["text"]) for r in corpus)
    assert all(checker.parses(s) for r in corpus for s in data.sentences(r["text"]))
    assert all(checker.parses(r["summary"]) for r in corpus if r["kind"] == "fact")
    assert checker.parses("The phone is great and the battery lasts all day.")  # user spacing and case


def test_checker_needs_agreement_between_words_and_sentences():
    assert checker.parses("the phone is great and the battery lasts all day .")
    assert not checker.parses("the film is great and the battery lasts all day .")   # a film has no battery
    assert not checker.parses("the phone is great . the battery dies before lunch .")  # one sentiment
    assert not checker.parses("maria opened a bakery in paris . he sold bread to many people .")  # she
    assert not checker.parses("maria opened a bakery in paris . it happened in rome .")  # one city
    assert not checker.parses_document("the battery lasts all day .")  # a review opens with its verdict
    assert not checker.parses("")


def _word_classes():
    classes = {}
    for name, cls in data.CLASSES.items():
        for phrases in cls.table.values():
            for p in phrases:
                for w in p.split():
                    classes.setdefault(w, set()).add(name)
    for t in data.TEMPLATES:
        for s in t.slots:
            if not s.startswith("{"):
                classes.setdefault(s, set()).add("literal:" + s)
    return classes


def test_checker_rejects_corrupted_sentences(corpus):
    rng = np.random.default_rng(0)
    classes, words = _word_classes(), list(data.VOCABULARY)
    sentences = [s.split() for r in corpus for s in data.sentences(r["text"])][:800]

    def shuffled(t):
        return next((p for p in (list(rng.permutation(t)) for _ in range(20)) if p != t), None)

    def swapped(t):  # one word for a word of another class
        i = int(rng.integers(len(t) - 1))
        others = [w for w in words if not classes.get(w, set()) & classes[t[i]]]
        return t[:i] + [others[rng.integers(len(others))]] + t[i + 1:]

    def truncated(t):
        return t[:int(rng.integers(1, len(t)))]

    def repeated(t):
        i = int(rng.integers(len(t)))
        return t[:i + 1] + t[i:]

    rates = {}
    for corrupt in (shuffled, swapped, truncated, repeated):
        bad = [b for b in map(corrupt, sentences) if b is not None]
        rates[corrupt.__name__] = np.mean([not checker.parses(" ".join(b)) for b in bad])
    print("checker rejection rates:", rates)
    assert min(rates.values()) >= 0.95, rates
