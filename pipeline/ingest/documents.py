"""Documents (Markdown, reStructuredText, HTML, DOCX, PDF, plain text) cut into sections.

One item is one section, a heading plus its text (SECI_LABELING_GUIDE.md, section 1). Every format
is first turned into a flat list of `Block`s (headings and paragraphs) plus document metadata;
`split_sections` then does the cutting the same way for all of them: sections too short to label
on their own are merged into the next one, sections too long are cut into windows of whole
paragraphs, and documents without headings become windows of paragraphs.

Format-specific metadata understood here: YAML front matter, the PEP header block, the Rust RFC
header list, dates in minutes' file names (`2015-05-27.md`, `interim-20-05/`) or first headings
(pipeline/ingest/dates.py: a date in the file name or a folder above it, ISO or spelled), and
attendee lists ("Present", "Attendees", "Participants", IETF "Blue Sheet").
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml

from pipeline.ingest.base import Source, UnreadableInput, normalize_whitespace, register, word_count
from pipeline.ingest.dates import as_utc, date_from_path, date_in_text, utc_date
from pipeline.items import Item

log = logging.getLogger(__name__)

TITLE_SEP = " › "
MAX_FRONT_MATTER_CHARS = 64 * 1024
MAX_PDF_PAGES = 2000
# A DOCX is a zip: these bound what python-docx may inflate, whatever the compressed size says.
MAX_DOCX_ENTRIES = 2000
MAX_DOCX_UNCOMPRESSED = 256 * 1024 * 1024
MAX_PARTICIPANTS = 200


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


# ---------------------------------------------------------------------------------------------
# Metadata helpers

_MINUTES_HINT = re.compile(r"minutes|meeting", re.IGNORECASE)
# The date helpers live in pipeline/ingest/dates.py (meetings use them too); these names stay for callers.
_utc_date = utc_date
_as_utc = as_utc


def _date_in_opening(doc: ParsedDocument, within: datetime | None) -> datetime | None:
    """The first date in the title, headings or opening paragraphs (minutes date their sessions there)."""
    texts = [doc.title or ""] + [b.text[:300] for i, b in enumerate(doc.blocks[:200]) if b.is_heading or i < 5]
    for text in texts:
        stamp = date_in_text(text)
        if stamp and (within is None or (stamp.year, stamp.month) == (within.year, within.month)):
            return stamp
    return None


_ATTENDEE_HEADING = re.compile(r"^(present|attendees|attendance|participants|in attendance|.*blue ?sheets?)\b",
                               re.IGNORECASE)  # fmt: skip
_ATTENDEE_LABEL = re.compile(
    r"^\**(present|attendees|attendance|participants)\**\s*:\**\s*(.*)$", re.IGNORECASE | re.DOTALL
)
_NAME_PARTICLES = {"van", "von", "de", "der", "den", "da", "di", "du", "del", "la", "le", "bin", "al"}
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$")


def _clean_name(raw: str) -> str | None:
    """A person's name from an attendee line such as `Yagiz Nizipli @anonrig (voting member)`."""
    text = re.sub(r"\([^)]*\)|\[[^\]]*\]|\(.*$", " ", raw.replace("*", "").replace("_", " "))
    text = re.split(r"\s+[-–—]\s+|[,;:/]", text)[0]
    handle = re.search(r"@([A-Za-z0-9][A-Za-z0-9-]*)", text)
    name = " ".join(re.sub(r"@[\w-]+", " ", text).split())
    if not name and handle:
        name = "@" + handle[1]
    if not name or len(name) > 60 or not 1 <= len(name.split()) <= 6:
        return None
    if re.search(r"https?:|mailto|\d{2}|[<>=|#.!?]", name) or name.lower() in {"none", "tbd", "n/a", "everyone"}:
        return None
    # Names are capitalised (or written in an uncased script); lines of prose under the heading are not.
    if not all(w.startswith("@") or w in _NAME_PARTICLES or w[0].isupper() or w[0].lower() == w[0].upper()
               for w in name.split()):  # fmt: skip
        return None
    return name


