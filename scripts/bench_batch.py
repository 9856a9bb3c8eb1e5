"""Benchmark `seci batch` end to end on a large synthetic archive made by resampling real items.

    .venv/bin/python scripts/bench_batch.py [--n 200000] [--model DIR] [--metaphor rules|tokens] [--compile]

Writes the archive as generic JSONL (files of 10,000 items, each item a real one drawn with replacement and
given its own id), measures the engine's own items/s and the classify step's (engine plus metaphor rules)
on a sample of the same items in this process, then runs `run_batch` over the whole archive in a child
process and prints its throughput, its ratio to the engine's, the time each stage was busy, and the child's
peak RSS. `--ceiling` also runs the archive with random logits in place of the model's forward pass: the
most `seci batch` can do on this host's CPUs, whatever the device (with the chosen `--metaphor`), and times
each CPU stage alone, of a local run and of `--engine ray`; `--stages` does only the latter.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_inference import default_sources, emit, load_model, real_items  # noqa: E402

from pipeline.classify.engine import predictions as engine_predictions  # noqa: E402
from pipeline.classify.rows import Scorer  # noqa: E402
from pipeline.items import Item  # noqa: E402

log = logging.getLogger("bench")
ITEMS_PER_FILE = 10_000
CHILD = """
import json, sys
from pathlib import Path
from pipeline.classify.batch import run_batch
args = json.loads(sys.argv[1])
summary = run_batch([Path(args["archive"])], Path(args["out"]), model_dir=Path(args["model"]), fmt=args["format"],
                    metaphor=args["metaphor"], chunk_size=args["chunk_size"], device=args["device"],
                    compile=args["compile"])
sys.stdout.write(json.dumps(summary.to_dict()))
"""


def write_archive(pool: list[Item], n: int, folder: Path, seed: int = 0) -> int:
    """n items drawn with replacement from the pool, as generic JSONL; returns the bytes written."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for start in range(0, n, ITEMS_PER_FILE):
        lines = []
        for k in range(start, min(n, start + ITEMS_PER_FILE)):
            item = rng.choice(pool)
            row = {
                "id": f"syn-{k:07d}",
                "text": item.text,
                "source": item.source,
                "title": item.title,
                "authors": item.authors,
                "participants": item.participants,
                "timestamp": item.timestamp.isoformat() if item.timestamp else None,
            }
            lines.append(json.dumps(row, ensure_ascii=False) + "\n")
        path = folder / f"archive-{start // ITEMS_PER_FILE:04d}.jsonl"
        path.write_text("".join(lines), encoding="utf-8")
        written += path.stat().st_size
    return written


def gate_report(scorer: Scorer, items: list[Item]) -> str:
    """How the metaphor rules' sentence gate (`prefilter`) compares with parsing every sentence, on these items."""

    from pipeline.classify.metaphor import DeliberateMetaphorDetector
    from pipeline.classify.rows import token_scores

    gated = scorer.detector
    texts = [i.text for i in items]
    scores = [token_scores(t, p) for t, p in zip(texts, scorer.engine.predict(texts), strict=True)]
    full = DeliberateMetaphorDetector({**gated.config, "prefilter": False}, nlp=gated.nlp)
    timed = {}
    for name, detector in (("gated", gated), ("full", full)):
        t0 = time.perf_counter()
        timed[name] = (detector.detect_many(texts, scores), time.perf_counter() - t0)
    (a, a_s), (b, b_s) = timed["gated"], timed["full"]
    flags = sum(x.metaphor == y.metaphor for x, y in zip(a, b, strict=True))
    spans = sum(x.to_dict() == y.to_dict() for x, y in zip(a, b, strict=True))
    positives = sum(y.metaphor for y in b)
    return (
        f"metaphor rules on {len(items):,} items: gated {len(items) / a_s:.1f} items/s, every sentence parsed "
        f"{len(items) / b_s:.1f} items/s ({b_s / a_s:.1f}x); same flag {flags / len(items):.2%}, same spans "
        f"{spans / len(items):.2%} ({positives} positive items when every sentence is parsed)"
    )


