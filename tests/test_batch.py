"""`seci batch`: end to end on fixtures, errors accounting, resume, crash safety (kill -9), Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


from pipeline.aggregate.ba import BA_TYPES
from pipeline.aggregate.results import load_results
from pipeline.classify.batch import run_batch
from pipeline.classify.engine import Engine
from pipeline.classify.metaphor import DeliberateMetaphorDetector, MetaphorResult
from pipeline.classify.rows import Scorer, flagged_tokens, metaphor_detector, row_schema, token_scores
from pipeline.classify.store import OutputExists, ResultStore, item_key
from pipeline.classify.word_scores import WordScores
from pipeline.ingest import ingest
from pipeline.items import Item

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
INPUTS = [FIXTURES / "meetings" / "handmade", FIXTURES / "documents" / "pushback.md", FIXTURES / "email" / "three.mbox"]
FIELDS = {
    "id", "source", "path", "team", "timestamp", "authors", "participants", "ba", "mode", "probabilities",
    "metaphor", "metaphor_spans", "metaphor_tokens", "text", "model", "thread", "position", "title", "medium",
    "meta", "start_seconds", "end_seconds", "content_hash", "warnings",
}  # fmt: skip


@pytest.fixture(scope="module")
def fast(engine: Engine) -> Scorer:
    """Model only: the metaphor rules (spaCy) are tested once, in the end-to-end test."""
    return Scorer(engine, None)


def _rows(out: Path) -> list[dict]:
    if (out / "items.parquet").exists():
        return pq.read_table(out / "items.parquet").to_pylist()
    return [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]


def _archive(folder: Path, n: int) -> Path:
    """A generic JSONL archive of n short, distinct items built from a train-part fixture."""
    paragraphs = [p for p in (FIXTURES / "documents" / "pep-0008.rst").read_text().split("\n\n") if len(p) > 60]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "archive.jsonl"
    with path.open("w") as fh:
        for i in range(n):
            text = f"{paragraphs[i % len(paragraphs)][:300]} (item {i})"
            fh.write(json.dumps({"id": f"item-{i:04d}", "text": text}) + "\n")
    return path


def test_end_to_end_parquet_with_errors(tmp_path: Path, engine: Engine) -> None:
    broken = tmp_path / "in" / "broken.pdf"
    broken.parent.mkdir()
    broken.write_bytes(b"not a pdf at all")
    inputs = [*INPUTS, broken.parent]
    expected = [r for r in ingest(inputs) if isinstance(r, Item)]
    rules = Scorer(engine, DeliberateMetaphorDetector())
    out = tmp_path / "out"
    summary = run_batch(inputs, out, scorer=rules, chunk_size=4)

    rows = _rows(out)
    assert sorted(r["id"] for r in rows) == sorted(i.id for i in expected)
    assert set(rows[0]) >= FIELDS
    for row in rows:
        assert row["mode"] in rules.modes and row["ba"] in BA_TYPES
        assert abs(sum(row["probabilities"].values()) - 1) < 1e-6
        assert isinstance(row["metaphor"], bool)
        assert isinstance(json.loads(row["meta"]), dict)
        assert row["model"] == "test 1"
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [(e["path"], e["reason"]) for e in errors] == [(str(broken), "parse")]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete"
    assert run["items"] == run["rows"] == len(rows) == summary.items
    assert run["errors"] == 1 and run["inputs"] == summary.inputs > len(INPUTS)
    assert not (out / "parts").exists()
    assert len(load_results(out)) == len(rows)  # the timeline reads it


def test_flagged_tokens_are_the_word_scores_at_or_above_the_threshold(engine: Engine) -> None:
    texts = ["The market is a jungle, and we are lost in it.", "Send the report.", ""]
    for text, prediction in zip(texts, engine.predict(texts), strict=True):
        words = token_scores(text, prediction)
        # Thresholds at a word's own score keep it (at or above), and those between scores split the words.
        for threshold in [-1.0, 2.0, *(w.score for w in words)]:
            expected = [
                {"text": w.text, "start": w.start, "end": w.end, "score": round(w.score, 4)}
                for w in words
                if w.score >= threshold
            ]
            assert flagged_tokens(text, prediction, threshold) == expected


def test_the_rules_read_word_score_arrays_as_they_read_word_objects(engine: Engine) -> None:
    texts = [i.text for i in ingest(INPUTS) if isinstance(i, Item)]
    texts += ["Think of the codebase as a garden: it needs weeding, like a lawn, or it grows wild. Send it.", ""]
    detector = metaphor_detector(engine.config)
    rng = np.random.default_rng(0)
    arrays, objects = [], []
    for text, prediction in zip(texts, engine.predict(texts), strict=True):
        words = prediction.words
        # Scores over the whole range, and some exactly at the gate's floor and the token threshold (0.5).
        scores = rng.choice([rng.random(), 0.5, 0.95], size=len(words.starts), p=[0.8, 0.1, 0.1]).astype(np.float32)
        arrays.append(WordScores(text, words.starts, words.ends, scores))
        objects.append(arrays[-1].all_tokens())
    from_arrays, from_objects = detector.detect_many(texts, arrays), detector.detect_many(texts, objects)
    assert [r.to_dict() for r in from_arrays] == [r.to_dict() for r in from_objects]
    assert [r.candidates for r in from_arrays] == [r.candidates for r in from_objects]
    assert sum(len(r.candidates) for r in from_objects) > 10 and any(r.metaphor for r in from_objects)


def test_jsonl_without_text_and_refusing_to_overwrite(tmp_path: Path, engine: Engine) -> None:
    out = tmp_path / "out"
    run_batch(INPUTS[:1], out, scorer=Scorer(engine, None, include_text=False), fmt="jsonl", chunk_size=3)
    rows = _rows(out)
    assert rows and all("text" not in row and row["metaphor"] is None for row in rows)
    with pytest.raises(OutputExists):
        run_batch(INPUTS[:1], out, scorer=Scorer(engine, None), fmt="jsonl")
    with pytest.raises(OutputExists, match="another --format"):
        run_batch(INPUTS[:1], out, scorer=Scorer(engine, None), fmt="parquet", resume=True)


def test_metaphor_off_gives_the_same_modes_and_empty_metaphor_fields(
    tmp_path: Path, model_dir: Path, fast: Scorer
) -> None:
    archive = _archive(tmp_path / "in", 40)
    run_batch([archive], tmp_path / "full", scorer=fast, chunk_size=16)
    run_batch([archive], tmp_path / "off", model_dir=model_dir, device="cpu", dtype="float32", metaphor="off")
    want = {r["id"]: r for r in _rows(tmp_path / "full")}
    got = _rows(tmp_path / "off")
    assert sorted(r["id"] for r in got) == sorted(want)
    assert any(r["metaphor_tokens"] for r in want.values())  # the full run did flag words
    for row in got:
        assert row["mode"] == want[row["id"]]["mode"]
        for mode, p in row["probabilities"].items():
            assert abs(p - want[row["id"]]["probabilities"][mode]) < 1e-5
        assert row["metaphor"] is None and row["metaphor_spans"] == [] and row["metaphor_tokens"] == []
    assert json.loads((tmp_path / "off" / "run.json").read_text())["options"]["metaphor"] == "off"
    assert load_results(tmp_path / "off")["metaphor"].isna().all()  # a rate of nothing, not of 0%


def test_resume_skips_done_items_and_rescores_changed_ones(tmp_path: Path, fast: Scorer) -> None:
    archive = tmp_path / "in" / "a.jsonl"
    archive.parent.mkdir()
    items = [{"id": f"m{i}", "text": f"Message {i}: we should write the runbook down together."} for i in range(5)]
    archive.write_text("".join(json.dumps(r) + "\n" for r in items))
    out = tmp_path / "out"
    run_batch([archive], out, scorer=fast, chunk_size=2)
    first = {r["id"]: r for r in _rows(out)}

    items[1]["text"] = "A changed message: the standup is a relay race."
    items.append({"id": "m5", "text": "A new message."})
    archive.write_text("".join(json.dumps(r) + "\n" for r in items))
    summary = run_batch([archive], out, scorer=fast, resume=True, chunk_size=2)
    assert (summary.skipped_by_resume, summary.items, summary.superseded) == (4, 2, 1)
    rows = {r["id"]: r for r in _rows(out)}
    assert sorted(rows) == [f"m{i}" for i in range(6)] and len(_rows(out)) == 6
    assert rows["m1"]["text"].startswith("A changed message")
    assert rows["m0"]["probabilities"] == first["m0"]["probabilities"]


def test_item_processing_errors_keep_the_row(tmp_path: Path, engine: Engine) -> None:
    class Exploding:
        def detect_many(self, texts, scores):
            raise RuntimeError("parser crashed")

        def detect(self, text, scores):
            if "BOOM" in text:
                raise RuntimeError("parser crashed")
            return MetaphorResult(False, [], [])

    archive = tmp_path / "in" / "a.jsonl"
    archive.parent.mkdir()
    archive.write_text(json.dumps({"id": "ok", "text": "fine"}) + "\n" + json.dumps({"id": "bad", "text": "BOOM"}))
    out = tmp_path / "out"
    summary = run_batch([archive], out, scorer=Scorer(engine, Exploding()))  # type: ignore[arg-type]
    rows = {r["id"]: r for r in _rows(out)}
    assert rows["ok"]["metaphor"] is False and rows["bad"]["metaphor"] is None
    assert rows["bad"]["warnings"] == ["metaphor rules failed; metaphor fields are empty"]
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [e["reason"] for e in errors] == ["process"] and "bad" in errors[0]["error"]
    assert summary.errors == 1 and summary.items == 2


def test_interrupted_merge_is_finished_or_rolled_back(tmp_path: Path) -> None:
    schema = row_schema(("a", "b"))
    row = {name: None for name in schema.names} | {"id": "x", "content_hash": "h", "model": "m 1"}
    store = ResultStore(tmp_path, "parquet", schema)
    store.prepare(resume=False)
    store.write_part([row])
    # Crash after the merged file was complete and the parts moved aside: the next start finishes the merge.
    (tmp_path / "items.parquet.tmp").write_bytes((tmp_path / "parts" / "part-000000.parquet").read_bytes())
    os.replace(tmp_path / "parts", tmp_path / "parts.merged")
    (tmp_path / "parts").mkdir()
    ResultStore(tmp_path, "parquet", schema).recover()
    assert (tmp_path / "items.parquet").exists() and not (tmp_path / "parts.merged").exists()
    # Crash while writing the merged file: the half-written file is dropped, the parts stay.
    (tmp_path / "items.parquet.tmp").write_bytes(b"PAR1 half a file")
    (tmp_path / "parts" / "part-000001.parquet.tmp").write_bytes(b"half a part")
    again = ResultStore(tmp_path, "parquet", schema)
    again.prepare(resume=True)
    assert not list(tmp_path.glob("*.tmp")) and not list((tmp_path / "parts").glob("*.tmp"))
    assert again.done_keys("m 1") == {item_key("x", "h")}


KILLED_RUN = """
import sys
from pathlib import Path
from pipeline.classify.batch import run_batch
run_batch([Path(sys.argv[1])], Path(sys.argv[2]), model_dir=Path(sys.argv[3]), device="cpu", dtype="float32",
          metaphor="tokens", chunk_size=16)