def find_participants(blocks: Sequence[Block]) -> list[str]:
    """Names listed under an attendee heading or after an `Attendees:` label; empty when none is found."""
    names: list[str] = []
    in_list_level = 0  # the heading level of the attendee section being read, 0 when outside one
    for block in blocks:
        if block.is_heading:
            if in_list_level and block.level > in_list_level:
                continue  # a sub-heading ("TSC members", "Guests") inside the attendee section
            in_list_level = block.level if _ATTENDEE_HEADING.match(block.text) else 0
            continue
        lines = block.text.split("\n")
        if not in_list_level:
            label = _ATTENDEE_LABEL.match(block.text.strip())
            if not label:
                continue
            rest = label[2].strip()
            lines = rest.split("\n") if "\n" in rest or _BULLET.match(rest) else rest.split(",")
        for line in lines:
            bullet = _BULLET.match(line)
            item = bullet[1] if bullet else (line if not in_list_level else "")
            if item and (name := _clean_name(item)) and name not in names:
                names.append(name)
    return names[:MAX_PARTICIPANTS]


# ---------------------------------------------------------------------------------------------
# Markdown

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*\S+")
_HR = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_LIST_OR_TABLE = re.compile(r"^\s*(?:[-*+]\s|\d+[.)]\s|\|)")
_HTML_TAGS = ("a|b|i|em|strong|br|hr|p|div|span|sup|sub|img|details|summary|kbd|code|pre|center|table|thead|tbody"
              "|tr|td|th|ul|ol|li|dl|dt|dd|h[1-6]|small|big|u|s|del|ins|font|blockquote|figure|figcaption")  # fmt: skip
_MD_INLINE = (
    (re.compile(r"!\[([^\]]*)\]\([^)\s]*(?:\s+\"[^\"]*\")?\)"), r"\1"),
    (re.compile(r"\[([^\]]+)\]\([^)\s]*(?:\s+\"[^\"]*\")?\)"), r"\1"),
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),
    (re.compile(rf"</?(?:{_HTML_TAGS})(?:\s[^<>]*)?/?>", re.IGNORECASE), ""),
    (re.compile(r"\*\*|__"), ""),
    (re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>])"), r"\1"),
)
_RFC_KEYS = {"feature name": "feature_name", "start date": "start_date", "rfc pr": "rfc_pr", "rust issue": "rust_issue"}
_RFC_LINE = re.compile(r"^\s*[-*]\s*([A-Za-z ]+?)\s*:\s*(.*)$")
_RFC_FILE = re.compile(r"^(\d{4})-(.+)$")


def strip_html_comments(text: str) -> str:
    """Drop `<!-- ... -->` comments, and doctoc's generated table of contents between its markers."""
    out: list[str] = []
    pos = 0
    while (start := text.find("<!--", pos)) != -1:
        end = text.find("-->", start + 4)
        if end == -1:
            break
        out.append(text[pos:start])
        pos = end + 3
        if "START doctoc" in text[start:end]:
            closing = text.find("<!-- END doctoc", pos)
            if closing != -1:
                stop = text.find("-->", closing)
                pos = stop + 3 if stop != -1 else pos
    out.append(text[pos:])
    return "".join(out)


def _md_inline(text: str) -> str:
    for pattern, replacement in _MD_INLINE:
        text = pattern.sub(replacement, text)
    return text


