"""Metaphor corpora readers, token metrics, the conventionality lexicon and the deliberate-metaphor detector."""

from __future__ import annotations

import csv
import importlib.util
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.classify.metaphor import (
    DEFAULT_LEXICON,
    DeliberateMetaphorDetector,
    MetaphorResult,
    TokenScore,
    _sentences,
    load_lexicon,
    tune_threshold,
)
from pipeline.train.vua import (
    IGNORE_LABEL,
    MetaphorDataError,
    WordSequence,
    best_threshold,
    detect_format,
    load_metaphor_file,
    load_moh_x,
    load_trofi,
    load_vua18,
    load_vua_verb,
    preceding_context,
    target_metrics,
    token_metrics,
)

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "metaphor"


def _shared_data() -> Path:
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    return default if default.is_dir() else Path(os.environ.get("SECI_SHARED_DATA", default))


SHARED = _shared_data()
needs_corpus = pytest.mark.skipif(not (SHARED / "metaphor").is_dir(), reason="shared/data/metaphor is absent")


# --- readers ---------------------------------------------------------------------------------------------------------


def test_vua18_sequences_from_train_sample() -> None:
    sequences = load_metaphor_file(FIXTURES / "vua18_seq_train_sample.csv")
    assert len(sequences) == 6
    first = sequences[0]
    assert first.id == "a1k-fragment02:41"
    assert first.words == ["Ca", "n't", "fail", "to", "be", "entertaining", "."]
    assert first.labels == [0] * 7
    assert first.pos is not None and first.pos[0] == "VERB" and first.pos[-1] == "PUNCT"
    assert first.genre == "news" and first.target is None
    # labeled_sentence marks "M_that", "M_hit" and "M_with": the label list must line up with those words.
    third = sequences[2]
    assert third.labels is not None
    assert [w for w, label in zip(third.words, third.labels, strict=True) if label] == ["that", "hit", "with"]
    assert third.genre == "fiction"


def test_vua18_latin1_row_is_decoded() -> None:
    last = load_metaphor_file(FIXTURES / "vua18_seq_train_sample.csv")[-1]
    assert last.id == "b1g-fragment02:1093"
    assert "Ì´å£400" in last.words
    assert last.genre == "academic"


def test_vua_verb_rows_label_only_the_target() -> None:
    sequences = load_metaphor_file(FIXTURES / "vua_verb_train_sample.csv")
    assert len(sequences) == 7
    first = sequences[0]
    assert first.target == 2 and first.words[2] == "fail"
    assert first.labels == [IGNORE_LABEL, IGNORE_LABEL, 0, IGNORE_LABEL, IGNORE_LABEL, IGNORE_LABEL, IGNORE_LABEL]
    assert first.id == "a1k-fragment02:41:2"
    assert (first.text_id, first.index) == ("a1k-fragment02", 41)
    metaphors = [s for s in sequences if s.labels is not None and s.target is not None and s.labels[s.target] == 1]
    assert [s.words[s.target] for s in metaphors] == ["shown", "climbing"]


def test_shared_task_markers_become_labels() -> None:
    sequences = load_metaphor_file(FIXTURES / "vuamc_corpus_train_sample.csv")
    assert len(sequences) == 3
    first = sequences[0]
    assert first.id == "a1e-fragment01:1"
    assert not any(word.startswith("M_") for word in first.words)
    assert first.labels is not None
    assert [w for w, label in zip(first.words, first.labels, strict=True) if label] == [
        "reveals",
        "approach",
        "leading",
        "to",
    ]


def test_preceding_context_takes_consecutive_sentences_of_the_same_text() -> None:
    sequences = load_metaphor_file(FIXTURES / "vuamc_corpus_train_sample.csv")
    assert [(s.text_id, s.index) for s in sequences] == [("a1e-fragment01", i) for i in (1, 2, 3)]
    one, two = preceding_context(sequences, 1), preceding_context(sequences, 2)
    assert one[0] == [] and one[1] == sequences[0].words and one[2] == sequences[1].words
    assert two[2] == sequences[0].words + sequences[1].words
    assert preceding_context(sequences, 0) == [[], [], []]
    # A gap in the numbering, another text or an unnumbered row gives no context.
    gap = WordSequence("x:5", ["b"], [0], None, None, None, text_id="x", index=5)
    other = WordSequence("y:4", ["c"], [0], None, None, None, text_id="y", index=4)
    first = WordSequence("x:3", ["a"], [0], None, None, None, text_id="x", index=3)
    loose = WordSequence("z", ["d"], [0], None, None, None)
    assert preceding_context([first, other, gap, loose], 1) == [[], [], [], []]


