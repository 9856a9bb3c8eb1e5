"""Per-team timelines and spiral metrics over normalized result rows (`load_results`).

**Time axis.** Each team gets one of two axes:

* `time`: when every item of the team has a timestamp, its own or one borrowed from its thread
  (an undated item takes the nearest earlier dated item's stamp in the same thread, by `position`,
  else the nearest later one). Items are ordered by (timestamp, thread, position, id) and binned
  into calendar periods of `freq`: `D` (days), `W` (weeks, Monday to Sunday) or `M` (months).
  `auto` chooses one from the span of all dated items: D under 62 days, W under 730 days, else M.
* `ordinal`: when any item of the team stays undated (the AMI meetings have no dates at all). Each
  thread is one period; threads are ordered by their earliest timestamp where they have one (those
  come first), then by natural order of the thread id (`ES2002a` < `ES2002b` < `ES2002d` <
  `ES2002d2`), and items inside a thread by (position, id). A team with some dated and some
  undated threads is thus ordered, never dropped.

An item's thread is its `thread`, else its `meta["meeting"]`, else its path, else its id.

**Per period** (`timeline_table`): items; distinct participants (authors and participants, counted
once); soft counts (the sum of each mode's probability, so an uncertain item weighs less) and shares
(soft count / items); the dominant mode (largest soft count, ties to the earlier mode in S, E, C, I
order); the metaphor rate (share of items with `metaphor` true); the count of items in each ba.

**Ba** is recomputed for every row with `ba_of(people, medium)`, where `medium` is the row's own
unless `media` maps the row's `source` to another one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from pipeline.aggregate import spiral
from pipeline.aggregate.ba import BA_TYPES, ba_of
from pipeline.aggregate.results import MODES, PROB_COLUMNS
from pipeline.ingest.teams import TeamRules
from pipeline.items import MEDIA, SOURCES, Item

log = logging.getLogger(__name__)

FREQS = ("auto", "D", "W", "M")
DAILY_MAX_DAYS = 62
WEEKLY_MAX_DAYS = 730


def natural_key(text: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key that orders digits by value: ES2002a < ES2002b, item2 < item10."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", text) if part
    )


def resolve_freq(freq: str, stamps: pd.Series) -> str:
    """The concrete bin (D, W or M) for `freq`; `auto` picks by the span of `stamps`."""
    if freq not in FREQS:
        raise ValueError(f"unknown freq {freq!r}; expected one of {FREQS}")
    if freq != "auto":
        return freq
    stamps = stamps.dropna()
    if stamps.empty:
        return "D"
    span_days = (stamps.max() - stamps.min()) / pd.Timedelta(days=1)
    if span_days < DAILY_MAX_DAYS:
        return "D"
    return "W" if span_days < WEEKLY_MAX_DAYS else "M"


def people_of(authors: list[str], participants: list[str]) -> set[str]:
    return {p for p in (*authors, *participants) if p}


def apply_media_and_ba(frame: pd.DataFrame, media: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Override each row's medium by its source where `media` says so, then set its ba."""
    frame = frame.copy()
    if media:
        frame["medium"] = [media.get(src, med) for src, med in zip(frame["source"], frame["medium"], strict=True)]
    ba = []
    for authors, participants, medium in zip(frame["authors"], frame["participants"], frame["medium"], strict=True):
        try:
            ba.append(ba_of(len(people_of(authors, participants)), medium))
        except ValueError:
            log.warning("unknown medium %r counted as virtual", medium)
            ba.append(ba_of(len(people_of(authors, participants)), "virtual"))
    frame["ba"] = ba
    return frame


