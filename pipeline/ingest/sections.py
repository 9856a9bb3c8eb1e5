"""Sectioning shared by every document format: a flat list of `Block`s cut into labelable sections.

One item is one section, a heading plus its text (SECI_LABELING_GUIDE.md, section 1). Every format is
first turned into `Block`s (headings and paragraphs) plus document metadata, a `ParsedDocument`;
`split_sections` then does the cutting the same way for all of them: sections too short to label on
their own are merged into the next one, sections too long are cut into windows of whole paragraphs,
and documents without headings become windows of paragraphs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pipeline.ingest.base import word_count

TITLE_SEP = " › "


@dataclass
class Block:
    """A heading (`level` 1..6) or a paragraph (`level` 0) of a document, in reading order."""

    text: str
    level: int = 0

    @property
    def is_heading(self) -> bool:
        return self.level > 0


@dataclass
class Section:
    """One cut of a document: its heading path and text; `part`/`parts` number the windows of a long section."""

    path: tuple[str, ...]
    text: str
    words: int
    part: int = 1
    parts: int = 1


@dataclass
class ParsedDocument:
    """What a format parser extracts before sectioning."""

    blocks: list[Block]
    title: str | None = None
    authors: list[str] = field(default_factory=list)
    participants: list[str] = field(default_factory=list)
    timestamp: datetime | None = None
    meta: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Sectioning, shared by every format


@dataclass
class _Raw:
    path: tuple[str, ...]
    paragraphs: list[str]
    body_words: int


def split_sections(blocks: Sequence[Block], min_words: int, max_words: int) -> list[Section]:
    """Cut blocks into sections of a heading plus its text, merging short ones and windowing long ones."""
    raw = _group(blocks)
    merged = _merge_short(raw, max(1, min_words // 3))
    sections: list[Section] = []
    for sec in merged:
        windows = _windows(sec.paragraphs, min_words, max_words)
        for n, window in enumerate(windows, 1):
            text = "\n\n".join(window)
            sections.append(Section(sec.path, text, word_count(text), n, len(windows)))
    return [s for s in sections if s.words > 0]


def _group(blocks: Sequence[Block]) -> list[_Raw]:
    """One raw section per heading; the heading's own text opens its paragraphs."""
    out: list[_Raw] = []
    stack: list[tuple[int, str]] = []
    current = _Raw((), [], 0)
    for block in blocks:
        if block.is_heading:
            if current.paragraphs:
                out.append(current)
            while stack and stack[-1][0] >= block.level:
                stack.pop()
            stack.append((block.level, block.text))
            current = _Raw(tuple(t for _, t in stack), [block.text], 0)
        elif block.text.strip():
            current.paragraphs.append(block.text)
            current.body_words += word_count(block.text)
    if current.paragraphs:
        out.append(current)
    return out


def merged_path(paths: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    """The heading path of merged sections: a parent folds into its child, siblings are named together."""
    kept = [p for i, p in enumerate(paths) if not any(q[: len(p)] == p for q in paths[i + 1 :])]
    if len(kept) == 1:
        return kept[0]
    k = 0
    while all(len(p) > k for p in kept) and len({p[k] for p in kept}) == 1:
        k += 1
    return (*kept[0][:k], " / ".join(TITLE_SEP.join(p[k:]) for p in kept if p[k:]))


def _merge_short(raw: list[_Raw], threshold: int) -> list[_Raw]:
    out: list[_Raw] = []
    pending: list[_Raw] = []
    for sec in raw:
        pending.append(sec)
        words = sum(p.body_words for p in pending)
        if words < threshold:
            continue
        out.append(_Raw(merged_path([p.path for p in pending]), [t for p in pending for t in p.paragraphs], words))
        pending = []
    if pending:
        # A short last section (a copyright line, a closing note) joins the one before it.
        last = [out.pop()] if out else []
        group = last + pending
        path = group[0].path if last else merged_path([p.path for p in group])
        out.append(_Raw(path, [t for p in group for t in p.paragraphs], sum(p.body_words for p in group)))
    return out


_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[*`A-Z0-9])")


def _split_long(paragraph: str, max_words: int) -> list[str]:
    """Cut one over-long paragraph at sentence ends, else at line ends, else every max_words words."""
    pieces = _SENTENCE_END.split(paragraph)
    if len(pieces) == 1:
        pieces = paragraph.split("\n")
    units: list[str] = []
    for piece in pieces:
        words = piece.split()
        if len(words) > max_words:
            units.extend(" ".join(words[i : i + max_words]) for i in range(0, len(words), max_words))
        elif words:
            units.append(piece.strip())
    chunks: list[str] = []
    current: list[str] = []
    n = 0
    for unit in units:
        w = word_count(unit)
        if current and n + w > max_words:
            chunks.append(" ".join(current))
            current, n = [], 0
        current.append(unit)
        n += w
    if current:
        chunks.append(" ".join(current))
    return chunks


def _windows(paragraphs: list[str], min_words: int, max_words: int) -> list[list[str]]:
    """Consecutive paragraphs packed into windows of about min..max words, never cut mid-paragraph."""
    units: list[str] = []
    for p in paragraphs:
        units.extend(_split_long(p, max_words) if word_count(p) > max_words else [p])
    small = max(1, min_words // 3)
    windows: list[list[str]] = []
    current: list[str] = []
    n = 0
    for unit in units:
        w = word_count(unit)
        # A window still under a third of the minimum takes the next paragraph even past the maximum.
        if current and n + w > max_words and n >= small:
            windows.append(current)
            current, n = [], 0
        current.append(unit)
        n += w
    if current:
        if windows and n < small:
            windows[-1].extend(current)
        else:
            windows.append(current)
    return windows


def title_from_lone_h1(doc: ParsedDocument) -> None:
    """A document that opens with its only level-1 heading names itself there, rather than a section."""
    if doc.title or not doc.blocks or doc.blocks[0].level != 1:
        return
    if any(b.level == 1 for b in doc.blocks[1:]):
        return
    doc.title = doc.blocks.pop(0).text


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