def test_context_comes_from_the_pool_where_the_file_lacks_it(tmp_path: Path) -> None:
    import torch

    from pipeline.classify.engine import Engine
    from pipeline.classify.model import ModelConfig, SeciModel, load_tokenizer
    from pipeline.train.evaluate import evaluate, word_probabilities

    pool = load_metaphor_file(FIXTURES / "vuamc_corpus_train_sample.csv")
    # A VUA-18-style dev file holding the sample text's third sentence only, as VUA-18 val samples sentences.
    dev = tmp_path / "dev.csv"
    with dev.open("w", encoding="utf-8", newline="") as f:
        rows = [["txt_id", "sen_ix", "sentence", "label_seq"], ["a1e-fragment01", 3, " ".join(pool[2].words)]]
        rows[1].append(str(list(pool[2].labels)))
        csv.writer(f).writerows(rows)
    sentences = load_metaphor_file(dev)
    assert preceding_context(sentences, 1) == [[]]
    assert preceding_context(sentences, 1, pool) == [pool[1].words]
    assert preceding_context(sentences, 2, pool) == [pool[0].words + pool[1].words]
    # The file's own sentences win over the pool's.
    own = WordSequence("a:2", ["own"], [0], None, None, None, text_id="a", index=2)
    other = WordSequence("a:2", ["pool"], [0], None, None, None, text_id="a", index=2)
    third = WordSequence("a:3", ["x"], [0], None, None, None, text_id="a", index=3)
    assert preceding_context([own, third], 1, [other]) == [[], ["own"]]

    torch.manual_seed(0)
    config = ModelConfig(metaphor_context=1)
    engine = Engine(SeciModel(config).eval(), load_tokenizer(config), torch.device("cpu"), torch.float32)
    alone, read = word_probabilities(engine, sentences), word_probabilities(engine, sentences, pool)
    assert len(alone[0]) == len(read[0]) == len(sentences[0].words)
    assert not np.allclose(alone[0], read[0])  # the context changed what the model saw

    model = tmp_path / "model"
    SeciModel(config).save(model)
    report = evaluate(model, dev, "metaphor", "cpu", [FIXTURES / "vuamc_corpus_train_sample.csv"])
    assert report["context_files"] == [str(FIXTURES / "vuamc_corpus_train_sample.csv")]
    with pytest.raises(ValueError, match="context files"):
        evaluate(model, FIXTURES.parent / "seci" / "dev.jsonl", "seci", "cpu", [dev])


def test_vua_examples_label_the_sentence_and_never_its_context() -> None:
    from pipeline.classify.model import ModelConfig, load_tokenizer
    from pipeline.train.train import vua_examples

    tokenizer = load_tokenizer(ModelConfig())
    sequences = load_metaphor_file(FIXTURES / "vuamc_corpus_train_sample.csv")
    alone = vua_examples(sequences, tokenizer, 256)
    with_context = vua_examples(sequences, tokenizer, 256, context=1)
    for (ids, labels, _), (cids, clabels, _) in zip(alone, with_context, strict=True):
        assert [x for x in labels if x != IGNORE_LABEL] == [x for x in clabels if x != IGNORE_LABEL]
        assert len(cids) >= len(ids)
    assert len(with_context[1][0]) > len(alone[1][0])
    # The first label follows the context: every token of the preceding sentence is ignored.
    context_tokens = len(tokenizer(sequences[0].words, is_split_into_words=True, add_special_tokens=False)["input_ids"])
    assert set(with_context[1][1][: context_tokens + 1]) == {IGNORE_LABEL}
    # A sentence whose context would not fit in the window goes alone.
    assert vua_examples(sequences, tokenizer, len(alone[2][0]) + 1, context=2)[2] == alone[2]


def test_soft_targets_take_the_place_of_the_gold_labels() -> None:
    from pipeline.classify.model import ModelConfig, load_tokenizer
    from pipeline.train.train import vua_examples

    tokenizer = load_tokenizer(ModelConfig())
    sequences = load_metaphor_file(FIXTURES / "vuamc_corpus_train_sample.csv")
    targets = [[0.25 + 0.5 * label for label in s.labels] for s in sequences]
    gold = vua_examples(sequences, tokenizer, 256, context=1)
    soft = vua_examples(sequences, tokenizer, 256, context=1, targets=targets)
    for (ids, labels, _), (sids, slabels, _), want in zip(gold, soft, targets, strict=True):
        assert ids == sids
        assert [x for x in slabels if x != IGNORE_LABEL] == want
        assert [x == IGNORE_LABEL for x in labels] == [x == IGNORE_LABEL for x in slabels]


