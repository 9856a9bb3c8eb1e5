"""`seci batch`: score an archive, streaming from ingestion to result files, resumable after any crash.

Three stages overlap, joined by bounded queues (so memory is bounded whatever the archive size):

1. a producer thread walks and reads the inputs, drops items already done (`--resume`), cuts the stream
   into chunks and tokenizes each one (`Engine.predict_stream`);
2. the calling thread runs the model on one chunk while the next is being prepared;
3. a writer thread runs the deliberate-metaphor rules (spaCy) over the scored chunk, builds the result
   rows and writes them as one part file.

Output layout in `out_dir` (read by `pipeline.aggregate.results`):

- `parts/part-000000.parquet` ...: one per chunk, written under a temporary name, flushed and renamed, so
  a kill -9 loses at most the chunks in flight and never leaves a half-written part;
- `items.parquet` (or `items.jsonl`): at the end the parts are merged into it, row group by row group.
  The merge is crash-safe too: the new file is written under a temporary name, `parts/` is renamed to
  `parts.merged/`, the file is renamed into place, then `parts.merged/` is deleted; a later run finishes or
  rolls back an interrupted merge before it starts;
- `errors.jsonl`: one `{path, reason, error}` line per input that could not be read and per item that
  could not be fully processed;
- `run.json`: counts, timings, model, versions and options.

`resume=True` skips every item whose (id, content hash) already has a row written by the same model;
rows of items re-scored in this run (changed text, other model) are dropped from the merged output.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.items import InputError, Item

if TYPE_CHECKING:
    import pyarrow as pa

    from pipeline.classify.engine import Engine, Prediction
    from pipeline.classify.metaphor import DeliberateMetaphorDetector
    from pipeline.classify.model import ModelConfig
    from pipeline.ingest import IngestOptions, TeamRules

log = logging.getLogger(__name__)

DEFAULT_MODEL = Path("models/seci-fast")
FORMATS = ("parquet", "jsonl")
METAPHOR_MODES = ("rules", "tokens")
PARTS = "parts"
MERGED_PARTS = "parts.merged"
PART_PREFIX = "part-"
MERGE_BATCH_ROWS = 4096


class OutputExists(FileExistsError):
    """`out_dir` already holds results and `resume` was not asked for."""


class ModelNotFound(FileNotFoundError):
    """No saved model where one was expected."""


# -- scoring: items and predictions in, result rows out ------------------------------------------------


def metaphor_detector(config: ModelConfig, **overrides: Any) -> DeliberateMetaphorDetector:
    """The deliberate-metaphor rules with the thresholds a model was calibrated with."""
    from pipeline.classify.metaphor import DeliberateMetaphorDetector

    settings = {
        "token_threshold": float(config.metaphor_threshold),
        "threshold": float(config.deliberate_threshold),
        "strong_token_threshold": float(config.deliberate_strong_token),
        "copular": bool(config.deliberate_copular),
        **overrides,
    }
    return DeliberateMetaphorDetector(settings)


class RowBuilder:
    """Items and their predictions in, `INTERFACE.md` result rows out; needs the model's config, not its weights.

    `metaphor="rules"` runs the spaCy rules of `DeliberateMetaphorDetector` (the full `metaphor` and
    `metaphor_spans` fields); `"tokens"` reports only the token model's word-level detections and leaves
    `metaphor` null, for archives where the parse would cost more than the model (see docs/gpu.md).
    """

    def __init__(
        self, config: ModelConfig, detector: DeliberateMetaphorDetector | None, include_text: bool = True
    ) -> None:
        self.detector = detector
        self.include_text = include_text
        self.modes: tuple[str, ...] = tuple(config.modes)
        self.model_name = f"{config.name} {config.version}"
        self.token_threshold = float(config.metaphor_threshold)

    @classmethod
    def load(cls, model_dir: Path = DEFAULT_MODEL, *, metaphor: str = "rules", include_text: bool = True) -> RowBuilder:
        """The row builder of a saved model (its config, and spaCy for the rules), without loading its weights."""
        return cls(*_config_and_detector(Path(model_dir), metaphor), include_text)

    def schema(self) -> pa.Schema:
        return row_schema(self.modes, self.include_text)

    def rows(self, items: Sequence[Item], predictions: Sequence[Prediction]) -> tuple[list[dict], list[InputError]]:
        """One result row per item; items whose metaphor rules failed keep their row and get an error line."""
        from pipeline.aggregate.ba import ba_of

        metaphors, errors = self._metaphors(items, predictions)
        rows = []
        for item, prediction, metaphor in zip(items, predictions, metaphors, strict=True):
            probs = prediction.probabilities
            best = int(probs.argmax())
            row: dict[str, Any] = {
                "id": item.id,
                "source": item.source,
                "path": item.path,
                "team": item.team,
                "timestamp": item.timestamp.isoformat() if item.timestamp else None,
                "authors": list(item.authors),
                "participants": list(item.participants),
                "ba": ba_of(item.n_participants, item.medium),
                "mode": self.modes[best],
                "probabilities": {mode: float(p) for mode, p in zip(self.modes, probs, strict=True)},
                **metaphor,
                "model": self.model_name,
                "thread": item.thread,
                "position": item.position,
                "title": item.title,
                "medium": item.medium,
                "meta": json.dumps(item.meta, ensure_ascii=False, sort_keys=True),
                "start_seconds": item.start_seconds,
                "end_seconds": item.end_seconds,
                "content_hash": item.content_hash,
                "warnings": list(item.warnings),
                "n_tokens": prediction.n_tokens,
            }
            if self.include_text:
                row["text"] = item.text
            rows.append(row)
        return rows, errors

    def _metaphors(
        self, items: Sequence[Item], predictions: Sequence[Prediction]
    ) -> tuple[list[dict], list[InputError]]:
        if self.detector is None:
            # Only the flagged words become Python objects: at GPU speed, one object per word of every item
            # would be most of the run's time.
            return [
                {
                    "metaphor": None,
                    "metaphor_spans": [],
                    "metaphor_tokens": flagged_tokens(item.text, p, self.token_threshold),
                }
                for item, p in zip(items, predictions, strict=True)
            ], []
        scores = [token_scores(item.text, p) for item, p in zip(items, predictions, strict=True)]
        texts = [item.text for item in items]
        try:
            return [r.to_dict() for r in self.detector.detect_many(texts, scores)], []
        except Exception:  # one bad text must not sink the chunk: find it by going item by item
            log.warning("metaphor rules failed on a chunk; retrying its %d items one by one", len(items))
        out: list[dict] = []
        errors: list[InputError] = []
        for item, ts in zip(items, scores, strict=True):
            try:
                out.append(self.detector.detect(item.text, ts).to_dict())
            except Exception as exc:
                message = f"{item.id}: metaphor rules failed: {type(exc).__name__}: {exc}"
                log.warning("%s", message)
                item.warnings.append("metaphor rules failed; metaphor fields are empty")
                errors.append(InputError(item.path, "process", message))
                out.append({"metaphor": None, "metaphor_spans": [], "metaphor_tokens": []})
        return out, errors


class Scorer(RowBuilder):
    """The engine and the row builder together: what `seci batch` and `seci score` run."""

    def __init__(self, engine: Engine, detector: DeliberateMetaphorDetector | None, include_text: bool = True) -> None:
        super().__init__(engine.config, detector, include_text)
        self.engine = engine

    @classmethod
    def load(  # type: ignore[override]
        cls,
        model_dir: Path = DEFAULT_MODEL,
        *,
        device: str = "auto",
        dtype: str = "auto",
        metaphor: str = "rules",
        include_text: bool = True,
        max_tokens: int | None = None,
        compile: bool = False,
    ) -> Scorer:
        from pipeline.classify.engine import Engine

        _, detector = _config_and_detector(Path(model_dir), metaphor)
        engine = Engine.from_dir(model_dir, device=device, dtype=dtype, max_tokens=max_tokens, compile=compile)
        return cls(engine, detector, include_text)


def _config_and_detector(model_dir: Path, metaphor: str) -> tuple[ModelConfig, DeliberateMetaphorDetector | None]:
    from pipeline.classify.model import load_config

    if not (model_dir / "config.json").is_file():
        raise ModelNotFound(
            f"no model at {model_dir} (config.json missing): pass --model DIR, or train one with `seci train`"
        )
    if metaphor not in METAPHOR_MODES:
        raise ValueError(f"unknown metaphor mode {metaphor!r}; expected one of {METAPHOR_MODES}")
    config = load_config(model_dir)
    detector = None
    if metaphor == "rules":
        detector = metaphor_detector(config)
        detector.nlp  # noqa: B018  (load spaCy now, not inside the first chunk's timing)
    return config, detector


def token_scores(text: str, prediction: Prediction) -> list[Any]:
    """The engine's word scores as the metaphor detector's `TokenScore`s (character spans into `text`)."""
    from pipeline.classify.metaphor import TokenScore

    words = prediction.words
    return [
        TokenScore(text[s:e], s, e, float(score))
        for s, e, score in zip(words.starts.tolist(), words.ends.tolist(), prediction.word_scores.tolist(), strict=True)
    ]


def flagged_tokens(text: str, prediction: Prediction, threshold: float) -> list[dict[str, Any]]:
    """The words scoring at least `threshold`, as the rows' `metaphor_tokens` (score rounded to 4 places)."""
    import numpy as np

    words = prediction.words
    # Compared in float64, as the Python floats of `token_scores` are: float32 would round the threshold.
    keep = np.flatnonzero(prediction.word_scores.astype(np.float64) >= threshold)
    return [
        {"text": text[s:e], "start": s, "end": e, "score": round(score, 4)}
        for s, e, score in zip(
            words.starts[keep].tolist(), words.ends[keep].tolist(), prediction.word_scores[keep].tolist(), strict=True
        )
    ]


