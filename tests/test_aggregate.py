"""Timelines, ba and the knowledge-spiral measures, on hand-made sequences and result fixtures.

Fixtures in tests/fixtures/results are hand-made result rows (see SOURCE.md there): `ami` has two
undated AMI-like teams written in reverse order, `email` two dated mail teams (one with an undated
thread), `partial` an unfinished run's `parts/` with a repeated id and a cut last line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.aggregate import aggregate, ba_of, load_results
from pipeline.aggregate.results import ResultsNotFound
from pipeline.aggregate.spiral import (
    amplification,
    coherence,
    find_turns,
    forward_backward,
    stall_mode,
    transition_matrix,
)
from pipeline.aggregate.timeline import natural_key, resolve_freq
from pipeline.ingest.teams import TeamRules

FIXTURES = Path(__file__).parent / "fixtures" / "results"
S, E, C, I = range(4)  # noqa: E741  (the paper's letters)


def _team(agg, name):
    return next(t for t in agg.teams if t.team == name)


# --- ba ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("people", "medium", "expected"),
    [
        (0, "face-to-face", "originating"),
        (1, "face-to-face", "originating"),
        (2, "face-to-face", "originating"),
        (3, "face-to-face", "dialoguing"),
        (12, "face-to-face", "dialoguing"),
        (3, "virtual", "systemizing"),
        (40, "virtual", "systemizing"),
        (2, "virtual", "exercising"),
        (1, "virtual", "exercising"),
    ],
)
def test_ba_of_follows_the_papers_quadrants(people, medium, expected):
    assert ba_of(people, medium) == expected


@pytest.mark.parametrize(("people", "medium"), [(2, "phone"), (-1, "virtual")])
def test_ba_of_rejects_unknown_medium_and_negative_counts(people, medium):
    with pytest.raises(ValueError):
        ba_of(people, medium)


# --- turns, stalls, coherence, amplification ----------------------------------------------------


def _spans(scan):
    return [(t.start, t.end) for t in scan.turns]


@pytest.mark.parametrize(
    ("sequence", "turns", "stalls", "open_turn"),
    [
        ("SECI", [(0, 3)], [], (None, None)),
        # repeats of the current mode are part of the turn; the end is the first I
        ("SSEECCII", [(0, 6)], [], (None, None)),
        # no S, no turn
        ("ECIECI", [], [], (None, None)),
        # an S during an open turn is a detour, so turns do not overlap
        ("SESECI", [(0, 5)], [], (None, None)),
        # two items of detour (S, S) at stage C are tolerated
        ("SECSSI", [(0, 5)], [], (None, None)),
        # three items of detour break the turn at E; the scan resumes inside the detour, finds no S
        # there, and the next S opens a completed turn
        ("SEIIISECI", [(5, 8)], [E], (None, None)),
        # a turn still open at the end is open, not stalled
        ("SECIS", [(0, 3)], [], (4, S)),
        ("SECISEC", [(0, 3)], [], (4, C)),
        # two turns back to back, then a stall at C whose detour holds the S of an open turn
        ("SECISECISEC" + "SEE", [(0, 3), (4, 7)], [C], (11, E)),
    ],
)
def test_find_turns_on_hand_made_sequences(sequence, turns, stalls, open_turn):
    scan = find_turns(sequence)
    assert _spans(scan) == turns
    assert scan.stalls == stalls
    assert (scan.open_start, scan.open_stage) == open_turn


def test_detour_limit_is_configurable():
    assert _spans(find_turns("SECSSI", max_detour=2)) == [(0, 5)]
    scan = find_turns("SECSSI", max_detour=1)
    # S S breaks the turn at C; the scan resumes at the first S of the detour, which opens a new turn
    assert _spans(scan) == []
    assert scan.stalls == [C]
    assert (scan.open_start, scan.open_stage) == (3, S)
    # with no detour allowed, the S at 2 breaks the turn at E and opens one that C breaks at S
    scan = find_turns("SESCI", max_detour=0)
    assert (_spans(scan), scan.stalls) == ([], [E, S])
    with pytest.raises(ValueError):
        find_turns("SECI", max_detour=-1)


def test_find_turns_accepts_names_letters_and_indices():
    names = ["socialization", "externalization", "combination", "internalization"]
    assert _spans(find_turns(names)) == _spans(find_turns([0, 1, 2, 3])) == _spans(find_turns("seci")) == [(0, 3)]
    with pytest.raises(ValueError):
        find_turns("SEXI")


def test_stall_mode_is_the_most_common_stage_ties_to_the_earlier_mode():
    assert stall_mode([]) is None
    assert stall_mode([C, C, E]) == C
    assert stall_mode([C, E]) == E
    assert stall_mode([I, S, I]) == I


def test_transition_matrix_and_coherence_count_forward_and_backward_only():
    matrix = transition_matrix("SECIS")
    assert matrix.tolist() == [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0]]
    assert coherence(matrix) == 1.0
    # S->E forward, E->S backward, S->C a skip (excluded)
    assert forward_backward(transition_matrix("SESC")) == (1, 1)
    assert coherence(transition_matrix("SESC")) == 0.5
    # S->I is backward (the reverse of I->S), I->S forward
    assert coherence(transition_matrix("SIS")) == 0.5
    # only self-transitions and skips: undefined
    assert coherence(transition_matrix("SSCCSS")) is None
    # I->C and C->E backward, E->I a skip, I->S forward
    assert coherence(transition_matrix("ICEIS")) == pytest.approx(1 / 3)


def test_amplification_is_the_least_squares_slope():
    assert amplification([5]) is None
    assert amplification([]) is None
    assert amplification([2, 4]) == 2.0
    assert amplification([3, 3, 3]) == 0.0
    assert amplification([1, 2, 6]) == pytest.approx(2.5)
    assert amplification([6, 4, 2]) == pytest.approx(-2.0)


# --- loading ------------------------------------------------------------------------------------


def test_load_results_normalizes_columns():
    frame = load_results(FIXTURES / "ami")
    assert len(frame) == 18
    assert frame["timestamp"].isna().all()
    row = frame.set_index("id").loc["ES2002a-0"]
    assert row["meta"] == {"meeting": "ES2002a"}
    assert row["participants"] == ["A", "B"]
    assert row["p_socialization"] == pytest.approx(0.7)
    assert sum(row[f"p_{m}"] for m in ("socialization", "externalization", "combination", "internalization")) == 1


def test_partial_run_reads_parts_keeps_last_row_and_skips_a_cut_line(caplog):
    frame = load_results(FIXTURES / "partial")
    assert sorted(frame["id"]) == ["x1", "x2", "x3"]
    assert frame.set_index("id").loc["x2", "mode"] == "combination"  # the later part wins
    assert "unreadable line skipped" in caplog.text


def test_missing_results_raise(tmp_path):
    with pytest.raises(ResultsNotFound):
        load_results(tmp_path)


def test_parquet_layout_gives_the_same_metrics(tmp_path):
    rows = [json.loads(line) for line in (FIXTURES / "ami" / "items.jsonl").read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "items.parquet")
    from_parquet = aggregate(load_results(tmp_path))
    from_jsonl = aggregate(load_results(FIXTURES / "ami"))
    assert [t.to_dict() for t in from_parquet.teams] == [t.to_dict() for t in from_jsonl.teams]


def test_missing_probabilities_fall_back_to_the_mode(tmp_path):
    rows = [
        {"id": "a", "team": "T", "mode": "combination"},
        {"id": "b", "team": "T", "probabilities": {"socialization": 2, "externalization": 2}},
    ]
    (tmp_path / "items.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    frame = load_results(tmp_path).set_index("id")
    assert frame.loc["a", "p_combination"] == 1.0
    assert frame.loc["b", "p_socialization"] == 0.5
    assert frame.loc["b", "mode"] == "socialization"  # argmax, ties to the earlier mode


# --- ordinal axis (undated AMI-like meetings) -----------------------------------------------------


def test_undated_meetings_are_ordered_a_to_d_one_period_each():
    agg = aggregate(load_results(FIXTURES / "ami"))
    assert agg.freq is None
    assert [t.team for t in agg.teams] == ["ES2002", "TS3000"]  # by item count
    es = agg.timeline[agg.timeline["team"] == "ES2002"]
    assert es["period"].tolist() == ["ES2002a", "ES2002b", "ES2002c", "ES2002d"]
    assert es["period_index"].tolist() == [0, 1, 2, 3]
    assert set(es["axis"]) == {"ordinal"}
    first = es.iloc[0]
    assert first["items"] == 3
    assert first["participants"] == 2
    assert first["soft_socialization"] == pytest.approx(1.5)
    assert first["share_socialization"] == pytest.approx(0.5)
    assert first["dominant"] == "socialization"
    assert es.iloc[2]["metaphor_rate"] == pytest.approx(2 / 3)
    assert es["ba_dialoguing"].tolist() == [0, 1, 3, 1]
    assert es["ba_originating"].tolist() == [3, 2, 0, 2]


def test_spiral_metrics_of_the_ordinal_team():
    es = _team(aggregate(load_results(FIXTURES / "ami")), "ES2002")
    assert "".join(m[0].upper() for m in es.mode_sequence) == "SSECISEECICI"
    assert [(t.start, t.end) for t in es.turns] == [(0, 4), (5, 9)]
    assert [(t.start_period, t.end_period) for t in es.turns] == [("ES2002a", "ES2002b"), ("ES2002b", "ES2002d")]
    assert [t.participants for t in es.turns] == [2, 4]
    assert [t.duration_periods for t in es.turns] == [1, 2]
    assert es.turns[0].duration_days is None
    assert es.amplification == 2.0
    assert es.amplification_positive is True
    assert (es.forward, es.backward) == (8, 1)
    assert es.coherence == pytest.approx(8 / 9)
    assert es.stall_mode is None
    assert es.metaphor_rate == pytest.approx(3 / 12)


def test_stall_mode_of_a_team():
    ts = _team(aggregate(load_results(FIXTURES / "ami")), "TS3000")
    assert ts.turns_completed == 0
    assert ts.stall_mode == "externalization"
    assert ts.coherence == 0.5  # S->E forward, I->C backward; E->I skip and I->I self excluded
    assert ts.amplification is None


# --- dated data ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("freq", "periods"),
    [
        ("D", ["2001-01-02", "2001-01-03", "2001-01-10", "2001-01-20"]),
        ("auto", ["2001-01-02", "2001-01-03", "2001-01-10", "2001-01-20"]),
        ("W", ["2001-01-01", "2001-01-08", "2001-01-15"]),  # weeks start on Monday
        ("M", ["2001-01"]),
    ],
)
def test_dated_team_is_binned_by_freq(freq, periods):
    agg = aggregate(load_results(FIXTURES / "email"), freq=freq)
    trading = agg.timeline[agg.timeline["team"] == "Trading"]
    assert trading["period"].tolist() == periods
    assert set(trading["axis"]) == {"time"}
    assert trading["items"].sum() == 5
    assert agg.freq == ("D" if freq == "auto" else freq)


def test_undated_item_borrows_its_threads_stamp_and_team_stays_on_the_time_axis():
    agg = aggregate(load_results(FIXTURES / "email"), freq="D")
    items = agg.items.set_index("id")
    assert items.loc["t3", "stamp"] == items.loc["t2", "stamp"]
    assert items.loc["t3", "period"] == "2001-01-03"
    trading = _team(agg, "Trading")
    assert trading.axis == "time"
    assert "".join(m[0].upper() for m in trading.mode_sequence) == "SECIS"
    (turn,) = trading.turns
    # 2001-01-02T09:00-08:00 is 17:00 UTC; the turn closes 2001-01-10T12:00Z
    assert turn.duration_days == pytest.approx(7 + 19 / 24)
    assert turn.participants == 4
    assert trading.open_turn_stage == "socialization"


def test_team_with_an_undated_thread_keeps_its_time_axis_and_lists_the_thread_apart():
    # issue 25: one undated thread used to switch the whole team to thread order
    agg = aggregate(load_results(FIXTURES / "email"))
    legal = agg.timeline[agg.timeline["team"] == "Legal"]
    assert set(legal["axis"]) == {"time"}
    assert legal["items"].sum() == 1  # the dated memo-1 thread
    undated = agg.undated[agg.undated["team"] == "Legal"]
    assert sorted(undated["id"]) == ["l1", "l3"] and set(undated["thread_key"]) == {"memo-2"}
    team = _team(agg, "Legal")
    assert (team.axis, team.items, team.undated) == ("time", 3, 2)
    assert team.mode_sequence == ["externalization"]  # the sequence needs an order; undated items have none
    assert team.shares["combination"] == pytest.approx((0.1 + 0.7 + 0.1) / 3)  # shares count every item


@pytest.mark.parametrize(("days", "expected"), [(0, "D"), (61, "D"), (62, "W"), (729, "W"), (730, "M"), (3000, "M")])
def test_auto_freq_follows_the_span(days, expected):
    stamps = pd.Series(pd.to_datetime(["2001-01-01", "2001-01-01"], utc=True)) + pd.Series(
        [pd.Timedelta(0), pd.Timedelta(days=days)]
    )
    assert resolve_freq("auto", stamps) == expected


def test_unknown_freq_is_rejected():
    with pytest.raises(ValueError):
        aggregate(load_results(FIXTURES / "email"), freq="Q")


def test_natural_thread_order():
    threads = ["ES2002d", "ES2002b", "IS1003a", "ES2002a", "ES2002c", "item10", "item2"]
    assert sorted(threads, key=natural_key) == [
        "ES2002a",
        "ES2002b",
        "ES2002c",
        "ES2002d",
        "IS1003a",
        "item2",
        "item10",
    ]


# --- media override and teams files ----------------------------------------------------------------


def test_media_override_changes_ba():
    frame = load_results(FIXTURES / "email")
    virtual = _team(aggregate(frame), "Trading").ba_counts
    # t2 has three people (bob to alice and carol): collective; the others have two
    assert virtual == {"originating": 0, "dialoguing": 0, "systemizing": 1, "exercising": 4}
    in_person = _team(aggregate(frame, media={"email": "face-to-face"}), "Trading").ba_counts
    assert in_person == {"originating": 4, "dialoguing": 1, "systemizing": 0, "exercising": 0}


def test_yaml_teams_file_overrides_teams(tmp_path):
    rules = tmp_path / "teams.yaml"
    rules.write_text(
        "teams:\n"
        "  Design:\n    threads: [ES2002a, ES2002b, ES2002c, ES2002d]\n"
        "  Mail:\n    paths: ['mail/Legal/*', 'mail/Trading/*']\n"
    )
    agg = aggregate(load_results(FIXTURES / "ami"), team_rules=TeamRules.load(rules))
    assert sorted(t.team for t in agg.teams) == ["Design", "TS3000"]
    assert _team(agg, "Design").turns_completed == 2
    mail = aggregate(load_results(FIXTURES / "email"), team_rules=TeamRules.load(rules))
    assert {t.team: t.items for t in mail.teams} == {"Mail": 8}


def test_csv_teams_file_splits_a_team(tmp_path):
    rules = tmp_path / "teams.csv"
    rules.write_text("kind,key,team\nthread,TS3000a,First half\npath,meetings/TS3000b.json,Second half\n")
    agg = aggregate(load_results(FIXTURES / "ami"), team_rules=TeamRules.load(rules))
    assert sorted(t.team for t in agg.teams) == ["ES2002", "First half", "Second half"]


def test_teams_file_matches_people(tmp_path):
    rules = tmp_path / "teams.csv"
    rules.write_text("kind,key,team\nperson,ALICE@enron.com,Alice's desk\n")
    agg = aggregate(load_results(FIXTURES / "email"), team_rules=TeamRules.load(rules))
    # every Trading row has alice as author or participant; Legal's do not
    assert {t.team: t.items for t in agg.teams} == {"Alice's desk": 5, "Legal": 3}
