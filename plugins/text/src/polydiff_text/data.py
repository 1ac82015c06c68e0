"""Procedural, seeded text: product reviews with a sentiment, and short factual paragraphs with
a one-sentence summary. Lowercase, one space between tokens, punctuation as its own token.

What the grammar covers
-----------------------
**Reviews** (``kind="review"``) of eight kinds of thing (phone, laptop, camera, film, book,
restaurant, hotel, game), 1-3 sentences, with a sentiment (positive / negative / neutral)
carried by the words. The first sentence always says it plainly ("the phone is great !",
"this is an awful hotel .", "i feel neutral about this book .", "the film was dull and far too
long ."); the others talk about an aspect of that kind of thing ("the battery lasts all day .",
"the service is slow and rude ."), recommend or not ("i would not recommend it to anyone ."),
sum up ("overall , it does the job .") or say how it was used ("i stayed at this hotel last
week ."). Aspects belong to their kind (a film has a plot, never a battery) and one review keeps
one sentiment throughout. Neutral words are ones sentiment lexicons score as neutral ("average",
"standard", "decent").

**Facts** (``kind="fact"``): who (one of 20 first names, which fix she/he and her/his), did what
(one of 12 events: "opened a bakery", "won a prize", "ran a marathon", ...), where (14 cities),
when ("on monday" ... "in june" ...): 2-4 sentences, each paired with the summary
``"{who} {what} in {where} {when} ."``. Six paragraph shapes, so the lead sentence is the
summary only sometimes:

- lead: the summary (or "on monday , maria opened a bakery in paris .") then 1-3 details;
- background: "it was a cold morning in paris . on monday , maria opened a bakery there . ...";
- origin: "maria grew up in rome . on monday , she opened a bakery in paris . ..." (a
  distractor city);
- split where: "maria opened a bakery on monday . the bakery is in paris . ...";
- split when: "maria opened a bakery in paris . it happened on monday . ...";
- name later: "a young woman opened a bakery in paris on monday . her name is maria . ...".

Details are the event's own ("she sold bread to many people .") or generic ("many people came
to see it ."). Every record carries a caption for steering: "a negative review of a phone",
"a short news paragraph about a bakery" (``drop`` leaves the sentiment or the product out of a
review's caption now and then: "a review of a hotel", "a positive review").

The grammar is a set of sentence templates over word classes (``TEMPLATES``, ``CLASSES``) and
a document pattern per kind (``DOCUMENTS``); :mod:`.checker` recognises exactly this language
with the same tables. ``VOCABULARY`` is every word the generator can write, captions included.
Records in the held-out split (``split_of``: a hash of the review's text, or of a paragraph's
facts, so a held-out paragraph's fact combination never occurs in training) are never returned
by ``batch(..., split="train")``.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

import numpy as np

SENTIMENTS = ("positive", "negative", "neutral")
PRODUCTS = ("phone", "laptop", "camera", "film", "book", "restaurant", "hotel", "game")
STORIES = ("film", "book", "game")  # kinds with a story: kind-specific words ("gripping", "dull")

# --- reviews -------------------------------------------------------------------------------

ADJECTIVES = {
    "positive": ["great", "excellent", "wonderful", "fantastic", "brilliant", "superb", "lovely", "amazing"],
    "negative": ["awful", "terrible", "poor", "disappointing", "horrible", "bad"],
    "neutral": ["average", "ordinary", "standard", "typical", "decent"],
}
WITH_ARTICLE = {p: [("an " if a[0] in "aeiou" else "a ") + a for a in words] for p, words in ADJECTIVES.items()}
STORY_ADJECTIVES = {  # film / book / game only
    "positive": ["gripping", "moving and funny", "a joy from start to finish"],
    "negative": ["dull and far too long", "boring", "a waste of time"],
    "neutral": ["long in places", "neither here nor there"],
}
NEGATED = {  # "the phone is not great ." (no neutral form: negation leans)
    "positive": ["not bad at all"],
    "negative": ["not great", "not good", "not worth the money"],
}
OPINIONS = {
    "positive": ["love", "really love", "really like", "enjoyed"],
    "negative": ["hate", "really dislike", "did not like"],
    "neutral": ["feel neutral about", "have mixed feelings about"],
}
RECOMMEND = {
    "positive": ["recommend it to anyone", "recommend it to my family"],
    "negative": ["not recommend it to anyone", "not recommend it to my family"],
    "neutral": ["say it is average", "call it standard"],
}
OVERALL = {
    "positive": ["i am very happy with it", "it was worth every penny", "a great choice"],
    "negative": ["it was a waste of money", "i am very disappointed", "a bad choice"],
    "neutral": ["it does the job", "it is what you would expect", "an average choice"],
}
USED = {  # "i {used} this {product} {when} ."
    "phone": ["bought", "used"], "laptop": ["bought", "used"], "camera": ["bought", "used"],
    "film": ["watched", "saw"], "book": ["read", "bought"], "restaurant": ["ate at", "visited"],
    "hotel": ["stayed at", "booked"], "game": ["finished", "bought"],
}
USED_WHEN = ["last week", "last month", "last year", "in the summer", "for a week"]

_BATTERY = {"positive": ["lasts all day", "is excellent"], "negative": ["dies before lunch", "is awful"],
            "neutral": ["lasts about a day"]}
_SCREEN = {"positive": ["is bright and sharp"], "negative": ["is dim and blurry"], "neutral": ["is average"]}
_STORY = {"positive": ["is gripping", "is clever"], "negative": ["is dull and predictable", "is a mess"],
          "neutral": ["is simple", "is typical"]}
# ASPECTS[kind][aspect][sentiment] -> what "the {aspect}" does
ASPECTS = {
    "phone": {"battery": _BATTERY, "screen": _SCREEN,
              "camera": {"positive": ["takes great photos"], "negative": ["takes terrible photos"],
                         "neutral": ["takes ordinary photos"]}},
    "laptop": {"battery": _BATTERY, "screen": _SCREEN,
               "keyboard": {"positive": ["is a joy to type on"], "negative": ["feels cheap and flimsy"],
                            "neutral": ["is standard"]},
               "trackpad": {"positive": ["is smooth and precise"], "negative": ["is jumpy and annoying"],
                            "neutral": ["is average"]}},
    "camera": {"battery": _BATTERY,
               "lens": {"positive": ["is sharp and clear"], "negative": ["is soft and blurry"],
                        "neutral": ["is standard"]},
               "autofocus": {"positive": ["is fast and reliable"], "negative": ["is slow and unreliable"],
                             "neutral": ["is average"]}},
    "film": {"plot": _STORY,
             "acting": {"positive": ["is superb"], "negative": ["is wooden and awkward"], "neutral": ["is ordinary"]},
             "ending": {"positive": ["is moving"], "negative": ["is silly and rushed"], "neutral": ["is predictable"]},
             "music": {"positive": ["is beautiful"], "negative": ["is annoying"], "neutral": ["is forgettable"]}},
    "book": {"story": _STORY,
             "characters": {"positive": ["are charming"], "negative": ["are flat and boring"],
                            "neutral": ["are typical"]},
             "writing": {"positive": ["is elegant"], "negative": ["is clumsy and dull"], "neutral": ["is plain"]}},
    "restaurant": {"food": {"positive": ["is delicious", "is fresh and tasty"], "negative": ["is cold and bland"],
                            "neutral": ["is standard"]},
                   "service": {"positive": ["is quick and friendly"], "negative": ["is slow and rude"],
                               "neutral": ["is average"]},
                   "menu": {"positive": ["has lots of choice"], "negative": ["is tiny and dull"],
                            "neutral": ["is short"]}},
    "hotel": {"room": {"positive": ["is clean and quiet"], "negative": ["is dirty and noisy"],
                       "neutral": ["is small"]},
              "staff": {"positive": ["are helpful and kind"], "negative": ["are rude"], "neutral": ["do their job"]},
              "breakfast": {"positive": ["is delicious"], "negative": ["is cold and bland"],
                            "neutral": ["is standard"]}},
    "game": {"story": _STORY,
             "graphics": {"positive": ["are stunning"], "negative": ["are ugly"], "neutral": ["are average"]},
             "controls": {"positive": ["feel smooth"], "negative": ["feel clumsy"],
                          "neutral": ["take time to learn"]}},
}

# --- facts ---------------------------------------------------------------------------------

NAMES = {
    "female": ["maria", "anna", "sofia", "emma", "lucy", "nora", "ines", "yuki", "amira", "clara"],
    "male": ["tom", "david", "omar", "leo", "james", "ivan", "ken", "paulo", "samuel", "hugo"],
}
PRONOUNS = {"female": ("she", "her"), "male": ("he", "his")}
PEOPLE = {"female": ["a woman", "a young woman", "a local woman"], "male": ["a man", "a young man", "a local man"]}
JOBS = ["teacher", "baker", "nurse", "student", "farmer", "doctor", "painter", "chef"]
CITIES = ["paris", "london", "rome", "tokyo", "cairo", "lima", "oslo", "berlin", "madrid", "lisbon",
          "dublin", "vienna", "athens", "prague"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december"]
WHENS = [f"on {d}" for d in DAYS] + [f"in {m}" for m in MONTHS]
WEATHER = ["cold", "warm", "sunny", "quiet", "busy", "rainy"]
DAYPARTS = ["day", "morning", "week"]
# EVENTS[event] = (what was done, what the caption calls it, a place that "is in" the city or None,
#                  the event's own detail sentences, with {pron} / {poss} for she / her)
EVENTS = {
    "bakery": ("opened a bakery", "a bakery", "bakery",
               ["{pron} sold bread to many people .", "the bakery was busy all day .",
                "people waited outside for fresh bread ."]),
    "cafe": ("opened a cafe", "a cafe", "cafe",
             ["{pron} served coffee to many people .", "the cafe was full by noon ."]),
    "prize": ("won a prize", "a prize", None,
              ["{pron} thanked {poss} family .", "the prize was for {poss} work in science ."]),
    "school": ("started a school", "a school", "school",
               ["the school has ten teachers .", "many children went there on the first day ."]),
    "bridge": ("built a bridge", "a bridge", "bridge",
               ["the bridge crosses the river .", "{pron} worked on it for two years ."]),
    "mural": ("painted a mural", "a mural", "mural",
              ["the mural shows the sea .", "{pron} used bright colours ."]),
    "dog": ("found a lost dog", "a lost dog", None,
            ["{pron} took the dog home .", "the owner came the next day ."]),
    "marathon": ("ran a marathon", "a marathon", None,
                 ["{pron} finished in four hours .", "many people cheered ."]),
    "novel": ("wrote a book", "a new book", None,
              ["the book is about {poss} family .", "{pron} signed copies for readers ."]),
    "garden": ("planted a garden", "a garden", "garden",
               ["the garden has many flowers .", "{pron} gave the vegetables to neighbours ."]),
    "concert": ("played a concert", "a concert", None,
                ["{pron} played the piano for two hours .", "the hall was full ."]),
    "museum": ("opened a museum", "a museum", "museum",
               ["the museum shows old maps .", "entry is free for children ."]),
}
GENERIC_DETAILS = ["many people came to see it .", "the local paper wrote about it .",
                   "it was a big day for {poss} family ."]

# --- the grammar: word classes and sentence templates ---------------------------------------


@dataclass(frozen=True)
class WordClass:
    """A slot's fillers: ``table`` maps a tuple of values for ``names`` (the variables the slot
    reads or sets) to the phrases that may fill it with those values. A phrase may be empty."""
    names: tuple[str, ...]
    table: dict


def _cls(names, table) -> WordClass:
    return WordClass(tuple(names), {(k if isinstance(k, tuple) else (k,)): list(v) for k, v in table.items()})


CLASSES: dict[str, WordClass] = {
    # reviews ("aspect" is local to a sentence; every other variable holds for the whole text)
    "product": _cls(["kind"], {k: [k] for k in PRODUCTS}),
    "be": _cls([], {(): ["is", "was"]}),
    "intens": _cls([], {(): ["", "really", "very", "quite"]}),
    "adj": _cls(["pol"], ADJECTIVES),
    "a_adj": _cls(["pol"], WITH_ARTICLE),
    "story_adj": _cls(["kind", "pol"], {(k, p): v for k in STORIES for p, v in STORY_ADJECTIVES.items()}),
    "end": _cls(["pol"], {"positive": [".", "!"], "negative": [".", "!"], "neutral": ["."]}),
    "negated": _cls(["pol"], NEGATED),
    "opinion": _cls(["pol"], OPINIONS),
    "recommend": _cls(["pol"], RECOMMEND),
    "overall": _cls(["pol"], OVERALL),
    "used": _cls(["kind"], USED),
    "used_when": _cls([], {(): USED_WHEN}),
    "aspect": _cls(["kind", "aspect"], {(k, a): [a] for k, asp in ASPECTS.items() for a in asp}),
    "does": _cls(["kind", "aspect", "pol"], {(k, a, p): v for k, asp in ASPECTS.items()
                                              for a, by in asp.items() for p, v in by.items()}),
    # facts
    "who": _cls(["gender", "who"], {(g, n): [n] for g, names in NAMES.items() for n in names}),
    "pron": _cls(["gender"], {g: [p[0]] for g, p in PRONOUNS.items()}),
    "poss": _cls(["gender"], {g: [p[1]] for g, p in PRONOUNS.items()}),
    "person": _cls(["gender"], PEOPLE),
    "job": _cls([], {(): JOBS}),
    "what": _cls(["event"], {e: [v[0]] for e, v in EVENTS.items()}),
    "place": _cls(["event"], {e: [v[2]] for e, v in EVENTS.items() if v[2]}),
    "where": _cls(["where"], {c: [c] for c in CITIES}),
    "home": _cls(["home"], {c: [c] for c in CITIES}),
    "when": _cls(["when"], {w: [w] for w in WHENS}),
    "weather": _cls([], {(): WEATHER}),
    "daypart": _cls([], {(): DAYPARTS}),
}
LOCAL = frozenset({"aspect"})  # variables that hold for one sentence only


@dataclass(frozen=True)
class Template:
    """One sentence form: ``text`` with ``{class}`` slots; ``group`` is its role in a document
    (see ``DOCUMENTS``); ``fixed`` binds variables up front (a detail of one event)."""
    name: str
    kind: str  # "review" or "fact"
    group: str
    text: str
    fixed: dict = field(default_factory=dict)

    @property
    def slots(self) -> tuple[str, ...]:
        return tuple(self.text.split())


def _templates() -> list[Template]:
    out = []

    def add(kind, group, text, **fixed):
        out.append(Template(f"{group}{len(out)}", kind, group, text, fixed))

    # review openers (O): the sentiment said plainly
    add("review", "O", "the {product} {be} {intens} {adj} {end}")
    add("review", "O", "the {product} {be} {intens} {adj} and the {aspect} {does} .")
    add("review", "O", "this is {a_adj} {product} {end}")
    add("review", "O", "i {opinion} this {product} {end}")
    add("review", "O", "the {product} {be} {story_adj} .")
    add("review", "O", "the {product} {be} {negated} {end}")
    # review follow-ups (F)
    add("review", "F", "the {aspect} {does} .")
    add("review", "F", "i would {recommend} .")
    add("review", "F", "overall , {overall} .")
    add("review", "F", "i {used} this {product} {used_when} .")
    # facts: the lead (L) and the sentences of the other shapes
    add("fact", "L", "{who} {what} in {where} {when} .")
    add("fact", "L", "{when} , {who} {what} in {where} .")
    add("fact", "B", "it was a {weather} {daypart} in {where} .")
    add("fact", "T", "{when} , {who} {what} there .")
    add("fact", "G", "{who} grew up in {home} .")
    add("fact", "G", "{who} is a {job} from {home} .")
    add("fact", "P", "{when} , {pron} {what} in {where} .")
    add("fact", "X", "{who} {what} {when} .")
    add("fact", "W", "the {place} is in {where} .")
    add("fact", "W", "it happened in {where} .")
    add("fact", "Y", "{who} {what} in {where} .")
    add("fact", "H", "it happened {when} .")
    add("fact", "H", "this was {when} .")
    add("fact", "A", "{person} {what} in {where} {when} .")
    add("fact", "N", "{poss} name is {who} .")
    for event, (_, _, _, details) in EVENTS.items():
        for d in details:
            add("fact", "D", d, event=event)
    for d in GENERIC_DETAILS:
        add("fact", "D", d)
    return out


TEMPLATES: list[Template] = _templates()
# document patterns over the templates' groups (regular expressions)
DOCUMENTS = {
    "review": r"OF{0,2}",
    "fact": r"LD{1,3}|BTD{0,2}|GPD{0,2}|XWD{0,2}|YHD{0,2}|AND{0,2}",
}
FACT_SHAPES = {"lead": "L", "background": "BT", "origin": "GP", "split-where": "XW", "split-when": "YH",
               "name-later": "AN"}
SHAPE_WEIGHTS = {"lead": 0.3, "background": 0.14, "origin": 0.14, "split-where": 0.14, "split-when": 0.14,
                 "name-later": 0.14}
CAPTION_WORDS = "a an review of short news paragraph about positive negative neutral new lost".split()


def _words() -> list[str]:
    words = set(CAPTION_WORDS)
    for cls in CLASSES.values():
        for phrases in cls.table.values():
            for p in phrases:
                words.update(p.split())
    for t in TEMPLATES:
        words.update(s for s in t.slots if not s.startswith("{"))
    for _, caption_noun, _, _ in EVENTS.values():
        words.update(caption_noun.split())
    return sorted(words)


VOCABULARY: tuple[str, ...] = tuple(_words())  # every word the generator writes, sorted

# --- generation ------------------------------------------------------------------------------


def _consistent(key: tuple, names: tuple, bound: dict) -> bool:
    return all(bound.get(n, v) == v for n, v in zip(names, key))


def fill(template: Template, bound: dict, rng: np.random.Generator) -> str:
    """``template`` with every slot filled consistently with ``bound`` (updated with what the
    sentence chose)."""
    bound.update(template.fixed)
    words = []
    for slot in template.slots:
        if not slot.startswith("{"):
            words.append(slot)
            continue
        cls = CLASSES[slot[1:-1]]
        keys = [k for k in cls.table if _consistent(k, cls.names, bound)]
        key = keys[rng.integers(len(keys))]
        bound.update(zip(cls.names, key))
        phrases = cls.table[key]
        words.append(phrases[rng.integers(len(phrases))])
    return " ".join(w for w in words if w)


def _pick(rng, items):
    return items[rng.integers(len(items))]


def _sentences(group: str, kind: str, bound: dict) -> list[Template]:
    return [t for t in TEMPLATES if t.kind == kind and t.group == group
            and all(bound.get(k, v) == v for k, v in t.fixed.items())]


def _fill_fresh(template: Template, bound: dict, rng) -> str:
    text = fill(template, bound, rng)
    for name in LOCAL:
        bound.pop(name, None)
    return text


def review(rng: np.random.Generator, drop: float = 0.25) -> dict:
    """One review record: 1-3 sentences about one product kind, with one sentiment."""
    kind, pol = _pick(rng, PRODUCTS), _pick(rng, SENTIMENTS)
    bound = {"kind": kind, "pol": pol}
    n = 1 + int(rng.integers(3))
    # the opener must be able to say this kind of thing (story adjectives: stories only)
    openers = [t for t in _sentences("O", "review", bound)
               if ("{story_adj}" not in t.text or kind in STORIES) and ("{negated}" not in t.text or pol in NEGATED)]
    sentences = [_fill_fresh(_pick(rng, openers), bound, rng)]
    follow = _sentences("F", "review", bound)
    while len(sentences) < n:
        s = _fill_fresh(_pick(rng, follow), bound, rng)
        if s not in sentences:
            sentences.append(s)
    said_pol = pol if rng.random() >= drop else None
    said_kind = kind if (said_pol is None or rng.random() >= drop) else None
    return {"kind": "review", "text": " ".join(sentences), "sentiment": pol, "product": kind,
            "caption": review_caption(said_pol, said_kind), "summary": None, "facts": None, "shape": None}


def review_caption(sentiment: str | None = None, product: str | None = None) -> str:
    """"a negative review of a phone"; either part may be left out ("a review of a film")."""
    head = f"a {sentiment} review" if sentiment else "a review"
    return head + (f" of {'an' if product[0] in 'aeiou' else 'a'} {product}" if product else "")


def fact_caption(event: str) -> str:
    """"a short news paragraph about a bakery"."""
    return f"a short news paragraph about {EVENTS[event][1]}"


def summary_of(facts: dict) -> str:
    """The one-sentence summary the facts determine: "maria opened a bakery in paris on monday ."."""
    return f"{facts['who']} {facts['what']} in {facts['where']} {facts['when']} ."


def fact(rng: np.random.Generator, shape: str | None = None) -> dict:
    """One factual paragraph (2-4 sentences) with its summary and facts."""
    gender = _pick(rng, list(NAMES))
    event = _pick(rng, list(EVENTS))
    where, home = (CITIES[i] for i in rng.choice(len(CITIES), 2, replace=False))
    bound = {"gender": gender, "who": _pick(rng, NAMES[gender]), "event": event, "where": where, "home": home,
             "when": _pick(rng, WHENS)}
    if shape is None:
        names = list(SHAPE_WEIGHTS)
        shape = names[rng.choice(len(names), p=np.array(list(SHAPE_WEIGHTS.values())))]
    sentences = []
    for group in FACT_SHAPES[shape]:
        options = [t for t in _sentences(group, "fact", bound) if "{place}" not in t.text or EVENTS[event][2]]
        sentences.append(_fill_fresh(_pick(rng, options), bound, rng))
    lo = 1 if shape == "lead" else 0
    details = _sentences("D", "fact", bound)
    for i in rng.permutation(len(details))[: lo + int(rng.integers(3))]:
        sentences.append(_fill_fresh(details[i], bound, rng))
    facts = {"who": bound["who"], "what": EVENTS[event][0], "where": where, "when": bound["when"]}
    return {"kind": "fact", "text": " ".join(sentences), "sentiment": None, "product": None,
            "caption": fact_caption(event), "summary": summary_of(facts), "facts": facts, "shape": shape,
            "event": event}


def example(rng: np.random.Generator, drop: float = 0.25, review_share: float = 0.5) -> dict:
    """One record, a review with probability ``review_share``, else a factual paragraph. Keys:
    kind, text, caption, sentiment + product (reviews), summary + facts + shape (facts)."""
    return review(rng, drop) if rng.random() < review_share else fact(rng)


HELDOUT_SHARE = 10  # one record in ten is held out
HELDOUT_SEED = 987_654


def split_of(record: dict) -> str:
    """"train" or "heldout": a stable hash of a review's text, or of a paragraph's facts."""
    key = record["text"] if record["kind"] == "review" else "|".join(record["facts"][k] for k in sorted(record["facts"]))
    return "heldout" if zlib.crc32(key.encode()) % HELDOUT_SHARE == 0 else "train"


def batch(n: int, seed: int, split: str | None = None, drop: float = 0.25, review_share: float = 0.5) -> list[dict]:
    """n records from one seed; ``split="train"`` / ``"heldout"`` keeps only that split's records."""
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        r = example(rng, drop, review_share)
        if split is None or split_of(r) == split:
            out.append(r)
    return out


def heldout(n: int = 500, review_share: float = 0.5) -> list[dict]:
    """The fixed held-out set: the first n held-out records of ``HELDOUT_SEED`` (full captions)."""
    return batch(n, HELDOUT_SEED, split="heldout", drop=0.0, review_share=review_share)


def tokens(text: str) -> list[str]:
    """Lowercase words with punctuation split off (the corpus's own texts are already so)."""
    return re.findall(r"[a-z0-9]+(?:[-'][a-z0-9]+)*|[^\sa-z0-9]", text.lower())


def sentences(text: str) -> list[str]:
    """The text cut after each "." / "!" / "?" (a trailing unterminated piece is kept)."""
    out, cur = [], []
    for tok in text.split():
        cur.append(tok)
        if tok in (".", "!", "?"):
            out.append(" ".join(cur))
            cur = []
    if cur:
        out.append(" ".join(cur))
    return out
