"""Email reader: `.eml` files, mbox archives, Maildir messages and folders of raw RFC 822 files.

Files are recognized by content wherever the suffix says nothing: a Maildir name with its info suffix
(`1354585346.000260:2,S`), a raw message saved as `email.02`, an mbox named `*.mbox.txt`. A message
may open with blank lines or an mbox `From ` line, and may use RFC 5322's obsolete syntax (white space
before a field's colon, section 4); both are repaired before Python's parser sees the message.

One message becomes one item whose text is the subject line followed by the message's own words:
quoted earlier messages, reply header blocks (Outlook, Lotus Notes), signatures and legal footers
are removed by `strip_reply`, while forwarded material is kept because it is what the message
passes on (SECI_LABELING_GUIDE.md, section 1).

Threading: one message alone shows only part of its conversation. With a full `References` chain
its first entry is the root; with a parent-only `References`, or only `In-Reply-To`, it is the
parent; without either, only the subject links it. So the item's `thread` is this message's best
guess (first reference, else In-Reply-To, else `subject:<key>`, else its own Message-ID), and `meta`
keeps `message_id`, `references`, `in_reply_to` and `subject_key`: `pipeline.ingest.threads`
joins the messages of a conversation over all of them and names the thread by its root.

Dates: a Date before 1980-01-02 (Enron's 1979-12-31 placeholder) leaves the message undated, with
the warning `placeholder date` and the header kept in `meta["date"]`. People: display names go to
`meta["names"]` (JSON, address to name); list mail (`List-Id`, `Precedence: bulk`, `Auto-Submitted`)
is marked in `meta["bulk"]`.
"""

from __future__ import annotations

import email.utils
import hashlib
import itertools
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from bs4 import BeautifulSoup
from mailparser_reply.parser import EmailMessage as ReplyMessage

from pipeline.ingest.base import Source, UnreadableInput, decode, normalize_whitespace, register
from pipeline.ingest.dates import is_placeholder
from pipeline.items import Item

logger = logging.getLogger(__name__)

# Header names whose presence marks a block of text as an RFC 822 header section.
_KNOWN_HEADERS = frozenset(
    {
        "message-id",
        "return-path",
        "received",
        "from",
        "date",
        "to",
        "cc",
        "bcc",
        "subject",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "reply-to",
        "in-reply-to",
        "references",
        "delivered-to",
        "sender",
        "x-mailer",
        "user-agent",
        "x-from",
        "x-to",
        "x-origin",
        "x-folder",
    }
)
# A field name is printable ASCII without the colon (RFC 5322 section 3.6.8); white space may precede
# the colon in the obsolete syntax (section 4.5).
_HEADER_FIELD = re.compile(rb"^([A-Za-z0-9][!-9;-~]{0,75})[ \t]*:")
_OBSOLETE_FIELD = re.compile(rb"^([A-Za-z0-9][!-9;-~]{0,75})[ \t]+:", re.MULTILINE)
# An mbox separator: `From sender date`, Netscape's `From - `; never an obsolete `From  : name` header.
_MBOX_FROM = re.compile(rb"^From (?![ \t]*:)[ \t]*\S")
_LEADING_BLANKS = re.compile(rb"\A(?:[ \t]*\r?\n)+")
_SNIFF_BYTES = 4096  # what `Source.head()` reads by default
_MBOX_SUFFIXES = (".mbox", ".mbx")
_CLAIMED_SUFFIXES = (".eml", *_MBOX_SUFFIXES)
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Outlook .msg: read by pipeline/ingest/outlook.py

