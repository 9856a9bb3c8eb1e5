"""The shipped model's outputs on a fixed sample of the bundled archive, against the reference
`scripts/shipped_outputs.py` wrote: a change meant to leave the outputs alone (engine, loading, batching) must
pass as it is; one meant to change them rewrites the reference, and its diff shows what moved."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from shipped_outputs import shipped_outputs  # noqa: E402

REFERENCE = ROOT / "tests" / "fixtures" / "shipped_outputs.json"


@pytest.fixture(scope="module")
def outputs() -> tuple[dict, dict]:
    return shipped_outputs(ROOT / "models" / "seci-fast"), json.loads(REFERENCE.read_text(encoding="utf-8"))


def test_the_reference_is_of_the_shipped_model(outputs: tuple[dict, dict]) -> None:
    mine, reference = outputs
    assert mine["model"] == reference["model"], "the model changed: rewrite the reference (scripts/shipped_outputs.py)"
    assert mine["items"].keys() == reference["items"].keys()
    assert sum(r["windows"] > 8 for r in reference["items"].values())  # the sample has items past mode_windows


def test_modes_and_probabilities_are_the_reference_ones(outputs: tuple[dict, dict]) -> None:
    mine, reference = outputs
    for key, want in reference["items"].items():
        got = mine["items"][key]
        np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-4, err_msg=key)
        assert got["windows"] == want["windows"], key
        top2 = sorted(want["probabilities"])[-2:]
        if top2[1] - top2[0] > 1e-4:  # a near tie may fall either way on another CPU
            assert got["mode"] == want["mode"], key


def test_metaphor_words_are_the_reference_ones(outputs: tuple[dict, dict]) -> None:
    mine, reference = outputs
    for key, want in reference["items"].items():
        got = Counter(mine["items"][key]["metaphor_words"])
        # A word scored within float rounding of the threshold may fall either way on another CPU.
        assert (got - Counter(want["metaphor_words"])).total() + (Counter(want["metaphor_words"]) - got).total() <= 1
