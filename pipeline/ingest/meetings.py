"""Meeting transcripts: QMSum JSON, ICSI MRDA (.dadb + .trans), WebVTT, SRT, SBV and plain-text transcripts.

Every reader turns its file into speaker `Turn`s and cuts them with `segment_turns` into segments of
consecutive turns (SECI_LABELING_GUIDE.md section 1: about 40 to 250 words, cut at turn boundaries).
One segment is one `Item`; its text holds one `Speaker: text` line per speaker run, so whoever labels
it sees who speaks.

A meeting's date comes from its own metadata (a WebVTT header or `NOTE` line, a `Date:` line before
a plain transcript's first turn), else from a date in its file name or a folder above it
(`design-sync-2024-03-21.vtt`, Zoom's `GMT20240321-100000`, `2024-03-21 10.00.00 Sync/`; the forms
are in pipeline/ingest/dates.py), else it stays undated. Each segment's timestamp is that date plus
the segment's start in the meeting; `meta["date_source"]` says `metadata` or `path`.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import pysrt
import webvtt
from webvtt.errors import MalformedCaptionError, MalformedFileError

from pipeline.ingest.base import (
    FORMATS,
    CompanionFile,
    IngestOptions,
    Source,
    UnreadableInput,
    register,
)
from pipeline.ingest.turns import (
    MERGE_SLACK,
    Meeting,
    Turn,
    clean_transcript_text,
    date_in_lines,
    meeting_items,
    segment_turns,
)
from pipeline.items import Item

log = logging.getLogger(__name__)

# The transcript readers and the turn tools they share, as callers and tests import them.
__all__ = ["MERGE_SLACK", "Turn", "clean_transcript_text", "meeting_items", "read_path", "segment_turns"]

# ---------------------------------------------------------------------------------------------
# QMSum JSON

_AMI = re.compile(r"^((?:ES|IS|TS)\d{4})([a-d])$")
_ICSI = re.compile(r"^(B[a-z]{2})(\d{3})$")
_COMMITTEE = re.compile(r"^([a-z]+)_(\d+)$")
# The transcript key comes after the query lists in QMSum files (up to ~17 KB in), so the sniffer
# also accepts the keys that open the file.
_QMSUM_KEYS = (b'"meeting_transcripts"', b'"topic_list"', b'"general_query_list"', b'"specific_query_list"')


def qmsum_meeting_facts(meeting_id: str) -> tuple[str | None, dict[str, str]]:
    """The team a QMSum meeting id implies and its `meta` (corpus, order key)."""
    if match := _AMI.match(meeting_id):
        part = match.group(2)
        return match.group(1), {"corpus": "ami", "meeting_part": part, "meeting_order": part}
    if match := _ICSI.match(meeting_id):
        return match.group(1), {"corpus": "icsi", "series": match.group(1), "meeting_order": match.group(2)}
    if match := _COMMITTEE.match(meeting_id):
        return match.group(1), {"corpus": "committee", "meeting_order": match.group(2)}
    return None, {"corpus": "unknown"}


def _sniff_qmsum(source: Source) -> bool:
    try:
        head = source.head(32768)
    except OSError:
        return False
    return head.lstrip().startswith(b"{") and any(key in head for key in _QMSUM_KEYS)


def _json_error(text: str, exc: json.JSONDecodeError) -> UnreadableInput:
    # A cut-off file fails at its very end, or inside a string that never closes.
    if exc.pos >= len(text.rstrip()) - 1 or exc.msg.startswith("Unterminated string"):
        return UnreadableInput("truncated", f"JSON ends early: {exc.msg} at char {exc.pos}")
    return UnreadableInput("parse", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")


def _topic_starts(topics: object, warnings: list[str]) -> set[int]:
    starts: set[int] = set()
    if not isinstance(topics, list):
        return starts
    for topic in topics:
        spans = topic.get("relevant_text_span") if isinstance(topic, dict) else None
        for span in spans if isinstance(spans, list) else []:
            try:
                starts.add(int(span[0]))
            except (TypeError, ValueError, IndexError, KeyError):
                warnings.append(f"ignored a malformed topic span {str(span)[:80]!r}")
    return starts


@register("qmsum-json", suffixes=(".json",), sniff=_sniff_qmsum)
def read_qmsum(source: Source) -> Iterator[Item]:
    """A QMSum meeting file: `meeting_transcripts` turns, cut with the `topic_list` spans as cut hints."""
    text = source.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _json_error(text, exc) from exc
    if not isinstance(data, dict) or not isinstance(data.get("meeting_transcripts"), list):
        raise UnreadableInput("parse", "not a QMSum meeting: no `meeting_transcripts` list")
    warnings: list[str] = []
    turns = []
    for number, row in enumerate(data["meeting_transcripts"]):
        if not (isinstance(row, dict) and isinstance(row.get("speaker"), str) and isinstance(row.get("content"), str)):
            warnings.append(f"turn {number}: skipped, not a {{speaker, content}} object")
            continue
        turns.append(Turn(row["speaker"].strip() or "Unknown", row["content"]))
    if len(turns) != len(data["meeting_transcripts"]):
        # Skipping shifts the indices the topic spans refer to, so they no longer apply.
        topic_starts: set[int] = set()
    else:
        topic_starts = _topic_starts(data.get("topic_list"), warnings)
    meeting_id = source.path.stem
    team, meta = qmsum_meeting_facts(meeting_id)
    meeting = Meeting(meeting_id, "face-to-face", team, meta, topic_starts, warnings)
    yield from meeting_items(source, turns, meeting)


# ---------------------------------------------------------------------------------------------
# ICSI MRDA

_DADB_FIELDS = 14
_DA_ID = re.compile(r"^(?P<channel>(?P<meeting>[A-Za-z]+\d+)-\w+?)_(?P<start>\d+)_(?P<end>\d+)$")
_DIGIT_TASK = "DIGIT_TASK"


def _decode_latin1(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise UnreadableInput("binary", "the file holds binary data (NUL bytes), not text")
    return data.decode("latin-1")


def _read_trans(data: bytes) -> tuple[dict[str, str], list[str]]:
    """DA id -> original text. The original column keeps "okay" where the normalised one has "o_k"."""
    texts: dict[str, str] = {}
    warnings: list[str] = []
    for number, line in enumerate(_decode_latin1(data).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) < 3:
            warnings.append(f".trans line {number}: skipped, expected id,original,normalised")
            continue
        # The two text columns mirror each other, so an unquoted comma inside them shows as an even
        # number of text fields: the first half is the original text.
        text_fields = fields[1:]
        half = len(text_fields) // 2 if len(text_fields) % 2 == 0 else 1
        texts[fields[0]] = ",".join(text_fields[:half])
    return texts, warnings


def _mrda_meeting(meeting_id: str) -> tuple[str | None, dict[str, str]]:
    """The series (`Bmr`) is the team; the meeting number orders a series in time."""
    match = _ICSI.match(meeting_id)
    if match is None:
        return None, {"corpus": "icsi"}
    return match.group(1), {"corpus": "icsi", "series": match.group(1), "meeting_order": match.group(2)}


def _companion(path: Path, suffix: str, folder: str) -> Path | None:
    """The other half of an MRDA pair: beside the file, or in the release's parallel folder
    (`database/X.dadb` pairs with `transcripts/X.trans`)."""
    for candidate in (path.with_suffix(suffix), path.parent.parent / folder / f"{path.stem}{suffix}"):
        if candidate.is_file():
            return candidate
    return None


def _merge_runs(rows: list[tuple[float, float, str, str]]) -> list[Turn]:
    """Consecutive DAs (by start time) of one speaker become one turn."""
    turns: list[Turn] = []
    for start, end, speaker, text in sorted(rows, key=lambda r: (r[0], r[1])):
        if turns and turns[-1].speaker == speaker:
            last = turns[-1]
            turns[-1] = Turn(speaker, f"{last.text} {text}", last.start, max(end, last.end or end))
        else:
            turns.append(Turn(speaker, text, start, end))
    return turns


@register("icsi-mrda", suffixes=(".dadb",))
def read_mrda(source: Source) -> Iterator[Item]:
    """An MRDA `.dadb` (times, speaker ids) joined by DA id with the text of its sibling `.trans`."""
    rows_data = _decode_latin1(source.read_bytes())
    trans_path = _companion(source.path, ".trans", "transcripts")
    if trans_path is None:
        raise UnreadableInput(
            "missing-companion", f"{source.path.stem}.trans (the text of the dialogue acts) is missing"
        )
    trans_source = Source(trans_path, source.key, source.options)
    texts, warnings = _read_trans(trans_source.read_bytes())
    rows: list[tuple[float, float, str, str]] = []
    missing = 0
    for number, fields in enumerate(csv.reader(io.StringIO(rows_data)), 1):
        if not fields:
            continue
        if len(fields) != _DADB_FIELDS:
            warnings.append(f".dadb line {number}: skipped, {len(fields)} fields instead of {_DADB_FIELDS}")
            continue
        try:
            start, end = float(fields[0]), float(fields[1])
        except ValueError:
            warnings.append(f".dadb line {number}: skipped, bad times {fields[0]!r}, {fields[1]!r}")
            continue
        if not (math.isfinite(start) and math.isfinite(end)):
            warnings.append(f".dadb line {number}: skipped, bad times")
            continue
        text = texts.get(fields[2])
        if text is None:
            missing += 1
            continue
        if text.strip() == _DIGIT_TASK:  # read-out digit strings, not conversation
            continue
        rows.append((start, end, fields[7].strip() or "unknown", text))
    if missing:
        warnings.append(f"{missing} dialogue acts have no text in {trans_path.name}")
    if not rows:
        raise UnreadableInput("empty", "no dialogue acts with text")
    meeting_id = source.path.stem
    team, meta = _mrda_meeting(meeting_id)
    yield from meeting_items(source, _merge_runs(rows), Meeting(meeting_id, "face-to-face", team, meta, (), warnings))


@register("icsi-mrda-trans", suffixes=(".trans",))
def read_mrda_trans(source: Source) -> Iterator[Item]:
    """A `.trans` alone. Without its `.dadb` the speakers are channels (`c4`), not persistent ids;
    the times come from the DA ids (`Bed004-c4_0006570_0007920` is 6.57 s to 7.92 s)."""
    dadb_path = _companion(source.path, ".dadb", "database")
    if dadb_path is not None:
        raise CompanionFile(f"read with {dadb_path}")
    texts, warnings = _read_trans(source.read_bytes())
    rows: list[tuple[float, float, str, str]] = []
    for da_id, text in texts.items():
        match = _DA_ID.match(da_id)
        if match is None:
            warnings.append(f"skipped a line with an unknown DA id {da_id[:60]!r}")
            continue
        if text.strip() == _DIGIT_TASK:
            continue
        channel = match.group("channel").split("-", 1)[1]
        rows.append((int(match.group("start")) / 1000, int(match.group("end")) / 1000, channel, text))
    if not rows:
        raise UnreadableInput("parse", "no MRDA dialogue-act lines (id,original,normalised)")
    meeting_id = source.path.stem
    team, meta = _mrda_meeting(meeting_id)
    meta["speakers"] = "channels"
    yield from meeting_items(source, _merge_runs(rows), Meeting(meeting_id, "face-to-face", team, meta, (), warnings))


# ---------------------------------------------------------------------------------------------
# Subtitles: WebVTT, SRT and YouTube's SBV

# Content sniffers for files whose suffix says nothing (`webvtt/typical`, a UTF-16 `captions`).
_SRT_TIMING = re.compile(r"^\s*\d{1,2}:\d{2}:\d{2}[,.]\d{1,3}\s*-->\s*\d{1,2}:\d{2}:\d{2}[,.]\d{1,3}")
_SBV_TIMING = re.compile(r"^\s*\d{1,2}:\d{2}:\d{2}\.\d{3},\d{1,2}:\d{2}:\d{2}\.\d{3}\s*$", re.MULTILINE)
# YouTube marks a change of speaker with `>>`.
_SBV_SPEAKER_CHANGE = re.compile(r"^\s*>>\s*")


def _head_lines(source: Source, n: int) -> list[str]:
    text = source.head_text()
    return [line for line in (text or "").splitlines() if line.strip()][:n]


def _is_webvtt(source: Source) -> bool:
    lines = _head_lines(source, 1)
    return bool(lines) and re.match(r"WEBVTT(?:[ \t]|$)", lines[0]) is not None


def _is_srt(source: Source) -> bool:
    lines = _head_lines(source, 2)
    return len(lines) == 2 and lines[0].strip().isdigit() and _SRT_TIMING.match(lines[1]) is not None


def _is_sbv(source: Source) -> bool:
    lines = _head_lines(source, 1)
    return bool(lines) and _SBV_TIMING.match(lines[0]) is not None


_VOICE = re.compile(r"<v(?:\.[\w-]+)*\s+([^>]+)>(.*?)(?:</v>|(?=<v[\s.])|$)", re.DOTALL)
_CUE_TAG = re.compile(r"</?[a-z][^>]*>|<\d[^>]*>", re.IGNORECASE)
# Zoom writes "Name: text" in the cue; a speaker name is 1 to 4 words before the colon.
_NAME_PREFIX = re.compile(r"^\s*([^\W\d][\w.'’-]*(?: [\w.'’()-]+){0,3})\s*:\s+(\S.*)$", re.DOTALL)
_UNKNOWN_SPEAKER = "Unknown"


def _cue_turns(raw: str, start: float | None, end: float | None) -> list[Turn]:
    """The speaker turns of one cue: `<v Name>` voice spans, else a `Name:` prefix, else unknown."""
    voices = [(name.strip(), _CUE_TAG.sub("", text)) for name, text in _VOICE.findall(raw)]
    if voices:
        return [Turn(name or _UNKNOWN_SPEAKER, " ".join(text.split()), start, end) for name, text in voices]
    text = " ".join(_CUE_TAG.sub("", raw).split())
    match = _NAME_PREFIX.match(text)
    if match and "://" not in match.group(1):
        return [Turn(match.group(1), match.group(2), start, end)]
    return [Turn(_UNKNOWN_SPEAKER, text, start, end)]


def _merge_cue_turns(turns: Iterable[Turn]) -> list[Turn]:
    """Captions cut one speaker's talk into many cues; consecutive cues of one speaker form one turn."""
    merged: list[Turn] = []
    for turn in turns:
        if not turn.text:
            continue
        if merged and merged[-1].speaker == turn.speaker:
            last = merged[-1]
            merged[-1] = Turn(last.speaker, f"{last.text} {turn.text}", last.start, turn.end)
        else:
            merged.append(turn)
    return merged