def _front_matter(text: str, doc: ParsedDocument) -> str:
    """Take a leading YAML `---` block into the document's metadata; return the rest."""
    if not text.startswith("---\n"):
        return text
    end = re.search(r"^(?:---|\.\.\.)[ \t]*$", text[4 : MAX_FRONT_MATTER_CHARS + 4], re.MULTILINE)
    if end is None:
        return text
    body, rest = text[4 : 4 + end.start()], text[4 + end.end() :]
    try:
        data = yaml.safe_load(body)
    except yaml.YAMLError as exc:
        doc.warnings.append(f"front matter is not valid YAML: {str(exc).splitlines()[0]}")
        return rest
    if not isinstance(data, dict):
        return rest
    if isinstance(data.get("title"), str | int | float):
        doc.title = str(data["title"]).strip()
    for key in ("date", "created", "published"):
        if key in data and (stamp := _as_utc(data[key])):
            doc.timestamp = stamp
            break
    # Only plain strings are taken: YAML aliases could otherwise expand into a huge nested value.
    for key in ("author", "authors"):
        value = data.get(key)
        values = value if isinstance(value, list) else [value]
        doc.authors.extend(v.strip() for v in values[:50] if isinstance(v, str) and v.strip())
    return rest


def _rfc_header(text: str, path: Path, doc: ParsedDocument) -> str:
    """Take the Rust RFC header list (`- Start Date: 2014-03-11`, `- RFC PR: ...`); return the rest."""
    lines = text.lstrip("\n").split("\n")
    found: dict[str, str] = {}
    n = 0
    while n < len(lines) and (m := _RFC_LINE.match(lines[n])) and m[1].lower() in _RFC_KEYS:
        found[_RFC_KEYS[m[1].lower()]] = _md_inline(m[2]).strip()
        n += 1
    if "start_date" not in found and "rfc_pr" not in found:
        return text
    for key, value in found.items():
        if key != "start_date" and value:
            doc.meta[key] = value
    if stamp := date_in_text(found.get("start_date", "")):
        doc.timestamp = stamp
    elif found.get("start_date"):
        doc.warnings.append(f"unreadable RFC start date {found['start_date']!r}")
    if m := _RFC_FILE.match(path.stem):
        doc.meta["rfc"] = str(int(m[1]))
        doc.title = m[2].replace("-", " ").replace("_", " ")
    return "\n".join(lines[n:])


def parse_markdown(text: str, path: Path) -> ParsedDocument:
    """Blocks and metadata of a Markdown document."""
    doc = ParsedDocument([])
    text = normalize_newlines(text)
    text = _front_matter(text, doc)
    text = _rfc_header(text, path, doc)
    text = strip_html_comments(text)
    blocks: list[Block] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            joined = normalize_whitespace(_md_inline(reflow(para)))
            if joined:
                blocks.append(Block(joined))
            para.clear()

    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if fence := _FENCE.match(line):
            flush()
            marker = fence[1]
            code: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].lstrip().startswith(marker):
                code.append(lines[i])
                i += 1
            if i == len(lines):
                doc.warnings.append("a code block is not closed")
            if "".join(code).strip():
                blocks.append(Block("\n".join(code).strip("\n")))
        elif heading := _ATX.match(line):
            flush()
            if title := normalize_whitespace(_md_inline(heading[2] or "")):
                blocks.append(Block(title, len(heading[1])))
        elif (setext := _SETEXT.match(line)) and len(para) == 1 and not _LIST_OR_TABLE.match(para[0]):
            title = normalize_whitespace(_md_inline(para[0]))
            para.clear()
            if title:
                blocks.append(Block(title, 1 if setext[1][0] == "=" else 2))
        elif not line.strip() or _HR.match(line):
            flush()
        elif not _REF_DEF.match(line):
            para.append(line)
        i += 1
    flush()
    doc.blocks = blocks
    _title_from_lone_h1(doc)
    return doc


def _title_from_lone_h1(doc: ParsedDocument) -> None:
    """A document that opens with its only level-1 heading names itself there, rather than a section."""
    if doc.title or not doc.blocks or doc.blocks[0].level != 1:
        return
    if any(b.level == 1 for b in doc.blocks[1:]):
        return
    doc.title = doc.blocks.pop(0).text


