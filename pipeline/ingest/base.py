"""The reader contract shared by every ingestor.

A reader is a function `read(source: Source) -> Iterable[Item]` registered for the files it
understands. It reads its file only through `Source` (which bounds sizes and decodes text), builds
ids with `Source.item_id`, and signals a file it cannot use by raising `UnreadableInput`; anything
else it raises is reported as a parse error. Problems inside a file that do not spoil the whole
file become `Item.warnings` (a broken VTT cue) or, where a whole record is lost (one unparseable
line of a JSONL file), an `InputError` yielded in the record's place.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from charset_normalizer import from_bytes

from pipeline.items import InputError, Item

MiB = 1024 * 1024


class UnreadableInput(Exception):
    """A file that yields nothing usable; `reason` is a short machine-readable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class CompanionFile(Exception):
    """A file read together with another one (an MRDA `.trans` beside its `.dadb`)."""


@dataclass
class IngestOptions:
    """Bounds and segmentation settings; `configs/ingest.yaml` holds the defaults users edit."""

    max_file_bytes: int = 64 * MiB
    max_archive_bytes: int = 2048 * MiB  # mbox files are streamed, so they get a larger bound
    segment_min_words: int = 40
    segment_max_words: int = 250
    section_min_words: int = 100
    section_max_words: int = 400
    media: dict[str, str] = field(
        default_factory=lambda: {
            "email": "virtual",
            "meeting": "face-to-face",
            "document": "virtual",
            "other": "virtual",
        }
    )

    @classmethod
    def from_yaml(cls, path: Path) -> IngestOptions:
        """Options from the `ingest:` section of a YAML config; unknown keys are an error, not ignored."""
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        section = doc.get("ingest", {}) if isinstance(doc, dict) else {}
        unknown = set(section) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown ingest settings {sorted(unknown)}")
        options = cls(**{k: v for k, v in section.items() if k != "media"})
        options.media.update(section.get("media") or {})
        return options


@dataclass
class Source:
    """One input file as a reader sees it."""

    path: Path
    key: str  # the path relative to the input it was found under, prefixed with that input's name
    options: IngestOptions
    _head: bytes | None = None

    def item_id(self, local: str | int) -> str:
        return f"{self.key}#{local}"

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def head(self, n: int = 4096) -> bytes:
        if self._head is None or len(self._head) < n:
            with self.path.open("rb") as fh:
                self._head = fh.read(n)
        return self._head[:n]

    def read_bytes(self, limit: int | None = None) -> bytes:
        limit = limit or self.options.max_file_bytes
        size = self.size
        if size > limit:
            raise UnreadableInput("too-large", f"{size} bytes is over the {limit}-byte limit")
        with self.path.open("rb") as fh:
            data = fh.read(limit + 1)
        if len(data) > limit:  # the file grew while we read it
            raise UnreadableInput("too-large", f"over the {limit}-byte limit")
        return data

    def read_text(self) -> str:
        data = self.read_bytes()
        if not data.strip():
            raise UnreadableInput("empty", "the file is empty")
        return decode(data)

    def head_text(self, n: int = 4096) -> str | None:
        """The head decoded for sniffing (a byte-order mark honoured, else UTF-8); None for binary data."""
        head = self.head(n)
        charset = bom_charset(head)
        if charset is None and b"\x00" in head:
            return None
        # A cut head may end inside a character: replace it rather than fail.
        return head.decode(charset or "utf-8", errors="replace").lstrip("\ufeff")


# UTF-32 first: its little-endian mark starts with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def bom_charset(data: bytes) -> str | None:
    """The Unicode encoding a byte-order mark at the start of `data` names, if there is one."""
    return next((charset for bom, charset in _BOMS if data.startswith(bom)), None)


def decode(data: bytes, declared: str | None = None) -> str:
    """Decode bytes as text: a byte-order mark decides, else a declared charset that actually decodes."""
    charset = bom_charset(data)
    if charset is not None:
        # A mark is explicit; a file cut mid-character keeps what decodes.
        return data.decode(charset, errors="replace").lstrip("\ufeff")
    if b"\x00" in data[:8192]:
        raise UnreadableInput("binary", "the file holds binary data (NUL bytes), not text")
    for charset in (declared, "utf-8"):
        if not charset:
            continue
        try:
            return data.decode(charset).lstrip("\ufeff")
        except (LookupError, UnicodeDecodeError):
            continue
    best = from_bytes(data[: 4 * MiB]).best()
    if best is None:
        raise UnreadableInput("decode", "no text encoding fits the bytes (binary file?)")
    return data.decode(best.encoding, errors="replace")


_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANKS = re.compile(r"\n\s*\n\s*\n+")


def normalize_whitespace(text: str) -> str:
    """Collapse runs of spaces and of blank lines, keeping paragraph breaks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANKS.sub("\n\n", text).strip()


def word_count(text: str) -> int:
    return len(text.split())


Reader = Callable[[Source], Iterable[Item | InputError]]
Sniffer = Callable[[Source], bool]


@dataclass(frozen=True)
class Format:
    """A registered file format: which files it claims and how to read them."""

    name: str
    read: Reader
    suffixes: tuple[str, ...] = ()
    sniff: Sniffer | None = None  # decides for suffixes that several formats claim (.txt, .json)
    # Recognizes the format by content where the suffix means nothing (none, `.02`, a Maildir `:2,S`);
    # defaults to `sniff`.
    detect: Sniffer | None = None

    @property
    def content_sniffer(self) -> Sniffer | None:
        return self.detect or self.sniff


FORMATS: list[Format] = []


def register(
    name: str, *, suffixes: tuple[str, ...] = (), sniff: Sniffer | None = None, detect: Sniffer | None = None
) -> Callable[[Reader], Reader]:
    """Register a reader. Formats with a sniffer are asked first, in registration order."""

    def wrap(read: Reader) -> Reader:
        FORMATS.append(Format(name, read, tuple(s.lower() for s in suffixes), sniff, detect))
        return read

    return wrap