def apply_team_rules(frame: pd.DataFrame, rules: TeamRules) -> pd.DataFrame:
    """Reassign the rows a teams-file rule matches (`TeamRules.match`); other rows keep their team."""
    frame = frame.copy()
    teams = []
    for row in frame.itertuples(index=False):
        # the rules match on an Item: path, thread and people are all they read
        item = Item(
            id=row.id,
            text="",
            source=row.source if row.source in SOURCES else "other",
            path=row.path or "",
            thread=row.thread or row.meta.get("meeting"),
            authors=row.authors,
            participants=row.participants,
            medium=row.medium if row.medium in MEDIA else "virtual",
        )
        teams.append(rules.match(item) or row.team)
    frame["team"] = teams
    return frame


def order_items(frame: pd.DataFrame, freq: str = "auto") -> tuple[pd.DataFrame, str | None]:
    """Add `axis`, `thread_key`, `order`, `period`, `period_index`, `period_start` (rules above).

    Returns the ordered table (teams by descending item count, then name; items in team order) and
    the concrete freq used for teams on the time axis (None when no team is).
    """
    frame = frame.copy()
    frame["thread_key"] = [
        thread or meta.get("meeting") or path or item_id
        for thread, meta, path, item_id in zip(frame["thread"], frame["meta"], frame["path"], frame["id"], strict=True)
    ]
    frame = frame.sort_values(["team", "thread_key", "position", "id"], kind="stable")
    by_thread = frame.groupby(["team", "thread_key"], sort=False)["timestamp"]
    frame["stamp"] = by_thread.ffill()
    frame["stamp"] = frame.groupby(["team", "thread_key"], sort=False)["stamp"].bfill()

    dated = frame.groupby("team")["stamp"].transform(lambda s: s.notna().all())
    frame["axis"] = np.where(dated, "time", "ordinal")
    time_rows = frame["axis"] == "time"
    resolved = resolve_freq(freq, frame.loc[time_rows, "stamp"]) if time_rows.any() else None
    if freq not in FREQS:
        raise ValueError(f"unknown freq {freq!r}; expected one of {FREQS}")

    teams: list[pd.DataFrame] = []
    for _, team in frame.groupby("team", sort=False):
        first_stamp = team.groupby("thread_key")["stamp"].min()
        nanos = first_stamp.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        undated = first_stamp.isna().to_numpy()
        thread_order = sorted(
            zip(
                undated,
                np.where(undated, 0, nanos),
                map(natural_key, first_stamp.index),
                first_stamp.index,
                strict=True,
            )
        )
        rank = {entry[-1]: i for i, entry in enumerate(thread_order)}
        team = team.assign(thread_rank=team["thread_key"].map(rank))
        if team["axis"].iat[0] == "time":
            team = team.sort_values(["stamp", "thread_rank", "position", "id"], kind="stable")
            naive = team["stamp"].dt.tz_convert("UTC").dt.tz_localize(None)
            starts = naive.dt.to_period(resolved).dt.start_time.dt.tz_localize("UTC")
            fmt = "%Y-%m" if resolved == "M" else "%Y-%m-%d"
            team = team.assign(period_start=starts, period=starts.dt.strftime(fmt))
        else:
            team = team.sort_values(["thread_rank", "position", "id"], kind="stable")
            team = team.assign(period_start=team["thread_key"].map(first_stamp), period=team["thread_key"])
        team = team.assign(
            order=np.arange(len(team)),
            period_index=pd.factorize(team["period"])[0],
        )
        teams.append(team)
    if not teams:
        return frame.assign(order=[], period=[], period_index=[], period_start=[], thread_rank=[]), resolved
    teams.sort(key=lambda t: (-len(t), str(t["team"].iat[0])))
    ordered = pd.concat(teams, ignore_index=True)
    return ordered.drop(columns=["thread_rank"]), resolved


def _dominant(soft: np.ndarray) -> str:
    # argmax returns the first maximum, which is the tie rule documented above
    return MODES[int(np.argmax(soft))]


TIMELINE_COLUMNS = (
    "team",
    "axis",
    "period_index",
    "period",
    "period_start",
    "items",
    "participants",
    "threads",
    *(f"soft_{m}" for m in MODES),
    *(f"share_{m}" for m in MODES),
    "dominant",
    "metaphor_rate",
    *(f"ba_{b}" for b in BA_TYPES),
)