def _count_timing_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if "-->" in line)


@register("webvtt", suffixes=(".vtt",), detect=_is_webvtt)
def read_vtt(source: Source) -> Iterator[Item]:
    """A WebVTT transcript (Teams `<v Name>` voice tags, Zoom `Name:` prefixes). Virtual meeting."""
    yield from _read_captions(source, "vtt")


@register("sbv", suffixes=(".sbv",), detect=_is_sbv)
def read_sbv(source: Source) -> Iterator[Item]:
    """YouTube's SBV captions (read by webvtt-py); `>>` marks a new speaker. Virtual meeting."""
    yield from _read_captions(source, "sbv")


def _read_captions(source: Source, fmt: str) -> Iterator[Item]:
    text = source.read_text()
    label = "WebVTT" if fmt == "vtt" else "SBV"
    try:
        captions = list(webvtt.from_buffer(io.StringIO(text), format=fmt))
    except MalformedFileError as exc:
        what = "no WEBVTT header" if fmt == "vtt" else "no `start,end` timing lines"
        raise UnreadableInput("parse", f"not a {label} file ({what})") from exc
    except (MalformedCaptionError, ValueError) as exc:
        raise UnreadableInput("parse", f"unreadable {label}: {exc}") from exc
    warnings = []
    # The library drops a cue with bad timings silently; count them so the loss is visible.
    timings = _count_timing_lines(text) if fmt == "vtt" else len(_SBV_TIMING.findall(text))
    dropped = timings - len(captions)
    if dropped > 0:
        warnings.append(f"skipped {dropped} cue(s) with malformed timings")
    turns = []
    for caption in captions:
        start = caption.start_time.in_milliseconds() / 1000
        end = caption.end_time.in_milliseconds() / 1000
        if fmt == "vtt":
            turns.extend(_cue_turns(caption.raw_text, start, end))
            continue
        raw, changed = _SBV_SPEAKER_CHANGE.subn("", caption.raw_text)
        cue = _cue_turns(raw, start, end)
        if not changed and turns:  # no `>>`: the speaker of the cue before goes on
            cue = [replace(t, speaker=turns[-1].speaker) if t.speaker == _UNKNOWN_SPEAKER else t for t in cue]
        turns.extend(cue)
    if not any(t.text for t in turns):
        raise UnreadableInput("empty", "no cues with text")
    meeting_id = source.path.stem
    date = date_in_lines(_vtt_metadata_lines(text)) if fmt == "vtt" else None
    meeting = Meeting(meeting_id, "virtual", warnings=warnings, date=date)
    yield from meeting_items(source, _merge_cue_turns(turns), meeting)