@pytest.mark.slow
def test_distillation_targets_mix_gold_with_the_teachers_mean(tmp_path: Path) -> None:
    from pipeline.classify.engine import Engine
    from pipeline.classify.model import ModelConfig, SeciModel
    from pipeline.train.evaluate import word_probabilities
    from pipeline.train.train import distillation_targets

    sequences = load_metaphor_file(FIXTURES / "vuamc_corpus_train_sample.csv")[:6]
    import torch

    teachers = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        SeciModel(ModelConfig(metaphor_context=1)).save(tmp_path / f"t{seed}")
        teachers.append(str(tmp_path / f"t{seed}"))
    probs = [word_probabilities(Engine.from_dir(Path(t), device="cpu"), sequences) for t in teachers]
    mixed = distillation_targets(sequences, teachers, 0.25)
    for i, s in enumerate(sequences):
        want = 0.75 * np.asarray(s.labels) + 0.25 * (np.asarray(probs[0][i]) + np.asarray(probs[1][i])) / 2
        assert np.allclose(mixed[i], want, atol=1e-6)
    assert distillation_targets(sequences, teachers, 0.0) == [[float(x) for x in s.labels] for s in sequences]


def test_moh_x_trofi_and_fold_shapes() -> None:
    moh = load_metaphor_file(FIXTURES / "moh_x_shaped.csv")
    assert [(s.words[s.target], s.labels[s.target]) for s in moh if s.target is not None and s.labels] == [
        ("absorbed", 1),
        ("absorbed", 0),
        ("cut", 1),
    ]
    assert moh[0].id == "moh_x_shaped:1"
    trofi = load_metaphor_file(FIXTURES / "trofi_shaped.csv")
    assert trofi[1].words[trofi[1].target or 0] == "planted" and "-LRB-" in trofi[1].words
    fold = load_metaphor_file(FIXTURES / "melbert_fold_shaped.tsv")
    assert [s.words[s.target or 0] for s in fold] == ["hit", "hit"]
    assert fold[0].pos is not None and fold[0].pos[2] == "VERB"
    assert fold[0].labels is not None and fold[0].labels[2] == 1


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        (["txt_id", "sen_ix", "sentence", "label_seq", "pos_seq", "labeled_sentence", "genre"], "vua_seq"),
        (["text_idx", "sentence_idx", "verb", "sentence", "verb_idx", "label"], "vua_verb"),
        (["arg1", "arg2", "verb", "sentence", "verb_idx", "label"], "verb_target"),
        (["verb", "sentence", "verb_idx", "label"], "verb_target"),
        (["index", "label", "sentence", "pos", "v_index"], "melbert_cls"),
        (["txt_id", "sentence_id", "sentence_txt"], "shared_task"),
    ],
)
def test_detect_format(header: list[str], kind: str) -> None:
    assert detect_format(header) == kind


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "empty"),
        ("a,b,c\n1,2,3\n", "format"),
        (b"sentence,label_seq\n\x00\x01\x02", "binary"),
        # Every row is bad, so nothing is left.
        ('sentence,label_seq\nA b,"[0]"\n', "empty"),
    ],
)
def test_bad_files_raise_clear_reasons(tmp_path: Path, content: str | bytes, reason: str) -> None:
    with pytest.raises(MetaphorDataError) as info:
        load_metaphor_file(_write(tmp_path, "bad.csv", content))
    assert info.value.reason == reason


def test_missing_and_too_large(tmp_path: Path) -> None:
    with pytest.raises(MetaphorDataError) as missing:
        load_metaphor_file(tmp_path / "absent.csv")
    assert missing.value.reason == "missing"
    with pytest.raises(MetaphorDataError) as large:
        load_metaphor_file(FIXTURES / "vua18_seq_train_sample.csv", max_bytes=100)
    assert large.value.reason == "too-large"


