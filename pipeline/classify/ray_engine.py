"""`seci batch --engine ray`: ingestion and the classify step as one Ray Data pipeline.

The driver only lists the input files. Ray Data then streams them through five stages:

    from_items(files)
      .map_batches(read_files)     CPU tasks: files -> items (JSON), as `ingest` reads them
      .map_batches(Gate)           one actor: drops items done before (`--resume`) and duplicates
      .map_batches(tokenize)       CPU tasks: texts -> token ids and words (`TextTokenizer`)
      .map_batches(ModelStage, compute=ActorPoolStrategy(size=N), num_gpus=1 on GPU clusters)
                                   model replicas: token ids -> mode and token probabilities
      .map_batches(build_rows)     CPU tasks: predictions -> result rows (metaphor rules, if asked)
      .write_parquet(out_dir/parts)

so that reading, the tokenizer's per-token Python and row building run in as many worker processes as
there are free cores, and a GPU actor only packs batches and runs the forward pass (one `seci batch
--engine local` process is GIL-bound at a few thousand items/s; see docs/gpu.md). Between stages a batch
travels as Arrow columns (token ids and words as list columns, then `probabilities`, `token_probs`,
`n_windows`), which Ray moves through its object store without per-item objects. Stages write their error
lines and counts as small files under `out_dir/ray_input/`; the driver folds them into `errors.jsonl` and
`run.json`, then merges the parts into `items.parquet` as in a local run.

On a cluster, the inputs and `out_dir` must be on storage every node sees (NFS, a mounted bucket). Ray is an
optional extra pinned to one release (`pip install 'seci[ray]'`): `map_batches`' arguments changed between
releases.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.classify.rows import RowBuilder
from pipeline.classify.store import item_key
from pipeline.items import InputError, Item

if TYPE_CHECKING:
    import pyarrow as pa

    from pipeline.classify.engine import Scores, TextTokenizer, Tokens
    from pipeline.classify.records import ErrorLog, RunSummary
    from pipeline.classify.store import ResultStore
    from pipeline.ingest import IngestOptions, TeamRules
    from pipeline.ingest.driver import IngestSummary

log = logging.getLogger(__name__)

STAGE = "ray_input"


# -- Arrow transport -------------------------------------------------------------------------------


def _list_column(values: np.ndarray, offsets: np.ndarray, dtype: pa.DataType) -> pa.Array:
    import pyarrow as pa

    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(values, dtype))


def _flat(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A list column's values and (n + 1,) offsets, starting at 0 whatever slice of a buffer it is."""
    array = column.combine_chunks()
    offsets = array.offsets.to_numpy().astype(np.int64)
    values = array.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]]
    return values, offsets - offsets[0]


def tokens_to_arrow(batch: pa.Table, tokens: Tokens) -> pa.Table:
    """`batch` with the token columns appended."""
    import pyarrow as pa

    for name, values, offsets in (
        ("ids", tokens.ids, tokens.offsets),
        ("word_start", tokens.word_starts, tokens.word_offsets),
        ("word_end", tokens.word_ends, tokens.word_offsets),
        ("word_first", tokens.word_first, tokens.word_offsets),
    ):
        batch = batch.append_column(name, _list_column(values, offsets, pa.int32()))
    return batch


def tokens_from_arrow(batch: pa.Table) -> Tokens:
    from pipeline.classify.engine import Tokens

    ids, offsets = _flat(batch.column("ids"))
    starts, word_offsets = _flat(batch.column("word_start"))
    ends, _ = _flat(batch.column("word_end"))
    first, _ = _flat(batch.column("word_first"))
    return Tokens(ids.astype(np.int64), offsets, starts, ends, first, word_offsets)


def scores_to_arrow(batch: pa.Table, scores: Scores, offsets: np.ndarray) -> pa.Table:
    import pyarrow as pa

    n_modes = scores.probabilities.shape[1]
    probabilities = pa.FixedSizeListArray.from_arrays(pa.array(scores.probabilities.reshape(-1)), n_modes)
    batch = batch.append_column("probabilities", probabilities)
    batch = batch.append_column("token_probs", _list_column(scores.token_probs, offsets, pa.float32()))
    return batch.append_column("n_windows", pa.array(scores.n_windows, pa.int32()))


def scores_from_arrow(batch: pa.Table) -> Scores:
    from pipeline.classify.engine import Scores

    column = batch.column("probabilities").combine_chunks()
    n_modes = column.type.list_size
    probabilities = column.flatten().to_numpy().reshape(-1, n_modes)
    token_probs, _ = _flat(batch.column("token_probs"))
    return Scores(probabilities, token_probs, batch.column("n_windows").to_numpy())


