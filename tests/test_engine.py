"""The inference engine: windows, batching invariance, streaming, the fused CPU layers, the int8 and bf16 paths."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from pipeline.classify.engine import WIDTH_MULTIPLE, Engine, pick_device, pick_dtype, predictions

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Real paragraphs of varied length (train-part fixtures), a long text, and edge cases."""
    paragraphs = [p.strip() for p in (FIXTURES / "documents" / "pep-0008.rst").read_text().split("\n\n")]
    real = [p for p in paragraphs if len(p) > 40][:24]
    long_text = " ".join(paragraphs)[:6000]
    return [*real, long_text, "", "Hi.", "word " * 300]


def _batches(engine: Engine, texts: list[str]) -> list:
    tokens = engine.tokenize(texts)
    return engine._plan(tokens.ids, tokens.offsets).batches


def test_long_text_windows_cover_every_token_once(engine: Engine) -> None:
    cfg = engine.config
    counts = np.array([10, cfg.max_length - 2, cfg.max_length - 1, 1000, 0])
    item, first, length, own_start, own_end = engine._windows(counts)
    for i, n in enumerate(counts):
        mine = item == i
        owned = np.zeros(n, dtype=int)
        for f, ln, s, e in zip(first[mine], length[mine], own_start[mine], own_end[mine], strict=True):
            assert ln <= cfg.max_length - 2
            assert f <= s <= e <= f + ln  # a window owns only tokens it sees
            owned[s:e] += 1
        assert (owned == 1).all(), f"text {i}: tokens owned {owned.tolist()}"
    assert (item == 3).sum() > 1  # the long text really was cut


def test_every_token_of_a_long_text_is_scored(engine: Engine, texts: list[str]) -> None:
    long_text = texts[-4]
    token_probs = engine.infer(engine.tokenize([long_text])).token_probs
    assert len(token_probs) > engine.config.max_length  # several windows
    assert (token_probs > 0).all()  # a sigmoid is never exactly 0: an unscored token would be
    [prediction] = engine.predict([long_text])
    assert prediction.n_windows > 1
    assert prediction.n_tokens == len(token_probs)
    assert len(prediction.word_scores) == len(prediction.words.starts)


def test_order_and_budget_do_not_change_results(engine: Engine, texts: list[str]) -> None:
    reference = engine.predict(texts)
    order = np.random.default_rng(7).permutation(len(texts))
    small = Engine(engine.model, engine.tokenizer, engine.device, torch.float32, max_tokens=engine.config.max_length)
    shuffled = small.predict([texts[i] for i in order])
    for k, i in enumerate(order):
        np.testing.assert_allclose(shuffled[k].probabilities, reference[i].probabilities, atol=1e-4)
        np.testing.assert_allclose(shuffled[k].word_scores, reference[i].word_scores, atol=1e-4)
        assert shuffled[k].n_tokens == reference[i].n_tokens
    assert len(_batches(small, texts)) > len(_batches(engine, texts))  # the budget changed batching


def test_the_tokenize_and_infer_halves_give_what_predict_gives(engine: Engine, texts: list[str]) -> None:
    # The Ray pipeline runs the halves in different processes, the token arrays travelling between them.
    tokens = engine.tokenize(texts)
    assert len(tokens) == len(texts) and len(tokens.words()) == len(texts)
    scores = engine.infer(tokens)
    assert scores.probabilities.shape == (len(texts), len(engine.config.modes))
    assert len(scores.token_probs) == len(tokens.ids) == tokens.offsets[-1]
    for mine, want in zip(predictions(tokens, scores), engine.predict(texts), strict=True):
        np.testing.assert_array_equal(mine.probabilities, want.probabilities)
        np.testing.assert_array_equal(mine.word_scores, want.word_scores)
        np.testing.assert_array_equal(mine.words.starts, want.words.starts)
        assert (mine.n_tokens, mine.n_windows) == (want.n_tokens, want.n_windows)
    empty = engine.tokenize([])
    assert len(empty) == 0 and predictions(empty, engine.infer(empty)) == []