def test_bad_rows_are_skipped_not_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path('{marker}').touch()"
    content = (
        "sentence,label_seq,pos_seq,genre\n"
        f"Hello world,\"{payload}\",\"['X', 'X']\",news\n"  # code, not a literal: never executed
        "Hello world,\"[0, 2]\",\"['X', 'X']\",news\n"  # a label that is not 0/1
        "Hello world,\"[0]\",\"['X', 'X']\",news\n"  # too few labels
        "Hello world,\"(0, 1)\",\"['X', 'X']\",news\n"  # not a list
        "Hello world,\"[0, 1]\",\"['X', 'X']\",news,extra\n"  # more cells than columns
        "Good row,\"[1, 0]\",\"['ADJ', 'NOUN']\",news\n"
    )
    with caplog.at_level(logging.WARNING):
        sequences = load_metaphor_file(_write(tmp_path, "rows.csv", content))
    assert not marker.exists()
    assert [s.words for s in sequences] == [["Good", "row"]]
    assert sum("skipped" in record.getMessage() for record in caplog.records) == 5


def test_bad_target_rows_are_skipped(tmp_path: Path) -> None:
    content = "verb,sentence,verb_idx,label\ngo,We go,5,1\ngo,We go,x,1\ngo,We go,1,3\ngo,We go,1,1\n"
    sequences = load_metaphor_file(_write(tmp_path, "t.csv", content))
    assert len(sequences) == 1 and sequences[0].labels == [IGNORE_LABEL, 1]


def test_named_loaders_check_split() -> None:
    with pytest.raises(ValueError):
        load_vua18(FIXTURES, "dev")
    with pytest.raises(ValueError):
        load_vua_verb(FIXTURES, "heldout")


# --- metrics ---------------------------------------------------------------------------------------------------------

GOLD = [[1, 0, 1, 0], [0, 1, IGNORE_LABEL]]
PROB = [[0.9, 0.6, 0.4, 0.1], [0.2, 0.7, 0.99]]


def test_token_metrics_exact() -> None:
    m = token_metrics(GOLD, PROB, 0.5)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 2)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["support"] == 3 and m["total"] == 6
    lower = token_metrics(GOLD, PROB, 0.35)
    assert (lower["precision"], lower["recall"], lower["f1"]) == pytest.approx((0.75, 1.0, 6 / 7))


def test_token_metrics_rejects_misaligned() -> None:
    with pytest.raises(ValueError):
        token_metrics([[1, 0]], [[0.5]], 0.5)
    with pytest.raises(ValueError):
        token_metrics([[1]], [[0.5], [0.5]], 0.5)


def test_token_metrics_with_no_prediction() -> None:
    m = token_metrics([[1, 0]], [[0.1, 0.1]], 0.5)
    assert (m["precision"], m["recall"], m["f1"], m["accuracy"]) == (0.0, 0.0, 0.0, 0.5)


def test_best_threshold_exact() -> None:
    # F1 at each cut: .9 -> 1/2, .7 -> 4/5, .6 -> 2/3, .4 -> 6/7, .2 -> 3/4, .1 -> 2/3.
    assert best_threshold(GOLD, PROB) == pytest.approx(0.4)
    # A tie (2/3 at 0.9 and at 0.6) goes to the higher threshold.
    assert best_threshold([[1, 0, 0, 1]], [[0.9, 0.8, 0.7, 0.6]]) == pytest.approx(0.9)
    assert best_threshold([[0, 0]], [[0.3, 0.9]]) == 0.5


def test_target_metrics_scores_only_targets() -> None:
    sequences = [
        WordSequence("a", ["He", "grasped", "it"], [IGNORE_LABEL, 1, IGNORE_LABEL], None, None, 1),
        WordSequence("b", ["She", "ran", "home"], [IGNORE_LABEL, 0, IGNORE_LABEL], None, None, 1),
        WordSequence("c", ["Prices", "climbed"], [IGNORE_LABEL, 1], None, None, 1),
    ]
    # The non-target words carry high scores; they must not count.
    prob = [[0.99, 0.8, 0.99], [0.99, 0.7, 0.99], [0.99, 0.2]]
    m = target_metrics(sequences, prob, 0.5)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (1, 1, 1, 0)
    assert m["f1"] == pytest.approx(0.5) and m["support"] == 2
    with pytest.raises(ValueError):
        target_metrics([WordSequence("d", ["x"], [0], None, None, None)], [[0.5]], 0.5)


# --- lexicon ---------------------------------------------------------------------------------------------------------


