"""Walk inputs, dispatch each file to its reader, and account for every one of them."""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.ingest.base import FORMATS, CompanionFile, Format, IngestOptions, Source, UnreadableInput
from pipeline.ingest.language import is_non_english, mark_language
from pipeline.ingest.teams import TeamRules, assign_team
from pipeline.items import InputError, Item

log = logging.getLogger(__name__)


@dataclass
class Found:
    """A file found under an input, with what the driver needs to name and team its items."""

    path: Path
    key: str
    top_folder: str | None


@dataclass
class IngestSummary:
    """Counts that account for every input: each file is read, a companion, or an error."""

    files: int = 0
    files_read: int = 0
    companions: int = 0
    items: int = 0
    duplicates: int = 0
    non_english: int = 0  # items warned as not English (pipeline/ingest/language.py)
    items_by_source: Counter[str] = field(default_factory=Counter)
    errors_by_reason: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def errors(self) -> int:
        return sum(self.errors_by_reason.values())

    def to_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "files_read": self.files_read,
            "companions": self.companions,
            "items": self.items,
            "duplicates": self.duplicates,
            "non_english": self.non_english,
            "errors": self.errors,
            "items_by_source": dict(self.items_by_source),
            "errors_by_reason": dict(self.errors_by_reason),
            "seconds": round(self.seconds, 3),
        }


def find_files(inputs: Sequence[Path]) -> Iterator[Found | InputError]:
    """Every file under the inputs, following directory links once; loops and dangling links are errors."""
    for raw in inputs:
        root = Path(raw)
        if not root.exists() and not root.is_symlink():
            yield InputError(str(root), "missing", "no such file or directory")
            continue
        if not root.is_dir():
            yield Found(root, root.name, None)
            continue
        seen: set[tuple[int, int]] = set()
        name = root.resolve().name
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=None):
            st = os.stat(dirpath)
            if (st.st_dev, st.st_ino) in seen:
                dirnames[:] = []
                yield InputError(dirpath, "symlink-loop", "directory reached twice through links; not read again")
                continue
            seen.add((st.st_dev, st.st_ino))
            dirnames.sort()
            for filename in sorted(filenames):
                path = Path(dirpath, filename)
                rel = path.relative_to(root)
                top = rel.parts[0] if len(rel.parts) > 1 else name
                if path.is_symlink() and not path.exists():
                    yield InputError(str(path), "broken-link", "link points nowhere or loops")
                    continue
                yield Found(path, f"{name}/{rel.as_posix()}", top)


def find_format(source: Source) -> Format | None:
    """The reader for a file: by its suffix, sniffers deciding where formats share it, else by its content.

    A suffix that no format registers (none, Maildir's `1354585346.000260:2,S`, `email.02`) says nothing
    about the file, so every format that can recognize content is asked, in registration order.
    """
    suffix = source.path.suffix.lower()
    claimed = [fmt for fmt in FORMATS if suffix in fmt.suffixes]
    if not claimed:
        return next((fmt for fmt in FORMATS if (sniffer := fmt.content_sniffer) and sniffer(source)), None)
    for fmt in claimed:
        if fmt.sniff is not None and fmt.sniff(source):
            return fmt
    for fmt in claimed:
        if fmt.sniff is None:
            return fmt
    return None


def read_file(found: Found, options: IngestOptions) -> list[Item | InputError] | InputError | None:
    """The items (and per-record errors) of one file, an error for the file, or None for a companion."""
    path = str(found.path)
    source = Source(found.path, found.key, options)
    try:
        if not found.path.is_file():
            return InputError(path, "not-a-file", "not a regular file")
        if source.size == 0:
            return InputError(path, "empty", "the file is empty")
        fmt = find_format(source)
        if fmt is None:
            return InputError(path, "unsupported", f"no reader for {found.path.suffix or 'files without a suffix'}")
        records = list(fmt.read(source))
    except CompanionFile:
        return None
    except UnreadableInput as exc:
        return InputError(path, exc.reason, str(exc))
    except Exception as exc:
        # Whatever a reader trips over in one hostile file (a library's own exception types included)
        # is that file's error line; it must never end a run over a million others.
        log.debug("reader failed on %s", path, exc_info=True)
        return InputError(path, "parse", f"{type(exc).__name__}: {exc}")
    if not records:
        return InputError(path, "empty", f"no text found ({fmt.name})")
    return records


def ingest(
    inputs: Sequence[Path],
    options: IngestOptions | None = None,
    teams: TeamRules | None = None,
    summary: IngestSummary | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> Iterator[Item | InputError]:
    """Stream the items of all inputs, interleaved with an `InputError` for each input that failed.

    Exact duplicates (same `meta["dedup_key"]`, e.g. one e-mail stored in two mailboxes) are
    dropped and counted in `summary.duplicates`.
    """
    options = options or IngestOptions()
    summary = summary if summary is not None else IngestSummary()
    seen: set[str] = set()
    started = time.perf_counter()
    for found in find_files(inputs):
        if isinstance(found, InputError):
            summary.files += 1
            summary.errors_by_reason[found.reason] += 1
            yield found
            continue
        if on_file is not None:
            on_file(found.path)
        for record in ingest_file(found, options, teams, summary):
            if isinstance(record, Item):
                key = record.meta.get("dedup_key")
                if key is not None:
                    if key in seen:
                        summary.duplicates += 1
                        continue
                    seen.add(key)
                summary.items += 1
                summary.items_by_source[record.source] += 1
                summary.non_english += is_non_english(record)
            yield record
    summary.seconds += time.perf_counter() - started


def ingest_file(
    found: Found, options: IngestOptions, teams: TeamRules | None, summary: IngestSummary
) -> Iterator[Item | InputError]:
    """One file's items (teams assigned, non-English ones warned) and errors, the file counted in `summary`.

    Duplicates across files are left to the caller (`ingest`, or the Ray pipeline's gate), as are the item counts.
    """
    import pipeline.ingest.formats  # noqa: F401  (registers the readers)

    summary.files += 1
    result = read_file(found, options)
    if result is None:
        summary.companions += 1
        return
    if isinstance(result, InputError):
        level = logging.DEBUG if result.reason == "unsupported" else logging.WARNING
        log.log(level, "%s: %s (%s)", result.path, result.error, result.reason)
        summary.errors_by_reason[result.reason] += 1
        yield result
        return
    summary.files_read += 1
    for record in result:
        if isinstance(record, InputError):
            summary.errors_by_reason[record.reason] += 1
        else:
            record.team = assign_team(record, teams, found.top_folder)
            mark_language(record)
        yield record
