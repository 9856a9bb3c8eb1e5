"""Fit a trained model's metaphor calibration (`model.metaphor_calibration`), after training.

Three parts, each fitted on what it may see:
1. the **lexical prior** (`word_prior`): for every vocabulary entry, how often a word starting with it was
   a metaphor in the training sentences (smoothed towards the overall rate, as a logit) and how often it
   was seen (log1p); gold labels only, never a teacher's;
2. the **POS tagger** (`pos_head`): a softmax regression from the metaphor path's token vectors to VUA-18's
   universal POS tags, on the training sentences that have them;
3. the **calibrator**: a logistic regression from (metaphor logit, prior, POS probabilities) to the gold
   label, on the dev sentences (VUA-18 val, read with their context), which nothing else trains on; the
   token threshold is then chosen on the same dev file, as for an uncalibrated model.

Both regressions are full-batch L-BFGS with a small L2 penalty, so a refit gives the same weights.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from pipeline.classify.model import CALIBRATION_FEATURES, SeciModel
from pipeline.train.examples import vua_examples

log = logging.getLogger(__name__)

PRIOR_SMOOTHING = 5.0  # pseudo-counts at the overall metaphor rate: a word seen once says little


@dataclass
class _Gathered:
    """Per labelled word (its first sub-word): the token id, raw metaphor logit, vector, gold label, POS id, and
    the example it comes from."""

    rows: torch.Tensor
    ids: torch.Tensor
    logits: torch.Tensor
    hidden: torch.Tensor
    labels: torch.Tensor
    tags: torch.Tensor


def word_prior(examples: Sequence[tuple[list[int], list, list[int]]], vocab_size: int) -> torch.Tensor:
    """(vocab, 2): each entry's smoothed metaphor rate as a logit and log1p of its count, from the labelled
    first sub-words of `examples` (token ids, 0/1 labels with -100 elsewhere, tags)."""
    seen = np.zeros(vocab_size)
    hits = np.zeros(vocab_size)
    for ids, labels, _ in examples:
        ids_a, labels_a = np.asarray(ids), np.asarray(labels, dtype=np.float64)
        keep = labels_a != -100
        np.add.at(seen, ids_a[keep], 1.0)
        np.add.at(hits, ids_a[keep], labels_a[keep])
    if not seen.sum():
        raise ValueError("no labelled words to build the lexical prior from")
    base = hits.sum() / seen.sum()
    rate = (hits + PRIOR_SMOOTHING * base) / (seen + PRIOR_SMOOTHING)
    return torch.tensor(np.stack([np.log(rate / (1 - rate)), np.log1p(seen)], axis=1), dtype=torch.float32)


@torch.no_grad()  # not inference_mode: the gathered tensors are then fitted with autograd
def _gather(model: SeciModel, examples, pad_id: int, dtype: torch.dtype, batch_size: int = 64) -> _Gathered:
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("rows", "ids", "logits", "hidden", "labels", "tags")}
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        rows = [examples[i] for i in chosen]
        width = max(len(r[0]) for r in rows)
        ids = torch.tensor([r[0] + [pad_id] * (width - len(r[0])) for r in rows])
        labels = torch.tensor([list(r[1]) + [-100] * (width - len(r[1])) for r in rows], dtype=torch.float32)
        tags = torch.tensor([r[2] + [-100] * (width - len(r[2])) for r in rows])
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            _, logits, hidden = model(ids, (ids != pad_id).long(), tokens=True, task="metaphor", calibrated=False)
        keep = labels != -100
        index = torch.tensor(chosen).unsqueeze(1).expand_as(ids)
        found = {"rows": index, "ids": ids, "logits": logits, "hidden": hidden, "labels": labels, "tags": tags}
        for key, value in found.items():
            parts[key].append(value[keep].float() if value.is_floating_point() else value[keep])
    return _Gathered(**{k: torch.cat(v) for k, v in parts.items()})


def _fit(layer: nn.Linear, x: torch.Tensor, loss: nn.Module, y: torch.Tensor, l2: float, steps: int = 200) -> float:
    """Fit `layer` alone to minimise loss(layer(x), y) + l2 |W|^2 with full-batch L-BFGS; the fitted data loss."""
    layer.requires_grad_(True)
    optimizer = torch.optim.LBFGS(layer.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        value = loss(layer(x).squeeze(-1), y) + l2 * layer.weight.pow(2).sum()
        value.backward()
        return value

    with torch.enable_grad():
        optimizer.step(closure)  # returns the loss it started from, not the fitted one
    layer.requires_grad_(False)
    with torch.no_grad():
        return float(loss(layer(x).squeeze(-1), y))


def fit_prior_and_tagger(
    model: SeciModel, tokenizer: Any, sentences: Sequence[Any], dtype: torch.dtype
) -> dict[str, Any]:
    """Set `word_prior` from the sentences' gold labels and fit `pos_head` on their POS tags (in place)."""
    if model.calibrator is None or model.pos_head is None:
        raise ValueError("the model has no metaphor calibration to fit (model.metaphor_calibration)")

    model.eval()
    examples = vua_examples(sentences, tokenizer, model.config.max_length, model.config.metaphor_context)
    model.word_prior.copy_(word_prior(examples, model.word_prior.shape[0]))
    seen = _gather(model, examples, tokenizer.pad_token_id, dtype)
    tagged = seen.tags != -100
    if not tagged.any():
        raise ValueError("metaphor calibration needs POS tags (VUA-18's pos_seq) in the training sentences")
    loss = _fit(model.pos_head, seen.hidden[tagged], nn.CrossEntropyLoss(), seen.tags[tagged], l2=1e-4)
    return {"train_words": int(seen.labels.numel()), "pos_tagged_words": int(tagged.sum()), "pos_train_loss": loss}


