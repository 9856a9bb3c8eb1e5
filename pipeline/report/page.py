"""The self-contained `index.html`: inline CSS, images as base64 PNG data URIs, no script, no network.

The page is written for the person who asked for the analysis, not for us. Its first screen says,
in plain words: what was analysed (items, sources, people, teams, dates); what the four modes and
ba are (after Nonaka, Toyama and Konno 2000, the seed paper); and how far to trust the shares (the
classifier's measured accuracy per mode on organizations it never saw, from the model card; the 90%
ranges; greyed periods). Then a table of teams, a chart comparing them, one section per team
(summary, shares with ranges, two or three short example excerpts per mode, charts, periods, undated
items, turns), and at the end how each number is made, on the page itself.

Every string that comes from the data (team names, period labels, paths, excerpts) goes through `_e`
(`html.escape` with quotes), so a team called `<script>` is shown as text.
"""

from __future__ import annotations

import base64
import html
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.aggregate.results import MODES
from pipeline.aggregate.timeline import TeamMetrics
from pipeline.report.card import ModelCard

MAX_PERIOD_ROWS = 60
MAX_TURN_ROWS = 20
MAX_UNDATED_ROWS = 20

# Nonaka, Toyama and Konno (2000), "SECI, Ba and Leadership", in plain words.
MODE_WORDS = {
    "socialization": (
        "sharing experience",
        "know-how that is hard to write down passes from person to person by working, watching or "
        "spending time together (apprentices, site visits, informal talk with customers).",
    ),
    "externalization": (
        "putting it into words",
        "someone articulates what they know from experience as an idea, a concept, a metaphor or a "
        "model that others can pick up.",
    ),
    "combination": (
        "putting documents together",
        "written knowledge is collected, edited and combined into reports, plans, specifications "
        "or procedures, and sent round.",
    ),
    "internalization": (
        "learning by doing",
        "people take written knowledge (a manual, a procedure, a plan) into their own practice by "
        "applying it, trying it out and reflecting on it.",
    ),
}
BA_WORDS = {
    "originating": "one-to-one and face to face",
    "dialoguing": "in a group, face to face",
    "systemizing": "in a group, through mail, documents or online tools",
    "exercising": "one-to-one or alone, through mail or documents",
}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0;
       color: #1d1d1f; background: #fafafa; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 16px 20px; box-sizing: border-box; }
h1 { font-size: 1.6rem; margin: 0 0 6px; }
h2 { font-size: 1.25rem; margin: 0 0 8px; }
h3 { font-size: 1.02rem; margin: 16px 0 6px; }
section.team, section.intro, section.method { background: #fff; border: 1px solid #ddd; border-radius: 8px;
       padding: 14px 18px; margin: 16px 0; }
.intro-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 6px 20px; }
.modes { list-style: none; padding: 0; margin: 4px 0; }
.modes li { margin: 3px 0; }
.swatch { display: inline-block; width: 0.8em; height: 0.8em; border-radius: 2px; margin-right: 4px;
          vertical-align: baseline; }
