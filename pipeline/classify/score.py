"""`seci score`: one file (or one text) in, its SECI mode and deliberate metaphors out, as data.

The file is cut into items as `seci batch` would cut it; the whole input's probabilities are the items'
probabilities weighted by their length in tokens, and its metaphor spans are the items' spans, each
tagged with the item it comes from (offsets stay relative to that item's text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify.rows import Scorer
from pipeline.items import Item

STDIN_ID = "stdin"
MAX_STDIN_CHARS = 16 * 1024 * 1024


class ScoreError(ValueError):
    """The input could not be scored (unreadable, empty, unsupported); `reason` is a short code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class ScoreResult:
    """The object `seci score --json` prints (INTERFACE.md)."""

    mode: str
    probabilities: dict[str, float]
    metaphor: bool | None
    metaphor_spans: list[dict[str, Any]]
    items: list[dict[str, Any]]
    model: str
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "probabilities": self.probabilities,
            "metaphor": self.metaphor,
            "metaphor_spans": self.metaphor_spans,
            "model": self.model,
            "warnings": self.warnings,
            "items": self.items,
        }


def text_item(text: str, item_id: str = STDIN_ID) -> Item:
    """One text as one item (what `seci score -` reads)."""
    return Item(id=item_id, text=text, source="other", path="-")


def read_items(path: Path) -> tuple[list[Item], list[str]]:
    """The items of one input file or folder, and the errors met reading it (as `seci batch` would)."""
    from pipeline.ingest import ingest
    from pipeline.items import InputError

    items: list[Item] = []
    errors: list[str] = []
    for record in ingest([path]):
        if isinstance(record, InputError):
            errors.append(f"{record.path}: {record.error} ({record.reason})")
        else:
            items.append(record)
    if not items:
        reason = "unreadable" if errors else "empty"
        raise ScoreError(reason, "; ".join(errors) if errors else f"{path}: no text found")
    return items, errors


def score_items(items: list[Item], scorer: Scorer) -> ScoreResult:
    """Score items and combine them into one result for the whole input."""
    if not items:
        raise ScoreError("empty", "nothing to score")
    predictions = scorer.engine.predict([item.text for item in items])
    rows, errors = scorer.rows(items, predictions)
    weights = np.array([max(p.n_tokens, 1) for p in predictions], dtype=np.float64)
    probs = np.stack([p.probabilities for p in predictions]) * weights[:, None]
    combined = probs.sum(axis=0) / weights.sum()
    modes = scorer.modes
    flags = [row["metaphor"] for row in rows]
    spans = [{**span, "item": row["id"]} for row in rows for span in row["metaphor_spans"]]
    return ScoreResult(
        mode=modes[int(combined.argmax())],
        probabilities={mode: round(float(p), 6) for mode, p in zip(modes, combined, strict=True)},
        metaphor=None if any(f is None for f in flags) else any(flags),
        metaphor_spans=spans,
        items=rows,
        model=scorer.model_name,
        warnings=[e.error for e in errors],
    )


def score_path(path: Path, scorer: Scorer) -> ScoreResult:
    """Score every item of one file (or folder)."""
    items, errors = read_items(Path(path))
    result = score_items(items, scorer)
    result.warnings = errors + result.warnings
    return result


def score_text(text: str, scorer: Scorer) -> ScoreResult:
    """Score one text as one item."""
    if len(text) > MAX_STDIN_CHARS:
        raise ScoreError("too-large", f"input over {MAX_STDIN_CHARS} characters; use `seci batch` on a file")
    if not text.strip():
        raise ScoreError("empty", "the input is empty")
    return score_items([text_item(text)], scorer)
