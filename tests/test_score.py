"""`seci score`: one text or file in, the INTERFACE.md object out; the CLI's table and errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from typer.testing import CliRunner

from pipeline.classify.engine import Engine
from pipeline.classify.metaphor import DeliberateMetaphorDetector
from pipeline.classify.rows import Scorer
from pipeline.classify.score import ScoreError, score_path, score_text
from pipeline.cli import app

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SIMILE = "Think of the cache as a pantry: the cook takes what is on the shelf instead of going to the market."


@pytest.fixture(scope="module")
def scorer(model_dir: Path) -> Scorer:
    return Scorer(Engine.from_dir(model_dir, device="cpu", dtype="float32"), DeliberateMetaphorDetector())


def test_one_text(scorer: Scorer) -> None:
    result = score_text(SIMILE, scorer).to_dict()
    assert set(result) >= {"mode", "probabilities", "metaphor", "metaphor_spans", "items"}
    assert result["mode"] in scorer.modes and len(result["items"]) == 1
    assert abs(sum(result["probabilities"].values()) - 1) < 1e-5
    # The explicit "think of X as a Y" pattern fires whatever the (random) token scores say.
    assert result["metaphor"] is True
    span = result["metaphor_spans"][0]
    assert span["item"] == "stdin" and SIMILE[span["start"] : span["end"]] == span["text"] == "pantry"


def test_file_combines_items_by_length(scorer: Scorer) -> None:
    result = score_path(FIXTURES / "email" / "three.mbox", scorer)
    assert len(result.items) > 1
    probs = np.array([list(row["probabilities"].values()) for row in result.items])
    weights = np.array([row["n_tokens"] for row in result.items], dtype=float)
    expected = (probs * weights[:, None]).sum(axis=0) / weights.sum()
    np.testing.assert_allclose(list(result.probabilities.values()), expected, atol=1e-5)
    assert result.mode == scorer.modes[int(expected.argmax())]


def test_unscorable_inputs(scorer: Scorer, tmp_path: Path) -> None:
    with pytest.raises(ScoreError, match="empty"):
        score_text("  \n", scorer)
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"garbage")
    with pytest.raises(ScoreError) as info:
        score_path(bad, scorer)
    assert info.value.reason == "unreadable" and "PDF" in str(info.value)


def test_cli_json_table_and_missing_model(model_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["score", "-", "--json", "--model", str(model_dir), "--device", "cpu"], input=SIMILE)
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["items"][0]["text"] == SIMILE and data["metaphor"] is True

    table = runner.invoke(app, ["score", str(FIXTURES / "documents" / "pushback.md"), "--model", str(model_dir)])
    assert table.exit_code == 0 and "SECI mode" in table.stdout

    missing = runner.invoke(app, ["score", "-", "--model", str(tmp_path / "nope")], input="text")
    assert missing.exit_code == 2 and "no model at" in missing.output
