"""Aggregation: result rows in, per-team timelines, ba and knowledge-spiral metrics out."""

from pipeline.aggregate.ba import BA_TYPES, ba_of
from pipeline.aggregate.results import MODES, load_results
from pipeline.aggregate.timeline import Aggregation, TeamMetrics, TeamTurn, aggregate

__all__ = [
    "BA_TYPES",
    "MODES",
    "Aggregation",
    "TeamMetrics",
    "TeamTurn",
    "aggregate",
    "ba_of",
    "load_results",
]
