"""The token model's word scores, as the deliberate-metaphor rules read them.

`TokenScore` is one word; `WordScores` is one text's words as arrays, what the engine gives. The rules look at
most words only to rule a sentence out, so `seci batch` hands them arrays and a `TokenScore` is made only for
the words a rule or a row needs: one Python object per word of every item was most of the rules' time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(slots=True)
class TokenScore:
    """A word's metaphor probability from the token model, with character offsets into the item text."""

    text: str
    start: int
    end: int
    score: float


@dataclass
class WordScores:
    """One text's words in order: character spans into `text` and scores (compared in float64, as the Python
    floats of a `TokenScore` are: float32 comparisons would round the thresholds)."""

    text: str
    starts: np.ndarray
    ends: np.ndarray
    scores: np.ndarray

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64)
        if len(self.starts) > 1 and np.any(np.diff(self.starts) < 0):
            order = np.argsort(self.starts, kind="stable")
            self.starts, self.ends, self.scores = self.starts[order], self.ends[order], self.scores[order]

    def within(self, start: int, end: int) -> np.ndarray:
        """Indices of the words inside the character range [start, end)."""
        lo, hi = np.searchsorted(self.starts, [start, end], side="left")
        index = np.arange(lo, hi)
        return index[self.ends[index] <= end]

    def at_least(self, value: float, index: np.ndarray | None = None) -> np.ndarray:
        """Indices (of all words, or of `index`) whose score is at least `value`."""
        if index is None:
            return np.flatnonzero(self.scores >= value)
        return index[self.scores[index] >= value]

    def all_tokens(self) -> list[TokenScore]:
        return self.tokens(np.arange(len(self.starts)))

    def tokens(self, index: np.ndarray, shift: int = 0) -> list[TokenScore]:
        """The words at `index` as `TokenScore`s, their offsets moved back by `shift` (a sentence's start)."""
        return [
            TokenScore(self.text[s:e], s - shift, e - shift, score)
            for s, e, score in zip(
                self.starts[index].tolist(), self.ends[index].tolist(), self.scores[index].tolist(), strict=True
            )
        ]
