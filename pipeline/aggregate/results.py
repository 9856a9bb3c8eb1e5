"""Reading the item results that `seci batch` writes, in any of its layouts, into one table.

A results folder holds `items.parquet` or `items.jsonl` when the run finished, or `parts/*.parquet` /
`parts/*.jsonl` while it is still running (or was stopped). Rows follow `INTERFACE.md` ("Item
results") plus `thread`, `position`, `title`, `medium`, `meta`, `start_seconds` and `end_seconds`.

The table `load_results` returns always has the same columns, whatever the input lacked:
`p_socialization` ... `p_internalization` (the probabilities, normalized to sum to 1), `mode`
(one of `MODES`), `timestamp` (timezone-aware UTC, `NaT` when unknown, unparsable or a placeholder
before 1980-01-02), `authors` and `participants` (lists), `meta` (dict), `metaphor` (1.0 or 0.0; NaN
where the run computed no item-level flag, `seci batch --metaphor tokens|off`, so rates skip it),
`position` (int), and the string columns `id`, `source`, `path`, `team`, `thread`, `title`, `medium`, `ba`, `model`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline.ingest.dates import LATEST_YEAR, PLACEHOLDER_BEFORE

log = logging.getLogger(__name__)

MODES = ("socialization", "externalization", "combination", "internalization")
MODE_LETTERS = ("S", "E", "C", "I")
PROB_COLUMNS = tuple(f"p_{mode}" for mode in MODES)

# The timeline never needs the text or the metaphor spans; leaving them out keeps a
# million-item archive's results small enough to hold in memory.
_COLUMNS = (
    "id",
    "source",
    "path",
    "team",
    "timestamp",
    "authors",
    "participants",
    "ba",
    "mode",
    "probabilities",
    "metaphor",
    "thread",
    "position",
    "title",
    "medium",
    "meta",
    "start_seconds",
    "end_seconds",
    "model",
)
# One results line is one item; a line this long is damage, not data.
MAX_LINE_BYTES = 16 * 1024 * 1024
NO_TEAM = "(no team)"
PLACEHOLDER = pd.Timestamp(PLACEHOLDER_BEFORE)


class ResultsNotFound(FileNotFoundError):
    """The folder holds none of the layouts `seci batch` writes."""


def result_files(results_dir: Path) -> list[Path]:
    """The files holding a run's rows: the finished run's `items.*`, else its `parts/`."""
    results_dir = Path(results_dir)
    for name in ("items.parquet", "items.jsonl"):
        if (results_dir / name).is_file():
            return [results_dir / name]
    parts = results_dir / "parts"
    files = sorted([*parts.glob("*.parquet"), *parts.glob("*.jsonl")]) if parts.is_dir() else []
    if not files:
        raise ResultsNotFound(f"{results_dir}: no items.parquet, items.jsonl or parts/*.parquet|jsonl")
    return files


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if len(line) > MAX_LINE_BYTES:
                log.warning("%s:%d: line of %d bytes skipped (over %d)", path, number, len(line), MAX_LINE_BYTES)
                continue
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                # An unfinished run can leave a cut last line; the rest of the file is still good.
                log.warning("%s:%d: unreadable line skipped (%s)", path, number, err)
                continue
            if not isinstance(row, dict):
                log.warning("%s:%d: line is not a JSON object, skipped", path, number)
                continue
            yield {key: row.get(key) for key in _COLUMNS}


def _read_parquet(path: Path) -> pd.DataFrame:
    schema = pq.read_schema(path)
    columns = [name for name in _COLUMNS if name in schema.names]
    return pq.read_table(path, columns=columns).to_pandas()


def _as_list(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        return [value]
    try:
        return [str(v) for v in value if v is not None]
    except TypeError:
        return [str(value)]


def _as_meta(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items() if v is not None}
    return {}


def _as_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _flag(value: Any) -> float:
    """An item-level metaphor flag as 1.0 or 0.0; NaN where none was computed (null, missing)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.nan
    if isinstance(value, bool | np.bool_):
        return float(value)
    return 1.0 if value in (1, "true", "True") else 0.0


def _probabilities(value: Any, mode: Any) -> list[float]:
    """The four probabilities, normalized; a row with none gets its `mode` as certain."""
    probs = [0.0] * len(MODES)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = None
    if isinstance(value, dict):
        for i, name in enumerate(MODES):
            try:
                p = float(value.get(name) or 0.0)
            except (TypeError, ValueError):
                p = 0.0
            probs[i] = p if math.isfinite(p) and p > 0 else 0.0
    total = sum(probs)
    if total > 0:
        return [p / total for p in probs]
    if mode in MODES:
        probs[MODES.index(mode)] = 1.0
        return probs
    # Nothing known: a uniform row weighs the same in every mode, so it tips no balance.
    return [1.0 / len(MODES)] * len(MODES)


