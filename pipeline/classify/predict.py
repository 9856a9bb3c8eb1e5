"""From engine predictions to the metaphor fields of a result row."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.classify.engine import Prediction
from pipeline.classify.metaphor import DeliberateMetaphorDetector, MetaphorResult, TokenScore


def token_scores(text: str, prediction: Prediction) -> list[TokenScore]:
    """The model's word-level metaphor probabilities as character spans of `text`."""
    words = prediction.words
    return [
        TokenScore(text[s:e], int(s), int(e), float(p))
        for s, e, p in zip(words.starts, words.ends, prediction.word_scores, strict=True)
    ]


def deliberate_metaphors(
    texts: Sequence[str],
    predictions: Sequence[Prediction],
    token_threshold: float,
    detector: DeliberateMetaphorDetector | None = None,
) -> list[MetaphorResult]:
    """Item-level deliberate metaphor or analogy, from patterns plus the token scores."""
    detector = detector or DeliberateMetaphorDetector({"token_threshold": token_threshold})
    scores = [token_scores(t, p) for t, p in zip(texts, predictions, strict=True)]
    return detector.detect_many(list(texts), scores)