def reflow(lines: list[str]) -> str:
    """Join a prose paragraph's wrapped lines; keep the line breaks of lists, tables and indented blocks."""
    if lines[0][:1].isspace() or any(_LIST_OR_TABLE.match(line) for line in lines):
        return "\n".join(lines)
    return " ".join(line.strip() for line in lines)


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# ---------------------------------------------------------------------------------------------
# reStructuredText

_RST_ADORN = re.compile(r"^([!-/:-@\[-`{-~])\1+\s*$")
_PEP_FIELD = re.compile(r"^([A-Za-z][A-Za-z-]*):\s*(.*)$")
_RST_INLINE = (
    (re.compile(r":(pep|rfc):`(\d+)`", re.IGNORECASE), lambda m: f"{m[1].upper()} {m[2]}"),
    (re.compile(r":[\w:+.-]+:`([^`<]*?)\s*<[^`>]*>`"), r"\1"),
    (re.compile(r":[\w:+.-]+:`~?([^`]*)`"), r"\1"),
    (re.compile(r"`([^`<]+?)\s*<[^`>]*>`__?"), r"\1"),
    (re.compile(r"`([^`]+)`__?"), r"\1"),
    (re.compile(r"``([^`]+)``"), r"\1"),
    (re.compile(r"\s?\[(?:\d+|#[\w-]*|\*)\]_"), ""),
    (re.compile(r"\*\*([^*]+)\*\*"), r"\1"),
)
_PEP_DATE_FORMATS = ("%d-%b-%Y", "%d-%B-%Y", "%Y-%m-%d", "%d %b %Y")


def _rst_inline(text: str) -> str:
    for pattern, replacement in _RST_INLINE:
        text = pattern.sub(replacement, text)
    return text


def _pep_header(lines: list[str], doc: ParsedDocument) -> int:
    """Read the PEP's `Field: value` header into the document; return the index of the first body line."""
    if not lines or not re.match(r"^PEP:\s*\d+", lines[0]):
        return 0
    fields: dict[str, str] = {}
    key = ""
    n = 0
    while n < len(lines) and lines[n].strip():
        line = lines[n]
        if line[0].isspace() and key:
            fields[key] += " " + line.strip()
        elif m := _PEP_FIELD.match(line):
            key = m[1].lower()
            fields[key] = m[2].strip()
        n += 1
    doc.meta["pep"] = str(int(fields["pep"])) if fields.get("pep", "").isdigit() else fields.get("pep", "")
    for name in ("status", "type", "created", "post-history", "discussions-to", "resolution"):
        if fields.get(name):
            doc.meta[name.replace("-", "_")] = fields[name]
    if fields.get("title"):
        doc.title = fields["title"]
    for author in fields.get("author", "").split(","):
        name = re.sub(r"<[^>]*>|\([^)]*@[^)]*\)", "", author).strip()
        if name:
            doc.authors.append(name)
    created = fields.get("created", "").strip()
    for fmt in _PEP_DATE_FORMATS:
        try:
            doc.timestamp = datetime.strptime(created, fmt).replace(tzinfo=UTC)
            break
        except ValueError:
            continue
    else:
        if created:
            doc.warnings.append(f"unreadable Created date {created!r}")
    return n


def parse_rst(text: str, path: Path) -> ParsedDocument:
    """Blocks and metadata of a reStructuredText document (with the PEP header block when present)."""
    doc = ParsedDocument([])
    lines = normalize_newlines(text).split("\n")
    i = _pep_header(lines, doc)
    styles: list[tuple[str, bool]] = []  # adornment styles in order of first use give heading levels
    blocks: list[Block] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            joined = normalize_whitespace(_rst_inline(reflow(para)))
            if joined:
                blocks.append(Block(joined))
            para.clear()

    def heading(title: str, char: str, overlined: bool) -> None:
        flush()
        style = (char, overlined)
        if style not in styles:
            styles.append(style)
        if title := normalize_whitespace(_rst_inline(title)):
            blocks.append(Block(title, min(styles.index(style) + 1, 6)))

    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        adorn = _RST_ADORN.match(line)
        title = lines[i + 1].strip() if i + 2 < len(lines) else ""
        if adorn and title and lines[i + 2].strip() == line.strip() and len(line.strip()) >= len(title):
            heading(title, adorn[1], True)
            i += 3
            continue
        under = _RST_ADORN.match(nxt)
        if (under and line.strip() and not para and not line[0].isspace() and not _RST_ADORN.match(line)
                and len(nxt.strip()) >= len(line.strip())):  # fmt: skip
            heading(line.strip(), under[1], False)
            i += 2
            continue
        if line.startswith(".."):
            flush()
            i = _rst_explicit(lines, i, blocks)
            continue
        if not line.strip() or adorn:
            flush()
        elif line.strip() != "::":
            para.append(line[:-1] if line.endswith("::") else line)
        i += 1
    flush()
    doc.blocks = blocks
    if not doc.title:
        _title_from_lone_h1(doc)
    return doc


