"""Benchmark the inference engine against a naive loop, on real items, in one process.

    .venv/bin/python scripts/bench_inference.py [--n 2000] [--model models/seci-fast] [--device auto]

Prints, for (a) the naive baseline (fixed batches of 32 in input order, each padded to its longest text,
truncated at 256 tokens, fp32: what `transformers.pipeline` does) and (b) the engine (auto dtype: bf16 on
CPUs that have it), plus the engine in fp32 and int8 and, on CPU, with PyTorch's plain layers instead of the
fused oneDNN ones (`fuse.py`): items/s, tokens/s, padding efficiency, peak RSS,
label agreement with the fp32 engine, and the fraction of this machine's matmul peak (measured in the same
run) that each reaches. Items come round-robin from `data/samples/` and `../shared/data` (meeting segments, e-mails and
document sections); by default only items that fit one window
(as the issue's "~200-token items"), `--any-length` to take all; `--resample` draws `--n` items with
replacement from those found (where only `data/samples/` is at hand, e.g. on a GPU host).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from pipeline.classify.engine import Engine  # noqa: E402
from pipeline.classify.model import ModelConfig, SeciModel  # noqa: E402
from pipeline.items import Item  # noqa: E402

log = logging.getLogger("bench")
SHARED = Path(os.environ.get("SECI_SHARED_DATA", ROOT.parent / "shared" / "data"))
SOURCES = ("meetings/qmsum/ALL/train", "emails/enron_berkeley_categories", "documents/python_peps")
NAIVE_BATCH = 32
NAIVE_MAX_LENGTH = 256


def emit(line: str = "") -> None:
    """The report goes to stdout; progress and warnings to the log (stderr)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def default_sources() -> list[Path]:
    """The bundled sample (if any) and the shared corpora's folders that exist."""
    samples = ROOT / "data" / "samples"
    found = [samples] if samples.is_dir() and any(p.is_file() for p in samples.rglob("*")) else []
    found += [SHARED / s for s in SOURCES if (SHARED / s).exists()]
    if not found:
        raise SystemExit(f"no data: data/samples is empty and {SHARED} lacks {SOURCES}; pass --data")
    return found


def real_items(n: int, sources: Sequence[Path], keep: Callable[[Item], bool], seed: int = 0) -> list[Item]:
    """Up to n items taken round-robin from the sources (so each kind is represented), then shuffled."""
    from pipeline.ingest import ingest

    def stream(source: Path) -> Iterator[Item]:
        return (r for r in ingest([source]) if isinstance(r, Item) and r.text.strip() and keep(r))

    streams = [stream(s) for s in sources]
    items: list[Item] = []
    while streams and len(items) < n:
        for s in list(streams):
            item = next(s, None)
            if item is None:
                streams.remove(s)
            else:
                items.append(item)
    random.Random(seed).shuffle(items)
    return items[:n]


def load_model(model: Path | None) -> tuple[Path, bool]:
    """The model to benchmark; a random-head model when none is given or found (speed is the same)."""
    if model is not None and (model / "config.json").is_file():
        return model, False
    default = ROOT / "models" / "seci-fast"
    if model is None and (default / "config.json").is_file():
        return default, False
    log.warning("no trained model: using random heads; speeds hold, label agreement is only indicative")
    torch.manual_seed(0)
    path = Path(tempfile.mkdtemp(prefix="seci-bench-")) / "random"
    SeciModel(ModelConfig(name="random-heads")).save(path)
    return path, True


