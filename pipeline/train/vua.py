"""Readers for the word-level metaphor corpora (VUA-18, VUA-Verb, VUA shared task, MOH-X, TroFi) and their metrics.

Every reader returns one `WordSequence` per sentence, with whitespace tokens as the words: all these corpora are
distributed pre-tokenised and their labels and target indices count `sentence.split()` positions.

Two kinds of labelling exist:
- sequence data (VUA-18, the shared-task `M_` files): every word has a 0/1 label and `target` is None;
- target data (VUA-Verb, MOH-X, TroFi, MelBERT fold files): one target verb per row. `target` is its index and
  `labels` holds its label at that index and `IGNORE_LABEL` everywhere else, which is what a token-classification
  loss skips and what `token_metrics` leaves out.
"""

from __future__ import annotations

import ast
import csv
import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

IGNORE_LABEL = -100
"""Label of a word with no gold label (the Hugging Face loss ignore index)."""

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""The largest corpus file read whole; the biggest shared file (VUA-18 train) is under 3 MB."""

# A sentence of VUA-18 has at most a few hundred words; a list column longer than this is not ours.
_MAX_LIST_CHARS = 200_000


class MetaphorDataError(ValueError):
    """A metaphor corpus file that cannot be read; `reason` is a short machine-readable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class WordSequence:
    """One sentence with word-level metaphor labels (1 = metaphor-related word)."""

    id: str
    words: list[str]
    labels: list[int] | None
    pos: list[str] | None
    genre: str | None
    target: int | None
    text_id: str | None = None  # the source text, where the corpus names it
    index: int | None = None  # the sentence's position in that text


# Header signatures, checked in order: the first whose columns are all present decides the format.
_FORMATS: tuple[tuple[str, frozenset[str]], ...] = (
    ("vua_seq", frozenset({"sentence", "label_seq"})),
    ("vua_verb", frozenset({"text_idx", "sentence_idx", "sentence", "verb_idx", "label"})),
    ("shared_task", frozenset({"txt_id", "sentence_id", "sentence_txt"})),
    ("melbert_cls", frozenset({"sentence", "v_index", "label"})),
    ("verb_target", frozenset({"sentence", "verb_idx", "label"})),
)


