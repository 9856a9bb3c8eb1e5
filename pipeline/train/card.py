"""The model card: what data, config and commit produced a model, and how well it does on dev."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _stage_lines(stage: dict[str, Any] | list | None, lead: str = "started from") -> list[str]:
    """The earlier stages a staged model started from, latest first: config, data, commit and scores. A
    model that started from the average of several has a list: each of them, with its own stages."""
    if isinstance(stage, list):
        head = f"- started from the average of the weights of {len(stage)} models:"
        return [head, *[f"  {line}" for part in stage for line in _stage_lines(part)]]
    if not stage:
        return []
    if "config" not in stage:
        return [f"- {lead} `{stage['path']}` (it has no training record)"]
    met = stage.get("metaphor_dev") or {}
    return [
        f"- {lead} `{stage['path']}` ({stage['config']['model']['name']}): commit `{stage['commit']}`, "
        f"{stage['seconds']} s, best epoch {stage['best_epoch']} of {stage['epochs_run']}, "
        f"metaphor dev F1 {_fmt(met.get('f1'))}; its data: "
        + ", ".join(f"`{path}` (`{digest[:16]}…`)" for path, digest in stage["data"].items())
        + _teachers(stage["config"])
        + "; its config is in `training.json` (`init_from_record`)",
        *_stage_lines(stage.get("init_from_record")),
    ]


def _teachers(cfg: dict[str, Any]) -> str:
    teachers = (cfg.get("metaphor") or {}).get("teachers") or []
    if not teachers:
        return ""
    names = ", ".join(f"`{t}`" for t in teachers)
    return f"; trained towards the mean word probabilities of {names} (weight {cfg['metaphor']['distill']})"


def write_model_card(out: Path, record: dict[str, Any]) -> Path:
    cfg = record["config"]
    lines = [
        f"# {cfg['model']['name']} (version {cfg['model']['version']})",
        "",
        "A SECI knowledge-conversion mode classifier with a token-level metaphor head, sharing one encoder "
        "(one forward pass gives both). Labels follow `SECI_LABELING_GUIDE.md`.",
        "",
        "## How it was made",
        f"- base encoder: `{cfg['model']['base']}`; windows of {cfg['model']['max_length']} tokens, "
        f"stride {cfg['model']['stride']}",
        f"- commit: `{record['commit']}`, torch {record['torch']}, {record['seconds']} s of training, "
        + (
            f"best epoch {record['best_epoch']} of {record['epochs_run']}"
            if record["epochs_run"]
            else "no epochs (the weights it started from, scored and calibrated)"
        ),
        f"- temperature (fitted on dev): {cfg['model']['temperature']:.3f}; "
        f"token metaphor threshold (chosen on the metaphor dev file): {cfg['model']['metaphor_threshold']:.3f}",
        "- weights: `model.safetensors`, or its shards and `model.safetensors.index.json` past 40 MB (fp16, "
        + (
            "the fine-tuned embeddings, transformer layers and heads)"
            if cfg["model"].get("train_embeddings")
            else "transformer layers and heads; the embeddings come from the base)"
        ),
        *_stage_lines(record.get("init_from_record")),
        *(
            [
                f"- trained towards the mean word probabilities of {len(record['teacher_records'])} teacher models "
                f"(weight {cfg['metaphor']['distill']}, gold labels the rest):",
                *[f"  {line}" for teacher in record["teacher_records"] for line in _stage_lines(teacher, "teacher")],
            ]
            if record.get("teacher_records")
            else []
        ),
        "",
        "## Data (sha256)",
        *[f"- `{path}`: `{digest[:16]}…`" for path, digest in record["data"].items()],
        "",
        "## Config",
        "```json",
        json.dumps(cfg, indent=2),
        "```",
        "",
        "## Metrics",
    ]
    dev_files = ", ".join(f"`{f}`" for f in cfg["data"]["dev"])
    scored = [(f"dev ({dev_files}: where epochs and temperature were chosen)", record.get("dev"))]
    scored += [(f"`{path}` (scored only)", report) for path, report in (record.get("reports") or {}).items()]
    for name, dev in scored:
        if not dev:
            continue
        lines += [
            f"- SECI modes on {name}, {dev['n']} items: accuracy {_fmt(dev['accuracy'])}, "
            f"macro-F1 {_fmt(dev['macro_f1'])}, ECE {_fmt(dev['ece'])}"
            + (
                f"; each group's mode mix is {_fmt(dev['group_mix']['mean'])} from the labelled one on average "
                f"(total variation distance over {len(dev['group_mix']['groups'])} groups of 10 or more items)"
                if (dev.get("group_mix") or {}).get("mean") is not None
                else ""
            ),
            "",
            "| mode | precision | recall | F1 | support |",
            "| --- | --- | --- | --- | --- |",
            *[
                f"| {m} | {_fmt(v['precision'])} | {_fmt(v['recall'])} | {_fmt(v['f1'])} | {v['support']} |"
                for m, v in dev["per_class"].items()
            ],
            "",
        ]
    met = record.get("metaphor_dev")
    if met:
        lines += [
            "",
            f"- token-level metaphor (metaphor dev file): precision {_fmt(met['precision'])}, "
            f"recall {_fmt(met['recall'])}, F1 {_fmt(met['f1'])} at threshold {_fmt(met['threshold'])}",
        ]
    fitted = record.get("metaphor_calibration")
    if fitted:
        weights = ", ".join(f"{name} {w:+.3f}" for name, w in fitted["weights"].items() if abs(w) >= 0.05)
        lines += [
            f"- metaphor calibration (`pipeline/train/calibrate.py`), fitted after training: lexical prior from "
            f"{fitted['train_words']} training words, POS tagger trained on {fitted['pos_tagged_words']} tagged "
            f"words (dev accuracy {_fmt(fitted['pos_dev_accuracy'])}), calibrator on {fitted['dev_words']} dev "
            f"words (log-loss {fitted['dev_loss_uncalibrated']:.4f} raw, {fitted['dev_loss_calibrated']:.4f} "
            f"calibrated); weights over 0.05: {weights}; bias {fitted['bias']:+.3f}. The threshold above is "
            "chosen on the calibrated scores.",
        ]
    deliberate, tuned = record.get("deliberate_dev"), record.get("deliberate_train")
    if deliberate:
        chosen = (
            f"chosen on the {tuned['items']} labelled training items ({tuned['positives']} positive; F1 there "
            f"{_fmt(tuned['f1'])})"
            if tuned
            else "chosen on these same items"
        )
        lines += [
            f"- item-level deliberate metaphor or analogy ({deliberate['items']} labelled dev items, "
            f"{deliberate['positives']} positive): precision {_fmt(deliberate['precision'])}, "
            f"recall {_fmt(deliberate['recall'])}, F1 {_fmt(deliberate['f1'])} at the item threshold "
            f"{_fmt(cfg['model'].get('deliberate_threshold'))} and lone-word token score "
            f"{_fmt(cfg['model'].get('deliberate_strong_token'))}, copular metaphors "
            f"{'counted' if cfg['model'].get('deliberate_copular', True) else 'not counted'}, {chosen}",
        ]
    lines += ["", "Training history:", "", "```json", json.dumps(record["history"], indent=1), "```", ""]
    evaluation = out / "evaluation.json"
    if evaluation.exists():
        lines += ["## Evaluation (`seci evaluate ... --json`, collected in `evaluation.json`)", ""]
        for command, report in json.loads(evaluation.read_text(encoding="utf-8")).items():
            if report.get("task") == "seci":
                m = report["model_metrics"]
                base = report["baselines"].get("tfidf_logreg", {})
                per_class = ", ".join(
                    f"{mode} {_fmt(v['f1'])} (precision {_fmt(v['precision'])})" for mode, v in m["per_class"].items()
                )
                mix = (m.get("group_mix") or {}).get("mean")
                lines.append(
                    f"- `{command}`: macro-F1 {_fmt(m['macro_f1'])}, accuracy {_fmt(m['accuracy'])}, "
                    f"ECE {_fmt(m['ece'])}; F1 per mode: {per_class}"
                    + (f"; group mode-mix distance {_fmt(mix)}" if mix is not None else "")
                    + (
                        f"; ECE, temperature fitted on the other half of the groups, {_fmt(m['ece_cross_fitted'])}"
                        if m.get("ece_cross_fitted") is not None
                        else ""
                    )
                    + f"; TF-IDF + logistic regression macro-F1 {_fmt(base.get('macro_f1'))}"
                )
            else:
                lines.append(
                    f"- `{command}` ({report['level']}): precision {_fmt(report['precision'])}, "
                    f"recall {_fmt(report['recall'])}, F1 {_fmt(report['f1'])}"
                )
        lines.append("")
    path = out / "README.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
