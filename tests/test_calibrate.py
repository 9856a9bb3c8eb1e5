"""The metaphor calibration: lexical prior, POS tagger and calibrator, fitted after training and saved."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.classify.engine import Engine
from pipeline.classify.model import CALIBRATION_FEATURES, UPOS, ModelConfig, SeciModel
from pipeline.train.calibrate import PRIOR_SMOOTHING, word_prior
from pipeline.train.config import TrainConfig
from pipeline.train.train import train
from tests.test_train import FIXTURES, tiny_config


def test_word_prior_smooths_each_rate_towards_the_overall_one() -> None:
    # Token 5 is a metaphor 3 times in 4, token 6 never in 4; token 7 never seen; -100 marks unlabelled sub-words.
    examples = [([5, 6, 9], [1, 0, -100], [0, 0, -100]), ([5, 5, 5, 6, 6, 6], [1, 1, 0, 0, 0, 0], [0] * 6)]
    prior = word_prior(examples, vocab_size=10).numpy()
    base = 3 / 8

    def logit(p: float) -> float:
        return math.log(p / (1 - p))

    assert prior[5, 0] == pytest.approx(logit((3 + PRIOR_SMOOTHING * base) / (4 + PRIOR_SMOOTHING)), rel=1e-5)
    assert prior[6, 0] == pytest.approx(logit((0 + PRIOR_SMOOTHING * base) / (4 + PRIOR_SMOOTHING)), rel=1e-5)
    assert prior[7, 0] == pytest.approx(logit(base), rel=1e-5)  # unseen: the overall rate
    assert prior[9, 1] == 0.0 and prior[5, 1] == pytest.approx(math.log1p(4))
    with pytest.raises(ValueError, match="no labelled words"):
        word_prior([([1], [-100], [-100])], vocab_size=4)


def test_an_unfitted_calibrator_passes_the_metaphor_logit_through() -> None:
    model = SeciModel(ModelConfig(metaphor_calibration=True)).eval()
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        _, calibrated = model(ids, mask)
        _, raw = model(ids, mask, calibrated=False)
        features = model.calibration_features(ids, raw, model(ids, mask, tokens=True)[2])
    assert torch.allclose(calibrated, raw, atol=1e-6)
    assert features.shape == (1, 6, len(CALIBRATION_FEATURES)) == (1, 6, 3 + len(UPOS))
    # The POS part is a distribution over the tags.
    assert torch.allclose(features[..., 3:].sum(-1), torch.ones(1, 6), atol=1e-5)
    with pytest.raises(ValueError, match="no metaphor calibration"):
        SeciModel(ModelConfig()).calibration_features(ids, raw, raw)


@pytest.mark.slow
def test_a_calibrated_model_is_fitted_after_training_saved_and_reloaded(tmp_path: Path) -> None:
    cfg = TrainConfig.from_yaml(tiny_config(tmp_path))
    cfg.model.metaphor_calibration = True
    # VUA-18-shaped training sentences carry the POS tags the tagger learns from.
    cfg.metaphor.train = [str(FIXTURES / "metaphor/vua18_seq_train_sample.csv")]
    cfg.metaphor.dev = str(FIXTURES / "metaphor/vuamc_corpus_train_sample.csv")
    cfg.optim.epochs = 1
    out = tmp_path / "calibrated"
    result = train(cfg, out)

    fitted = result.metaphor_calibration
    assert fitted is not None and fitted["pos_tagged_words"] > 0 and fitted["dev_words"] > 0
    assert fitted["pos_train_loss"] < math.log(len(UPOS))  # the tagger learned more than the uniform guess
    # The fit starts from the identity and minimises the dev log-loss (plus a small penalty): never worse.
    assert fitted["dev_loss_calibrated"] <= fitted["dev_loss_uncalibrated"] + 1e-4
    assert fitted["weights"] != {name: float(name == "logit") for name in CALIBRATION_FEATURES}
    record = json.loads((out / "training.json").read_text(encoding="utf-8"))
    assert record["metaphor_calibration"] == fitted
    assert "metaphor calibration (`pipeline/train/calibrate.py`)" in (out / "README.md").read_text(encoding="utf-8")

    # Saved in the safetensors weights and used by the engine: its scores are the calibrated ones.
    engine = Engine.from_dir(out, device="cpu", dtype="float32")
    assert engine.model.calibrator is not None
    assert float(engine.model.word_prior[:, 1].max()) > 0  # counts were stored
    words = ["The", "economy", "is", "a", "garden", "."]
    enc = engine.tokenizer(words, is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        _, calibrated = engine.model(enc["input_ids"], enc["attention_mask"])
        _, raw = engine.model(enc["input_ids"], enc["attention_mask"], calibrated=False)
    assert not torch.allclose(calibrated, raw)
    scored = engine.predict_words([words])[0]
    first = [enc.word_ids(0).index(i) for i in range(len(words))]
    expected = torch.sigmoid(calibrated[0, first]).numpy()
    assert np.allclose(scored, expected, atol=1e-4)