def timeline_table(ordered: pd.DataFrame) -> pd.DataFrame:
    """One row per team and period, with the columns described in the module docstring."""
    keys = ["team", "period_index"]
    groups = ordered.groupby(keys, sort=False)
    # "axis" is also a keyword of `agg`, hence the rename afterwards
    table = groups.agg(
        time_axis=("axis", "first"),
        period=("period", "first"),
        period_start=("period_start", "first"),
        items=("id", "size"),
        threads=("thread_key", "nunique"),
        metaphor_rate=("metaphor", "mean"),
    )
    people = pd.DataFrame(
        [
            (team, period, person)
            for team, period, authors, participants in zip(
                ordered["team"], ordered["period_index"], ordered["authors"], ordered["participants"], strict=True
            )
            for person in people_of(authors, participants)
        ],
        columns=[*keys, "person"],
    )
    table["participants"] = people.groupby(keys)["person"].nunique().reindex(table.index, fill_value=0)
    soft = groups[list(PROB_COLUMNS)].sum()
    for i, mode in enumerate(MODES):
        table[f"soft_{mode}"] = soft[PROB_COLUMNS[i]]
        table[f"share_{mode}"] = soft[PROB_COLUMNS[i]] / table["items"]
    # argmax returns the first maximum, which is the tie rule documented above
    table["dominant"] = [MODES[i] for i in soft.to_numpy().argmax(axis=1)] if len(soft) else []
    ba = ordered.groupby([*keys, "ba"], sort=False).size().unstack(fill_value=0).reindex(table.index, fill_value=0)
    for name in BA_TYPES:
        table[f"ba_{name}"] = ba.get(name, 0)
    table = table.rename(columns={"time_axis": "axis"}).reset_index()
    table["period_start"] = pd.to_datetime(table["period_start"], utc=True)
    table["metaphor_rate"] = table["metaphor_rate"].astype(float)
    return table.reindex(columns=list(TIMELINE_COLUMNS))


@dataclass
class TeamTurn:
    """A completed turn located in the team's items: indices into the team order, times, people."""

    start: int
    end: int
    start_period: str
    end_period: str
    start_time: str | None  # ISO 8601; None on the ordinal axis when the items are undated
    end_time: str | None
    duration_items: int  # end - start: ordinal steps between the opening S and the closing I
    duration_periods: int
    duration_days: float | None  # on the time axis only
    participants: int


@dataclass
class TeamMetrics:
    """Everything the report shows for one team; definitions in `spiral` and this module."""

    team: str
    axis: str
    items: int
    participants: int
    periods: int
    first_period: str
    last_period: str
    dominant_mode: str
    shares: dict[str, float]
    turns_completed: int
    turns: list[TeamTurn]
    stall_mode: str | None
    stall_counts: dict[str, int]
    open_turn_stage: str | None
    coherence: float | None
    forward: int
    backward: int
    amplification: float | None
    amplification_positive: bool | None
    metaphor_rate: float
    transitions: list[list[int]]
    period_transitions: list[list[int]]
    period_coherence: float | None
    ba_counts: dict[str, int]
    mode_sequence: list[str] = field(repr=False)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _iso(stamp: object) -> str | None:
    return stamp.isoformat() if isinstance(stamp, pd.Timestamp) and pd.notna(stamp) else None


