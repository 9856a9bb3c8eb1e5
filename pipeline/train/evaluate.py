"""Evaluate a model on labelled data, with baselines computed in the same run on the same data.

- task `seci`: accuracy, per-class precision/recall/F1, macro-F1, confusion matrix and calibration
  error; baselines: the training data's majority class, and TF-IDF + logistic regression trained on
  the model's own training data (read from its `training.json`).
- task `metaphor`: on a word-level file (VUA-18 CSV) the metaphor class's token precision, recall
  and F1; on a verb-level file (VUA-verb, MOH-X, TroFi) the same over target verbs only; on a
  labelled SECI JSONL file, the item-level deliberate-metaphor flag against its `metaphor` labels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.classify.engine import Engine
from pipeline.train.data import Labelled, load_labelled
from pipeline.train.metrics import classification_report, cross_fitted_ece, group_mix_error

TASKS = ("seci", "metaphor")


def evaluate(
    model_dir: Path, data: Path, task: str = "seci", device: str = "auto", context: Sequence[Path] = ()
) -> dict[str, Any]:
    """Score a model on labelled data. `context`: metaphor files whose sentences a VUA file's sentences may
    read as preceding discourse (their labels are not used), as training reads VUA-18 val."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}")
    if context and (task != "metaphor" or data.suffix.lower() in (".jsonl", ".json", ".parquet")):
        raise ValueError("context files apply to word-level metaphor files only (--task metaphor, a VUA-style CSV)")
    engine = Engine.from_dir(model_dir, device=device)
    if task == "seci":
        return evaluate_modes(engine, model_dir, data)
    if data.suffix.lower() in (".jsonl", ".json", ".parquet"):
        return evaluate_deliberate(engine, data)
    return evaluate_words(engine, data, context)


def evaluate_modes(engine: Engine, model_dir: Path, data: Path) -> dict[str, Any]:
    modes = engine.config.modes
    test = load_labelled([data], modes)
    probs = np.stack([p.probabilities for p in engine.predict(test.texts)])
    report: dict[str, Any] = {"task": "seci", "data": str(data), "model": _model_name(engine)}
    report["model_metrics"] = classification_report(test.labels, probs, modes)
    if test.groups is not None:
        report["model_metrics"]["group_mix"] = group_mix_error(test.labels, probs, test.groups)
        # Honest off-domain calibration where the temperature was fitted on these very items (dev-unseen).
        report["model_metrics"]["ece_cross_fitted"] = cross_fitted_ece(
            test.labels, probs, test.groups, engine.config.temperature
        )
    train_files = _training_files(model_dir)
    if train_files:
        train = load_labelled(train_files, modes)
        report["baselines"] = baselines(train, test, modes)
    else:
        report["baselines"] = {"note": "the model's training data was not found; no baselines"}
    return report


def baselines(train: Labelled, test: Labelled, modes: tuple[str, ...]) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    majority = int(np.bincount(train.labels, minlength=len(modes)).argmax())
    onehot = np.zeros((len(test), len(modes)))
    onehot[:, majority] = 1.0
    tfidf = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=50000),
        LogisticRegression(max_iter=2000, class_weight="balanced", C=4.0, random_state=0),
    )
    tfidf.fit(train.texts, train.labels)
    proba = np.zeros((len(test), len(modes)))
    proba[:, tfidf.classes_] = tfidf.predict_proba(test.texts)
    return {
        "majority": {"label": modes[majority], **classification_report(test.labels, onehot, modes)},
        "tfidf_logreg": classification_report(test.labels, proba, modes),
    }


def word_probabilities(engine: Engine, sentences: Sequence[Any], pool: Sequence[Any] = ()) -> list[list[float]]:
    """Each word's metaphor probability, each sentence read after the context the model was trained with
    (preceding sentences of its text, from the same file or from `pool`)."""
    from pipeline.train.vua import preceding_context

    context = preceding_context(sentences, engine.config.metaphor_context, pool)
    scored = engine.predict_words([c + s.words for c, s in zip(context, sentences, strict=True)])
    return [p[len(c) :].tolist() for p, c in zip(scored, context, strict=True)]


def evaluate_words(engine: Engine, data: Path, context: Sequence[Path] = ()) -> dict[str, Any]:
    from pipeline.train.vua import load_metaphor_file, target_metrics, token_metrics

    sentences = load_metaphor_file(data)
    pool = [s for path in context for s in load_metaphor_file(path)]
    prob = word_probabilities(engine, sentences, pool)
    threshold = engine.config.metaphor_threshold
    verb_level = any(s.target is not None for s in sentences)
    if verb_level:
        metrics = target_metrics(sentences, prob, threshold)
    else:
        metrics = token_metrics([s.labels for s in sentences], prob, threshold)
    return {
        "task": "metaphor",
        "level": "target-verb" if verb_level else "token",
        "data": str(data),
        "model": _model_name(engine),
        "threshold": threshold,
        "sentences": len(sentences),
        "context_files": [str(path) for path in context],
        **metrics,
    }


