"""Result rows: items and the engine's predictions in, the rows of `items.parquet` out.

`RowBuilder` needs only a model's config (and spaCy for the deliberate-metaphor rules), so Ray's row tasks
load it without the weights; `Scorer` adds the engine, and is what `seci batch` and `seci score` run.
`row_schema` is the Parquet schema of the rows (docs/outputs.md says what each field means).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.items import InputError, Item

if TYPE_CHECKING:
    import pyarrow as pa

    from pipeline.classify.engine import Engine, Prediction
    from pipeline.classify.metaphor import DeliberateMetaphorDetector
    from pipeline.classify.model import ModelConfig
    from pipeline.classify.word_scores import WordScores

log = logging.getLogger(__name__)

# The repository (or source tree) the package was installed from; `make setup` installs it editable.
SOURCE_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MODEL = Path("models") / "seci-fast"


def default_model() -> Path:
    """The shipped model, wherever the command runs: beside the package's source (`models/seci-fast` of the
    checkout it was installed from), else under the environment's `share/seci` (a copy installed there)."""
    candidates = (SOURCE_ROOT / SHIPPED_MODEL, Path(sys.prefix) / "share" / "seci" / SHIPPED_MODEL)
    for candidate in candidates:
        if (candidate / "config.json").is_file():
            return candidate
    return candidates[0]


DEFAULT_MODEL = default_model()
METAPHOR_MODES = ("rules", "tokens", "off")


class ModelNotFound(FileNotFoundError):
    """No saved model where one was expected."""


# -- scoring: items and predictions in, result rows out ------------------------------------------------


def metaphor_detector(config: ModelConfig, **overrides: Any) -> DeliberateMetaphorDetector:
    """The deliberate-metaphor rules with the thresholds a model was calibrated with."""
    from pipeline.classify.metaphor import DeliberateMetaphorDetector

    settings = {
        "token_threshold": float(config.metaphor_threshold),
        "threshold": float(config.deliberate_threshold),
        "strong_token_threshold": float(config.deliberate_strong_token),
        "copular": bool(config.deliberate_copular),
        **overrides,
    }
    return DeliberateMetaphorDetector(settings)


