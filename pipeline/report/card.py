"""What the model card says about how far the labels can be trusted, read from the model that scored.

The numbers come from the model directory's `training.json`, never from this code: its `dev` record
(accuracy, per-mode precision and recall, the confusion matrix, true modes in rows and predicted
modes in columns) is the evaluation on `config.data.dev`, the held-out items of organizations and
collections that no training item comes from (configs/seci-data.yaml, "dev-unseen"). Its
`deliberate_dev` record is the item-level metaphor flag's precision and recall on the same items.

Which directory: the one passed (`seci timeline --model DIR`), else the `model_dir` a run recorded in
its `run.json` options, else `models/seci-fast` when its name and version are those the results
were scored with (`run.json` `model`, or the rows' `model`). A directory whose name or version does
not match the results is not used: the report then says the reliability is unknown rather than
quoting another model's figures.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.aggregate.results import MODES

log = logging.getLogger(__name__)


def _default_model_dir() -> Path:
    # Where `seci batch` finds its default model, whatever the working directory.
    from pipeline.classify.rows import default_model

    return default_model()


@dataclass
class ModeScore:
    precision: float
    recall: float
    support: int


@dataclass
class ModelCard:
    """The measured quality of the model behind a results folder."""

    model_dir: Path
    name: str  # "seci-fast 5"
    dev_files: list[str]
    items: int
    accuracy: float
    macro_f1: float | None
    per_mode: dict[str, ModeScore]
    confusion: np.ndarray | None  # rows true, columns predicted, in MODES order
    metaphor_precision: float | None = None
    metaphor_recall: float | None = None
    metaphor_items: int | None = None
    notes: list[str] = field(default_factory=list)


def _model_name(model_dir: Path) -> str | None:
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return f"{config.get('name', '')} {config.get('version', '')}".strip()


def scored_with(results_dir: Path) -> tuple[str | None, str | None]:
    """(model name, model dir) recorded by the run in `run.json`, each None when not recorded."""
    try:
        run = json.loads((Path(results_dir) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None
    options = run.get("options") or {}
    return run.get("model") or None, options.get("model_dir") or None


def find_model_dir(results_dir: Path, model_dir: Path | None = None, row_models: set[str] = frozenset()) -> Path | None:
    """The model directory the results were scored with (rules in the module docstring), or None."""
    if model_dir is not None:
        return Path(model_dir) if (Path(model_dir) / "config.json").is_file() else None
    name, recorded = scored_with(results_dir)
    if recorded and (Path(recorded) / "config.json").is_file():
        return Path(recorded)
    names = {n for n in ({name} | set(row_models)) if n}
    default = _default_model_dir()
    if default.joinpath("config.json").is_file() and _model_name(default) in names:
        return default
    return None


def load_card(model_dir: Path | None) -> ModelCard | None:
    """The card of `model_dir` from its `training.json`; None without a usable `dev` record."""
    if model_dir is None:
        return None
    try:
        record = json.loads((Path(model_dir) / "training.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.warning(
            "%s: no readable training.json (%s); the report cannot say how accurate the labels are", model_dir, err
        )
        return None
    dev = record.get("dev") or {}
    per_class = dev.get("per_class") or {}
    if "accuracy" not in dev or not per_class:
        return None
    per_mode = {
        mode: ModeScore(float(s.get("precision", 0.0)), float(s.get("recall", 0.0)), int(s.get("support", 0)))
        for mode, s in per_class.items()
        if mode in MODES
    }
    confusion = None
    matrix = (dev.get("confusion") or {}).get("matrix")
    labels = (dev.get("confusion") or {}).get("labels") or list(MODES)
    if matrix and sorted(labels) == sorted(MODES):
        raw = np.asarray(matrix, dtype=float)
        order = [labels.index(m) for m in MODES]
        confusion = raw[np.ix_(order, order)]
    deliberate = record.get("deliberate_dev") or {}
    data = (record.get("config") or {}).get("data") or {}
    dev_files = data.get("dev") or []
    return ModelCard(
        model_dir=Path(model_dir),
        name=_model_name(Path(model_dir)) or Path(model_dir).name,
        dev_files=[dev_files] if isinstance(dev_files, str) else list(dev_files),
        items=int(dev.get("n", sum(s.support for s in per_mode.values()))),
        accuracy=float(dev["accuracy"]),
        macro_f1=float(dev["macro_f1"]) if "macro_f1" in dev else None,
        per_mode=per_mode,
        confusion=confusion,
        metaphor_precision=float(deliberate["precision"]) if "precision" in deliberate else None,
        metaphor_recall=float(deliberate["recall"]) if "recall" in deliberate else None,
        metaphor_items=int(deliberate["items"]) if "items" in deliberate else None,
    )
