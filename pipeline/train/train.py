"""Fine-tune the seci model: the mode head on labelled SECI items, the metaphor head on VUA, jointly.

Read top to bottom: seed, data, model, optimiser, the loop (one SECI batch plus one VUA batch per
step), early stopping on dev, calibration on dev, save. Everything a run depends on is in its
`TrainConfig`; the model card records it with the data files' hashes and the git commit.
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import math
import random
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline.classify.engine import Engine, pick_dtype
from pipeline.classify.model import UPOS, SeciModel, load_tokenizer, load_weights
from pipeline.classify.windows import cut
from pipeline.train.config import TrainConfig
from pipeline.train.data import Labelled, file_digest, load_labelled
from pipeline.train.examples import vua_examples
from pipeline.train.metrics import apply_temperature, classification_report, fit_temperature, group_mix_error

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class TrainResult:
    out: Path
    epochs_run: int
    best_epoch: int
    dev: dict | None
    metaphor_dev: dict | None
    deliberate_train: dict | None  # the item-level settings' scores on the items they were chosen on
    deliberate_dev: dict | None
    seconds: float
    metaphor_calibration: dict | None = None  # what pipeline.train.calibrate fitted, with its dev scores
    reports: dict[str, dict] | None = None  # data.report: each file's scores with the final model


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def seci_windows(data: Labelled, tokenizer, config: TrainConfig) -> list[tuple[list[int], int, float]]:
    """(token ids, label, weight) per training window; a long item gives up to max_windows_per_item.

    The weight is 1, or with optim.group_balance 1 / the size of the item's group (scaled to a mean of 1), so
    that every team, mailbox or collection counts the same, however many items it has."""
    m = config.model
    enc = tokenizer(data.texts, add_special_tokens=False, truncation=False)["input_ids"]
    groups = data.groups if config.optim.group_balance and data.groups else [None] * len(data)
    sizes = Counter(groups)
    out = []
    for ids, label, group in zip(enc, data.labels, groups, strict=True):
        windows = cut(0, ids, m.max_length, m.stride, tokenizer.cls_token_id, tokenizer.sep_token_id)
        weight = len(data) / (len(sizes) * sizes[group])
        out.extend((w.ids, label, weight) for w in windows[: config.optim.max_windows_per_item])
    return out


def sentence_keys(sentence) -> set[tuple]:
    """What identifies a sentence across VUA files: its place in the VUAMC text and its letters and digits.

    The files tokenise differently ("don't" / "do n't", stray encodings), so the words alone miss about one
    repeat in five; VUA-18 and the VUAMC shared-task files share text ids and sentence numbers.
    """
    keys = {("words", re.sub(r"[\W_]+", "", "".join(sentence.words)).lower())}
    if sentence.text_id is not None and sentence.index is not None:
        keys.add(("position", sentence.text_id, sentence.index))
    return keys


def metaphor_sentences(paths: list[str], dev: list) -> list:
    """Training sentences from several files, each sentence once, none of the dev file's."""
    from pipeline.train.vua import load_metaphor_file

    seen = set().union(*(sentence_keys(s) for s in dev))
    out = []
    for path in paths:
        kept = 0
        for sentence in load_metaphor_file(path):
            keys = sentence_keys(sentence)
            if sentence.labels is not None and not keys & seen:
                seen.update(keys)
                out.append(sentence)
                kept += 1
        log.info("%s: %d new training sentences", path, kept)
    return out


def pad(rows: list[list[int]], value: int, dtype: torch.dtype = torch.long) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=dtype)


def distillation_targets(sentences, teachers: Sequence[str], weight: float) -> list[list[float]]:
    """Each word's training target: (1 - weight) x its gold label + weight x the mean metaphor probability of
    the teacher models (ensemble distillation: one model learns what several agree on, and how sure they are).
    Each teacher reads the sentences with the context it was trained with, as at inference."""
    from pipeline.train.evaluate import word_probabilities

    mean = [np.zeros(len(s.words)) for s in sentences]
    for teacher in teachers:
        engine = Engine.from_dir(Path(teacher), device="cpu")
        for total, probs in zip(mean, word_probabilities(engine, sentences), strict=True):
            total += np.asarray(probs) / len(teachers)
        log.info("distillation: %s scored %d training sentences", teacher, len(sentences))
    return [((1 - weight) * np.asarray(s.labels) + weight * m).tolist() for s, m in zip(sentences, mean, strict=True)]