# -- the stages --------------------------------------------------------------------------------------
# Tokenizers and row builders are cached per worker process: Ray reuses a worker for many tasks.


@functools.cache
def _tokenizer(model_dir: str) -> TextTokenizer:
    from pipeline.classify.engine import TextTokenizer

    return TextTokenizer.from_dir(Path(model_dir))


@functools.cache
def _row_builder(model_dir: str, metaphor: str, include_text: bool) -> RowBuilder:
    return RowBuilder.load(Path(model_dir), metaphor=metaphor, include_text=include_text)


def _items(batch: pa.Table) -> list[Item]:
    return [Item.from_dict(json.loads(raw)) for raw in batch.column("item").to_pylist()]


def tokenize(batch: pa.Table, model_dir: str) -> pa.Table:
    """Stage 3 (CPU task): staged items -> their token ids and words."""
    texts = [json.loads(raw)["text"] for raw in batch.column("item").to_pylist()]
    return tokens_to_arrow(batch, _tokenizer(model_dir)(texts))


class ModelStage:
    """Stage 4 (one actor per model replica, a GPU each on GPU clusters): token ids -> model outputs.

    Called from two threads at once (see `run_ray`): `Engine.infer` keeps no state between calls.
    """

    def __init__(self, model_dir: str, device: str, dtype: str, compile: bool = False, metaphor: bool = True) -> None:
        from pipeline.classify.engine import Engine

        self.engine = Engine.from_dir(Path(model_dir), device=device, dtype=dtype, compile=compile, metaphor=metaphor)

    def __call__(self, batch: pa.Table) -> pa.Table:
        tokens = tokens_from_arrow(batch)
        return scores_to_arrow(batch, self.engine.infer(tokens), tokens.offsets)


def build_rows(batch: pa.Table, model_dir: str, metaphor: str, include_text: bool, error_dir: str) -> pa.Table:
    """Stage 5 (CPU task): items and model outputs -> result rows; failed items' errors go to `error_dir`."""
    import pyarrow as pa

    from pipeline.classify.engine import predictions

    builder = _row_builder(model_dir, metaphor, include_text)
    items = _items(batch)
    rows, errors = builder.rows(items, predictions(tokens_from_arrow(batch), scores_from_arrow(batch)))
    _write_json_lines(Path(error_dir) / f"errors-{uuid.uuid4().hex}.jsonl", [e.to_dict() for e in errors])
    return pa.Table.from_pylist(rows, schema=builder.schema())


def read_files(batch: pa.Table, options: IngestOptions, teams: TeamRules | None, stage_dir: str) -> pa.Table:
    """Stage 1 (CPU task): input files -> their items as JSON, with the keys the gate needs.

    Errors and the files' counts go to `stage_dir` as `errors-*.jsonl` and `ingest-*.json`.
    """
    import pyarrow as pa

    from pipeline.ingest.driver import Found, IngestSummary, ingest_file
    from pipeline.ingest.language import is_non_english

    summary = IngestSummary()
    started = time.perf_counter()
    columns: dict[str, list[Any]] = {"item": [], "key": [], "dedup": [], "source": [], "non_english": []}
    errors: list[InputError] = []
    for path, key, top in zip(*(batch.column(c).to_pylist() for c in ("path", "key", "top")), strict=True):
        for record in ingest_file(Found(Path(path), key, top), options, teams, summary):
            if isinstance(record, InputError):
                errors.append(record)
                continue
            columns["item"].append(json.dumps(record.to_dict(), ensure_ascii=False))
            columns["key"].append(item_key(record.id, record.content_hash))
            columns["dedup"].append(record.meta.get("dedup_key"))
            columns["source"].append(record.source)
            columns["non_english"].append(is_non_english(record))
    tag = uuid.uuid4().hex
    counts = {
        "files": summary.files,
        "files_read": summary.files_read,
        "companions": summary.companions,
        "errors_by_reason": dict(summary.errors_by_reason),
        "seconds": time.perf_counter() - started,
    }
    _write_json_lines(Path(stage_dir) / f"ingest-{tag}.jsonl", [counts])
    _write_json_lines(Path(stage_dir) / f"errors-{tag}.jsonl", [e.to_dict() for e in errors])
    schema = pa.schema(
        [
            ("item", pa.string()),
            ("key", pa.uint64()),
            ("dedup", pa.string()),
            ("source", pa.string()),
            ("non_english", pa.bool_()),
        ]
    )
    return pa.table(columns, schema=schema)


