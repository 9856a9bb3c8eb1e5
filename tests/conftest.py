"""Fixtures shared by the engine, batch and score tests: a model with fixed random heads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline.classify.engine import Engine
from pipeline.classify.model import ModelConfig, SeciModel


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "seci-test"
    SeciModel(ModelConfig(name="test", version="1")).save(path)
    return path


@pytest.fixture(scope="session")
def engine(model_dir: Path) -> Engine:
    return Engine.from_dir(model_dir, device="cpu", dtype="float32")
