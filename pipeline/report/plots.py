"""The report's charts, drawn with matplotlib into PNG files.

Figures are made with `matplotlib.figure.Figure` directly, not pyplot: that needs no display and no
global backend switch, and keeps no figure alive after it is saved (Agg renders the PNG).

Each function draws one figure and returns the path it wrote. Text from the data (team names,
period labels) is drawn with mathtext off, so a `$` in a team name is shown, not parsed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from pipeline.aggregate.ba import BA_TYPES
from pipeline.aggregate.results import MODE_LETTERS, MODES, PROB_COLUMNS
from pipeline.aggregate.timeline import TeamMetrics

# Fixed colours per mode, the same in every chart (colour-blind-safe Okabe-Ito hues).
MODE_COLORS = {
    "socialization": "#E69F00",
    "externalization": "#0072B2",
    "combination": "#009E73",
    "internalization": "#CC79A7",
}
BA_COLORS = {"originating": "#E69F00", "dialoguing": "#0072B2", "systemizing": "#009E73", "exercising": "#CC79A7"}
DPI = 100
MAX_TICK_LABELS = 12
MAX_LABEL_CHARS = 40


def _label(text: object) -> str:
    text = str(text)
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 1] + "…"


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def _title(ax: Axes, text: str) -> None:
    ax.set_title(_label(text) if "\n" not in text else text, parse_math=False, fontsize=11)


def shares_area(team: str, timeline: pd.DataFrame, path: Path) -> Path:
    """Mode shares per period as stacked bars; on the time axis each bar spans its period on a true
    time scale (gaps are gaps), on the ordinal axis one bar per thread. Periods with too few items
    (`sparse`) are drawn pale and hatched: their shares say little."""
    fig = Figure(figsize=(7.5, 3.6), layout="constrained")
    ax = fig.subplots()
    n = len(timeline)
    axis = timeline["axis"].iat[0] if n else "time"
    sparse = timeline["sparse"].to_numpy(dtype=bool) if "sparse" in timeline else np.zeros(n, dtype=bool)
    timed = axis == "time" and n and timeline["period_start"].notna().all()
    if timed:
        starts = pd.to_datetime(timeline["period_start"], utc=True).dt.tz_localize(None)
        ends = pd.to_datetime(timeline["period_end"], utc=True).dt.tz_localize(None)
        ends = ends.where(ends.notna(), starts + pd.Timedelta(days=1))
        x = mdates.date2num(starts.to_numpy())
        width = mdates.date2num(ends.to_numpy()) - x
        align = "edge"
    else:
        x = np.arange(n, dtype=float)
        width = np.full(n, 0.8)
        align = "center"
    bottom = np.zeros(n)
    for mode in MODES:
        share = timeline[f"share_{mode}"].to_numpy(dtype=float)
        colors = [MODE_COLORS[mode]] * n
        bars = ax.bar(x, share, width=width * 0.92, bottom=bottom, color=colors, label=mode, align=align)
        for bar, thin in zip(bars, sparse, strict=True):
            if thin:
                bar.set_alpha(0.25)
                bar.set_hatch("///")
        bottom += share
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of items")
    if timed:
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.set_xlabel("time (bars span their period; pale hatched bars: fewer than the minimum items)")
    else:
        step = max(1, math.ceil(n / MAX_TICK_LABELS))
        ax.set_xticks(x[::step], [_label(p) for p in timeline["period"].iloc[::step]], rotation=30, ha="right")
        for tick in ax.get_xticklabels():
            tick.set_parse_math(False)
        ax.set_xlabel("meeting or thread, in order (no dates)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    _title(ax, f"{team}: mode shares over time")
    return _save(fig, path)


def spiral_angles(items: pd.DataFrame) -> np.ndarray:
    """Angle of each item: its mode's quadrant centre (S 0°, E 90°, C 180°, I 270°), leaning up to
    45° towards the next mode or back towards the previous one by how much probability each has."""
    modes = np.array([MODES.index(m) for m in items["mode"]])
    probs = items[list(PROB_COLUMNS)].to_numpy()
    rows = np.arange(len(modes))
    lean = probs[rows, (modes + 1) % 4] - probs[rows, (modes - 1) % 4]
    return np.deg2rad(modes * 90.0 + 45.0 * lean)


def mode_path(team: str, items: pd.DataFrame, turns: Sequence[tuple[int, int]], path: Path) -> Path:
    """The spiral as a reader can follow it: one lane per mode (S at the top, I at the bottom), each
    item a dot in its mode's lane at its time (or its place in order), consecutive items joined;
    completed S→E→C→I turns are shaded. Moving down the lanes, and from I back up to S, is forward."""
    fig = Figure(figsize=(7.5, 3.0), layout="constrained")
    ax = fig.subplots()
    n = len(items)
    timed = n and items["axis"].iat[0] == "time" and items["stamp"].notna().all()
    if timed:
        x = mdates.date2num(pd.to_datetime(items["stamp"], utc=True).dt.tz_localize(None).to_numpy())
    else:
        x = np.arange(n, dtype=float)
    lane = np.array([MODES.index(m) for m in items["mode"]], dtype=float)
    for start, end in turns:
        ax.axvspan(x[start], x[end] if x[end] > x[start] else x[start] + 0.5, color="#dddddd", alpha=0.6, lw=0)
    ax.plot(x, lane, color="#888888", linewidth=0.7, zorder=1)
    ax.scatter(x, lane, c=[MODE_COLORS[m] for m in items["mode"]], s=26, edgecolors="white", linewidths=0.4, zorder=2)
    ax.set_yticks(range(4), [f"{MODE_LETTERS[i]} {MODES[i]}" for i in range(4)], fontsize=8)
    ax.set_ylim(3.6, -0.6)
    if timed:
        locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    else:
        ax.set_xlabel("items in order (no dates)")
    ax.grid(axis="y", alpha=0.3)
    _title(ax, f"{team}: path through the modes (grey bands: completed turns)")
    return _save(fig, path)


def transition_heatmap(team: str, matrix: Sequence[Sequence[int]], path: Path) -> Path:
    """4x4 heatmap of transition counts between consecutive items' modes."""
    counts = np.asarray(matrix, dtype=float)
    fig = Figure(figsize=(4.8, 4.2), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues", vmin=0)
    ax.set_xticks(range(4), MODE_LETTERS)
    ax.set_yticks(range(4), MODE_LETTERS)
    ax.set_xlabel("to")
    ax.set_ylabel("from")
    top = counts.max() if counts.size else 0
    for (row, col), value in np.ndenumerate(counts):
        ax.text(col, row, f"{int(value)}", ha="center", va="center", color="white" if value > top / 2 else "black")
    fig.colorbar(image, ax=ax, shrink=0.8, label="transitions")
    _title(ax, f"{team}: transitions")
    return _save(fig, path)


def ba_quadrant(team: str, ba_counts: dict[str, int], path: Path) -> Path:
    """2x2 quadrant (individual/collective x face-to-face/virtual) with each ba's item count."""
    layout = {
        "originating": (0, 1),  # (column: face-to-face 0 / virtual 1, row: collective 0 / individual 1)
        "exercising": (1, 1),
        "dialoguing": (0, 0),
        "systemizing": (1, 0),
    }
    total = sum(ba_counts.values()) or 1
    fig = Figure(figsize=(4.8, 4.2), layout="constrained")
    ax = fig.subplots()
    for ba in BA_TYPES:
        col, row = layout[ba]
        count = ba_counts.get(ba, 0)
        alpha = 0.15 + 0.75 * count / total
        ax.add_patch(Rectangle((col, row), 1, 1, color=BA_COLORS[ba], alpha=alpha, linewidth=0))
        ax.text(col + 0.5, row + 0.58, ba, ha="center", va="center", fontsize=11, weight="bold")
        ax.text(col + 0.5, row + 0.38, f"{count} items ({count / total:.0%})", ha="center", va="center", fontsize=9)
    ax.set_xlim(0, 2)
    ax.set_ylim(0, 2)
    ax.set_xticks([0.5, 1.5], ["face-to-face", "virtual"])
    ax.set_yticks([0.5, 1.5], ["collective", "individual"])
    ax.tick_params(length=0)
    _title(ax, f"{team}: ba")
    return _save(fig, path)


def overview(teams: Sequence[TeamMetrics], path: Path) -> Path:
    """Per mode, each team's share with its interval (the range the share could plausibly be in)."""
    names = [_label(t.team) for t in teams]
    height = max(2.6, 0.3 * len(teams) + 1.5)
    fig = Figure(figsize=(8.6, height), layout="constrained")
    panels = fig.subplots(1, len(MODES), sharey=True)
    y = np.arange(len(teams))
    for ax, mode in zip(panels, MODES, strict=True):
        share = np.array([t.shares[mode] for t in teams])
        low = np.array([t.shares_low.get(mode, s) for t, s in zip(teams, share, strict=True)])
        high = np.array([t.shares_high.get(mode, s) for t, s in zip(teams, share, strict=True)])
        ax.barh(y, share, color=MODE_COLORS[mode], alpha=0.85)
        ax.errorbar(share, y, xerr=[share - low, high - share], fmt="none", ecolor="#222222", capsize=3, lw=1)
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.5, 1], ["0", "50%", "100%"])
        ax.set_title(mode, fontsize=10, color=MODE_COLORS[mode])
    panels[0].set_yticks(y, names)
    for tick in panels[0].get_yticklabels():
        tick.set_parse_math(False)
    panels[0].invert_yaxis()
    fig.suptitle("Share of items in each mode, per team (black lines: 90% range)", fontsize=11)
    return _save(fig, path)
