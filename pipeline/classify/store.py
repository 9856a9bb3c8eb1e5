"""The results folder of a batch run: part files, the resume index and the crash-safe merge into `items.*`.

- `parts/part-000000.parquet` ...: one per chunk, written under a temporary name, flushed and renamed, so
  a kill -9 loses at most the chunks in flight and never leaves a half-written part;
- `items.parquet` (or `items.jsonl`): at the end the parts are merged into it, row group by row group.
  The merge is crash-safe too: the new file is written under a temporary name, `parts/` is renamed to
  `parts.merged/`, the file is renamed into place, then `parts.merged/` is deleted; a later run finishes or
  rolls back an interrupted merge before it starts.

An item is done when a row with its (id, content hash) was written by the same model (`item_key`); rows of
items scored again are dropped from the merged output.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

FORMATS = ("parquet", "jsonl")
PARTS = "parts"
MERGED_PARTS = "parts.merged"
PART_PREFIX = "part-"
MERGE_BATCH_ROWS = 4096


class OutputExists(FileExistsError):
    """`out_dir` already holds results and `resume` was not asked for."""


def fsync_write(path: Path, write: Callable[[Any], None], binary: bool = True) -> None:
    """Write a file under a temporary name, flush it to disk, then rename it into place (atomic)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _part_number(path: Path) -> int | None:
    stem = path.name.split(".", 1)[0]
    digits = stem.removeprefix(PART_PREFIX)
    return int(digits) if stem.startswith(PART_PREFIX) and digits.isdigit() else None


class ResultStore:
    """The results folder of one run: writes parts, knows what is done, merges parts into `items.*`."""

    def __init__(self, out_dir: Path, fmt: str, schema: pa.Schema) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
        self.out_dir = Path(out_dir)
        self.fmt = fmt
        self.schema = schema
        self.parts_dir = self.out_dir / PARTS
        self.items_path = self.out_dir / f"items.{fmt}"
        self._next = 0
        self.previous_parts: list[Path] = []

    # layout ---------------------------------------------------------------------------------------

    def parts(self) -> list[Path]:
        if not self.parts_dir.is_dir():
            return []
        found = [p for p in self.parts_dir.iterdir() if p.suffix in (".parquet", ".jsonl") and p.is_file()]
        return sorted(found, key=lambda p: (_part_number(p) is None, _part_number(p) or 0, p.name))

    def finished_items(self) -> list[Path]:
        return [self.out_dir / f"items.{f}" for f in FORMATS if (self.out_dir / f"items.{f}").is_file()]

    def has_results(self) -> bool:
        return bool(self.parts() or self.finished_items())

    def recover(self) -> None:
        """Finish or roll back a merge that a crash interrupted; drop temporary files of killed writes."""
        merged = self.out_dir / MERGED_PARTS
        for fmt in FORMATS:
            tmp = self.out_dir / f"items.{fmt}.tmp"
            if tmp.exists():
                if merged.is_dir():  # parts were moved aside only after the new file was complete
                    os.replace(tmp, self.out_dir / f"items.{fmt}")
                    log.info("finished an interrupted merge into items.%s", fmt)
                else:
                    tmp.unlink()
        if merged.is_dir():
            shutil.rmtree(merged)
        if self.parts_dir.is_dir():
            for tmp in self.parts_dir.glob("*.tmp"):
                tmp.unlink()

    def check(self, resume: bool) -> None:
        """Refuse a folder this run must not write into (checked before the model is loaded, and again by
        `prepare`): one that holds results without `resume`, or results in the other format."""
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise OutputExists(f"{self.out_dir} is a file: give a folder as --out")
        if not resume and self.has_results():
            raise OutputExists(f"{self.out_dir} already holds results: pass --resume to continue, or another --out")
        other = [p for p in self.finished_items() if p != self.items_path]
        if other:
            raise OutputExists(f"{other[0]} was written with another --format; resume with the same format")

    def prepare(self, resume: bool) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.recover()
        self.check(resume)
        self.previous_parts = self.parts()
        numbers = [n for n in map(_part_number, self.previous_parts) if n is not None]
        self._next = max(numbers, default=-1) + 1
        self.parts_dir.mkdir(exist_ok=True)

    # resume ---------------------------------------------------------------------------------------

    def done_keys(self, model: str) -> set[int]:
        """Hashes of (id, content_hash) of the rows already written by `model`."""
        done: set[int] = set()
        for path in [*self.finished_items(), *self.previous_parts]:
            try:
                for row_id, content_hash, row_model in _key_rows(path):
                    if row_model == model:
                        done.add(item_key(row_id, content_hash))
            except Exception as exc:  # an unreadable part: its items are simply scored again
                log.warning("%s: unreadable (%s); its items will be scored again", path, exc)
                if path.parent == self.parts_dir:
                    path.unlink()
                    self.previous_parts.remove(path)
        return done

    # writing --------------------------------------------------------------------------------------

    def write_part(self, rows: list[dict]) -> Path:
        path = self.parts_dir / f"{PART_PREFIX}{self._next:06d}.{self.fmt}"
        self._next += 1
        if self.fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pylist(rows, schema=self.schema)
            fsync_write(path, lambda fh: pq.write_table(table, fh, compression="zstd"))
        else:
            lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            fsync_write(path, lambda fh: fh.write(lines.encode("utf-8")))
        return path

    # merging --------------------------------------------------------------------------------------

    def merge(self, model: str, rescored_ids: set[int]) -> tuple[int, int]:
        """Stream every part (and an earlier `items.*`) into `items.<fmt>`; returns rows written and dropped.

        Rows from before this run are dropped when written by another model or when their item was
        scored again in this run.
        """
        sources = [(p, True) for p in [*self.finished_items(), *self.previous_parts]]
        sources += [(p, False) for p in self.parts() if p not in self.previous_parts]
        tmp = self.out_dir / f"items.{self.fmt}.tmp"
        written = dropped = 0
        with tmp.open("wb") as fh:
            writer = _MergeWriter(fh, self.fmt, self.schema)
            for path, previous in sources:
                for rows in _row_batches(path, self.schema):
                    if previous:
                        kept = _keep_current(rows, model, rescored_ids)
                        dropped += len(rows) - len(kept)
                        rows = kept
                    written += writer.write(rows)
            writer.close()
            fh.flush()
            os.fsync(fh.fileno())
        merged = self.out_dir / MERGED_PARTS
        os.replace(self.parts_dir, merged)
        os.replace(tmp, self.items_path)
        shutil.rmtree(merged)
        return written, dropped