def _vtt_metadata_lines(text: str) -> list[str]:
    """The header line's text and the NOTE blocks of a WebVTT file: where an export writes its date."""
    lines: list[str] = []
    in_note = False
    for number, line in enumerate(text.splitlines()):
        if number == 0:
            lines.append(line.removeprefix("\ufeff").removeprefix("WEBVTT"))
        elif line.startswith("NOTE"):
            in_note = True
            lines.append(line[4:])
        elif in_note and line.strip():
            lines.append(line)
        else:
            in_note = False
    return lines


@register("srt", suffixes=(".srt",), detect=_is_srt)
def read_srt(source: Source) -> Iterator[Item]:
    """A SubRip transcript; the speaker comes from a `Name:` prefix when there is one. Virtual meeting."""
    text = source.read_text()
    try:
        # ERROR_PASS: a malformed block is skipped (counted below); ERROR_LOG would write to stderr.
        subtitles = list(pysrt.SubRipFile.stream(text.splitlines(True), error_handling=pysrt.SubRipFile.ERROR_PASS))
    except (pysrt.Error, ValueError, IndexError) as exc:
        raise UnreadableInput("parse", f"unreadable SRT: {exc}") from exc
    if not subtitles:
        raise UnreadableInput("parse", "no SRT subtitle blocks (index, `-->` timings, text)")
    warnings = []
    dropped = _count_timing_lines(text) - len(subtitles)
    if dropped > 0:
        warnings.append(f"skipped {dropped} subtitle block(s) that did not parse")
    turns = []
    for subtitle in subtitles:
        turns.extend(_cue_turns(subtitle.text, subtitle.start.ordinal / 1000, subtitle.end.ordinal / 1000))
    if not any(t.text for t in turns):
        raise UnreadableInput("empty", "no subtitles with text")
    meeting_id = source.path.stem
    yield from meeting_items(source, _merge_cue_turns(turns), Meeting(meeting_id, "virtual", warnings=warnings))


