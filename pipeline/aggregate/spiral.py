"""The knowledge-spiral measures computed over one team's sequence of modes.

Every function takes the team's item modes in time order (see `pipeline.aggregate.timeline` for how
that order is made), as mode names (`socialization` ...), letters (`S`, `E`, `C`, `I`; so the
string `"SECI"` is a valid sequence) or indices 0-3. The definitions below are the ones
`docs/spiral.md` documents; keep the two in step.

* **Transition matrix**: `M[a][b]` counts the consecutive pairs (item i in mode a, item i+1 in mode
  b). Rows and columns are in S, E, C, I order. The same function applied to the periods' dominant
  modes gives the period-level matrix.
* **Forward and backward transitions**: forward are the four steps round the spiral S->E, E->C,
  C->I and I->S; backward are their reverses E->S, C->E, I->C and S->I. Self-transitions (S->S) and
  skips across the circle (S->C, E->I, C->S, I->E) are neither.
* **Spiral coherence** = forward / (forward + backward); self-transitions and skips are left out of
  both counts. `None` when there is no forward or backward transition at all. 1 means the team
  only ever moves round the spiral, 0.5 as often back as forward, 0 only backwards.
* **Completed SECI turn** (`find_turns`): scan the sequence from the left with no turn open. An S
  opens a turn; the turn's *stage* is then S. At each next item, with the turn at stage m:
  an item in m is a repeat (allowed); an item in the mode after m (S->E->C->I) advances the stage;
  any other item is a *detour* item. A run of more than `max_detour` consecutive detour items
  (default 2) breaks the turn: it is recorded as stalled at its stage m and the scan resumes, with
  no turn open, at the first item of that detour (so an S inside the detour can open the next
  turn). A repeat or an advance ends a detour. When the stage reaches I the turn is completed; its
  start is the S that opened it and its end the first I item. An S seen while a turn is open is
  a detour item like any other (turns do not overlap); after a completed turn the next S opens the
  next turn. A turn still open when the sequence ends is *open*, not stalled.
* **Stall mode**: the stage at which the most turns stalled (ties go to the earlier mode in S, E,
  C, I order); `None` when no turn stalled.
* **Amplification**: the slope of the least-squares line through (k, p_k), where p_k is the number
  of distinct people (authors and participants) in the items of the k-th completed turn, k = 0, 1,
  ...; positive means successive turns draw in more people, the paper's spiral that grows from
  individuals to groups. `None` with fewer than two completed turns.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.aggregate.results import MODE_LETTERS, MODES

N_MODES = len(MODES)
DEFAULT_MAX_DETOUR = 2
SOC, EXT, COM, INT = range(N_MODES)


def mode_index(mode: str | int) -> int:
    """0-3 for a mode given as its name, its letter or its index."""
    if isinstance(mode, int | np.integer):
        if 0 <= mode < N_MODES:
            return int(mode)
    elif mode in MODES:
        return MODES.index(mode)
    elif isinstance(mode, str) and mode.upper() in MODE_LETTERS:
        return MODE_LETTERS.index(mode.upper())
    raise ValueError(f"not a SECI mode: {mode!r}")


def as_indices(modes: Sequence[str | int]) -> list[int]:
    return [mode_index(m) for m in modes]


def transition_matrix(modes: Sequence[str | int]) -> np.ndarray:
    """4x4 counts of consecutive pairs, rows = from, columns = to, in S, E, C, I order."""
    seq = as_indices(modes)
    matrix = np.zeros((N_MODES, N_MODES), dtype=np.int64)
    for a, b in itertools.pairwise(seq):
        matrix[a, b] += 1
    return matrix


def forward_backward(matrix: np.ndarray) -> tuple[int, int]:
    """(forward, backward) transition counts from a transition matrix."""
    forward = sum(int(matrix[m, (m + 1) % N_MODES]) for m in range(N_MODES))
    backward = sum(int(matrix[(m + 1) % N_MODES, m]) for m in range(N_MODES))
    return forward, backward


def coherence(matrix: np.ndarray) -> float | None:
    """forward / (forward + backward); self-transitions and skips excluded; None with neither."""
    forward, backward = forward_backward(matrix)
    total = forward + backward
    return forward / total if total else None


@dataclass(frozen=True)
class Turn:
    """One completed S->E->C->I turn: indices of its opening S and its first I (inclusive)."""

    start: int
    end: int


@dataclass
class TurnScan:
    """What `find_turns` found: completed turns, the stage of each stalled turn, the open turn."""

    turns: list[Turn] = field(default_factory=list)
    stalls: list[int] = field(default_factory=list)  # the stage (mode index) each broken turn reached
    open_start: int | None = None  # the opening S of a turn still open at the end
    open_stage: int | None = None


def find_turns(modes: Sequence[str | int], max_detour: int = DEFAULT_MAX_DETOUR) -> TurnScan:
    """Completed SECI turns, stalls and the open turn, as defined in the module docstring."""
    if max_detour < 0:
        raise ValueError("max_detour must be >= 0")
    seq = as_indices(modes)
    scan = TurnScan()
    i = 0
    start: int | None = None  # opening S of the open turn
    stage = SOC
    detour_start = 0
    detour = 0
    while i < len(seq):
        mode = seq[i]
        if start is None:
            if mode == SOC:
                start, stage, detour = i, SOC, 0
            i += 1
            continue
        if mode == stage:
            detour = 0
        elif mode == stage + 1:
            stage, detour = mode, 0
            if stage == INT:
                scan.turns.append(Turn(start, i))
                start = None
        else:
            if detour == 0:
                detour_start = i
            detour += 1
            if detour > max_detour:
                scan.stalls.append(stage)
                start, detour = None, 0
                i = detour_start
                continue
        i += 1
    if start is not None:
        scan.open_start, scan.open_stage = start, stage
    return scan


def stall_mode(stalls: Sequence[int]) -> int | None:
    """The stage most turns stalled at; ties to the earlier mode in S, E, C, I order."""
    if not stalls:
        return None
    counts = Counter(stalls)
    return max(sorted(counts), key=lambda m: (counts[m], -m))


def amplification(participants_per_turn: Sequence[int | float]) -> float | None:
    """Least-squares slope of distinct people over successive completed turns; None under two turns."""
    if len(participants_per_turn) < 2:
        return None
    x = np.arange(len(participants_per_turn), dtype=float)
    y = np.asarray(participants_per_turn, dtype=float)
    x_centered = x - x.mean()
    return float((x_centered * (y - y.mean())).sum() / (x_centered**2).sum())