def test_committed_lexicon_is_small_and_sane() -> None:
    assert DEFAULT_LEXICON.stat().st_size < 1_000_000
    data = json.loads(DEFAULT_LEXICON.read_text(encoding="utf-8"))
    assert "train" in data["source"] and data["min_count"] == 3
    entries = load_lexicon(DEFAULT_LEXICON)
    assert all(count >= 3 and 0.0 <= rate <= 1.0 for count, rate in entries.values())
    assert entries["in"][0] > 1000 and entries["in"][1] >= 0.5
    assert entries["the"][1] == 0.0


def _load_build_script():
    spec = importlib.util.spec_from_file_location(
        "build_conventionality", REPO / "scripts" / "build_conventionality.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_script_counts_train_sample(tmp_path: Path) -> None:
    folder = tmp_path / "metaphor" / "vua18_seq"
    folder.mkdir(parents=True)
    shutil.copy(FIXTURES / "vua18_seq_train_sample.csv", folder / "VUA_seq_formatted_train.csv")
    module = _load_build_script()
    lexicon = module.build(tmp_path, min_count=1, conventional_min_count=20, conventional_min_rate=0.5)
    lemmas = lexicon["lemmas"]
    assert "." not in lemmas and "," not in lemmas  # punctuation is left out
    assert lemmas["hit"] == [1, 1.0]  # "hit" is metaphorical in the one sample sentence where it occurs
    assert lemmas["go"] == [4, 0.0]  # "going", "go" twice and "went" lemmatise together
    out = tmp_path / "lexicon.json"
    out.write_text(module.to_json(lexicon), encoding="utf-8")
    assert load_lexicon(out)["hit"] == (1, 1.0)


# --- deliberate metaphor detector ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def detector() -> DeliberateMetaphorDetector:
    return DeliberateMetaphorDetector()


def scores_for(text: str, high: dict[str, float], default: float = 0.05) -> list[TokenScore]:
    """Word scores as the token model would give them: `high` names the words it finds metaphorical."""
    return [
        TokenScore(m.group(), m.start(), m.end(), high.get(m.group(), default)) for m in re.finditer(r"[\w'-]+", text)
    ]


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("Think of the cache as a pantry.", "pantry"),
        ("Honestly, it's like a remote control for grown-ups.", "remote control for grown-ups"),
        ("The undo key should work like a web browser back button.", "web browser back button"),
        ("What they built is a stress ball of a remote.", "stress ball"),
        ("The server room was as quiet as a mouse.", "mouse"),
        ("Imagine the queue as a conveyor belt.", "conveyor belt"),
        ("A lockfile is akin to a shopping list.", "shopping list"),
        ("Code review is the equivalent of a fire drill.", "fire drill"),
        ("She walked as if the floor were made of glass.", "as if the floor were made of glass"),
    ],
)
def test_patterns_find_deliberate_metaphors(detector: DeliberateMetaphorDetector, text: str, span: str) -> None:
    result = detector.detect(text)
    assert result.metaphor
    assert [s.text for s in result.spans] == [span]
    found = result.spans[0]
    assert text[found.start : found.end] == span
    assert 0.5 <= found.score <= 1.0


def test_copular_metaphor_needs_token_evidence(detector: DeliberateMetaphorDetector) -> None:
    text = "Our release process is a relay race."
    # Patterns alone cannot tell this from "our release process is a manual checklist".
    assert not detector.detect(text).metaphor
    result = detector.detect(text, scores_for(text, {"relay": 0.8, "race": 0.8}))
    assert result.metaphor
    assert [s.text for s in result.spans] == ["relay race"]
    assert [t.text for t in result.tokens] == ["relay", "race"]
    literal = "Our release process is a manual checklist."
    assert not detector.detect(literal, scores_for(literal, {"checklist": 0.1})).metaphor


def test_copular_rule_can_be_turned_off(detector: DeliberateMetaphorDetector) -> None:
    text = "Our release process is a relay race. It works like a revolving door."
    scores = scores_for(text, {"relay": 0.9, "race": 0.9, "revolving": 0.8, "door": 0.8})
    on = DeliberateMetaphorDetector({"strong_token_threshold": 1.01}, nlp=detector.nlp)
    off = DeliberateMetaphorDetector({"strong_token_threshold": 1.01, "copular": False}, nlp=detector.nlp)
    assert [s.rule for s in on.detect(text, scores).spans] == ["copular", "like"]
    assert [s.rule for s in off.detect(text, scores).spans] == ["like"]


