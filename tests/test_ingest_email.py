"""Tests for the email reader (pipeline/ingest/email.py)."""

from __future__ import annotations

import collections
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.ingest.base import IngestOptions, Source, UnreadableInput
from pipeline.ingest.email import read, sniff, strip_reply, subject_key

FIXTURES = Path(__file__).parent / "fixtures" / "email"
ENRON = FIXTURES / "enron"


def _shared_data() -> Path:
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    return default if default.is_dir() else Path(os.environ.get("SECI_SHARED_DATA", default))


def _source(path: Path, **options: int) -> Source:
    return Source(path=path, key=f"test/{path.name}", options=IngestOptions(**options))


def _items(path: Path, **options: int) -> list:
    return list(read(_source(path, **options)))


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- real Enron messages (train mailboxes) --------------------------------------------------------


def test_enron_comment_and_lotus_forward_keep_payload_drop_headers() -> None:
    [item] = _items(ENRON / "1_135787.txt")
    assert item.title == "FW: Energy Policy Information"
    assert item.text.startswith("FW: Energy Policy Information\n\nAttached on the Cheney Report came via INGAA.")
    # The forwarded content stays, the forwarding marker and header lines go.
    assert "briefing book prepared for the press" in item.text
    assert "Forwarded by" not in item.text
    assert "To: Anna Cochrane" not in item.text
    assert "Importance:" not in item.text
    assert "Sent:" not in item.text
    assert item.team == "SHAPIRO-R"
    assert item.authors == ["john.shelk@enron.com"]
    assert item.source == "email" and item.medium == "virtual"
    assert item.thread == "subject:energy policy information"
    assert item.meta["x_origin"] == "SHAPIRO-R"
    assert item.id == "test/1_135787.txt#" + item.meta["message_id"]


def test_enron_outlook_forward_keeps_first_message_drops_older_and_footer() -> None:
    [item] = _items(ENRON / "1_136375.txt")
    assert "See e-mail exchange between Andy Black" in item.text
    assert "He spoke yesterday to that group." in item.text  # the forwarded message
    assert "Ran into a fellow Texas company lobbyist" not in item.text  # quoted history of the forward
    assert "property of Enron Corp" not in item.text
    assert "-----Original Message-----" not in item.text
    assert item.team == "SHAPIRO-R"  # X-Origin is written Shapiro-R in this file


def test_enron_forward_payload_stops_at_quoted_lotus_reply() -> None:
    [item] = _items(ENRON / "1_173570.txt")
    assert item.text == (
        "Re: Contribution to Sacramento Women's Campaign Fund\n\n"
        "Let's process this request. I think it's justified.\n\n"
        "Please call on Wednesday to discuss so we can bring to closure. Thanks."
    )
    assert item.team == "KEAN-S"
    assert item.timestamp is not None and item.timestamp.tzinfo is not None


def test_enron_forward_without_text_keeps_subject_with_warning() -> None:
    [item] = _items(ENRON / "3_176539.txt")
    assert item.text == "Congressman Ose loved your letter to Sen. Dunn"
    assert any("empty body" in warning for warning in item.warnings)


def test_enron_placeholder_date_leaves_the_message_undated_with_warning() -> None:
    [item] = _items(ENRON / "1_173241.txt")
    assert item.timestamp is None  # 1979-12-31 is Enron's "no date", not a date (issue 25)
    assert "placeholder date" in item.warnings
    assert "1979" in item.meta["date"] or "1980" in item.meta["date"]


def test_sniff_claims_enron_txt_but_not_plain_text_or_transcripts(tmp_path: Path) -> None:
    assert sniff(_source(ENRON / "1_135787.txt"))
    plain = _write(tmp_path, "notes.txt", b"Meeting notes\n\nWe agreed to ship on Friday.\n")
    transcript = _write(tmp_path, "call.txt", b"Date: tomorrow we ship\nAlice: fine by me\n\nBob: ok\n")
    one_header = _write(tmp_path, "memo.txt", b"Subject: lunch\n\nPizza at noon.\n")
    ole = _write(tmp_path, "mail.msg", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64)
    for path in (plain, transcript, one_header, ole):
        assert not sniff(_source(path)), path.name