def row_schema(modes: Sequence[str], include_text: bool = True) -> pa.Schema:
    """The Parquet schema of result rows (`INTERFACE.md` fields plus the item's context)."""
    import pyarrow as pa

    span = pa.struct([("text", pa.string()), ("start", pa.int64()), ("end", pa.int64()), ("score", pa.float64())])
    fields = [
        ("id", pa.string()),
        ("source", pa.string()),
        ("path", pa.string()),
        ("team", pa.string()),
        ("timestamp", pa.string()),
        ("authors", pa.list_(pa.string())),
        ("participants", pa.list_(pa.string())),
        ("ba", pa.string()),
        ("mode", pa.string()),
        ("probabilities", pa.struct([(m, pa.float64()) for m in modes])),
        ("metaphor", pa.bool_()),
        ("metaphor_spans", pa.list_(span)),
        ("metaphor_tokens", pa.list_(span)),
        ("model", pa.string()),
        ("thread", pa.string()),
        ("position", pa.int64()),
        ("title", pa.string()),
        ("medium", pa.string()),
        ("meta", pa.string()),
        ("start_seconds", pa.float64()),
        ("end_seconds", pa.float64()),
        ("content_hash", pa.string()),
        ("warnings", pa.list_(pa.string())),
        ("n_tokens", pa.int64()),
    ]
    if include_text:
        fields.append(("text", pa.string()))
    return pa.schema(fields)


