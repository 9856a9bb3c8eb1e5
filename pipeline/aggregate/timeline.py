"""Per-team timelines and spiral metrics over normalized result rows (`load_results`).

**Threads and people first.** E-mail rows get their conversation's root as thread
(`pipeline.ingest.threads.resolve_threads`, from the `meta` the reader writes, so every message of a
conversation shares one id whatever References style its client used), and every row gets its
`people`: one id per person, lists and bulk senders left out (`pipeline.aggregate.people`, with the
teams file's aliases). Participant counts, ba, turn sizes and amplification count these people.

**Time axis.** Each team gets one of two axes:

* `time`: when at least one item of the team has a timestamp. An undated item takes the stamp of
  the nearest earlier dated item in its thread (by `position`), else the nearest later one; an item
  whose thread has no date at all is *undated*: it is kept apart (`Aggregation.undated`, listed in
  the report and counted in the team's items and shares) and never switches the team to the
  ordinal axis. Placed items are ordered by (timestamp, thread, position, id) and binned into
  calendar periods of `freq`: `D` (days), `W` (weeks, Monday to Sunday) or `M` (months). `auto`
  chooses one from the span of all dated items: D under 62 days, W under 730 days, else M.
* `ordinal`: when no item of the team has a date (the AMI meetings have none). Each thread is one
  period; threads are ordered by natural order of the thread id (`ES2002a` < `ES2002b` <
  `ES2002d` < `ES2002d2`), items inside a thread by (position, id).

An item's thread is its (resolved) `thread`, else its `meta["meeting"]`, else its path, else its id.

**Per period** (`timeline_table`): items; distinct people; soft counts (the sum of each mode's
probability, so an uncertain item weighs less) and shares (soft count / items) with an interval
(`share_<mode>_low`/`_high`, `pipeline.aggregate.intervals`: bootstrap over items, widened by the
model's measured confusion); `sparse` when the period has fewer than `min_period_items` items (the
report greys those: a share of one item says nothing); the dominant mode (largest soft count, ties
to the earlier mode in S, E, C, I order); the metaphor rate (share of items with `metaphor` true);
the count of items in each ba; `period_end` (the start of the next calendar period on the time axis).

**Ba** is recomputed for every row with `ba_of(people, medium)`, where `medium` is the row's own
unless `media` maps the row's `source` to another one, and an item that reached a list or a crowd
(`audience`) counts as collective.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from pipeline.aggregate import spiral
from pipeline.aggregate.ba import BA_TYPES, INDIVIDUAL_MAX_PEOPLE, ba_of
from pipeline.aggregate.intervals import share_intervals
from pipeline.aggregate.people import resolve_people
from pipeline.aggregate.results import MODES, PROB_COLUMNS
from pipeline.ingest.teams import TeamRules
from pipeline.ingest.threads import message_of, resolve_threads
from pipeline.items import MEDIA, SOURCES, Item

log = logging.getLogger(__name__)

FREQS = ("auto", "D", "W", "M")
DAILY_MAX_DAYS = 62
WEEKLY_MAX_DAYS = 730
MIN_PERIOD_ITEMS = 5
_PERIOD_LENGTH = {"D": pd.DateOffset(days=1), "W": pd.DateOffset(weeks=1), "M": pd.DateOffset(months=1)}


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
    """The raw strings of an item's people (before `resolve_people` merges them)."""
    return {p for p in (*authors, *participants) if p}


def _people_column(frame: pd.DataFrame) -> list[list[str]]:
    if "people" in frame.columns:
        return list(frame["people"])
    return [sorted(people_of(a, p)) for a, p in zip(frame["authors"], frame["participants"], strict=True)]