def matmul_peak(dtype: torch.dtype, device: torch.device, seconds: float = 2.0) -> float:
    """GFLOP/s of a big square matmul in `dtype` on `device`, the best of a few timed rounds."""
    n = 8192 if device.type == "cuda" else 2048
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    torch.matmul(a, b)
    sync()
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        for _ in range(4):
            torch.matmul(a, b)
        sync()
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def matmul_params(model: torch.nn.Module) -> int:
    """Weights that take part in a matmul for every token (Linear layers): the encoder's and both heads'."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def attention_layers(model: torch.nn.Module) -> int:
    """Self-attention blocks run per forward pass (the encoder's and a branch's)."""
    return sum(1 for m in model.modules() if type(m).__name__.endswith("SelfAttention"))


def forward_flops(shapes: list[tuple[int, int]], params: int, layers: int, hidden: int) -> float:
    """FLOPs of the forward passes over batches of (rows, width) tokens, padding included: 2 per weight per
    token for the Linear layers, plus each attention block's two L x L products (Q K^T and the weighted sum of
    V: 4 L^2 d per row), as model-FLOPs utilisation is usually counted."""
    return float(sum(2 * params * b * w + layers * 4 * b * w * w * hidden for b, w in shapes))


@dataclass
class Run:
    name: str
    seconds: float
    items: int
    tokens: int  # real tokens seen (special tokens included)
    computed: int  # tokens computed, padding included
    shapes: list[tuple[int, int]]  # (rows, width) of every batch, for the FLOP count
    probs: np.ndarray
    rss_mb: float

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds

    @property
    def padding_efficiency(self) -> float:
        return self.tokens / self.computed if self.computed else 1.0


@torch.inference_mode()
def naive(engine: Engine, texts: list[str]) -> Run:
    model = engine.model.float()
    tokenizer = engine.tokenizer
    probs, tokens, computed, shapes = [], 0, 0, []
    t0 = time.perf_counter()
    for start in range(0, len(texts), NAIVE_BATCH):
        batch = tokenizer(
            texts[start : start + NAIVE_BATCH],
            padding=True,
            truncation=True,
            max_length=NAIVE_MAX_LENGTH,
            return_tensors="pt",
        )
        mode_logits, _ = model(batch["input_ids"], batch["attention_mask"])
        probs.append(torch.softmax(mode_logits / engine.config.temperature, dim=-1).numpy())
        tokens += int(batch["attention_mask"].sum())
        computed += batch["attention_mask"].numel()
        shapes.append(tuple(batch["attention_mask"].shape))
    seconds = time.perf_counter() - t0
    return Run("naive fp32 b=32", seconds, len(texts), tokens, computed, shapes, np.concatenate(probs), peak_rss_mb())


def engine_run(name: str, engine: Engine, texts: list[str], chunk: int = 1024) -> Run:
    engine.predict(texts[:8])  # warm-up: first-call allocations and kernel choices
    chunks = [texts[i : i + chunk] for i in range(0, len(texts), chunk)]
    t0 = time.perf_counter()
    predictions = [p for _, batch in engine.predict_stream(iter(chunks)) for p in batch]
    seconds = time.perf_counter() - t0
    tokens = computed = 0
    shapes = []
    for c in chunks:  # padding is a property of the packing, measured outside the timed loop
        encoded = engine.tokenize(c)
        for b in engine._plan(encoded.ids, encoded.offsets).batches:
            tokens += int(b.mask.sum())
            computed += b.mask.numel()
            shapes.append(tuple(b.mask.shape))
    probs = np.stack([p.probabilities for p in predictions])
    return Run(name, seconds, len(texts), tokens, computed, shapes, probs, peak_rss_mb())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="items to benchmark on")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--data", type=Path, nargs="*", default=None, help="inputs (default: samples or shared)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--any-length", action="store_true", help="also take items longer than one window")
    parser.add_argument("--no-int8", action="store_true")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile run")
    parser.add_argument("--no-naive", action="store_true", help="skip the baseline (GPU runs)")
    parser.add_argument(
        "--resample", action="store_true", help="draw --n items with replacement from the real ones found (GPU runs)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("pipeline").setLevel(logging.ERROR)

    model_dir, random_heads = load_model(args.model)
    fp32 = Engine.from_dir(model_dir, device=args.device, dtype="float32")
    body = fp32.config.max_length - 2

    def fits(item: Item) -> bool:
        return args.any_length or len(fp32.tokenizer(item.text, add_special_tokens=False)["input_ids"]) <= body

    sources = args.data or default_sources()
    log.info("collecting %d items from %s", args.n, ", ".join(map(str, sources)))
    items = real_items(args.n, sources, fits)
    found = len(items)
    if args.resample and items:
        items = random.Random(1).choices(items, k=args.n)
    texts = [i.text for i in items]
    by_source = {s: sum(1 for i in items if i.source == s) for s in sorted({i.source for i in items})}

    drawn = f" drawn from {found} real ones" if args.resample else ""
    heads = " (random heads)" if random_heads else ""
    emit(f"# bench_inference: {len(texts)} items{drawn} {by_source}, model {fp32.name}{heads}")
    emit(f"device {fp32.device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    log.info("measuring the matmul peak")
    peak = {dtype: matmul_peak(dtype, fp32.device) for dtype in (torch.float32, torch.bfloat16)}
    emit(f"matmul peak: fp32 {peak[torch.float32]:.0f} GFLOP/s, bf16 {peak[torch.bfloat16]:.0f} GFLOP/s")
    params = matmul_params(fp32.model)
    layers, hidden = attention_layers(fp32.model), fp32.model.encoder.config.hidden_size

    runs: list[tuple[Run, torch.dtype | None]] = []
    if not args.no_naive:
        log.info("naive baseline")
        runs.append((naive(fp32, texts), torch.float32))
    log.info("engine, fp32")
    reference = engine_run("engine fp32", fp32, texts)
    runs.append((reference, torch.float32))
    auto = Engine.from_dir(model_dir, device=args.device, dtype="auto")
    if auto.precision != "float32":
        log.info("engine, %s", auto.precision)
        runs.append((engine_run(f"engine {auto.precision}", auto, texts), auto.dtype))
    if auto.fused:
        log.info("engine, %s, plain PyTorch layers", auto.precision)
        plain = Engine.from_dir(model_dir, device=args.device, dtype="auto", fuse_cpu=False)
        runs.append((engine_run(f"unfused {auto.precision}", plain, texts), auto.dtype))
    compile_seconds = None
    if not args.no_compile:
        log.info("engine, %s, torch.compile", auto.precision)
        t0 = time.perf_counter()
        compiled = Engine.from_dir(model_dir, device=args.device, dtype="auto", compile=True)
        compiled.predict(texts[:64])  # compiles: one graph with dynamic shapes
        compile_seconds = time.perf_counter() - t0
        runs.append((engine_run(f"compiled {auto.precision}", compiled, texts), compiled.dtype))
    if not args.no_int8 and fp32.device.type == "cpu":
        log.info("engine, int8")
        runs.append((engine_run("engine int8", Engine.from_dir(model_dir, device="cpu", dtype="int8"), texts), None))

    ref_labels = reference.probs.argmax(axis=1)
    emit()
    header = (
        f"{'run':<18}{'items/s':>9}{'tokens/s':>10}{'pad eff':>9}{'GFLOP/s':>9}{'of peak':>9}{'agree':>8}{'RSS MB':>8}"
    )
    emit(header)
    for run, dtype in runs:
        gflops = forward_flops(run.shapes, params, layers, hidden) / run.seconds / 1e9
        of_peak = f"{gflops / peak[dtype]:.0%}" if peak.get(dtype) else "-"
        agree = (run.probs.argmax(axis=1) == ref_labels).mean()
        emit(
            f"{run.name:<18}{run.items_per_second:>9.1f}{run.tokens / run.seconds:>10.0f}"
            f"{run.padding_efficiency:>9.0%}{gflops:>9.1f}{of_peak:>9}{agree:>8.2%}{run.rss_mb:>8.0f}"
        )
    by_name = {run.name: run for run, _ in runs}
    best = by_name.get(f"engine {auto.precision}", reference)
    if "naive fp32 b=32" in by_name:
        ratio = best.items_per_second / by_name["naive fp32 b=32"].items_per_second
        emit(f"\nengine ({best.name}) / naive: {ratio:.2f}x items/s")
        if f"compiled {auto.precision}" in by_name:
            fast = by_name[f"compiled {auto.precision}"]
            ratio = fast.items_per_second / by_name["naive fp32 b=32"].items_per_second
            emit(f"engine ({fast.name}) / naive: {ratio:.2f}x items/s, after {compile_seconds:.0f} s compiling")
    if f"unfused {auto.precision}" in by_name:
        ratio = best.items_per_second / by_name[f"unfused {auto.precision}"].items_per_second
        emit(f"fused oneDNN layers / plain PyTorch layers ({auto.precision}): {ratio:.2f}x items/s")
    emit(
        f"matmul params {params / 1e6:.1f}M, {layers} attention blocks; FLOPs counted over computed tokens "
        "(padding included) as 2 x params per token + 4 L^2 d per attention block and row"
    )
    if random_heads:
        emit("note: random heads give near-uniform probabilities, so label agreement understates a trained model's")


if __name__ == "__main__":
    main()
