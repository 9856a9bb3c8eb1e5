"""Active learning: the items a model is least sure about, ready to label."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify.engine import Engine
from pipeline.ingest import ingest
from pipeline.items import Item

CHUNK = 512


def margin(probabilities: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability: small means the model hesitates between two modes."""
    top = np.sort(probabilities, axis=1)
    return top[:, -1] - top[:, -2]


def suggest(model_dir: Path, pool: list[Path], n: int, device: str = "auto") -> list[dict[str, Any]]:
    """Score the pool in chunks, keeping only the n least certain items (memory stays bounded)."""
    engine = Engine.from_dir(model_dir, device=device)
    kept: list[tuple[float, Item, np.ndarray]] = []
    chunk: list[Item] = []

    def flush() -> None:
        nonlocal kept
        probs = np.stack([p.probabilities for p in engine.predict([i.text for i in chunk])])
        kept.extend(zip(margin(probs).tolist(), chunk, probs, strict=True))
        kept = sorted(kept, key=lambda k: (k[0], k[1].id))[:n]
        chunk.clear()

    for record in ingest(pool):
        if isinstance(record, Item):
            chunk.append(record)
            if len(chunk) >= CHUNK:
                flush()
    if chunk:
        flush()
    modes = engine.config.modes
    return [
        {
            "id": item.id,
            "text": item.text,
            "source": item.source,
            "path": item.path,
            "team": item.team,
            "margin": round(m, 4),
            "model_probabilities": {mode: round(float(p), 4) for mode, p in zip(modes, probs, strict=True)},
            "mode": None,
            "secondary": None,
            "confidence": None,
            "metaphor": None,
            "metaphor_spans": [],
        }
        for m, item, probs in kept
    ]
