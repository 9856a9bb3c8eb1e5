"""The self-contained `index.html`: inline CSS, images as base64 PNG data URIs, no script, no network.

Every string that comes from the data (team names, period labels, paths) goes through `_e`
(`html.escape` with quotes), so a team called `<script>` is shown as text.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from pipeline.aggregate.results import MODES
from pipeline.aggregate.timeline import TeamMetrics

MAX_PERIOD_ROWS = 60
MAX_TURN_ROWS = 20

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0;
       color: #1d1d1f; background: #fafafa; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px; }
h1 { font-size: 1.7rem; margin: 0 0 4px; }
h2 { font-size: 1.3rem; margin: 0 0 8px; }
h3 { font-size: 1.05rem; margin: 18px 0 6px; }
section.team { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 18px; margin: 22px 0; }
table { border-collapse: collapse; font-size: 0.88rem; margin: 8px 0; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 4px 8px; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; }
.figures img { max-width: 100%; height: auto; border: 1px solid #eee; background: #fff; }
.note { background: #fff6d6; border: 1px solid #e6d48a; padding: 8px 12px; border-radius: 6px; }
.muted { color: #666; font-size: 0.88rem; }
.mode-socialization { color: #b37a00; } .mode-externalization { color: #0072B2; }
.mode-combination { color: #007a59; } .mode-internalization { color: #a0508a; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None or pd.isna(value):
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.0%}"


def _mode(mode: str | None) -> str:
    return f'<span class="mode-{_e(mode)}">{_e(mode)}</span>' if mode in MODES else "–"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def team_summary(metrics: TeamMetrics) -> str:
    """A few plain sentences read off the numbers (the caller escapes them)."""
    m = metrics
    unit = "threads in order (no dates)" if m.axis == "ordinal" else "periods"
    parts = [
        f"{m.items} items from {m.participants} people over {m.periods} {unit}, {m.first_period} to {m.last_period}.",
        f"Dominant mode: {m.dominant_mode} ({m.shares[m.dominant_mode]:.0%} of the soft counts).",
    ]
    if m.turns_completed:
        last = m.turns[-1]
        parts.append(
            f"{m.turns_completed} completed SECI turn{'s' if m.turns_completed != 1 else ''}; "
            f"the last ran from {last.start_period} to {last.end_period} ({last.duration_items} item steps)."
        )
    else:
        parts.append("No SECI turn was completed.")
    if m.coherence is None:
        parts.append("No forward or backward transition, so no spiral coherence.")
    else:
        direction = (
            "mostly forward round S→E→C→I"
            if m.coherence >= 2 / 3
            else "about as often back as forward"
            if m.coherence > 1 / 3
            else "mostly backwards"
        )
        parts.append(f"Spiral coherence {m.coherence:.2f}: the team moves {direction}.")
    if m.amplification is not None:
        trend = "more" if m.amplification > 0 else "fewer" if m.amplification < 0 else "the same number of"
        parts.append(f"Amplification {m.amplification:+.2f} people per turn: later turns involve {trend} people.")
    if m.stall_mode:
        parts.append(f"Turns most often stall at {m.stall_mode}.")
    parts.append(f"Metaphor rate {m.metaphor_rate:.0%}.")
    return " ".join(parts)


def _team_table(teams: Sequence[TeamMetrics], anchors: Mapping[str, str]) -> str:
    head = (
        "<tr><th>team</th><th>items</th><th>participants</th><th>turns completed</th><th>coherence</th>"
        "<th>amplification</th><th>stall mode</th><th>metaphor rate</th><th>dominant mode</th><th>axis</th></tr>"
    )
    rows = []
    for m in teams:
        name = f'<a href="#{anchors[m.team]}">{_e(m.team)}</a>' if m.team in anchors else _e(m.team)
        rows.append(
            f"<tr><td>{name}</td><td>{m.items}</td><td>{m.participants}</td><td>{m.turns_completed}</td>"
            f"<td>{_num(m.coherence)}</td><td>{_num(m.amplification, signed=True)}</td><td>{_mode(m.stall_mode)}</td>"
            f"<td>{_pct(m.metaphor_rate)}</td><td>{_mode(m.dominant_mode)}</td><td>{_e(m.axis)}</td></tr>"
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _periods_table(timeline: pd.DataFrame) -> str:
    head = (
        "<tr><th>period</th><th>items</th><th>participants</th>"
        + "".join(f"<th>{mode[:3]}.</th>" for mode in MODES)
        + "<th>dominant</th><th>metaphor</th><th>ba (orig/dial/syst/exer)</th></tr>"
    )
    rows = []
    for row in timeline.head(MAX_PERIOD_ROWS).itertuples(index=False):
        shares = "".join(f"<td>{_pct(getattr(row, f'share_{mode}'))}</td>" for mode in MODES)
        ba = f"{row.ba_originating}/{row.ba_dialoguing}/{row.ba_systemizing}/{row.ba_exercising}"
        rows.append(
            f"<tr><td>{_e(row.period)}</td><td>{row.items}</td><td>{row.participants}</td>{shares}"
            f"<td>{_mode(row.dominant)}</td><td>{_pct(row.metaphor_rate)}</td><td>{ba}</td></tr>"
        )
    more = ""
    if len(timeline) > MAX_PERIOD_ROWS:
        more = f'<p class="muted">First {MAX_PERIOD_ROWS} of {len(timeline)} periods; all are in timeline.csv.</p>'
    return f"<table>{head}{''.join(rows)}</table>{more}"


def _turns_table(metrics: TeamMetrics) -> str:
    if not metrics.turns:
        return ""
    head = "<tr><th>turn</th><th>from</th><th>to</th><th>item steps</th><th>days</th><th>people</th></tr>"
    rows = [
        f"<tr><td>{i + 1}</td><td>{_e(t.start_period)}</td><td>{_e(t.end_period)}</td><td>{t.duration_items}</td>"
        f"<td>{_num(t.duration_days, 1)}</td><td>{t.participants}</td></tr>"
        for i, t in enumerate(metrics.turns[:MAX_TURN_ROWS])
    ]
    more = ""
    if len(metrics.turns) > MAX_TURN_ROWS:
        more = f'<p class="muted">First {MAX_TURN_ROWS} of {len(metrics.turns)} turns; all are in turns.csv.</p>'
    return f"<h3>Completed turns</h3><table>{head}{''.join(rows)}</table>{more}"


def render_page(
    *,
    teams: Sequence[TeamMetrics],
    shown: Sequence[TeamMetrics],
    timeline: pd.DataFrame,
    plots: Mapping[str, Mapping[str, Path]],
    overview: Path | None,
    anchors: Mapping[str, str],
    source: str,
    freq: str | None,
    max_detour: int,
) -> str:
    """The whole page as a string; `shown` are the teams that get a section (the first N by items)."""
    items = sum(m.items for m in teams)
    capped = ""
    if len(shown) < len(teams):
        capped = (
            f'<p class="note">Showing sections for the {len(shown)} largest of {len(teams)} teams; '
            "the table lists every team, and teams.csv and timeline.csv hold all of them.</p>"
        )
    if freq is None:
        axis_note = "No team has dates, so each is ordered by its threads (one period per thread)."
    else:
        bins = {"D": "days", "W": "weeks", "M": "months"}[freq]
        axis_note = f"Dated teams are binned by {bins}; undated teams use thread order (one period per thread)."
    sections = []
    for m in shown:
        figures = "".join(_img(path, f"{m.team}: {kind}") for kind, path in plots[m.team].items())
        sections.append(
            f'<section class="team" id="{anchors[m.team]}"><h2>{_e(m.team)}</h2>'
            f"<p>{_e(team_summary(m))}</p>"
            f'<div class="figures">{figures}</div>'
            f"<h3>Periods</h3>{_periods_table(timeline[timeline['team'] == m.team])}"
            f"{_turns_table(m)}</section>"
        )
    overview_html = _img(overview, "teams compared: mode shares and spiral coherence") if overview else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SECI knowledge-spiral report</title>
<style>{_CSS}</style></head>
<body><main>
<h1>SECI knowledge-spiral report</h1>
<p class="muted">{items} items in {len(teams)} teams from {_e(source)}. {axis_note}
A turn tolerates detours of up to {max_detour} items.</p>
{capped}
<h2>Teams</h2>
{_team_table(teams, anchors)}
{overview_html}
{"".join(sections)}
<p class="muted">Coherence = forward transitions (S→E, E→C, C→I, I→S) / (forward + backward); self-transitions and
skips are left out. Amplification = slope of distinct people over successive completed turns.
See docs/spiral.md for every definition.</p>
</main></body></html>
"""
