"""Meeting transcript readers: segmentation, cleaning, every format and its bad inputs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pipeline.ingest.base import CompanionFile, IngestOptions, Source, UnreadableInput, word_count
from pipeline.ingest.meetings import (
    MERGE_SLACK,
    Turn,
    clean_transcript_text,
    qmsum_meeting_facts,
    read_mrda_trans,
    read_path,
    segment_turns,
)
from pipeline.items import Item

FIXTURES = Path(__file__).parent / "fixtures" / "meetings"
HANDMADE = FIXTURES / "handmade"


def _shared_data() -> Path | None:
    for candidate in (Path(__file__).resolve().parents[2] / "shared" / "data", os.environ.get("SECI_SHARED_DATA")):
        if candidate and Path(candidate, "meetings").is_dir():
            return Path(candidate)
    return None


SHARED = _shared_data()
needs_shared = pytest.mark.skipif(SHARED is None, reason="shared/data is not present")


def _segment_words(text: str) -> int:
    return sum(word_count(line.split(": ", 1)[1]) for line in text.splitlines())


def _check_bounds(segments: list[list[Turn]], min_words: int, max_words: int) -> None:
    """Every segment within min..MERGE_SLACK*max, except a whole meeting shorter than min_words."""
    sizes = [sum(t.words for t in s) for s in segments]
    assert all(s > 0 for s in sizes)
    if sum(sizes) < min_words:
        assert len(sizes) == 1
        return
    assert min(sizes) >= min_words, sizes
    assert max(sizes) <= int(MERGE_SLACK * max_words), sizes


# --- cleaning -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Okay {vocalsound} so we start .", "Okay so we start."),
        ("I mean {disfmarker} it 's fine , right ?", "I mean it's fine, right?"),
        ("{vocalsound}", ""),
        ("{gap} {pause} .", ""),
        ("and um - | then of course the system broke down .", "and um - then of course the system broke down."),
        ("and those were the l- - uh - uh ==", "and those were the l- - uh - uh"),
        ("right ?==", "right?"),
        ("@@ more   compact .", "more compact."),
        ("we 're done -- okay", "we're done okay"),
        ("channel a. .", "channel a."),
    ],
)
def test_clean_transcript_text(raw: str, clean: str) -> None:
    assert clean_transcript_text(raw) == clean


# --- segmentation ---------------------------------------------------------------------------


def _turn(speaker: str, words: int, word: str = "word") -> Turn:
    return Turn(speaker, " ".join([word] * words) + ".")


def test_short_turns_stay_inside_segments() -> None:
    turns = [_turn("A", 30), Turn("B", "yeah"), _turn("A", 30), Turn("B", "okay"), _turn("C", 100)]
    segments = segment_turns(turns, 40, 250)
    assert len(segments) == 1
    assert [t.speaker for t in segments[0]] == ["A", "B", "A", "B", "C"]


def test_cuts_only_between_turns_and_respects_max() -> None:
    turns = [_turn(s, 60) for s in "ABCDEFGHIJ"]
    segments = segment_turns(turns, 40, 250)
    assert [len(s) for s in segments] == [4, 4, 2]
    assert [t for s in segments for t in s] == turns


def test_long_turn_split_at_sentences_never_mid_word() -> None:
    sentence = "This is one sentence of exactly ten words in it."
    turn = Turn("A", " ".join([sentence] * 60), 0.0, 600.0)
    segments = segment_turns([turn], 40, 250)
    pieces = [t for s in segments for t in s]
    assert len(segments) >= 3
    assert " ".join(p.text for p in pieces) == turn.text  # nothing lost, no word cut
    assert all(p.text.endswith(".") for p in pieces)  # cut at sentence ends
    assert all(p.words <= 250 for p in pieces)
    assert pieces[0].start == 0.0 and pieces[-1].end == 600.0
    _check_bounds(segments, 40, 250)


def test_sentence_longer_than_max_is_cut_between_words() -> None:
    turn = Turn("A", " ".join(f"w{i}" for i in range(600)))
    pieces = [t for s in segment_turns([turn], 40, 250) for t in s]
    assert [w for p in pieces for w in p.text.split()] == turn.text.split()
    assert max(p.words for p in pieces) <= 250


def test_short_tail_merges_into_previous_segment() -> None:
    turns = [_turn("A", 120), _turn("B", 120), Turn("A", "right, thanks everyone")]
    segments = segment_turns(turns, 40, 250)
    assert len(segments) == 1


def test_meeting_shorter_than_min_is_one_short_segment() -> None:
    segments = segment_turns([Turn("A", "hello"), Turn("B", "hi there")], 40, 250)
    assert len(segments) == 1 and sum(t.words for t in segments[0]) == 3


def test_topic_start_is_preferred_cut() -> None:
    turns = [_turn("A", 50), _turn("B", 50), _turn("A", 50), _turn("B", 50)]
    assert len(segment_turns(turns, 40, 250)) == 1
    segments = segment_turns(turns, 40, 250, topic_starts={2})
    assert [len(s) for s in segments] == [2, 2]
    # A topic start that would leave a segment under min_words is not taken.
    assert len(segment_turns([_turn("A", 10), *turns], 40, 250, topic_starts={1})) == 1


def test_bad_bounds_rejected() -> None:
    with pytest.raises(ValueError):
        segment_turns([], 300, 250)


# --- QMSum ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meeting", "team", "corpus"),
    [("ES2002a", "ES2002", "ami"), ("Bmr013", "Bmr", "icsi"), ("covid_3", "covid", "committee")],
)
def test_qmsum_meeting_facts(meeting: str, team: str, corpus: str) -> None:
    got_team, meta = qmsum_meeting_facts(meeting)
    assert (got_team, meta["corpus"]) == (team, corpus)
    assert qmsum_meeting_facts("education_12")[0] == "education"
    assert qmsum_meeting_facts("IS1002b")[1]["meeting_order"] == "b"


def test_qmsum_ami_fixture() -> None:
    items = read_path(FIXTURES / "qmsum" / "ES2002a.json")
    assert len(items) >= 4
    first = items[0]
    assert first.source == "meeting" and first.medium == "face-to-face"
    assert first.team == "ES2002" and first.thread == first.title == "ES2002a"
    assert first.meta["corpus"] == "ami" and first.meta["meeting_part"] == "a" and first.meta["meeting_order"] == "a"
    assert set(first.participants) == {"Project Manager", "Marketing", "User Interface", "Industrial Designer"}
    assert [i.position for i in items] == list(range(len(items)))
    assert [i.id for i in items] == [f"ES2002a.json#seg{n}" for n in range(len(items))]
    assert first.start_seconds is None
    for item in items:
        assert "{" not in item.text and " ." not in item.text
        assert all(line.split(": ", 1)[0] in item.participants for line in item.text.splitlines())
        assert item.authors == list(dict.fromkeys(line.split(": ", 1)[0] for line in item.text.splitlines()))
        assert int(item.meta["n_turns"]) >= len(item.text.splitlines())
        assert 40 <= _segment_words(item.text) <= int(MERGE_SLACK * 250)


def test_qmsum_topic_boundary_is_respected() -> None:
    data = json.loads((FIXTURES / "qmsum" / "ES2002a.json").read_text())
    first_topic_turns = [clean_transcript_text(t["content"]) for t in data["meeting_transcripts"][:21]]
    first_topic_words = sum(word_count(t) for t in first_topic_turns)
    items = read_path(FIXTURES / "qmsum" / "ES2002a.json")
    cumulative = 0
    ends = []
    for item in items:
        cumulative += _segment_words(item.text)
        ends.append(cumulative)
    assert first_topic_words in ends


@pytest.mark.parametrize(
    ("name", "team", "corpus"), [("Bed004", "Bed", "icsi"), ("education_1", "education", "committee")]
)
def test_qmsum_icsi_and_committee(name: str, team: str, corpus: str) -> None:
    items = read_path(FIXTURES / "qmsum" / f"{name}.json")
    assert items and all(i.team == team and i.meta["corpus"] == corpus for i in items)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_qmsum_truncated(tmp_path: Path) -> None:
    raw = (FIXTURES / "qmsum" / "ES2002a.json").read_bytes()
    with pytest.raises(UnreadableInput) as err:
        read_path(_write(tmp_path, "ES2002a.json", raw[: len(raw) // 2]))
    assert err.value.reason == "truncated"


def test_qmsum_not_json(tmp_path: Path) -> None:
    with pytest.raises(UnreadableInput) as err:
        read_path(_write(tmp_path, "m.json", b'{"topic_list": [} nonsense "meeting_transcripts" here\n more'))
    assert err.value.reason == "parse"


@pytest.mark.parametrize(
    "body",
    [b'{"topic_list": [], "meeting_transcripts": {"a": 1}}', b'{"topic_list": [], "meeting_transcripts": "text"}'],
)
def test_qmsum_wrong_shape(tmp_path: Path, body: bytes) -> None:
    with pytest.raises(UnreadableInput) as err:
        read_path(_write(tmp_path, "m.json", body))
    assert err.value.reason == "parse"


def test_qmsum_bad_turns_become_warnings(tmp_path: Path) -> None:
    body = {
        "topic_list": [{"topic": "x", "relevant_text_span": [["0", "1"]]}],
        "meeting_transcripts": [
            {"speaker": "Marketing", "content": "We should look at what users complain about. " * 6},
            {"speaker": 3, "content": None},
            "not a turn",
        ],
    }
    items = read_path(_write(tmp_path, "ES2003a.json", json.dumps(body).encode()))
    assert len(items) == 1 and len(items[0].warnings) == 2


def test_qmsum_all_markup_is_empty(tmp_path: Path) -> None:
    body = {"meeting_transcripts": [{"speaker": "A", "content": "{vocalsound} {gap}"}]}
    with pytest.raises(UnreadableInput) as err:
        read_path(_write(tmp_path, "m.json", json.dumps(body).encode()))
    assert err.value.reason == "empty"


def test_over_size_limit() -> None:
    options = IngestOptions(max_file_bytes=1000)
    with pytest.raises(UnreadableInput) as err:
        read_path(FIXTURES / "qmsum" / "ES2002a.json", options)
    assert err.value.reason == "too-large"
    with pytest.raises(UnreadableInput) as err:
        read_path(FIXTURES / "mrda" / "Bed004.dadb", options)
    assert err.value.reason == "too-large"


# --- MRDA -----------------------------------------------------------------------------------


def test_mrda_fixture() -> None:
    items = read_path(FIXTURES / "mrda" / "Bed004.dadb")
    assert items
    for item in items:
        assert item.team == "Bed" and item.thread == "Bed004" and item.medium == "face-to-face"
        assert item.meta["meeting_order"] == "004"
        assert item.start_seconds is not None and item.end_seconds is not None
        assert item.start_seconds < item.end_seconds
        assert "DIGIT_TASK" not in item.text and "==" not in item.text and " | " not in item.text
        assert all(p.startswith(("me", "fe", "mn", "fn")) for p in item.participants)
    starts = [i.start_seconds for i in items]
    assert starts == sorted(starts)
    assert "okay." in items[0].text  # the original column, not the normalised "o_k"


def test_mrda_trans_is_a_companion() -> None:
    source = Source(FIXTURES / "mrda" / "Bed004.trans", "Bed004.trans", IngestOptions())
    with pytest.raises(CompanionFile):
        list(read_mrda_trans(source))


def test_mrda_trans_alone(tmp_path: Path) -> None:
    path = tmp_path / "Bed004.trans"
    shutil.copy(FIXTURES / "mrda" / "Bed004.trans", path)
    items = read_path(path)
    assert items and items[0].start_seconds is not None
    assert items[0].meta["speakers"] == "channels" and items[0].team == "Bed"


def test_mrda_missing_trans(tmp_path: Path) -> None:
    path = tmp_path / "Bed004.dadb"
    shutil.copy(FIXTURES / "mrda" / "Bed004.dadb", path)
    with pytest.raises(UnreadableInput) as err:
        read_path(path)
    assert err.value.reason == "missing-companion"


def test_mrda_bad_rows_become_warnings(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "mrda" / "Bed004.trans", tmp_path / "Bed004.trans")
    rows = (FIXTURES / "mrda" / "Bed004.dadb").read_bytes()
    _write(tmp_path, "Bed004.dadb", b"garbage,row\nx,y" + b",z" * 12 + b"\n" + rows)
    items = read_path(tmp_path / "Bed004.dadb")
    assert items and len(items[0].warnings) == 2


def test_mrda_binary(tmp_path: Path) -> None:
    _write(tmp_path, "X.trans", b"")
    with pytest.raises(UnreadableInput) as err:
        read_path(_write(tmp_path, "X.dadb", b"\x00\x01\x02" * 100))
    assert err.value.reason == "binary"


# --- WebVTT, SRT ----------------------------------------------------------------------------


def test_vtt_teams() -> None:
    (item,) = read_path(HANDMADE / "teams.vtt")
    assert item.medium == "virtual" and item.team is None
    assert item.authors == ["Priya Raman", "Tom Becker"]
    lines = item.text.splitlines()
    assert lines[0].startswith("Priya Raman: Morning all") and "decide whether" in lines[0]  # cues merged
    assert lines[1].startswith("Tom Becker: Yeah. I ran the load test")
    assert (item.start_seconds, item.end_seconds) == (1.2, 27.9)
    assert "<v" not in item.text


def test_vtt_zoom() -> None:
    (item,) = read_path(HANDMADE / "zoom.vtt")
    assert item.authors == ["Maria Lopez", "Sam Okafor"]
    assert len(item.text.splitlines()) == 4
    assert item.start_seconds == 0.5 and item.end_seconds == 21.0


def test_vtt_broken_cues_are_skipped_with_a_warning() -> None:
    (item,) = read_path(HANDMADE / "broken_cues.vtt")
    assert "broken start time" not in item.text and "neither" not in item.text
    assert item.warnings and "malformed timings" in item.warnings[0]
    assert item.authors == ["Ana", "Ben"]


def test_vtt_not_vtt(tmp_path: Path) -> None:
    with pytest.raises(UnreadableInput) as err:
        read_path(_write(tmp_path, "notes.vtt", b"Just some notes, no header.\n\nMore notes.\n"))
    assert err.value.reason == "parse"


def test_vtt_binary(tmp_path: Path) -> None:
    with pytest.raises(UnreadableInput) as err:
        read_path(_write(tmp_path, "clip.vtt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))))
    assert err.value.reason == "binary"


@pytest.mark.parametrize("name", ["empty.vtt", "empty.srt", "empty.json", "empty.txt", "empty.dadb"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, name, b"   \n")
    if name.endswith(".dadb"):
        _write(tmp_path, "empty.trans", b"")
    if name.endswith(".json") or name.endswith(".txt"):
        # Nothing to sniff: the meeting readers do not claim an empty file.
        with pytest.raises(UnreadableInput) as err:
            read_path(path)
        assert err.value.reason == "unsupported"
        return
    with pytest.raises(UnreadableInput) as err:
        read_path(path)
    assert err.value.reason == "empty"


def test_vtt_without_text(tmp_path: Path) -> None:
    with pytest.raises(UnreadableInput) as err:
        read_path(_write(tmp_path, "x.vtt", b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v A></v>\n"))
    assert err.value.reason == "empty"


def test_srt() -> None:
    (item,) = read_path(HANDMADE / "call.srt")
    assert item.medium == "virtual"
    assert item.authors == ["Lena", "Marcus", "Unknown"]
    assert item.text.splitlines()[1].startswith("Marcus: I did.") and "spreadsheet" in item.text.splitlines()[1]
    assert (item.start_seconds, item.end_seconds) == (1.0, 23.0)


def test_srt_garbage(tmp_path: Path) -> None:
    with pytest.raises(UnreadableInput) as err:
        read_path(_write(tmp_path, "x.srt", b"garbage \x01 here\nno timing at all\n\nmore garbage\n"))
    assert err.value.reason == "parse"


# --- plain text -----------------------------------------------------------------------------


def test_text_transcript_with_stamps() -> None:
    (item,) = read_path(HANDMADE / "standup.txt")
    assert item.authors == ["Alice Chen", "Bob", "Carol Diaz"]
    assert "German dates now, which was the part" in item.text  # continuation line joined
    assert item.start_seconds == 5.0 and item.end_seconds is None
    assert item.medium == "face-to-face"  # options.media["meeting"]


def test_text_transcript_medium_from_options() -> None:
    options = IngestOptions(media={**IngestOptions().media, "meeting": "virtual"})
    (item,) = read_path(HANDMADE / "interview.transcript", options)
    assert item.medium == "virtual" and item.authors == ["Interviewer", "Engineer"]
    assert item.start_seconds is None


@pytest.mark.parametrize(
    "body",
    [
        "Message-ID: <1@x>\nDate: Mon, 1 Jan 2001\nFrom: a@b.com\nTo: c@d.com\nSubject: Hi\n\nBody: text here\n",
        "The project started in 2019. It grew quickly.\n\nNote: this is prose, not a meeting.\n"
        "Most paragraphs are long sentences without any speaker names at all.\nAnother line of prose.\n",
        "Summary: one speaker only\nSummary: still one speaker\n",
    ],
)
def test_text_sniffer_rejects_non_transcripts(tmp_path: Path, body: str) -> None:
    with pytest.raises(UnreadableInput) as err:
        read_path(_write(tmp_path, "doc.txt", body.encode()))
    assert err.value.reason == "unsupported"


# --- corpora --------------------------------------------------------------------------------


@pytest.mark.corpus
@needs_shared
def test_all_qmsum_meetings() -> None:
    assert SHARED is not None
    files = sorted((SHARED / "meetings" / "qmsum" / "ALL").glob("*/*.json"))
    assert len(files) == 232
    for path in files:
        items = read_path(path)
        assert items and all(i.team for i in items), path.name
        sizes = [_segment_words(i.text) for i in items]
        assert min(sizes) >= 40 and max(sizes) <= int(MERGE_SLACK * 250), path.name


@pytest.mark.corpus
@needs_shared
def test_all_mrda_meetings() -> None:
    assert SHARED is not None
    files = sorted((SHARED / "meetings" / "icsi_mrda" / "database").glob("*.dadb"))
    assert len(files) == 75
    for path in files:
        items = read_path(path)
        assert items, path.name
        assert all(i.start_seconds is not None and i.end_seconds is not None and i.team for i in items), path.name


@pytest.mark.corpus
@needs_shared
def test_segment_bounds_over_real_meetings() -> None:
    """Property over real meetings and several bound settings, straight through `segment_turns`."""
    assert SHARED is not None
    for path in sorted((SHARED / "meetings" / "qmsum" / "ALL" / "train").glob("*.json"))[::8]:
        data = json.loads(path.read_text())
        turns = [Turn(t["speaker"], clean_transcript_text(t["content"])) for t in data["meeting_transcripts"]]
        turns = [t for t in turns if t.text]
        for low, high in ((40, 250), (20, 100), (100, 400)):
            segments = segment_turns(turns, low, high)
            _check_bounds(segments, low, high)
            assert " ".join(t.text for s in segments for t in s).split() == " ".join(t.text for t in turns).split()


# --- sniffing by content, SBV, byte-order marks (issue 22) ------------------------------------

SNIFFED = FIXTURES / "sniffed"


def _ingest_one(path: Path) -> Item:
    from pipeline.ingest import ingest

    records = list(ingest([path]))
    assert [type(r).__name__ for r in records] == ["Item"], records
    return records[0]


@pytest.mark.parametrize(
    ("name", "speakers"),
    [("typical", ["Ana Silva", "Tom Reed"]), ("subrip", ["Lena", "Marcus"]), ("standup.sbv", ["KIM", "RAJ"])],
)
def test_subtitles_are_read_by_content_or_sbv_suffix(name: str, speakers: list[str]) -> None:
    item = _ingest_one(SNIFFED / name)
    assert item.source == "meeting" and item.authors == speakers
    assert item.start_seconds is not None and item.end_seconds is not None


def test_sbv_speaker_changes_and_continued_cues() -> None:
    item = _ingest_one(SNIFFED / "standup.sbv")
    assert item.text.splitlines() == [
        "KIM: Yesterday I finished the export job and wrote its tests. the review is still open.",
        "RAJ: I paired with support on the login bug; we found the cause.",
    ]
    assert (item.start_seconds, item.end_seconds) == (0.599, 11.0)


def test_sbv_without_timings_is_a_parse_error(tmp_path: Path) -> None:
    with pytest.raises(UnreadableInput) as err:
        read_path(_write(tmp_path, "x.sbv", b"just some words\nand more words\n"))
    assert err.value.reason == "parse"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
@pytest.mark.parametrize("name", ["call.srt", "captions"])
def test_every_byte_order_mark_is_decoded(tmp_path: Path, encoding: str, name: str) -> None:
    text = (SNIFFED / "subrip").read_text(encoding="utf-8")
    bom = {"utf-8-sig": b"", "utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}.get(encoding)
    if bom is None:
        bom = b"\xff\xfe\x00\x00" if encoding == "utf-32-le" else b"\x00\x00\xfe\xff"
    item = _ingest_one(_write(tmp_path, name, bom + text.encode(encoding)))
    assert item.authors == ["Lena", "Marcus"]
    assert item.text.startswith("Lena: Morning everyone")
