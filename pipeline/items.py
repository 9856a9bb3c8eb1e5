"""The records that flow through the pipeline: an ingested `Item` and an `InputError`."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

SOURCES = ("email", "meeting", "document", "other")

# How a piece of communication reached its participants; ba is typed by this medium.
MEDIA = ("face-to-face", "virtual")


@dataclass
class Item:
    """The smallest unit a reader could label on its own (SECI_LABELING_GUIDE.md, section 1).

    `id` is stable across runs for the same input: it is derived from the input's path and the
    item's own key (message id, segment number, section number) unless the input supplies one.
    `position` orders items inside their `thread` (a meeting's segments, a document's sections),
    which gives inputs without timestamps an ordinal time axis.
    """

    id: str
    text: str
    source: str
    path: str
    title: str | None = None
    timestamp: datetime | None = None
    end_time: datetime | None = None
    authors: list[str] = field(default_factory=list)
    participants: list[str] = field(default_factory=list)
    team: str | None = None
    thread: str | None = None
    parent: str | None = None
    position: int = 0
    start_seconds: float | None = None
    end_seconds: float | None = None
    medium: str = "virtual"
    meta: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}; expected one of {SOURCES}")
        if self.medium not in MEDIA:
            raise ValueError(f"unknown medium {self.medium!r}; expected one of {MEDIA}")
        for stamp in (self.timestamp, self.end_time):
            if stamp is not None and stamp.tzinfo is None:
                raise ValueError(f"item {self.id}: timestamps must be timezone-aware")

    @property
    def n_participants(self) -> int:
        return len(set(self.authors) | set(self.participants))

    @property
    def content_hash(self) -> str:
        """Hash of what the model sees; a resumed run re-scores an item whose text changed."""
        return hashlib.sha1(self.text.encode("utf-8", "surrogatepass")).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        # Field by field, not `dataclasses.asdict`: its recursive deep copy took 36 of the 52 us per item that
        # staging items for `seci batch --engine ray` cost. The fields are flat (lists of str, a str-to-str
        # dict), so copying each container one level deep copies everything.
        row = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for key in ("authors", "participants", "warnings"):
            row[key] = list(row[key])
        row["meta"] = dict(self.meta)
        for key in ("timestamp", "end_time"):
            row[key] = row[key].isoformat() if row[key] is not None else None
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> Item:
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in row.items() if k in known}
        for key in ("timestamp", "end_time"):
            if kwargs.get(key):
                kwargs[key] = datetime.fromisoformat(kwargs[key])
        return cls(**kwargs)


@dataclass
class InputError:
    """An input that could not be read or processed; written to `errors.jsonl`, never dropped."""

    path: str
    reason: str
    error: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)
