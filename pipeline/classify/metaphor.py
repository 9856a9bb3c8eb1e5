"""Item-level detection of deliberate metaphors and analogies (labelling guide, section 3).

The neural token model gives MIPVU-style word scores, which count conventional metaphors ("high prices", "in the
meeting"). An item is positive only when it uses a metaphor, simile or analogy *on purpose*. This module finds
candidate spans with rules over a spaCy parse and scores each one:

- explicit comparisons: "like a N" (a simile, not "I'd like a coffee" nor "tools like pandas and numpy"),
  "as ADJ as a N", "as if / as though", "think of X as Y", "akin / analogous to", "the equivalent of a N",
  "a kind of N for Z";
- "a N of a N" ("a stress ball of a remote");
- copular metaphors ("our release process is a relay race"), which no surface pattern can tell from "our release
  process is a manual checklist": they rely on the token model's score for the attribute noun and on the lexicon;
- strong token-level metaphors in a content word whose lemma is not conventional.

A span's score is its pattern's prior moved by the token model's evidence; the item is positive when a span scores
at least `threshold`. Idioms and spans that only mention metaphor as a topic are dropped. With no token scores,
only the explicit patterns can fire.
"""

from __future__ import annotations

import json
import logging
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pipeline.classify.metaphor_words import (
    CONTENT_POS,
    CONTENT_STOP_WORDS,
    DEFAULT_CONFIG,
    DEFAULT_LEXICON,
    EPITHET_WEIGHT,
    EVIDENTIAL_VERBS,
    GATE,
    GENERIC_NOUNS,
    IDIOMS,
    INDEFINITE,
    LEFT_MODIFIERS,
    MAX_CLAUSE_TOKENS,
    MAX_LEXICON_BYTES,
    MAX_VEHICLE_TOKENS,
    MODALS,
    NOMINAL_POS,
    RELATIONAL_NOUNS,
    SENTENCE_END,
    SIGNALS,
    THINK_VERBS,
    TOPIC_LEMMAS,
)
from pipeline.classify.word_scores import TokenScore, WordScores

log = logging.getLogger(__name__)


@dataclass
class Span:
    """A deliberate metaphor or analogy: its words, character offsets, score and the rule that found it."""

    text: str
    start: int
    end: int
    score: float
    rule: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The `metaphor_spans` entry of INTERFACE.md."""
        return {"text": self.text, "start": self.start, "end": self.end, "score": round(self.score, 4)}


@dataclass
class MetaphorResult:
    """`metaphor` and `spans` (at or above the threshold), `tokens` (word scores at or above `token_threshold`).

    `score` is the best candidate span's score, also when below the threshold, so a threshold can be tuned;
    `candidates` are all spans that survived the idiom and topic filters, whatever their score.
    """

    metaphor: bool
    spans: list[Span]
    tokens: list[TokenScore]
    score: float = 0.0
    candidates: list[Span] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The `metaphor`, `metaphor_spans` and `metaphor_tokens` fields of INTERFACE.md."""
        return {
            "metaphor": self.metaphor,
            "metaphor_spans": [span.to_dict() for span in self.spans],
            "metaphor_tokens": [
                {"text": t.text, "start": t.start, "end": t.end, "score": round(t.score, 4)} for t in self.tokens
            ],
        }


@dataclass
class _Lexicon:
    entries: dict[str, tuple[int, float]]

    def rate(self, lemma: str) -> float | None:
        entry = self.entries.get(lemma)
        return entry[1] if entry else None


def load_lexicon(path: str | Path = DEFAULT_LEXICON) -> dict[str, tuple[int, float]]:
    """Read the conventionality lexicon written by `scripts/build_conventionality.py`: lemma -> (count, rate)."""
    path = Path(path)
    if path.stat().st_size > MAX_LEXICON_BYTES:
        raise ValueError(f"{path}: larger than {MAX_LEXICON_BYTES} bytes, not a metaphor lexicon")
    data = json.loads(path.read_text(encoding="utf-8"))
    lemmas = data.get("lemmas") if isinstance(data, dict) else None
    if not isinstance(lemmas, dict):
        raise ValueError(f"{path}: no 'lemmas' object")
    entries: dict[str, tuple[int, float]] = {}
    for lemma, entry in lemmas.items():
        if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(x, int | float) for x in entry)):
            raise ValueError(f"{path}: bad entry for {lemma!r}: {entry!r}")
        entries[str(lemma)] = (int(entry[0]), float(entry[1]))
    return entries


