"""Windows over long texts: every token owned exactly once, nothing truncated."""

from __future__ import annotations

import itertools

import pytest

from pipeline.classify.windows import cut, words_of


@pytest.mark.parametrize("n_tokens", [0, 1, 50, 254, 255, 300, 509, 1000, 4321])
@pytest.mark.parametrize(("size", "stride"), [(256, 64), (64, 16), (16, 4)])
def test_every_token_is_owned_by_exactly_one_window(n_tokens: int, size: int, stride: int) -> None:
    ids = list(range(1000, 1000 + n_tokens))
    windows = cut(7, ids, size, stride, cls_id=1, sep_id=2)
    owned = [t for w in windows for t in range(w.own_start, w.own_end)]
    assert owned == list(range(n_tokens))
    for w in windows:
        assert w.item == 7
        assert len(w.ids) <= size
        assert w.ids[0] == 1 and w.ids[-1] == 2
        body = w.ids[1:-1]
        assert body == ids[w.first : w.first + len(body)]
        # A window owns only tokens it actually contains.
        assert w.first <= w.own_start <= w.own_end <= w.first + len(body)
    assert sum(w.weight for w in windows) == n_tokens


def test_owned_tokens_sit_away_from_window_edges() -> None:
    windows = cut(0, list(range(1000)), 256, 64, 1, 2)
    for w in windows[1:-1]:
        body = len(w.ids) - 2
        assert w.own_start - w.first >= 16
        assert w.first + body - w.own_end >= 16


def test_words_group_subword_tokens() -> None:
    # "unbelievable plan": un ##believ ##able | plan
    words = words_of([None, 0, 0, 0, 1, None], [(0, 0), (0, 2), (2, 8), (8, 12), (13, 17), (0, 0)])
    assert words.starts.tolist() == [0, 13]
    assert words.ends.tolist() == [12, 17]
    assert words.first_token.tolist() == [1, 4]


@pytest.mark.parametrize("n_tokens", [255, 300, 509, 1000, 4321])
def test_long_texts_get_the_fewest_evenly_spaced_windows(n_tokens: int) -> None:
    windows = cut(0, list(range(n_tokens)), 256, 64, 1, 2)
    lengths = {len(w.ids) for w in windows}
    assert len(lengths) == 1  # one length for all
    assert len(windows) == -(-(n_tokens - 64) // (254 - 64))
    for a, b in itertools.pairwise(windows):
        overlap = a.first + len(a.ids) - 2 - b.first
        assert overlap >= 64
    assert windows[-1].first + len(windows[-1].ids) - 2 == n_tokens
    if n_tokens == 300:
        assert lengths == {2 + 182}  # two windows of about half the text plus the overlap, not two of 254
