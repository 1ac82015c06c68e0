"""The classic text baselines (baselines.py) on the corpus."""
import numpy as np
import pytest
from polydiff_text import baselines, checker, data


@pytest.fixture(scope="module")
def train():
    return data.batch(1500, 0, split="train")


@pytest.fixture(scope="module")
def held():
    return data.heldout(400)


def test_bigram_prefers_heldout_text_to_shuffled_text(train, held):
    lm = baselines.Bigram().fit([r["text"] for r in train])
    texts = [r["text"] for r in held]
    rng = np.random.default_rng(0)
    shuffled = [" ".join(rng.permutation(t.split())) for t in texts]
    ppl, ppl_shuffled = lm.perplexity(texts), lm.perplexity(shuffled)
    print(f"bigram perplexity: held-out {ppl:.2f}, shuffled {ppl_shuffled:.1f}")
    assert ppl < 12 and ppl * 20 < ppl_shuffled


def test_bigram_infill_fills_masks_between_neighbours(train):
    lm = baselines.Bigram().fit([r["text"] for r in train])
    out = lm.infill("maria _ a bakery in paris on [MASK] .")
    words = out.split()
    assert len(words) == 9 and "[MASK]" not in out and words[1] == "opened" and words[7] in data.DAYS
    assert lm.infill("the phone is great .") == "the phone is great ."
    assert checker.parses(lm.infill("i would [MASK] [MASK] it to anyone ."))


def test_bag_of_words_sentiment_on_heldout(train, held):
    reviews = [r for r in train if r["kind"] == "review"]
    bow = baselines.BagOfWords().fit([r["text"] for r in reviews], [r["sentiment"] for r in reviews])
    test = [r for r in held if r["kind"] == "review"]
    acc = baselines.label_accuracy(bow.predict([r["text"] for r in test]), [r["sentiment"] for r in test])
    print("bag-of-words held-out accuracy:", acc)
    assert acc["all"] >= 0.9


def test_vader_reads_the_corpus_sentiments(held):
    reviews = [r for r in held if r["kind"] == "review"]
    acc = baselines.label_accuracy([baselines.vader_label(r["text"]) for r in reviews],
                                   [r["sentiment"] for r in reviews])
    print("VADER accuracy on corpus reviews:", acc)
    assert acc["all"] >= 0.9 and min(acc[s] for s in data.SENTIMENTS) >= 0.8
    assert baselines.vader_label("the film was dull and far too long .") == "negative"
    assert baselines.vader_label("the phone is average .") == "neutral"


def test_lead_sentence_summary_is_beatable(held):
    facts = [r for r in held if r["kind"] == "fact"]
    leads = [baselines.lead_sentence(r["text"]) for r in facts]
    truth = [r["summary"] for r in facts]
    lead, perfect = baselines.rouge(leads, truth), baselines.rouge(truth, truth)
    lead_facts = baselines.fact_scores(leads, [r["facts"] for r in facts])
    print("lead-sentence ROUGE:", lead, "fact accuracy:", lead_facts)
    assert perfect == {"rouge1": 100.0, "rouge2": 100.0}
    assert 40 < lead["rouge1"] < 90 and lead["rouge2"] < lead["rouge1"]
    assert baselines.fact_scores(truth, [r["facts"] for r in facts])["all"] == 1.0
    assert lead_facts["all"] < 0.5


def test_fact_accuracy_needs_the_right_value_alone():
    facts = {"who": "maria", "what": "opened a bakery", "where": "paris", "when": "on monday"}
    assert baselines.fact_accuracy("maria opened a bakery in paris on monday .", facts) == dict.fromkeys(facts, True)
    got = baselines.fact_accuracy("maria grew up in rome . she opened a bakery in paris .", facts)
    assert got == {"who": True, "what": True, "where": False, "when": False}