class Gate:
    """Stage 2 (one actor for the whole run, so that it sees every item): what `run_batch` does in one process.

    Drops exact duplicates across files (same `dedup_key`), items a previous run already scored with this
    model (`previous`: their `item_key`s) and repeats of an (id, content) already let through. Its counts, and
    the ids it lets through on a resumed run (whose older rows the merge drops), go to `stage_dir`.
    """

    def __init__(self, previous: np.ndarray, stage_dir: str) -> None:
        self.previous = previous
        self.seen: set[int] = set()
        self.seen_dedup: set[str] = set()
        self.path = Path(stage_dir) / f"gate-{uuid.uuid4().hex}.jsonl"

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        keys = batch.column("key").to_numpy()
        done = np.isin(keys, self.previous) if len(self.previous) else np.zeros(len(keys), dtype=bool)
        keep = np.zeros(len(keys), dtype=bool)
        counts = {"dedup_duplicates": 0, "skipped_by_resume": 0, "duplicates": 0}
        for k, (key, dedup, was_done) in enumerate(
            zip(keys.tolist(), batch.column("dedup").to_pylist(), done.tolist(), strict=True)
        ):
            if dedup is not None:
                if dedup in self.seen_dedup:
                    counts["dedup_duplicates"] += 1
                    continue
                self.seen_dedup.add(dedup)
            if was_done:
                counts["skipped_by_resume"] += 1
            elif key in self.seen:
                counts["duplicates"] += 1
            else:
                self.seen.add(key)
                keep[k] = True
        kept = batch.filter(pa.array(keep))
        record: dict[str, Any] = {
            **counts,
            "items_by_source": {},
            "non_english": sum(kept.column("non_english").to_pylist()),
        }
        for source in kept.column("source").to_pylist():
            record["items_by_source"][source] = record["items_by_source"].get(source, 0) + 1
        if len(self.previous):
            record["rescored"] = [json.loads(raw)["id"] for raw in kept.column("item").to_pylist()]
        _write_json_lines(self.path, [record])
        return kept.select(["item"])


