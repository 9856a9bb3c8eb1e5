"""Ingestion: files in, `Item`s out (emails, meeting transcripts, documents, generic JSONL)."""

from pipeline.ingest.base import IngestOptions
from pipeline.ingest.driver import IngestSummary, ingest
from pipeline.ingest.teams import TeamRules

__all__ = ["IngestOptions", "IngestSummary", "TeamRules", "ingest"]