def _indented_body(lines: list[str], i: int) -> tuple[list[str], int]:
    """The indented lines (blank lines included) that follow line i-1; returns them and the next index."""
    body: list[str] = []
    while i < len(lines) and (not lines[i].strip() or lines[i][0].isspace()):
        body.append(lines[i])
        i += 1
    return body, i


_RST_NO_PROSE = re.compile(r"^\.\.\s+(?:contents|toctree|image|figure|raw)::")


def _rst_explicit(lines: list[str], i: int, blocks: list[Block]) -> int:
    """Handle an explicit-markup line: keep footnotes and directive bodies, drop comments and targets."""
    line = lines[i]
    body, end = _indented_body(lines, i + 1)
    if m := re.match(r"^\.\.\s+\[([^\]]+)\]\s*(.*)$", line):  # a footnote or citation reads as text
        text = normalize_whitespace(_rst_inline(" ".join([m[2], *(b.strip() for b in body)])))
        if text:
            blocks.append(Block(f"[{m[1]}] {text}"))
        return end
    if re.match(r"^\.\.\s+[\w:.+-]+::", line) and not _RST_NO_PROSE.match(line):
        kept = [b for b in body if not re.match(r"^\s+:[\w -]+:", b)]
        text = normalize_whitespace(_rst_inline("\n".join(kept)))
        for para in re.split(r"\n\n+", text):
            if para.strip():
                blocks.append(Block(para))
    return end


# ---------------------------------------------------------------------------------------------
# HTML, DOCX, PDF