def apply_media_and_ba(frame: pd.DataFrame, media: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Override each row's medium by its source where `media` says so, then set its ba."""
    frame = frame.copy()
    if media:
        frame["medium"] = [media.get(src, med) for src, med in zip(frame["source"], frame["medium"], strict=True)]
    audience = frame["audience"] if "audience" in frame.columns else [False] * len(frame)
    ba = []
    for people, crowd, medium in zip(_people_column(frame), audience, frame["medium"], strict=True):
        # a message to a list reached a collective, however few of its people are known
        n = max(len(people), INDIVIDUAL_MAX_PEOPLE + 1) if crowd else len(people)
        try:
            ba.append(ba_of(n, medium))
        except ValueError:
            log.warning("unknown medium %r counted as virtual", medium)
            ba.append(ba_of(n, "virtual"))
    frame["ba"] = ba
    return frame


def resolve_email_threads(frame: pd.DataFrame) -> pd.DataFrame:
    """Give every e-mail row its conversation's root as `thread` (`pipeline.ingest.threads`)."""
    messages = [
        m
        for key, meta, title, stamp in zip(frame["id"], frame["meta"], frame["title"], frame["timestamp"], strict=True)
        if (m := message_of(key, meta, title, stamp))
    ]
    if not messages:
        return frame
    resolved = resolve_threads(messages)
    frame = frame.copy()
    frame["thread"] = [resolved.get(key, thread) for key, thread in zip(frame["id"], frame["thread"], strict=True)]
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
    """Add `axis`, `thread_key`, `stamp`, `order`, `period`, `period_index`, `period_start` (rules above).

    Returns the ordered table (teams by descending item count, then name; items in team order) and
    the concrete freq used for teams on the time axis (None when no team is). Undated items of a
    team on the time axis are in the table with `placed` False and no period (`split_undated`).
    """
    if freq not in FREQS:
        raise ValueError(f"unknown freq {freq!r}; expected one of {FREQS}")
    frame = frame.copy()
    frame["thread_key"] = [
        thread or meta.get("meeting") or path or item_id
        for thread, meta, path, item_id in zip(frame["thread"], frame["meta"], frame["path"], frame["id"], strict=True)
    ]
    frame = frame.sort_values(["team", "thread_key", "position", "id"], kind="stable")
    by_thread = frame.groupby(["team", "thread_key"], sort=False)["timestamp"]
    frame["stamp"] = by_thread.ffill()
    frame["stamp"] = frame.groupby(["team", "thread_key"], sort=False)["stamp"].bfill()

    dated = frame.groupby("team")["stamp"].transform(lambda s: s.notna().any())
    frame["axis"] = np.where(dated, "time", "ordinal")
    frame["placed"] = (frame["axis"] == "ordinal") | frame["stamp"].notna()
    time_rows = (frame["axis"] == "time") & frame["placed"]
    resolved = resolve_freq(freq, frame.loc[time_rows, "stamp"]) if time_rows.any() else None

    teams: list[pd.DataFrame] = []
    for _, team in frame.groupby("team", sort=False):
        placed, apart = team[team["placed"]], team[~team["placed"]]
        first_stamp = placed.groupby("thread_key")["stamp"].min()
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
        placed = placed.assign(thread_rank=placed["thread_key"].map(rank))
        if placed["axis"].iat[0] == "time":
            placed = placed.sort_values(["stamp", "thread_rank", "position", "id"], kind="stable")
            naive = placed["stamp"].dt.tz_convert("UTC").dt.tz_localize(None)
            starts = naive.dt.to_period(resolved).dt.start_time.dt.tz_localize("UTC")
            fmt = "%Y-%m" if resolved == "M" else "%Y-%m-%d"
            placed = placed.assign(period_start=starts, period=starts.dt.strftime(fmt))
        else:
            placed = placed.sort_values(["thread_rank", "position", "id"], kind="stable")
            placed = placed.assign(period_start=placed["thread_key"].map(first_stamp), period=placed["thread_key"])
        placed = placed.assign(order=np.arange(len(placed)), period_index=pd.factorize(placed["period"])[0])
        apart = apart.sort_values(["thread_key", "position", "id"], kind="stable").assign(
            thread_rank=-1, order=-1, period_index=-1, period="undated", period_start=pd.NaT
        )
        teams.append(pd.concat([placed, apart]) if len(apart) else placed)
    if not teams:
        empty = frame.assign(order=[], period=[], period_index=[], period_start=[], thread_rank=[])
        return empty.drop(columns=["thread_rank"]), resolved
    teams.sort(key=lambda t: (-len(t), str(t["team"].iat[0])))
    ordered = pd.concat(teams, ignore_index=True)
    ordered["period_start"] = pd.to_datetime(ordered["period_start"], utc=True)
    return ordered.drop(columns=["thread_rank"]), resolved


def split_undated(ordered: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(placed rows in team order, undated rows of teams on the time axis)."""
    placed = ordered["placed"].astype(bool)
    return ordered[placed].reset_index(drop=True), ordered[~placed].reset_index(drop=True)


def _dominant(soft: np.ndarray) -> str:
    # argmax returns the first maximum, which is the tie rule documented above
    return MODES[int(np.argmax(soft))]


TIMELINE_COLUMNS = (
    "team",
    "axis",
    "period_index",
    "period",
    "period_start",
    "period_end",
    "items",
    "sparse",
    "participants",
    "threads",
    *(f"soft_{m}" for m in MODES),
    *(f"share_{m}" for m in MODES),
    *(f"share_{m}_{bound}" for m in MODES for bound in ("low", "high")),
    "dominant",
    "metaphor_rate",
    *(f"ba_{b}" for b in BA_TYPES),
)


def interval_columns(rows: pd.DataFrame, confusion: np.ndarray | None) -> dict[str, tuple[float, float]]:
    """`{mode: (low, high)}` for the rows' mode shares (`pipeline.aggregate.intervals`)."""
    probs = rows[list(PROB_COLUMNS)].to_numpy(dtype=float)
    predicted = np.array([MODES.index(m) for m in rows["mode"]], dtype=int) if len(rows) else None
    low, high = share_intervals(probs, predicted, confusion)
    return {mode: (float(low[i]), float(high[i])) for i, mode in enumerate(MODES)}


def timeline_table(
    ordered: pd.DataFrame,
    confusion: np.ndarray | None = None,
    min_period_items: int = MIN_PERIOD_ITEMS,
    freq: str | None = None,
) -> pd.DataFrame:
    """One row per team and period of the placed rows, with the columns the module docstring lists."""
    if "placed" in ordered.columns:
        ordered = ordered[ordered["placed"].astype(bool)]
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
            for team, period, persons in zip(
                ordered["team"], ordered["period_index"], _people_column(ordered), strict=True
            )
            for person in persons
        ],
        columns=[*keys, "person"],
    )
    table["participants"] = people.groupby(keys)["person"].nunique().reindex(table.index, fill_value=0)
    soft = groups[list(PROB_COLUMNS)].sum()
    for i, mode in enumerate(MODES):
        table[f"soft_{mode}"] = soft[PROB_COLUMNS[i]]
        table[f"share_{mode}"] = soft[PROB_COLUMNS[i]] / table["items"]
    bounds = {key: interval_columns(rows, confusion) for key, rows in groups}
    for mode in MODES:
        table[f"share_{mode}_low"] = [bounds[key][mode][0] for key in table.index]
        table[f"share_{mode}_high"] = [bounds[key][mode][1] for key in table.index]
    table["sparse"] = table["items"] < min_period_items
    # argmax returns the first maximum, which is the tie rule documented above
    table["dominant"] = [MODES[i] for i in soft.to_numpy().argmax(axis=1)] if len(soft) else []
    ba = ordered.groupby([*keys, "ba"], sort=False).size().unstack(fill_value=0).reindex(table.index, fill_value=0)
    for name in BA_TYPES:
        table[f"ba_{name}"] = ba.get(name, 0)
    table = table.rename(columns={"time_axis": "axis"}).reset_index()
    table["period_start"] = pd.to_datetime(table["period_start"], utc=True)
    if freq in _PERIOD_LENGTH:
        ends = [s + _PERIOD_LENGTH[freq] if a == "time" and pd.notna(s) else pd.NaT
                for s, a in zip(table["period_start"], table["axis"], strict=True)]  # fmt: skip
        table["period_end"] = pd.to_datetime(pd.Series(ends, dtype=object), utc=True)
    else:
        table["period_end"] = pd.Series(pd.NaT, index=table.index, dtype="datetime64[ns, UTC]")
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
    undated: int = 0  # items kept apart: on the time axis, in no dated thread
    shares_low: dict[str, float] = field(default_factory=dict)
    shares_high: dict[str, float] = field(default_factory=dict)
    sparse_periods: int = 0  # periods with fewer than min_period_items items
    people: list[str] = field(default_factory=list, repr=False)  # the team's person ids, sorted

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _iso(stamp: object) -> str | None:
    return stamp.isoformat() if isinstance(stamp, pd.Timestamp) and pd.notna(stamp) else None