def batches(examples: list, size: int, rng: random.Random) -> Iterator[list]:
    """Shuffled batches, drawn from length-sorted pools so each batch pads little."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    pool = 50 * size
    chunks = []
    for k in range(0, len(order), pool):
        part = sorted(order[k : k + pool], key=lambda i: len(examples[i][0]))
        chunks.extend(part[j : j + size] for j in range(0, len(part), size))
    rng.shuffle(chunks)
    for chunk in chunks:
        yield [examples[i] for i in chunk]


def class_weights(labels: list[int], n: int, scheme: str) -> torch.Tensor | None:
    if scheme == "none":
        return None
    counts = np.bincount(labels, minlength=n).astype(np.float64)
    # "balanced" as in scikit-learn, square-rooted: full inverse frequency over-predicts rare modes.
    weights = np.sqrt(len(labels) / (n * np.maximum(counts, 1)))
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def update_average(average: dict[str, torch.Tensor], model: nn.Module, decay: float) -> None:
    """One step of an exponential moving average of the trained weights (Polyak averaging)."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in average:
                average[name].lerp_(param.detach(), 1.0 - decay)


def average_weights(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The uniform average of several models' weights (a model soup), in float32. A tensor equal in all of
    them is kept as it is rather than re-rounded, so what every ingredient froze stays exactly the same."""
    first = states[0]
    for other in states[1:]:
        if set(other) != set(first) or any(other[k].shape != first[k].shape for k in first):
            mismatch = sorted(set(other) ^ set(first)) or [k for k in first if other[k].shape != first[k].shape]
            raise ValueError(f"models to average differ in their tensors, e.g. {mismatch[:3]}")
    averaged = {}
    for name, tensor in first.items():
        if all(torch.equal(tensor, other[name]) for other in states[1:]):
            averaged[name] = tensor.float()
        else:
            averaged[name] = torch.stack([s[name].float() for s in states]).mean(0)
    return averaged


def evaluate_seci(engine: Engine, data: Labelled) -> tuple[dict, np.ndarray]:
    probs = np.stack([p.probabilities for p in engine.predict(data.texts)])
    return classification_report(data.labels, probs, engine.config.modes), probs


def evaluate_metaphor(engine: Engine, sentences, pool=(), threshold: float | None = None) -> dict:
    from pipeline.train.evaluate import word_probabilities
    from pipeline.train.vua import best_threshold, token_metrics

    gold = [s.labels for s in sentences]
    prob = word_probabilities(engine, sentences, pool)
    chosen = best_threshold(gold, prob) if threshold is None else threshold
    return {"threshold": chosen, **token_metrics(gold, prob, chosen)}


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
        return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def train(config: TrainConfig, out: Path, progress: Progress | None = None) -> TrainResult:
    started = time.perf_counter()
    opt, mcfg = config.optim, config.model
    seed_everything(opt.seed)
    if opt.threads:
        torch.set_num_threads(opt.threads)
    rng = random.Random(opt.seed)
    report = progress or (lambda stage, done, total: None)

    # -- data -------------------------------------------------------------------------------
    tokenizer = load_tokenizer(mcfg)
    train_data = load_labelled(config.data.train, mcfg.modes) if config.data.train else None
    dev_data = load_labelled(config.data.dev, mcfg.modes) if config.data.dev else None
    seci_train = seci_windows(train_data, tokenizer, config) if train_data else []
    use_metaphor = bool(config.metaphor.train) and config.metaphor.weight > 0
    vua_train = vua_dev = None
    sentences = []
    if use_metaphor:
        from pipeline.train.vua import load_metaphor_file

        vua_dev = load_metaphor_file(config.metaphor.dev) if config.metaphor.dev else None
        sentences = metaphor_sentences(config.metaphor.train, vua_dev or [])
        if config.metaphor.max_train_sentences:
            sentences = sentences[: config.metaphor.max_train_sentences]
        targets = None
        if config.metaphor.teachers and config.metaphor.distill:
            targets = distillation_targets(sentences, config.metaphor.teachers, config.metaphor.distill)
        vua_train = vua_examples(sentences, tokenizer, mcfg.max_length, mcfg.metaphor_context, targets)
    # Dev sentences read their preceding sentences from the training texts too (text only), as a test sentence
    # reads its own file's: VUA-18 val alone has context for 17% of its sentences, with this 92%.
    dev_pool = sentences

    # -- model and optimiser ------------------------------------------------------------------
    model = SeciModel(mcfg)
    if opt.init_from:
        # Staged training: start from an earlier run's weights (e.g. a metaphor-only stage), or their average.
        sources = [opt.init_from] if isinstance(opt.init_from, str) else opt.init_from
        state = average_weights([load_weights(Path(source)) for source in sources])
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
        if model.branch is not None and not any(k.startswith("branch.") for k in state):
            model.seed_branch()  # the branch starts from the fine-tuned top layers, not the base's
    for part in opt.reinit:
        if part == "branch" and model.branch is not None:
            model.seed_branch()
        elif part == "mode_head":
            for layer in model.mode_head.modules():
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()
        else:
            raise ValueError(f"optim.reinit: {part!r} is not a part that can start afresh (branch, mode_head)")
    for part in opt.freeze:
        module = getattr(model, part, None)
        if not isinstance(module, nn.Module):
            raise ValueError(f"optim.freeze: the model has no part {part!r}")
        module.requires_grad_(False)
    # A task whose every parameter is frozen is not trained; its data still serve dev scoring and tuning.
    if seci_train and not any(p.requires_grad for p in model.task_parameters("modes")):
        log.info("the mode path is frozen: the SECI items serve dev scoring and item-level tuning only")
        seci_train = []
    if vua_train and not any(p.requires_grad for p in model.task_parameters("metaphor")):
        log.info("the metaphor path is frozen: VUA serves dev scoring only")
        vua_train = None
    if vua_train:
        model.reset_calibration()  # a calibration fitted to the old head would be stale; it is refitted below
    if opt.epochs and not seci_train and not vua_train:
        raise ValueError("nothing to train on: give data.train, metaphor.train or both, and leave their parts unfrozen")
    log.info("training windows: %d SECI, %d VUA", len(seci_train), len(vua_train or []))
    # POS tagging as an auxiliary task (metaphor.pos_tagging > 0): a linear tagger on the vectors the metaphor
    # head reads. It shapes them during training and is then dropped: inference never runs it.
    tagger = None
    if vua_train and config.metaphor.pos_tagging:
        tagger = nn.Linear(model.encoder.config.hidden_size, len(UPOS))
    encoder_params = [*model.encoder.parameters(), *(model.branch or nn.ModuleList()).parameters()]
    head_params = [*model.mode_head.parameters(), *model.metaphor_head.parameters()]
    head_params += [*tagger.parameters()] if tagger is not None else []
    groups = [
        {"params": [p for p in encoder_params if p.requires_grad], "lr": opt.lr},
        {"params": [p for p in head_params if p.requires_grad], "lr": opt.head_lr},
    ]
    groups = [g for g in groups if g["params"]]
    optimizer = torch.optim.AdamW(groups, weight_decay=opt.weight_decay) if groups else None
    # The SECI items drive the epochs; VUA batches ride along. Without SECI data, VUA drives them.
    primary = seci_train or vua_train or []
    primary_size = opt.batch_size if seci_train else config.metaphor.batch_size
    steps_per_epoch = math.ceil(len(primary) / primary_size)
    if opt.max_steps:
        steps_per_epoch = min(steps_per_epoch, opt.max_steps)
    total_steps = steps_per_epoch * opt.epochs
    warmup = max(1, int(opt.warmup * total_steps))
    scheduler = (
        torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (total_steps - s) / max(1, total_steps - warmup))
        )
        if optimizer
        else None
    )
    weights = class_weights(train_data.labels, len(mcfg.modes), opt.class_weights) if train_data else None
    mode_loss = nn.CrossEntropyLoss(weight=weights, reduction="none")
    token_loss = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(config.metaphor.pos_weight))
    tag_loss = nn.CrossEntropyLoss(ignore_index=-100)
    dtype = pick_dtype(torch.device("cpu")) if opt.bf16 else torch.float32

    # With optim.ema the weights scored, kept and saved are the moving average of the trained ones, which
    # smooths the last steps' noise; the optimiser keeps stepping the raw weights.
    average = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad} if opt.ema else None

    def scored_model() -> SeciModel:
        # A copy, never the weights in training: the engine casts its model to the inference dtype.
        scored = copy.deepcopy(model)
        if average is not None:
            with torch.no_grad():
                for name, param in scored.named_parameters():
                    if name in average:
                        param.copy_(average[name])
        return scored

    def engine() -> Engine:
        return Engine(scored_model(), tokenizer, torch.device("cpu"), dtype)

    vua_stream = (
        itertools.chain.from_iterable(batches(vua_train, config.metaphor.batch_size, rng) for _ in itertools.count())
        if vua_train
        else None
    )
    seci_stream = (
        itertools.chain.from_iterable(batches(seci_train, opt.batch_size, rng) for _ in itertools.count())
        if seci_train
        else None
    )

    # -- the loop -----------------------------------------------------------------------------
    best_score, best_epoch, best_state, stale, epochs_run = -1.0, 0, None, 0, 0
    history = []
    for epoch in range(1, opt.epochs + 1):
        model.train()
        epochs_run = epoch
        seen_loss, seen_mode, seen_token, seen_tags = [], [], [], []
        for step in range(steps_per_epoch):
            loss = torch.zeros(())
            with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                if seci_stream is not None:
                    batch = next(seci_stream)
                    ids = pad([b[0] for b in batch], tokenizer.pad_token_id)
                    y = torch.tensor([b[1] for b in batch])
                    w = torch.tensor([b[2] for b in batch])
                    mode_logits, _ = model(ids, (ids != tokenizer.pad_token_id).long(), task="modes")
                    # The class-weighted mean, each window also weighted by its group's share.
                    per = weights[y] * w if weights is not None else w
                    part = (mode_loss(mode_logits.float(), y) * w).sum() / per.sum()
                    seen_mode.append(part.item())
                    loss = loss + part
                if vua_stream is not None:
                    vb = next(vua_stream)
                    vids = pad([b[0] for b in vb], tokenizer.pad_token_id)
                    vy = pad([b[1] for b in vb], -100, torch.float32)
                    _, token_logits, token_hidden = model(
                        vids, (vids != tokenizer.pad_token_id).long(), tokens=True, task="metaphor", calibrated=False
                    )
                    keep = vy != -100
                    part = token_loss(token_logits.float()[keep], vy[keep].float())
                    seen_token.append(part.item())
                    loss = loss + config.metaphor.weight * part
                    vtags = pad([b[2] for b in vb], -100)
                    if tagger is not None and (vtags != -100).any():
                        part = tag_loss(tagger(token_hidden).float().flatten(0, 1), vtags.flatten())
                        seen_tags.append(part.item())
                        loss = loss + config.metaphor.pos_tagging * part
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_([*model.parameters(), *(tagger.parameters() if tagger else [])], 1.0)
            optimizer.step()
            scheduler.step()
            if average is not None:
                done = (epoch - 1) * steps_per_epoch + step
                # The usual warm start: early on the average follows the weights closely.
                update_average(average, model, min(opt.ema, (1 + done) / (10 + done)))
            seen_loss.append(loss.item())
            report(f"epoch {epoch}", step + 1, steps_per_epoch)

        model.eval()
        scorer = engine()
        dev_f1 = evaluate_seci(scorer, dev_data)[0]["macro_f1"] if dev_data else None
        metaphor_f1 = evaluate_metaphor(scorer, vua_dev, dev_pool)["f1"] if vua_dev else None
        # Early stopping watches the mode task, our primary output; the metaphor F1 breaks ties
        # (and decides alone in a metaphor-only stage).
        score = (dev_f1 or 0.0) + (1e-3 if dev_f1 is not None else 1.0) * (metaphor_f1 or 0.0)
        history.append(
            {
                "epoch": epoch,
                "loss": float(np.mean(seen_loss)),
                # Each task's own (unweighted) loss, so a shared run can be compared with a single-task one.
                "mode_loss": float(np.mean(seen_mode)) if seen_mode else None,
                "metaphor_loss": float(np.mean(seen_token)) if seen_token else None,
                "pos_loss": float(np.mean(seen_tags)) if seen_tags else None,
                "dev_macro_f1": dev_f1,
                "metaphor_f1": metaphor_f1,
            }
        )
        log.info("epoch %d: %s", epoch, history[-1])
        if score > best_score:
            best_score, best_epoch, stale = score, epoch, 0
            best_state = {k: v.detach().clone() for k, v in scored_model().trained_state().items()}
        else:
            stale += 1
            if stale >= opt.patience:
                break

    # -- calibrate on dev, save -------------------------------------------------------------
    if best_state is None:  # epochs 0: what init_from gave is what is scored and saved
        best_state = model.trained_state()
    average = None  # the best weights (averaged or not) go into the model itself
    model.load_state_dict({k: v.float() for k, v in best_state.items()}, strict=False)
    model.eval()
    calibration = None
    if mcfg.metaphor_calibration and vua_dev and sentences:
        from pipeline.train.calibrate import calibrate_metaphor

        calibration = calibrate_metaphor(model, tokenizer, sentences, vua_dev, dev_pool, dtype, opt.seed)
    dev_report = None
    mcfg.temperature = 1.0
    scorer = engine()
    if dev_data:
        _, raw = evaluate_seci(scorer, dev_data)
        mcfg.temperature = fit_temperature(dev_data.labels, raw)
        calibrated = apply_temperature(raw, mcfg.temperature)
        dev_report = classification_report(dev_data.labels, calibrated, mcfg.modes)
        if dev_data.groups:
            dev_report["group_mix"] = group_mix_error(dev_data.labels, calibrated, dev_data.groups)
    reports = {}
    for path in config.data.report:
        held = load_labelled([path], mcfg.modes)
        probs = evaluate_seci(scorer, held)[1]
        reports[str(path)] = classification_report(held.labels, probs, mcfg.modes)
        if held.groups:
            reports[str(path)]["group_mix"] = group_mix_error(held.labels, probs, held.groups)
    metaphor_report = evaluate_metaphor(scorer, vua_dev, dev_pool) if vua_dev else None
    if metaphor_report:
        mcfg.metaphor_threshold = metaphor_report["threshold"]
    model.save(out)  # now, so that a failure in the item-level tuning below loses nothing of the training
    deliberate_train = deliberate_dev = None
    if train_data and any(m is not None for m in train_data.metaphor):
        # The item-level settings are chosen on the training items' metaphor labels, which nothing else trains
        # on, so the dev items measure them held apart.
        from pipeline.train.evaluate import deliberate_report, tune_deliberate

        chosen, deliberate_train = tune_deliberate(engine(), train_data)
        for name, value in chosen.items():
            setattr(mcfg, name, value)
        if dev_data and any(m is not None for m in dev_data.metaphor):
            deliberate_dev = deliberate_report(engine(), dev_data)
        model.save(out)  # with the chosen item-level settings
    result = TrainResult(
        out,
        epochs_run,
        best_epoch,
        dev_report,
        metaphor_report,
        deliberate_train,
        deliberate_dev,
        time.perf_counter() - started,
        calibration,
        reports or None,
    )
    write_training_record(out, config, result, history)
    return result


def init_from_record(path: str | list[str] | None) -> dict | list | None:
    """What produced the weights a staged run started from, so the final card names every stage (for an
    average of several models, a list with each one's record)."""
    if isinstance(path, list):
        return [init_from_record(p) or {"path": p} for p in path]
    if not path or not (Path(path) / "training.json").exists():
        return None
    earlier = json.loads((Path(path) / "training.json").read_text(encoding="utf-8"))
    keep = ("config", "data", "commit", "torch", "epochs_run", "best_epoch", "history", "seconds", "metaphor_dev")
    keep += ("metaphor_calibration",)
    keep += ("init_from_record",)  # and so on back to the first stage
    return {"path": str(path), **{k: earlier.get(k) for k in keep}}


def write_training_record(out: Path, config: TrainConfig, result: TrainResult, history: list[dict]) -> None:
    """`training.json` (what evaluation and the model card read) and the model card itself."""
    files = [*config.data.train, *config.data.dev, *config.data.report]
    files.extend(config.metaphor.train)
    if config.metaphor.dev:
        files.append(config.metaphor.dev)
    record = {
        "config": config.to_dict(),
        "data": {str(f): file_digest(f) for f in files},
        "commit": git_commit(),
        "torch": torch.__version__,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "history": history,
        "seconds": round(result.seconds, 1),
        "dev": result.dev,
        "reports": result.reports,
        "metaphor_dev": result.metaphor_dev,
        "metaphor_calibration": result.metaphor_calibration,
        "deliberate_train": result.deliberate_train,
        "deliberate_dev": result.deliberate_dev,
        "init_from_record": init_from_record(config.optim.init_from),
        # The models whose probabilities were distilled into this one, with how each was made.
        "teacher_records": init_from_record(config.metaphor.teachers) if config.metaphor.teachers else None,
    }
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    from pipeline.train.card import write_model_card

    write_model_card(out, record)