_HTML_BLOCKS = ("h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "blockquote", "dt", "dd", "tr", "figcaption")


def parse_html(data: bytes) -> ParsedDocument:
    """Blocks and metadata of an HTML page; scripts, styles and navigation are dropped."""
    from bs4 import BeautifulSoup

    try:
        soup = BeautifulSoup(data, "lxml")
    except Exception as exc:  # lxml and bs4 raise many types on broken markup; the file is unusable
        raise UnreadableInput("parse", f"HTML does not parse: {exc}") from exc
    for tag in soup(["script", "style", "nav", "noscript", "template", "iframe", "svg"]):
        tag.decompose()
    doc = ParsedDocument([])
    if soup.title and soup.title.string:
        doc.title = normalize_whitespace(soup.title.string)
    for meta in soup.find_all("meta"):
        name = str(meta.get("name") or meta.get("property") or "").lower()
        content = str(meta.get("content") or "").strip()
        if not content:
            continue
        if name in ("author", "dc.creator", "article:author"):
            doc.authors.extend(a.strip() for a in content.split(",") if a.strip())
        elif name in ("date", "dc.date", "article:published_time", "dcterms.created") and not doc.timestamp:
            doc.timestamp = _as_utc(content)
    body = soup.body or soup
    for el in body.find_all(_HTML_BLOCKS):
        if el.find_parent(_HTML_BLOCKS) is not None:
            continue  # its text is already in the enclosing block
        text = normalize_whitespace(el.get_text("\n" if el.name == "pre" else " ", strip=el.name != "pre"))
        if text:
            level = int(el.name[1]) if re.fullmatch(r"h[1-6]", el.name) else 0
            doc.blocks.append(Block(text, level))
    if not doc.blocks:  # pages that put their text straight into <div>s
        text = normalize_whitespace(body.get_text("\n"))
        doc.blocks = [Block(p) for p in re.split(r"\n\n+", text) if p.strip()]
    if not doc.title:
        _title_from_lone_h1(doc)
    return doc


def check_zip(data: bytes, max_entries: int = MAX_DOCX_ENTRIES, max_total: int = MAX_DOCX_UNCOMPRESSED) -> None:
    """Refuse a zip whose entry count or declared uncompressed size is over the bounds (zip bombs)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise UnreadableInput("parse", f"not a readable zip container: {exc}") from exc
    if len(infos) > max_entries:
        raise UnreadableInput("too-large", f"{len(infos)} zip entries, over the limit of {max_entries}")
    total = sum(info.file_size for info in infos)
    if total > max_total:
        raise UnreadableInput("too-large", f"{total} bytes uncompressed, over the limit of {max_total}")


def parse_docx(data: bytes) -> ParsedDocument:
    """Blocks and metadata of a Word document; headings come from the `Title` and `Heading N` styles."""
    check_zip(data)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises KeyError, ValueError, lxml errors... on broken packages
        raise UnreadableInput("parse", f"not a readable DOCX: {type(exc).__name__}: {exc}") from exc
    doc = ParsedDocument([])
    props = document.core_properties
    if props.title:
        doc.title = props.title.strip()
    if props.author:
        doc.authors = [a.strip() for a in re.split(r"[;,]", props.author) if a.strip()]
    doc.timestamp = _as_utc(props.created) if props.created else None
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            para = Paragraph(child, document)
            text = normalize_whitespace(para.text)
            style = (para.style.name if para.style is not None else "") or ""
            if not text:
                continue
            if style == "Title":
                doc.title = doc.title or text
            elif m := re.match(r"^Heading (\d)", style):
                doc.blocks.append(Block(text, min(int(m[1]), 6)))
            else:
                doc.blocks.append(Block(text))
        elif tag == "tbl":
            rows = [" | ".join(normalize_whitespace(c.text) for c in row.cells) for row in Table(child, document).rows]
            if text := "\n".join(r for r in rows if r.strip(" |")):
                doc.blocks.append(Block(text))
    return doc


def parse_pdf(data: bytes, max_pages: int = MAX_PDF_PAGES) -> ParsedDocument:
    """Paragraph blocks of a PDF's text layer (no headings); encrypted or broken files are unreadable."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise UnreadableInput("parse", "not a PDF (no %PDF header)")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        # Many PDFs are encrypted only to restrict printing or copying: their user password is empty.
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableInput("encrypted", "the PDF is encrypted with a password; decrypt it first")
        n_pages = len(reader.pages)
    except DependencyError as exc:  # AES needs the `cryptography` package, a dependency of seci
        raise UnreadableInput("encrypted", f"cannot decrypt the PDF: {exc}") from exc
    except UnreadableInput:
        raise
    except Exception as exc:  # pypdf raises many types (PdfReadError, ValueError, KeyError...) on broken files
        raise UnreadableInput("parse", f"not a readable PDF: {type(exc).__name__}: {exc}") from exc
    doc = ParsedDocument([])
    if n_pages > max_pages:
        doc.warnings.append(f"only the first {max_pages} of {n_pages} pages were read")
    failed = 0
    for page in reader.pages[:max_pages]:
        try:
            text = page.extract_text() or ""
        except Exception:  # one damaged page content stream must not lose the rest of the document
            failed += 1
            continue
        text = re.sub(r"(\w)-\n(\w)", r"\1\2", normalize_newlines(text))
        for para in re.split(r"\n\s*\n", text):
            if para := normalize_whitespace(para.replace("\n", " ")):
                doc.blocks.append(Block(para))
    if failed:
        doc.warnings.append(f"text of {failed} page(s) could not be extracted")
    if not doc.blocks:
        raise UnreadableInput("empty", "no text layer (scanned?)")
    try:
        info = reader.metadata
        if info is not None:
            doc.title = (info.title or "").strip() or None
            if info.author:
                doc.authors = [a.strip() for a in re.split(r"[;,]", info.author) if a.strip()]
            doc.timestamp = _as_utc(info.creation_date)
    except Exception as exc:  # a malformed info dictionary loses only the metadata
        doc.warnings.append(f"unreadable PDF metadata: {exc}")
    return doc


def parse_text(text: str) -> ParsedDocument:
    """Paragraph blocks of a plain-text document."""
    text = normalize_whitespace(normalize_newlines(text))
    return ParsedDocument([Block(p) for p in re.split(r"\n\n+", text) if p.strip()])


# ---------------------------------------------------------------------------------------------
# Items


def document_items(source: Source, doc: ParsedDocument) -> Iterator[Item]:
    """Section the parsed document and build its items; a document with no words is unreadable."""
    opts = source.options
    sections = split_sections(doc.blocks, opts.section_min_words, opts.section_max_words)
    if not sections:
        raise UnreadableInput("empty", "the document holds no text")
    title = doc.title or source.path.stem
    # Own metadata first, then a date in the file name or its folders (within the input: `source.key`).
    timestamp, exact = (doc.timestamp, True) if doc.timestamp else date_from_path(Path(source.key))
    if not exact and _MINUTES_HINT.search(f"{source.key} {title}"):
        # Minutes without a dated file name (IETF `ietf100/minutes.md`) usually date their first session.
        timestamp = _date_in_opening(doc, timestamp) or timestamp
    participants = doc.participants or find_participants(doc.blocks)
    for warning in doc.warnings:
        log.warning("%s: %s", source.path, warning)
    for index, section in enumerate(sections):
        heading = TITLE_SEP.join(section.path)
        meta = {"doc_title": title, "section": heading, **doc.meta}
        if section.parts > 1:
            meta["part"] = f"{section.part}/{section.parts}"
        yield Item(
            id=source.item_id(f"s{index}"),
            text=section.text,
            source="document",
            path=str(source.path),
            title=TITLE_SEP.join([title, *section.path]),
            timestamp=timestamp,
            authors=list(doc.authors),
            participants=list(participants),
            thread=source.key,
            position=index,
            medium=opts.media.get("document", "virtual"),
            meta=meta,
            warnings=list(doc.warnings) if index == 0 else [],
        )


@register("markdown", suffixes=(".md", ".markdown"))
def read_markdown(source: Source) -> Iterator[Item]:
    yield from document_items(source, parse_markdown(source.read_text(), source.path))


@register("rst", suffixes=(".rst",))
def read_rst(source: Source) -> Iterator[Item]:
    yield from document_items(source, parse_rst(source.read_text(), source.path))


@register("html", suffixes=(".html", ".htm"))
def read_html(source: Source) -> Iterator[Item]:
    data = source.read_bytes()
    if not data.strip():
        raise UnreadableInput("empty", "the file is empty")
    yield from document_items(source, parse_html(data))


@register("docx", suffixes=(".docx",))
def read_docx(source: Source) -> Iterator[Item]:
    data = source.read_bytes()
    if not data:
        raise UnreadableInput("empty", "the file is empty")
    yield from document_items(source, parse_docx(data))


@register("pdf", suffixes=(".pdf",))
def read_pdf(source: Source) -> Iterator[Item]:
    data = source.read_bytes()
    if not data.strip():
        raise UnreadableInput("empty", "the file is empty")
    yield from document_items(source, parse_pdf(data))


# Registered without a sniffer so that the email and transcript sniffers see `.txt` files first.
@register("text", suffixes=(".txt",))
def read_text(source: Source) -> Iterator[Item]:
    yield from document_items(source, parse_text(source.read_text()))