.scroll { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.86rem; margin: 6px 0; }
th, td { border-bottom: 1px solid #e3e3e3; padding: 3px 7px; text-align: right; vertical-align: top; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
tr.sparse td { color: #9a9a9a; background: #f6f6f6; }
.trust td:first-child { white-space: nowrap; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.figures figure { margin: 0; flex: 0 1 auto; max-width: 100%; }
.figures img, img.wide { display: block; max-width: 100%; height: auto; border: 1px solid #eee; background: #fff; }
figcaption { font-size: 0.8rem; color: #555; max-width: 560px; }
.note { background: #fff6d6; border: 1px solid #e6d48a; padding: 8px 12px; border-radius: 6px; }
.trust { background: #eef5fb; border: 1px solid #b9d3ea; padding: 8px 12px; border-radius: 6px; }
.muted { color: #666; font-size: 0.86rem; }
.examples { margin: 4px 0 8px; padding-left: 18px; }
.examples li { margin: 3px 0; font-size: 0.9rem; }
.examples q { font-style: italic; }
.mode-socialization { color: #b37a00; } .mode-externalization { color: #0072B2; }
.mode-combination { color: #007a59; } .mode-internalization { color: #a0508a; }
"""
_SWATCH = {
    "socialization": "#E69F00",
    "externalization": "#0072B2",
    "combination": "#009E73",
    "internalization": "#CC79A7",
}


@dataclass
class Example:
    """One excerpt shown for a mode: where it is from and its first words."""

    mode: str
    excerpt: str
    where: str  # title or file, and date
    probability: float


@dataclass
class Overview:
    """What was analysed, for the first screen."""

    items: int
    by_source: dict[str, int]
    people: int
    teams: int
    first: str | None  # first and last date of any dated item
    last: str | None
    undated: int
    source: str
    model: str | None  # the model the results were scored with, by name
    sources_note: list[str] = field(default_factory=list)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None or pd.isna(value):
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.0%}"


def _range(low: float | None, high: float | None) -> str:
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return ""
    return f"{low:.0%}–{high:.0%}"


def _mode(mode: str | None) -> str:
    return f'<span class="mode-{_e(mode)}">{_e(mode)}</span>' if mode in MODES else "–"


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return None
    return struct.unpack(">II", data[16:24])


def _img(path: Path, alt: str, css: str = "") -> str:
    data = path.read_bytes()
    size = _png_size(data)
    # the natural size as attributes: the browser keeps the aspect ratio while CSS scales the width down
    dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
    klass = f' class="{css}"' if css else ""
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/png;base64,{encoded}"{dims}{klass} alt="{_e(alt)}">'


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def team_summary(metrics: TeamMetrics) -> str:
    """A few plain sentences read off the numbers (the caller escapes them)."""
    m = metrics
    if m.axis == "ordinal":
        span = f"{_plural(m.periods, 'meeting or thread', 'meetings or threads')} in order (no dates)"
    else:
        span = f"{_plural(m.periods, 'period')}, {m.first_period} to {m.last_period}"
    parts = [f"{_plural(m.items, 'item')} from {_plural(m.participants, 'person', 'people')} over {span}."]
    if m.undated:
        parts.append(f"{_plural(m.undated, 'item')} had no date and {'is' if m.undated == 1 else 'are'} listed apart.")
    dom = m.dominant_mode
    parts.append(
        f"Most of the team's items are {dom} ({m.shares[dom]:.0%}, "
        f"plausibly {_range(m.shares_low.get(dom), m.shares_high.get(dom)) or 'unknown'})."
    )
    if m.turns_completed:
        last = m.turns[-1]
        parts.append(
            f"{_plural(m.turns_completed, 'complete round')} of the four modes (S→E→C→I); "
            f"the last ran from {last.start_period} to {last.end_period}."
        )
    else:
        parts.append("No complete round of the four modes (S→E→C→I).")
    if m.coherence is not None:
        direction = (
            "mostly in the spiral's order"
            if m.coherence >= 2 / 3
            else "about as often backwards as forwards"
            if m.coherence > 1 / 3
            else "mostly backwards"
        )
        parts.append(f"When the mode changes, it moves {direction} (spiral coherence {m.coherence:.2f}).")
    if m.amplification is not None:
        trend = "more" if m.amplification > 0 else "fewer" if m.amplification < 0 else "the same number of"
        parts.append(f"Later rounds involve {trend} people ({m.amplification:+.1f} people per round).")
    if m.stall_mode:
        parts.append(f"Rounds most often stop at {m.stall_mode}.")
    return " ".join(parts)


def _trust_html(card: ModelCard | None, min_period_items: int) -> str:
    if card is None:
        return (
            '<div class="trust"><b>How far to trust it.</b> The model card of the model these results were '
            "scored with was not found, so this report cannot say how accurate the labels are. Treat the "
            "shares as rough. Ranges below cover only the number of items. "
            f"Periods with fewer than {min_period_items} items are greyed.</div>"
        )
    wrong = 1 - card.accuracy
    rows = "".join(
        f"<tr><td>{_swatch(mode)}{_e(mode)}</td><td>{_pct(s.precision)}</td><td>{_pct(s.recall)}</td>"
        f"<td>{s.support}</td></tr>"
        for mode, s in card.per_mode.items()
    )
    weakest = sorted(card.per_mode, key=lambda m: min(card.per_mode[m].precision, card.per_mode[m].recall))[:2]
    one_in = round(1 / wrong) if wrong > 0 else None
    wrong_words = f"about one label in {one_in} is wrong" if one_in else "no label was wrong"
    return (
        '<div class="trust"><b>How far to trust it.</b> Each item was labelled by a classifier '
        f"({_e(card.name)}), not by a person. Tested on {card.items} items from organizations it had never "
        f"seen, it gave the right mode for {card.accuracy:.0%} of them: {wrong_words}. It is least reliable "
        f"for {_e(weakest[0])} and {_e(weakest[1])}."
        '<div class="scroll"><table><tr><th>mode</th><th>when it says this mode, it is right</th>'
        f"<th>of the items truly in this mode, it finds</th><th>test items</th></tr>{rows}</table></div>"
        "Every share below comes with a 90% range that allows for these errors and for the number of items: "
        "read <i>40% (25–55%)</i> as “somewhere between a quarter and a half”. "
        f"Periods with fewer than {min_period_items} items are greyed: a share of two items says little.</div>"
    )


def _swatch(mode: str) -> str:
    return f'<span class="swatch" style="background:{_SWATCH[mode]}"></span>'


def first_screen(overview: Overview, card: ModelCard | None, min_period_items: int) -> str:
    """What was analysed, what the modes and ba mean, and how far to trust the shares."""
    o = overview
    sources = ", ".join(
        _plural(n, word, plural)
        for key, word, plural in (
            ("email", "e-mail", "e-mails"),
            ("meeting", "meeting segment", "meeting segments"),
            ("document", "document section", "document sections"),
            ("other", "other item", "other items"),
        )
        if (n := o.by_source.get(key, 0))
    )
    dates = f", dated {o.first} to {o.last}" if o.first else ", none of them dated"
    undated = f"; {_plural(o.undated, 'item')} had no date" if o.undated and o.first else ""
    modes = "".join(
        f'<li>{_swatch(mode)}<b class="mode-{mode}">{mode.capitalize()}</b> – {_e(short)}: {_e(long)}</li>'
        for mode, (short, long) in MODE_WORDS.items()
    )
    ba = "; ".join(f"<b>{name}</b> ({words})" for name, words in BA_WORDS.items())
    return f"""<section class="intro">
<p><b>What was analysed.</b> {o.items} items ({sources}) from {_plural(o.people, "person", "people")} in
{_plural(o.teams, "team")}{dates}{undated}. Each item is one e-mail, a few minutes of a meeting, or one
section of a document.</p>
<div class="intro-grid"><div>
<p style="margin:0"><b>The four modes.</b> Nonaka's SECI model describes how an organization creates knowledge
by turning <i>tacit</i> knowledge (experience, know-how) into <i>explicit</i> knowledge (words, documents)
and back, in four modes:</p>
<ul class="modes">{modes}</ul>
<p class="muted" style="margin:2px 0">Knowledge grows when a team goes round all four in this order, again and
again, drawing in more people each time: the “knowledge spiral”.</p>
</div><div>
{_trust_html(card, min_period_items)}
<p class="muted"><b>Ba</b> is the shared context in which knowledge is created: who takes part and how.
The report counts items in four kinds of ba: {ba}.</p>
</div></div>
</section>"""


def _team_table(teams: Sequence[TeamMetrics], anchors: Mapping[str, str], show_metaphor: bool) -> str:
    metaphor_head = "<th>metaphor flags</th>" if show_metaphor else ""
    head = (
        "<tr><th>team</th><th>items</th><th>people</th><th>undated</th><th>main mode (90% range)</th>"
        f"<th>complete rounds</th><th>coherence</th><th>dates</th>{metaphor_head}</tr>"
    )
    rows = []
    for m in teams:
        name = f'<a href="#{anchors[m.team]}">{_e(m.team)}</a>' if m.team in anchors else _e(m.team)
        dom = m.dominant_mode
        main = f"{_mode(dom)} {_pct(m.shares[dom])} ({_range(m.shares_low.get(dom), m.shares_high.get(dom))})"
        dates = f"{_e(m.first_period)} – {_e(m.last_period)}" if m.axis == "time" else "no dates"
        metaphor = f"<td>{_pct(m.metaphor_rate)}</td>" if show_metaphor else ""
        rows.append(
            f"<tr><td>{name}</td><td>{m.items}</td><td>{m.participants}</td><td>{m.undated or ''}</td>"
            f"<td>{main}</td><td>{m.turns_completed}</td><td>{_num(m.coherence)}</td><td>{dates}</td>{metaphor}</tr>"
        )
    return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'


def _shares_table(m: TeamMetrics) -> str:
    cells = "".join(
        f"<tr><td>{_swatch(mode)}{_e(mode)}</td><td>{_pct(m.shares[mode])}</td>"
        f"<td>{_range(m.shares_low.get(mode), m.shares_high.get(mode))}</td></tr>"
        for mode in MODES
    )
    return f"<table><tr><th>mode</th><th>share</th><th>90% range</th></tr>{cells}</table>"


def _periods_table(timeline: pd.DataFrame, show_metaphor: bool) -> str:
    head = (
        "<tr><th>period</th><th>items</th><th>people</th>"
        + "".join(f"<th>{mode[:3]}.</th>" for mode in MODES)
        + "<th>main mode</th>"
        + ("<th>metaphor</th>" if show_metaphor else "")
        + "<th>ba (orig/dial/syst/exer)</th></tr>"
    )
    rows = []
    for row in timeline.head(MAX_PERIOD_ROWS).itertuples(index=False):
        sparse = bool(getattr(row, "sparse", False))
        shares = "".join(
            f'<td title="90% range {_range(getattr(row, f"share_{mode}_low"), getattr(row, f"share_{mode}_high"))}">'
            f"{_pct(getattr(row, f'share_{mode}'))}</td>"
            for mode in MODES
        )
        ba = f"{row.ba_originating}/{row.ba_dialoguing}/{row.ba_systemizing}/{row.ba_exercising}"
        main = "too few items" if sparse else _mode(row.dominant)
        metaphor = f"<td>{_pct(row.metaphor_rate)}</td>" if show_metaphor else ""
        rows.append(
            f"<tr{' class=sparse' if sparse else ''}><td>{_e(row.period)}</td><td>{row.items}</td>"
            f"<td>{row.participants}</td>{shares}<td>{main}</td>{metaphor}<td>{ba}</td></tr>"
        )
    more = ""
    if len(timeline) > MAX_PERIOD_ROWS:
        more = f'<p class="muted">First {MAX_PERIOD_ROWS} of {len(timeline)} periods; all are in timeline.csv.</p>'
    return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>{more}'


def _turns_table(metrics: TeamMetrics) -> str:
    if not metrics.turns:
        return ""
    head = "<tr><th>round</th><th>from</th><th>to</th><th>items</th><th>days</th><th>people</th></tr>"
    rows = [
        f"<tr><td>{i + 1}</td><td>{_e(t.start_period)}</td><td>{_e(t.end_period)}</td><td>{t.duration_items + 1}</td>"
        f"<td>{_num(t.duration_days, 1)}</td><td>{t.participants}</td></tr>"
        for i, t in enumerate(metrics.turns[:MAX_TURN_ROWS])
    ]
    more = ""
    if len(metrics.turns) > MAX_TURN_ROWS:
        more = f'<p class="muted">First {MAX_TURN_ROWS} of {len(metrics.turns)} rounds; all are in turns.csv.</p>'
    return f"<h3>Complete rounds S→E→C→I</h3><table>{head}{''.join(rows)}</table>{more}"


def _examples_html(examples: Sequence[Example] | None, include_text: bool) -> str:
    if not include_text:
        return '<p class="muted">Example excerpts are left out of this report (--no-text).</p>'
    if examples is None:
        return '<p class="muted">No example excerpts: the results hold no item text (scored with --no-text).</p>'
    parts = []
    for mode in MODES:
        mine = [x for x in examples if x.mode == mode]
        if not mine:
            continue
        items = "".join(
            f'<li><q>{_e(x.excerpt)}</q> <span class="muted">({_e(x.where)}; {x.probability:.0%} sure)</span></li>'
            for x in mine
        )
        parts.append(f'<div><b class="mode-{mode}">{mode.capitalize()}</b><ul class="examples">{items}</ul></div>')
    if not parts:
        return ""
    return "<h3>What the modes look like here</h3>" + "".join(parts)


def _undated_table(rows: pd.DataFrame | None) -> str:
    if rows is None or rows.empty:
        return ""
    body = "".join(
        f"<tr><td>{_e(r.title or r.path or r.id)}</td><td>{_e(r.source)}</td><td>{_mode(r.mode)}</td></tr>"
        for r in rows.head(MAX_UNDATED_ROWS).itertuples(index=False)
    )
    more = f'<p class="muted">First {MAX_UNDATED_ROWS} of {len(rows)}.</p>' if len(rows) > MAX_UNDATED_ROWS else ""
    return (
        f"<h3>Items without a date ({len(rows)})</h3>"
        '<p class="muted">Neither the item nor its thread has a date, so they are counted in the shares '
        "above but not placed on the time line.</p>"
        f'<div class="scroll"><table><tr><th>item</th><th>source</th><th>mode</th></tr>{body}</table></div>{more}'
    )


_CAPTIONS = {
    "shares": "Share of items in each mode per period, on a true time scale.",
    "path": "Each dot is an item, in its mode's row. Going down the rows (and from I back to S) follows the spiral.",
    "transitions": "How often an item in one mode (row) is followed by one in another (column).",
    "ba": "Items by kind of ba: individual or group, face to face or virtual.",
}


def _method_html(max_detour: int, card: ModelCard | None, show_metaphor: bool) -> str:
    metaphor = ""
    if show_metaphor:
        if card is not None and card.metaphor_precision is not None:
            metaphor = (
                f"<li><b>Metaphor flags</b>: share of items flagged as using a deliberate metaphor. On "
                f"{card.metaphor_items} test items only {card.metaphor_precision:.0%} of flags were real metaphors "
                f"and {card.metaphor_recall:.0%} of real ones were found: read it as a weak hint.</li>"
            )
        else:
            metaphor = (
                "<li><b>Metaphor flags</b>: their precision is unknown (no model card); read as a weak hint.</li>"
            )
    return f"""<section class="method"><h2>How the numbers are made</h2><ul>
<li><b>Share</b> of a mode: the average of the classifier's probability for that mode over the items, so an
item it is unsure of counts partly in several modes.</li>
<li><b>90% range</b>: resampling the items (how much the share moves with a different handful of items)
joined with the classifier's measured mistakes (the test's confusion between modes) – the share could
plausibly be anywhere in it.</li>
<li><b>Periods</b>: days, weeks or months by the span of the dates; each bar spans its period on a true time scale.
Items without a date take the date of their thread when it has one; otherwise they are listed apart.</li>
<li><b>Complete round</b>: the items, in time order, go S→E→C→I; repeats are allowed and up to {max_detour} items
of other modes in a row.</li>
<li><b>Spiral coherence</b>: of the changes between consecutive items that move one step round the circle,
the share that move forward (S→E, E→C, C→I, I→S) rather than back. 1: only forward; 0.5: as often back.</li>
<li><b>People</b>: each person once, whatever address or name they wrote under (display names, the teams
file's aliases); mailing lists and automatic senders are not people.</li>
<li><b>Ba</b>: individual when at most two people take part, group otherwise (and for mail to a list);
meetings in a room are face to face, mail, documents and online meetings virtual.</li>
{metaphor}</ul></section>"""


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
    summary: Overview | None = None,
    card: ModelCard | None = None,
    examples: Mapping[str, Sequence[Example] | None] | None = None,
    undated: Mapping[str, pd.DataFrame] | None = None,
    include_text: bool = True,
    show_metaphor: bool = False,
    min_period_items: int = 5,
) -> str:
    """The whole page as a string; `shown` are the teams that get a section (the first N by items)."""
    items = sum(m.items for m in teams)
    if summary is None:
        summary = Overview(items, {}, sum(m.participants for m in teams), len(teams), None, None, 0, source, None)
    capped = ""
    if len(shown) < len(teams):
        capped = (
            f'<p class="note">Showing sections for the {len(shown)} largest of {len(teams)} teams; '
            "the table lists every team, and teams.csv and timeline.csv hold all of them.</p>"
        )
    if freq is None:
        axis_note = "No team has dates, so each is shown in the order of its meetings and threads."
    else:
        bins = {"D": "days", "W": "weeks", "M": "months"}[freq]
        ordinal = [m.team for m in teams if m.axis == "ordinal"]
        axis_note = f"Dated teams are shown by {bins}" + (
            f"; {len(ordinal)} team(s) without any date in the order of their meetings and threads." if ordinal else "."
        )
    sections = []
    for m in shown:
        figures = "".join(
            f"<figure>{_img(path, f'{m.team}: {kind}')}<figcaption>{_e(_CAPTIONS.get(kind, ''))}</figcaption></figure>"
            for kind, path in plots[m.team].items()
        )
        team_examples = (examples or {}).get(m.team) if include_text else None
        sections.append(
            f'<section class="team" id="{anchors[m.team]}"><h2>{_e(m.team)}</h2>'
            f"<p>{_e(team_summary(m))}</p>"
            f"{_shares_table(m)}"
            f"{_examples_html(team_examples, include_text)}"
            f'<div class="figures">{figures}</div>'
            f"<h3>Periods</h3>{_periods_table(timeline[timeline['team'] == m.team], show_metaphor)}"
            f"{_undated_table((undated or {}).get(m.team))}"
            f"{_turns_table(m)}</section>"
        )
    overview_html = (
        _img(overview, "teams compared: share of items in each mode, with 90% ranges", "wide") if overview else ""
    )
    model = f" Labels by {_e(summary.model)}." if summary.model else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>How knowledge moves in these teams: SECI report</title>
<style>{_CSS}</style></head>
<body><main>
<h1>How knowledge moves in these teams</h1>
{first_screen(summary, card, min_period_items)}
{capped}
<h2>Teams</h2>
<p class="muted">{axis_note}{model} Results read from {_e(source)}.</p>
{_team_table(teams, anchors, show_metaphor)}
{overview_html}
{"".join(sections)}
{_method_html(max_detour, card, show_metaphor)}
</main></body></html>
"""
