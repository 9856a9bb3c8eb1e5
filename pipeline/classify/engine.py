"""The inference engine every command uses: texts in, mode probabilities and word metaphor scores out.

Why it is fast:
- one Rust tokenizer call per chunk of texts, straight into flat numpy arrays; windows, padding and the
  scatter of window outputs back to texts are vectorized, so there is no per-token Python anywhere and
  per-text Python only where a `Prediction` object is built;
- windows are sorted by length inside the chunk (a bounded window of the input) and packed under a token
  budget (on a GPU, also cut where a batch would fall under 90% real tokens), so short texts make big
  batches;
- `predict_stream` tokenizes and packs the next chunk in a producer thread while the model runs the current
  one (the tokenizer and torch both release the GIL while they work);
- `torch.inference_mode`, SDPA attention, bf16 on CUDA and on CPUs with native bf16, an optional int8 path
  on CPU; on CPU, the transformer layers' Linear layers as oneDNN calls with the bias and GELU fused in
  (fuse.py); on CUDA, pinned host buffers, non-blocking copies, outputs copied back once per chunk and a
  token budget sized from free GPU memory.

Results do not depend on how texts are batched or ordered (within the dtype's tolerance): each window is
computed on its own (padding is masked), and a text's windows are combined in a fixed order.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from pipeline.classify import fuse
from pipeline.classify.bert import LiteTokenizer, lite_tokenizer
from pipeline.classify.model import SeciModel, load_config, load_tokenizer, resolve_base
from pipeline.classify.windows import Window, Words, cut

log = logging.getLogger(__name__)

C = TypeVar("C")

# Tokens per CPU batch. Measured on this project's 2-core CPU (scripts/bench_inference.py, version 5, bf16):
# 8192 ran at 49-53 items/s against 37-46 for 16384 and 48 for 4096. Past ~10k tokens the feed-forward
# activations (tokens x 1536) outgrow glibc's 32 MB mmap ceiling, so each is mapped fresh and the kernel
# zero-fills it page by page on every layer; below ~4k tokens the matmuls get too small to reach peak.
DEFAULT_CPU_TOKENS = 8192
MAX_GPU_TOKENS = 1 << 19
# Fraction of free GPU memory the activations of one batch may take; the rest absorbs allocator slack,
# the next batch's inputs and whatever else shares the device.
GPU_MEMORY_SHARE = 0.25
PRECISIONS = ("float32", "bfloat16", "float16", "int8")
MIN_GPU_BATCH_TOKENS = 8192
GPU_MIN_FILL = 0.9  # share of real (non-padding) tokens a GPU batch keeps once it is big enough
# Batch widths are rounded up to a multiple of this. oneDNN (like torch.compile and cuBLAS autotuning) keeps
# kernels per input shape, so free widths add shapes for the whole run and a long CPU run's memory grows with
# them (a 200,000-item `seci batch` peaked at 5.0 GB before this); the rounding costs a few percent of padding.
WIDTH_MULTIPLE = 16


@dataclass
class Prediction:
    probabilities: np.ndarray  # (modes,), calibrated, sums to 1
    words: Words  # the text's words as the tokenizer splits them
    word_scores: np.ndarray  # metaphor probability of each word
    n_tokens: int
    n_windows: int


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but torch sees no CUDA device")
    return torch.device(device)


def check_dtype(dtype: str) -> None:
    """Refuse a dtype the engine has no path for, before anything is loaded."""
    if dtype != "auto" and dtype not in PRECISIONS:
        raise ValueError(f"unknown dtype {dtype!r}: use auto, {', '.join(PRECISIONS)}")


def pick_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the hardware runs it natively; fp32 otherwise (bf16 emulation is slower)."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    try:
        from torch.backends import cpu as cpu_backend

        if cpu_backend.get_cpu_capability() in ("AVX512", "AMX") or "bf16" in _cpu_flags():
            return torch.bfloat16
    except (ImportError, AttributeError):
        pass
    return torch.float32


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return " ".join(f for f in line.split() if "bf16" in f or "amx" in f)
    except OSError:
        pass
    return ""


def gpu_token_budget(model: SeciModel, device: torch.device, dtype: torch.dtype) -> int:
    """Tokens per batch whose activations fit in a share of the device's free memory.

    Inference keeps one layer's activations alive at a time: per token, the hidden state and its
    residual copies, q/k/v, the feed-forward's intermediate vector and the metaphor head's 4 x hidden
    features, plus (when SDPA falls back to its math kernel for a padding mask) one row of attention
    scores per head. A factor of 4 covers temporaries the estimate misses.
    """
    cfg = model.encoder.config
    free, _ = torch.cuda.mem_get_info(device)
    elem = torch.finfo(dtype).bits // 8
    per_token = 4 * elem * (12 * cfg.hidden_size + 2 * cfg.intermediate_size + cfg.num_attention_heads * 512)
    budget = int(free * GPU_MEMORY_SHARE) // per_token
    return max(4096, min(MAX_GPU_TOKENS, budget))


@dataclass
class _Batch:
    """One padded batch of windows, with where its outputs go."""

    ids: torch.Tensor  # (rows, width) on the host, pinned on CUDA
    mask: torch.Tensor
    windows: np.ndarray  # indices into the chunk's windows, one per row
    mode_rows: torch.Tensor | None  # the rows whose mode probabilities are read (None: all)
    src: torch.Tensor  # flat (row * width + column) positions of owned tokens in the batch output
    dst: np.ndarray  # where those go in the chunk's flat token array


@dataclass
class _Plan:
    """A chunk's token ids windowed and packed into batches, ready for the model."""

    n_texts: int
    n_tokens: int
    win_item: np.ndarray  # per window: its text
    win_weight: np.ndarray  # per window: its weight in the text's mode probabilities (tokens owned, or 0)
    batches: list[_Batch]