def team_metrics(
    team_rows: pd.DataFrame,
    team_timeline: pd.DataFrame,
    max_detour: int = spiral.DEFAULT_MAX_DETOUR,
    undated_rows: pd.DataFrame | None = None,
    confusion: np.ndarray | None = None,
) -> TeamMetrics:
    """Spiral metrics for one team's placed rows (from `order_items`), its timeline rows and its undated
    rows (counted in items, people and shares; not in the sequence of modes, which needs an order)."""
    if "placed" in team_rows.columns:
        team_rows = team_rows[team_rows["placed"].astype(bool)]
    every = team_rows if undated_rows is None or undated_rows.empty else pd.concat([team_rows, undated_rows])
    modes = [spiral.mode_index(m) for m in team_rows["mode"]]
    people = [set(p) for p in _people_column(team_rows)]
    everyone = set().union(*(set(p) for p in _people_column(every)))
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
    soft = every[list(PROB_COLUMNS)].to_numpy().sum(axis=0)
    counts = every["ba"].value_counts()
    bounds = interval_columns(every, confusion)
    return TeamMetrics(
        team=str(team_rows["team"].iat[0]),
        axis=axis,
        items=len(every),
        participants=len(everyone),
        periods=len(team_timeline),
        first_period=str(periods[0]),
        last_period=str(periods[-1]),
        dominant_mode=_dominant(soft),
        shares={mode: float(soft[i] / len(every)) for i, mode in enumerate(MODES)},
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
        metaphor_rate=float(every["metaphor"].mean()),
        transitions=matrix.tolist(),
        period_transitions=period_matrix.tolist(),
        period_coherence=spiral.coherence(period_matrix),
        ba_counts={ba: int(counts.get(ba, 0)) for ba in BA_TYPES},
        mode_sequence=[MODES[m] for m in modes],
        undated=len(every) - len(team_rows),
        shares_low={mode: low for mode, (low, _) in bounds.items()},
        shares_high={mode: high for mode, (_, high) in bounds.items()},
        sparse_periods=int(team_timeline["sparse"].sum()) if "sparse" in team_timeline else 0,
        people=sorted(everyone),
    )


