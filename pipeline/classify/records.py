"""What a batch run reports: progress while it runs, `errors.jsonl` as it goes, `run.json` at the start and end."""

from __future__ import annotations

import json
import platform
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from pipeline.classify.store import fsync_write
from pipeline.items import InputError


@dataclass
class BatchProgress:
    """What a progress display needs; `files_total` is None until the inputs have been counted."""

    files_done: int
    files_total: int | None
    items_done: int
    items_skipped: int
    errors: int
    seconds: float
    # Files whose items have all been scored and written (the batch bar's count); None where not tracked.
    files_scored: int | None = None

    @property
    def items_per_second(self) -> float:
        return self.items_done / self.seconds if self.seconds > 0 else 0.0


@dataclass
class RunSummary:
    """What `run.json` holds: counts that account for every input and item, timings, model, versions."""

    out_dir: str
    output: str | None = None
    status: str = "running"
    model: str = ""
    inputs: int = 0  # files found under the inputs
    files_read: int = 0
    items: int = 0  # items scored in this run
    rows: int = 0  # rows in the merged output (this run's and earlier runs')
    errors: int = 0  # lines in errors.jsonl
    duplicates: int = 0  # items dropped as exact duplicates (ingestion) or repeated (id, content hash)
    skipped_by_resume: int = 0
    non_english: int = 0  # items read that are not English: labelled, with a warning (local engine)
    superseded: int = 0  # earlier rows dropped because their item was scored again
    parts: int = 0
    errors_by_reason: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    items_per_second: float = 0.0
    tokens: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def versions(extra: Sequence[str] = ()) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("seci", "torch", "transformers", "tokenizers", "pyarrow", "spacy", *extra):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return out


class ErrorLog:
    """errors.jsonl, written from more than one thread."""

    def __init__(self, path: Path, summary: RunSummary) -> None:
        from pipeline.io import JsonlWriter

        self._writer = JsonlWriter(path)
        self._lock = threading.Lock()
        self._summary = summary

    def write(self, error: InputError) -> None:
        with self._lock:
            self._writer.write(error.to_dict())
            self._summary.errors += 1
            reasons = self._summary.errors_by_reason
            reasons[error.reason] = reasons.get(error.reason, 0) + 1

    def close(self) -> None:
        self._writer.close()


def write_run_json(out_dir: Path, summary: RunSummary) -> None:
    """`run.json`, replaced atomically."""
    text = json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n"
    fsync_write(out_dir / "run.json", lambda fh: fh.write(text.encode("utf-8")))