@dataclass
class Tokens:
    """Texts tokenized, as flat arrays: cheap to hold, slice and ship between processes (the Ray stages).

    Text i's tokens are `ids[offsets[i]:offsets[i + 1]]`; its words (as the tokenizer splits them) are
    `[word_offsets[i], word_offsets[i + 1])` of the word arrays, each with a character span into the text
    and its first token (an index into the text's own tokens).
    """

    ids: np.ndarray
    offsets: np.ndarray
    word_starts: np.ndarray
    word_ends: np.ndarray
    word_first: np.ndarray
    word_offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def words(self) -> list[Words]:
        if len(self) == 0:
            return []
        cuts = self.word_offsets[1:-1]
        return [
            Words(s, e, f)
            for s, e, f in zip(
                np.split(self.word_starts, cuts), np.split(self.word_ends, cuts), np.split(self.word_first, cuts),
                strict=True,
            )
        ]  # fmt: skip


@dataclass
class Scores:
    """The model's outputs for tokenized texts: what `Engine.infer` returns."""

    probabilities: np.ndarray  # (n_texts, modes): calibrated, windows combined by the tokens they own
    token_probs: np.ndarray  # metaphor probability of every token, aligned with `Tokens.ids`
    n_windows: np.ndarray  # (n_texts,)


def predictions(tokens: Tokens, scores: Scores) -> list[Prediction]:
    """One `Prediction` per text: the per-text view of `Tokens` and `Scores`."""
    offsets = tokens.offsets
    out = []
    for i, w in enumerate(tokens.words()):
        out.append(
            Prediction(
                probabilities=scores.probabilities[i],
                words=w,
                word_scores=scores.token_probs[offsets[i] + w.first_token],
                n_tokens=int(offsets[i + 1] - offsets[i]),
                n_windows=int(scores.n_windows[i]),
            )
        )
    return out


class TextTokenizer:
    """Texts in, `Tokens` out: the model's fast tokenizer as the engine runs it (no model weights needed).

    One Rust call per batch of texts, truncation and padding switched off (nothing is silently cut).
    """

    def __init__(self, tokenizer: Any) -> None:
        self.backend = _plain_backend(tokenizer)

    @classmethod
    def from_dir(cls, directory: Path) -> TextTokenizer:
        return cls(load_tokenizer(load_config(Path(directory))))

    def __call__(self, texts: Sequence[str]) -> Tokens:
        encodings = self.backend.encode_batch(list(texts), add_special_tokens=False)
        ids, offsets, word_ids = _flatten(encodings)
        spans = np.fromiter(chain.from_iterable(chain.from_iterable(e.offsets for e in encodings)), np.int64)
        return Tokens(ids, offsets, *_words(word_ids, spans.reshape(-1, 2), offsets))


