"""Outlook `.msg` and `.pst` files read as e-mail (pipeline/ingest/outlook.py).

The real files are other projects' test fixtures in ../shared/fixtures/outlook (SOURCES.md there
names each one's repository and licence); they are read in place, never copied into this repository.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.ingest import IngestSummary, ingest
from pipeline.ingest.base import IngestOptions, Source, UnreadableInput
from pipeline.ingest.outlook import read_msg, read_pst
from pipeline.items import InputError, Item


def _outlook_fixtures() -> Path:
    default = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "outlook"
    return default if default.is_dir() else Path(os.environ.get("SECI_SHARED_OUTLOOK", default))


OUTLOOK = _outlook_fixtures()
needs_outlook = pytest.mark.skipif(
    not OUTLOOK.is_dir(), reason=f"{OUTLOOK} is absent (Outlook test files from other projects)"
)


def _source(path: Path) -> Source:
    return Source(path=path, key=f"test/{path.name}", options=IngestOptions())


def _run(paths: list[Path]) -> tuple[list[Item], list[InputError], IngestSummary]:
    summary = IngestSummary()
    records = list(ingest(paths, summary=summary))
    items = [r for r in records if isinstance(r, Item)]
    return items, [r for r in records if isinstance(r, InputError)], summary


@needs_outlook
def test_every_msg_file_gives_one_email_item() -> None:
    paths = sorted(OUTLOOK.glob("*.msg"))
    assert len(paths) == 10
    items, errors, summary = _run(paths)
    assert errors == []
    assert summary.files_read == len(paths) and len(items) == len(paths)
    assert {i.source for i in items} == {"email"}
    assert all(i.title and i.text.startswith(i.title) and i.timestamp for i in items)


@needs_outlook
def test_msg_fields_match_an_rfc822_message() -> None:
    [item] = list(read_msg(_source(OUTLOOK / "tika_testMSG.msg")))
    assert item.title == "MIME registry use cases"
    assert item.authors == ["jukka.zitting@gmail.com"]
    assert item.participants == ["tika-dev@lucene.apache.org"]
    assert item.timestamp == datetime(2009, 1, 29, 19, 16, 40, tzinfo=UTC)
    assert item.id == "test/tika_testMSG.msg#510143ac0901291116s5f368dfby9d6423ce61acc36a@mail.gmail.com"
    assert item.warnings == []


@needs_outlook
def test_msg_reply_threads_by_in_reply_to_and_keeps_to_and_cc() -> None:
    [forward] = list(read_msg(_source(OUTLOOK / "tika_testMSG_forwarded.msg")))
    assert forward.parent == "C8508767C15DBF40A21693142739EA8D564D18FDA1@EXVMBX018-1.exch018.msoutlookonline.net"
    assert forward.thread == forward.parent
    [many] = list(read_msg(_source(OUTLOOK / "poi_example_received_unicode.msg")))
    assert "mike.farman@alfresco.com" in many.authors
    assert {"paul.hh@alfresco.com", "nick.burch@alfresco.com"} <= set(many.participants)  # To and Cc


@needs_outlook
def test_ansi_msg_strings_are_read_in_their_code_page() -> None:
    [item] = list(read_msg(_source(OUTLOOK / "poi_chinese-traditional.msg")))
    assert item.title == "Alfresco MSG format testing ( MSG 格式測試 )"


@needs_outlook
def test_pst_folders_are_walked_and_only_mail_is_read() -> None:
    items, errors, summary = _run([OUTLOOK / "aspose_Outlook.pst"])
    assert errors == []
    folders = {i.meta["x_folder"] for i in items}
    assert folders == {"Top of Personal Folders/Inbox", "Top of Personal Folders/Sent Items"}
    # The calendar item and the contact are not e-mail; Sent Items copies of inbox mail are duplicates.
    assert not any(i.title in ("Weekly meeting", "Saqib Razzaq") for i in items)
    assert summary.duplicates >= 1
    assert len({i.id for i in items}) == len(items)
    assert all(i.authors == ["saqib.razzaq@xp.local"] for i in items if "Razzaq" in i.meta.get("x_from", "Razzaq"))


@needs_outlook
def test_pst_replies_are_stripped_and_threaded() -> None:
    items = [i for i in read_pst(_source(OUTLOOK / "tika_testPST.pst")) if isinstance(i, Item)]
    assert len(items) == 7
    reply = next(i for i in items if i.title == "Re: Feature Generators")
    original = next(i for i in items if i.title == "Feature Generators")
    assert reply.thread == original.id.split("#", 1)[1]
    assert reply.authors == ["kottmann@gmail.com"]
    assert "Is there documentation on the existing features generators" not in reply.text  # quoted part


@needs_outlook
def test_ansi_pst_is_read() -> None:
    [item] = list(read_pst(_source(OUTLOOK / "pstsdk_sample2_ansi.pst")))
    assert item.title == "Here is a sample message"
    assert "sample attachment" in item.text


def test_binary_msg_that_is_not_outlook_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.msg"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    with pytest.raises(UnreadableInput) as err:
        list(read_msg(_source(path)))
    assert err.value.reason == "parse"


def test_broken_pst_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.pst"
    path.write_bytes(b"!BDN" + b"\x00" * 600)
    items, errors, _ = _run([path])
    assert items == [] and [e.reason for e in errors] == ["parse"]


def test_text_msg_is_still_read_as_an_rfc822_message(tmp_path: Path) -> None:
    path = tmp_path / "note.msg"
    path.write_text(
        "From: Ann <ann@example.com>\nTo: Bo <bo@example.com>\nSubject: Saved as .msg\n"
        "Date: Mon, 1 Jan 2024 10:00:00 +0000\n\nA plain text message that a client saved as .msg.\n",
        encoding="utf-8",
    )
    items, errors, _ = _run([path])
    assert errors == [] and [i.title for i in items] == ["Saved as .msg"]
