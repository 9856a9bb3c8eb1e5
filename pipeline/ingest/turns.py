"""Speaker turns of a meeting, cleaned and cut into segments, and the items built from them.

Every transcript reader (pipeline/ingest/meetings.py) turns its file into speaker `Turn`s;
`segment_turns` cuts them into segments of consecutive turns (SECI_LABELING_GUIDE.md section 1: about
40 to 250 words, cut at turn boundaries) and `meeting_items` makes one `Item` per segment, whose text
holds one `Speaker: text` line per speaker run, so that whoever labels it sees who speaks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from pipeline.ingest.base import IngestOptions, Source, UnreadableInput, word_count
from pipeline.ingest.dates import date_from_path, date_in_text, offset
from pipeline.items import Item

log = logging.getLogger(__name__)

_DEFAULTS = IngestOptions()

# A tail (or a fragment before a long turn) shorter than min_words joins its neighbour while the
# merged segment stays within this multiple of max_words, so that no segment is a lone "okay".
MERGE_SLACK = 1.25


@dataclass(frozen=True)
class Turn:
    """One speaker's uninterrupted contribution; times are seconds from the meeting start."""

    speaker: str
    text: str
    start: float | None = None
    end: float | None = None

    @property
    def words(self) -> int:
        return word_count(self.text)


# ---------------------------------------------------------------------------------------------
# Cleaning


# `{vocalsound}`, `{disfmarker}`, `{gap}`, `{pause}`, `{comment}`, MRDA's `{@@}`: bounded so that a stray
# brace in ordinary text cannot swallow a whole paragraph.
_TAG = re.compile(r"\{[^{}\n]{0,40}\}")
# MRDA interruption marks glued to the final punctuation ("right ?==").
_GLUED_INTERRUPTION = re.compile(r"(?<=[.?!,])==(?!\S)")
# Free-standing ICSI/MRDA marks: `==` interruption, `--` abandonment, `|` DA split, `@@` unintelligible.
_MARK = re.compile(r"(?<!\S)(?:==|--|\||@@|@reject@)(?!\S)")
_SPACED_PUNCT = re.compile(r"\s+([.,?!;:%])(?=\s|$)")
_REPEATED_PUNCT = re.compile(r"([.,?!;:])(?:\s+[.,;:])+(?=\s|$)")
_SPACED_CLITIC = re.compile(r"(\w) '(s|re|m|ll|ve|d|t)\b")
_LEADING_PUNCT = re.compile(r"^[\s.,;:!?]+")
_SPACES = re.compile(r"\s+")


def clean_transcript_text(text: str) -> str:
    """Remove transcription markup and tokenizer spacing; an empty result means the turn said nothing."""
    text = _TAG.sub(" ", text)
    text = _GLUED_INTERRUPTION.sub("", text)
    text = _MARK.sub(" ", text)
    text = _SPACES.sub(" ", text)
    text = _REPEATED_PUNCT.sub(r"\1", text)
    text = _SPACED_PUNCT.sub(r"\1", text)
    text = _SPACED_CLITIC.sub(r"\1'\2", text)
    text = _LEADING_PUNCT.sub("", text)
    return text.strip()


# ---------------------------------------------------------------------------------------------
# Segmentation

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _split_long_turn(turn: Turn, max_words: int) -> list[Turn]:
    """Split a turn over max_words at sentence ends into pieces of at most max_words.

    A single sentence longer than max_words is cut between words. Times are spread over the pieces in
    proportion to their words: an estimate, but it keeps the pieces ordered on the meeting's clock.
    """
    pieces: list[list[str]] = [[]]
    for sentence in _SENTENCE_END.split(turn.text):
        words = sentence.split()
        while words:
            room = max_words - len(pieces[-1])
            if len(words) <= room:
                pieces[-1].extend(words)
                words = []
            elif pieces[-1]:
                pieces.append([])
            else:  # a sentence longer than a whole piece
                pieces[-1].extend(words[:max_words])
                words = words[max_words:]
                pieces.append([])
    pieces = [p for p in pieces if p]
    total = sum(len(p) for p in pieces)
    timed = turn.start is not None and turn.end is not None
    out = []
    done = 0
    for piece in pieces:
        start = end = None
        if timed:
            span = turn.end - turn.start  # type: ignore[operator]
            start = turn.start + span * done / total  # type: ignore[operator]
            end = turn.start + span * (done + len(piece)) / total  # type: ignore[operator]
        done += len(piece)
        out.append(Turn(turn.speaker, " ".join(piece), start, end))
    return out