# -- the results folder: parts, resume index, merge --------------------------------------------------


def _fsync_write(path: Path, write: Callable[[Any], None], binary: bool = True) -> None:
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

    def prepare(self, resume: bool) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.recover()
        if not resume and self.has_results():
            raise OutputExists(f"{self.out_dir} already holds results: pass --resume to continue, or another --out")
        other = [p for p in self.finished_items() if p != self.items_path]
        if other:
            raise OutputExists(f"{other[0]} was written with another --format; resume with the same format")
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
            _fsync_write(path, lambda fh: pq.write_table(table, fh, compression="zstd"))
        else:
            lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
            _fsync_write(path, lambda fh: fh.write(lines.encode("utf-8")))
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


# -- the run ---------------------------------------------------------------------------------------


@dataclass
class BatchProgress:
    """What a progress display needs; `files_total` is None until the inputs have been counted."""

    files_done: int
    files_total: int | None
    items_done: int
    items_skipped: int
    errors: int
    seconds: float

    @property
    def items_per_second(self) -> float:
        return self.items_done / self.seconds if self.seconds > 0 else 0.0


@dataclass
class RunSummary:
    """What `run.json` holds: counts that account for every input and item, timings, model, versions."""

    out_dir: str
    output: str | None = None
    status: str = "running"
    model: str = ""
    inputs: int = 0  # files found under the inputs
    files_read: int = 0
    items: int = 0  # items scored in this run
    rows: int = 0  # rows in the merged output (this run's and earlier runs')
    errors: int = 0  # lines in errors.jsonl
    duplicates: int = 0  # items dropped as exact duplicates (ingestion) or repeated (id, content hash)
    skipped_by_resume: int = 0
    non_english: int = 0  # items read that are not English: labelled, with a warning (local engine)
    superseded: int = 0  # earlier rows dropped because their item was scored again
    parts: int = 0
    errors_by_reason: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    items_per_second: float = 0.0
    tokens: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def versions(extra: Sequence[str] = ()) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for package in ("seci", "torch", "transformers", "tokenizers", "pyarrow", "spacy", *extra):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return out


class _Errors:
    """errors.jsonl, written from more than one thread."""

    def __init__(self, path: Path, summary: RunSummary) -> None:
        from pipeline.io import JsonlWriter

        self._writer = JsonlWriter(path)
        self._lock = threading.Lock()
        self._summary = summary

    def write(self, error: InputError) -> None:
        with self._lock:
            self._writer.write(error.to_dict())
            self._summary.errors += 1
            reasons = self._summary.errors_by_reason
            reasons[error.reason] = reasons.get(error.reason, 0) + 1

    def close(self) -> None:
        self._writer.close()