def test_conventional_modifier_is_no_evidence(detector: DeliberateMetaphorDetector) -> None:
    # "high" is conventionally metaphorical (VUA train): it does not make "a high priority" a deliberate metaphor.
    text = "The release is a high priority."
    assert detector.is_conventional("high") and not detector.is_conventional("mountain")
    assert not detector.detect(text, scores_for(text, {"high": 0.97, "priority": 0.2})).metaphor
    fresh = "The release is a high mountain."
    result = detector.detect(fresh, scores_for(fresh, {"high": 0.97, "mountain": 0.95}))
    assert [s.text for s in result.spans] == ["high mountain"]


def test_strong_word_inside_a_pattern_reports_the_phrase(detector: DeliberateMetaphorDetector) -> None:
    text = "Our release process is a relay race."
    result = detector.detect(text, scores_for(text, {"relay": 0.85, "race": 0.95}))
    assert [s.text for s in result.spans] == ["relay race"]


NEGATIVES = [
    "High prices hurt every team this quarter.",
    "We went over the numbers in the meeting.",
    "The new hires grasp the idea quickly.",
    "Changing the schema now would open a can of worms.",
    "The remote uses the same battery as a phone.",
    "I'd like a coffee before the call.",
    "We rely on tools like pandas and numpy.",
    "We study metaphor in poetry.",
    "It looks like a bug in the parser.",
    "John is a developer on the payments team.",
    "The deploy script works like a charm.",
    "This is a copy of a file from the old server.",
    "Let's touch base on Friday and get everyone on the same page.",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_negatives_without_scores(detector: DeliberateMetaphorDetector, text: str) -> None:
    result = detector.detect(text)
    assert not result.metaphor and result.spans == []


@pytest.mark.parametrize(
    ("text", "high"),
    [
        ("High prices hurt every team this quarter.", {"High": 0.97}),  # conventional in VUA: "high" is 61x, 61 %
        ("We went over the numbers in the meeting.", {"in": 0.99, "over": 0.95}),  # function words
        ("The new hires grasp the idea quickly.", {"grasp": 0.97}),  # listed as conventional
        ("Changing the schema now would open a can of worms.", {"can": 0.95, "worms": 0.97}),  # idiom
        ("We study metaphor in poetry.", {"metaphor": 0.97}),  # the topic, not a use
    ],
)
def test_negatives_with_high_token_scores(
    detector: DeliberateMetaphorDetector, text: str, high: dict[str, float]
) -> None:
    result = detector.detect(text, scores_for(text, high))
    assert not result.metaphor
    assert result.tokens  # the token-level detections are still reported


def test_strong_fresh_word_is_a_span(detector: DeliberateMetaphorDetector) -> None:
    text = "The support queue is drowning in tickets."
    result = detector.detect(text, scores_for(text, {"drowning": 0.96}))
    assert result.metaphor and [s.text for s in result.spans] == ["drowning"]
    weaker = detector.detect(text, scores_for(text, {"drowning": 0.7}))
    assert not weaker.metaphor and [t.text for t in weaker.tokens] == ["drowning"]


def test_detect_many_matches_detect(detector: DeliberateMetaphorDetector) -> None:
    texts = ["Think of the cache as a pantry.", "I'd like a coffee.", "Our release process is a relay race."]
    scores = [None, None, scores_for(texts[2], {"relay": 0.8, "race": 0.8})]
    many = detector.detect_many(texts, scores)
    assert [r.metaphor for r in many] == [True, False, True]
    assert [r.to_dict() for r in many] == [detector.detect(t, s).to_dict() for t, s in zip(texts, scores, strict=True)]
    with pytest.raises(ValueError):
        detector.detect_many(texts, [None])


def test_result_dict_and_bad_offsets(detector: DeliberateMetaphorDetector) -> None:
    text = "Think of the cache as a pantry."
    bogus = [TokenScore("x", 500, 510, 0.99), TokenScore("y", 5, 2, 0.99)]
    out = detector.detect(text, bogus).to_dict()
    assert set(out) == {"metaphor", "metaphor_spans", "metaphor_tokens"}
    assert out["metaphor"] is True
    assert out["metaphor_spans"] == [{"text": "pantry", "start": 24, "end": 30, "score": 0.7}]


def test_config_threshold_and_unknown_keys() -> None:
    strict = DeliberateMetaphorDetector({"threshold": 0.95, "prefilter": False}, nlp=None)
    result = strict.detect("Think of the cache as a pantry.")
    assert not result.metaphor and result.score == pytest.approx(0.7)
    # With the gate, a sentence no rule can lift to the threshold is not parsed, so its candidates are not scored.
    gated = DeliberateMetaphorDetector({"threshold": 0.95}, nlp=strict.nlp).detect("Think of the cache as a pantry.")
    assert not gated.metaphor and gated.score == 0.0
    with pytest.raises(ValueError):
        DeliberateMetaphorDetector({"treshold": 0.4})


def test_long_text_is_cut(caplog: pytest.LogCaptureFixture) -> None:
    short = DeliberateMetaphorDetector({"max_chars": 40})
    text = "Nothing here at all, just words. " * 3 + "Think of the cache as a pantry."
    with caplog.at_level(logging.WARNING):
        assert not short.detect(text).metaphor
    assert any("first 40" in record.getMessage() for record in caplog.records)


def test_is_conventional_uses_lexicon_and_settings() -> None:
    lexicon = {"in": (1949, 0.524), "relay": (3, 0.9), "race": (9, 0.0)}
    detector = DeliberateMetaphorDetector(lexicon=lexicon)
    assert detector.is_conventional("in") and detector.is_conventional("grasp")
    assert not detector.is_conventional("relay")  # too rare to be conventional
    looser = DeliberateMetaphorDetector({"conventional_min_count": 2}, lexicon=lexicon)
    assert looser.is_conventional("relay")


def test_tune_threshold_exact() -> None:
    def result(score: float) -> MetaphorResult:
        return MetaphorResult(metaphor=False, spans=[], tokens=[], score=score)

    results = [result(0.9), result(0.6), result(0.4), result(0.0)]
    # F1 at each cut: 0.9 -> 2/3, 0.6 -> 1/2, 0.4 -> 4/5.
    assert tune_threshold(results, [True, False, True, False]) == pytest.approx(0.4)
    assert tune_threshold(results, [False] * 4) == 0.5
    with pytest.raises(ValueError):
        tune_threshold(results, [True])


# --- shared corpora --------------------------------------------------------------------------------------------------


@pytest.mark.corpus
@needs_corpus
def test_corpus_counts_match_source_notes() -> None:
    metaphor = SHARED / "metaphor"
    train = load_vua18(metaphor / "vua18_seq", "train")
    assert len(train) == 6323
    assert sum(len(s.words) for s in train) == 116_622
    assert sum(sum(s.labels or []) for s in train) == 13_051
    assert len(load_vua18(metaphor / "vua18_seq", "val")) == 1550
    assert len(load_vua18(metaphor / "vua18_seq", "test")) == 2694
    assert len(load_vua_verb(metaphor / "vua_verb", "train")) == 15_516
    assert len(load_vua_verb(metaphor / "vua_verb", "test")) == 5873
    assert len(load_moh_x(metaphor / "moh-x")) == 647
    assert len(load_trofi(metaphor / "trofi")) == 3737


class _CountingNlp:
    """A spaCy pipeline that records what it is asked to parse."""

    def __init__(self, nlp: Any) -> None:
        self.nlp, self.parsed = nlp, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.nlp, name)

    def pipe(self, texts: Any, **kwargs: Any) -> Any:
        texts = list(texts)
        self.parsed.extend(texts)
        return self.nlp.pipe(texts, **kwargs)


