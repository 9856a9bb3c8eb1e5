"""Tests of the document ingestor: formats, metadata, sectioning and hostile inputs."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.ingest import documents as docs
from pipeline.ingest.base import FORMATS, IngestOptions, Source, UnreadableInput, word_count
from pipeline.items import Item

FIXTURES = Path(__file__).parent / "fixtures" / "documents"


def shared_data() -> Path:
    env = os.environ.get("SECI_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def source(path: Path, key: str | None = None, **options: int) -> Source:
    return Source(path, key or f"docs/{path.name}", IngestOptions(**options))


READERS: dict[str, Callable[[Source], Iterator[Item]]] = {
    ".md": docs.read_markdown,
    ".rst": docs.read_rst,
    ".txt": docs.read_text,
    ".html": docs.read_html,
    ".docx": docs.read_docx,
    ".pdf": docs.read_pdf,
}


def read(path: Path, **options: int) -> list[Item]:
    return list(READERS[path.suffix](source(path, **options)))


def words(n: int, word: str = "word") -> str:
    return " ".join([word] * n)


# ---------------------------------------------------------------------------------------------
# Sectioning


def test_split_sections_merges_heading_only_section_into_child() -> None:
    blocks = [
        docs.Block("Rationale", 1),
        docs.Block("Alternatives", 2),
        docs.Block(words(150)),
        docs.Block("Other", 2),
        docs.Block(words(120)),
    ]
    sections = docs.split_sections(blocks, 100, 400)
    assert [s.path for s in sections] == [("Rationale", "Alternatives"), ("Rationale", "Other")]
    assert sections[0].text.startswith("Rationale\n\nAlternatives\n\n")


def test_split_sections_names_merged_siblings_and_folds_short_tail_back() -> None:
    blocks = [
        docs.Block("Links", 2),
        docs.Block("a b c"),
        docs.Block("Agenda", 2),
        docs.Block(words(200)),
        docs.Block("Copyright", 2),
        docs.Block("Public domain."),
    ]
    sections = docs.split_sections(blocks, 100, 400)
    assert len(sections) == 1
    assert sections[0].path == ("Links / Agenda",)
    assert sections[0].text.endswith("Copyright\n\nPublic domain.")


def test_split_sections_windows_long_section_at_paragraphs() -> None:
    paragraphs = [docs.Block(words(90, f"p{i}")) for i in range(10)]
    sections = docs.split_sections([docs.Block("Spec", 1), *paragraphs], 100, 400)
    assert len(sections) == 3
    assert all(s.path == ("Spec",) and s.parts == 3 for s in sections)
    assert [s.part for s in sections] == [1, 2, 3]
    for s in sections:
        assert s.words <= 400
        # never mid-paragraph: every paragraph is whole in exactly one window
        assert all(len(set(p.split())) == 1 and len(p.split()) == 90 for p in s.text.split("\n\n")[-1:])


def test_split_sections_cuts_a_huge_paragraph_at_sentences() -> None:
    sentence = "The " + words(28) + " end."
    big = " ".join([sentence] * 40)  # 1,200 words in one paragraph
    sections = docs.split_sections([docs.Block(big)], 100, 400)
    assert len(sections) == 3
    # a tail under a third of the minimum joins the window before it, which may pass the maximum by that much
    assert all(s.words <= 400 + 100 // 3 and s.text.endswith("end.") for s in sections)
    assert sum(s.words for s in sections) == 1200


def test_split_sections_without_headings_gives_windows() -> None:
    sections = docs.split_sections([docs.Block(words(60)) for _ in range(10)], 100, 400)
    assert all(s.path == () for s in sections)
    assert all(100 <= s.words <= 400 for s in sections)
    assert sum(s.words for s in sections) == 600


# ---------------------------------------------------------------------------------------------
# Formats from the shared corpora


def test_pep_header_and_sections() -> None:
    items = read(FIXTURES / "pep-0008.rst")
    first = items[0]
    assert first.source == "document"
    assert first.authors == ["Guido van Rossum", "Barry Warsaw", "Alyssa Coghlan"]
    assert first.timestamp == datetime(2001, 7, 5, tzinfo=UTC)
    assert first.meta["pep"] == "8" and first.meta["status"] == "Active" and first.meta["type"] == "Process"
    assert first.title == "Style Guide for Python Code › Introduction"
    assert first.id == "docs/pep-0008.rst#s0" and first.thread == "docs/pep-0008.rst"
    assert [i.position for i in items] == list(range(len(items)))
    assert all(i.team is None for i in items)
    titles = [i.title for i in items]
    # "Tabs or Spaces?" is too short to label alone, so it is merged with its next sibling
    assert "Style Guide for Python Code › Code Lay-out › Tabs or Spaces? / Maximum Line Length" in titles
    # inline markup is stripped to prose: roles and footnote references disappear
    assert "PEP 257 (Docstring Conventions)" in first.text
    assert ":pep:" not in first.text and "[2]_" not in first.text
    assert all(word_count(i.text) <= 450 for i in items)


def test_short_pep_is_one_section_with_its_literal_block() -> None:
    items = read(FIXTURES / "pep-0020.rst")
    assert items[0].meta["doc_title"] == "The Zen of Python"
    assert any("Beautiful is better than ugly." in i.text for i in items)
    assert not any("Local Variables" in i.text for i in items)  # the trailing rst comment is dropped


def test_rust_rfc_header() -> None:
    items = read(FIXTURES / "0001-private-fields.md")
    first = items[0]
    assert first.timestamp == datetime(2014, 3, 11, tzinfo=UTC)
    assert first.meta["rfc"] == "1"
    assert first.meta["rfc_pr"] == "rust-lang/rfcs#1"
    assert first.title == "private fields › Summary / Motivation"  # the summary alone is too short
    assert "Start Date" not in first.text


def test_nodejs_minutes_date_and_attendees() -> None:
    items = read(FIXTURES / "2015-05-27.md")
    first = items[0]
    assert first.timestamp == datetime(2015, 5, 27, tzinfo=UTC)
    assert first.meta["doc_title"] == "Node Foundation TSC Meeting 2015-05-27"
    assert first.participants[:3] == ["Alexis Campailla", "Ben Noordhuis", "Bert Belder"]
    assert len(first.participants) == 14
    assert "(TSC)" not in " ".join(first.participants)
    # links lose their targets
    assert "[#23](" not in " ".join(i.text for i in items)


def test_eng_practices_page_markdown() -> None:
    items = read(FIXTURES / "pushback.md")
    assert items[0].meta["doc_title"] == "Handling pushback in code reviews"
    assert items[0].timestamp is None and items[0].authors == []
    assert any("Cleaning It Up Later" in (i.title or "") for i in items)
    assert not any("](" in i.text for i in items)


def test_markdown_front_matter_setext_and_fences(tmp_path: Path) -> None:
    md = tmp_path / "note.md"
    md.write_text(
        "---\ntitle: Design notes\ndate: 2021-03-04\nauthors: [Ann Lee, Bo Chen]\n---\n"
        "Overview\n========\n\n" + words(60, "overview") + "\n\n"
        "Details\n-------\n\n```python\n# not a heading\nprint(1)\n```\n\n" + words(60, "detail") + "\n"
        "<!-- a hidden comment -->\n",
        encoding="utf-8",
    )
    items = read(md)
    assert [i.meta["section"] for i in items] == ["Overview", "Overview › Details"]  # `===` is level 1, `---` 2
    assert items[0].title == "Design notes › Overview"
    assert items[0].timestamp == datetime(2021, 3, 4, tzinfo=UTC)
    assert items[0].authors == ["Ann Lee", "Bo Chen"]
    assert "# not a heading" in items[1].text
    assert "hidden comment" not in items[1].text


def test_bad_front_matter_is_a_warning(tmp_path: Path) -> None:
    md = tmp_path / "x.md"
    md.write_text("---\ntitle: [unclosed\n---\n# Head\n\n" + words(50) + "\n", encoding="utf-8")
    items = read(md)
    assert items and "front matter" in items[0].warnings[0]


def test_html_sections_without_scripts(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>Team handbook</title><meta name='author' content='Ann Lee, Bo Chen'>"
        "<meta name='date' content='2020-02-03'><script>var secret = 'SCRIPTTEXT';</script>"
        "<style>body{color:red}</style></head><body><nav>NAVTEXT</nav>"
        f"<h1>Onboarding</h1><p>{words(60, 'first')}</p><script>alert('SCRIPTTEXT')</script>"
        f"<h2>Tools</h2><ul><li>{words(30, 'tool')}</li><li>{words(30, 'other')}</li></ul></body></html>",
        encoding="utf-8",
    )
    items = read(page)
    text = " ".join(i.text for i in items)
    assert "SCRIPTTEXT" not in text and "NAVTEXT" not in text and "color" not in text
    assert [i.title for i in items] == ["Team handbook › Onboarding", "Team handbook › Onboarding › Tools"]
    assert items[0].authors == ["Ann Lee", "Bo Chen"]
    assert items[0].timestamp == datetime(2020, 2, 3, tzinfo=UTC)


def test_docx_headings_from_styles(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Quarterly review", style="Title")
    document.add_heading("Findings", level=1)
    document.add_paragraph(words(60, "finding"))
    document.add_heading("Next steps", level=2)
    document.add_paragraph(words(60, "step"))
    document.core_properties.author = "Ann Lee"
    path = tmp_path / "review.docx"
    document.save(str(path))
    items = read(path)
    assert [i.title for i in items] == ["Quarterly review › Findings", "Quarterly review › Findings › Next steps"]
    assert items[0].authors == ["Ann Lee"]


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF with a text layer, written by hand with a correct cross-reference table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_pdf_text_becomes_windows(tmp_path: Path) -> None:
    path = tmp_path / "memo.pdf"
    path.write_bytes(minimal_pdf("We tried the new deploy procedure and it worked."))
    items = read(path)
    assert len(items) == 1
    assert "tried the new deploy procedure" in items[0].text
    assert items[0].title == "memo"


def test_pdf_page_bound_is_a_warning(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    page = PdfReader(io.BytesIO(minimal_pdf("Page text here."))).pages[0]
    for _ in range(3):
        writer.add_page(page)
    buffer = io.BytesIO()
    writer.write(buffer)
    doc = docs.parse_pdf(buffer.getvalue(), max_pages=2)
    assert len(doc.blocks) == 2
    assert doc.warnings == ["only the first 2 of 3 pages were read"]


# ---------------------------------------------------------------------------------------------
# Hostile and broken inputs


def expect_unreadable(path: Path, reason: str, **options: int) -> UnreadableInput:
    with pytest.raises(UnreadableInput) as info:
        read(path, **options)
    assert info.value.reason == reason, str(info.value)
    return info.value


@pytest.mark.parametrize("suffix", [".md", ".rst", ".txt", ".html", ".docx", ".pdf"])
def test_empty_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    expect_unreadable(path, "empty")


def test_markdown_with_only_markup_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "blank.md"
    path.write_text("<!-- nothing here -->\n\n---\n", encoding="utf-8")
    expect_unreadable(path, "empty")


def test_binary_bytes_in_markdown(tmp_path: Path) -> None:
    path = tmp_path / "blob.md"
    path.write_bytes(b"# Title\n\x00\x01\x02\xff" * 50)
    expect_unreadable(path, "binary")


def test_not_a_pdf(tmp_path: Path) -> None:
    path = tmp_path / "fake.pdf"
    path.write_bytes(b"this is not a PDF at all")
    assert "no %PDF header" in str(expect_unreadable(path, "parse"))


@pytest.mark.parametrize("cut", [60, 200, 400])
def test_truncated_pdf(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "cut.pdf"
    path.write_bytes(minimal_pdf("Truncated text")[:cut])
    assert "not a readable PDF" in str(expect_unreadable(path, "parse"))


def encrypted_pdf(path: Path, text: str, user_password: str, algorithm: str) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(io.BytesIO(minimal_pdf(text))).pages[0])
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm=algorithm)
    with path.open("wb") as fh:
        writer.write(fh)
    return path


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128", "AES-256"])
def test_encrypted_pdf_with_a_password_is_an_encrypted_error(tmp_path: Path, algorithm: str) -> None:
    path = encrypted_pdf(tmp_path / "locked.pdf", "Secret text", "secret", algorithm)
    error = expect_unreadable(path, "encrypted")
    assert "password" in str(error)


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128", "AES-256"])
def test_encrypted_pdf_with_an_empty_user_password_is_read(tmp_path: Path, algorithm: str) -> None:
    # Encrypted only to restrict printing or copying; AES needs the `cryptography` dependency.
    path = encrypted_pdf(tmp_path / "restricted.pdf", "The retro found three causes of the outage.", "", algorithm)
    (item,) = read(path)
    assert "three causes of the outage" in item.text


def test_pdf_without_text_layer(tmp_path: Path) -> None:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    path = tmp_path / "scan.pdf"
    with path.open("wb") as fh:
        writer.write(fh)
    error = expect_unreadable(path, "empty")
    assert "no text layer" in str(error)


def test_corrupt_docx(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(b"PK\x03\x04 this is not really a zip file")
    expect_unreadable(path, "parse")


def test_docx_zip_without_word_parts(tmp_path: Path) -> None:
    path = tmp_path / "hollow.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("hello.txt", "no word document in here")
    expect_unreadable(path, "parse")


def test_zip_bomb_docx(tmp_path: Path) -> None:
    path = tmp_path / "bomb.docx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        # 300 MiB of zeros compress to a few hundred KiB: the declared sizes give it away before inflating
        for n in range(3):
            with archive.open(f"word/part{n}.xml", "w", force_zip64=True) as fh:
                chunk = b"\0" * (1024 * 1024)
                for _ in range(100):
                    fh.write(chunk)
    assert path.stat().st_size < 2 * 1024 * 1024
    error = expect_unreadable(path, "too-large")
    assert "uncompressed" in str(error)


def test_zip_with_too_many_entries(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n in range(20):
            archive.writestr(f"f{n}", b"")
    with pytest.raises(UnreadableInput) as info:
        docs.check_zip(buffer.getvalue(), max_entries=10)
    assert info.value.reason == "too-large"


def test_over_the_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.md"
    path.write_text("# Big\n\n" + words(5000) + "\n", encoding="utf-8")
    expect_unreadable(path, "too-large", max_file_bytes=1024)


def test_unclosed_code_fence_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "fence.md"
    path.write_text("# Head\n\n" + words(50) + "\n\n```\ncode line\n", encoding="utf-8")
    items = read(path)
    assert "code line" in items[-1].text
    assert items[0].warnings == ["a code block is not closed"]


def test_formats_registered_and_txt_has_no_sniffer() -> None:
    by_name = {f.name: f for f in FORMATS}
    assert by_name["text"].suffixes == (".txt",) and by_name["text"].sniff is None
    assert set(by_name["markdown"].suffixes) == {".md", ".markdown"}
    for name, suffix in (("rst", ".rst"), ("html", ".htm"), ("docx", ".docx"), ("pdf", ".pdf")):
        assert suffix in by_name[name].suffixes


# ---------------------------------------------------------------------------------------------
# The shared corpora


@pytest.mark.corpus
def test_every_shared_document_reads() -> None:
    root = shared_data() / "documents"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    files = [p for p in sorted(root.rglob("*")) if p.suffix in (".md", ".rst", ".txt")]
    assert len(files) > 1500
    unreadable = []
    for path in files:
        try:
            items = read(path)
        except UnreadableInput as error:
            unreadable.append((path.name, error.reason))
            continue
        assert items, path
        assert all(i.text.strip() and i.source == "document" for i in items), path
    # PEP 210 holds only its header and a `.. rejected::` marker
    assert unreadable == [("pep-0210.rst", "empty")]