def release_free_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's `malloc_trim`), once per written part.

    Chunks allocate and free large, differently sized buffers (token arrays, activations, Arrow tables); glibc keeps
    the freed ones, so without this a long run's RSS creeps up. It takes milliseconds. A no-op off glibc.
    """
    import contextlib
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(name).malloc_trim(0)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread malloc arenas, as MALLOC_ARENA_MAX does, before the worker threads start.

    The batch pipeline's threads each grow an arena that glibc rarely returns, which inflates a long
    run's RSS; two arenas keep it flat at no measurable cost in speed. A no-op off glibc.
    """
    import contextlib
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name and "MALLOC_ARENA_MAX" not in os.environ:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(name).mallopt(-8, arenas)  # -8 is M_ARENA_MAX in malloc.h


def run_batch(
    inputs: Sequence[Path],
    out_dir: Path,
    *,
    model_dir: Path = DEFAULT_MODEL,
    fmt: str = "parquet",
    teams: Path | TeamRules | None = None,
    resume: bool = False,
    engine: str = "local",
    device: str = "auto",
    dtype: str = "auto",
    include_text: bool = True,
    metaphor: str = "rules",
    chunk_size: int = 1024,
    max_tokens: int | None = None,
    compile: bool = False,
    ingest_options: IngestOptions | None = None,
    scorer: Scorer | None = None,
    ray_actors: int | None = None,
    ray_address: str | None = None,
    progress: Callable[[BatchProgress], None] | None = None,
) -> RunSummary:
    """Score every item under `inputs` into `out_dir` (layout in the module docstring); returns the summary.

    `scorer` reuses a loaded model (then `model_dir`, `device`, `dtype`, `metaphor`, `include_text`,
    `max_tokens` and `compile` are its own). `compile` runs the model through `torch.compile`.
    `engine="ray"` runs the classify step as a Ray Data pipeline
    (`pipeline.classify.ray_engine`); `ray_actors` model replicas, on the cluster at `ray_address` or a
    local Ray. `progress` is called after each chunk.
    """
    from pipeline.ingest import IngestOptions, IngestSummary, TeamRules, ingest
    from pipeline.ingest.driver import find_files

    if engine not in ("local", "ray"):
        raise ValueError(f"unknown engine {engine!r}; expected local or ray")
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    limit_malloc_arenas()
    started = time.perf_counter()
    out_dir = Path(out_dir)
    options = ingest_options or IngestOptions()
    rules = TeamRules.load(teams) if isinstance(teams, str | Path) else teams
    if scorer is None and engine == "local":
        scorer = Scorer.load(
            model_dir,
            device=device,
            dtype=dtype,
            metaphor=metaphor,
            include_text=include_text,
            max_tokens=max_tokens,
            compile=compile,
        )
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    if scorer is not None:
        model_name, modes, include_text = scorer.model_name, scorer.modes, scorer.include_text
    else:
        from pipeline.classify.model import load_config

        if not (Path(model_dir) / "config.json").is_file():
            raise ModelNotFound(f"no model at {model_dir} (config.json missing): pass --model DIR")
        config = load_config(Path(model_dir))
        model_name, modes = f"{config.name} {config.version}", tuple(config.modes)

    store = ResultStore(out_dir, fmt, row_schema(modes, include_text))
    store.prepare(resume)
    summary = RunSummary(out_dir=str(out_dir), model=model_name)
    summary.versions = versions(("ray",) if engine == "ray" else ())
    summary.options = {
        "inputs": [str(p) for p in inputs],
        "format": fmt,
        "teams": str(teams) if isinstance(teams, str | Path) else None,
        "resume": resume,
        "engine": engine,
        "device": str(scorer.engine.device) if scorer else device,
        "dtype": scorer.engine.precision if scorer else dtype,
        "metaphor": ("rules" if scorer.detector is not None else "tokens") if scorer else metaphor,
        "include_text": include_text,
        "chunk_size": chunk_size,
        "max_tokens": scorer.engine.max_tokens if scorer else max_tokens,
        "compile": scorer.engine.compiled if scorer else compile,
    }
    _write_run_json(out_dir, summary)
    previous = store.done_keys(model_name) if resume else set()
    errors = _Errors(out_dir / "errors.jsonl", summary)
    ingest_summary = IngestSummary()
    files_total = sum(1 for _ in find_files(inputs)) if progress is not None else None
    files_done = 0
    seen: set[int] = set()
    rescored: set[int] = set()

    def on_file(_: Path) -> None:
        nonlocal files_done
        files_done += 1

    def chunks() -> Iterator[list[Item]]:
        chunk: list[Item] = []
        for record in ingest(inputs, options, rules, ingest_summary, on_file=on_file):
            if isinstance(record, InputError):
                errors.write(record)
                continue
            key = item_key(record.id, record.content_hash)
            if key in previous:
                summary.skipped_by_resume += 1
                continue
            if key in seen:
                summary.duplicates += 1
                continue
            seen.add(key)
            if previous:
                rescored.add(hash(record.id))
            chunk.append(record)
            if len(chunk) == chunk_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def report() -> None:
        if progress is not None:
            progress(
                BatchProgress(
                    files_done,
                    files_total,
                    summary.items,
                    summary.skipped_by_resume,
                    summary.errors,
                    time.perf_counter() - started,
                )
            )

    # Busy seconds per stage; the stages overlap, so they do not add up to the total.
    timings: dict[str, float] = {}
    try:
        if engine == "local":
            assert scorer is not None
            timings.update(model_thread=0.0, metaphor_and_rows=0.0, write=0.0)
            _run_local(scorer, chunks(), store, errors, summary, timings, report)
        else:
            from pipeline.classify.ray_engine import run_ray

            report()
            timings["ray"], rescored = run_ray(
                inputs,
                store,
                errors,
                summary,
                ingest_summary,
                previous,
                options=options,
                teams=rules,
                model_dir=Path(model_dir),
                device=device,
                dtype=dtype,
                metaphor=metaphor,
                include_text=include_text,
                chunk_size=chunk_size,
                actors=ray_actors,
                address=ray_address,
                compile=compile,
            )
    finally:
        errors.close()
    merge_started = time.perf_counter()
    summary.rows, summary.superseded = store.merge(model_name, rescored)
    summary.output = str(store.items_path)
    timings["merge"] = time.perf_counter() - merge_started
    summary.inputs = ingest_summary.files
    summary.files_read = ingest_summary.files_read
    summary.duplicates += ingest_summary.duplicates
    summary.non_english = ingest_summary.non_english
    timings["ingest_wall"] = ingest_summary.seconds
    timings["total"] = time.perf_counter() - started  # from the model being loaded to the merged output
    timings["load"] = load_seconds
    summary.timings = {k: round(v, 3) for k, v in timings.items()}
    summary.items_per_second = round(summary.items / timings["total"], 2) if timings["total"] > 0 else 0.0
    summary.status = "complete"
    _write_run_json(out_dir, summary)
    report()
    return summary