def item_key(item_id: str, content_hash: str) -> int:
    """A stable 64-bit key of (id, content hash): the same in every process, unlike `hash()` (Ray workers)."""
    digest = hashlib.blake2b(f"{item_id}\x00{content_hash}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _key_rows(path: Path) -> Iterator[tuple[str, str, str]]:
    """(id, content_hash, model) of every row of a result file, reading only those columns."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path, columns=["id", "content_hash", "model"])
        yield from zip(*(table.column(c).to_pylist() for c in ("id", "content_hash", "model")), strict=True)
        return
    from pipeline.io import read_jsonl

    for row in read_jsonl(path):
        yield row.get("id"), row.get("content_hash"), row.get("model")


def _row_batches(path: Path, schema: pa.Schema) -> Iterator[pa.Table]:
    """A result file as tables of at most MERGE_BATCH_ROWS rows in `schema` (missing columns null)."""
    import pyarrow as pa

    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        source = pq.ParquetFile(path)
        for batch in source.iter_batches(batch_size=MERGE_BATCH_ROWS):
            yield _conform(pa.Table.from_batches([batch]), schema)
        return
    from pipeline.io import read_jsonl

    rows: list[dict] = []
    for row in read_jsonl(path):
        rows.append(row)
        if len(rows) == MERGE_BATCH_ROWS:
            yield _from_rows(rows, schema)
            rows = []
    if rows:
        yield _from_rows(rows, schema)


def _from_rows(rows: list[dict], schema: pa.Schema) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_pylist([{name: row.get(name) for name in schema.names} for row in rows], schema=schema)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    import pyarrow as pa

    if table.schema.equals(schema):
        return table
    columns = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _keep_current(table: pa.Table, model: str, rescored_ids: set[int]) -> pa.Table:
    import pyarrow as pa

    keep = [
        row_model == model and hash(row_id) not in rescored_ids
        for row_id, row_model in zip(table.column("id").to_pylist(), table.column("model").to_pylist(), strict=True)
    ]
    return table.filter(pa.array(keep, type=pa.bool_()))


class _MergeWriter:
    def __init__(self, fh: Any, fmt: str, schema: pa.Schema) -> None:
        self.fh = fh
        self.fmt = fmt
        self._parquet = None
        if fmt == "parquet":
            import pyarrow.parquet as pq

            self._parquet = pq.ParquetWriter(fh, schema, compression="zstd")

    def write(self, table: pa.Table) -> int:
        if not len(table):
            return 0
        if self._parquet is not None:
            self._parquet.write_table(table, row_group_size=64 * 1024)
        else:
            for row in table.to_pylist():
                self.fh.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
        return len(table)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