_SUBJECT_PREFIX = re.compile(r"^\s*(?:(?:re|fw|fwd|aw|wg)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_DEDUP_BODY_CHARS = 2000
# Labels under which cp1252 text is commonly mislabelled (WHATWG maps ascii and latin-1 to cp1252 too).
_WESTERN_CHARSETS = frozenset(
    {
        "us-ascii",
        "ascii",
        "ansi-x3.4-1968",
        "utf-8",
        "utf8",
        "iso-8859-1",
        "latin-1",
        "latin1",
        "cp1252",
        "windows-1252",
    }
)

# --- body cleaning -------------------------------------------------------------------------------

_FORWARD_MARKER = re.compile(
    r"^\s*(?:-{2,}\s*(?:Forwarded by\b|Forwarded message\b)|Begin forwarded message:)", re.IGNORECASE
)
_ORIGINAL_MARKER = re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE)
_WROTE_LINE = re.compile(r"^[\s>]*(?:On\s.+|At\s.+|.*@.+|.*\byou)\s+wrote:\s*$", re.IGNORECASE)
_HEADER_LINE = re.compile(
    r"^[\s>*]*(From|To|cc|bcc|Subject|Sent|Date|Sent by|Please respond to|Reply-To|Importance)[ \t]*:", re.IGNORECASE
)
_DATE_TIME_LINE = re.compile(r"^\s*\d{1,2}/\d{1,2}/\d{2,4}\s+\d{1,2}:\d{2}(?::\d{2})?\s*[AP]M\s*$", re.IGNORECASE)
_TIME_LINE = re.compile(r"^\s*\d{1,2}:\d{2}(?::\d{2})?\s*[AP]M\b.*$", re.IGNORECASE)
# Lotus Notes names the sender on one line: `Jeff Dasovich on 05/01/2001 10:12 AM`.
_ON_DATE_LINE = re.compile(r"\son\s+\d{1,2}/\d{1,2}/\d{2,4}(?:\s+\d{1,2}:\d{2}(?::\d{2})?\s*[AP]M)?\s*$", re.IGNORECASE)
_QP_ARTEFACT = re.compile(r"=(?:20|09)?$", re.MULTILINE)
_LEGAL_FOOTER = re.compile(
    r"^\s*(?:This (?:e-?mail|message|communication|transmission)\b.{0,120}"
    r"\b(?:confidential|privileged|intended (?:solely |only )?for|property of)"
    r"|The information (?:contained )?in this (?:e-?mail|message|communication|transmission)"
    r"|CONFIDENTIALITY (?:NOTICE|NOTE|STATEMENT)|(?:LEGAL )?DISCLAIMER\b)",
    re.IGNORECASE,
)
_RULE_LINE = re.compile(r"^\s*[*=_-]{5,}\s*$")
_MAX_HEADER_LINES = 14


def _header_block_end(lines: list[str], start: int, *, lenient: bool = False) -> int | None:
    """Return the index after a reply/forward header block starting at `start`, or None.

    A block is an optional sender preamble (Lotus `Name` + `date time` lines, or `Name on date`)
    followed by header lines (`To:`, `cc:`, `Subject:` ...) with their wrapped continuations.
    `lenient` (right after a forward marker) also skips up to four unrecognised preamble lines.
    """
    i, n = start, len(lines)
    preamble = False
    if i + 1 < n and lines[i].strip() and len(lines[i]) <= 100 and _DATE_TIME_LINE.match(lines[i + 1]):
        i, preamble = i + 2, True
    elif _ON_DATE_LINE.search(lines[i]) or (
        i + 1 < n and re.search(r"\son\s+\d{1,2}/\d{1,2}/\d{2,4}\s*$", lines[i]) and _TIME_LINE.match(lines[i + 1])
    ):
        i = i + (1 if _ON_DATE_LINE.search(lines[i]) else 2)
        preamble = True
    elif lenient:
        skipped = 0
        while i < n and skipped < 4 and not _HEADER_LINE.match(lines[i]):
            skipped += 1 if lines[i].strip() else 0
            i += 1
        preamble = True
    names = 0
    seen_subject = False
    in_address = False
    blanks = 0
    while i < n and i - start < _MAX_HEADER_LINES + 8:
        line = lines[i]
        match = _HEADER_LINE.match(line)
        # Outlook may add `Importance:` after the subject; nothing else follows it.
        if match and (not seen_subject or match.group(1).lower() == "importance"):
            names += 1
            name = match.group(1).lower()
            seen_subject = seen_subject or name == "subject"
            in_address = name in ("to", "cc", "bcc", "from", "sent by")
            blanks = 0
            i += 1
        elif not line.strip():
            # Lotus puts blank lines between the sender line and `To:`; two in a row end the block.
            if seen_subject or (names and blanks >= 1) or blanks >= 3:
                break
            blanks += 1
            i += 1
        elif in_address and names and not blanks:
            i += 1  # a wrapped To:/cc: list
        else:
            break
    if names >= 2 or (names >= 1 and preamble):
        return i
    return None