def test_batch_shapes_are_few_and_within_budget(engine: Engine, texts: list[str]) -> None:
    # Widths come in steps of WIDTH_MULTIPLE, so a long run meets few distinct shapes (kernel caches stay small).
    batches = _batches(engine, texts * 3)
    assert len(batches) > 1
    for batch in batches:
        width = batch.ids.shape[1]
        assert width % WIDTH_MULTIPLE == 0 or width == engine.config.max_length
        assert batch.ids.numel() <= engine.max_tokens
        longest = int(batch.mask.sum(dim=1).max())
        assert width - WIDTH_MULTIPLE < longest <= width  # rounded up, never by a whole step


def test_probabilities_are_distributions(engine: Engine, texts: list[str]) -> None:
    predictions = engine.predict(texts)
    probs = np.stack([p.probabilities for p in predictions])
    assert probs.shape == (len(texts), len(engine.config.modes))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    assert predictions[texts.index("")].n_tokens == 0


def test_words_are_character_spans(engine: Engine) -> None:
    text = "Our release process, frankly, is a relay-race."
    [prediction] = engine.predict([text])
    words = [text[s:e] for s, e in zip(prediction.words.starts, prediction.words.ends, strict=True)]
    assert words == ["Our", "release", "process", ",", "frankly", ",", "is", "a", "relay", "-", "race", "."]


def test_stream_matches_predict_and_keeps_order(engine: Engine, texts: list[str]) -> None:
    chunks = [texts[:5], texts[5:6], [], texts[6:]]
    streamed = list(engine.predict_stream(iter(chunks)))
    assert [chunk for chunk, _ in streamed] == chunks
    flat = [p for _, predictions in streamed for p in predictions]
    for a, b in zip(flat, engine.predict(texts), strict=True):
        np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-4)


def test_stream_reraises_producer_errors(engine: Engine) -> None:
    def chunks():
        yield ["fine"]
        raise RuntimeError("input broke")

    stream = engine.predict_stream(chunks())
    with pytest.raises(RuntimeError, match="input broke"):
        list(stream)


def test_predict_words_scores_each_given_word(engine: Engine) -> None:
    sentences = [["The", "market", "is", "a", "jungle"], ["Hello", "\x00", "world"]]
    scores = engine.predict_words(sentences)
    assert [len(s) for s in scores] == [5, 3]
    assert scores[1][1] == 0.0  # a word with no tokens scores 0
    assert ((scores[0] > 0) & (scores[0] < 1)).all()


def test_int8_path_runs_and_stays_close(model_dir: Path, engine: Engine, texts: list[str]) -> None:
    int8 = Engine.from_dir(model_dir, device="cpu", dtype="int8")
    assert int8.precision == "int8" and not int8.fused
    got = np.stack([p.probabilities for p in int8.predict(texts[:8])])
    want = np.stack([p.probabilities for p in engine.predict(texts[:8])])
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-6)
    assert np.abs(got - want).max() < 0.1


def test_bf16_path_stays_close(model_dir: Path, engine: Engine, texts: list[str]) -> None:
    bf16 = Engine.from_dir(model_dir, device="cpu", dtype="bfloat16")
    got = np.stack([p.probabilities for p in bf16.predict(texts[:8])])
    want = np.stack([p.probabilities for p in engine.predict(texts[:8])])
    assert np.abs(got - want).max() < 0.02


def test_fused_cpu_layers_give_what_the_plain_layers_give(model_dir: Path, engine: Engine, texts: list[str]) -> None:
    from pipeline.classify.fuse import OneDNNLinear, available

    assert available(torch.float32) and not available(torch.float16)
    assert engine.fused  # the default on CPU
    layers = list(engine._forward.encoder.encoder.layer)
    assert all(isinstance(layer.intermediate.dense, OneDNNLinear) for layer in layers)
    assert not any(isinstance(m, torch.nn.Linear) for layer in layers for m in layer.modules())
    assert isinstance(engine.model.encoder.encoder.layer[0].intermediate.dense, torch.nn.Linear)  # left as it was
    for dtype, atol in (("float32", 1e-5), ("bfloat16", 0.02)):
        fused = engine if dtype == "float32" else Engine.from_dir(model_dir, device="cpu", dtype=dtype)
        plain = Engine.from_dir(model_dir, device="cpu", dtype=dtype, fuse_cpu=False)
        assert not plain.fused and plain._forward is plain.model
        for g, w in zip(fused.predict(texts), plain.predict(texts), strict=True):
            np.testing.assert_allclose(g.probabilities, w.probabilities, atol=atol)
            np.testing.assert_allclose(g.word_scores, w.word_scores, atol=atol * 5)