class Engine:
    """Batched inference over a `SeciModel`: `predict`, `predict_stream`, `predict_words`; `tokenize` then `infer`
    split `predict` in two (its CPU half needs no model: the Ray pipeline runs the halves in different processes).
    """

    def __init__(
        self,
        model: SeciModel,
        tokenizer: Any,
        device: torch.device,
        dtype: torch.dtype | str = torch.float32,
        max_tokens: int | None = None,
        compile: bool = False,
        fuse_cpu: bool = True,
        metaphor: bool = True,
    ) -> None:
        self.device = device
        # Without the metaphor path only the windows the mode head reads are computed, through the mode path
        # alone: about half the work on long texts; token scores are then NaN (not computed).
        self.metaphor = metaphor
        self.config = model.config
        self._tokenizer = tokenizer
        self.precision = dtype if isinstance(dtype, str) else str(dtype).removeprefix("torch.")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown dtype {dtype!r}; expected auto or one of {PRECISIONS}")
        model = model.to(device).eval()
        if self.precision == "int8":
            if device.type != "cpu":
                raise ValueError("the int8 path is for CPU; use bfloat16 or float16 on CUDA")
            # Dynamic quantization: Linear weights stored as int8, activations quantized per batch. torch
            # marks torch.ao deprecated in favour of torchao, which is not a dependency; the API still works.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                warnings.simplefilter("ignore", UserWarning)
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
            self.dtype = torch.float32
        else:
            self.dtype = getattr(torch, self.precision)
        # The weights themselves are cast, rather than autocast re-casting them and the activations around
        # every LayerNorm on each call: on this project's 2-core CPU that is 1.4x faster, and the labels'
        # agreement with fp32 is measured by scripts/bench_inference.py.
        if self.dtype != torch.float32:
            model = model.to(self.dtype)
        self.model = model
        self.compiled = compile
        if max_tokens is None:
            max_tokens = gpu_token_budget(model, device, self.dtype) if device.type == "cuda" else DEFAULT_CPU_TOKENS
        if max_tokens < self.config.max_length:
            raise ValueError(f"max_tokens {max_tokens} is below one window ({self.config.max_length} tokens)")
        self.max_tokens = max_tokens
        self._forward: Callable[..., tuple[torch.Tensor, torch.Tensor]] = model
        # Whether the forward pass runs the transformer layers' Linear layers as fused oneDNN calls (fuse.py).
        self.fused = False
        if compile:
            if self.precision == "int8":
                raise ValueError("compile works with float32, bfloat16 and float16, not int8")
            # Inductor fuses the bias, GELU and LayerNorm work around each matmul and, with freezing, folds the
            # weights in and prepacks them for oneDNN; one graph with dynamic shapes serves every batch. It costs
            # ~20 s once. On this project's 2-core CPU the eager fused layers below ran faster (58.0 against 50.1
            # items/s, scripts/bench_inference.py), so on CPU it is only worth trying where that does not hold.
            self._forward = torch.compile(model, dynamic=True, options={"freezing": True})
        elif fuse_cpu and device.type == "cpu" and self.precision != "int8" and fuse.available(self.dtype):
            self._forward = fuse.fuse_linears(model, rows_hint=max_tokens)
            self.fused = True
        # On CPU, measured here (2 cores, AMX, version 1): fewer, bigger batches beat less padding (budget-only
        # packing, 88% real tokens: 51 items/s; cutting batches at 90% fill, 93% real tokens: 39 items/s), so
        # only the budget cuts. On a GPU padding is pure waste once a batch fills the device (about 8k tokens).
        self.min_batch_tokens = MIN_GPU_BATCH_TOKENS
        self.min_fill = GPU_MIN_FILL if device.type == "cuda" else 0.0
        self._tokenize = TextTokenizer(tokenizer)
        self._cls = tokenizer.cls_token_id
        self._sep = tokenizer.sep_token_id
        self._pad = tokenizer.pad_token_id

    @classmethod
    def from_dir(
        cls,
        directory: Path,
        device: str = "auto",
        dtype: str = "auto",
        max_tokens: int | None = None,
        compile: bool = False,
        fuse_cpu: bool = True,
        metaphor: bool = True,
    ) -> Engine:
        """Load a saved model; `dtype` is auto, float32, bfloat16, float16 or int8 (CPU only). `fuse_cpu=False`
        keeps the plain PyTorch layers on CPU (fuse.py), for comparison; `metaphor=False` computes mode
        probabilities only."""
        directory = Path(directory)
        if not (directory / "config.json").is_file():
            raise FileNotFoundError(f"{directory}: no model here (config.json missing)")
        check_dtype(dtype)
        dev = pick_device(device)
        model = SeciModel.load_for_inference(directory, dev)
        tokenizer = lite_tokenizer(resolve_base(model.config.base)) or load_tokenizer(model.config)
        chosen: torch.dtype | str = pick_dtype(dev) if dtype == "auto" else dtype
        return cls(model, tokenizer, dev, chosen, max_tokens, compile, fuse_cpu, metaphor)

    @property
    def tokenizer(self) -> Any:
        """The model's Hugging Face tokenizer (loaded on first use where the engine runs on its Rust backend)."""
        if isinstance(self._tokenizer, LiteTokenizer):
            self._tokenizer = load_tokenizer(self.config)
        return self._tokenizer

    @property
    def name(self) -> str:
        """Model name and version, as written in every result row."""
        return f"{self.config.name} {self.config.version}"

    # -- public API ------------------------------------------------------------------------------

    def batches(self, windows: list[Window]) -> list[list[int]]:
        """Indices of windows grouped so that (count x longest) stays under the token budget."""
        lengths = np.array([len(w.ids) for w in windows], dtype=np.int64)
        return [group.tolist() for group in self._groups(lengths)]

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Mode probabilities and word-level metaphor scores for each text, whatever its length."""
        if not texts:
            return []
        tokens = self.tokenize(texts)
        return predictions(tokens, self.infer(tokens))

    def tokenize(self, texts: Sequence[str]) -> Tokens:
        """The texts' tokens and words, nothing cut: the CPU half of `predict` (`TextTokenizer`)."""
        return self._tokenize(texts)

    def infer(self, tokens: Tokens) -> Scores:
        """Run the model over tokenized texts: windows, token-budget batches, forward pass, windows combined."""
        return self._infer(self._plan(tokens.ids, tokens.offsets))

    def predict_stream(
        self, chunks: Iterable[C], texts_of: Callable[[C], Sequence[str]] | None = None, prefetch: int = 2
    ) -> Iterator[tuple[C, list[Prediction]]]:
        """Predictions chunk by chunk, in order; the next chunks are read and tokenized while the model runs.

        `chunks` is consumed in a producer thread (so reading the input overlaps with compute too);
        `texts_of` gets a chunk's texts (default: the chunk is a sequence of texts). At most `prefetch`
        encoded chunks wait in memory.
        """
        get_texts = texts_of if texts_of is not None else (lambda chunk: chunk)  # type: ignore[assignment,return-value]
        ready: queue.Queue[tuple[C, Tokens, _Plan] | BaseException | None] = queue.Queue(maxsize=prefetch)
        stop = threading.Event()

        def put(entry: Any) -> bool:
            while not stop.is_set():
                try:
                    ready.put(entry, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                for chunk in chunks:
                    tokens = self.tokenize(get_texts(chunk))
                    if not put((chunk, tokens, self._plan(tokens.ids, tokens.offsets))):
                        return
                put(None)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                put(exc)

        worker = threading.Thread(target=produce, name="seci-tokenize", daemon=True)
        worker.start()
        try:
            while True:
                entry = ready.get()
                if entry is None:
                    return
                if isinstance(entry, BaseException):
                    raise entry
                chunk, tokens, plan = entry
                yield chunk, predictions(tokens, self._infer(plan))
        finally:
            stop.set()
            worker.join()

    def predict_words(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Metaphor probability of each given word (pre-split text, as in VUA): its first token's score."""
        if not self.metaphor:
            raise ValueError("this engine was built without its metaphor path (metaphor=False)")
        if not sentences:
            return []
        words = [list(s) for s in sentences]
        encodings = self._tokenize.backend.encode_batch(words, is_pretokenized=True, add_special_tokens=False)
        ids, offsets, word_ids = _flatten(encodings)
        token_probs = self._infer(self._plan(ids, offsets)).token_probs
        first_tokens, word_counts = _first_tokens(word_ids, offsets, [len(w) for w in words])
        bounds = np.concatenate([[0], np.cumsum(word_counts)])
        out = []
        for i in range(len(sentences)):
            first = first_tokens[bounds[i] : bounds[i + 1]]
            # A word the tokenizer drops entirely (e.g. a control character) scores 0.
            out.append(np.where(first >= 0, token_probs[np.maximum(first, 0)], 0.0).astype(np.float32))
        return out

    # -- planning (runs in the producer thread) --------------------------------------------------

    def _plan(self, flat: np.ndarray, offsets: np.ndarray) -> _Plan:
        windows = self._windows(np.diff(offsets))
        read = mode_windows(windows[0], self.config.mode_windows)
        if not self.metaphor:  # the windows the mode head does not read would only feed the metaphor head
            windows = tuple(col[read] for col in windows)
            read = read[read]
        win_item, _, win_len, own_start, own_end = windows
        groups = self._groups(win_len + 2)
        return _Plan(
            n_texts=len(offsets) - 1,
            n_tokens=int(offsets[-1]),
            win_item=win_item,
            win_weight=np.where(read, np.maximum(own_end - own_start, 1), 0),
            batches=[self._pack(group, windows, read, flat, offsets) for group in groups],
        )

    def _windows(self, counts: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per window: text, first token, body length, owned span. Short texts vectorized, long ones by `cut`."""
        cfg = self.config
        body = cfg.max_length - 2
        n = len(counts)
        short = counts <= body
        item = [np.flatnonzero(short)]
        first = [np.zeros(int(short.sum()), dtype=np.int64)]
        length = [counts[short]]
        own_s = [np.zeros(int(short.sum()), dtype=np.int64)]
        own_e = [counts[short]]
        for i in np.flatnonzero(~short):
            # `cut` needs ids only for their count here; the real ids are gathered at packing time.
            for w in cut(int(i), [0] * int(counts[i]), cfg.max_length, cfg.stride, 0, 0):
                item.append(np.array([w.item]))
                first.append(np.array([w.first]))
                length.append(np.array([len(w.ids) - 2]))
                own_s.append(np.array([w.own_start]))
                own_e.append(np.array([w.own_end]))
        columns = tuple(np.concatenate(parts).astype(np.int64) for parts in (item, first, length, own_s, own_e))
        # A text's windows must be combined in a fixed order whatever the chunk: sort by (text, first token).
        order = np.lexsort((columns[1], columns[0])) if n else np.zeros(0, dtype=np.int64)
        return tuple(col[order] for col in columns)

    def _groups(self, lengths: np.ndarray) -> list[np.ndarray]:
        """Windows sorted by length and cut into batches: under the token budget, and mostly real tokens.

        A batch's width is its longest row, so a batch spanning short and long windows is mostly padding.
        A new batch starts when the next window would break the budget, or when the batch is already big
        enough to run efficiently (`min_batch_tokens`) and adding the window would drop its share of real
        tokens below `min_fill`.
        """
        order = np.argsort(lengths, kind="stable")
        ordered = lengths[order].tolist()
        groups: list[np.ndarray] = []
        start = real = 0
        for k, length in enumerate(ordered):
            rows = k - start
            if rows:
                padded = (rows + 1) * self._width(length)  # sorted ascending: the newest window is the widest
                big_enough = rows * ordered[k - 1] >= self.min_batch_tokens
                if padded > self.max_tokens or (big_enough and real + length < self.min_fill * padded):
                    groups.append(order[start:k])
                    start, real = k, 0
            real += length
        if start < len(order):
            groups.append(order[start:])
        return groups

    def _width(self, longest: int) -> int:
        """A batch's width: its longest window rounded up to `WIDTH_MULTIPLE`, never past the window size."""
        return min(-(-longest // WIDTH_MULTIPLE) * WIDTH_MULTIPLE, max(longest, self.config.max_length))

    def _pack(
        self,
        group: np.ndarray,
        windows: tuple[np.ndarray, ...],
        read: np.ndarray,
        flat: np.ndarray,
        offsets: np.ndarray,
    ) -> _Batch:
        win_item, win_first, win_len, own_start, own_end = (col[group] for col in windows)
        width = self._width(int(win_len.max()) + 2)
        col = np.arange(width, dtype=np.int64)[None, :]
        body = (col >= 1) & (col <= win_len[:, None])
        # Column c (1-based after [CLS]) holds the text's token first + c - 1.
        token = offsets[win_item][:, None] + win_first[:, None] + col - 1
        ids = np.where(body, flat[np.clip(token, 0, max(len(flat) - 1, 0))] if len(flat) else 0, self._pad)
        ids[:, 0] = self._cls
        ids[np.arange(len(group)), win_len + 1] = self._sep
        mask = col <= (win_len + 1)[:, None]
        owned = (col - 1 + win_first[:, None] >= own_start[:, None]) & (col - 1 + win_first[:, None] < own_end[:, None])
        owned &= body
        src = np.flatnonzero(owned)
        dst = token.reshape(-1)[src]
        ids_t = torch.from_numpy(ids)
        mask_t = torch.from_numpy(mask.astype(np.int64))
        src_t = torch.from_numpy(src)
        rows = None if read[group].all() else torch.from_numpy(np.flatnonzero(read[group]))
        if self.device.type == "cuda":
            ids_t, mask_t, src_t = ids_t.pin_memory(), mask_t.pin_memory(), src_t.pin_memory()
        return _Batch(ids_t, mask_t, group, rows, src_t, dst)

    # -- compute (runs in the caller's thread) ---------------------------------------------------

    @torch.inference_mode()
    def _infer(self, plan: _Plan) -> Scores:
        cfg = self.config
        n_modes = len(cfg.modes)
        task = None if self.metaphor else "modes"
        window_probs: list[torch.Tensor] = []
        token_vals: list[torch.Tensor] = []
        for batch in plan.batches:
            ids = batch.ids.to(self.device, non_blocking=True)
            mask = batch.mask.to(self.device, non_blocking=True)
            src = batch.src.to(self.device, non_blocking=True)
            rows = None if batch.mode_rows is None else batch.mode_rows.to(self.device, non_blocking=True)
            mode_logits, token_logits = self._forward(ids, mask, task=task, mode_rows=rows)
            window_probs.append(torch.softmax(mode_logits.float() / cfg.temperature, dim=-1))
            if token_logits is not None:
                token_vals.append(torch.sigmoid(token_logits.float()).reshape(-1)[src])
        # One device-to-host copy per chunk: batches above were queued without waiting on the device.
        probs_sorted = torch.cat(window_probs).cpu().numpy() if window_probs else np.zeros((0, n_modes), np.float32)
        vals = torch.cat(token_vals).cpu().numpy() if token_vals else np.zeros(0, np.float32)
        read = [b.windows if b.mode_rows is None else b.windows[b.mode_rows.numpy()] for b in plan.batches]
        window_order = np.concatenate(read) if read else np.zeros(0, int)
        probs = np.zeros((len(plan.win_item), n_modes), dtype=np.float64)  # unread windows weigh 0
        probs[window_order] = probs_sorted
        token_probs = np.full(plan.n_tokens, 0.0 if self.metaphor else np.nan, dtype=np.float32)
        if plan.batches and self.metaphor:
            token_probs[np.concatenate([b.dst for b in plan.batches])] = vals
        combined = np.zeros((plan.n_texts, n_modes), dtype=np.float64)
        # Windows are sorted by (text, first token), so this sum runs in the same order in every chunk.
        np.add.at(combined, plan.win_item, plan.win_weight[:, None] * probs)
        if plan.n_texts:
            combined /= combined.sum(axis=1, keepdims=True)
        return Scores(combined, token_probs, np.bincount(plan.win_item, minlength=plan.n_texts))


def mode_windows(win_item: np.ndarray, k: int) -> np.ndarray:
    """Which windows the mode head reads: all of a text with at most `k` (0: no limit), else `k` evenly spaced
    from its first to its last. `win_item` is sorted (a text's windows are consecutive)."""
    if k <= 0 or len(win_item) == 0:
        return np.ones(len(win_item), dtype=bool)
    starts = np.flatnonzero(np.r_[True, win_item[1:] != win_item[:-1]])
    counts = np.diff(np.r_[starts, len(win_item)])
    n = np.repeat(counts, counts)
    rank = np.arange(len(win_item)) - np.repeat(starts, counts)
    if k == 1:
        return rank == 0
    spacing = (np.maximum(n, k + 1) - 1) / (k - 1)  # texts of at most k windows are read whole below
    # Rank r is read when it is the rounding of some j * spacing; spacing > 1, so each j gives its own rank.
    return (n <= k) | (np.floor(np.floor(rank / spacing + 0.5) * spacing + 0.5) == rank)


def _plain_backend(tokenizer: Any) -> Any:
    """The fast tokenizer's Rust backend without the truncation and padding its tokenizer.json may carry."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise TypeError("the engine needs a fast (Rust) tokenizer")
    backend = copy.deepcopy(backend)
    backend.no_truncation()
    backend.no_padding()
    return backend


def _flatten(encodings: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flat token ids, per-text offsets and flat word ids (-1 for tokens of no word) of a batch of encodings."""
    counts = np.fromiter((len(e) for e in encodings), dtype=np.int64, count=len(encodings))  # no list of ids
    offsets = np.zeros(len(encodings) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    ids = np.fromiter(chain.from_iterable(e.ids for e in encodings), dtype=np.int64, count=total)
    try:
        word_ids = np.fromiter(chain.from_iterable(e.word_ids for e in encodings), dtype=np.int64, count=total)
    except TypeError:  # a None among them (special tokens)
        flat = chain.from_iterable(e.word_ids for e in encodings)
        word_ids = np.fromiter((-1 if w is None else w for w in flat), dtype=np.int64, count=total)
    return ids, offsets, word_ids


def _words(word_ids: np.ndarray, spans: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, ...]:
    """Group each text's sub-word tokens into words (as `windows.words_of`).

    Returns, per word, its character start and end and its first token (an index into its text's tokens),
    and the (n_texts + 1,) offsets of each text's words.
    """
    n_texts = len(offsets) - 1
    valid = np.flatnonzero(word_ids >= 0)
    text_of = np.searchsorted(offsets, valid, side="right") - 1
    wid = word_ids[valid]
    new = np.ones(len(valid), dtype=bool)
    new[1:] = (wid[1:] != wid[:-1]) | (text_of[1:] != text_of[:-1])
    starts_at = np.flatnonzero(new)
    starts = spans[valid[starts_at], 0]
    ends = np.maximum.reduceat(spans[valid, 1], starts_at) if len(starts_at) else np.zeros(0, np.int64)
    text_of_word = text_of[starts_at]
    first_token = valid[starts_at] - offsets[text_of_word]
    word_offsets = np.searchsorted(text_of_word, np.arange(n_texts + 1))
    return starts, ends, first_token, word_offsets


def _first_tokens(word_ids: np.ndarray, offsets: np.ndarray, n_words: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """For pre-split input: flat index of each given word's first token (-1 for words with no token)."""
    counts = np.array(n_words, dtype=np.int64)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    first = np.full(int(bounds[-1]), -1, dtype=np.int64)
    valid = np.flatnonzero(word_ids >= 0)
    text_of = np.searchsorted(offsets, valid, side="right") - 1
    target = bounds[text_of] + word_ids[valid]
    # Assign in reverse so the earliest token of each word is the one that stays.
    first[target[::-1]] = valid[::-1]
    return first, counts