def tokens_report(scorer: Scorer, items: list[Item]) -> str:
    """How building `metaphor_tokens` from the flagged words only compares with a `TokenScore` per word."""
    from pipeline.classify.rows import flagged_tokens, token_scores

    texts = [i.text for i in items]
    predictions = scorer.engine.predict(texts)
    threshold = scorer.token_threshold

    def every_word() -> list[list[dict]]:
        return [
            [
                {"text": t.text, "start": t.start, "end": t.end, "score": round(t.score, 4)}
                for t in token_scores(text, p)
                if t.score >= threshold
            ]
            for text, p in zip(texts, predictions, strict=True)
        ]

    def flagged_only() -> list[list[dict]]:
        return [flagged_tokens(text, p, threshold) for text, p in zip(texts, predictions, strict=True)]

    timed = {}
    for name, build in (("every", every_word), ("flagged", flagged_only)):
        t0 = time.perf_counter()
        for _ in range(5):
            out = build()
        timed[name] = (out, (time.perf_counter() - t0) / 5)
    (a, a_s), (b, b_s) = timed["every"], timed["flagged"]
    words = sum(len(p.word_scores) for p in predictions)
    return (
        f"metaphor_tokens on {len(items):,} items: a TokenScore per word {len(items) / a_s:,.0f} items/s, "
        f"flagged words only {len(items) / b_s:,.0f} items/s ({a_s / b_s:.1f}x); same output: {a == b}; "
        f"{sum(map(len, b)):,} of {words:,} words flagged"
    )


def classify_rates(scorer: Scorer, items: list[Item], chunk_size: int) -> tuple[float, float]:
    """items/s of the engine alone, and of the engine plus building rows (metaphor rules included)."""
    chunks = [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]
    scorer.engine.predict([i.text for i in items[:8]])
    t0 = time.perf_counter()
    scored = list(scorer.engine.predict_stream(iter(chunks), texts_of=lambda c: [i.text for i in c]))
    engine_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    for chunk, predictions in scored:
        scorer.rows(chunk, predictions)
    rows_seconds = time.perf_counter() - t0
    return len(items) / engine_seconds, len(items) / (engine_seconds + rows_seconds)


