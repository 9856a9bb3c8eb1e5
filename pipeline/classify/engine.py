"""The inference engine every command uses: texts in, mode probabilities and word metaphor scores out.

Why it is fast: one tokenizer call per chunk (Rust, no per-item Python in the hot loop), windows
sorted by length and packed under a token budget (little padding, big batches of short texts),
`torch.inference_mode`, SDPA attention, bf16 where the device supports it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.classify.model import SeciModel, load_tokenizer
from pipeline.classify.windows import Window, Words, cut, words_of

log = logging.getLogger(__name__)


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


class Engine:
    """Batched inference over a `SeciModel`; `predict` is the one entry point."""

    def __init__(
        self,
        model: SeciModel,
        tokenizer,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        max_tokens: int = 16384,
    ) -> None:
        self.model = model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = device
        self.dtype = dtype
        self.max_tokens = max_tokens
        self.config = model.config

    @classmethod
    def from_dir(cls, directory: Path, device: str = "auto", dtype: str = "auto", max_tokens: int = 16384) -> Engine:
        dev = pick_device(device)
        model = SeciModel.load(directory, dev)
        chosen = pick_dtype(dev) if dtype == "auto" else getattr(torch, dtype)
        return cls(model, load_tokenizer(model.config), dev, chosen, max_tokens)

    def batches(self, windows: list[Window]) -> list[list[int]]:
        """Indices of windows grouped so that (count x longest) stays under the token budget."""
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].ids))
        groups: list[list[int]] = []
        current: list[int] = []
        for i in order:
            longest = len(windows[i].ids)  # sorted ascending, so the newest is the longest
            if current and (len(current) + 1) * longest > self.max_tokens:
                groups.append(current)
                current = []
            current.append(i)
        if current:
            groups.append(current)
        return groups

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Mode probabilities and word-level metaphor scores for each text, whatever its length."""
        if not texts:
            return []
        enc = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, truncation=False)
        probs, token_probs, n_windows = self._infer(enc["input_ids"])
        out = []
        for i in range(len(texts)):
            words = words_of(enc.word_ids(i), enc["offset_mapping"][i])
            out.append(
                Prediction(
                    probabilities=probs[i],
                    words=words,
                    word_scores=token_probs[i][words.first_token],
                    n_tokens=len(enc["input_ids"][i]),
                    n_windows=int(n_windows[i]),
                )
            )
        return out

    def predict_words(self, sentences: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Metaphor probability of each given word (pre-split text, as in VUA): its first token's score."""
        if not sentences:
            return []
        enc = self.tokenizer([list(s) for s in sentences], is_split_into_words=True, add_special_tokens=False)
        _, token_probs, _ = self._infer(enc["input_ids"])
        out = []
        for i, words in enumerate(sentences):
            first = np.full(len(words), -1, dtype=np.int64)
            for t, w in enumerate(enc.word_ids(i)):
                if w is not None and first[w] < 0:
                    first[w] = t
            # A word the tokenizer drops entirely (e.g. a control character) scores 0.
            out.append(np.where(first >= 0, token_probs[i][np.maximum(first, 0)], 0.0))
        return out

    @torch.inference_mode()
    def _infer(self, token_ids: list[list[int]]) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """Per text: combined mode probabilities, per-token metaphor probabilities, window count."""
        cfg = self.config
        windows: list[Window] = []
        for i, ids in enumerate(token_ids):
            windows.extend(
                cut(i, ids, cfg.max_length, cfg.stride, self.tokenizer.cls_token_id, self.tokenizer.sep_token_id)
            )
        mode_probs = np.zeros((len(windows), len(cfg.modes)), dtype=np.float32)
        token_probs = [np.zeros(len(ids), dtype=np.float32) for ids in token_ids]
        pad = self.tokenizer.pad_token_id
        autocast = self.dtype != torch.float32
        for group in self.batches(windows):
            width = max(len(windows[i].ids) for i in group)
            ids = np.full((len(group), width), pad, dtype=np.int64)
            mask = np.zeros((len(group), width), dtype=np.int64)
            for row, i in enumerate(group):
                n = len(windows[i].ids)
                ids[row, :n] = windows[i].ids
                mask[row, :n] = 1
            input_ids = torch.from_numpy(ids).to(self.device, non_blocking=True)
            attention = torch.from_numpy(mask).to(self.device, non_blocking=True)
            with torch.autocast(self.device.type, dtype=self.dtype, enabled=autocast):
                mode_logits, token_logits = self.model(input_ids, attention)
            probs = torch.softmax(mode_logits.float() / cfg.temperature, dim=-1).cpu().numpy()
            scores = torch.sigmoid(token_logits.float()).cpu().numpy()
            for row, i in enumerate(group):
                w = windows[i]
                mode_probs[i] = probs[row]
                # Token j of the text sits at column j - w.first + 1 (after [CLS]).
                a, b = w.own_start, w.own_end
                token_probs[w.item][a:b] = scores[row, a - w.first + 1 : b - w.first + 1]
        combined = np.zeros((len(token_ids), len(cfg.modes)), dtype=np.float64)
        n_windows = np.zeros(len(token_ids), dtype=np.int64)
        for k, w in enumerate(windows):
            combined[w.item] += max(w.weight, 1) * mode_probs[k]
            n_windows[w.item] += 1
        combined /= combined.sum(axis=1, keepdims=True)
        return combined, token_probs, n_windows
