"""Issue 25 end to end without the model: a mixed archive (tests/fixtures/mixed_archive) ingested,
scored by a stand-in, and aggregated: every team on a time axis, every thread one id, every person
once; and the rules underneath (dates from names and metadata, each References style, identities).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from pipeline.aggregate import aggregate, load_results
from pipeline.aggregate.people import is_non_person, name_key, resolve_people
from pipeline.ingest.base import IngestOptions
from pipeline.ingest.dates import date_from_path, date_in_name, real_date
from pipeline.ingest.driver import ingest
from pipeline.ingest.teams import TeamRules
from pipeline.ingest.threads import Message, resolve_threads, thread_items
from pipeline.items import Item
from pipeline.report import build_timeline

ARCHIVE = Path(__file__).parent / "fixtures" / "mixed_archive"
MODES = ("socialization", "externalization", "combination", "internalization")
# A stand-in for the classifier: the mode a reader would give each text, by its words.
CUES = (
    ("internalization", ("rollback twice", "practice", "understand why", "use it on the pilot", "follow")),
    ("combination", ("combin", "merged", "compiled", "checklist to", "added your timing", "closed")),
    ("externalization", ("put that into words", "describe", "like tuning", "model of", "first concept", "hunch")),
    ("socialization", ("watch", "shadow", "stood next", "by ear", "come along")),
)


def _mode_of(text: str) -> str:
    lower = text.lower()
    for mode, cues in CUES:
        if any(cue in lower for cue in cues):
            return mode
    return "combination"


def _rows(items: list[Item]) -> list[dict]:
    rows = []
    for item in items:
        mode = _mode_of(item.text)
        probs = {m: (0.7 if m == mode else 0.1) for m in MODES}
        row = item.to_dict()
        row.update(mode=mode, probabilities=probs, metaphor=False, model="stand-in 1", meta=json.dumps(item.meta))
        rows.append(row)
    return rows


def _card(directory: Path) -> Path:
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"name": "stand-in", "version": "1", "modes": list(MODES)}))
    matrix = [[30, 5, 10, 5], [2, 300, 50, 15], [3, 80, 350, 7], [1, 10, 8, 50]]
    per_class = {
        m: {
            "precision": matrix[i][i] / sum(r[i] for r in matrix),
            "recall": matrix[i][i] / sum(matrix[i]),
            "support": sum(matrix[i]),
        }
        for i, m in enumerate(MODES)
    }
    dev = {
        "n": sum(map(sum, matrix)),
        "accuracy": sum(matrix[i][i] for i in range(4)) / sum(map(sum, matrix)),
        "macro_f1": 0.7,
        "per_class": per_class,
        "confusion": {"labels": list(MODES), "matrix": matrix},
    }
    record = {
        "config": {"data": {"dev": ["data/seci/dev.jsonl"]}},
        "dev": dev,
        "deliberate_dev": {"precision": 0.0857, "recall": 0.1667, "items": 924},
    }
    (directory / "training.json").write_text(json.dumps(record))
    return directory


@pytest.fixture(scope="module")
def archive_items() -> list[Item]:
    rules = TeamRules.load(ARCHIVE / "teams.yaml")
    records = list(ingest([ARCHIVE / "archive"], IngestOptions(), rules))
    items = [r for r in records if isinstance(r, Item)]
    assert len(items) == len(records), [r for r in records if not isinstance(r, Item)]
    return items


@pytest.fixture(scope="module")
def results(archive_items, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("results")
    (folder / "items.jsonl").write_text("\n".join(json.dumps(r) for r in _rows(archive_items)) + "\n")
    return folder


@pytest.fixture(scope="module")
def agg(results):
    return aggregate(load_results(results), team_rules=TeamRules.load(ARCHIVE / "teams.yaml"))


# --- the targets ---------------------------------------------------------------------------------


def test_every_team_is_on_a_time_axis(agg):
    assert {t.team for t in agg.teams} == {"Field", "Platform"}
    for team in agg.teams:
        assert team.axis == "time", team.team
    assert set(agg.timeline["axis"]) == {"time"}
    # the design sync of 21 March comes before the e-mail of 6 May
    field = agg.items[agg.items["team"] == "Field"]
    order = field["order"].tolist()
    sync = field[field["path"].str.endswith("design-sync-2024-03-21.vtt")]["order"].min()
    lessons = field[field["thread_key"] == "t3-1@acme.example"]["order"].min()
    assert sync < lessons and order == sorted(order)
    # the undated glossary is listed apart; the team stays on its axis
    assert agg.undated["path"].str.endswith("glossary.md").all() and len(agg.undated) == 1
    assert next(t for t in agg.teams if t.team == "Field").undated == 1


def test_every_thread_has_one_id(agg):
    mail = agg.items[agg.items["source"] == "email"]
    threads = mail.groupby(mail["meta"].map(lambda m: m["message_id"].split("-")[0]))["thread_key"].unique()
    assert {k: list(v) for k, v in threads.items()} == {
        "t1": ["t1-1@acme.example"],  # full References chains
        "t2": ["t2-1@acme.example"],  # parent-only References
        "t3": ["t3-1@acme.example"],  # In-Reply-To only, then the subject fallback
        "n": ["n-1@acme.example"],
    }


def test_every_person_is_counted_once(agg):
    teams = {t.team: t for t in agg.teams}
    assert teams["Field"].people == ["Anna Hartmann", "Carla Mendes", "Erik Sandvik"]
    assert teams["Platform"].people == ["Anna Hartmann", "Bob Lee", "Dan Ode"]
    assert teams["Field"].participants == 3 and teams["Platform"].participants == 3
    bulk = agg.items[agg.items["id"].str.endswith("n-1@acme.example")].iloc[0]
    assert bulk["people"] == [] and bulk["ba"] == "systemizing"  # a list is not a person, but a crowd


def test_dates_of_meetings_and_documents(archive_items):
    by_name = {}
    for item in archive_items:
        by_name.setdefault(Path(item.path).name, []).append(item)
    teams_vtt = by_name["design-sync-2024-03-21.vtt"]
    assert teams_vtt[0].timestamp == datetime(2024, 3, 21, 0, 0, 1, tzinfo=UTC)
    assert teams_vtt[0].meta["date_source"] == "path"
    zoom = by_name["GMT20240404-140000_Recording.transcript.vtt"]
    assert zoom[0].timestamp == datetime(2024, 4, 4, 14, 0, 2, tzinfo=UTC)
    assert by_name["start-up-procedure.md"][0].timestamp == datetime(2024, 4, 12, tzinfo=UTC)
    assert by_name["glossary.md"][0].timestamp is None
    placeholder = next(i for i in by_name["acme.mbox"] if i.meta["message_id"] == "t2-2@acme.example")
    assert placeholder.timestamp is None and "placeholder date" in placeholder.warnings


def test_undated_message_is_placed_by_its_thread(agg):
    row = agg.items[agg.items["id"].str.endswith("t2-2@acme.example")].iloc[0]
    first = agg.items[agg.items["id"].str.endswith("t2-1@acme.example")].iloc[0]
    assert row["stamp"] == first["stamp"]


# --- the rules underneath --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("design-sync-2024-03-21", datetime(2024, 3, 21, tzinfo=UTC)),
        ("GMT20240321-100000_Recording", datetime(2024, 3, 21, 10, tzinfo=UTC)),
        ("Design sync-20240321_100000-Meeting Transcript", datetime(2024, 3, 21, 10, tzinfo=UTC)),
        ("retro 21 March 2024", datetime(2024, 3, 21, tzinfo=UTC)),
        ("retro_21st_Mar_2024", datetime(2024, 3, 21, tzinfo=UTC)),
        ("Retro March 21, 2024", datetime(2024, 3, 21, tzinfo=UTC)),
        ("notes_2024_03_21", datetime(2024, 3, 21, tzinfo=UTC)),
        ("21.03.2024 minutes", datetime(2024, 3, 21, tzinfo=UTC)),
        ("pep-0008", None),
        ("0001-private-fields", None),
        ("1979-12-31", None),  # a placeholder is no date
    ],
)
def test_dates_in_names(name, expected):
    assert date_in_name(name) == expected


def test_dates_in_folders():
    assert date_from_path("zoom/2024-03-21 10.00.00 Design sync/closed_caption.vtt") == (
        datetime(2024, 3, 21, 10, tzinfo=UTC),
        True,
    )
    assert date_from_path("minutes/2024-03/notes.md") == (datetime(2024, 3, 1, tzinfo=UTC), False)
    assert date_from_path("a/b/notes.md") == (None, False)
    assert real_date(datetime(1980, 1, 1, tzinfo=UTC)) is None


def test_text_transcript_date_line_is_metadata(tmp_path):
    from pipeline.ingest.meetings import read_path

    path = tmp_path / "sync.txt"
    path.write_text("Date: 21 March 2024\nAnna: We start with the plant visit.\nBob: Fine by me.\n")
    items = read_path(path)
    assert items[0].timestamp == datetime(2024, 3, 21, tzinfo=UTC)
    assert items[0].meta["date_source"] == "metadata"
    assert "Date" not in items[0].authors


def _m(key, refs=(), reply="", subject="s", stamp=0.0, prefix=None):
    return Message(key, key, list(refs), reply, subject, bool(key[-1] != "1") if prefix is None else prefix, stamp)


@pytest.mark.parametrize(
    "messages",
    [
        # full References chains
        [_m("a1"), _m("a2", ["a1"], "a1", stamp=1), _m("a3", ["a1", "a2"], "a2", stamp=2)],
        # parent-only References
        [_m("a1"), _m("a2", ["a1"], stamp=1), _m("a3", ["a2"], stamp=2)],
        # In-Reply-To only
        [_m("a1"), _m("a2", (), "a1", stamp=1), _m("a3", (), "a2", stamp=2)],
        # subject fallback (Enron): nothing but the subject links them
        [_m("a1"), _m("a2", stamp=1), _m("a3", stamp=2)],
        # mixed, and the replies listed first
        [_m("a3", ["a2"], stamp=2), _m("a2", (), "a1", stamp=1), _m("a1")],
    ],
    ids=["full-chain", "parent-only", "in-reply-to", "subject", "mixed"],
)
def test_each_references_style_gives_one_thread_named_by_its_root(messages):
    assert set(resolve_threads(messages).values()) == {"a1"}


def test_missing_root_names_the_thread_by_the_referenced_root():
    messages = [_m("a2", ["a1"], stamp=1), _m("a3", ["a2"], stamp=2)]  # parent-only, a1 not in the archive
    assert set(resolve_threads(messages).values()) == {"a1"}


def test_unrelated_threads_stay_apart():
    messages = [_m("a1", subject="x"), _m("a2", ["a1"]), _m("b1", subject="y"), _m("b2", (), "b1")]
    resolved = resolve_threads(messages)
    assert resolved["a2"] == "a1" and resolved["b2"] == "b1"


def test_thread_items_on_the_mbox(archive_items):
    mail = [i for i in archive_items if i.source == "email"]
    thread_items(mail)
    assert len({i.thread for i in mail}) == 4


def test_people_rules():
    assert name_key("Hartmann, Anna") == name_key(" anna  HARTMANN") == "anna hartmann"
    for address in ("all-staff@x.com", "announce@x.com", "no-reply@x.com", "platform-list@x.com", "dl-ops@x.com"):
        assert is_non_person(address), address
    assert is_non_person("all.worldwide@enron.com") and is_non_person("undisclosed-recipients")
    assert not is_non_person("anna.hartmann@acme.example") and not is_non_person("Anna Hartmann")


def test_a_crowd_of_recipients_is_an_audience_not_people():
    import pandas as pd

    crowd = [f"person{i}@x.com" for i in range(158)]
    frame = pd.DataFrame({"authors": [["jeff@x.com"]], "participants": [crowd], "meta": [{}]})
    resolved = resolve_people(frame)
    assert resolved["people"].iat[0] == ["jeff@x.com"] and bool(resolved["audience"].iat[0])


# --- the report on the archive ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def archive_report(results, tmp_path_factory):
    card = _card(tmp_path_factory.mktemp("model") / "stand-in")
    return build_timeline(results, tmp_path_factory.mktemp("report"), teams=ARCHIVE / "teams.yaml", model_dir=card)


def test_report_first_screen_says_what_the_modes_mean_and_how_reliable(archive_report):
    page = archive_report.index_html.read_text()
    head = page[: page.index("<h2>Teams</h2>")]
    for words in ("sharing experience", "putting it into words", "putting documents together", "learning by doing"):
        assert words in head
    card = archive_report.card
    assert card is not None and f"{card.accuracy:.0%} of them" in head  # read from the card, not written here
    assert f"{card.per_mode['internalization'].precision:.0%}" in head
    assert "90% range" in head and "Ba</b> is the shared context" in head
    assert "2024-03-18 to 2024-05-09" in head  # what was analysed
    assert "metaphor flags" not in page.lower()  # behind the switch


def test_report_examples_per_mode_and_no_text(archive_report, results, tmp_path):
    page = archive_report.index_html.read_text()
    assert page.count('<ul class="examples">') >= 4
    assert "tuning an instrument" in page
    quiet = build_timeline(results, tmp_path / "quiet", teams=ARCHIVE / "teams.yaml", include_text=False)
    quiet_page = quiet.index_html.read_text()
    assert "tuning an instrument" not in quiet_page and "--no-text" in quiet_page


def test_report_intervals_and_sparse_periods(archive_report):
    field = next(t for t in archive_report.teams if t.team == "Field")
    for mode in MODES:
        assert field.shares_low[mode] <= field.shares[mode] <= field.shares_high[mode]
    assert field.shares_high["combination"] - field.shares_low["combination"] > 0.1
    timeline = json.loads(archive_report.metrics_json.read_text())
    assert timeline["min_period_items"] == 5
    page = archive_report.index_html.read_text()
    assert "class=sparse" in page and "too few items" in page


def test_metaphor_rate_behind_a_switch_with_its_precision(results, tmp_path):
    card = _card(tmp_path / "stand-in")
    report = build_timeline(results, tmp_path / "out", model_dir=card, show_metaphor=True)
    page = report.index_html.read_text()
    assert "metaphor flags" in page and "only 9% of flags were real metaphors" in page


def test_intervals_widen_with_the_confusion():
    from pipeline.aggregate.intervals import share_intervals

    probs = np.tile([0.1, 0.1, 0.7, 0.1], (40, 1))
    plain = share_intervals(probs)
    wide = share_intervals(
        probs, confusion=np.array([[30, 5, 10, 5], [2, 300, 50, 15], [3, 80, 350, 7], [1, 10, 8, 50]])
    )
    assert (wide[1] - wide[0] > plain[1] - plain[0]).all()
