"""`build_timeline`: results folder in, timeline tables, charts and `index.html` out (`seci timeline`).

The model card of the model that scored the results (`pipeline.report.card`) gives the page its
measured accuracy per mode and the confusion matrix that widens the share intervals. Example excerpts
(two or three per mode and team, the items most surely in that mode, dated ones first) are read back
from the results' `text` and cut to `EXCERPT_CHARS`; `include_text=False` (`--no-text`) leaves them
out. The metaphor rate is shown only with `show_metaphor` (`--metaphor`), and then with the flag's
measured precision: on the shipped model it is too low for a headline number.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd
import yaml

from pipeline.aggregate.results import MODES, PROB_COLUMNS, load_results, read_texts
from pipeline.aggregate.spiral import DEFAULT_MAX_DETOUR
from pipeline.aggregate.timeline import MIN_PERIOD_ITEMS, TeamMetrics, TeamTurn, aggregate
from pipeline.ingest.teams import TeamRules
from pipeline.report import plots
from pipeline.report.card import ModelCard, find_model_dir, load_card
from pipeline.report.page import Example, Overview, render_page

log = logging.getLogger(__name__)

DEFAULT_MAX_TEAMS = 50
PLOT_KINDS = ("shares", "path", "transitions", "ba")
EXAMPLES_PER_MODE = 3
EXCERPT_CHARS = 220


@dataclass
class TimelineReport:
    """What `build_timeline` wrote, and the per-team metrics behind it (teams by item count)."""

    out_dir: Path
    index_html: Path
    timeline_csv: Path
    timeline_parquet: Path
    teams_csv: Path
    turns_csv: Path
    metrics_json: Path
    overview_png: Path | None
    plots: dict[str, dict[str, Path]]  # team -> kind (PLOT_KINDS) -> PNG, for the teams with a section
    teams: list[TeamMetrics]
    freq: str | None  # the bin used for dated teams (D, W or M); None when every team is undated
    items: int
    sections_capped: bool  # more teams than `max_teams`: only the largest got a section
    card: ModelCard | None = None  # the model card the page quotes; None when none was found
    undated: int = 0  # items of dated teams that could not be placed in time


def _teams_frame(teams: list[TeamMetrics]) -> pd.DataFrame:
    rows = []
    for m in teams:
        row = {
            "team": m.team,
            "axis": m.axis,
            "items": m.items,
            "participants": m.participants,
            "periods": m.periods,
            "first_period": m.first_period,
            "last_period": m.last_period,
            "dominant_mode": m.dominant_mode,
            "undated": m.undated,
            "turns_completed": m.turns_completed,
            "coherence": m.coherence,
            "forward": m.forward,
            "backward": m.backward,
            "period_coherence": m.period_coherence,
            "amplification": m.amplification,
            "amplification_positive": m.amplification_positive,
            "stall_mode": m.stall_mode,
            "open_turn_stage": m.open_turn_stage,
            "metaphor_rate": m.metaphor_rate,
        }
        row.update({f"share_{mode}": m.shares[mode] for mode in MODES})
        row.update({f"share_{mode}_low": m.shares_low.get(mode) for mode in MODES})
        row.update({f"share_{mode}_high": m.shares_high.get(mode) for mode in MODES})
        row.update({f"ba_{ba}": count for ba, count in m.ba_counts.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _turns_frame(teams: list[TeamMetrics]) -> pd.DataFrame:
    rows = [{"team": m.team, "turn": i + 1, **vars(turn)} for m in teams for i, turn in enumerate(m.turns)]
    return pd.DataFrame(rows, columns=["team", "turn", *(f.name for f in fields(TeamTurn))])


def load_teams_file(path: Path) -> TeamRules:
    """`TeamRules.load`, with an unreadable file reported as a ValueError naming it."""
    try:
        return TeamRules.load(path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ValueError(f"teams file {path}: {err}") from err


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The first words of an item, on one line, cut at a word boundary with an ellipsis."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0]
    return cut + " …"


def _where(row: object) -> str:
    what = getattr(row, "title", None) or Path(str(getattr(row, "path", "") or "")).name or str(row.id)
    stamp = getattr(row, "stamp", None)
    if stamp is None or pd.isna(stamp):
        stamp = getattr(row, "timestamp", None)
    when = stamp.strftime("%Y-%m-%d") if stamp is not None and not pd.isna(stamp) else "undated"
    return f"{what}, {when}"


def pick_examples(rows: pd.DataFrame, per_mode: int = EXAMPLES_PER_MODE) -> pd.DataFrame:
    """Per team and mode, the items most surely in that mode (labelled so), one per thread where it can."""
    picks = []
    for (_, mode), group in rows.groupby(["team", "mode"], sort=False):
        column = PROB_COLUMNS[MODES.index(mode)]
        ranked = group.sort_values([column, "id"], ascending=[False, True])
        first = ranked.drop_duplicates("thread_key") if "thread_key" in ranked else ranked
        chosen = pd.concat([first, ranked.drop(first.index)]).head(per_mode)
        picks.append(chosen.assign(example_probability=chosen[column]))
    return pd.concat(picks) if picks else rows.head(0)


def _examples(results_dir: Path, rows: pd.DataFrame) -> dict[str, list[Example]] | None:
    picked = pick_examples(rows)
    texts = read_texts(results_dir, set(picked["id"]))
    if texts is None:
        return None
    out: dict[str, list[Example]] = {}
    for row in picked.itertuples(index=False):
        text = texts.get(row.id)
        if text:
            out.setdefault(row.team, []).append(Example(row.mode, excerpt(text), _where(row), row.example_probability))
    return out


def _overview(frame: pd.DataFrame, teams: list[TeamMetrics], source: str) -> Overview:
    stamps = frame["timestamp"].dropna()
    people = set().union(*(set(t.people) for t in teams)) if teams else set()
    models = sorted({m for m in frame["model"].dropna() if m}) if "model" in frame else []
    return Overview(
        items=len(frame),
        by_source={str(k): int(v) for k, v in frame["source"].fillna("other").value_counts().items()},
        people=len(people),
        teams=len(teams),
        first=stamps.min().strftime("%Y-%m-%d") if len(stamps) else None,
        last=stamps.max().strftime("%Y-%m-%d") if len(stamps) else None,
        undated=sum(t.undated for t in teams),
        source=source,
        model=", ".join(models) or None,
    )


def build_timeline(
    results_dir: Path,
    out_dir: Path,
    freq: str = "auto",
    teams: Path | None = None,
    *,
    media: Mapping[str, str] | None = None,
    max_teams: int = DEFAULT_MAX_TEAMS,
    max_detour: int = DEFAULT_MAX_DETOUR,
    model_dir: Path | None = None,
    include_text: bool = True,
    show_metaphor: bool = False,
    min_period_items: int = MIN_PERIOD_ITEMS,
) -> TimelineReport:
    """Read `seci batch` results from `results_dir` and write the timeline and report to `out_dir`.

    `teams` is a teams file that overrides each row's team where a rule matches (and names people's
    aliases); `media` maps a source (`email`, `meeting`, `document`, `other`) to the medium its rows
    count as for ba. Only the `max_teams` largest teams get a page section and charts; every team is
    in the tables. `model_dir` is the model the results were scored with (found from the results
    when None, `pipeline.report.card`); `include_text` False leaves the example excerpts out;
    `show_metaphor` adds the metaphor rate with its measured precision; periods with fewer than
    `min_period_items` items are greyed.
    """
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    frame = load_results(results_dir)
    if frame.empty:
        raise ValueError(f"{results_dir}: no items in the results")
    rules = load_teams_file(Path(teams)) if teams is not None else None
    card = load_card(find_model_dir(results_dir, model_dir, set(frame["model"].dropna())))
    result = aggregate(
        frame,
        freq=freq,
        media=media,
        team_rules=rules,
        max_detour=max_detour,
        confusion=card.confusion if card else None,
        min_period_items=min_period_items,
    )
    out_dir.mkdir(parents=True, exist_ok=True)

    timeline_csv, timeline_parquet = out_dir / "timeline.csv", out_dir / "timeline.parquet"
    result.timeline.to_parquet(timeline_parquet, index=False)
    csv_timeline = result.timeline.assign(
        period_start=result.timeline["period_start"].map(lambda t: t.isoformat() if pd.notna(t) else "")
    )
    csv_timeline.to_csv(timeline_csv, index=False)
    teams_csv, turns_csv = out_dir / "teams.csv", out_dir / "turns.csv"
    _teams_frame(result.teams).to_csv(teams_csv, index=False)
    _turns_frame(result.teams).to_csv(turns_csv, index=False)
    metrics_json = out_dir / "metrics.json"
    metrics_json.write_text(
        json.dumps(
            {
                "freq": result.freq,
                "max_detour": max_detour,
                "min_period_items": min_period_items,
                "model_card": str(card.model_dir) if card else None,
                "teams": [m.to_dict() for m in result.teams],
            },
            indent=1,
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )

    shown = result.teams[: max(0, max_teams)]
    anchors = {m.team: f"team-{i:03d}" for i, m in enumerate(shown)}
    plot_dir = out_dir / "plots"
    items_by_team = dict(list(result.items.groupby("team", sort=False)))
    timeline_by_team = dict(list(result.timeline.groupby("team", sort=False)))
    team_plots: dict[str, dict[str, Path]] = {}
    for m in shown:
        folder = plot_dir / anchors[m.team]
        turns = [(t.start, t.end) for t in m.turns]
        team_plots[m.team] = {
            "shares": plots.shares_area(m.team, timeline_by_team[m.team], folder / "shares.png"),
            "path": plots.mode_path(m.team, items_by_team[m.team], turns, folder / "path.png"),
            "transitions": plots.transition_heatmap(m.team, m.transitions, folder / "transitions.png"),
            "ba": plots.ba_quadrant(m.team, m.ba_counts, folder / "ba.png"),
        }
    overview_png = plots.overview(shown, plot_dir / "overview.png") if shown else None
    shown_names = {m.team for m in shown}
    every_row = pd.concat([result.items, result.undated]) if len(result.undated) else result.items
    examples = (
        _examples(results_dir, every_row[every_row["team"].isin(shown_names)]) if include_text and shown else None
    )
    undated_by_team = dict(list(result.undated.groupby("team", sort=False))) if len(result.undated) else {}

    index_html = out_dir / "index.html"
    index_html.write_text(
        render_page(
            teams=result.teams,
            shown=shown,
            timeline=result.timeline,
            plots=team_plots,
            overview=overview_png,
            anchors=anchors,
            source=str(results_dir),
            freq=result.freq,
            max_detour=max_detour,
            summary=_overview(frame, result.teams, str(results_dir)),
            card=card,
            examples=examples,
            undated=undated_by_team,
            include_text=include_text,
            show_metaphor=show_metaphor,
            min_period_items=min_period_items,
        ),
        encoding="utf-8",
    )
    log.info("report for %d teams (%d with a section) written to %s", len(result.teams), len(shown), index_html)
    return TimelineReport(
        out_dir=out_dir,
        index_html=index_html,
        timeline_csv=timeline_csv,
        timeline_parquet=timeline_parquet,
        teams_csv=teams_csv,
        turns_csv=turns_csv,
        metrics_json=metrics_json,
        overview_png=overview_png,
        plots=team_plots,
        teams=result.teams,
        freq=result.freq,
        items=len(result.items) + len(result.undated),
        sections_capped=len(shown) < len(result.teams),
        card=card,
        undated=len(result.undated),
    )