def tune_threshold(results: Sequence[MetaphorResult], gold: Sequence[bool]) -> float:
    """The item threshold with the best F1 on labelled dev items (the highest one among ties).

    Candidates are the items' best span scores; with no positive gold item or no candidate span, the default
    threshold is returned.
    """
    if len(results) != len(gold):
        raise ValueError(f"{len(results)} results but {len(gold)} gold labels")
    positives = sum(bool(label) for label in gold)
    candidates = sorted({result.score for result in results if result.score > 0}, reverse=True)
    best_f1, best = -1.0, float(DEFAULT_CONFIG["threshold"])
    if positives == 0:
        return best
    for threshold in candidates:
        tp = sum(1 for result, label in zip(results, gold, strict=True) if label and result.score >= threshold)
        predicted = sum(1 for result in results if result.score >= threshold)
        f1 = 2 * tp / (predicted + positives)
        if f1 > best_f1 + 1e-12:
            best_f1, best = f1, threshold
    return best


class DeliberateMetaphorDetector:
    """Finds deliberate metaphors and analogies in item texts; see the module docstring for the rules.

    `config` overrides keys of `DEFAULT_CONFIG`. The spaCy pipeline (tagger, parser, lemmatizer; no NER) loads on
    first use, or pass a loaded `nlp`. `lexicon` is a lexicon path or a lemma -> (count, rate) mapping.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        lexicon: str | Path | Mapping[str, tuple[int, float]] | None = None,
        nlp: Any = None,
    ) -> None:
        unknown = set(config or {}) - set(DEFAULT_CONFIG)
        if unknown:
            raise ValueError(f"unknown metaphor detector settings: {sorted(unknown)}")
        self.config: dict[str, Any] = {**DEFAULT_CONFIG, **(config or {})}
        if isinstance(lexicon, Mapping):
            entries = {str(k): (int(v[0]), float(v[1])) for k, v in lexicon.items()}
        else:
            path = Path(lexicon) if lexicon is not None else DEFAULT_LEXICON
            if path.exists():
                entries = load_lexicon(path)
            elif lexicon is None:
                log.warning("no metaphor lexicon at %s: only the built-in conventional list is used", path)
                entries = {}
            else:
                raise FileNotFoundError(path)
        self.lexicon = _Lexicon(entries)
        self._extra_conventional = frozenset(self.config["extra_conventional"])
        self._nlp = nlp
        self._matchers: tuple[Any, Any, Any] | None = None

    # --- set-up -----------------------------------------------------------------------------------------------------

    @property
    def nlp(self) -> Any:
        """The spaCy pipeline, loaded once on first use."""
        if self._nlp is None:
            import spacy

            self._nlp = spacy.load(self.config["spacy_model"], exclude=["ner"])  # unused: not even loaded
            log.info("loaded spaCy %s for metaphor rules", self.config["spacy_model"])
        return self._nlp

    def _phrase_matchers(self) -> tuple[Any, Any, Any]:
        if self._matchers is None:
            from spacy.matcher import PhraseMatcher

            nlp = self.nlp
            # Surface forms catch the listed wording; lemmas catch inflections ("cans of worms", "touching base").
            by_lower = PhraseMatcher(nlp.vocab, attr="LOWER")
            by_lemma = PhraseMatcher(nlp.vocab, attr="LEMMA")
            by_lower.add("IDIOM", [nlp.make_doc(idiom) for idiom in IDIOMS])
            by_lemma.add("IDIOM", list(nlp.pipe(IDIOMS)))
            signals = PhraseMatcher(nlp.vocab, attr="LOWER")
            signals.add("SIGNAL", [nlp.make_doc(signal) for signal in SIGNALS])
            self._matchers = (by_lower, by_lemma, signals)
        return self._matchers

    # --- lexicon ----------------------------------------------------------------------------------------------------

    def is_conventional(self, lemma: str) -> bool:
        """Whether a lemma is a conventional metaphor: frequent and mostly metaphorical in VUA train, or listed."""
        lemma = lemma.lower()
        if lemma in self._extra_conventional:
            return True
        entry = self.lexicon.entries.get(lemma)
        return bool(
            entry
            and entry[0] >= self.config["conventional_min_count"]
            and entry[1] >= self.config["conventional_min_rate"]
        )

    def _is_literal(self, lemma: str) -> bool:
        entry = self.lexicon.entries.get(lemma.lower())
        return bool(
            entry and entry[0] >= self.config["literal_min_count"] and entry[1] <= self.config["literal_max_rate"]
        )

    # --- public API -------------------------------------------------------------------------------------------------

    def detect(self, text: str, token_scores: Sequence[TokenScore] | None = None) -> MetaphorResult:
        """Detect deliberate metaphors in one item text; `token_scores` are the token model's word scores."""
        return self.detect_many([text], [token_scores])[0]

    def detect_many(
        self, texts: Sequence[str], token_scores_list: Sequence[Sequence[TokenScore] | None] | None = None
    ) -> list[MetaphorResult]:
        """`detect` over many texts, parsed in batches with `nlp.pipe`."""
        if token_scores_list is None:
            token_scores_list = [None] * len(texts)
        if len(token_scores_list) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(token_scores_list)} token score lists")
        cut = self._cut(texts)
        self._phrase_matchers()  # built outside the memory zone: the idiom patterns must outlive it
        # Every string a parse adds to spaCy's vocabulary is freed when the zone closes, so memory stays flat over
        # an archive of millions of items; nothing that refers to a Doc leaves the zone.
        with self.nlp.memory_zone():
            return self._detect_texts(cut, token_scores_list)

    def detect_settings(
        self,
        texts: Sequence[str],
        token_scores_list: Sequence[Sequence[TokenScore] | None],
        settings: Sequence[Mapping[str, Any]],
    ) -> list[list[MetaphorResult]]:
        """`detect_many` under several settings (overrides of this detector's config), each text parsed once.

        For tuning, which compares settings on the same items: every sentence is parsed (no gate), and the parse,
        the cost, is shared. Returns one result list per setting.
        """
        if len(token_scores_list) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(token_scores_list)} token score lists")
        matchers = self._phrase_matchers()
        variants = []
        for overrides in settings:
            variant = DeliberateMetaphorDetector({**self.config, **overrides}, self.lexicon.entries, self.nlp)
            variant._matchers = matchers
            variants.append(variant)
        results: list[list[MetaphorResult]] = [[] for _ in variants]
        with self.nlp.memory_zone():
            docs = self.nlp.pipe(self._cut(texts), batch_size=int(self.config["batch_size"]))
            for doc, scores in zip(docs, token_scores_list, strict=True):
                for out, variant in zip(results, variants, strict=True):
                    out.append(variant._detect_doc(doc, scores))
        return results

    def _cut(self, texts: Sequence[str]) -> list[str]:
        max_chars = int(self.config["max_chars"])
        for text in texts:
            if len(text) > max_chars:
                log.warning("metaphor rules see only the first %d of %d characters", max_chars, len(text))
        return [text[:max_chars] for text in texts]

    def _detect_texts(
        self, cut: list[str], token_scores_list: Sequence[Sequence[TokenScore] | None]
    ) -> list[MetaphorResult]:
        batch_size = int(self.config["batch_size"])
        if not self.config["prefilter"]:
            token_scores_list = [s.all_tokens() if isinstance(s, WordScores) else s for s in token_scores_list]
            docs = self.nlp.pipe(cut, batch_size=batch_size)
            return [self._detect_doc(doc, scores) for doc, scores in zip(docs, token_scores_list, strict=True)]

        jobs: list[tuple[int, int, list[TokenScore] | None]] = []  # (item, offset of the sentence, its scores)
        sentences: list[str] = []
        for i, (text, scores) in enumerate(zip(cut, token_scores_list, strict=True)):
            if isinstance(scores, WordScores):
                for start, end in _sentences(text):
                    inside = scores.within(start, end)
                    # Only words at or above the gate's floor can let a sentence through: the rest stay arrays.
                    if self._could_fire(text[start:end], scores.tokens(scores.at_least(self._gate_floor(), inside))):
                        jobs.append((i, start, scores.tokens(inside, shift=start)))
                        sentences.append(text[start:end])
                continue
            ordered = sorted(scores, key=lambda t: t.start) if scores is not None else None
            starts = [t.start for t in ordered] if ordered is not None else None
            for start, end in _sentences(text):
                inside = None
                if ordered is not None:
                    lo, hi = bisect_left(starts, start), bisect_left(starts, end)
                    inside = [t for t in ordered[lo:hi] if t.end <= end]
                if self._could_fire(text[start:end], inside):
                    shifted = None
                    if inside is not None:
                        shifted = [TokenScore(t.text, t.start - start, t.end - start, t.score) for t in inside]
                    jobs.append((i, start, shifted))
                    sentences.append(text[start:end])
        found: list[list[Span]] = [[] for _ in cut]
        for (i, offset, scores), doc in zip(jobs, self.nlp.pipe(sentences, batch_size=batch_size), strict=True):
            for span in self._detect_doc(doc, scores).candidates:
                found[i].append(Span(span.text, span.start + offset, span.end + offset, span.score, span.rule))
        results = []
        for spans, scores in zip(found, token_scores_list, strict=True):
            kept = [span for span in spans if span.score >= self.config["threshold"]]
            if isinstance(scores, WordScores):
                reported = scores.tokens(scores.at_least(self.config["token_threshold"]))
            else:
                reported = [t for t in (scores or []) if t.score >= self.config["token_threshold"]]
            # `score` and `candidates` cover the parsed sentences only: below the threshold they are lower bounds.
            best = max((span.score for span in spans), default=0.0)
            results.append(MetaphorResult(bool(kept), kept, reported, score=best, candidates=spans))
        return results

    def _gate_floor(self) -> float:
        """No word scoring below this changes `_could_fire`: a word lifts a rule only above 0.5, and alone fires
        only at or above the strong-token threshold (or the lowest `needed`, if higher)."""
        needed = self.config["threshold"] - self.config["signal_bonus"]
        return min(0.5, max(self.config["strong_token_threshold"], needed))

    def _could_fire(self, sentence: str, scores: Sequence[TokenScore] | None) -> bool:
        """Whether any rule could give a span at or above `threshold` in this sentence (an upper bound)."""
        lower = sentence.lower()
        bonus = self.config["signal_bonus"] if any(signal in lower for signal in SIGNALS) else 0.0
        needed = self.config["threshold"] - bonus
        # The evidence of every rule is the highest score among its content words; stop words ("in", "on",
        # the most metaphorical words in VUA) are never a vehicle, an attribute or a strong token. The implicit
        # rules also pass over conventional metaphors ("high" in "a high priority"), looked up by surface form.
        stop_words = _stop_words()
        top = fresh = None
        for token in scores or ():
            word = token.text.lower()
            if word in stop_words:
                continue
            top = token.score if top is None else max(top, token.score)
            if not self.is_conventional(word):
                fresh = token.score if fresh is None else max(fresh, token.score)
        lift = max(top - 0.5, 0.0) if top is not None else 0.0
        fresh_lift = max(fresh - 0.5, 0.0) if fresh is not None else 0.0
        lifts = {
            "explicit": self.config["explicit_weight_up"] * lift,
            "epithet": EPITHET_WEIGHT * fresh_lift,
            # -1: with the copular rule off, its cues can never lift a sentence to the threshold
            "implicit": self.config["implicit_weight"] * fresh_lift if self.config["copular"] else -1.0,
        }
        if any(prior + lifts[kind] >= needed and cue.search(lower) for cue, prior, kind in GATE):
            return True
        return top is not None and top >= max(self.config["strong_token_threshold"], needed)

    # --- rules ------------------------------------------------------------------------------------------------------

    def _detect_doc(self, doc: Any, token_scores: Sequence[TokenScore] | None) -> MetaphorResult:
        scores = _align(doc, token_scores) if token_scores is not None else None
        reported = [token for token in (token_scores or []) if token.score >= self.config["token_threshold"]]
        candidates = list(self._candidates(doc, scores))
        candidates = self._filter(doc, candidates)
        best = max((span.score for span in candidates), default=0.0)
        threshold = self.config["threshold"]
        spans = [span for span in candidates if span.score >= threshold]
        return MetaphorResult(metaphor=bool(spans), spans=spans, tokens=reported, score=best, candidates=candidates)

    def _candidates(self, doc: Any, scores: list[float | None] | None) -> Iterable[Span]:
        copular = self.config["copular"]
        for token in doc:
            lower = token.lower_
            if lower == "like":
                yield from self._like(token, scores)
            elif lower == "as":
                yield from self._as(token, scores)
            elif lower in ("akin", "analogous"):
                yield from self._to_comparison(token, scores)
            elif lower == "equivalent":
                yield from self._of_vehicle(token, scores, "equivalent", 0.6, 0.35)
            elif token.lemma_.lower() in ("kind", "sort") and token.pos_ == "NOUN":
                yield from self._kind_of_for(token, scores)
            if copular and token.dep_ == "attr" and token.pos_ == "NOUN" and token.head.lemma_ == "be":
                yield from self._copular(token, scores)
            if token.pos_ == "NOUN" and _determiner(token) in INDEFINITE:
                yield from self._of_epithet(token, scores)
        if scores is not None:
            yield from self._strong_tokens(doc, scores)

    def _like(self, like: Any, scores: list[float | None] | None) -> Iterable[Span]:
        # "like" as a preposition only: the verb ("I'd like a coffee", "I like a challenge") is tagged VB/VBP.
        if like.tag_ != "IN" or like.dep_ == "ROOT":
            return
        previous = like.nbor(-1) if like.i > 0 else None
        if previous is not None and (previous.lower_ in MODALS or previous.dep_ == "nsubj"):
            return
        vehicle = _pobj(like)
        if vehicle is None or vehicle.lemma_.lower() in GENERIC_NOUNS:
            return
        det = _determiner(vehicle)
        head = like.head
        if any(child.dep_ == "conj" for child in vehicle.children):
            prior = 0.15  # "tools like pandas and numpy": examples of a class, not a comparison
        elif head.pos_ in NOMINAL_POS:
            prior = 0.55 if det in INDEFINITE else 0.2
        elif head.pos_ == "PRON":
            prior = 0.3  # "something like a proxy" approximates
        else:
            prior = 0.6 if det in INDEFINITE else 0.45 if det else 0.4
        if head.lemma_.lower() in EVIDENTIAL_VERBS:
            prior -= 0.15  # "looks like a bug" reports evidence more often than it compares
        yield self._explicit_span(vehicle, prior, scores, "like")

    def _as(self, as_: Any, scores: list[float | None] | None) -> Iterable[Span]:
        doc = as_.doc
        after = doc[as_.i + 1] if as_.i + 1 < len(doc) else None
        if after is not None and after.lower_ in ("if", "though"):
            yield from self._as_if(as_, after, scores)
            return
        vehicle = _pobj(as_)
        if vehicle is None or vehicle.lemma_.lower() in GENERIC_NOUNS or _determiner(vehicle) not in INDEFINITE:
            return
        # "as quiet as a mouse": the first "as" then an adjective sit right before this one.
        if as_.i >= 2 and doc[as_.i - 2].lower_ == "as" and doc[as_.i - 1].pos_ in ("ADJ", "ADV"):
            if doc[as_.i - 1].lower_ not in ("many", "much", "soon", "long", "far", "well", "good"):
                yield self._explicit_span(vehicle, 0.6, scores, "as-adj-as")
            return
        # "think of the cache as a pantry", "imagine the queue as a ...": a framing verb shortly before.
        start = max(as_.sent.start, as_.i - 8)
        for verb in doc[start : as_.i]:
            prior = THINK_VERBS.get(verb.lemma_.lower())
            if prior is None or verb.pos_ != "VERB":
                continue
            if verb.lemma_.lower() == "think" and not any(t.lower_ == "of" for t in doc[verb.i + 1 : as_.i]):
                continue
            yield self._explicit_span(vehicle, prior, scores, "think-of-as")
            return

    def _as_if(self, as_: Any, conj: Any, scores: list[float | None] | None) -> Iterable[Span]:
        clause = conj.head
        if clause.i <= conj.i:
            return
        end = min(clause.right_edge.i + 1, as_.i + MAX_CLAUSE_TOKENS, as_.sent.end)
        while end > clause.i + 1 and as_.doc[end - 1].is_punct:
            end -= 1
        prior = 0.35 if clause.head.lemma_.lower() in EVIDENTIAL_VERBS else 0.55
        words = [t for t in as_.doc[conj.i + 1 : end] if t.pos_ in CONTENT_POS]
        evidence = _evidence(words, scores)
        yield _make_span(as_.doc, as_.i, end, self._explicit_score(prior, evidence), "as-if")

    def _to_comparison(self, word: Any, scores: list[float | None] | None) -> Iterable[Span]:
        for prep in word.children:
            if prep.dep_ == "prep" and prep.lower_ == "to":
                vehicle = _pobj(prep)
                if vehicle is not None and vehicle.lemma_.lower() not in GENERIC_NOUNS:
                    yield self._explicit_span(vehicle, 0.6, scores, word.lower_)

    def _of_vehicle(
        self, word: Any, scores: list[float | None] | None, rule: str, indefinite: float, other: float
    ) -> Iterable[Span]:
        for prep in word.children:
            if prep.dep_ == "prep" and prep.lower_ == "of":
                vehicle = _pobj(prep)
                if vehicle is not None and vehicle.lemma_.lower() not in GENERIC_NOUNS:
                    prior = indefinite if _determiner(vehicle) in INDEFINITE else other
                    yield self._explicit_span(vehicle, prior, scores, rule)

    def _kind_of_for(self, kind: Any, scores: list[float | None] | None) -> Iterable[Span]:
        # "a kind of passport for packages": the "for" names the target domain the vehicle is mapped onto.
        for prep in kind.children:
            if prep.dep_ != "prep" or prep.lower_ != "of":
                continue
            vehicle = _pobj(prep)
            if vehicle is None or vehicle.lemma_.lower() in GENERIC_NOUNS:
                continue
            window = kind.doc[vehicle.i + 1 : min(vehicle.i + 5, kind.sent.end)]
            if any(t.lower_ == "for" for t in window):
                yield self._explicit_span(vehicle, 0.6, scores, "kind-of-for")

    def _copular(self, attr: Any, scores: list[float | None] | None) -> Iterable[Span]:
        lemma = attr.lemma_.lower()
        if lemma in GENERIC_NOUNS or lemma in TOPIC_LEMMAS or self.is_conventional(lemma):
            return
        subjects = [child for child in attr.head.children if child.dep_ in ("nsubj", "nsubjpass")]
        if not subjects or subjects[0].lemma_.lower() == lemma:
            return
        # "X is the Y of Z" is the analogy form; a bare "X is a Y" is more often a literal classification.
        of_phrase = any(c.dep_ == "prep" and c.lower_ == "of" for c in attr.children) and _determiner(attr) == "the"
        prior = 0.4 if of_phrase else 0.3
        if self._is_literal(lemma):
            prior -= self.config["literal_penalty"]
        start, end = _vehicle_bounds(attr, with_pp=False)
        # Only fresh words count: "a high priority" is no metaphor for its conventionally metaphorical "high".
        words = [
            t for t in attr.doc[start:end] if t.pos_ in NOMINAL_POS | {"ADJ"} and not self.is_conventional(t.lemma_)
        ]
        evidence = _evidence(words, scores)
        yield _make_span(attr.doc, start, end, self._implicit_score(prior, evidence), "copular")

    def _of_epithet(self, noun: Any, scores: list[float | None] | None) -> Iterable[Span]:
        lemma = noun.lemma_.lower()
        if lemma in RELATIONAL_NOUNS or lemma in TOPIC_LEMMAS or self.is_conventional(lemma):
            return
        for prep in noun.children:
            if prep.dep_ == "prep" and prep.lower_ == "of":
                tenor = _pobj(prep)
                if tenor is not None and _determiner(tenor) in INDEFINITE:
                    start, end = _vehicle_bounds(noun, with_pp=False)
                    words = [
                        t for t in noun.doc[start:end] if t.pos_ in NOMINAL_POS and not self.is_conventional(t.lemma_)
                    ]
                    evidence = _evidence(words, scores)
                    prior = 0.55 - (self.config["literal_penalty"] if self._is_literal(lemma) else 0.0)
                    score = _clip(prior + EPITHET_WEIGHT * (evidence - 0.5)) if evidence is not None else prior
                    yield _make_span(noun.doc, start, end, score, "n-of-a-n")

    def _strong_tokens(self, doc: Any, scores: list[float | None]) -> Iterable[Span]:
        strong = self.config["strong_token_threshold"]
        run: list[tuple[int, float]] = []
        for token, score in zip(doc, scores, strict=True):
            lemma = token.lemma_.lower()
            keep = (
                score is not None
                and score >= strong
                and token.pos_ in CONTENT_POS
                and not token.is_stop
                and lemma not in TOPIC_LEMMAS
                and not self.is_conventional(lemma)
            )
            if keep:
                # A lemma that VUA often reads as metaphorical is less likely to be a fresh, deliberate one.
                rate = self.lexicon.rate(lemma) or 0.0
                run.append((token.i, score * (1 - 0.5 * rate)))
                continue
            if run and not token.is_space:
                yield _make_span(doc, run[0][0], run[-1][0] + 1, max(s for _, s in run), "strong-token")
                run = []
        if run:
            yield _make_span(doc, run[0][0], run[-1][0] + 1, max(s for _, s in run), "strong-token")

    # --- scoring and filtering --------------------------------------------------------------------------------------

    def _explicit_score(self, prior: float, evidence: float | None) -> float:
        if evidence is None:
            return _clip(prior)
        weight = self.config["explicit_weight_up"] if evidence >= 0.5 else self.config["explicit_weight_down"]
        return _clip(prior + weight * (evidence - 0.5))

    def _implicit_score(self, prior: float, evidence: float | None) -> float:
        return _clip(prior + self.config["implicit_weight"] * (evidence - 0.5)) if evidence is not None else prior

    def _explicit_span(self, vehicle: Any, prior: float, scores: list[float | None] | None, rule: str) -> Span:
        start, end = _vehicle_bounds(vehicle, with_pp=True)
        evidence = _evidence([t for t in vehicle.doc[start:end] if t.pos_ in CONTENT_POS | {"PROPN"}], scores)
        return _make_span(vehicle.doc, start, end, self._explicit_score(prior, evidence), rule)

    def _filter(self, doc: Any, candidates: list[Span]) -> list[Span]:
        by_lower, by_lemma, signals = self._phrase_matchers()
        idioms = [(doc[s:e].start_char, doc[s:e].end_char) for _, s, e in by_lower(doc) + by_lemma(doc)]
        signalled = {doc[s].sent.start for _, s, _ in signals(doc)}
        kept: list[Span] = []
        for span in sorted(candidates, key=lambda s: (-s.score, s.start)):
            if any(span.start < end and start < span.end for start, end in idioms):
                continue
            words = doc.char_span(span.start, span.end, alignment_mode="expand")
            if words is not None and any(t.lemma_.lower() in TOPIC_LEMMAS for t in words):
                continue
            overlapping = [k for k in kept if span.start < k.end and k.start < span.end]
            if overlapping:
                # A better-scored word inside a weaker pattern's phrase ("race" in "relay race") reports the phrase.
                if len(overlapping) == 1 and span.start <= overlapping[0].start and overlapping[0].end <= span.end:
                    overlapping[0].text, overlapping[0].start, overlapping[0].end = span.text, span.start, span.end
                continue
            if words is not None and words.sent.start in signalled:
                span.score = _clip(span.score + self.config["signal_bonus"])
            kept.append(span)
        return sorted(kept, key=lambda s: s.start)