# ---------------------------------------------------------------------------------------------
# Plain-text transcripts

_STAMP = r"(?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?"
_TEXT_TURN = re.compile(
    rf"^\s*(?:[\[(]?(?P<stamp>{_STAMP})[\])]?\s*[-–]?\s*)?"
    r"(?P<speaker>[A-Z][\w.'’-]*(?: [A-Z(][\w.'’()-]*){0,3})\s*:\s+(?P<text>\S.*)$"
)
_EMAIL_HEADERS = frozenset(
    {
        "message-id",
        "from",
        "to",
        "cc",
        "bcc",
        "date",
        "subject",
        "received",
        "return-path",
        "mime-version",
        "content-type",
        "reply-to",
        "in-reply-to",
        "references",
        "delivered-to",
        "sender",
    }
)
_DATE_LINE = re.compile(r"^\s*(?:date|meeting date|recorded|recorded on)\s*:\s*\S", re.IGNORECASE)
_HEADER_NAME = re.compile(r"^([A-Za-z][A-Za-z0-9-]*):")
_SNIFF_LINES = 40
_SNIFF_SHARE = 0.6


def _stamp_seconds(stamp: str) -> float:
    parts = stamp.replace(",", ".").split(":")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + float(part)
    return seconds


def _speaker_ok(name: str) -> bool:
    return "://" not in name and "@" not in name and not name.lower().startswith(("http", "www."))


