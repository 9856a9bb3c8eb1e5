"""The benchmark scripts run through on a few bundled items (their figures are not checked: speed is not tested)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_bench_inference_runs_through() -> None:
    out = _run("scripts/bench_inference.py", "--n", "24", "--data", "data/samples", "--no-int8", "--no-compile")
    assert "naive fp32" in out and "engine fp32" in out and "of peak" in out and "/ naive:" in out


@pytest.mark.slow
def test_bench_batch_stages_run_through() -> None:
    out = _run(
        "scripts/bench_batch.py", "--n", "300", "--pool", "40", "--data", "data/samples", "--metaphor", "tokens",
        "--stages",
    )  # fmt: skip
    assert "CPU stages alone" in out and "tokenize task" in out and "model replica without the model" in out
