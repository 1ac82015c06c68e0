"""The word-level vocabulary the text plugin ships: special tokens, sentiment labels, then every
word of the corpus grammar (:mod:`.data`).

Ids are read from ``vocab.json`` next to this module, so they stay fixed for a trained
checkpoint: a word the grammar gains is appended (``python -m polydiff_text.vocab`` does it),
never inserted. ``[MASK]`` (any case) and ``_`` in user text are the mask token; a word outside
the vocabulary becomes ``[UNK]`` and ``unknown_words`` names it, so a caller can say so.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from . import data

PAD, MASK, UNK, SEP, BOS, EOS = "[PAD]", "[MASK]", "[UNK]", "[SEP]", "[BOS]", "[EOS]"
SPECIALS = (PAD, MASK, UNK, SEP, BOS, EOS)
LABELS = tuple(f"<{s}>" for s in data.SENTIMENTS)  # <positive> <negative> <neutral>
FILE = Path(__file__).with_name("vocab.json")
PUNCTUATION = frozenset(".,!?;:")
_PIECES = re.compile(r"\[[a-z]+\]|<[a-z]+>|_|[a-z0-9]+(?:[-'][a-z0-9]+)*|[^\sa-z0-9_]")


def build(previous: list[str] | None = None) -> list[str]:
    """The token list: ``previous`` (ids kept) plus whatever of SPECIALS, LABELS and the grammar's
    words it lacks, appended in sorted order."""
    tokens = list(previous or [])
    have = set(tokens)
    for tok in (*SPECIALS, *LABELS, *data.VOCABULARY):
        if tok not in have:
            tokens.append(tok)
            have.add(tok)
    return tokens


@lru_cache(maxsize=1)
def tokens() -> tuple[str, ...]:
    """id -> token, as shipped in vocab.json."""
    return tuple(json.loads(FILE.read_text())["tokens"])


@lru_cache(maxsize=1)
def ids() -> dict[str, int]:
    """token -> id."""
    return {t: i for i, t in enumerate(tokens())}


def size() -> int:
    return len(tokens())


def token_id(token: str) -> int:
    """The id of one token (a special, a label such as "<positive>", or a word); UNK's if absent."""
    return ids().get(token, ids()[UNK])


def split(text: str) -> list[str]:
    """User text -> tokens: lowercased, punctuation split off, ``[MASK]`` / ``_`` -> ``[MASK]``."""
    out = []
    for piece in _PIECES.findall(text.lower()):
        if piece == "_":
            out.append(MASK)
        elif piece.startswith("[") and piece.upper() in SPECIALS:
            out.append(piece.upper())
        else:
            out.append(piece)
    return out


def encode(text: str) -> list[int]:
    """Token ids of ``text``; words outside the vocabulary become ``[UNK]``."""
    table, unk = ids(), ids()[UNK]
    return [table.get(t, unk) for t in split(text)]


def unknown_words(text: str) -> list[str]:
    """The words of ``text`` the vocabulary lacks (each once, in order of appearance)."""
    table = ids()
    return list(dict.fromkeys(t for t in split(text) if t not in table))


def decode(ids_: list[int], tidy: bool = True, keep_special: bool = False) -> str:
    """Ids -> text. PAD is dropped; so are BOS / EOS unless ``keep_special``; MASK, UNK, SEP and
    labels show as their names. ``tidy`` puts punctuation against the word before it ("great,
    and"); ``tidy=False`` gives the corpus's form (one space between all tokens)."""
    table = tokens()
    drop = {PAD} if keep_special else {PAD, BOS, EOS}
    words = [table[int(i)] for i in ids_ if table[int(i)] not in drop]
    if not tidy:
        return " ".join(words)
    out = ""
    for w in words:
        out += w if (w in PUNCTUATION or not out) else " " + w
    return out


def main() -> None:
    """Append the grammar's new words to vocab.json (ids of existing tokens are kept)."""
    previous = json.loads(FILE.read_text())["tokens"] if FILE.exists() else None
    new = build(previous)
    FILE.write_text(json.dumps({"tokens": new}, indent=0) + "\n")
    tokens.cache_clear()
    ids.cache_clear()
    print(f"{FILE}: {len(new)} tokens ({len(new) - len(previous or [])} new)")


if __name__ == "__main__":
    main()
