"""Compare two mode classifiers on the same labelled file, with the spread a new organization would see.

Both models label every item of `--data` (dev-unseen by default). The figures that decide a model, macro-F1,
accuracy and the group mix distance (how far each group's predicted mode mix is from its labelled one), are
printed for each model with their difference; the difference's 95% interval comes from a paired bootstrap over
whole groups (teams, mailboxes, series, collections drawn with replacement, both models scored on the same
draw), since items of one group are not independent. A difference whose interval holds 0 is inside the spread:
"simple beats clever" keeps the simpler or the shipped model then.

    python scripts/compare_models.py --a models/seci-fast --b runs/modes-v9
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.classify.engine import Engine
from pipeline.train.data import load_labelled


def figures(confusion: np.ndarray, distances: np.ndarray, modes: tuple[str, ...]) -> dict[str, float]:
    """Macro-F1, accuracy and each mode's F1 from a summed confusion matrix (gold rows, predicted columns);
    the group mix distance as the mean over groups, as `seci evaluate` reports it."""
    tp = np.diag(confusion).astype(float)
    f1 = np.divide(2 * tp, confusion.sum(0) + confusion.sum(1), out=np.zeros_like(tp), where=tp > 0)
    mix = float(np.nanmean(distances)) if np.isfinite(distances).any() else float("nan")
    return {
        "macro-F1": float(f1.mean()),
        "accuracy": float(tp.sum() / confusion.sum()),
        **{f"{mode} F1": float(f) for mode, f in zip(modes, f1, strict=True)},
        "group mix": mix,
    }


def per_group(gold: np.ndarray, probs: np.ndarray, rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each group's confusion matrix and mix distance (NaN under 10 items, which `group_mix_error` leaves out)."""
    k = probs.shape[1]
    pred = probs.argmax(1)
    confusion = np.zeros((len(rows), k, k), dtype=np.int64)
    distance = np.full(len(rows), np.nan)
    for g, r in enumerate(rows):
        np.add.at(confusion[g], (gold[r], pred[r]), 1)
        if len(r) >= 10:
            read = np.bincount(gold[r], minlength=k) / len(r)
            distance[g] = 0.5 * np.abs(probs[r].mean(0) - read).sum()
    return confusion, distance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", type=Path, required=True, help="the model to beat (e.g. the shipped one)")
    parser.add_argument("--b", type=Path, required=True, help="the candidate")
    parser.add_argument("--data", type=Path, default=Path("data/seci/dev.jsonl"))
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    engines = [Engine.from_dir(path) for path in (args.a, args.b)]
    modes = engines[0].config.modes
    if engines[1].config.modes != modes:
        raise SystemExit("the two models label different modes")
    test = load_labelled([args.data], modes)
    if test.groups is None:
        raise SystemExit(f"{args.data} has no groups to draw")
    gold = np.asarray(test.labels)
    groups = [str(g) for g in test.groups]
    probs = [np.stack([p.probabilities for p in engine.predict(test.texts)]) for engine in engines]

    names = sorted(set(groups))
    rows = [np.flatnonzero(np.array(groups) == name) for name in names]
    tables = [per_group(gold, p, rows) for p in probs]
    full = [figures(c.sum(0), d, modes) for c, d in tables]
    rng = np.random.default_rng(args.seed)
    diffs: dict[str, list[float]] = {key: [] for key in full[0]}
    for _ in range(args.rounds):
        drawn = rng.choice(len(names), size=len(names), replace=True)
        a, b = (figures(c[drawn].sum(0), d[drawn], modes) for c, d in tables)
        for key in diffs:
            diffs[key].append(b[key] - a[key])

    print(f"{args.data}: {len(gold)} items, {len(names)} groups; B - A, 95% interval of {args.rounds} group draws")
    print(f"{'':22} {'A':>8} {'B':>8} {'B - A':>8}  interval")
    for key in full[0]:
        low, high = np.nanpercentile(diffs[key], [2.5, 97.5])
        a, b = full[0][key], full[1][key]
        print(f"{key:22} {a:8.3f} {b:8.3f} {b - a:+8.3f}  [{low:+.3f}, {high:+.3f}]")
    print(f"A: {args.a}\nB: {args.b}\n(a lower group mix distance is better)")


if __name__ == "__main__":
    main()