# --- hand-made formats ----------------------------------------------------------------------------


def test_html_only_alternative_is_converted_and_threaded() -> None:
    [item] = _items(FIXTURES / "html_only.eml")
    assert item.text == (
        "Pilot results\n\nWe ran the pilot on line 3 this week.\n"
        "After the second run the operators understood the new checklist."
    )
    assert "alert" not in item.text and "color" not in item.text
    assert item.authors == ["dana.ruiz@example.org"]
    assert item.participants == ["team@example.org", "lee@example.org"]
    assert item.thread == "kickoff-1@example.org"
    assert item.parent == "plan-7@example.org"
    assert item.timestamp == datetime(2020, 3, 3, 9, 15, tzinfo=UTC)
    assert item.team is None


def test_encoded_headers_are_decoded() -> None:
    [item] = _items(FIXTURES / "encoded_headers.eml")
    assert item.title == "Überblick des Quartals"
    assert item.text == "Überblick des Quartals\n\nHallo Renée,\nanbei der Überblick."
    assert item.authors == ["juergen@example.de"]
    assert item.participants == ["renee@example.fr"]


def test_mbox_of_three_messages() -> None:
    items = _items(FIXTURES / "three.mbox")
    assert [item.meta["message_id"] for item in items] == ["m1@example.org", "m2@example.org", "m3@example.org"]
    assert [item.position for item in items] == [0, 1, 2]
    assert "From the notes: bring boots." in items[0].text  # the >From escape is undone
    assert items[1].text == "Re: Kickoff\n\nGood idea, I will be there."
    assert items[2].text == "Re: Kickoff\n\nCount me in."
    assert {item.thread for item in items[1:]} == {"m1@example.org"}
    assert items[2].participants == ["alice@example.org", "bob@example.org"]
    assert sniff(_source(FIXTURES / "three.mbox"))


def test_mbox_sniffed_without_suffix(tmp_path: Path) -> None:
    path = _write(tmp_path, "archive", (FIXTURES / "three.mbox").read_bytes())
    assert sniff(_source(path))
    assert len(_items(path)) == 3


def test_maildir_messages_take_the_folder_as_team() -> None:
    paths = sorted((FIXTURES / "maildir" / "alice").glob("*/*"))
    assert [p.parent.name for p in paths] == ["cur", "new"]
    for path in paths:
        assert sniff(_source(path))
        [item] = _items(path)
        assert item.team == "alice"
    assert _items(paths[0])[0].text == "Read\n\nAlready read message."


# --- strip_reply ----------------------------------------------------------------------------------


def test_strip_reply_rules() -> None:
    body = (
        "Sounds good.\n\nBest regards,\nJo\n\n-----Original Message-----\n"
        "From: Kim\nSent: Monday\nTo: Jo\nSubject: plan\n\nOld text\n"
    )
    assert strip_reply(body) == "Sounds good."
    lotus = (
        "I agree.\n\n\n\nKaren Denne@ENRON\n10/18/99 07:08 AM\nTo: Steven J Kean/HOU/EES@EES\ncc:\nSubject: x\n\nold"
    )
    assert strip_reply(lotus) == "I agree."
    forward = (
        "FYI\n---------------------- Forwarded by A B/HOU/EES on 10/18/99 08:46 \nAM ---------------------------\n\n\n"
        "Karen Denne@ENRON\n10/18/99 07:08 AM\nTo: A B/HOU/EES@EES\ncc:\nSubject: x\n\nThe forwarded report."
    )
    assert strip_reply(forward) == "FYI\n\nThe forwarded report."
    assert strip_reply("Line one=20\nline two is wrapp=\ned here=20\n") == "Line one\nline two is wrapped here"
    assert strip_reply("Keep this.\n> quoted\n> more\nAnd this.") == "Keep this.\nAnd this."
    assert strip_reply("Steps:\n- first\n- second") == "Steps:\n- first\n- second"


