"""Intervals on mode shares: how far a share could be off, from the sample and from the classifier.

A share in the report is the mean of the items' probabilities for the mode (`share_<mode>`). Two
things make it uncertain, and the interval covers both:

1. **Sampling**: a team or period is a handful of items; another month would have given others.
   A percentile bootstrap over items (resampling items with replacement, `DRAWS` times) gives the
   spread of the share. Above `EXACT_BOOTSTRAP_MAX` items the normal approximation (mean ± z·sd/√n)
   is used instead: the bootstrap and it agree there, and it costs nothing on a million items.
2. **The classifier's errors**: the model card's confusion matrix (true mode by predicted mode, on
   held-out items from organizations the model never saw) says, for items *predicted* as mode j, how
   often each mode was the true one. Each draw resamples the predicted labels (multinomial on the
   observed counts), draws those rates from a Dirichlet posterior on the matrix's column j (counts
   + 1/2, so that a small column is uncertain, not certain), and draws each predicted item's true
   mode from those rates. Its percentiles are the error-adjusted interval.

The reported interval is the union of the two. Why the union and not the adjusted interval alone:
the rates "true mode given predicted mode" depend on the mix of modes in the held-out set, and an
organization's own mix differs, so the adjusted interval may be shifted; the union keeps the plain
share inside its interval and widens it by what the measured errors allow, which is the honest
reading ("between lo and hi, given how often the labels are wrong"). Without a confusion matrix
(no model card found) only the sampling interval is given, and the report says so.

Draws use a fixed seed, so a report is reproducible.
"""

from __future__ import annotations

import numpy as np

DRAWS = 400
LEVEL = 0.90
EXACT_BOOTSTRAP_MAX = 2000
SEED = 25
_Z90 = 1.6448536269514722


def share_intervals(
    probs: np.ndarray,
    predicted: np.ndarray | None = None,
    confusion: np.ndarray | None = None,
    *,
    draws: int = DRAWS,
    level: float = LEVEL,
    seed: int = SEED,
) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) per mode for the mean of `probs` (n x k), rules in the module docstring.

    `predicted` holds each item's predicted mode index (argmax of `probs` when None); `confusion` is
    k x k, rows true and columns predicted. With no items both bounds are NaN.
    """
    probs = np.asarray(probs, dtype=float)
    n, k = probs.shape if probs.ndim == 2 else (0, 0)
    if n == 0:
        return np.full(k or 4, np.nan), np.full(k or 4, np.nan)
    rng = np.random.default_rng(seed)
    tail = (1 - level) / 2
    point = probs.mean(axis=0)
    if n <= EXACT_BOOTSTRAP_MAX:
        picks = rng.integers(0, n, size=(draws, n))
        means = probs[picks].mean(axis=1)
        low, high = np.quantile(means, [tail, 1 - tail], axis=0)
    else:
        z = _Z90 if level == LEVEL else _z(level)
        half = z * probs.std(axis=0, ddof=1) / np.sqrt(n)
        low, high = point - half, point + half
    if confusion is not None:
        matrix = np.asarray(confusion, dtype=float)
        labels = probs.argmax(axis=1) if predicted is None else np.asarray(predicted, dtype=int)
        counts = np.bincount(labels, minlength=k)[:k]
        resampled = rng.multinomial(n, counts / n, size=draws)  # draws x k predicted counts
        # P(true = i | predicted = j) ~ Dirichlet(column j + 1/2), drawn per draw: draws x k(j) x k(i)
        alpha = matrix.T + 0.5
        rates = rng.gamma(alpha[None, :, :].repeat(draws, axis=0))
        rates /= rates.sum(axis=2, keepdims=True)
        # each predicted item's true mode drawn from those rates: the per-item chance, not only its mean
        true_counts = sum(rng.multinomial(resampled[:, j], rates[:, j, :]) for j in range(k))
        true_shares = np.asarray(true_counts, dtype=float) / n
        adj_low, adj_high = np.quantile(true_shares, [tail, 1 - tail], axis=0)
        low, high = np.minimum(low, adj_low), np.maximum(high, adj_high)
    low = np.clip(np.minimum(low, point), 0.0, 1.0)
    high = np.clip(np.maximum(high, point), 0.0, 1.0)
    return low, high


def _z(level: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)
