"""Training examples for the metaphor path: VUA-style sentences as token ids, per-token labels and POS tags.

Shared by the training loop (`pipeline.train.train`) and the metaphor calibration (`pipeline.train.calibrate`),
which both read sentences the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.classify.model import UPOS

VuaExample = tuple[list[int], list[float], list[int]]  # ids, labels (0/1 or soft), POS tags


def vua_examples(
    sentences,
    tokenizer,
    max_length: int,
    context: int = 0,
    targets: Sequence[Sequence[float]] | None = None,
    pool: Sequence = (),
) -> list[VuaExample]:
    """(token ids, token labels, POS tag ids), each word's label and tag on its first sub-word, -100 elsewhere.

    With `context`, the preceding sentences of the same text come first, unlabelled; where they would not fit
    in `max_length` the sentence goes alone. A sentence without POS tags (the VUAMC files) has only -100 tags.
    With `targets` (one number in [0, 1] per word, e.g. gold mixed with teachers' probabilities) the labels
    are those soft targets instead of the gold 0/1. `pool`: other sentences the context may come from (as
    `word_probabilities` reads dev sentences).
    """
    from pipeline.train.vua import preceding_context

    before = preceding_context(sentences, context, pool)
    words = [c + s.words for c, s in zip(before, sentences, strict=True)]
    enc = tokenizer(words, is_split_into_words=True, truncation=False)
    alone = tokenizer([s.words for s in sentences], is_split_into_words=True, truncation=True, max_length=max_length)
    tag_ids = {tag: i for i, tag in enumerate(UPOS)}
    out = []
    for i, s in enumerate(sentences):
        skip, source = len(before[i]), enc
        if len(enc["input_ids"][i]) > max_length:
            skip, source = 0, alone
        labels, tags, previous = [], [], None
        for w in source.word_ids(i):
            first = w is not None and w != previous and w >= skip
            label = -100
            if first:
                label = targets[i][w - skip] if targets is not None else int(s.labels[w - skip])
            labels.append(label)
            tags.append(tag_ids.get(s.pos[w - skip], -100) if first and s.pos else -100)
            previous = w
        out.append((source["input_ids"][i], labels, tags))
    return out