GATE_ITEM = (
    "Thanks for the numbers. We went over them in the meeting on Monday and they hold up.\n\n"
    "Honestly, the new intake form is like a revolving door for requests. "
    "John is a developer on the payments team. Our release process is a relay race. "
    "Changing the schema now would open a can of worms. The support queue is drowning in tickets. "
    "Think of the cache as a pantry. I'd like a coffee before the call."
)
# One sentence per cue of the gate, each at a different prior: the gated detector must agree with the full parse.
GATE_CUES = (
    "Our old build server isn't a relay race. The scheduler is the heart of the platform. "
    "The new queue is as quiet as a mouse. The rollout moved like the wind. Requests pile up like bricks. "
    "We view the registry as a library. Picture the cache as a pantry. It works as if the network were a river. "
    "The token is a kind of passport for packages. That is a beast of a machine. The review is akin to a tollgate. "
    "The audit was the equivalent of a fire drill. I imagined the roadmap as a relay race. "
    "The launch is a high priority."
)
GATE_SCORES = {
    "revolving": 0.8, "door": 0.8, "relay": 0.9, "race": 0.93, "drowning": 0.96, "in": 0.99, "over": 0.95,
    "heart": 0.85, "mouse": 0.7, "wind": 0.75, "bricks": 0.66, "library": 0.8, "pantry": 0.7, "river": 0.72,
    "passport": 0.8, "beast": 0.9, "tollgate": 0.6, "drill": 0.78, "high": 0.97,
}  # fmt: skip


