"""`seci batch --engine ray`: the classify step as a Ray Data pipeline.

The driver ingests the inputs (skipping what `--resume` finds done) and stages the items as Parquet
files under `out_dir/ray_input/`; then Ray Data reads them, runs `map_batches` over an actor pool of
model replicas (`ActorPoolStrategy`, one GPU per actor on GPU clusters) and writes the result rows as
Parquet into `out_dir/parts/`, which the driver merges into `items.parquet` as in a local run.

On a cluster, `out_dir` must be on storage every node sees (NFS, a mounted bucket), since workers read the
staged items and write parts there. Ray is an optional extra pinned to one release (`pip install
'seci[ray]'`): `map_batches`' arguments changed between releases. See docs/gpu.md.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.classify.batch import ResultStore, RunSummary, Scorer, _Errors
from pipeline.items import InputError, Item

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

STAGE = "ray_input"
# Items per staged file: Ray reads files in parallel, and one file is one read task.
ITEMS_PER_STAGED_FILE = 8192


class RayScorer:
    """A model replica held by one Ray actor: a batch of staged items in, a batch of result rows out."""

    def __init__(
        self,
        model_dir: str,
        device: str,
        dtype: str,
        metaphor: str,
        include_text: bool,
        error_dir: str,
        compile: bool = False,
    ) -> None:
        self.scorer = Scorer.load(
            Path(model_dir), device=device, dtype=dtype, metaphor=metaphor, include_text=include_text, compile=compile
        )
        self.schema = self.scorer.schema()
        self.errors_path = Path(error_dir) / f"errors-{uuid.uuid4().hex}.jsonl"

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        items = [Item.from_dict(json.loads(raw)) for raw in batch.column("item").to_pylist()]
        predictions = self.scorer.engine.predict([item.text for item in items])
        rows, errors = self.scorer.rows(items, predictions)
        if errors:
            with self.errors_path.open("a", encoding="utf-8") as fh:
                fh.writelines(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in errors)
        return pa.Table.from_pylist(rows, schema=self.schema)


def stage_items(chunks: Iterator[list[Item]], stage_dir: Path) -> int:
    """Write the items to be scored as Parquet files of one JSON column; returns how many."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    stage_dir.mkdir(parents=True)
    schema = pa.schema([("item", pa.string())])
    pending: list[str] = []
    files = total = 0

    def flush() -> None:
        nonlocal files
        pq.write_table(pa.table({"item": pending}, schema=schema), stage_dir / f"input-{files:06d}.parquet")
        files += 1
        pending.clear()

    for chunk in chunks:
        for item in chunk:
            pending.append(json.dumps(item.to_dict(), ensure_ascii=False))
            total += 1
            if len(pending) == ITEMS_PER_STAGED_FILE:
                flush()
    if pending:
        flush()
    return total


def run_ray(
    chunks: Iterator[list[Item]],
    store: ResultStore,
    errors: _Errors,
    summary: RunSummary,
    *,
    model_dir: Path,
    device: str,
    dtype: str,
    metaphor: str,
    include_text: bool,
    chunk_size: int,
    actors: int | None,
    compile: bool = False,
    address: str | None,
    report: Callable[[], None],
) -> float:
    """Score the chunks' items with Ray Data into `store`'s parts; returns the seconds Ray took."""
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError("--engine ray needs Ray: pip install 'seci[ray]'") from exc
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)

    stage_dir = store.out_dir / STAGE
    n_items = stage_items(chunks, stage_dir)
    report()
    started = time.perf_counter()
    if n_items:
        before = set(store.parts())
        gpus = int(ray.cluster_resources().get("GPU", 0)) if device != "cpu" else 0
        cpus = int(ray.cluster_resources().get("CPU", 1))
        size = actors or (gpus if gpus else max(1, cpus - 1))
        log.info("ray: %d items, %d model replicas, %s", n_items, size, "1 GPU each" if gpus else "CPU")
        dataset = ray.data.read_parquet(str(stage_dir))
        scored = dataset.map_batches(
            RayScorer,
            fn_constructor_kwargs={
                "model_dir": str(Path(model_dir).resolve()),
                "device": "cuda" if gpus else "cpu",
                "dtype": dtype,
                "metaphor": metaphor,
                "include_text": include_text,
                "error_dir": str(stage_dir.resolve()),
                "compile": compile,
            },
            batch_size=chunk_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=size),
            num_gpus=1 if gpus else 0,
        )
        scored.write_parquet(str(store.parts_dir.resolve()))
        new_parts = [p for p in store.parts() if p not in before]
        summary.items += _count_rows(new_parts)
        summary.parts += len(new_parts)
        for path in sorted(stage_dir.glob("errors-*.jsonl")):
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    errors.write(InputError(**json.loads(line)))
    shutil.rmtree(stage_dir)
    return time.perf_counter() - started


def _count_rows(parts: list[Path]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