def team_metrics(
    team_rows: pd.DataFrame, team_timeline: pd.DataFrame, max_detour: int = spiral.DEFAULT_MAX_DETOUR
) -> TeamMetrics:
    """Spiral metrics for one team's ordered rows (from `order_items`) and its timeline rows."""
    modes = [spiral.mode_index(m) for m in team_rows["mode"]]
    people = [people_of(a, p) for a, p in zip(team_rows["authors"], team_rows["participants"], strict=True)]
    scan = spiral.find_turns(modes, max_detour=max_detour)
    axis = team_rows["axis"].iat[0]
    stamps = team_rows["stamp"].tolist()
    periods = team_rows["period"].tolist()
    period_index = team_rows["period_index"].tolist()
    turns = []
    for turn in scan.turns:
        start_time, end_time = stamps[turn.start], stamps[turn.end]
        days = (end_time - start_time) / pd.Timedelta(days=1) if axis == "time" else None
        turns.append(
            TeamTurn(
                start=turn.start,
                end=turn.end,
                start_period=str(periods[turn.start]),
                end_period=str(periods[turn.end]),
                start_time=_iso(start_time),
                end_time=_iso(end_time),
                duration_items=turn.end - turn.start,
                duration_periods=int(period_index[turn.end] - period_index[turn.start]),
                duration_days=float(days) if days is not None else None,
                participants=len(set().union(*people[turn.start : turn.end + 1])),
            )
        )
    matrix = spiral.transition_matrix(modes)
    forward, backward = spiral.forward_backward(matrix)
    period_matrix = spiral.transition_matrix(team_timeline["dominant"].tolist())
    slope = spiral.amplification([t.participants for t in turns])
    stall = spiral.stall_mode(scan.stalls)
    soft = team_rows[list(PROB_COLUMNS)].to_numpy().sum(axis=0)
    counts = team_rows["ba"].value_counts()
    return TeamMetrics(
        team=str(team_rows["team"].iat[0]),
        axis=axis,
        items=len(team_rows),
        participants=len(set().union(*people)),
        periods=len(team_timeline),
        first_period=str(periods[0]),
        last_period=str(periods[-1]),
        dominant_mode=_dominant(soft),
        shares={mode: float(soft[i] / len(team_rows)) for i, mode in enumerate(MODES)},
        turns_completed=len(turns),
        turns=turns,
        stall_mode=MODES[stall] if stall is not None else None,
        stall_counts={MODES[m]: scan.stalls.count(m) for m in range(len(MODES)) if m in scan.stalls},
        open_turn_stage=MODES[scan.open_stage] if scan.open_stage is not None else None,
        coherence=spiral.coherence(matrix),
        forward=forward,
        backward=backward,
        amplification=slope,
        amplification_positive=(slope > 0) if slope is not None else None,
        metaphor_rate=float(team_rows["metaphor"].mean()),
        transitions=matrix.tolist(),
        period_transitions=period_matrix.tolist(),
        period_coherence=spiral.coherence(period_matrix),
        ba_counts={ba: int(counts.get(ba, 0)) for ba in BA_TYPES},
        mode_sequence=[MODES[m] for m in modes],
    )


@dataclass
class Aggregation:
    """The ordered rows, the timeline table and each team's metrics (teams by item count)."""

    items: pd.DataFrame
    timeline: pd.DataFrame
    teams: list[TeamMetrics]
    freq: str | None


def aggregate(
    frame: pd.DataFrame,
    freq: str = "auto",
    media: Mapping[str, str] | None = None,
    team_rules: TeamRules | None = None,
    max_detour: int = spiral.DEFAULT_MAX_DETOUR,
) -> Aggregation:
    """Teams, ba, order, periods, timeline and spiral metrics over normalized result rows."""
    if team_rules is not None:
        frame = apply_team_rules(frame, team_rules)
    frame = apply_media_and_ba(frame, media)
    ordered, resolved = order_items(frame, freq)
    timeline = timeline_table(ordered)
    metrics = []
    timeline_by_team = dict(list(timeline.groupby("team", sort=False)))
    for team, rows in ordered.groupby("team", sort=False):
        metrics.append(team_metrics(rows, timeline_by_team[team], max_detour=max_detour))
    return Aggregation(items=ordered, timeline=timeline, teams=metrics, freq=resolved)
