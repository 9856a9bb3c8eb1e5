"""Training configuration: one YAML file in `configs/` says everything a run depends on."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from pipeline.classify.model import ModelConfig


def _checked(name: str, annotation: str, value: Any) -> Any:
    """A number setting as a number: YAML reads `1e-4` (no dot) as a string, which would fail deep in training."""
    kinds = annotation.replace(" ", "").split("|")
    if value is None and "None" in kinds:
        return value
    if "float" in kinds and not isinstance(value, bool):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, not {value!r}") from None
    if "int" in kinds and not isinstance(value, bool):
        if isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
            return int(value)
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    if kinds == ["bool"] and not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, not {value!r}")
    return value


@dataclass
class DataConfig:
    train: list[str] = field(default_factory=lambda: ["data/seci/train.jsonl"])
    # Model selection: early stopping and the temperature. data/seci/dev.jsonl holds whole groups that have no
    # training item ("dev-unseen"), so the choice is made where a user's own archive is.
    dev: list[str] = field(default_factory=lambda: ["data/seci/dev.jsonl"])
    # More labelled files scored with the final model and recorded on its card, each on its own (e.g. the
    # in-domain dev items of training groups, a second number); nothing is chosen on them.
    report: list[str] = field(default_factory=list)


@dataclass
class MetaphorConfig:
    # Word-level metaphor files (VUA-18 train first); none trains the mode head only. Sentences
    # repeated across files are used once (the first file's labels win), and sentences of the dev
    # file are never trained on, which lets a superset such as the VUAMC train partition be added.
    train: list[str] = field(default_factory=list)
    dev: str | None = None  # for the threshold and early stopping (VUA-18 val)
    weight: float = 1.0  # the token loss's weight against the mode loss
    pos_weight: float = 3.0  # metaphor words are ~12% of VUA tokens
    # Weight of an auxiliary loss that tags each word's universal POS (VUA-18's pos_seq) from the vectors the
    # metaphor head reads; 0: off. The tagger exists in training only: nothing changes at inference.
    pos_tagging: float = 0.0
    batch_size: int = 32
    max_train_sentences: int | None = None
    # Ensemble distillation: model directories whose mean word probabilities are mixed into the training targets
    # with weight `distill` (0: gold labels only, 1: the teachers' alone). The teachers run once, before training.
    teachers: list[str] = field(default_factory=list)
    distill: float = 0.5


@dataclass
class OptimConfig:
    seed: int = 13
    epochs: int = 4
    lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.06
    batch_size: int = 16
    max_windows_per_item: int = 3  # a long document contributes at most this many windows per epoch
    patience: int = 2  # epochs without a better dev score before stopping
    class_weights: str = "balanced"  # or "none"
    # Weight each item by 1 / its group's size (the data's `group` or `team`), so that large groups do not decide.
    group_balance: bool = False
    bf16: bool = True
    max_steps: int | None = None  # caps steps per epoch (tests, smoke runs)
    threads: int | None = None
    ema: float | None = None  # decay of a moving average of the weights, which is then scored and saved
    # A model directory to start from (staged training), or several: their weights averaged, a uniform *model
    # soup* of fine-tunes of one model (e.g. seeds of one stage). Tensors equal in every ingredient are kept
    # as they are, so a path that all of them froze stays bit-for-bit the same. With epochs 0 a stage only
    # scores and calibrates what it starts from (a soup's threshold, temperature and item-level settings).
    init_from: str | list[str] | None = None
    # Parts of the model this stage leaves as init_from gave them: encoder, trunk (with model.branch_layers:
    # the embeddings and the layers below the branch), branch, mode_head, metaphor_head. A task whose whole
    # path is frozen is not trained: freezing encoder and mode_head trains only a metaphor branch and its
    # head; freezing trunk, branch and mode_head of a mode-branch model trains the top layers only the
    # metaphor head reads, and its head. Either way every mode label stays as it was.
    freeze: list[str] = field(default_factory=list)
    # Parts to start afresh after init_from, so a stage can retrain them from clean weights: branch (copied
    # again from the encoder's top layers, as when first seeded) and mode_head (initialised as new).
    reinit: list[str] = field(default_factory=list)


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    metaphor: MetaphorConfig = field(default_factory=MetaphorConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    @classmethod
    def from_yaml(cls, path: Path, overrides: Sequence[str] = ()) -> TrainConfig:
        """A config file, with `section.key=value` overrides (values read as YAML: `optim.seed=14`,
        `optim.init_from=[runs/a, runs/b]`), as spaCy's CLI overrides its configs."""
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for override in overrides:
            key, sep, value = override.partition("=")
            section, dot, name = key.strip().partition(".")
            if not sep or not dot or not name:
                raise ValueError(f"an override is section.key=value, not {override!r}")
            part = doc.setdefault(section, {})
            if not isinstance(part, dict):
                raise ValueError(f"{path}: {section} is not a section")
            part[name] = yaml.safe_load(value)
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> TrainConfig:
        def build(kind: type, section: dict[str, Any] | None, name: str) -> Any:
            section = dict(section or {})
            known = {f.name for f in fields(kind)}
            unknown = set(section) - known
            if unknown:
                raise ValueError(f"unknown {name} settings: {sorted(unknown)}")
            for key in ("train", "dev", "report"):
                if kind is DataConfig and isinstance(section.get(key), str):
                    section[key] = [section[key]]
            if kind is MetaphorConfig and isinstance(section.get("train"), str):
                section["train"] = [section["train"]]
            if kind is MetaphorConfig and section.get("train") is None:
                section["train"] = []
            if kind is ModelConfig and "modes" in section:
                section["modes"] = tuple(section["modes"])
            for f in fields(kind):
                if f.name in section:
                    section[f.name] = _checked(f"{name}.{f.name}", str(f.type), section[f.name])
            return kind(**section)

        unknown = set(doc) - {"model", "data", "metaphor", "optim"}
        if unknown:
            raise ValueError(f"unknown config sections: {sorted(unknown)}")
        start = (doc.get("optim") or {}).get("init_from")
        if isinstance(start, str) and (Path(start) / "config.json").is_file():
            # Retraining from a model: the settings the config leaves out are that model's (its thresholds,
            # branch, calibration), so a short config that names the data is enough.
            inherited = json.loads((Path(start) / "config.json").read_text(encoding="utf-8"))
            doc = {**doc, "model": {**inherited, **(doc.get("model") or {})}}
        return cls(
            model=build(ModelConfig, doc.get("model"), "model"),
            data=build(DataConfig, doc.get("data"), "data"),
            metaphor=build(MetaphorConfig, doc.get("metaphor"), "metaphor"),
            optim=build(OptimConfig, doc.get("optim"), "optim"),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
