"""Classification metrics, calibration error and temperature scaling."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


def classification_report(gold: Sequence[int], probs: np.ndarray, labels: Sequence[str]) -> dict:
    """Accuracy, per-class precision/recall/F1, macro-F1, the confusion matrix and calibration error."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    gold = np.asarray(gold)
    pred = probs.argmax(axis=1)
    k = range(len(labels))
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=list(k), zero_division=0)
    return {
        "n": len(gold),
        "accuracy": float((pred == gold).mean()) if len(gold) else 0.0,
        "macro_f1": float(f.mean()),
        "per_class": {
            labels[i]: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i in k
        },
        "confusion": {"labels": list(labels), "matrix": confusion_matrix(gold, pred, labels=list(k)).tolist()},
        "ece": expected_calibration_error(gold, probs),
    }


def expected_calibration_error(gold: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """Top-label ECE with equal-width confidence bins."""
    if len(gold) == 0:
        return 0.0
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == gold
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        sel = (conf > lo) & (conf <= hi)
        if sel.any():
            ece += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def fit_temperature(gold: Sequence[int], probs: np.ndarray) -> float:
    """The temperature T minimising dev NLL of softmax(log p / T), by a log-spaced grid search.

    `probs` are uncalibrated (T = 1) probabilities, so log p equals the logits up to a constant per
    row, which softmax ignores; a grid is robust and fast for one parameter.
    """
    logits = np.log(np.clip(probs, 1e-12, 1.0))
    gold = np.asarray(gold)
    best_t, best_nll = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(0.25), np.log(8.0), 121)):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll = -logp[np.arange(len(gold)), gold].mean()
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def apply_temperature(probs: np.ndarray, t: float) -> np.ndarray:
    z = np.log(np.clip(probs, 1e-12, 1.0)) / t
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def group_mix_error(gold: Sequence[int], probs: np.ndarray, groups: Sequence[str | None], min_items: int = 10) -> dict:
    """How far each group's predicted mode mix is from its labelled one: the total variation distance (half the
    L1 distance, 0 to 1) between the mean predicted probabilities and the label shares of a group's items, as a
    team timeline sums them. Groups with fewer than `min_items` items are left out (their mix is noise)."""
    gold = np.asarray(gold)
    k = probs.shape[1]
    per_group = {}
    for name in sorted({g for g in groups if g is not None}):
        rows = np.array([g == name for g in groups])
        if rows.sum() < min_items:
            continue
        read = np.bincount(gold[rows], minlength=k) / rows.sum()
        per_group[name] = {"items": int(rows.sum()), "distance": float(0.5 * np.abs(probs[rows].mean(0) - read).sum())}
    distances = [v["distance"] for v in per_group.values()]
    return {"mean": float(np.mean(distances)) if distances else None, "groups": per_group}


def cross_fitted_ece(gold: Sequence[int], probs: np.ndarray, groups: Sequence[str | None], temperature: float) -> float:
    """The calibration error a new organization would see when the temperature was fitted on *other* groups.

    `probs` were scaled by `temperature`, fitted on all of these items; undo that, split the groups in two
    (alternately, in sorted order), fit a temperature on each half and measure the other half with it."""
    gold = np.asarray(gold)
    raw = apply_temperature(probs, 1.0 / temperature)  # softmax(log p * T): the unscaled probabilities
    names = sorted({str(g) for g in groups})
    half = np.array([names.index(str(g)) % 2 for g in groups])
    errors, weights = [], []
    for fold in (0, 1):
        fit, held = half != fold, half == fold
        if not fit.any() or not held.any():
            continue
        t = fit_temperature(gold[fit], raw[fit])
        errors.append(expected_calibration_error(gold[held], apply_temperature(raw[held], t)))
        weights.append(held.sum())
    return float(np.average(errors, weights=weights)) if errors else float("nan")
