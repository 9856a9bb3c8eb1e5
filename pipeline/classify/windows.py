"""Cut tokenized texts into overlapping windows, and put window outputs back together.

Nothing is truncated: a text longer than one window is covered by several that overlap by
`stride` tokens. Each token is *owned* by exactly one window (the one where it sits furthest from
an edge), so its metaphor score comes from the window with the most context around it, and a
window's weight in the item's mode probabilities is the number of tokens it owns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Window:
    item: int  # index of the text this window comes from
    ids: list[int]  # token ids, special tokens included
    first: int  # index in the text's tokens of the window's first token
    own_start: int  # owned span, as indices into the text's tokens
    own_end: int

    @property
    def weight(self) -> int:
        return self.own_end - self.own_start


@dataclass
class Words:
    """Words of one text as the tokenizer splits them: character span and first-token index."""

    starts: np.ndarray
    ends: np.ndarray
    first_token: np.ndarray


def cut(item: int, ids: list[int], size: int, stride: int, cls_id: int, sep_id: int) -> list[Window]:
    """Windows of at most `size` tokens (special tokens included) over one text's token ids.

    A long text gets the fewest windows that cover it with overlaps of at least `stride` tokens, all of one
    length and evenly spaced: a text a little over one window pays for two windows of about half its length,
    not for two full ones that overlap almost entirely.
    """
    body = size - 2
    n = len(ids)
    if n <= body:
        return [Window(item, [cls_id, *ids, sep_id], 0, 0, n)]
    if not 0 <= stride < body:
        raise ValueError(f"stride {stride} must be below the window's {body} tokens")
    k = -(-(n - stride) // (body - stride))
    length = -(-(n + (k - 1) * stride) // k)  # at most body, since k windows of body tokens would overlap enough
    # Starts are whole tokens, so a gap may be a token over the mean: lengthen until every overlap holds.
    while length < body and length - -(-(n - length) // (k - 1)) < stride:
        length += 1
    starts = [j * (n - length) // (k - 1) for j in range(k)]
    windows: list[Window] = []
    for j, start in enumerate(starts):
        own_start = 0 if j == 0 else windows[-1].own_end
        # Split each overlap at its middle: both windows see the same context around that point.
        own_end = n if j == k - 1 else (starts[j + 1] + start + length) // 2
        windows.append(Window(item, [cls_id, *ids[start : start + length], sep_id], start, own_start, own_end))
    return windows


def words_of(word_ids: list[int | None], offsets: list[tuple[int, int]]) -> Words:
    """Group sub-word tokens into the tokenizer's words; a word is scored by its first token."""
    starts, ends, firsts = [], [], []
    previous = None
    for t, (w, (s, e)) in enumerate(zip(word_ids, offsets, strict=True)):
        if w is None:
            continue
        if w != previous:
            starts.append(s)
            ends.append(e)
            firsts.append(t)
            previous = w
        else:
            ends[-1] = e
    return Words(np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64), np.array(firsts, dtype=np.int64))
