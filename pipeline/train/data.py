"""Labelled SECI items from JSONL, CSV or Parquet (through `datasets`), in the guide's fields."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pipeline.classify.model import MODES

FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass
class Labelled:
    ids: list[str]
    texts: list[str]
    labels: list[int]  # index into the model's modes
    metaphor: list[bool | None]

    def __len__(self) -> int:
        return len(self.texts)


def load_labelled(paths: list[str] | list[Path], modes: tuple[str, ...] = MODES) -> Labelled:
    """Rows need `text` and `mode` (a mode name); `id` and `metaphor` are used when present."""
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
        keep = [c for c in ("id", "text", "mode", "metaphor") if c in ds.column_names]
        parts.append(ds.select_columns(keep))
    ds = concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    index = {m: i for i, m in enumerate(modes)}
    bad = sorted({m for m in ds["mode"] if m not in index})
    if bad:
        raise ValueError(f"unknown modes {bad}; expected {modes}")
    ids = ds["id"] if "id" in ds.column_names else [f"row{i}" for i in range(len(ds))]
    metaphor = ds["metaphor"] if "metaphor" in ds.column_names else [None] * len(ds)
    return Labelled(list(ids), list(ds["text"]), [index[m] for m in ds["mode"]], list(metaphor))


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