def _write_json_lines(path: Path, records: list[dict[str, Any]]) -> None:
    if records:
        with path.open("a", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def _read_json_lines(stage_dir: Path, pattern: str) -> Iterator[dict[str, Any]]:
    for path in sorted(stage_dir.glob(pattern)):
        with path.open(encoding="utf-8") as fh:
            yield from (json.loads(line) for line in fh)


# -- the driver --------------------------------------------------------------------------------------


def replicas(resources: dict[str, float], device: str, actors: int | None) -> tuple[int, bool]:
    """How many model replicas to start, and whether each gets a GPU.

    One per GPU; on CPU clusters one per CPU but one, which is left to the CPU tasks (on CPU the model is
    ~99% of the work). Replicas hold their CPU for the whole run, so at least one must stay free.
    """
    gpus = int(resources.get("GPU", 0)) if device != "cpu" else 0
    cpus = int(resources.get("CPU", 0))
    if gpus:
        if actors is not None and actors > gpus:
            raise ValueError(f"{actors} GPU model replicas asked for, but the cluster has {gpus} GPUs")
        return actors or gpus, True
    if cpus < 2:
        raise ValueError(f"--engine ray on CPUs needs at least 2 (Ray sees {cpus}); use --engine local")
    size = actors or cpus - 1
    if size > cpus - 1:
        raise ValueError(f"{size} CPU model replicas leave no CPU of {cpus} for the tokenize and row tasks")
    return size, False


def run_ray(
    inputs: Sequence[Path],
    store: ResultStore,
    errors: ErrorLog,
    summary: RunSummary,
    ingest_summary: IngestSummary,
    previous: set[int],
    *,
    options: IngestOptions,
    teams: TeamRules | None,
    model_dir: Path,
    device: str,
    dtype: str,
    metaphor: str,
    include_text: bool,
    chunk_size: int,
    actors: int | None,
    compile: bool = False,
    address: str | None,
) -> tuple[float, set[int]]:
    """Read and score `inputs` with Ray Data into `store`'s parts, counting into the summaries.

    `previous` holds the `item_key`s already scored by this model (`--resume`). Returns the seconds Ray
    took and the `hash()` of each id scored again on a resumed run (as `ResultStore.merge` wants them).
    """
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError("--engine ray needs Ray: pip install 'seci[ray]'") from exc
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from pipeline.ingest.driver import find_files

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    started = time.perf_counter()
    stage_dir = (store.out_dir / STAGE).resolve()
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    stage_dir.mkdir(parents=True)
    files = []
    for found in find_files(inputs):
        if isinstance(found, InputError):
            ingest_summary.files += 1
            ingest_summary.errors_by_reason[found.reason] += 1
            errors.write(found)
        else:
            files.append({"path": str(found.path.resolve()), "key": found.key, "top": found.top_folder})
    rescored: set[int] = set()
    if files:
        before = set(store.parts())
        resources = ray.cluster_resources()
        size, on_gpu = replicas(resources, device, actors)
        log.info("ray: %d files, %d model replicas, %s", len(files), size, "1 GPU each" if on_gpu else "CPU")
        model = str(Path(model_dir).resolve())
        cpu_task: dict[str, Any] = {"batch_format": "pyarrow", "num_cpus": 1}
        blocks = min(len(files), 4 * max(1, int(resources.get("CPU", 1))))
        previous_keys = np.fromiter(previous, dtype=np.uint64, count=len(previous))
        scored = (
            ray.data.from_items(files, override_num_blocks=blocks)
            .map_batches(
                read_files,
                fn_kwargs={"options": options, "teams": teams, "stage_dir": str(stage_dir)},
                batch_size=1,
                **cpu_task,
            )
            .map_batches(
                Gate,
                fn_constructor_kwargs={"previous": previous_keys, "stage_dir": str(stage_dir)},
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=1),
                num_cpus=0,  # it holds no CPU for the run: a set lookup per item
            )
            .map_batches(tokenize, fn_kwargs={"model_dir": model}, batch_size=chunk_size, **cpu_task)
            .map_batches(
                ModelStage,
                fn_constructor_kwargs={
                    "model_dir": model,
                    "device": "cuda" if on_gpu else "cpu",
                    "dtype": dtype,
                    "compile": compile,
                    "metaphor": metaphor != "off",
                },
                batch_size=chunk_size,
                batch_format="pyarrow",
                # Two calls at once per replica: one packs its batch and copies it in while the other's forward pass
                # runs (torch releases the GIL), so the device does not wait on the host between batches. Not with
                # torch.compile, whose compiled graphs are not meant to be entered from two threads.
                compute=ray.data.ActorPoolStrategy(
                    size=size,
                    max_concurrent_calls_per_actor=1 if compile else 2,
                    enable_true_multi_threading=not compile,
                ),
                num_cpus=1,
                num_gpus=1 if on_gpu else 0,
            )
            .map_batches(
                build_rows,
                fn_kwargs={
                    "model_dir": model,
                    "metaphor": metaphor,
                    "include_text": include_text,
                    "error_dir": str(stage_dir),
                },
                batch_size=chunk_size,
                **cpu_task,
            )
        )
        scored.write_parquet(str(store.parts_dir.resolve()))
        new_parts = [p for p in store.parts() if p not in before]
        for part in new_parts:
            table = pq.read_table(part, columns=["n_tokens"])
            summary.items += len(table)
            summary.tokens += int(pc.sum(table.column("n_tokens")).as_py() or 0)
        summary.parts += len(new_parts)
        for counts in _read_json_lines(stage_dir, "ingest-*.jsonl"):
            ingest_summary.files += counts["files"]
            ingest_summary.files_read += counts["files_read"]
            ingest_summary.companions += counts["companions"]
            ingest_summary.errors_by_reason.update(counts["errors_by_reason"])
            ingest_summary.seconds += counts["seconds"]
        for counts in _read_json_lines(stage_dir, "gate-*.jsonl"):
            ingest_summary.duplicates += counts["dedup_duplicates"]
            ingest_summary.items_by_source.update(counts["items_by_source"])
            ingest_summary.items += sum(counts["items_by_source"].values()) + counts["skipped_by_resume"]
            ingest_summary.items += counts["duplicates"]
            summary.skipped_by_resume += counts["skipped_by_resume"]
            summary.duplicates += counts["duplicates"]
            ingest_summary.non_english += counts["non_english"]
            rescored.update(hash(item_id) for item_id in counts.get("rescored", ()))
        for error in _read_json_lines(stage_dir, "errors-*.jsonl"):
            errors.write(InputError(**error))
    shutil.rmtree(stage_dir)
    return time.perf_counter() - started, rescored