@pytest.mark.slow
def test_compiled_model_gives_the_same_results(model_dir: Path, engine: Engine, texts: list[str]) -> None:
    compiled = Engine.from_dir(model_dir, device="cpu", dtype="float32", compile=True)
    assert compiled.compiled
    # Batches of different shapes go through the one dynamic graph.
    got = compiled.predict(texts)
    want = engine.predict(texts)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.probabilities, w.probabilities, atol=1e-4)
        np.testing.assert_allclose(g.word_scores, w.word_scores, atol=1e-3)
    with pytest.raises(ValueError, match="not int8"):
        Engine.from_dir(model_dir, device="cpu", dtype="int8", compile=True)


def test_bad_settings_are_refused(model_dir: Path, engine: Engine) -> None:
    with pytest.raises(ValueError, match="unknown dtype"):
        Engine(engine.model, engine.tokenizer, engine.device, "float8")
    with pytest.raises(ValueError, match="below one window"):
        Engine(engine.model, engine.tokenizer, engine.device, torch.float32, max_tokens=16)
    with pytest.raises(FileNotFoundError, match="no model"):
        Engine.from_dir(model_dir.parent / "absent")
    assert pick_device("cpu").type == "cpu"
    assert pick_dtype(torch.device("cpu")) in (torch.float32, torch.bfloat16)


def test_infer_gives_the_same_from_two_threads_at_once(engine: Engine, texts: list[str]) -> None:
    # A Ray model replica runs two calls at once, so that one packs its batch while the other's forward runs.
    from concurrent.futures import ThreadPoolExecutor

    halves = [engine.tokenize(texts[::2]), engine.tokenize(texts[1::2])]
    alone = [engine.infer(t) for t in halves]
    with ThreadPoolExecutor(2) as pool:
        for _ in range(3):
            together = list(pool.map(engine.infer, halves))
            for a, b in zip(alone, together, strict=True):
                # Not bit for bit: a matmul may split its work differently while another one runs.
                np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-6)
                np.testing.assert_allclose(a.token_probs, b.token_probs, atol=1e-6)


def test_mode_windows_reads_evenly_spaced_windows() -> None:
    from pipeline.classify.engine import mode_windows

    item = np.array([0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2])  # texts of 1, 10 and 2 windows
    assert mode_windows(item, 0).all()
    read = mode_windows(item, 4)
    assert read[[0, 11, 12]].all()  # texts with no more windows than that: all read
    assert np.flatnonzero(read[1:11]).tolist() == [0, 3, 6, 9]  # first, last and evenly between
    assert np.flatnonzero(mode_windows(item, 1)).tolist() == [0, 1, 11]


