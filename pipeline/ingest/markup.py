"""Markdown and reStructuredText documents turned into `Block`s and metadata.

Markdown is parsed by markdown-it-py (CommonMark, with tables): the parser decides what is a heading,
a code fence, a list, a table, an HTML block or a link reference definition; the text of each
paragraph, list or table is then read from its source lines, wrapped lines joined for prose and kept
for lists and tables, with links reduced to their text. A paragraph that runs straight into a list
or a table (no blank line between them, as in "The advantages are:" followed by bullets) stays one
block with it, so that the introduction is never windowed apart from its list.

reStructuredText is read by a line parser of its own (`parse_rst` says why not docutils).

Format-specific metadata understood here: YAML front matter, the PEP header block and the Rust RFC
header list.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from pipeline.ingest.base import normalize_whitespace
from pipeline.ingest.dates import as_utc, date_in_text
from pipeline.ingest.sections import Block, ParsedDocument, normalize_newlines, title_from_lone_h1

MAX_FRONT_MATTER_CHARS = 64 * 1024

# ---------------------------------------------------------------------------------------------
# Markdown

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
        if key in data and (stamp := as_utc(data[key])):
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


# CommonMark with GitHub's tables. Nothing in a document is fetched or run: links and images are read as text.
_MARKDOWN = MarkdownIt("commonmark").enable("table")


def parse_markdown(text: str, path: Path) -> ParsedDocument:
    """Blocks and metadata of a Markdown document: structure from markdown-it-py, text from the source lines."""
    doc = ParsedDocument([])
    text = normalize_newlines(text)
    text = _front_matter(text, doc)
    text = _rfc_header(text, path, doc)
    text = strip_html_comments(text)
    lines = text.split("\n")
    blocks: list[Block] = []
    run: list[int] = []  # the [start, end) lines of adjacent top-level blocks, read as one stretch of text
    fences: list[Token] = []  # code fences nested in that stretch (in a list item or a quote)

    def flush() -> None:
        if run:
            pos = run[0]
            for fence in fences:
                _md_text(lines[pos : fence.map[0]], blocks)  # type: ignore[index]
                _md_fence(fence, lines, blocks, doc)
                pos = fence.map[1]  # type: ignore[index]
            _md_text(lines[pos : run[1]], blocks)
            run.clear()
            fences.clear()

    tokens = _MARKDOWN.parse(text)
    for n, token in enumerate(tokens):
        if token.map is None:
            continue  # closing tokens
        if token.level > 0:
            if token.type == "fence" and run:
                fences.append(token)
            continue
        if token.type == "heading_open":
            flush()
            if title := normalize_whitespace(_md_inline(tokens[n + 1].content).replace("\n", " ")):
                blocks.append(Block(title, int(token.tag[1])))
        elif token.type == "fence":
            flush()
            _md_fence(token, lines, blocks, doc)
        elif token.type == "hr":
            flush()
        else:  # a paragraph, list, table, quote, HTML or indented code block
            start, end = token.map
            if run and start != run[1]:
                flush()
            run[:] = [run[0] if run else start, end]
    flush()
    doc.blocks = blocks
    title_from_lone_h1(doc)
    return doc


def _md_text(lines: list[str], blocks: list[Block]) -> None:
    """Blocks of a stretch of source lines: one per run of non-blank lines, links reduced to their text."""
    para: list[str] = []
    for line in [*lines, ""]:
        if not line.strip() or _HR.match(line):
            if para and (joined := normalize_whitespace(_md_inline(reflow(para)))):
                blocks.append(Block(joined))
            para.clear()
        elif not _REF_DEF.match(line):
            para.append(line)


def _md_fence(token: Token, lines: list[str], blocks: list[Block], doc: ParsedDocument) -> None:
    """A fenced code block, taken verbatim from its source lines."""
    start, end = token.map  # type: ignore[misc]
    closing = re.compile(rf"\s*{re.escape(token.markup[0])}{{{len(token.markup)},}}\s*")
    closed = end - start >= 2 and closing.fullmatch(lines[end - 1]) is not None
    if not closed:
        doc.warnings.append("a code block is not closed")
    code = lines[start + 1 : end - 1 if closed else end]
    if "".join(code).strip():
        blocks.append(Block("\n".join(code).strip("\n")))


def reflow(lines: list[str]) -> str:
    """Join a prose paragraph's wrapped lines; keep the line breaks of lists, tables and indented blocks."""
    if lines[0][:1].isspace() or any(_LIST_OR_TABLE.match(line) for line in lines):
        return "\n".join(lines)
    return " ".join(line.strip() for line in lines)


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
    """Blocks and metadata of a reStructuredText document (with the PEP header block when present).

    A line parser rather than docutils, measured (issue 24): on the 737 PEPs a docutils doctree keeps the
    section titles but rewrites the text of most sections (list items re-wrapped and renumbered, emphasis
    and role markup resolved differently, footnotes and admonitions placed elsewhere), so 293 of the 474
    labelled PEP items of data/seci would no longer match their text. Nothing here reads another file or
    runs anything: `include`, `raw` and other directives are text or dropped, never acted on.
    """
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
        title_from_lone_h1(doc)
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