class RowBuilder:
    """Items and their predictions in, `INTERFACE.md` result rows out; needs the model's config, not its weights.

    `metaphor="rules"` runs the spaCy rules of `DeliberateMetaphorDetector` (the full `metaphor` and
    `metaphor_spans` fields); `"tokens"` reports only the token model's word-level detections and leaves
    `metaphor` null, for archives where the parse would cost more than the model (see docs/gpu.md); `"off"`
    is for predictions made without the metaphor path (`Engine(metaphor=False)`): every metaphor field empty.
    """

    def __init__(
        self,
        config: ModelConfig,
        detector: DeliberateMetaphorDetector | None,
        include_text: bool = True,
        metaphor: str | None = None,
    ) -> None:
        if metaphor is None:
            metaphor = "rules" if detector is not None else "tokens"
        if metaphor not in METAPHOR_MODES:
            raise ValueError(f"unknown metaphor mode {metaphor!r}; expected one of {METAPHOR_MODES}")
        if (metaphor == "rules") != (detector is not None):
            raise ValueError(f"metaphor={metaphor!r} {'needs' if metaphor == 'rules' else 'takes no'} detector")
        self.metaphor = metaphor
        self.detector = detector
        self.include_text = include_text
        self.modes: tuple[str, ...] = tuple(config.modes)
        self.model_name = f"{config.name} {config.version}"
        self.token_threshold = float(config.metaphor_threshold)

    @classmethod
    def load(cls, model_dir: Path = DEFAULT_MODEL, *, metaphor: str = "rules", include_text: bool = True) -> RowBuilder:
        """The row builder of a saved model (its config, and spaCy for the rules), without loading its weights."""
        return cls(*config_and_detector(Path(model_dir), metaphor), include_text, metaphor)

    def schema(self) -> pa.Schema:
        return row_schema(self.modes, self.include_text)

    def rows(self, items: Sequence[Item], predictions: Sequence[Prediction]) -> tuple[list[dict], list[InputError]]:
        """One result row per item; items whose metaphor rules failed keep their row and get an error line."""
        from pipeline.aggregate.ba import ba_of

        metaphors, errors = self._metaphors(items, predictions)
        rows = []
        for item, prediction, metaphor in zip(items, predictions, metaphors, strict=True):
            probs = prediction.probabilities
            best = int(probs.argmax())
            row: dict[str, Any] = {
                "id": item.id,
                "source": item.source,
                "path": item.path,
                "team": item.team,
                "timestamp": item.timestamp.isoformat() if item.timestamp else None,
                "authors": list(item.authors),
                "participants": list(item.participants),
                "ba": ba_of(item.n_participants, item.medium),
                "mode": self.modes[best],
                "probabilities": {mode: float(p) for mode, p in zip(self.modes, probs, strict=True)},
                **metaphor,
                "model": self.model_name,
                "thread": item.thread,
                "position": item.position,
                "title": item.title,
                "medium": item.medium,
                "meta": json.dumps(item.meta, ensure_ascii=False, sort_keys=True),
                "start_seconds": item.start_seconds,
                "end_seconds": item.end_seconds,
                "content_hash": item.content_hash,
                "warnings": list(item.warnings),
                "n_tokens": prediction.n_tokens,
            }
            if self.include_text:
                row["text"] = item.text
            rows.append(row)
        return rows, errors

    def _metaphors(
        self, items: Sequence[Item], predictions: Sequence[Prediction]
    ) -> tuple[list[dict], list[InputError]]:
        if self.metaphor == "off":
            return [{"metaphor": None, "metaphor_spans": [], "metaphor_tokens": []} for _ in items], []
        if self.detector is None:
            # Only the flagged words become Python objects: at GPU speed, one object per word of every item
            # would be most of the run's time.
            return [
                {
                    "metaphor": None,
                    "metaphor_spans": [],
                    "metaphor_tokens": flagged_tokens(item.text, p, self.token_threshold),
                }
                for item, p in zip(items, predictions, strict=True)
            ], []
        scores = [word_scores(item.text, p) for item, p in zip(items, predictions, strict=True)]
        texts = [item.text for item in items]
        try:
            return [r.to_dict() for r in self.detector.detect_many(texts, scores)], []
        except Exception:  # one bad text must not sink the chunk: find it by going item by item
            log.warning("metaphor rules failed on a chunk; retrying its %d items one by one", len(items))
        out: list[dict] = []
        errors: list[InputError] = []
        for item, ts in zip(items, scores, strict=True):
            try:
                out.append(self.detector.detect(item.text, ts).to_dict())
            except Exception as exc:
                message = f"{item.id}: metaphor rules failed: {type(exc).__name__}: {exc}"
                log.warning("%s", message)
                item.warnings.append("metaphor rules failed; metaphor fields are empty")
                errors.append(InputError(item.path, "process", message))
                out.append({"metaphor": None, "metaphor_spans": [], "metaphor_tokens": []})
        return out, errors


class Scorer(RowBuilder):
    """The engine and the row builder together: what `seci batch` and `seci score` run."""

    def __init__(self, engine: Engine, detector: DeliberateMetaphorDetector | None, include_text: bool = True) -> None:
        metaphor = None if engine.metaphor else "off"
        super().__init__(engine.config, detector, include_text, metaphor)
        self.engine = engine

    @classmethod
    def load(  # type: ignore[override]
        cls,
        model_dir: Path = DEFAULT_MODEL,
        *,
        device: str = "auto",
        dtype: str = "auto",
        metaphor: str = "rules",
        include_text: bool = True,
        max_tokens: int | None = None,
        compile: bool = False,
    ) -> Scorer:
        from pipeline.classify.engine import Engine, check_dtype, pick_device

        check_dtype(dtype)
        pick_device(device)
        _, detector = config_and_detector(Path(model_dir), metaphor, load=False)
        with_metaphor = metaphor != "off"
        # spaCy loads in a second thread while the model does: much of both is file reading and torch work that
        # releases the GIL, so a cold start takes about the longer of the two, not their sum.
        spacy_loader = _Background(lambda: detector.nlp) if detector is not None else None
        try:
            engine = Engine.from_dir(
                model_dir, device=device, dtype=dtype, max_tokens=max_tokens, compile=compile, metaphor=with_metaphor
            )
        finally:
            if spacy_loader is not None:
                spacy_loader.result()
        return cls(engine, detector, include_text)