@contextlib.contextmanager
def without_model(scorer: Scorer) -> Iterator[None]:
    """The scorer's forward pass replaced by random logits of the same shapes, for measuring everything else."""
    engine = scorer.engine
    forward = engine._forward
    generator = torch.Generator().manual_seed(0)
    n_modes = len(engine.config.modes)

    def stand_in(
        ids: torch.Tensor, mask: torch.Tensor, task: str | None = None, mode_rows: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # Token logits N(-1.6, 1): with version 5's threshold (0.396) about 12% of words are flagged, as the model
        # flags on real items (9,142 of 74,015 words in this script's tokens report).
        logits = torch.randn(ids.shape, generator=generator) - 1.6
        rows = ids.shape[0] if mode_rows is None else len(mode_rows)
        return torch.randn(rows, n_modes, generator=generator), (None if task == "modes" else logits)

    engine._forward = stand_in
    try:
        yield
    finally:
        engine._forward = forward


def pipeline_ceiling(scorer: Scorer, archive: Path, out: Path, chunk_size: int) -> float:
    """items/s of `run_batch` over the archive without the model: what ingestion, tokenization, packing, rows
    and writing allow, whatever the device."""
    from pipeline.classify.batch import run_batch

    with without_model(scorer):
        try:
            t0 = time.perf_counter()
            summary = run_batch([archive], out, scorer=scorer, chunk_size=chunk_size)
            return summary.items / (time.perf_counter() - t0)
        finally:
            shutil.rmtree(out, ignore_errors=True)


def stage_rates(scorer: Scorer, archive_file: Path, chunk_size: int) -> dict[str, float]:
    """items/s of each CPU stage of `seci batch` run alone, one after another, over one archive file."""
    import pyarrow as pa

    from pipeline.ingest import ingest

    engine = scorer.engine
    rates: dict[str, float] = {}
    t0 = time.perf_counter()
    items = [r for r in ingest([archive_file]) if isinstance(r, Item)]
    rates["ingest (JSONL)"] = len(items) / (time.perf_counter() - t0)
    chunks = [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]
    texts = [[i.text for i in c] for c in chunks]
    t0 = time.perf_counter()
    tokens = [engine.tokenize(t) for t in texts]
    rates["tokenize"] = len(items) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    plans = [engine._plan(t.ids, t.offsets) for t in tokens]
    rates["windows and batches"] = len(items) / (time.perf_counter() - t0)
    with without_model(scorer):
        t0 = time.perf_counter()
        predictions = [engine_predictions(t, engine._infer(p)) for t, p in zip(tokens, plans, strict=True)]
        rates["outputs to predictions (no model)"] = len(items) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    rows = [scorer.rows(c, p)[0] for c, p in zip(chunks, predictions, strict=True)]
    rates["rows"] = len(items) / (time.perf_counter() - t0)
    schema = scorer.schema()
    t0 = time.perf_counter()
    for r in rows:
        pa.Table.from_pylist(r, schema=schema)
    rates["rows to Arrow"] = len(items) / (time.perf_counter() - t0)
    return rates


@contextlib.contextmanager
def clock(spent: dict[str, tuple[float, float]], name: str) -> Iterator[None]:
    """Adds the wall and CPU seconds (all of this process's threads: the Rust tokenizer runs on every core) of
    the block to `spent[name]`."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    before = spent.get(name, (0.0, 0.0))
    spent[name] = (before[0] + time.perf_counter() - wall, before[1] + time.process_time() - cpu)


def ray_stage_rates(
    scorer: Scorer, model_dir: Path, archive_file: Path, chunk_size: int
) -> tuple[int, dict[str, tuple[float, float]]]:
    """Wall and CPU seconds of each stage of `--engine ray`, run alone in this process over one archive file (no
    Ray needed): the read task, the gate, and per batch the tokenize task, the model replica's own CPU work (Arrow
    in, windows and batches, outputs, Arrow out; random logits in place of the forward pass) and the rows task.
    Returns the number of items and the seconds per stage."""
    import numpy as np
    import pyarrow as pa

    from pipeline.classify import ray_engine
    from pipeline.ingest import IngestOptions

    work = Path(tempfile.mkdtemp(prefix="seci-bench-ray-"))
    spent: dict[str, tuple[float, float]] = {}
    model, metaphor = str(model_dir), "rules" if scorer.detector is not None else "tokens"
    try:
        files = pa.table({"path": [str(archive_file)], "key": [archive_file.name], "top": [None]})
        with clock(spent, "read task"):
            items = ray_engine.read_files(files, IngestOptions(), None, str(work))
        with clock(spent, "gate"):
            staged = ray_engine.Gate(np.zeros(0, np.uint64), str(work))(items)
        batches = [staged.slice(i, chunk_size) for i in range(0, len(staged), chunk_size)]
        ray_engine.tokenize(batches[0].slice(0, 2), model)  # the worker's first call loads the tokenizer
        with clock(spent, "tokenize task"):
            batches = [ray_engine.tokenize(b, model) for b in batches]
        engine = scorer.engine
        with without_model(scorer), clock(spent, "model replica without the model"):
            for k, b in enumerate(batches):  # ModelStage.__call__, with this process's engine
                tokens = ray_engine.tokens_from_arrow(b)
                batches[k] = ray_engine.scores_to_arrow(b, engine.infer(tokens), tokens.offsets)
        ray_engine.build_rows(batches[0].slice(0, 2), model, metaphor, scorer.include_text, str(work))
        with clock(spent, "rows task"):
            for b in batches:
                ray_engine.build_rows(b, model, metaphor, scorer.include_text, str(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return len(items), spent


def emit_stage_rates(scorer: Scorer, model_dir: Path, archive: Path, chunk_size: int) -> None:
    """Print each CPU stage's items/s, of a local run and of `--engine ray`, over the archive's first file."""
    first = sorted(archive.glob("*.jsonl"))[0]
    rates = stage_rates(scorer, first, chunk_size)
    emit("CPU stages alone, items/s: " + ", ".join(f"{k} {v:,.0f}" for k, v in rates.items()))
    n, spent = ray_stage_rates(scorer, model_dir, first, chunk_size)
    emit(f"--engine ray stages alone over {n:,} items (items/s; CPU us per item, all threads):")
    for name, (wall, cpu) in spent.items():
        emit(f"  {name}: {n / wall:,.0f} items/s; {1e6 * cpu / n:,.0f} us")
    tasks = sum(spent[k][1] for k in ("read task", "tokenize task", "rows task")) / n
    emit(
        f"--engine ray on one GPU and C cores, from these CPU times: the tasks need {tasks * 1e6:,.0f} core-us per"
        f" item, so they feed at most (C - 1) x {1 / tasks:,.0f} items/s; the model replica's own CPU work caps"
        f" one GPU at {n / spent['model replica without the model'][1]:,.0f} items/s, the gate the whole"
        f" run at {n / spent['gate'][1]:,.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000, help="items in the synthetic archive")
    parser.add_argument("--pool", type=int, default=2000, help="real items to resample from")
    parser.add_argument("--sample", type=int, default=1000, help="items to measure the engine on")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--data", type=Path, nargs="*", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--format", default="parquet", choices=("parquet", "jsonl"))
    parser.add_argument("--metaphor", default="rules", choices=("rules", "tokens"))
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (seci batch --compile)")
    parser.add_argument("--any-length", action="store_true", help="also take items longer than one window")
    parser.add_argument("--workdir", type=Path, default=None, help="where to put the archive (default: a temp dir)")
    parser.add_argument(
        "--ceiling", action="store_true", help="also run the archive without the model (random logits), in-process"
    )
    parser.add_argument(
        "--stages", action="store_true", help="only time each CPU stage alone (local and --engine ray), then stop"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("pipeline").setLevel(logging.ERROR)

    model_dir, random_heads = load_model(args.model)
    scorer = Scorer.load(model_dir, device=args.device, metaphor=args.metaphor, compile=args.compile)
    body = scorer.engine.config.max_length - 2

    def fits(item: Item) -> bool:
        return args.any_length or len(scorer.engine.tokenizer(item.text, add_special_tokens=False)["input_ids"]) <= body

    work = args.workdir or Path(tempfile.mkdtemp(prefix="seci-bench-batch-"))
    archive, out = work / "archive", work / "out"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(archive, ignore_errors=True)
    log.info("collecting %d real items", args.pool)
    pool = real_items(args.pool, args.data or default_sources(), fits)
    size = write_archive(pool, args.n, archive)
    emit(f"# bench_batch: {args.n:,} items resampled from {len(pool):,} real ones, {size / 2**20:.0f} MiB of JSONL")
    engine = scorer.engine
    compiled = ", torch.compile" if engine.compiled else ""
    emit(f"model {scorer.model_name}{' (random heads)' * random_heads}, {engine.device} {engine.precision}{compiled}")

    if args.stages:
        emit_stage_rates(scorer, model_dir, archive, args.chunk_size)
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
        return

    rng = random.Random(1)
    sample = [rng.choice(pool) for _ in range(min(args.sample, args.n))]
    log.info("engine alone on %d items", len(sample))
    engine_rate, classify_rate = classify_rates(scorer, sample, args.chunk_size)
    if scorer.detector is not None:
        log.info("metaphor rules: the sentence gate against parsing every sentence")
        gate = gate_report(scorer, sample)

    log.info("run_batch over the archive (child process)")
    child_args = {
        "archive": str(archive),
        "out": str(out),
        "model": str(model_dir),
        "format": args.format,
        "metaphor": args.metaphor,
        "chunk_size": args.chunk_size,
        "device": args.device,
        "compile": args.compile,
    }
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(child_args)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"run_batch failed:\n{done.stderr[-4000:]}")
    summary = json.loads(done.stdout)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    timings = summary["timings"]
    rate = summary["items"] / timings["total"]

    emit(f"end to end: {summary['items']:,} items in {timings['total']:.1f} s = {rate:.1f} items/s (after loading)")
    emit(f"engine alone: {engine_rate:.1f} items/s; with metaphor {args.metaphor}, rows: {classify_rate:.1f} items/s")
    emit(f"end to end / engine: {rate / engine_rate:.0%}; end to end / classify step: {rate / classify_rate:.0%}")
    if scorer.detector is not None:
        emit(gate)
    else:
        emit(tokens_report(scorer, sample))
    emit(f"peak RSS of the batch process: {peak_mb:,.0f} MB")
    emit("busy seconds per stage (they overlap): " + ", ".join(f"{k} {v}" for k, v in timings.items()))
    emit(f"rows {summary['rows']:,}, errors {summary['errors']}, parts {summary['parts']}, output {summary['output']}")
    if args.ceiling:
        log.info("run_batch without the model (random logits), in this process")
        ceiling = pipeline_ceiling(scorer, archive, work / "ceiling", args.chunk_size)
        emit(f"without the model (random logits in place of the forward pass): {ceiling:,.0f} items/s")
        emit_stage_rates(scorer, model_dir, archive, args.chunk_size)
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