def test_a_mode_branch_on_some_windows_gives_their_weighted_mean(tmp_path: Path, texts: list[str]) -> None:
    from pipeline.classify.model import ModelConfig, SeciModel

    torch.manual_seed(3)
    config = ModelConfig(name="branched", branch_layers=2, branch_head="modes", max_length=64, stride=16)
    SeciModel(config).save(tmp_path / "all")
    config.mode_windows = 3
    torch.manual_seed(3)
    SeciModel(config).save(tmp_path / "some")  # same seed, same weights
    every = Engine.from_dir(tmp_path / "all", device="cpu", dtype="float32")
    some = Engine.from_dir(tmp_path / "some", device="cpu", dtype="float32")
    tokens = some.tokenize(texts)
    plan = some._plan(tokens.ids, tokens.offsets)
    assert any(b.mode_rows is not None for b in plan.batches)  # some batches run the branch on fewer rows
    mine, full = some.infer(tokens), every.infer(tokens)
    np.testing.assert_allclose(mine.token_probs, full.token_probs, atol=1e-5)  # the metaphor path reads them all
    long = [i for i in range(len(texts)) if mine.n_windows[i] > 3]
    short = [i for i in range(len(texts)) if mine.n_windows[i] <= 3]
    assert long and short
    np.testing.assert_allclose(mine.probabilities[short], full.probabilities[short], atol=1e-5)
    # A long text's modes: its read windows alone through the whole model, averaged by the tokens they own.
    win_item, win_first, win_len, own_start, own_end = some._windows(np.diff(tokens.offsets))
    read = plan.win_weight > 0
    model = some.model
    for i in long:
        picked = np.flatnonzero((win_item == i) & read)
        assert len(picked) == 3
        rows = []
        for w in picked:
            body = tokens.ids[tokens.offsets[i] + win_first[w] : tokens.offsets[i] + win_first[w] + win_len[w]]
            ids = torch.tensor([[some._cls, *body.tolist(), some._sep]])
            with torch.inference_mode():
                logits, _ = model(ids, torch.ones_like(ids))
            rows.append(torch.softmax(logits[0] / config.temperature, -1).numpy() * (own_end[w] - own_start[w]))
        want = np.sum(rows, axis=0) / np.sum(rows)
        np.testing.assert_allclose(mine.probabilities[i], want, atol=1e-5)


def test_without_the_metaphor_path_the_modes_are_the_same_from_fewer_windows(tmp_path: Path, texts: list[str]) -> None:
    from pipeline.classify.model import ModelConfig, SeciModel

    torch.manual_seed(5)
    config = ModelConfig(name="branched", branch_layers=2, branch_head="modes", max_length=64, stride=16)
    config.mode_windows = 3
    SeciModel(config).save(tmp_path / "m")
    full = Engine.from_dir(tmp_path / "m", device="cpu", dtype="float32")
    modes = Engine.from_dir(tmp_path / "m", device="cpu", dtype="float32", metaphor=False)
    tokens = full.tokenize(texts)
    want, got = full.infer(tokens), modes.infer(tokens)
    np.testing.assert_allclose(got.probabilities, want.probabilities, atol=1e-5)
    # Only the windows the mode head reads ran: at most 3 per text, where the full run had more.
    assert got.n_windows.max() == 3 and want.n_windows.max() > 3
    assert np.all(got.n_windows == np.minimum(want.n_windows, 3))
    assert np.isnan(got.token_probs).all() and not np.isnan(want.token_probs).any()
    with pytest.raises(ValueError, match="without its metaphor path"):
        modes.predict_words([["a", "word"]])


def test_the_plain_torch_encoder_computes_what_transformers_does(tmp_path: Path, texts: list[str]) -> None:
    from pipeline.classify.bert import LiteBert
    from pipeline.classify.model import ModelConfig, SeciModel

    torch.manual_seed(5)
    SeciModel(ModelConfig(name="lite", train_embeddings=True, branch_layers=2, branch_head="modes")).save(tmp_path)
    lite = SeciModel.load_for_inference(tmp_path)
    reference = SeciModel.load(tmp_path)
    assert isinstance(lite.encoder, LiteBert) and not isinstance(reference.encoder, LiteBert)
    engine = Engine(reference, Engine.from_dir(tmp_path, device="cpu").tokenizer, torch.device("cpu"))
    tokens = engine.tokenize(texts)
    for batch in engine._plan(tokens.ids, tokens.offsets).batches:
        with torch.inference_mode():
            want = reference(batch.ids, batch.mask)
            got = lite(batch.ids, batch.mask)
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, atol=0, rtol=0)  # the same torch calls: the same bits
    assert any(not b.mask.bool().all() for b in engine._plan(tokens.ids, tokens.offsets).batches)  # padding seen
