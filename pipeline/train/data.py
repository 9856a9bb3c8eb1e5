"""Labelled SECI items from JSONL, CSV or Parquet (through `datasets`), in the guide's fields."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pipeline.classify.model import MODES

CODES = {"S": "socialization", "E": "externalization", "C": "combination", "I": "internalization"}
FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass
class Labelled:
    ids: list[str]
    texts: list[str]
    labels: list[int]  # index into the model's modes
    metaphor: list[bool | None]
    groups: list[str | None] | None = None  # `group` (or `team`) of each item, where the data has it

    def __len__(self) -> int:
        return len(self.texts)


def load_labelled(paths: list[str] | list[Path], modes: tuple[str, ...] = MODES) -> Labelled:
    """Rows need `text` and `mode` (a mode name); `id`, `metaphor` and `group` (else `team`) are used when present."""
    from datasets import concatenate_datasets, load_dataset
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    parts = []
    for path in map(Path, paths):
        kind = FORMATS.get(path.suffix.lower())
        if kind is None:
            raise ValueError(f"{path}: labelled data must be one of {sorted(FORMATS)}")
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such labelled data file")
        ds = load_dataset(kind, data_files=str(path), split="train")
        missing = {"text", "mode"} - set(ds.column_names)
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        if "group" not in ds.column_names:
            teams = ds["team"] if "team" in ds.column_names else [None] * len(ds)
            ds = ds.add_column("group", [None if t is None else str(t) for t in teams])
        keep = [c for c in ("id", "text", "mode", "metaphor", "group") if c in ds.column_names]
        parts.append(ds.select_columns(keep))
    ds = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    index = {m: i for i, m in enumerate(modes)}
    bad = sorted({m for m in ds["mode"] if m not in index})
    if bad:
        raise ValueError(f"unknown modes {bad}; expected {modes}")
    ids = ds["id"] if "id" in ds.column_names else [f"row{i}" for i in range(len(ds))]
    metaphor = ds["metaphor"] if "metaphor" in ds.column_names else [None] * len(ds)
    groups = list(ds["group"]) if any(g is not None for g in ds["group"]) else None
    return Labelled(list(ids), list(ds["text"]), [index[m] for m in ds["mode"]], list(metaphor), groups)


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_label_tsv(path: Path) -> dict[str, dict]:
    """A reader's label file: key, mode, secondary, confidence, metaphor, spans (tab-separated; modes as S, E, C,
    I; confidence h or l; metaphor 1 or 0; spans joined by ||), as the guide's fields per key."""
    labels = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        fields += [""] * (6 - len(fields))
        key, mode, secondary, confidence, metaphor, spans = (f.strip() for f in fields[:6])
        if mode not in CODES or secondary not in ("-", "", *CODES) or confidence not in ("h", "l"):
            raise ValueError(f"{path}:{n}: bad label line {line!r}")
        labels[key] = {
            "mode": CODES[mode],
            "secondary": CODES.get(secondary) if secondary != mode else None,
            "confidence": "high" if confidence == "h" else "low",
            "metaphor": metaphor == "1",
            "metaphor_spans": [s.strip() for s in spans.split("||") if s.strip()] if metaphor == "1" else [],
        }
    return labels