def test_subject_key_strips_prefixes() -> None:
    assert subject_key("RE: Fw: FWD:  Budget  Plan") == "budget plan"


# --- bad input ------------------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(UnreadableInput) as info:
        _items(_write(tmp_path, "empty.eml", b""))
    assert info.value.reason == "empty"


def test_binary_file_with_eml_suffix(tmp_path: Path) -> None:
    with pytest.raises(UnreadableInput) as info:
        _items(_write(tmp_path, "blob.eml", bytes(range(256)) * 8))
    assert info.value.reason == "binary"


def test_truncated_message(tmp_path: Path) -> None:
    data = b"Message-ID: <t@x>\nDate: Mon, 02 Mar 2020 09:00:00 +0000\nFrom: a@x.org\nSubj"
    with pytest.raises(UnreadableInput) as info:
        _items(_write(tmp_path, "cut.eml", data))
    assert info.value.reason == "truncated"


def test_not_a_message_with_eml_suffix(tmp_path: Path) -> None:
    with pytest.raises(UnreadableInput) as info:
        _items(_write(tmp_path, "note.eml", b"Just some words.\n\nNo headers here.\n"))
    assert info.value.reason == "parse"


def test_malformed_mbox_keeps_the_good_messages(tmp_path: Path) -> None:
    good = (FIXTURES / "three.mbox").read_bytes()
    broken_mime = (
        b"From x@example.org Tue Mar  3 09:00:00 2020\nMessage-ID: <broken@example.org>\n"
        b"From: x@example.org\nSubject: Broken\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="zz"\n\n--zz\nContent-Type: text/plain\n'
        b"Content-Transfer-Encoding: base64\n\nSGVsbG8gd29ybGQ=!!\n"  # no closing boundary
    )
    garbage = b"\x01\x02 random junk line\nnot a header at all\n\n"
    data = garbage + good + b"\n" + broken_mime + b"\nFrom y@example.org Tue Mar  3 10:00:00 2020\n\xff\xfe\x00junk\n"
    items = _items(_write(tmp_path, "bad.mbox", data))
    ids = [item.meta["message_id"] for item in items]
    assert ids == ["m1@example.org", "m2@example.org", "m3@example.org", "broken@example.org"]
    assert items[-1].warnings, "the broken MIME message must carry a warning"


def test_mbox_with_no_messages(tmp_path: Path) -> None:
    with pytest.raises(UnreadableInput) as info:
        _items(_write(tmp_path, "junk.mbox", b"nothing here\nat all\n"))
    assert info.value.reason == "parse"


def test_wrong_declared_charset(tmp_path: Path) -> None:
    data = (
        "Message-ID: <cs@x>\nFrom: a@x.org\nSubject: Caf\u00e9 menu\nContent-Type: text/plain; charset=utf-8\n\n"
    ).encode() + "The caf\u00e9 \u2013 na\u00efve pricing \u201cworks\u201d.\n".encode("cp1252")
    [item] = _items(_write(tmp_path, "cs.eml", data))
    assert "caf\u00e9" in item.text and "na\u00efve" in item.text


def test_file_over_the_size_limit(tmp_path: Path) -> None:
    path = _write(tmp_path, "big.eml", (FIXTURES / "encoded_headers.eml").read_bytes())
    with pytest.raises(UnreadableInput) as info:
        _items(path, max_file_bytes=100)
    assert info.value.reason == "too-large"


def test_mbox_message_over_the_limit_is_cut_with_warning(tmp_path: Path) -> None:
    big = b"From a@x Mon Mar  2 09:00:00 2020\nMessage-ID: <big@x>\nFrom: a@x.org\nSubject: Big\n\n" + b"word " * 400
    items = _items(_write(tmp_path, "big.mbox", big), max_file_bytes=300)
    assert len(items) == 1 and any("byte limit" in w for w in items[0].warnings)
    with pytest.raises(UnreadableInput) as info:
        _items(_write(tmp_path, "huge.mbox", big), max_archive_bytes=100)
    assert info.value.reason == "too-large"


# --- the whole Enron subset -----------------------------------------------------------------------


