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
    """Stacked area of each mode's share per period, in period order."""
    fig = Figure(figsize=(7.5, 3.6), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(timeline))
    shares = [timeline[f"share_{mode}"].to_numpy() for mode in MODES]
    if len(timeline) == 1:
        # one period has no area to draw; a bar shows the same stack
        bottom = 0.0
        for mode, share in zip(MODES, shares, strict=True):
            ax.bar([0], share, bottom=bottom, color=MODE_COLORS[mode], label=mode, width=0.6)
            bottom += share[0]
    else:
        ax.stackplot(x, *shares, colors=[MODE_COLORS[m] for m in MODES], labels=list(MODES), alpha=0.9)
        ax.set_xlim(0, len(timeline) - 1)
    step = max(1, math.ceil(len(timeline) / MAX_TICK_LABELS))
    ax.set_xticks(x[::step], [_label(p) for p in timeline["period"].iloc[::step]], rotation=30, ha="right")
    for tick in ax.get_xticklabels():
        tick.set_parse_math(False)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of items (soft)")
    axis = timeline["axis"].iat[0] if len(timeline) else "time"
    ax.set_xlabel("period (thread order)" if axis == "ordinal" else "period")
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


def spiral_chart(team: str, items: pd.DataFrame, path: Path) -> Path:
    """Polar path of the team's items: angle by mode, radius by order (or time on the time axis)."""
    fig = Figure(figsize=(5.6, 5.6), layout="constrained")
    ax = fig.add_subplot(projection="polar")
    theta = spiral_angles(items)
    if len(items) and items["axis"].iat[0] == "time":
        days = (items["stamp"] - items["stamp"].min()) / pd.Timedelta(days=1)
        radius = 1.0 + days.to_numpy(dtype=float)
        radius_label = "radius: days since first item"
    else:
        radius = 1.0 + np.arange(len(items), dtype=float)
        radius_label = "radius: item order"
    ax.plot(theta, radius, color="#555555", linewidth=0.7, alpha=0.6, zorder=1)
    colors = [MODE_COLORS[m] for m in items["mode"]]
    ax.scatter(theta, radius, c=colors, s=22, edgecolors="white", linewidths=0.4, zorder=2)
    # headroom so the outermost points do not sit on the mode labels
    ax.set_rmax(float(radius.max()) * 1.1 if len(radius) else 1.0)
    ax.set_xticks(np.deg2rad([0, 90, 180, 270]), [f"{MODE_LETTERS[i]} {MODES[i]}" for i in range(4)], fontsize=8)
    ax.tick_params(axis="x", pad=8)
    ax.set_yticklabels([])
    ax.grid(alpha=0.3)
    _title(ax, f"{team}: knowledge spiral")
    fig.text(0.5, 0.01, radius_label + "; forward is anticlockwise", ha="center", fontsize=8)
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
    """Per team: stacked bars of mode shares, and spiral coherence beside them."""
    names = [_label(t.team) for t in teams]
    height = max(3.0, 0.32 * len(teams) + 1.6)
    fig = Figure(figsize=(10, height), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=(3, 1.4))
    y = np.arange(len(teams))
    start = np.zeros(len(teams))
    for mode in MODES:
        values = np.array([t.shares[mode] for t in teams])
        left.barh(y, values, left=start, color=MODE_COLORS[mode], label=mode)
        start += values
    left.set_yticks(y, names)
    for tick in left.get_yticklabels():
        tick.set_parse_math(False)
    left.invert_yaxis()
    left.set_xlim(0, 1)
    left.set_xlabel("share of items (soft)")
    left.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=4, fontsize=8, frameon=False)
    coherence = [t.coherence if t.coherence is not None else 0.0 for t in teams]
    right.barh(y, coherence, color="#444444")
    right.axvline(0.5, color="#999999", linestyle="--", linewidth=0.8)
    right.set_yticks(y, [""] * len(teams))
    right.invert_yaxis()
    right.set_xlim(0, 1)
    right.set_xlabel("spiral coherence")
    fig.suptitle("Teams compared: mode shares and spiral coherence", fontsize=12)
    return _save(fig, path)