class _Background:
    """A function run in a daemon thread; `result` waits for it and re-raises what it raised."""

    def __init__(self, fn: Any) -> None:
        import threading

        self._out: list[Any] = []
        self._thread = threading.Thread(target=self._run, args=(fn,), name="seci-load", daemon=True)
        self._thread.start()

    def _run(self, fn: Any) -> None:
        try:
            self._out.append((True, fn()))
        except BaseException as exc:
            self._out.append((False, exc))

    def result(self) -> Any:
        self._thread.join()
        ok, value = self._out[0]
        if not ok:
            raise value
        return value


def config_and_detector(
    model_dir: Path, metaphor: str, load: bool = True
) -> tuple[ModelConfig, DeliberateMetaphorDetector | None]:
    """A model's config and its metaphor rules (spaCy loaded now unless `load` is false)."""
    from pipeline.classify.model import load_config

    if not (model_dir / "config.json").is_file():
        raise ModelNotFound(
            f"no model at {model_dir} (config.json missing): pass --model DIR, or train one with `seci train`"
        )
    if metaphor not in METAPHOR_MODES:
        raise ValueError(f"unknown metaphor mode {metaphor!r}; expected one of {METAPHOR_MODES}")
    config = load_config(model_dir)
    detector = None
    if metaphor == "rules":
        detector = metaphor_detector(config)
        if load:
            detector.nlp  # noqa: B018  (load spaCy now, not inside the first chunk's timing)
    return config, detector


def word_scores(text: str, prediction: Prediction) -> WordScores:
    """The engine's word scores as arrays for the metaphor rules (no Python object per word)."""
    from pipeline.classify.word_scores import WordScores

    words = prediction.words
    return WordScores(text, words.starts, words.ends, prediction.word_scores)


def token_scores(text: str, prediction: Prediction) -> list[Any]:
    """The engine's word scores as the metaphor detector's `TokenScore`s (character spans into `text`)."""
    from pipeline.classify.word_scores import TokenScore

    words = prediction.words
    return [
        TokenScore(text[s:e], s, e, float(score))
        for s, e, score in zip(words.starts.tolist(), words.ends.tolist(), prediction.word_scores.tolist(), strict=True)
    ]


def flagged_tokens(text: str, prediction: Prediction, threshold: float) -> list[dict[str, Any]]:
    """The words scoring at least `threshold`, as the rows' `metaphor_tokens` (score rounded to 4 places)."""
    import numpy as np

    words = prediction.words
    # Compared in float64, as the Python floats of `token_scores` are: float32 would round the threshold.
    keep = np.flatnonzero(prediction.word_scores.astype(np.float64) >= threshold)
    return [
        {"text": text[s:e], "start": s, "end": e, "score": round(score, 4)}
        for s, e, score in zip(
            words.starts[keep].tolist(), words.ends[keep].tolist(), prediction.word_scores[keep].tolist(), strict=True
        )
    ]


def row_schema(modes: Sequence[str], include_text: bool = True) -> pa.Schema:
    """The Parquet schema of result rows (`INTERFACE.md` fields plus the item's context)."""
    import pyarrow as pa

    span = pa.struct([("text", pa.string()), ("start", pa.int64()), ("end", pa.int64()), ("score", pa.float64())])
    fields = [
        ("id", pa.string()),
        ("source", pa.string()),
        ("path", pa.string()),
        ("team", pa.string()),
        ("timestamp", pa.string()),
        ("authors", pa.list_(pa.string())),
        ("participants", pa.list_(pa.string())),
        ("ba", pa.string()),
        ("mode", pa.string()),
        ("probabilities", pa.struct([(m, pa.float64()) for m in modes])),
        ("metaphor", pa.bool_()),
        ("metaphor_spans", pa.list_(span)),
        ("metaphor_tokens", pa.list_(span)),
        ("model", pa.string()),
        ("thread", pa.string()),
        ("position", pa.int64()),
        ("title", pa.string()),
        ("medium", pa.string()),
        ("meta", pa.string()),
        ("start_seconds", pa.float64()),
        ("end_seconds", pa.float64()),
        ("content_hash", pa.string()),
        ("warnings", pa.list_(pa.string())),
        ("n_tokens", pa.int64()),
    ]
    if include_text:
        fields.append(("text", pa.string()))
    return pa.schema(fields)