@pytest.mark.parametrize("threshold", [0.5, 0.694, 0.8])
@pytest.mark.parametrize("strong", [0.9, 1.01])
@pytest.mark.parametrize("copular", [True, False])
def test_prefilter_gives_the_same_decisions(
    detector: DeliberateMetaphorDetector, threshold: float, strong: float, copular: bool
) -> None:
    texts = [
        GATE_ITEM,
        GATE_CUES,
        *NEGATIVES,
        "Think of the cache as a pantry.",
        "Our release process is a relay race.",
    ]
    scores = [scores_for(t, GATE_SCORES) for t in texts]
    settings = {"threshold": threshold, "strong_token_threshold": strong, "copular": copular}
    full = DeliberateMetaphorDetector({**settings, "prefilter": False}, nlp=detector.nlp)
    gated = DeliberateMetaphorDetector(settings, nlp=detector.nlp)
    for batch in (scores, [None] * len(texts)):
        expected = [r.to_dict() for r in full.detect_many(texts, batch)]
        assert [r.to_dict() for r in gated.detect_many(texts, batch)] == expected
        if threshold <= 0.7:
            assert any(r["metaphor"] for r in expected)  # the comparison is not only between empty results


def test_detect_settings_parses_once_and_matches_separate_detectors(detector: DeliberateMetaphorDetector) -> None:
    texts = [GATE_ITEM, GATE_CUES, *NEGATIVES]
    scores = [scores_for(t, GATE_SCORES) for t in texts]
    settings = [{"strong_token_threshold": 0.9}, {"strong_token_threshold": 1.01, "copular": False}]
    counting = _CountingNlp(detector.nlp)
    shared = DeliberateMetaphorDetector({"threshold": 0.6}, nlp=counting)
    shared._phrase_matchers()
    counting.parsed.clear()
    table = shared.detect_settings(texts, scores, settings)
    assert len(counting.parsed) == len(texts)  # one parse per text, whatever the number of settings
    for overrides, results in zip(settings, table, strict=True):
        alone = DeliberateMetaphorDetector({"threshold": 0.6, **overrides, "prefilter": False}, nlp=detector.nlp)
        expected = alone.detect_many(texts, scores)
        assert [(r.to_dict(), r.score) for r in results] == [(r.to_dict(), r.score) for r in expected]
    assert any(a.to_dict() != b.to_dict() for a, b in zip(*table, strict=True))  # the settings do differ


def test_prefilter_parses_only_sentences_that_could_fire(detector: DeliberateMetaphorDetector) -> None:
    counting = _CountingNlp(detector.nlp)
    gated = DeliberateMetaphorDetector({"threshold": 0.6, "strong_token_threshold": 1.01}, nlp=counting)
    gated._phrase_matchers()  # the idiom lists are parsed once; count only the items' sentences
    counting.parsed.clear()
    result = gated.detect(GATE_ITEM, scores_for(GATE_ITEM, GATE_SCORES))
    assert [s.text for s in result.spans] == ["revolving door for requests", "relay race", "pantry"]
    # "in" and "over" score high but are function words; no cue, no strong content word: not parsed.
    assert not any("went over them" in text for text in counting.parsed)
    assert not any(text.startswith("John is a developer") for text in counting.parsed)
    assert any(text.startswith("Our release process") for text in counting.parsed)
    assert len(counting.parsed) < len(list(_sentences(GATE_ITEM)))


def test_vocabulary_does_not_grow_over_an_archive(detector: DeliberateMetaphorDetector) -> None:
    detector.detect("Think of the cache as a pantry.")  # loads the pipeline and the idiom matchers
    strings = len(detector.nlp.vocab.strings)
    novel = [f"Think of the zq{k}xv service as a wq{k}yz pantry." for k in range(50)]
    results = detector.detect_many(novel)
    assert all(r.metaphor for r in results)
    assert results[7].spans[0].text == "wq7yz pantry"  # results stay readable after the zone is closed
    assert len(detector.nlp.vocab.strings) == strings