# --- helpers --------------------------------------------------------------------------------------------------------


@cache
def _stop_words() -> frozenset[str]:
    """spaCy's stop words less those that can head or modify a vehicle ("a full lexicon", "the top of")."""
    from spacy.lang.en.stop_words import STOP_WORDS  # spaCy loads lazily: `seci score` starts fast

    return frozenset(STOP_WORDS) - CONTENT_STOP_WORDS


def _sentences(text: str) -> Iterable[tuple[int, int]]:
    """Character ranges of the text's sentences, roughly: the gate's unit, not a linguistic claim."""
    start = 0
    for match in SENTENCE_END.finditer(text):
        if match.start() > start:
            yield start, match.start()
        start = match.end()
    if start < len(text):
        yield start, len(text)


def _clip(value: float) -> float:
    return max(0.0, min(1.0, value))


def _determiner(noun: Any) -> str | None:
    for child in noun.children:
        if child.dep_ in ("det", "poss") and child.i < noun.i:
            return child.lower_
    return None


def _pobj(prep: Any) -> Any:
    for child in prep.children:
        if child.dep_ == "pobj" and child.pos_ in NOMINAL_POS | {"ADJ"}:
            return child
    return None


def _vehicle_bounds(head: Any, *, with_pp: bool) -> tuple[int, int]:
    """Token range of a vehicle noun phrase: the head and its modifiers, without the article.

    The range extends right over appositive nouns ("a web browser back button" parses as "browser" + "button") and,
    with `with_pp`, over one "for"/"of" phrase ("a remote control for grown-ups").
    """
    doc = head.doc
    subtree = {t.i for t in head.subtree}
    # Walk left over the noun's own modifiers only; its subtree can also hold "for example" or a fronted phrase.
    start = head.i
    while start - 1 in subtree and (doc[start - 1].dep_ in LEFT_MODIFIERS or doc[start - 1].tag_ == "HYPH"):
        start -= 1
    end = head.i + 1
    limit = min(head.i + MAX_VEHICLE_TOKENS, head.sent.end)
    while end < limit and end in subtree:
        token = doc[end]
        nominal = token.pos_ in ("NOUN", "PROPN", "ADJ", "NUM") or token.dep_ in ("compound", "amod", "appos")
        if nominal or (token.tag_ == "HYPH" and end + 1 < limit and end + 1 in subtree):
            end += 1
            continue
        if with_pp and token.dep_ == "prep" and token.lower_ in ("for", "of") and token.head.i in subtree:
            pp_end = min(token.right_edge.i + 1, limit)
            end = pp_end if pp_end > end + 1 else end
            break
        if token.pos_ == "ADV" and token.head.i in subtree and token.head.i > token.i:
            end += 1  # "back" in "back button"
            continue
        break
    while end > start + 1 and doc[end - 1].is_punct:
        end -= 1
    return start, end


def _make_span(doc: Any, start: int, end: int, score: float, rule: str) -> Span:
    words = doc[start:end]
    return Span(text=words.text, start=words.start_char, end=words.end_char, score=score, rule=rule)


def _align(doc: Any, token_scores: Sequence[TokenScore]) -> list[float | None]:
    """Per spaCy token, the highest score of the token model's words that overlap it (offsets may differ)."""
    aligned: list[float | None] = [None] * len(doc)
    length = len(doc.text)
    for word in token_scores:
        if not (0 <= word.start < word.end <= length):
            log.debug("token score %r outside the text; ignored", word)
            continue
        span = doc.char_span(word.start, word.end, alignment_mode="expand")
        if span is None:
            continue
        for token in span:
            current = aligned[token.i]
            aligned[token.i] = word.score if current is None else max(current, word.score)
    return aligned


def _evidence(tokens: Iterable[Any], scores: list[float | None] | None) -> float | None:
    if scores is None:
        return None
    values = [scores[t.i] for t in tokens if scores[t.i] is not None]
    return max(values) if values else None
