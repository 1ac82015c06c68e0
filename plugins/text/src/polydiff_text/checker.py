"""A recogniser for the corpus grammar of :mod:`.data`, so the fluency of generated text can be
measured without a learned model.

A sentence parses when some template of ``data.TEMPLATES`` matches it slot by slot, each slot
taking one of its word class's phrases. Slots share variables (the product kind, the sentiment,
the person's gender, the event, the city, ...): "the film is great and the battery lasts all
day ." fails, because a film has no battery. A text parses when every sentence parses and the
sentences agree on those variables (one sentiment per review, she for maria, one city);
``parses_document`` also asks for a whole record's shape (``data.DOCUMENTS``: a review opens by
saying its sentiment, a paragraph has 2-4 sentences in one of six orders).
"""
from __future__ import annotations

import re
from functools import lru_cache

from . import data


@lru_cache(maxsize=1)
def _compiled() -> list[tuple[data.Template, tuple]]:
    """Each template as a tuple of items: a literal word, or (class, [(key, phrase tokens)])."""
    out = []
    for t in data.TEMPLATES:
        items = []
        for slot in t.slots:
            if slot.startswith("{"):
                cls = data.CLASSES[slot[1:-1]]
                items.append((cls.names, [(k, tuple(p.split())) for k, phrases in cls.table.items() for p in phrases]))
            else:
                items.append(slot)
        out.append((t, tuple(items)))
    return out


def _match(items: tuple, i: int, words: tuple, j: int, bound: dict):
    """Yield every binding with which ``items[i:]`` matches ``words[j:]`` exactly."""
    if i == len(items):
        if j == len(words):
            yield bound
        return
    item = items[i]
    if isinstance(item, str):
        if j < len(words) and words[j] == item:
            yield from _match(items, i + 1, words, j + 1, bound)
        return
    names, options = item
    for key, phrase in options:
        if words[j:j + len(phrase)] != phrase:
            continue
        if not all(bound.get(n, v) == v for n, v in zip(names, key)):
            continue
        yield from _match(items, i + 1, words, j + len(phrase), {**bound, **dict(zip(names, key))})


def parse_sentence(sentence: str, bound: dict | None = None) -> list[tuple[data.Template, dict]]:
    """Every (template, bindings) reading of one sentence, given what earlier sentences bound."""
    words = tuple(data.tokens(sentence))
    bound = dict(bound or {})
    readings = []
    for template, items in _compiled():
        if any(bound.get(k, v) != v for k, v in template.fixed.items()):
            continue
        start = {**bound, **template.fixed}
        for b in _match(items, 0, words, 0, start):
            readings.append((template, {k: v for k, v in b.items() if k not in data.LOCAL}))
    return readings


def parse(text: str) -> list[list[str]] | None:
    """The readings of ``text``: for each way its sentences parse consistently, the groups of
    the templates used (``["O", "F"]``); None when it does not parse."""
    parts = data.sentences(" ".join(data.tokens(text)))
    if not parts:
        return None
    states = [((), None, {})]  # (groups so far, kind, bindings)
    for sentence in parts:
        nxt = []
        for groups, kind, bound in states:
            for template, b in parse_sentence(sentence, bound):
                if kind in (None, template.kind):
                    nxt.append((groups + (template.group,), template.kind, b))
        # identical states reached two ways are one
        states = list({(g, k, tuple(sorted(b.items()))): (g, k, b) for g, k, b in nxt}.values())
        if not states:
            return None
    return [list(g) for g, _, _ in states]


def parses(text: str) -> bool:
    """Whether every sentence of ``text`` is a grammar sentence and they agree with each other."""
    return parse(text) is not None


def parses_document(text: str) -> bool:
    """Whether ``text`` is a whole record the grammar writes (a review or a factual paragraph)."""
    readings = parse(text) or []
    patterns = {k: re.compile(f"(?:{p})") for k, p in data.DOCUMENTS.items()}
    kinds = {t.group: t.kind for t in data.TEMPLATES}
    return any(patterns[kinds[g[0]]].fullmatch("".join(g)) for g in readings)


def rejected_words(text: str) -> list[str]:
    """Words of ``text`` outside the grammar's vocabulary (a quick reason why it fails)."""
    vocab = set(data.VOCABULARY)
    return [w for w in data.tokens(text) if w not in vocab]
