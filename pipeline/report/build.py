"""`build_timeline`: results folder in, timeline tables, charts and `index.html` out (`seci timeline`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd
import yaml

from pipeline.aggregate.results import MODES, load_results
from pipeline.aggregate.spiral import DEFAULT_MAX_DETOUR
from pipeline.aggregate.timeline import TeamMetrics, TeamTurn, aggregate
from pipeline.ingest.teams import TeamRules
from pipeline.report import plots
from pipeline.report.page import render_page

log = logging.getLogger(__name__)

DEFAULT_MAX_TEAMS = 50
PLOT_KINDS = ("shares", "spiral", "transitions", "ba")


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


def build_timeline(
    results_dir: Path,
    out_dir: Path,
    freq: str = "auto",
    teams: Path | None = None,
    *,
    media: Mapping[str, str] | None = None,
    max_teams: int = DEFAULT_MAX_TEAMS,
    max_detour: int = DEFAULT_MAX_DETOUR,
) -> TimelineReport:
    """Read `seci batch` results from `results_dir` and write the timeline and report to `out_dir`.

    `teams` is a teams file that overrides each row's team where a rule matches; `media` maps a
    source (`email`, `meeting`, `document`, `other`) to the medium its rows count as for ba.
    Only the `max_teams` largest teams get a page section and charts; every team is in the tables.
    """
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    frame = load_results(results_dir)
    if frame.empty:
        raise ValueError(f"{results_dir}: no items in the results")
    rules = load_teams_file(Path(teams)) if teams is not None else None
    result = aggregate(frame, freq=freq, media=media, team_rules=rules, max_detour=max_detour)
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
            {"freq": result.freq, "max_detour": max_detour, "teams": [m.to_dict() for m in result.teams]},
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
        team_plots[m.team] = {
            "shares": plots.shares_area(m.team, timeline_by_team[m.team], folder / "shares.png"),
            "spiral": plots.spiral_chart(m.team, items_by_team[m.team], folder / "spiral.png"),
            "transitions": plots.transition_heatmap(m.team, m.transitions, folder / "transitions.png"),
            "ba": plots.ba_quadrant(m.team, m.ba_counts, folder / "ba.png"),
        }
    overview_png = plots.overview(shown, plot_dir / "overview.png") if shown else None

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
        items=len(result.items),
        sections_capped=len(shown) < len(result.teams),
    )