def segment_turns(
    turns: Sequence[Turn],
    min_words: int = _DEFAULTS.segment_min_words,
    max_words: int = _DEFAULTS.segment_max_words,
    topic_starts: Collection[int] = (),
) -> list[list[Turn]]:
    """Group consecutive turns into segments of about min_words..max_words words.

    Cuts fall only between turns, except inside a turn longer than max_words, which is split at
    sentence ends. `topic_starts` are indices into `turns` where a known topic begins (QMSum's
    `topic_list`); a segment that has reached min_words is cut there rather than run into the next
    topic. A fragment shorter than min_words (the meeting's tail, or the turns before a turn too long
    to join them) is merged into its neighbour while that stays under MERGE_SLACK * max_words.

    The bounds hold for every segment except where the input forces otherwise: a meeting with fewer
    than min_words words in all is one short segment, and a fragment whose merge would pass
    MERGE_SLACK * max_words stays short.
    """
    if min_words < 1 or max_words < min_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
    ceiling = int(MERGE_SLACK * max_words)
    starts = set(topic_starts)
    segments: list[list[Turn]] = []
    current: list[Turn] = []
    count = 0
    for index, turn in enumerate(turns):
        pieces = _split_long_turn(turn, max_words) if turn.words > max_words else [turn]
        for number, piece in enumerate(pieces):
            words = piece.words
            topic_cut = number == 0 and index in starts and count >= min_words
            overflow = count + words > max_words and not (count < min_words and count + words <= ceiling)
            if current and (topic_cut or overflow):
                segments.append(current)
                current, count = [], 0
            current.append(piece)
            count += words
    if current:
        tail = sum(t.words for t in current)
        if segments and tail < min_words and tail + sum(t.words for t in segments[-1]) <= ceiling:
            segments[-1].extend(current)
        else:
            segments.append(current)
    return segments


# ---------------------------------------------------------------------------------------------
# Items


@dataclass
class Meeting:
    """What a reader knows about one meeting besides its turns."""

    meeting_id: str
    medium: str
    team: str | None = None
    meta: dict[str, str] = field(default_factory=dict)
    topic_starts: Collection[int] = ()
    warnings: list[str] = field(default_factory=list)
    date: datetime | None = None  # from the file's own metadata (a NOTE or `Date:` line); else the path's


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _segment_text(turns: Sequence[Turn]) -> str:
    """One `Speaker: text` line per run of one speaker (split pieces of a long turn rejoin here)."""
    lines: list[tuple[str, list[str]]] = []
    for turn in turns:
        if lines and lines[-1][0] == turn.speaker:
            lines[-1][1].append(turn.text)
        else:
            lines.append((turn.speaker, [turn.text]))
    return "\n".join(f"{speaker}: {' '.join(texts)}" for speaker, texts in lines)


def meeting_items(source: Source, turns: Sequence[Turn], meeting: Meeting) -> Iterator[Item]:
    """Clean, segment and wrap the turns of one meeting as `Item`s (file-level warnings go on the first)."""
    kept_index: dict[int, int] = {}
    cleaned: list[Turn] = []
    for index, turn in enumerate(turns):
        text = clean_transcript_text(turn.text)
        if text:
            kept_index.setdefault(index, len(cleaned))
            cleaned.append(replace(turn, text=text))
    if not cleaned:
        raise UnreadableInput("empty", "the transcript has no spoken text")
    # A topic that starts on a dropped turn starts at the next kept one.
    starts = set()
    for start in meeting.topic_starts:
        following = [kept for original, kept in kept_index.items() if original >= start]
        if following:
            starts.add(min(following))
    options = source.options
    segments = segment_turns(cleaned, options.segment_min_words, options.segment_max_words, starts)
    participants = _unique(t.speaker for t in cleaned)
    date, date_source = meeting_date(source, meeting)
    meta = {**meeting.meta, "meeting": meeting.meeting_id}
    if date_source:
        meta["date_source"] = date_source
    for number, segment in enumerate(segments):
        starts_known = [t.start for t in segment if t.start is not None]
        ends_known = [t.end for t in segment if t.end is not None]
        start = min(starts_known) if starts_known else None
        end = max(ends_known) if ends_known else None
        yield Item(
            id=source.item_id(f"seg{number}"),
            text=_segment_text(segment),
            source="meeting",
            path=str(source.path),
            title=meeting.meeting_id,
            authors=_unique(t.speaker for t in segment),
            participants=participants,
            team=meeting.team,
            thread=meeting.meeting_id,
            timestamp=offset(date, start),
            end_time=offset(date, end) if end is not None else None,
            position=number,
            start_seconds=start,
            end_seconds=end,
            medium=meeting.medium,
            meta={**meta, "n_turns": str(len(segment))},
            warnings=list(meeting.warnings) if number == 0 else [],
        )


def meeting_date(source: Source, meeting: Meeting) -> tuple[datetime | None, str | None]:
    """The meeting's date and where it came from: its own metadata, else a date in the file name or a
    folder above it (`design-sync-2024-03-21.vtt`, Zoom's `GMT20240321-100000`), else none.

    A segment's timestamp is this date moved on by the segment's start in the meeting.
    """
    if meeting.date is not None:
        return meeting.date, "metadata"
    stamp, _ = date_from_path(Path(source.key))
    return (stamp, "path") if stamp else (None, None)


def date_in_lines(lines: Iterable[str]) -> datetime | None:
    for line in lines:
        if stamp := date_in_text(line):
            return stamp
    return None