def _read_text(path: Path, max_bytes: int) -> str:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise MetaphorDataError("missing", f"{path}: {exc}") from exc
    if size > max_bytes:
        raise MetaphorDataError("too-large", f"{path}: {size} bytes, more than the limit of {max_bytes}")
    data = path.read_bytes()
    if not data.strip():
        raise MetaphorDataError("empty", f"{path}: empty file")
    if b"\x00" in data:
        raise MetaphorDataError("binary", f"{path}: NUL bytes, not a CSV file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # The Gao et al. files are latin-1 (VUA-18 train and val are not valid UTF-8), as their own code reads them.
        return data.decode("latin-1")


def _rows(text: str, path: Path) -> tuple[list[str], list[dict[str, str]]]:
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        header = [name.strip() for name in (reader.fieldnames or [])]
        reader.fieldnames = header
        rows = list(reader)
    except csv.Error as exc:
        raise MetaphorDataError("parse", f"{path}: malformed CSV: {exc}") from exc
    return header, rows


def detect_format(header: Sequence[str]) -> str:
    """The corpus format that a header row names, or raise `MetaphorDataError("format")`."""
    columns = {name.strip() for name in header}
    for name, required in _FORMATS:
        if required <= columns:
            return name
    raise MetaphorDataError("format", f"unknown metaphor file header: {sorted(columns)}")


def _literal_list(value: str, column: str) -> list:
    # ast.literal_eval only builds literals, never runs code; the size bound keeps a hostile cell from exhausting it.
    if len(value) > _MAX_LIST_CHARS:
        raise ValueError(f"{column} longer than {_MAX_LIST_CHARS} characters")
    try:
        parsed = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ValueError(f"{column} is not a Python list literal") from exc
    if not isinstance(parsed, list):
        raise ValueError(f"{column} is not a list")
    return parsed


def _binary_labels(values: list, column: str) -> list[int]:
    labels = []
    for value in values:
        if isinstance(value, bool) or value not in (0, 1):
            raise ValueError(f"{column} holds {value!r}, not 0 or 1")
        labels.append(int(value))
    return labels


def _position(value: str | None) -> int | None:
    # VUA numbers sentences within a text; a few carry a letter suffix ("675a"), which shares the number.
    match = re.match(r"\s*(\d+)", value or "")
    return int(match.group(1)) if match else None


def _row_id(path: Path, row_number: int, *parts: str | None) -> str:
    named = [part.strip() for part in parts if part and part.strip()]
    return ":".join(named) if named else f"{path.stem}:{row_number}"


def _parse_vua_seq(row: dict[str, str], path: Path, n: int) -> WordSequence:
    words = (row.get("sentence") or "").split()
    labels = _binary_labels(_literal_list(row.get("label_seq") or "", "label_seq"), "label_seq")
    if len(labels) != len(words):
        raise ValueError(f"{len(labels)} labels for {len(words)} words")
    pos: list[str] | None = None
    if row.get("pos_seq"):
        pos = [str(tag) for tag in _literal_list(row["pos_seq"], "pos_seq")]
        if len(pos) != len(words):
            raise ValueError(f"{len(pos)} POS tags for {len(words)} words")
    return WordSequence(
        id=_row_id(path, n, row.get("txt_id"), row.get("sen_ix")),
        words=words,
        labels=labels,
        pos=pos,
        genre=(row.get("genre") or "").strip() or None,
        target=None,
        text_id=(row.get("txt_id") or "").strip() or None,
        index=_position(row.get("sen_ix")),
    )


def _parse_target(
    row: dict[str, str], path: Path, n: int, index_column: str, id_parts: list[str | None]
) -> WordSequence:
    words = (row.get("sentence") or "").split()
    try:
        target = int((row.get(index_column) or "").strip())
        label = int((row.get("label") or "").strip())
    except ValueError as exc:
        raise ValueError(f"{index_column} or label is not an integer") from exc
    if not 0 <= target < len(words):
        raise ValueError(f"{index_column} {target} outside a sentence of {len(words)} words")
    if label not in (0, 1):
        raise ValueError(f"label {label} is not 0 or 1")
    labels = [IGNORE_LABEL] * len(words)
    labels[target] = label
    pos = None
    if row.get("pos"):
        # MelBERT folds name only the target's tag; the other words are unknown.
        pos = [""] * len(words)
        pos[target] = row["pos"].strip()
    # VUA-Verb names each row's text and sentence, which places it in its discourse (see preceding_context).
    text_id = (row.get("text_idx") or "").strip() or None
    return WordSequence(
        id=_row_id(path, n, *id_parts),
        words=words,
        labels=labels,
        pos=pos,
        genre=None,
        target=target,
        text_id=text_id,
        index=_position(row.get("sentence_idx")) if text_id else None,
    )


def _parse_shared_task(row: dict[str, str], path: Path, n: int) -> WordSequence:
    raw = (row.get("sentence_txt") or "").split()
    words = [word[2:] if word.startswith("M_") and len(word) > 2 else word for word in raw]
    labels = [1 if word.startswith("M_") and len(word) > 2 else 0 for word in raw]
    return WordSequence(
        id=_row_id(path, n, row.get("txt_id"), row.get("sentence_id")),
        words=words,
        labels=labels,
        pos=None,
        genre=None,
        target=None,
        text_id=(row.get("txt_id") or "").strip() or None,
        index=_position(row.get("sentence_id")),
    )


def _parse_row(kind: str, row: dict[str, str], path: Path, n: int) -> WordSequence:
    if kind == "vua_seq":
        return _parse_vua_seq(row, path, n)
    if kind == "vua_verb":
        ids = [row.get("text_idx"), row.get("sentence_idx"), row.get("verb_idx")]
        return _parse_target(row, path, n, "verb_idx", ids)
    if kind == "shared_task":
        return _parse_shared_task(row, path, n)
    if kind == "melbert_cls":
        return _parse_target(row, path, n, "v_index", [path.stem, row.get("index")])
    # MOH-X and TroFi rows have no id of their own: the file name and row number stand in.
    return _parse_target(row, path, n, "verb_idx", [path.stem, str(n)])


def load_metaphor_file(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[WordSequence]:
    """Read any supported metaphor corpus file, choosing the format from its header.

    Formats: VUA-18 sequence CSVs (`sentence`, `label_seq`, `pos_seq`, `genre`), VUA-Verb CSVs (`text_idx`,
    `sentence_idx`, `verb`, `sentence`, `verb_idx`, `label`), MOH-X and TroFi CSVs (`verb`, `sentence`, `verb_idx`,
    `label`), MelBERT's MOH-X fold TSVs (`index`, `label`, `sentence`, `pos`, `v_index`) and the VUA shared-task
    sentence files (`txt_id`, `sentence_id`, `sentence_txt` with `M_` on metaphorical words).

    A malformed row is logged and skipped; a file with no usable row raises `MetaphorDataError`.
    """
    path = Path(path)
    header, rows = _rows(_read_text(path, max_bytes), path)
    kind = detect_format(header)
    sequences: list[WordSequence] = []
    skipped = 0
    for n, row in enumerate(rows, start=1):
        if None in row:
            log.warning("%s row %d: more cells than header columns; skipped", path, n)
            skipped += 1
            continue
        try:
            sequence = _parse_row(kind, row, path, n)
        except ValueError as exc:
            log.warning("%s row %d: %s; skipped", path, n, exc)
            skipped += 1
            continue
        if not sequence.words:
            skipped += 1
            continue
        sequences.append(sequence)
    if not sequences:
        raise MetaphorDataError("empty", f"{path}: no usable {kind} rows ({skipped} skipped)")
    log.info("%s: %d %s sentences, %d rows skipped", path, len(sequences), kind, skipped)
    return sequences


def load_vua18(directory: str | Path, split: str) -> list[WordSequence]:
    """VUA-18 sequence data: `split` is train, val or test (test is held out: evaluate on it, never train)."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"VUA-18 split must be train, val or test, not {split!r}")
    return load_metaphor_file(Path(directory) / f"VUA_seq_formatted_{split}.csv")


def load_vua_verb(directory: str | Path, split: str) -> list[WordSequence]:
    """VUA-Verb target data: `split` is train, train_noVAL, val or test (test is held out)."""
    if split not in ("train", "train_noVAL", "val", "test"):
        raise ValueError(f"VUA-Verb split must be train, train_noVAL, val or test, not {split!r}")
    return load_metaphor_file(Path(directory) / f"VUA_formatted_{split}.csv")


def load_moh_x(directory: str | Path) -> list[WordSequence]:
    """MOH-X (the cleaned file, as its notes ask). Held out: zero-shot evaluation only."""
    return load_metaphor_file(Path(directory) / "MOH-X_formatted_svo_cleaned.csv")


def load_trofi(directory: str | Path) -> list[WordSequence]:
    """TroFi (all 3,737 rows). Held out: zero-shot evaluation only."""
    return load_metaphor_file(Path(directory) / "TroFi_formatted_all3737.csv")


def preceding_context(sequences: Sequence[WordSequence], n: int, pool: Sequence[WordSequence] = ()) -> list[list[str]]:
    """The words of up to `n` sentences just before each sentence in its text, where they are in `sequences`
    or, failing that, in `pool`.

    Discourse context helps metaphor identification (Dankers et al., 2020, "Being neighbourly"): a word's basic
    and contextual meanings are easier to tell apart when the topic is known. Only consecutive sentences of the
    same text count. The pool is unlabelled text of the same documents from another file: VUA-18 val samples
    sentences from the texts of the training partition, so alone it has context for 17% of its sentences
    (training and test: over 70%); read with the training files as its pool, 92%. Test files are read alone.
    """
    if n <= 0:
        return [[] for _ in sequences]
    by_position = {(s.text_id, s.index): s for s in pool if s.text_id is not None and s.index is not None}
    by_position.update({(s.text_id, s.index): s for s in sequences if s.text_id is not None and s.index is not None})
    out = []
    for sequence in sequences:
        words: list[str] = []
        if sequence.text_id is not None and sequence.index is not None:
            for back in range(1, n + 1):
                previous = by_position.get((sequence.text_id, sequence.index - back))
                if previous is None:
                    break
                words = previous.words + words
        out.append(words)
    return out


# --- metrics --------------------------------------------------------------------------------------------------------


def _check_shapes(gold: Sequence[Sequence[int]], prob: Sequence[Sequence[float]]) -> None:
    if len(gold) != len(prob):
        raise ValueError(f"{len(gold)} gold sequences but {len(prob)} probability sequences")
    for i, (labels, scores) in enumerate(zip(gold, prob, strict=True)):
        if len(labels) != len(scores):
            raise ValueError(f"sequence {i}: {len(labels)} labels but {len(scores)} probabilities")


def _scored_pairs(gold: Sequence[Sequence[int]], prob: Sequence[Sequence[float]]) -> list[tuple[int, float]]:
    _check_shapes(gold, prob)
    return [
        (label, score)
        for labels, scores in zip(gold, prob, strict=True)
        for label, score in zip(labels, scores, strict=True)
        if label != IGNORE_LABEL
    ]


def _counts_to_metrics(tp: int, fp: int, fn: int, tn: int) -> dict[str, float | int]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    total = tp + fp + fn + tn
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": (tp + tn) / total if total else 0.0,
        "support": tp + fn,
        "total": total,
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def _pair_metrics(pairs: Sequence[tuple[int, float]], threshold: float) -> dict[str, float | int]:
    tp = fp = fn = tn = 0
    for label, score in pairs:
        predicted = score >= threshold
        if label == 1:
            tp += predicted
            fn += not predicted
        else:
            fp += predicted
            tn += not predicted
    return _counts_to_metrics(tp, fp, fn, tn)


def token_metrics(
    gold: Sequence[Sequence[int]], prob: Sequence[Sequence[float]], threshold: float = 0.5
) -> dict[str, float | int]:
    """Precision, recall and F1 of the metaphor class, accuracy and support over all labelled words.

    A word is predicted metaphorical when its probability is >= `threshold`. Words labelled `IGNORE_LABEL` are left
    out, so target-only sequences are scored on their targets. `support` is the number of gold metaphors and `total`
    the number of scored words; tp/fp/fn/tn are returned too.
    """
    return _pair_metrics(_scored_pairs(gold, prob), threshold)


def target_metrics(
    sequences: Sequence[WordSequence], prob: Sequence[Sequence[float]], threshold: float = 0.5
) -> dict[str, float | int]:
    """The metrics of `token_metrics` for verb-level data: only each sequence's target word is scored."""
    if len(sequences) != len(prob):
        raise ValueError(f"{len(sequences)} sequences but {len(prob)} probability sequences")
    pairs = []
    for sequence, scores in zip(sequences, prob, strict=True):
        if sequence.target is None or sequence.labels is None:
            raise ValueError(f"sequence {sequence.id} has no target word")
        if len(scores) != len(sequence.words):
            raise ValueError(f"sequence {sequence.id}: {len(scores)} probabilities for {len(sequence.words)} words")
        pairs.append((sequence.labels[sequence.target], scores[sequence.target]))
    return _pair_metrics(pairs, threshold)


def best_threshold(gold: Sequence[Sequence[int]], prob: Sequence[Sequence[float]]) -> float:
    """The threshold that maximises metaphor-class F1 over the labelled words; use it on a dev set only.

    Every distinct probability is a candidate (a sweep over sorted scores, so it is exact and O(n log n)). Among equal
    F1 the highest threshold wins, which favours precision. With no gold metaphor the answer is 0.5.
    """
    pairs = _scored_pairs(gold, prob)
    positives = sum(label for label, _ in pairs)
    if not pairs or positives == 0:
        return 0.5
    pairs.sort(key=lambda pair: pair[1], reverse=True)
    best_f1, best = -1.0, 0.5
    tp = predicted = 0
    i = 0
    while i < len(pairs):
        score = pairs[i][1]
        # Everything with the same score flips together at threshold == score.
        while i < len(pairs) and pairs[i][1] == score:
            tp += pairs[i][0]
            predicted += 1
            i += 1
        f1 = 2 * tp / (predicted + positives)
        if f1 > best_f1 + 1e-12:
            best_f1, best = f1, score
    return float(best)