@dataclass
class DevWords:
    """The calibrator's inputs and gold label of every labelled dev word, and which sentence it is in."""

    features: torch.Tensor  # (words, CALIBRATION_FEATURES)
    labels: torch.Tensor  # (words,) 0/1
    sentence: torch.Tensor  # (words,) index into the dev sentences
    pos_accuracy: float | None  # of the fitted POS tagger, where the dev file has tags


def dev_words(
    model: SeciModel, tokenizer: Any, sentences: Sequence[Any], pool: Sequence[Any], dtype: torch.dtype
) -> DevWords:
    """Gather the calibrator's inputs on the dev sentences, read with their context (from `pool` too)."""

    cfg = model.config
    examples = vua_examples(sentences, tokenizer, cfg.max_length, cfg.metaphor_context, pool=pool)
    held = _gather(model, examples, tokenizer.pad_token_id, dtype)
    with torch.no_grad():
        features = model.calibration_features(held.ids, held.logits, held.hidden).float()
        tagged = held.tags != -100
        accuracy = (
            float((model.pos_head(held.hidden[tagged]).argmax(-1) == held.tags[tagged]).float().mean())
            if tagged.any()
            else None
        )
    return DevWords(features, held.labels, held.rows, accuracy)


def fit_calibrator(model: SeciModel, features: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Fit the calibrator (in place) from the identity; the log-loss of the raw and of the calibrated scores."""
    bce = nn.BCEWithLogitsLoss()
    model.reset_calibration()  # L-BFGS starts from the raw logit alone
    with torch.no_grad():
        before = float(bce(model.calibrator(features).squeeze(-1), labels))
    return before, _fit(model.calibrator, features, bce, labels, l2=1e-4)


def calibrate_metaphor(
    model: SeciModel,
    tokenizer: Any,
    train_sentences: Sequence[Any],
    dev_sentences: Sequence[Any],
    dev_pool: Sequence[Any],
    dtype: torch.dtype,
    seed: int,
) -> dict[str, Any]:
    """Fit the prior, the POS tagger and the calibrator of `model` in place; what was fitted, with scores."""
    torch.manual_seed(seed)
    fitted = fit_prior_and_tagger(model, tokenizer, train_sentences, dtype)
    held = dev_words(model, tokenizer, dev_sentences, dev_pool, dtype)
    loss_before, loss_after = fit_calibrator(model, held.features, held.labels)
    weights = model.calibrator.weight.detach()[0].tolist()
    report = {
        **fitted,
        "pos_train_loss": round(fitted["pos_train_loss"], 4),
        "pos_dev_accuracy": held.pos_accuracy,
        "dev_words": int(held.labels.numel()),
        # The dev log-loss of the metaphor probabilities: the raw head's, and the calibrated ones'.
        "dev_loss_uncalibrated": round(loss_before, 4),
        "dev_loss_calibrated": round(loss_after, 4),
        "weights": {name: round(w, 4) for name, w in zip(CALIBRATION_FEATURES, weights, strict=True)},
        "bias": round(float(model.calibrator.bias), 4),
        "prior_smoothing": PRIOR_SMOOTHING,
    }
    log.info(
        "metaphor calibration: POS tagger %.3f on dev, weights logit %.3f prior %.3f count %.3f",
        held.pos_accuracy or float("nan"),
        *weights[:3],
    )
    return report
