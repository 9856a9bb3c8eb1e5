"""Two stages tried on top of a mode model's probabilities on dev-unseen; neither was kept (modes.md).

1. Smoothing along a meeting: each meeting of dev-unseen is scored whole (`seci batch --metaphor off`, every
   segment, labelled or not) and an item's probabilities are combined with its neighbours' (forward-backward with
   a sticky transition matrix, or a weighted sum of log-probabilities or of probabilities).
2. A character n-gram model beside it: TF-IDF of character 2- to 5-grams and a logistic regression trained on
   train.jsonl, its log-probabilities mixed with the model's with weight w; w chosen on half of the groups and
   scored on the other half (10 random halvings, both ways), and a paired bootstrap over groups at w = 0.3.

    python docs/experiments/post_hoc.py --meetings > runs/dev-meetings.txt
    xargs seci batch --out runs/dev-meetings --format jsonl --metaphor off --no-text < runs/dev-meetings.txt
    python docs/experiments/post_hoc.py --model models/seci-fast --batch runs/dev-meetings/items.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

MODES = ("socialization", "externalization", "combination", "internalization")


def key(item_id: str) -> str:
    return item_id.split("/")[-1]  # QMSum ids carry the folder they were ingested from


def macro(gold: np.ndarray, probs: np.ndarray) -> str:
    f1 = f1_score(gold, probs.argmax(1), average=None, labels=range(4))
    return f"macro-F1 {f1.mean():.4f} (S {f1[0]:.3f} E {f1[1]:.3f} C {f1[2]:.3f} I {f1[3]:.3f})"


def forward_backward(p: np.ndarray, stay: float) -> np.ndarray:
    t = stay * np.eye(4) + (1 - stay) / 4
    alpha, beta = np.zeros_like(p), np.ones_like(p)
    alpha[0] = p[0] / p[0].sum()
    for i in range(1, len(p)):
        a = (alpha[i - 1] @ t) * p[i]
        alpha[i] = a / a.sum()
    for i in range(len(p) - 2, -1, -1):
        b = t @ (p[i + 1] * beta[i + 1])
        beta[i] = b / b.sum()
    q = alpha * beta
    return q / q.sum(1, keepdims=True)


def neighbours(p: np.ndarray, w: float, log: bool) -> np.ndarray:
    x = np.log(p + 1e-9) if log else p.copy()
    y = x.copy()
    y[1:] += w * x[:-1]
    y[:-1] += w * x[1:]
    y = np.exp(y - y.max(1, keepdims=True)) if log else y
    return y / y.sum(1, keepdims=True)


def adjacent(path: Path) -> None:
    """How often two labelled segments next to each other in a meeting have the same mode, against chance."""
    modes = {}
    for line in path.open(encoding="utf-8"):
        row = json.loads(line)
        meeting, _, segment = key(row["id"]).partition("#seg")
        if segment.isdigit():
            modes[(meeting, int(segment))] = row["mode"]
    pairs = [(m, modes[(t, s + 1)]) for (t, s), m in modes.items() if (t, s + 1) in modes]
    share = np.array(list(Counter(modes.values()).values())) / len(modes)
    same = sum(a == b for a, b in pairs) / len(pairs)
    print(f"{path}: {len(pairs)} adjacent labelled pairs, the same mode {same:.2f}, by chance {(share**2).sum():.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", type=Path, default=Path("data/seci/dev.jsonl"))
    parser.add_argument("--train", type=Path, default=Path("data/seci/train.jsonl"))
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--meetings", action="store_true", help="print the meeting files of --dev, then stop")
    parser.add_argument("--adjacent", action="store_true", help="how often adjacent labelled segments agree, then stop")
    parser.add_argument("--model", type=Path)
    parser.add_argument("--batch", type=Path, help="items.jsonl of the meetings scored whole")
    args = parser.parse_args()
    dev = [json.loads(line) for line in args.dev.open(encoding="utf-8")]
    if args.meetings:
        print(*sorted({str(args.shared / r["provenance"]["path"]) for r in dev if r["source"] == "meeting"}))
        return

    if args.adjacent:
        for path in (args.dev, args.train):
            adjacent(path)
        return

    from pipeline.classify.engine import Engine

    gold = np.array([MODES.index(r["mode"]) for r in dev])
    groups = np.array([r["group"] for r in dev])
    base = np.stack([p.probabilities for p in Engine.from_dir(args.model).predict([r["text"] for r in dev])])
    print("model:", macro(gold, base))

    threads: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for line in args.batch.open(encoding="utf-8"):
        item = json.loads(line)
        threads[(item["path"], item["thread"])].append(item)
    where: dict[str, tuple[tuple[str, str], int]] = {}
    for thread, items in threads.items():
        items.sort(key=lambda it: it["position"])
        where.update({key(it["id"]): (thread, n) for n, it in enumerate(items)})
    probs = {t: np.array([[it["probabilities"][m] for m in MODES] for it in items]) for t, items in threads.items()}
    found = [n for n, r in enumerate(dev) if key(r["id"]) in where]
    print(f"1. smoothing: {len(found)} dev-unseen items in {len(threads)} meetings scored whole")
    stages = {f"forward-backward, stay {s}": (lambda p, s=s: forward_backward(p, s)) for s in (0.2, 0.4, 0.6, 0.8)}
    stages |= {
        f"log-probabilities, neighbour weight {w}": (lambda p, w=w: neighbours(p, w, True))
        for w in (0.1, 0.2, 0.3, 0.5)
    }
    stages |= {
        f"probabilities, neighbour weight {w}": (lambda p, w=w: neighbours(p, w, False)) for w in (0.2, 0.5, 1.0)
    }
    for name, stage in stages.items():
        smoothed = {t: stage(p) for t, p in probs.items()}
        out = base.copy()
        for n in found:
            thread, position = where[key(dev[n]["id"])]
            out[n] = smoothed[thread][position]
        print(f"   {name}: {macro(gold, out)}")

    train = [json.loads(line) for line in args.train.open(encoding="utf-8")]
    vectorizer = TfidfVectorizer(
        sublinear_tf=True, min_df=2, analyzer="char_wb", ngram_range=(2, 5), max_features=300000
    )
    x = vectorizer.fit_transform([r["text"] for r in train])
    lexical = LogisticRegression(C=4.0, class_weight="balanced", max_iter=3000)
    lexical.fit(x, [MODES.index(r["mode"]) for r in train])
    chars = lexical.predict_proba(vectorizer.transform([r["text"] for r in dev]))
    print("2. character n-grams alone:", macro(gold, chars))

    def mixed(w: float) -> np.ndarray:
        q = np.exp((1 - w) * np.log(base + 1e-9) + w * np.log(chars + 1e-9))
        return q / q.sum(1, keepdims=True)

    def score(p: np.ndarray, rows: np.ndarray) -> float:
        return f1_score(gold[rows], p[rows].argmax(1), average="macro", labels=range(4))

    names = np.unique(groups)
    rng = np.random.default_rng(0)
    weights, gains = np.arange(0, 0.65, 0.05), []
    for _ in range(10):
        half = np.isin(groups, rng.permutation(names)[: len(names) // 2])
        for fit, test in ((half, ~half), (~half, half)):
            w = max(weights, key=lambda w: score(mixed(w), np.flatnonzero(fit)))
            gains.append(score(mixed(w), np.flatnonzero(test)) - score(base, np.flatnonzero(test)))
    print(f"   w chosen on half the groups, gain on the other half: {np.mean(gains):+.3f} +- {np.std(gains):.3f}")
    rows = [np.flatnonzero(groups == name) for name in names]
    everything = np.arange(len(gold))
    diffs = []
    for _ in range(1000):
        drawn = np.concatenate([rows[i] for i in rng.choice(len(rows), len(rows))])
        diffs.append(score(mixed(0.3), drawn) - score(base, drawn))
    low, high = np.percentile(diffs, [2.5, 97.5])
    gain = score(mixed(0.3), everything) - score(base, everything)
    print(f"   w = 0.3: {macro(gold, mixed(0.3))}; difference {gain:+.3f} [{low:+.3f}, {high:+.3f}]")
    for name, p in (("model", base), ("w = 0.3", mixed(0.3))):
        mix = [
            0.5 * np.abs(p[r].mean(0) - np.bincount(gold[r], minlength=4) / len(r)).sum() for r in rows if len(r) >= 10
        ]
        print(f"   group mix distance, {name}: {np.mean(mix):.3f}")


if __name__ == "__main__":
    main()