def _run_local(
    scorer: Scorer,
    chunks: Iterator[list[Item]],
    store: ResultStore,
    errors: _Errors,
    summary: RunSummary,
    timings: dict[str, float],
    report: Callable[[], None],
) -> None:
    """Model in this thread, metaphor rules and part writing in a writer thread, input in the engine's producer."""
    scored: queue.Queue[tuple[list[Item], list[Prediction]] | None] = queue.Queue(maxsize=2)
    failure: list[BaseException] = []

    def write() -> None:
        try:
            while (entry := scored.get()) is not None:
                items, predictions = entry
                t0 = time.perf_counter()
                rows, item_errors = scorer.rows(items, predictions)
                t1 = time.perf_counter()
                store.write_part(rows)
                timings["metaphor_and_rows"] += t1 - t0
                timings["write"] += time.perf_counter() - t1
                for error in item_errors:
                    errors.write(error)
                summary.items += len(rows)
                summary.tokens += sum(p.n_tokens for p in predictions)
                summary.parts += 1
                release_free_memory()
                report()
        except BaseException as exc:
            failure.append(exc)
            while scored.get() is not None:  # drain so the model thread never blocks on a dead writer
                pass

    writer = threading.Thread(target=write, name="seci-write", daemon=True)
    writer.start()
    try:
        stream = scorer.engine.predict_stream(chunks, texts_of=lambda items: [item.text for item in items])
        try:
            while True:
                t0 = time.perf_counter()
                entry = next(stream, None)
                # Includes waiting for the producer: a model thread that waits means input is the bottleneck.
                timings["model_thread"] += time.perf_counter() - t0
                if entry is None or failure:
                    break
                scored.put(entry)
        finally:
            stream.close()
    finally:
        scored.put(None)
        writer.join()
    if failure:
        raise failure[0]


def _write_run_json(out_dir: Path, summary: RunSummary) -> None:
    text = json.dumps(summary.to_dict(), indent=2, ensure_ascii=False) + "\n"
    _fsync_write(out_dir / "run.json", lambda fh: fh.write(text.encode("utf-8")))
