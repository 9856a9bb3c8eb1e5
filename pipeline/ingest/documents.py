"""Documents (Markdown, reStructuredText, HTML, DOCX, PDF, plain text) cut into sections, one item each.

Each format is first turned into a `ParsedDocument`, a flat list of `Block`s (headings and paragraphs)
plus metadata: Markdown and reStructuredText in pipeline/ingest/markup.py, HTML, DOCX, PDF and plain
text here. pipeline/ingest/sections.py then cuts the blocks the same way for every format, and
`document_items` builds the items.

Metadata understood here, for every format: dates in minutes' file names (`2015-05-27.md`,
`interim-20-05/`) or first headings (pipeline/ingest/dates.py: a date in the file name or a folder
above it, ISO or spelled), and attendee lists ("Present", "Attendees", "Participants", IETF "Blue
Sheet").
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from pipeline.ingest.base import Source, UnreadableInput, normalize_whitespace, register
from pipeline.ingest.dates import as_utc, date_from_path, date_in_text, utc_date
from pipeline.ingest.markup import parse_markdown, parse_rst, strip_html_comments
from pipeline.ingest.sections import (
    TITLE_SEP,
    Block,
    ParsedDocument,
    Section,
    merged_path,
    normalize_newlines,
    split_sections,
    title_from_lone_h1,
)
from pipeline.items import Item

# Callers and tests reach the whole document reader through this module.
__all__ = [
    "TITLE_SEP",
    "Block",
    "ParsedDocument",
    "Section",
    "check_zip",
    "document_items",
    "find_participants",
    "merged_path",
    "parse_docx",
    "parse_html",
    "parse_markdown",
    "parse_pdf",
    "parse_rst",
    "parse_text",
    "split_sections",
    "strip_html_comments",
]

log = logging.getLogger(__name__)

MAX_PDF_PAGES = 2000
# A DOCX is a zip: these bound what python-docx may inflate, whatever the compressed size says.
MAX_DOCX_ENTRIES = 2000
MAX_DOCX_UNCOMPRESSED = 256 * 1024 * 1024
MAX_PARTICIPANTS = 200


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
        title_from_lone_h1(doc)
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