@dataclass
class Aggregation:
    """The placed rows in team order, the undated rows, the timeline table and each team's metrics."""

    items: pd.DataFrame
    timeline: pd.DataFrame
    teams: list[TeamMetrics]
    freq: str | None
    undated: pd.DataFrame = field(default_factory=pd.DataFrame)


def aggregate(
    frame: pd.DataFrame,
    freq: str = "auto",
    media: Mapping[str, str] | None = None,
    team_rules: TeamRules | None = None,
    max_detour: int = spiral.DEFAULT_MAX_DETOUR,
    *,
    confusion: np.ndarray | None = None,
    min_period_items: int = MIN_PERIOD_ITEMS,
) -> Aggregation:
    """Threads, people, teams, ba, order, periods, timeline and spiral metrics over normalized rows.

    `confusion` is the model's measured confusion matrix (rows true, columns predicted; the model
    card's), which widens the share intervals; without it they cover sampling only.
    """
    if freq not in FREQS:
        raise ValueError(f"unknown freq {freq!r}; expected one of {FREQS}")
    frame = resolve_email_threads(frame)
    if team_rules is not None:
        frame = apply_team_rules(frame, team_rules)
    frame = resolve_people(frame, team_rules.aliases if team_rules is not None else ())
    frame = apply_media_and_ba(frame, media)
    ordered, resolved = order_items(frame, freq)
    placed, undated = split_undated(ordered)
    timeline = timeline_table(placed, confusion, min_period_items, resolved)
    metrics = []
    timeline_by_team = dict(list(timeline.groupby("team", sort=False)))
    undated_by_team = dict(list(undated.groupby("team", sort=False))) if len(undated) else {}
    for team, rows in placed.groupby("team", sort=False):
        metrics.append(
            team_metrics(rows, timeline_by_team[team], max_detour, undated_by_team.get(team), confusion=confusion)
        )
    return Aggregation(items=placed, timeline=timeline, teams=metrics, freq=resolved, undated=undated)
