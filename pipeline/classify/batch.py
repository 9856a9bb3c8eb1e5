"""`seci batch`: score an archive, streaming from ingestion to result files, resumable after any crash.

`run_batch` wires the pieces together; each lives in its own module:

- `pipeline.classify.rows`: items and predictions in, result rows out (`RowBuilder`, `Scorer`, `row_schema`);
- `pipeline.classify.store`: the results folder, its part files, the resume index and the crash-safe merge
  (`ResultStore`);
- `pipeline.classify.records`: what a run reports (`BatchProgress`, `RunSummary` for `run.json`, `ErrorLog`
  for `errors.jsonl`);
- `pipeline.classify.local_engine` and `pipeline.classify.ray_engine`: the two ways of running the classify
  step (three overlapping stages in one process, or a Ray Data pipeline).

Output layout in `out_dir` (read by `pipeline.aggregate.results`; every field in docs/outputs.md):

- `parts/part-000000.parquet` ...: one per chunk, each written atomically;
- `items.parquet` (or `items.jsonl`): the parts merged at the end, crash-safe too;
- `errors.jsonl`: one `{path, reason, error}` line per input that could not be read and per item that
  could not be fully processed;
- `run.json`: counts, timings, model, versions and options.

`resume=True` skips every item whose (id, content hash) already has a row written by the same model;
rows of items re-scored in this run (changed text, other model) are dropped from the merged output.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.classify.records import BatchProgress, ErrorLog, RunSummary, versions, write_run_json
from pipeline.classify.rows import (
    DEFAULT_MODEL,
    ModelNotFound,
    Scorer,
    metaphor_detector,
    row_schema,
    token_scores,
)
from pipeline.classify.store import OutputExists, ResultStore, item_key
from pipeline.items import InputError, Item

if TYPE_CHECKING:
    from pipeline.ingest import IngestOptions, TeamRules

# Names other modules have imported from here since before the split.
__all__ = [
    "DEFAULT_MODEL",
    "BatchOptions",
    "BatchProgress",
    "ModelNotFound",
    "OutputExists",
    "RunSummary",
    "Scorer",
    "metaphor_detector",
    "run_batch",
    "token_scores",
]

ENGINES = ("local", "ray")


@dataclass
class BatchOptions:
    """Everything `seci batch` can be asked for; `run_batch` takes these, or any of them as keywords.

    With a `scorer` passed to `run_batch`, `model_dir`, `device`, `dtype`, `metaphor`, `include_text`,
    `max_tokens` and `compile` are the scorer's own. `compile` runs the model through `torch.compile`.
    `engine="ray"` runs the classify step as a Ray Data pipeline (`pipeline.classify.ray_engine`) with
    `ray_actors` model replicas, on the cluster at `ray_address` or a local Ray.
    """

    model_dir: Path = DEFAULT_MODEL
    fmt: str = "parquet"
    teams: Path | TeamRules | None = None
    resume: bool = False
    engine: str = "local"
    device: str = "auto"
    dtype: str = "auto"
    include_text: bool = True
    metaphor: str = "rules"
    chunk_size: int = 1024
    max_tokens: int | None = None
    compile: bool = False
    ingest_options: IngestOptions | None = None
    ray_actors: int | None = None
    ray_address: str | None = None

    def check(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}; expected local or ray")
        if self.chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")


def run_batch(
    inputs: Sequence[Path],
    out_dir: Path,
    options: BatchOptions | None = None,
    *,
    scorer: Scorer | None = None,
    progress: Callable[[BatchProgress], None] | None = None,
    **settings: Any,
) -> RunSummary:
    """Score every item under `inputs` into `out_dir` (layout in the module docstring); returns the summary.

    `options` (or `settings`, any `BatchOptions` field as a keyword, applied on top) say how; `scorer` reuses
    a loaded model; `progress` is called after each chunk.
    """
    from pipeline.classify.local_engine import limit_malloc_arenas, run_local
    from pipeline.ingest import IngestOptions, IngestSummary, TeamRules, ingest
    from pipeline.ingest.driver import find_files

    opts = dataclasses.replace(options or BatchOptions(), **settings)
    opts.check()
    limit_malloc_arenas()
    started = time.perf_counter()
    out_dir = Path(out_dir)
    ingest_options = opts.ingest_options or IngestOptions()
    teams = opts.teams
    rules = TeamRules.load(Path(teams)) if isinstance(teams, str | Path) else teams
    # Refused before the model loads (seconds), not after.
    ResultStore(out_dir, opts.fmt, None).check(opts.resume)  # type: ignore[arg-type]
    if scorer is None and opts.engine == "local":
        scorer = Scorer.load(
            opts.model_dir,
            device=opts.device,
            dtype=opts.dtype,
            metaphor=opts.metaphor,
            include_text=opts.include_text,
            max_tokens=opts.max_tokens,
            compile=opts.compile,
        )
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    include_text = opts.include_text
    if scorer is not None:
        model_name, modes, include_text = scorer.model_name, scorer.modes, scorer.include_text
    else:
        from pipeline.classify.model import load_config

        if not (Path(opts.model_dir) / "config.json").is_file():
            raise ModelNotFound(f"no model at {opts.model_dir} (config.json missing): pass --model DIR")
        config = load_config(Path(opts.model_dir))
        model_name, modes = f"{config.name} {config.version}", tuple(config.modes)

    store = ResultStore(out_dir, opts.fmt, row_schema(modes, include_text))
    store.prepare(opts.resume)
    summary = RunSummary(out_dir=str(out_dir), model=model_name)
    summary.versions = versions(("ray",) if opts.engine == "ray" else ())
    summary.options = _recorded_options(inputs, opts, scorer, include_text)
    write_run_json(out_dir, summary)
    previous = store.done_keys(model_name) if opts.resume else set()
    errors = ErrorLog(out_dir / "errors.jsonl", summary)
    ingest_summary = IngestSummary()
    files_total = sum(1 for _ in find_files(inputs)) if progress is not None else None
    files_done = 0
    # Per chunk cut, the files read in full before it: once the chunk is written, their items are all scored.
    files_before_chunk: list[int] = []
    seen: set[int] = set()
    rescored: set[int] = set()

    def on_file(_: Path) -> None:
        nonlocal files_done
        files_done += 1

    def chunks() -> Iterator[list[Item]]:
        chunk: list[Item] = []
        for record in ingest(inputs, ingest_options, rules, ingest_summary, on_file=on_file):
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
            if len(chunk) == opts.chunk_size:
                files_before_chunk.append(max(files_done - 1, 0))  # the current file may go on in the next chunk
                yield chunk
                chunk = []
        files_before_chunk.append(files_done)
        if chunk:
            yield chunk

    def scored_files() -> int | None:
        if summary.status == "complete":
            return files_done
        if not files_before_chunk:  # the Ray engine reads the inputs itself
            return None
        written = min(summary.parts, len(files_before_chunk))
        return files_before_chunk[written - 1] if written else 0

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
                    scored_files(),
                )
            )

    # Busy seconds per stage; the stages overlap, so they do not add up to the total.
    timings: dict[str, float] = {}
    try:
        if opts.engine == "local":
            assert scorer is not None
            timings.update(model_thread=0.0, metaphor_and_rows=0.0, write=0.0)
            run_local(scorer, chunks(), store, errors, summary, timings, report)
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
                options=ingest_options,
                teams=rules,
                model_dir=Path(opts.model_dir),
                device=opts.device,
                dtype=opts.dtype,
                metaphor=opts.metaphor,
                include_text=include_text,
                chunk_size=opts.chunk_size,
                actors=opts.ray_actors,
                address=opts.ray_address,
                compile=opts.compile,
            )
    except KeyboardInterrupt:
        # What was written stays (the parts: `--resume` continues from them), and run.json says so.
        summary.status = "interrupted"
        summary.inputs = ingest_summary.files
        summary.files_read = ingest_summary.files_read
        summary.timings = {k: round(v, 3) for k, v in timings.items()}
        write_run_json(out_dir, summary)
        raise
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
    write_run_json(out_dir, summary)
    report()
    return summary


def _recorded_options(
    inputs: Sequence[Path], opts: BatchOptions, scorer: Scorer | None, include_text: bool
) -> dict[str, Any]:
    """The options as `run.json` records them: a scorer's own settings where one was passed."""
    return {
        "inputs": [str(p) for p in inputs],
        "format": opts.fmt,
        "teams": str(opts.teams) if isinstance(opts.teams, str | Path) else None,
        "resume": opts.resume,
        "engine": opts.engine,
        "device": str(scorer.engine.device) if scorer else opts.device,
        "dtype": scorer.engine.precision if scorer else opts.dtype,
        "metaphor": scorer.metaphor if scorer else opts.metaphor,
        "include_text": include_text,
        "chunk_size": opts.chunk_size,
        "max_tokens": scorer.engine.max_tokens if scorer else opts.max_tokens,
        "compile": scorer.engine.compiled if scorer else opts.compile,
        # The report reads the model card (its measured accuracy) from here.
        "model_dir": None if scorer else str(Path(opts.model_dir).resolve()),
    }
