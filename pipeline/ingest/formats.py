"""Importing this module registers every reader, in the order their sniffers are asked."""

from pipeline.ingest import (  # noqa: F401  (sniffers: most specific first)
    documents,
    email,
    jsonl,
    meetings,
    outlook,
)
