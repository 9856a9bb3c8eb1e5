"""Generic item input: one JSON object per line, `{"id", "text"}` plus optional fields (INTERFACE.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pipeline.ingest.base import Source, register
from pipeline.items import SOURCES, InputError, Item


def _timestamp(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    # A stamp without a zone is taken as UTC rather than as the machine's local time.
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _names(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ValueError(f"{field} must be a list of strings")


def item_from_row(row: Any, source: Source) -> Item:
    if not isinstance(row, dict):
        raise ValueError("each line must be a JSON object")
    item_id, text = row.get("id"), row.get("text")
    if not isinstance(item_id, str) or not item_id:
        raise ValueError("missing string field 'id'")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("missing non-empty string field 'text'")
    kind = row.get("source") or "other"
    if kind not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}")
    return Item(
        id=item_id,
        text=text,
        source=kind,
        path=str(source.path),
        title=row.get("title"),
        timestamp=_timestamp(row.get("timestamp")),
        authors=_names(row.get("authors"), "authors"),
        participants=_names(row.get("participants"), "participants"),
        team=row.get("team"),
        thread=row.get("thread"),
        position=int(row.get("position") or 0),
        medium=row.get("medium") or source.options.media.get(kind, "virtual"),
    )


@register("jsonl", suffixes=(".jsonl",))
def read(source: Source) -> Iterator[Item | InputError]:
    """Each line becomes one item with its `id` unchanged; a bad line is an error, not the file's end."""
    text = source.read_text()
    seen: set[str] = set()
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source.path}:{n}"
        try:
            item = item_from_row(json.loads(line), source)
        except (ValueError, TypeError) as exc:
            yield InputError(where, "bad-record", str(exc))
            continue
        if item.id in seen:
            yield InputError(where, "duplicate-id", f"id {item.id!r} appeared earlier in the file")
            continue
        seen.add(item.id)
        yield item