def _clean_segment(text: str) -> str:
    """Remove signatures and disclaimers from one segment with mail-parser-reply, then our footers."""
    if not text.strip():
        return ""
    parsed = ReplyMessage(text=text, languages=["en"], keep_hyphen_lists=True).read()
    body = parsed.replies[0].body if parsed.replies else text
    lines = body.split("\n")
    for index, line in enumerate(lines):
        if _LEGAL_FOOTER.match(line):
            cut = index
            while cut > 0 and (not lines[cut - 1].strip() or _RULE_LINE.match(lines[cut - 1])):
                cut -= 1
            lines = lines[:cut]
            break
    return "\n".join(lines).strip()


def _fix_qp_artefacts(text: str) -> str:
    """Undo quoted-printable left in bodies declared 7bit (`=20` line ends, `=` soft breaks)."""
    if len(_QP_ARTEFACT.findall(text)) < 2:
        return text
    text = re.sub(r"=\n", "", text)
    return text.replace("=20", " ").replace("=09", "\t").replace("=3D", "=")


def strip_reply(text: str, subject: str | None = None) -> str:
    """Return a message body's own text: no quoted history, reply headers, signatures or footers.

    Forwarded material is kept (only the forwarding marker and header lines go). An Outlook
    `-----Original Message-----` block counts as a forward when `subject` starts with Fw:/Fwd:.
    """
    text = _fix_qp_artefacts(text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = text.split("\n")
    forward_by_subject = bool(subject and re.match(r"^\s*fwd?\s*:", subject, re.IGNORECASE))
    segments: list[list[str]] = [[]]
    has_own_text = False  # any kept line yet: a header block before it is not a quote
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        is_forward = bool(_FORWARD_MARKER.match(line))
        if _ORIGINAL_MARKER.match(line):
            # Only the first block can be what was forwarded: with no comment above it, or under Fw:.
            if has_own_text and not forward_by_subject:
                break
            forward_by_subject = False
            is_forward = True
        if is_forward:
            i += 1
            # Lotus wraps its long marker line: the rest of it ends in dashes.
            if not re.search(r"-{3,}\s*$", line) and i < n and re.search(r"-{3,}\s*$", lines[i]):
                i += 1
            while i < n and not lines[i].strip():
                i += 1
            if i < n:
                i = _header_block_end(lines, i, lenient=True) or i
            segments.append([])
            continue
        if _WROTE_LINE.match(line) and len(line) <= 200:
            break
        if line.lstrip().startswith(">"):
            i += 1
            continue
        if _HEADER_LINE.match(line) or (
            i + 1 < n and (_DATE_TIME_LINE.match(lines[i + 1]) or _ON_DATE_LINE.search(line))
        ):
            end = _header_block_end(lines, i)
            if end is not None:
                if has_own_text:
                    break  # own text above it: what follows is the quoted earlier message
                # A header block before any own text is a memo header or a forward without marker.
                i = end
                continue
        segments[-1].append(line)
        has_own_text = has_own_text or bool(line.strip())
        i += 1
    cleaned = (_clean_segment("\n".join(segment)) for segment in segments)
    return normalize_whitespace("\n\n".join(part for part in cleaned if part))


# --- message parsing -----------------------------------------------------------------------------


def _html_to_text(html: str) -> str:
    soup = BeautifulSoup(html, "lxml")
    for tag in soup(["script", "style", "head"]):
        tag.decompose()
    return soup.get_text("\n")


def _decode_part(payload: bytes, charset: str | None) -> str:
    """Decode a text part; western labels that do not fit are read as cp1252, as mail clients do."""
    if charset is None or charset.lower().replace("_", "-") in _WESTERN_CHARSETS:
        # Strict utf-8 rarely fits text that is not utf-8; cp1252 then covers ascii and latin-1 labels.
        for candidate in ("utf-8", "cp1252", charset or "latin-1"):
            try:
                if b"\x00" not in payload:
                    return payload.decode(candidate)
            except (LookupError, UnicodeDecodeError):
                continue
    return decode(payload, charset)


def _body_text(message: EmailMessage, warnings: list[str]) -> str:
    """The message's text: the first text/plain part, else the first text/html part as text."""
    found: dict[str, str] = {}
    for part in message.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html") or ctype in found:
            continue
        try:
            payload = part.get_payload(decode=True) or b""
            text = _decode_part(payload, part.get_content_charset()) if payload.strip() else ""
        except UnreadableInput as exc:
            warnings.append(f"{ctype} part skipped: {exc}")
            continue
        except (LookupError, ValueError, TypeError) as exc:
            warnings.append(f"{ctype} part unreadable: {exc}")
            continue
        found[ctype] = text
    if "text/plain" in found and found["text/plain"].strip():
        return found["text/plain"]
    if "text/html" in found:
        return _html_to_text(found["text/html"])
    return found.get("text/plain", "")


def _header(message: EmailMessage, name: str) -> str:
    """A header as text; malformed headers fall back to their raw value rather than raising."""
    try:
        value = message.get(name)
    except (ValueError, TypeError, IndexError, AttributeError):
        value = next((raw for key, raw in message.raw_items() if key.lower() == name.lower()), None)
    return " ".join(str(value).split()) if value is not None else ""


def _addresses(value: str, names: dict[str, str] | None = None) -> list[str]:
    """The addresses in a header, lower-cased, each once; their display names go into `names`."""
    found: list[str] = []
    for name, address in email.utils.getaddresses([value]):
        address = address.strip().lower()
        if address and address not in found:
            found.append(address)
            name = " ".join(name.strip().strip("'\"").split())
            if names is not None and name and name.lower() != address:
                names.setdefault(address, name)
    return found


# Headers by which a list server or an automatic sender marks its mail (RFC 2369, RFC 3834).
_BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})