def normalize_results(frame: pd.DataFrame) -> pd.DataFrame:
    """Bring raw result rows to the fixed columns described in the module docstring."""
    frame = frame.reindex(columns=list(_COLUMNS))
    n = len(frame)
    out = pd.DataFrame(index=pd.RangeIndex(n))
    out["id"] = [_as_text(v) or f"row-{i}" for i, v in enumerate(frame["id"])]
    for column in ("source", "path", "thread", "title", "ba", "model"):
        out[column] = pd.Series([_as_text(v) for v in frame[column]], dtype=object)
    out["team"] = pd.Series([_as_text(v) or NO_TEAM for v in frame["team"]], dtype=object)
    out["medium"] = pd.Series([_as_text(v) or "virtual" for v in frame["medium"]], dtype=object)
    out["authors"] = pd.Series([_as_list(v) for v in frame["authors"]], dtype=object)
    out["participants"] = pd.Series([_as_list(v) for v in frame["participants"]], dtype=object)
    out["meta"] = pd.Series([_as_meta(v) for v in frame["meta"]], dtype=object)

    raw_stamps = pd.Series([_as_text(v) for v in frame["timestamp"]], dtype=object)
    stamps = pd.to_datetime(raw_stamps, utc=True, errors="coerce", format="ISO8601")
    bad = int((raw_stamps.notna() & stamps.isna()).sum())
    if bad:
        log.warning("%d timestamps could not be parsed as ISO 8601; those items count as undated", bad)
    # Enron's 1979-12-31 and a zero PDF date are placeholders, not dates (pipeline/ingest/dates.py).
    placeholder = stamps.notna() & ((stamps < PLACEHOLDER) | (stamps.dt.year > LATEST_YEAR))
    if placeholder.any():
        log.info("%d placeholder timestamps (before 1980-01-02) count as undated", int(placeholder.sum()))
    out["timestamp"] = stamps.mask(placeholder)

    positions = pd.to_numeric(frame["position"], errors="coerce").fillna(0)
    out["position"] = positions.astype(np.int64)
    for column in ("start_seconds", "end_seconds"):
        out[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    out["metaphor"] = np.array([_flag(v) for v in frame["metaphor"]], dtype=float)

    probs = np.array(
        [_probabilities(p, m) for p, m in zip(frame["probabilities"], frame["mode"], strict=True)], dtype=float
    ).reshape(n, len(MODES))
    for i, column in enumerate(PROB_COLUMNS):
        out[column] = probs[:, i]
    # The row's own label wins (it is what the user sees per item); argmax where it is missing.
    argmax = [MODES[i] for i in probs.argmax(axis=1)] if n else []
    out["mode"] = [m if m in MODES else a for m, a in zip(frame["mode"], argmax, strict=True)]
    return out


def load_results(results_dir: Path) -> pd.DataFrame:
    """Read a `seci batch` output folder (finished or partial) into the normalized table.

    A resumed run can write an item twice across parts; the last row for an id wins.
    """
    frames: list[pd.DataFrame] = []
    for path in result_files(Path(results_dir)):
        if path.suffix == ".parquet":
            frames.append(_read_parquet(path))
        else:
            frames.append(pd.DataFrame.from_records(list(_read_jsonl(path)), columns=list(_COLUMNS)))
    raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(_COLUMNS))
    frame = normalize_results(raw)
    before = len(frame)
    frame = frame.drop_duplicates(subset="id", keep="last").reset_index(drop=True)
    if len(frame) < before:
        log.info("%d repeated item ids dropped (kept each id's last row)", before - len(frame))
    return frame


def read_texts(results_dir: Path, ids: set[str]) -> dict[str, str] | None:
    """The `text` of the given items, read from the results again (the table leaves texts out).

    None when the results hold no text at all (`seci batch --no-text`); ids without text are absent.
    """
    found: dict[str, str] = {}
    any_text = False
    for path in result_files(Path(results_dir)):
        if path.suffix == ".parquet":
            if "text" not in pq.read_schema(path).names:
                continue
            any_text = True
            table = pq.read_table(path, columns=["id", "text"], filters=[("id", "in", sorted(ids))]) if ids else None
            if table is not None:
                for item_id, text in zip(table.column("id").to_pylist(), table.column("text").to_pylist(), strict=True):
                    if text:
                        found[item_id] = text
            continue
        with path.open("rb") as handle:
            for line in handle:
                if len(line) > MAX_LINE_BYTES or not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue
                if not isinstance(row, dict) or "text" not in row:
                    continue
                any_text = True
                if row.get("id") in ids and row.get("text"):
                    found[str(row["id"])] = str(row["text"])
    return found if any_text else None