# The detector settings tuning chooses among, with the item threshold. A lone-word setting of 1.01 means a lone
# metaphorical word never makes an item positive; `copular` turns the copular-metaphor rule on or off.
DELIBERATE_CHOICES: tuple[dict[str, Any], ...] = tuple(
    {"strong_token_threshold": strong, "copular": copular} for copular in (True, False) for strong in (0.9, 0.95, 1.01)
)


def deliberate_scores(
    engine: Engine, texts: list[str], settings: Sequence[Mapping[str, Any]] | None = None
) -> np.ndarray:
    """Each text's best deliberate-metaphor span score, one row per detector setting (one forward pass).

    Without `settings`, one row at the model's own settings.
    """
    from pipeline.classify.batch import metaphor_detector, token_scores

    predictions = engine.predict(texts)
    scores = [token_scores(t, p) for t, p in zip(texts, predictions, strict=True)]
    # Every candidate's score counts here, below the threshold too: no gate, and one parse for all settings.
    table = metaphor_detector(engine.config).detect_settings(texts, scores, settings or ({},))
    return np.array([[r.score for r in results] for results in table])


def tune_deliberate(engine: Engine, data: Labelled) -> tuple[dict[str, Any], dict[str, Any]]:
    """The item threshold and detector settings with the best F1 on labelled items (the training items).

    Ties go to the more conservative choice: the higher threshold and lone-word score, the copular rule off.
    Returns the chosen `ModelConfig` fields and the metrics there.
    """
    keep = [i for i, m in enumerate(data.metaphor) if m is not None]
    gold = np.array([bool(data.metaphor[i]) for i in keep], dtype=bool)
    table = deliberate_scores(engine, [data.texts[i] for i in keep], DELIBERATE_CHOICES)
    best: tuple[float, float, float, bool, int] | None = None
    for k, (setting, scores) in enumerate(zip(DELIBERATE_CHOICES, table, strict=True)):
        for t in sorted({float(s) for s in scores if s > 0}) or [engine.config.deliberate_threshold]:
            key = (flag_metrics(gold, scores, t)["f1"], t, setting["strong_token_threshold"], not setting["copular"], k)
            best = key if best is None or key > best else best
    _, threshold, _, _, k = best
    setting = DELIBERATE_CHOICES[k]
    chosen = {
        "deliberate_threshold": threshold,
        "deliberate_strong_token": setting["strong_token_threshold"],
        "deliberate_copular": setting["copular"],
    }
    report = {"items": len(keep), "positives": int(gold.sum()), **chosen}
    return chosen, {**report, **flag_metrics(gold, table[k], threshold)}


def flag_metrics(gold: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    pred = scores >= threshold
    tp, fp, fn = int((pred & gold).sum()), int((pred & ~gold).sum()), int((~pred & gold).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def evaluate_deliberate(engine: Engine, data: Path) -> dict[str, Any]:
    """Item-level deliberate metaphor/analogy flags against labelled SECI items."""
    return {
        "task": "metaphor",
        "level": "item (deliberate metaphor or analogy)",
        "data": str(data),
        "model": _model_name(engine),
        **deliberate_report(engine, load_labelled([data], engine.config.modes)),
    }


def deliberate_report(engine: Engine, data: Labelled) -> dict[str, Any]:
    """Precision, recall and F1 of the item flag at the model's own settings, on items with a `metaphor` label."""
    keep = [i for i, m in enumerate(data.metaphor) if m is not None]
    gold = np.array([bool(data.metaphor[i]) for i in keep], dtype=bool)
    scores = deliberate_scores(engine, [data.texts[i] for i in keep])[0]
    threshold = engine.config.deliberate_threshold
    return {
        "threshold": threshold,
        "strong_token": engine.config.deliberate_strong_token,
        "copular": engine.config.deliberate_copular,
        "items": len(keep),
        "positives": int(gold.sum()),
        **flag_metrics(gold, scores, threshold),
    }


def _model_name(engine: Engine) -> str:
    return f"{engine.config.name} {engine.config.version}"


def _training_files(model_dir: Path) -> list[str]:
    record = model_dir / "training.json"
    if not record.exists():
        return []
    files = json.loads(record.read_text(encoding="utf-8"))["config"]["data"]["train"]
    return [f for f in files if Path(f).exists()]