@pytest.mark.corpus
def test_enron_corpus_one_item_per_file_and_duplicates() -> None:
    root = _shared_data() / "emails" / "enron_berkeley_categories" / "enron_with_categories"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    files = sorted(root.glob("*/*.txt"))
    assert len(files) == 1702
    keys: collections.Counter[str] = collections.Counter()
    for path in files:
        assert sniff(_source(path)), path
        try:
            items = _items(path)
        except UnreadableInput:
            continue
        assert len(items) == 1, path
        assert items[0].text.strip()
        keys[items[0].meta["dedup_key"]] += 1
    duplicates = sum(count - 1 for count in keys.values())
    print(f"enron: {sum(keys.values())} items, {duplicates} duplicate dedup_keys")
    # 55 messages share (From, Date, Subject); 8 of them differ in body (personalised mass mails, edits).
    assert 40 <= duplicates <= 55


# --- sniffing by content where the suffix says nothing (issue 22) ---------------------------------

SNIFFED = FIXTURES / "sniffed"


def _ingest(paths: list[Path]) -> tuple[list, list]:
    from pipeline.ingest import ingest
    from pipeline.items import InputError, Item

    records = list(ingest(paths))
    return [r for r in records if isinstance(r, Item)], [r for r in records if isinstance(r, InputError)]


@pytest.mark.parametrize(
    ("name", "subject"),
    [
        ("maildir/bob/cur/1354585346.000260:2,", "Rollout checklist"),  # Maildir info suffix, not yet seen
        ("maildir/bob/cur/1354585347.000261:2,S", "Re: Rollout checklist"),  # ... seen
        ("email.02", "Budget review moved"),  # a suffix that means nothing
        ("saved", "Flaky integration test"),  # one message saved with its mbox `From ` line
        ("obsolete.eml", "Saying Hello"),  # RFC 5322 obsolete syntax: `From  : John Doe`
        ("blank-first-line.eml", "Blank line first"),
    ],
)
def test_raw_messages_are_read_whatever_their_name(name: str, subject: str) -> None:
    items, errors = _ingest([SNIFFED / name])
    assert errors == []
    [item] = items
    assert item.source == "email" and item.title == subject
    assert item.authors and "@" in item.authors[0]


def test_obsolete_header_syntax_keeps_sender_and_recipients() -> None:
    [item] = _items(SNIFFED / "obsolete.eml")
    assert item.authors == ["jdoe@machine.example"]
    assert item.participants == ["mary@example.net"]
    assert item.timestamp == datetime(1997, 11, 21, 15, 55, 6, tzinfo=UTC)
    assert "say hello" in item.text


def test_maildir_reply_is_stripped_and_threaded() -> None:
    items, _ = _ingest([SNIFFED / "maildir"])
    first, reply = sorted(items, key=lambda i: i.timestamp)
    assert reply.thread == reply.parent == first.meta["message_id"] == "checklist-1@example.org"
    assert "wiki" not in reply.text  # the quoted message is gone
    assert first.team == reply.team == "bob"


def test_netscape_mbox_named_txt_is_mail_not_a_document() -> None:
    items, errors = _ingest([SNIFFED / "netscape.mbox.txt"])
    assert errors == []
    assert [i.source for i in items] == ["email", "email"]
    assert [i.title for i in items] == ["Release notes draft", "Re: Release notes draft"]
    # A body line that starts with "From " (no header after it) does not split the message.
    assert "installer section" in items[0].text


def test_mbox_txt_with_a_header_section_longer_than_the_sniffed_head() -> None:
    path = SNIFFED / "archive.txt"
    assert path.stat().st_size > 4096
    assert sniff(_source(path))
    items, errors = _ingest([path])
    assert errors == []
    assert [i.title for i in items] == ["Offsite agenda", "Re: Offsite agenda"]
    assert items[1].parent == "agenda-1@example.com"


def test_text_that_only_mentions_headers_is_not_mail(tmp_path: Path) -> None:
    path = _write(tmp_path, "notes.02", b"Meeting notes\nFrom: the board\nTo: everyone\n\nNothing else.\n")
    assert not sniff(_source(path))
