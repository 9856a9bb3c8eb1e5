"""Issue 22: each common mistake ends in one line on stderr that says what to fix and a non-zero exit, found
before any model is loaded; Ctrl-C leaves run.json saying `interrupted`; help shows no Python types."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline import cli

runner = CliRunner()


def run(*args: str):
    return runner.invoke(cli.app, list(args))


def one_line(result, code: int = 2, *words: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if a command loads the model: its mistakes must be refused before."""
    from pipeline.classify import rows

    def boom(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(rows.Scorer, "load", classmethod(boom))


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "memo.txt"
    path.write_text("We walked the floor together and talked it through.\n", encoding="utf-8")
    return path


def test_timeline_on_a_missing_folder(tmp_path):
    one_line(run("timeline", str(tmp_path / "nonexist"), "--out", str(tmp_path / "r")), 2, "no results folder")


def test_timeline_on_a_run_without_items(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text("{}", encoding="utf-8")
    one_line(run("timeline", str(tmp_path / "run"), "--out", str(tmp_path / "r")), 2, "items.parquet")


def test_timeline_on_a_run_with_an_empty_items_file(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "items.jsonl").write_text("", encoding="utf-8")
    result = run("timeline", str(tmp_path / "run"), "--out", str(tmp_path / "r"))
    assert result.exit_code != 0
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def _run_dir(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    out.mkdir()
    row = {"id": "a", "text": "x", "mode": "combination", "team": "t"}
    (out / "items.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    return out


@pytest.mark.parametrize("command", ["batch", "timeline"])
def test_teams_yaml_syntax_error(tmp_path, text_file, no_model_load, command):
    teams = tmp_path / "teams.yaml"
    teams.write_text("teams:\n  pricing:\n    people: [a@x.com\n  ops: {\n", encoding="utf-8")
    args = (
        ["batch", str(text_file), "--out", str(tmp_path / "o")]
        if command == "batch"
        else ["timeline", str(_run_dir(tmp_path)), "--out", str(tmp_path / "r")]
    )
    one_line(run(*args, "--teams", str(teams)), 2, "not valid YAML", "line")


@pytest.mark.parametrize("command", ["batch", "timeline", "ingest"])
def test_missing_teams_file(tmp_path, text_file, no_model_load, command):
    args = {
        "batch": ["batch", str(text_file), "--out", str(tmp_path / "o")],
        "timeline": ["timeline", str(_run_dir(tmp_path)), "--out", str(tmp_path / "r")],
        "ingest": ["ingest", str(text_file)],
    }[command]
    one_line(run(*args, "--teams", str(tmp_path / "nope.yaml")), 2, "no teams file")


def test_unknown_key_in_the_teams_file_under_timeline(tmp_path):
    teams = tmp_path / "teams.yaml"
    teams.write_text("teams:\n  pricing:\n    persons: [a@x.com]\n", encoding="utf-8")
    result = run("timeline", str(_run_dir(tmp_path)), "--out", str(tmp_path / "r"), "--teams", str(teams))
    one_line(result, 2, "unknown kind", "persons")


def test_a_rule_given_as_a_string(tmp_path, text_file, no_model_load):
    teams = tmp_path / "teams.yaml"
    teams.write_text("teams:\n  pricing:\n    people: maria@acme.example\n", encoding="utf-8")
    result = run("batch", str(text_file), "--out", str(tmp_path / "o"), "--teams", str(teams))
    one_line(result, 2, "people must be a list", "[maria@acme.example]")


def test_score_unknown_dtype(text_file, no_model_load):
    one_line(run("score", str(text_file), "--dtype", "fp8"), 2, "--dtype fp8", "bfloat16")


def test_score_cuda_without_a_gpu(text_file, no_model_load, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    one_line(run("score", str(text_file), "--device", "cuda"), 2, "--device cuda", "--device cpu")


def test_batch_on_a_missing_input(tmp_path, no_model_load):
    one_line(run("batch", "nosuch.txt", "--out", str(tmp_path / "x")), 2, "no such file or folder: nosuch.txt")
    assert not (tmp_path / "x").exists()


def test_batch_refuses_an_existing_output_before_loading_the_model(tmp_path, text_file, no_model_load):
    out = tmp_path / "o"
    (out / "parts").mkdir(parents=True)
    (out / "items.parquet").write_bytes(b"")
    one_line(run("batch", str(text_file), "--out", str(out)), 2, "already holds results", "--resume")


def test_score_missing_model(text_file, tmp_path, no_model_load):
    one_line(run("score", str(text_file), "--model", str(tmp_path)), 2, "no model at")


def test_verbose_shows_the_traceback(tmp_path):
    result = run("--verbose", "timeline", str(_run_dir(tmp_path)), "--out", str(tmp_path / "r"), "--freq", "Q")
    assert result.exit_code != 0 and result.exception is not None


def test_default_model_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    from pipeline.classify.rows import default_model

    monkeypatch.chdir(tmp_path)
    assert default_model().is_absolute()
    assert (default_model() / "config.json").is_file()


def test_ingest_without_out_writes_nothing_in_the_working_directory(tmp_path, monkeypatch, text_file):
    (tmp_path / "bad.xyz").write_bytes(b"\x00\x01binary")
    monkeypatch.chdir(tmp_path)
    result = run("ingest", str(text_file), str(tmp_path / "bad.xyz"))
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "errors.jsonl").exists()


def test_ingest_errors_sit_beside_their_items(tmp_path, text_file):
    (tmp_path / "bad.xyz").write_bytes(b"\x00\x01binary")
    out = tmp_path / "x"
    out.mkdir()
    assert run("ingest", str(tmp_path / "bad.xyz"), "--out", str(out / "a.jsonl")).exit_code == 0
    assert run("ingest", str(text_file), "--out", str(out / "b.jsonl")).exit_code == 0
    assert (out / "a.errors.jsonl").read_text(encoding="utf-8").strip()
    assert not (out / "b.errors.jsonl").read_text(encoding="utf-8").strip()
    assert not (out / "errors.jsonl").exists()


def test_batch_with_no_readable_input(tmp_path):
    from pipeline.classify.rows import default_model

    if not (default_model() / "config.json").is_file():
        pytest.skip("no shipped model")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.xyz").write_bytes(b"\x00\x01binary")
    result = run("batch", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--metaphor", "tokens")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: no readable input")


def test_ctrl_c_records_interrupted(tmp_path, monkeypatch):
    """A KeyboardInterrupt while scoring leaves run.json at `interrupted` with what was saved."""
    from pipeline.classify import batch as batch_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch_module, "Scorer", _FakeScorerClass)
    monkeypatch.setattr("pipeline.classify.local_engine.run_local", interrupted)
    (tmp_path / "in.txt").write_text("Some text to read.\n", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        batch_module.run_batch([tmp_path / "in.txt"], tmp_path / "o")
    run_json = json.loads((tmp_path / "o" / "run.json").read_text(encoding="utf-8"))
    assert run_json["status"] == "interrupted"
    assert run_json["items"] == 0 and "parts" in run_json


class _FakeScorerClass:
    model_name = "fake 0"
    modes = ("socialization", "externalization", "combination", "internalization")
    include_text = True
    detector = None
    metaphor = "tokens"

    class engine:
        device = "cpu"
        precision = "float32"
        max_tokens = 8192
        compiled = False

    @classmethod
    def load(cls, *args, **kwargs):
        return cls()


def test_help_shows_no_python_types_and_keeps_brackets():
    result = runner.invoke(cli.app, ["batch", "--help"], terminal_width=80)
    assert result.exit_code == 0
    assert "<bool>" not in result.stdout and "<list[" not in result.stdout and "<path>" not in result.stdout
    assert "seci[ray]" in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
