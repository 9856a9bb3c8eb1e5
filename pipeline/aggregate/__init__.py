"""Aggregation: result rows in, per-team timelines, ba and knowledge-spiral metrics out."""

from __future__ import annotations

import importlib
from typing import Any

# Resolved on first use (PEP 562): `seci batch` needs only `ba.ba_of` per row, and importing the timeline
# modules eagerly would load pandas into every scoring process.
_EXPORTS = {
    "BA_TYPES": "ba",
    "ba_of": "ba",
    "MODES": "results",
    "load_results": "results",
    "Aggregation": "timeline",
    "TeamMetrics": "timeline",
    "TeamTurn": "timeline",
    "aggregate": "timeline",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
