"""The ingest driver: dispatch, accounting for every input, duplicates, teams, JSONL items, the CLI."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.ingest import IngestOptions, IngestSummary, TeamRules, ingest
from pipeline.items import InputError, Item

FIXTURES = Path(__file__).parent / "fixtures"


def run(inputs: list[Path], **kwargs) -> tuple[list[Item], list[InputError], IngestSummary]:
    summary = IngestSummary()
    records = list(ingest(inputs, summary=summary, **kwargs))
    items = [r for r in records if isinstance(r, Item)]
    errors = [r for r in records if isinstance(r, InputError)]
    return items, errors, summary


def test_every_fixture_format_is_dispatched_to_its_reader(tmp_path: Path) -> None:
    items, _errors, summary = run([FIXTURES / "email", FIXTURES / "meetings", FIXTURES / "documents"])
    sources = {i.source for i in items}
    assert sources == {"email", "meeting", "document"}
    by_path = {Path(i.path).name: i.source for i in items}
    assert by_path["three.mbox"] == "email"
    assert by_path["1_135787.txt"] == "email"  # raw RFC 822 with a .txt suffix
    assert by_path["standup.txt"] == "meeting"  # `Speaker: text` lines
    assert by_path["teams.vtt"] == "meeting"
    assert by_path["Bed004.dadb"] == "meeting"
    assert by_path["pep-0008.rst"] == "document"
    # Every file is accounted for: read, a companion (Bed004.trans) or an error line.
    assert summary.files == summary.files_read + summary.companions + summary.errors
    assert summary.companions == 1
    assert summary.items == len(items)
    assert len({i.id for i in items}) == len(items)


def make_broken_folder(root: Path) -> dict[str, str]:
    """One broken file of each kind, and the reason the driver must give for it."""
    root.mkdir()
    (root / "empty.eml").write_bytes(b"")
    (root / "binary.vtt").write_bytes(b"WEBVTT\x00\x01\x02" * 50)
    (root / "truncated.json").write_text('{"meeting_transcripts": [{"speaker": "A", "content": "hel', encoding="utf-8")
    (root / "not-a-pdf.pdf").write_bytes(b"%PDF-1.7\nthis is not really a pdf")
    (root / "broken.docx").write_bytes(b"PK\x03\x04 definitely not a zip")
    (root / "garbage.srt").write_text("1\nthis is not a timing line\nhello\n", encoding="utf-8")
    (root / "big.md").write_text("# Big\n\n" + "word " * 5000, encoding="utf-8")
    (root / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 not supported")
    (root / "items.jsonl").write_text('{"id": "a", "text": "fine"}\n{"id": 3}\nnot json\n', encoding="utf-8")
    os.symlink(root / "nowhere.txt", root / "dangling.md")
    (root / "loop").mkdir()
    os.symlink(root / "loop", root / "loop" / "again")
    return {
        "empty.eml": "empty",
        "binary.vtt": "binary",
        "truncated.json": "truncated",
        "not-a-pdf.pdf": "parse",
        "broken.docx": "parse",
        "garbage.srt": "parse",
        "big.md": "too-large",
        "photo.jpg": "unsupported",
        "dangling.md": "broken-link",
    }


def test_broken_inputs_each_get_one_error_and_the_run_goes_on(tmp_path: Path) -> None:
    expected = make_broken_folder(tmp_path / "broken")
    items, errors, summary = run([tmp_path / "broken"], options=IngestOptions(max_file_bytes=10_000))
    reasons = {Path(e.path).name: e.reason for e in errors}
    for name, reason in expected.items():
        assert reasons.get(name) == reason, (name, reasons.get(name))
    # The JSONL file yields its good line and one error per bad line, naming the line.
    assert [i.id for i in items] == ["a"]
    bad_lines = [e for e in errors if e.reason == "bad-record"]
    assert sorted(e.path.rsplit(":", 1)[1] for e in bad_lines) == ["2", "3"]
    assert any(e.reason == "symlink-loop" for e in errors)
    assert all(e.error for e in errors)
    assert summary.files == summary.files_read + summary.companions + sum(
        1 for e in errors if e.reason not in ("bad-record", "duplicate-id")
    )


def test_missing_input_is_an_error_not_a_crash(tmp_path: Path) -> None:
    items, errors, _ = run([tmp_path / "nope"])
    assert items == []
    assert [e.reason for e in errors] == ["missing"]


def test_exact_duplicates_are_dropped_and_counted(tmp_path: Path) -> None:
    for mailbox in ("a", "b"):
        (tmp_path / mailbox).mkdir()
        shutil.copy(FIXTURES / "email" / "enron" / "1_135787.txt", tmp_path / mailbox / "m.txt")
    items, _, summary = run([tmp_path])
    assert len(items) == 1
    assert summary.duplicates == 1


def test_jsonl_items_keep_their_ids_and_fields(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    rows = [
        {
            "id": "msg-1",
            "text": "Let's grab coffee and talk it over.",
            "team": "red",
            "timestamp": "2024-01-02T10:00:00Z",
        },
        {"id": "msg-2", "text": "Attached is the Q3 report.", "authors": ["ann"], "participants": ["bob", "cy"]},
        {"id": "msg-1", "text": "a second msg-1"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    items, errors, _ = run([path])
    assert [i.id for i in items] == ["msg-1", "msg-2"]
    assert items[0].team == "red"
    assert items[0].timestamp is not None and items[0].timestamp.utcoffset().total_seconds() == 0
    assert items[1].n_participants == 3
    assert [e.reason for e in errors] == ["duplicate-id"]


def test_team_precedence(tmp_path: Path) -> None:
    qmsum = FIXTURES / "meetings" / "qmsum"
    items, _, _ = run([qmsum])
    teams = {i.thread: i.team for i in items}
    assert teams["ES2002a"] == "ES2002"  # the format's own rule (AMI series)
    assert teams["Bed004"] == "Bed"

    rules_file = tmp_path / "teams.yaml"
    rules_file.write_text(
        "teams:\n  design-red:\n    threads: [ES2002a]\n  icsi:\n    people: [Nobody@example.com]\n", encoding="utf-8"
    )
    items, _, _ = run([qmsum], teams=TeamRules.load(rules_file))
    teams = {i.thread: i.team for i in items}
    assert teams["ES2002a"] == "design-red"  # the teams file wins
    assert teams["Bed004"] == "Bed"

    # Documents have no team of their own: the top-level folder under the input decides.
    docs = tmp_path / "docs"
    (docs / "platform").mkdir(parents=True)
    (docs / "platform" / "note.md").write_text("# Plan\n\n" + "We plan the release. " * 20, encoding="utf-8")
    items, _, _ = run([docs])
    assert {i.team for i in items} == {"platform"}


def test_team_rules_from_csv_and_people(tmp_path: Path) -> None:
    path = tmp_path / "teams.csv"
    path.write_text("kind,key,team\nperson,Ann@Example.com,alpha\npath,*/x/*,beta\n", encoding="utf-8")
    rules = TeamRules.load(path)
    item = Item(id="1", text="t", source="other", path="/a/b.txt", authors=["ann@example.com"])
    assert rules.match(item) == "alpha"
    item.path = "/data/x/y.txt"
    assert rules.match(item) == "beta"
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,key,team\nrobot,r2,gamma\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown kind"):
        TeamRules.load(bad)


def test_cli_ingest_writes_items_errors_and_summary(tmp_path: Path) -> None:
    make_broken_folder(tmp_path / "broken")
    out = tmp_path / "out" / "items.jsonl"
    result = CliRunner().invoke(
        app, ["ingest", str(FIXTURES / "documents"), str(tmp_path / "broken"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows and all({"id", "text", "source", "team"} <= set(r) for r in rows)
    errors = [json.loads(line) for line in (out.parent / "items.errors.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {"path", "reason", "error"} <= set(errors[0])
    assert any(e["reason"] == "binary" for e in errors)


def test_a_reader_crash_is_one_error_line_not_the_end_of_the_run(tmp_path: Path, monkeypatch) -> None:
    from pipeline.ingest import base

    def explode(source):
        raise KeyError("a reader bug")
        yield  # a generator, like every reader

    monkeypatch.setattr(base, "FORMATS", [base.Format("boom", explode, (".boom",)), *base.FORMATS])
    monkeypatch.setattr("pipeline.ingest.driver.FORMATS", base.FORMATS)
    (tmp_path / "a.boom").write_text("x", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Title\n\n" + "Some words here. " * 20, encoding="utf-8")
    items, errors, summary = run([tmp_path])
    assert [Path(e.path).name for e in errors] == ["a.boom"]
    assert errors[0].reason == "parse" and "KeyError" in errors[0].error
    assert len(items) == 1 and summary.files == 2


def test_files_whose_suffix_says_nothing_are_sniffed_by_content(tmp_path: Path) -> None:
    # Each file under a name that no reader registers; the content decides the reader.
    sniffed = {
        "1354585346.000260:2,S": FIXTURES / "email" / "sniffed" / "email.02",
        "captions": FIXTURES / "meetings" / "sniffed" / "typical",
        "subtitles.sub": FIXTURES / "meetings" / "sniffed" / "subrip",
        "youtube": FIXTURES / "meetings" / "sniffed" / "standup.sbv",
        "notes": FIXTURES / "meetings" / "handmade" / "standup.txt",
    }
    for name, origin in sniffed.items():
        shutil.copy(origin, tmp_path / name)
    (tmp_path / "photo").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    items, errors, summary = run([tmp_path])
    sources = {Path(i.path).name: i.source for i in items}
    assert sources == {
        "1354585346.000260:2,S": "email",
        "captions": "meeting",
        "subtitles.sub": "meeting",
        "youtube": "meeting",
        "notes": "meeting",
    }
    assert [(Path(e.path).name, e.reason) for e in errors] == [("photo", "unsupported")]
    assert summary.files == summary.files_read + summary.errors