def _sniff_text_transcript(source: Source) -> bool:
    try:
        head = source.head(8192)
    except OSError:
        return False
    if b"\x00" in head:
        return False
    lines = [line for line in head.decode("utf-8", errors="replace").splitlines() if line.strip()]
    if lines and len(head) == 8192:
        lines = lines[:-1]  # the last line may be cut off mid-word
    lines = lines[:_SNIFF_LINES]
    if len(lines) < 2:
        return False
    headers = {m.group(1).lower() for line in lines if (m := _HEADER_NAME.match(line))}
    if len(headers & _EMAIL_HEADERS) >= 2:
        return False
    matches = [m for line in lines if (m := _TEXT_TURN.match(line)) and _speaker_ok(m.group("speaker"))]
    speakers = {m.group("speaker") for m in matches}
    # Two speakers at least: a document with a few "Note: ..." lines is not a conversation.
    return len(matches) >= _SNIFF_SHARE * len(lines) and len(speakers) >= 2


@register("text-transcript", suffixes=(".txt", ".transcript"), sniff=_sniff_text_transcript)
def read_text_transcript(source: Source) -> Iterator[Item]:
    """`Speaker: text` lines, each optionally led by a timestamp; unprefixed lines continue the turn."""
    text = source.read_text()
    turns: list[Turn] = []
    preamble = 0
    head: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if not turns and _DATE_LINE.match(line):
            head.append(line)  # `Date: 21 March 2024` heads a transcript; it is no speaker's turn
            continue
        match = _TEXT_TURN.match(line)
        if match and _speaker_ok(match.group("speaker")):
            stamp = match.group("stamp")
            start = _stamp_seconds(stamp) if stamp else None
            turns.append(Turn(match.group("speaker"), match.group("text"), start))
        elif turns:
            last = turns[-1]
            turns[-1] = replace(last, text=f"{last.text} {line.strip()}")
        else:
            preamble += 1
            head.append(line)
    if not turns:
        raise UnreadableInput("parse", "no `Speaker: text` lines")
    warnings = [f"ignored {preamble} line(s) before the first speaker turn"] if preamble else []
    meeting_id = source.path.stem
    medium = source.options.media.get("meeting", "face-to-face")
    # A `Date: 21 March 2024` line before the first turn is the transcript's own date.
    meeting = Meeting(meeting_id, medium, warnings=warnings, date=date_in_lines(head))
    yield from meeting_items(source, _merge_text_turns(turns), meeting)


def _merge_text_turns(turns: list[Turn]) -> list[Turn]:
    merged: list[Turn] = []
    for turn in turns:
        if merged and merged[-1].speaker == turn.speaker:
            last = merged[-1]
            merged[-1] = replace(last, text=f"{last.text} {turn.text}")
        else:
            merged.append(turn)
    return merged


def read_path(path: Path, options: IngestOptions | None = None) -> list[Item]:
    """Read one meeting file directly (tests, notebooks); the driver normally picks the reader."""
    source = Source(path, path.name, options or IngestOptions())
    suffix = path.suffix.lower()
    names = {"qmsum-json", "icsi-mrda", "icsi-mrda-trans", "webvtt", "srt", "sbv", "text-transcript"}
    for fmt in FORMATS:
        if fmt.name in names and suffix in fmt.suffixes and (fmt.sniff is None or fmt.sniff(source)):
            return list(fmt.read(source))
    raise UnreadableInput("unsupported", f"no meeting reader claims {path.name}")