def bulk_marker(message: EmailMessage) -> str | None:
    """Why the message is bulk mail (a list, a newsletter, an automatic reply), or None."""
    if _header(message, "List-Id") or _header(message, "List-Unsubscribe"):
        return "list"
    if _header(message, "Precedence").lower() in _BULK_PRECEDENCE:
        return "precedence"
    auto = _header(message, "Auto-Submitted").lower()
    if auto and auto != "no":
        return "auto-submitted"
    return None


def _message_ids(value: str) -> list[str]:
    return re.findall(r"<([^<>\s]+)>", value) or value.split()


def _timestamp(value: str, warnings: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        stamp = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        warnings.append(f"unparsable Date header {value!r}")
        return None
    if stamp.tzinfo is None:  # `-0000`: the time is UTC, the sender's zone unknown
        stamp = stamp.replace(tzinfo=UTC)
    if is_placeholder(stamp):
        # Enron's missing dates read 1979-12-31 or 1980-01-01: the message is undated, not 20 years early.
        warnings.append("placeholder date")
        return None
    return stamp


def subject_key(subject: str) -> str:
    """Thread key from a subject: reply/forward prefixes removed, case and spacing folded."""
    return " ".join(_SUBJECT_PREFIX.sub("", subject).lower().split())


def _has_headers(message: EmailMessage) -> bool:
    return any(key.lower() in _KNOWN_HEADERS for key in message)


def repair_headers(raw: bytes) -> bytes:
    """Drop blank lines before the headers and the obsolete white space before a field's colon.

    Python's parser would take a leading blank line for the end of an empty header section, and
    `From  : John` for an mbox envelope line and `Subject  :` for a field named `Subject  `.
    """
    raw = _LEADING_BLANKS.sub(b"", raw)
    end = re.search(rb"\r?\n\r?\n", raw)
    head, rest = (raw[: end.start()], raw[end.start() :]) if end else (raw, b"")
    return _OBSOLETE_FIELD.sub(rb"\1:", head) + rest


def _parse_message(raw: bytes, index: int) -> EmailMessage:
    try:
        message = BytesParser(policy=policy.default).parsebytes(repair_headers(raw))
    except Exception as exc:  # the stdlib parser is lenient; anything it raises means garbage input
        raise UnreadableInput("parse", f"message {index}: {exc}") from exc
    if not _has_headers(message):
        raise UnreadableInput("parse", f"message {index} has no RFC 822 headers")
    return message


def _message_item(source: Source, raw: bytes, index: int, *, folder_team: str | None = None) -> Item | None:
    """Build the item for one raw message; None when it holds neither a subject nor any text."""
    return message_item(source, _parse_message(raw, index), index, folder_team=folder_team)


def message_item(
    source: Source,
    message: EmailMessage,
    index: int,
    *,
    folder_team: str | None = None,
    body_text: str | None = None,
    warnings: list[str] | None = None,
    key: str | None = None,
) -> Item | None:
    """The item for one parsed message (`body_text` replaces its MIME body, as Outlook items give it).

    None when the message holds neither a subject nor any text. The item is named by `key`, else its
    Message-ID, else `index` (its position in the file).
    """
    warnings = list(warnings or [])
    warnings.extend(f"MIME defect: {type(defect).__name__}" for defect in message.defects)
    subject = _header(message, "Subject")
    raw_body = _body_text(message, warnings) if body_text is None else body_text
    body = strip_reply(raw_body, subject)
    if not body:
        if not subject:
            return None
        warnings.append("empty body after removing quoted text")
    text = f"{subject}\n\n{body}".strip()
    names: dict[str, str] = {}
    sender = _addresses(_header(message, "From"), names)
    date_value = _header(message, "Date")
    timestamp = _timestamp(date_value, warnings)
    recipients = _addresses(_header(message, "To"), names)
    if not recipients:
        recipients = _addresses(_header(message, "X-To"), names)
    recipients += [a for a in _addresses(_header(message, "Cc"), names) if a not in recipients]
    message_id = next(iter(_message_ids(_header(message, "Message-ID"))), "")
    references = _message_ids(_header(message, "References"))
    reply_to = next(iter(_message_ids(_header(message, "In-Reply-To"))), None)
    # The thread as far as this one message tells; `pipeline.ingest.threads.resolve_threads` gives every
    # message of a conversation its root's id once all messages are known.
    if references:
        thread: str | None = references[0]
    elif reply_to:
        thread = reply_to
    elif subject_key(subject):
        # Enron messages carry no References: group replies by their subject instead.
        thread = f"subject:{subject_key(subject)}"
    else:
        thread = message_id or None
    origin = _header(message, "X-Origin").upper()
    dedup = "\x1f".join(
        [
            sender[0] if sender else "",
            timestamp.astimezone(UTC).isoformat() if timestamp else date_value,
            " ".join(subject.split()),
            " ".join(body[:_DEDUP_BODY_CHARS].split()),  # copies differ in line wrapping
        ]
    )
    meta = {
        "message_id": message_id,
        # What `pipeline.ingest.threads` needs to find the thread's root across messages.
        "references": " ".join(references),
        "in_reply_to": reply_to or "",
        "subject_key": subject_key(subject),
        # Display names by address, for one person per identity (`pipeline.aggregate.people`).
        "names": json.dumps(names, ensure_ascii=False, sort_keys=True) if names else "",
        "bulk": bulk_marker(message) or "",
        "date": date_value if timestamp is None else "",
        "x_origin": origin,
        "x_folder": _header(message, "X-Folder"),
        "x_from": _header(message, "X-From"),
        "dedup_key": hashlib.sha1(dedup.encode("utf-8", "surrogatepass")).hexdigest(),
    }
    return Item(
        id=source.item_id(key or message_id or index),
        text=text,
        source="email",
        path=str(source.path),
        title=subject or None,
        timestamp=timestamp,
        authors=sender,
        participants=recipients,
        team=origin or folder_team,
        thread=thread,
        parent=reply_to,
        position=index,
        medium=source.options.media.get("email", "virtual"),
        meta={key: value for key, value in meta.items() if value},
        warnings=warnings,
    )


# --- container formats ---------------------------------------------------------------------------


def _looks_like_headers(head: bytes, min_known: int = 2, *, cut: bool | None = None) -> bool:
    """True when the head (after blank lines) opens with an RFC 822 header section naming known headers.

    The section may run past a `cut` head (a long `Received:` chain): 4 KiB of nothing but header
    fields then need only one known name.
    """
    cut = len(head) >= _SNIFF_BYTES if cut is None else cut
    names: set[str] = set()
    lines = _LEADING_BLANKS.sub(b"", head).replace(b"\r\n", b"\n").split(b"\n")
    if cut and not head.endswith(b"\n"):
        lines = lines[:-1]  # the last line of a cut head may be partial
    for number, line in enumerate(lines):
        if not line:
            break
        if line[:1] in (b" ", b"\t"):  # a folded line; the obsolete syntax allows one of white space only
            if number == 0:
                return False
            continue
        match = _HEADER_FIELD.match(line)
        if not match:
            return False
        names.add(match.group(1).decode("ascii").lower())
    else:
        min_known = 1 if cut else min_known
    return len(names & _KNOWN_HEADERS) >= min_known


def _first_line(head: bytes) -> bytes:
    return _LEADING_BLANKS.sub(b"", head).split(b"\n", 1)[0]


def _is_mbox_head(head: bytes) -> bool:
    cut = len(head) >= _SNIFF_BYTES
    first, _, rest = _LEADING_BLANKS.sub(b"", head).partition(b"\n")
    return bool(_MBOX_FROM.match(first)) and _looks_like_headers(rest, cut=cut)


def sniff(source: Source) -> bool:
    """Claim `.eml`/mbox suffixes, and any other file whose head reads as RFC 822 or mbox."""
    if source.path.suffix.lower() in _CLAIMED_SUFFIXES:
        return True
    head = source.head()
    if not head or head.startswith(_OLE_MAGIC) or b"\x00" in head:
        return False
    return _is_mbox_head(head) or _looks_like_headers(head)


def _maildir_team(source: Source) -> str | None:
    parent = source.path.parent
    if parent.name in ("cur", "new"):
        return parent.parent.name or None
    return None


def _mbox_messages(source: Source) -> Iterator[tuple[bytes, bool]]:
    """Stream an mbox: yield (message bytes, truncated) split on `From ` separator lines."""
    limit = source.options.max_file_bytes
    if source.size > source.options.max_archive_bytes:
        raise UnreadableInput(
            "too-large", f"{source.size} bytes is over the {source.options.max_archive_bytes}-byte limit"
        )
    chunks: list[bytes] = []
    size = 0
    truncated = False
    started = False
    with source.path.open("rb") as fh:
        # A `From ` line separates messages when a header field follows it: Netscape and Mozilla write
        # `From - ` with no blank line before it, and a body line that merely starts with "From " is
        # not followed by one.
        for line, following in itertools.pairwise(itertools.chain(fh, [b""])):
            if _MBOX_FROM.match(line) and _HEADER_FIELD.match(following):
                if started:
                    yield b"".join(chunks), truncated
                elif chunks and b"".join(chunks).strip():
                    logger.warning("%s: %d bytes before the first message skipped", source.path, size)
                chunks, size, truncated, started = [], 0, False, True
                continue
            if size + len(line) > limit:
                truncated = True
                continue
            # mboxrd/mboxo escape body lines that start with `From `.
            if line.startswith(b">") and line.lstrip(b">").startswith(b"From "):
                line = line[1:]
            chunks.append(line)
            size += len(line)
    if started:
        yield b"".join(chunks), truncated


def _read_mbox(source: Source) -> Iterator[Item]:
    count = 0
    for index, (raw, truncated) in enumerate(_mbox_messages(source)):
        try:
            item = _message_item(source, raw, index)
        except UnreadableInput as exc:
            logger.warning("%s: message %d skipped: %s", source.path, index, exc)
            continue
        if item is None:
            logger.warning("%s: message %d has neither subject nor text", source.path, index)
            continue
        if truncated:
            item.warnings.append(f"message cut at the {source.options.max_file_bytes}-byte limit")
        count += 1
        yield item
    if count == 0:
        raise UnreadableInput("parse", "no readable messages in the mbox")


def _read_single(source: Source) -> Iterator[Item]:
    raw = source.read_bytes()
    if not raw.strip():
        raise UnreadableInput("empty", "the file is empty")
    if b"\x00" in raw[:8192] or raw.startswith(_OLE_MAGIC):
        raise UnreadableInput("binary", "the file holds binary data, not an RFC 822 message")
    normalized = repair_headers(raw).replace(b"\r\n", b"\n")
    if b"\n\n" not in normalized.strip(b"\n"):
        # Headers only: complete when every line is a header field or its continuation.
        last = normalized.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        if not raw.endswith(b"\n") or not (_HEADER_FIELD.match(last) or last[:1] in (b" ", b"\t")):
            raise UnreadableInput("truncated", "the message ends inside its header section")
    # A suffix that names a message (.eml) needs one known header; content alone needs two.
    min_known = 1 if source.path.suffix.lower() in (".eml", ".msg") else 2
    if not _looks_like_headers(normalized[:4096], min_known):
        raise UnreadableInput("parse", "the file does not start with RFC 822 headers")
    item = _message_item(source, raw, 0, folder_team=_maildir_team(source))
    if item is None:
        raise UnreadableInput("empty", "the message has neither a subject nor any text")
    yield item


# `.msg` here is a text message under that name; Outlook's binary `.msg` goes to pipeline/ingest/outlook.py.
@register("email", suffixes=(".txt", ".eml", ".mbox", ".mbx", ".msg"), sniff=sniff)
def read(source: Source) -> Iterator[Item]:
    """Read one email file: a single RFC 822 message (.eml, Maildir, raw .txt) or an mbox archive."""
    if source.path.suffix.lower() in _MBOX_SUFFIXES or _MBOX_FROM.match(_first_line(source.head())):
        yield from _read_mbox(source)
    else:
        yield from _read_single(source)
