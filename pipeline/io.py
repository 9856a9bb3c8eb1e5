"""Small, safe readers and writers for JSON Lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any


class JsonlWriter:
    """Appends one JSON object per line, flushing each so a killed run keeps what it wrote."""

    def __init__(self, path: Path, mode: str = "w") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh = path.open(mode, encoding="utf-8")
        self.count = 0

    def write(self, row: dict[str, Any]) -> None:
        self._fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        self._fh.flush()
        self.count += 1

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


def read_jsonl(path: Path, max_line_bytes: int = 16 * 1024 * 1024) -> Iterator[dict[str, Any]]:
    """Rows of a JSON Lines file, streamed; a line over the bound is an error, not a memory blow-up."""
    with path.open("r", encoding="utf-8") as fh:
        for n, line in enumerate(iter(lambda: fh.readline(max_line_bytes + 1), ""), start=1):
            if len(line) > max_line_bytes:
                raise ValueError(f"{path}:{n}: line over {max_line_bytes} bytes")
            if line.strip():
                yield json.loads(line)