"""


@pytest.mark.slow
def test_kill_9_then_resume_gives_exactly_the_uninterrupted_items(
    tmp_path: Path, model_dir: Path, fast: Scorer
) -> None:
    archive = _archive(tmp_path / "in", 300)
    killed = tmp_path / "killed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(archive), str(killed), str(model_dir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 180
    try:
        while not list((killed / "parts").glob("part-*.parquet")):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "exited early"
            assert time.monotonic() < deadline, "no part written in time"
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (killed / "items.parquet").exists(), "the run finished before the kill: nothing was tested"
    written = sum(pq.ParquetFile(p).metadata.num_rows for p in (killed / "parts").glob("part-*.parquet"))
    assert 0 < written < 300

    resumed = run_batch([archive], killed, scorer=fast, resume=True, chunk_size=16)
    assert resumed.skipped_by_resume == written and resumed.items == 300 - written
    whole = tmp_path / "whole"
    run_batch([archive], whole, scorer=fast, chunk_size=50)  # other chunking too: labels must not depend on it

    got, want = _rows(killed), _rows(whole)
    assert len(got) == len({r["id"] for r in got}) == 300  # none lost, none twice
    got_by_id = {r["id"]: r for r in got}
    for row in want:
        mine = got_by_id[row["id"]]
        assert mine["content_hash"] == row["content_hash"]
        p, q = np.array(list(mine["probabilities"].values())), np.array(list(row["probabilities"].values()))
        np.testing.assert_allclose(p, q, atol=1e-4)
        margin = np.sort(q)[-1] - np.sort(q)[-2]
        assert mine["mode"] == row["mode"] or margin < 1e-4


@pytest.mark.slow
def test_ray_engine_matches_local(tmp_path: Path, model_dir: Path, engine: Engine) -> None:
    ray = pytest.importorskip("ray")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "copy.mbox").write_bytes((FIXTURES / "email" / "three.mbox").read_bytes())  # duplicates, by message id
    (extra / "broken.docx").write_bytes(b"PK\x03\x04 not a zip")
    (extra / "german.eml").write_bytes((FIXTURES / "email" / "languages" / "german.eml").read_bytes())
    inputs = [*INPUTS, extra, tmp_path / "missing.txt"]
    local = tmp_path / "local"
    want_summary = run_batch(inputs, local, scorer=Scorer(engine, metaphor_detector(engine.config)), chunk_size=4)
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay short
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, object_store_memory=80 * 1024 * 1024)
    try:
        distributed = tmp_path / "ray"
        options = {
            "model_dir": model_dir, "engine": "ray", "device": "cpu", "dtype": "float32", "metaphor": "rules",
            "chunk_size": 4, "ray_actors": 1,
        }  # fmt: skip
        summary = run_batch(inputs, distributed, **options)
        again = run_batch(inputs, distributed, resume=True, **options)
        run_batch(inputs, tmp_path / "ray-off", **{**options, "metaphor": "off"})
    finally:
        ray.shutdown()
    fields = ("inputs", "files_read", "items", "errors", "duplicates", "errors_by_reason", "tokens", "non_english")
    for field in fields:
        assert getattr(summary, field) == getattr(want_summary, field), field
    assert (
        summary.duplicates > 0 and summary.errors == 2 and summary.non_english == 1
    )  # the broken file and the missing path
    assert (again.items, again.skipped_by_resume, again.rows) == (0, summary.items, summary.rows)
    want = {r["id"]: r for r in _rows(local)}
    got = {r["id"]: r for r in _rows(distributed)}
    assert sorted(got) == sorted(want)
    for key, row in want.items():
        mine = got[key]
        np.testing.assert_allclose(list(mine["probabilities"].values()), list(row["probabilities"].values()), atol=1e-4)
        for field in ("ba", "meta", "text", "team", "n_tokens", "metaphor", "metaphor_spans", "authors", "timestamp"):
            assert mine[field] == row[field], (key, field)
        assert [t["start"] for t in mine["metaphor_tokens"]] == [t["start"] for t in row["metaphor_tokens"]]
    assert any(r["metaphor_tokens"] for r in want.values())  # the comparison above saw flagged words
    assert not (distributed / "ray_input").exists()
    off = {r["id"]: r for r in _rows(tmp_path / "ray-off")}  # the replicas ran without the metaphor path
    assert sorted(off) == sorted(want)
    for key, row in off.items():
        assert row["mode"] == want[key]["mode"] and row["metaphor"] is None and not row["metaphor_tokens"], key


def test_token_and_score_columns_survive_the_trip_between_ray_stages(engine: Engine) -> None:
    import pyarrow as pa

    from pipeline.classify.engine import predictions
    from pipeline.classify.ray_engine import scores_from_arrow, scores_to_arrow, tokens_from_arrow, tokens_to_arrow

    texts = [p for p in (FIXTURES / "documents" / "pep-0008.rst").read_text().split("\n\n") if p.strip()][:12]
    texts[4] = ""  # no tokens, no words
    tokens = engine.tokenize(texts)
    table = tokens_to_arrow(pa.table({"item": texts}), tokens)
    table = scores_to_arrow(table, engine.infer(tokens), tokens.offsets)
    # Ray hands a stage slices of bigger blocks, whose list columns start inside their buffers.
    want = engine.predict(texts[3:9])
    for part in (table.slice(3, 6), pa.concat_tables([table.slice(3, 2), table.slice(5, 4)])):
        got = predictions(tokens_from_arrow(part), scores_from_arrow(part))
        assert len(got) == len(want) == 6
        _same_predictions(got, want)


def _same_predictions(got: list, want: list) -> None:
    for mine, theirs in zip(got, want, strict=True):
        np.testing.assert_allclose(mine.probabilities, theirs.probabilities, atol=1e-5)
        np.testing.assert_allclose(mine.word_scores, theirs.word_scores, atol=1e-5)
        np.testing.assert_array_equal(mine.words.starts, theirs.words.starts)
        np.testing.assert_array_equal(mine.words.ends, theirs.words.ends)
        assert (mine.n_tokens, mine.n_windows) == (theirs.n_tokens, theirs.n_windows)


def test_ray_replicas_leave_a_cpu_for_the_cpu_stages() -> None:
    from pipeline.classify.ray_engine import replicas

    assert replicas({"CPU": 16.0, "GPU": 2.0}, "auto", None) == (2, True)
    assert replicas({"CPU": 16.0, "GPU": 2.0}, "cpu", None) == (15, False)
    assert replicas({"CPU": 8.0}, "auto", 3) == (3, False)
    with pytest.raises(ValueError, match="has 2 GPUs"):
        replicas({"CPU": 16.0, "GPU": 2.0}, "auto", 3)
    with pytest.raises(ValueError, match="at least 2"):
        replicas({"CPU": 1.0}, "auto", None)
    with pytest.raises(ValueError, match="no CPU"):
        replicas({"CPU": 4.0}, "cpu", 4)


def test_the_ray_gate_drops_what_a_local_run_drops(tmp_path: Path) -> None:
    import pyarrow as pa

    from pipeline.classify.ray_engine import Gate

    def item(item_id: str, text: str, dedup: str | None = None, non_english: bool = False) -> dict:
        return {"id": item_id, "text": text, "dedup": dedup, "source": "email", "non_english": non_english}

    rows = [
        item("a", "eins", "<m1@x>", non_english=True),
        item("b", "zwei", "<m1@x>", non_english=True),  # the same message stored twice: dropped by its dedup key
        item("c", "three"),  # scored by an earlier run with this model: skipped
        item("d", "four"),
        item("d", "four"),  # the same (id, text) twice: a duplicate
        item("e", "five"),
    ]
    table = pa.table({
        "item": [json.dumps(r) for r in rows],
        "key": pa.array([item_key(r["id"], r["text"]) for r in rows], pa.uint64()),
        "dedup": [r["dedup"] for r in rows],
        "source": [r["source"] for r in rows],
        "non_english": [r["non_english"] for r in rows],
    })  # fmt: skip
    gate = Gate(np.array([item_key("c", "three")], dtype=np.uint64), str(tmp_path))
    first, second = gate(table.slice(0, 4)), gate(table.slice(4))  # its memory spans batches
    kept = [json.loads(raw)["id"] for raw in [*first.column("item").to_pylist(), *second.column("item").to_pylist()]]
    assert kept == ["a", "d", "e"] and first.column_names == ["item"]
    records = [json.loads(line) for line in next(tmp_path.glob("gate-*.jsonl")).read_text().splitlines()]
    keys = ("dedup_duplicates", "skipped_by_resume", "duplicates", "non_english")
    total = {k: sum(r[k] for r in records) for k in keys}
    assert total == {"dedup_duplicates": 1, "skipped_by_resume": 1, "duplicates": 1, "non_english": 1}
    assert [i for r in records for i in r["rescored"]] == ["a", "d", "e"]  # a resumed run: their old rows go


def test_a_ray_read_task_accounts_for_every_file(tmp_path: Path) -> None:
    import pyarrow as pa

    from pipeline.classify.ray_engine import read_files
    from pipeline.ingest import IngestOptions

    broken = tmp_path / "broken.docx"
    broken.write_bytes(b"PK\x03\x04 not a zip")
    mbox = FIXTURES / "email" / "three.mbox"
    files = pa.table({"path": [str(mbox), str(broken)], "key": ["three.mbox", "broken.docx"], "top": ["ops", None]})
    out = read_files(files, IngestOptions(), None, str(tmp_path))
    want = [r for r in ingest([mbox]) if isinstance(r, Item)]
    assert [json.loads(raw)["id"] for raw in out.column("item").to_pylist()] == [i.id for i in want]
    assert out.column("key").to_pylist() == [item_key(i.id, i.content_hash) for i in want]
    assert out.column("non_english").to_pylist() == [False] * len(want)
    [counts] = [json.loads(line) for line in next(tmp_path.glob("ingest-*.jsonl")).read_text().splitlines()]
    assert (counts["files"], counts["files_read"], sum(counts["errors_by_reason"].values())) == (2, 1, 1)
    [error] = [json.loads(line) for line in next(tmp_path.glob("errors-*.jsonl")).read_text().splitlines()]
    assert error["path"] == str(broken)
