"""The README and docs/ stay true: every relative link resolves, and every `seci ...` command they show parses.

Commands are taken from fenced code blocks and inline code spans that start with `seci ` (or `.venv/bin/seci `).
Each is parsed by the real CLI with `--help` appended (typer checks the subcommand and every option it is given
before printing help); placeholders such as `INPUT...` or `~/mail` are fine there, as nothing runs. The quick
ones that read only the repository (`seci ingest` on data/samples) also run for real, and `seci score` on a
sample document runs as a slow test.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipeline.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)\)|\!\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`((?:\.venv/bin/)?seci [^`]+)`")
README_MAX_LINES = 250


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def _links() -> list[tuple[Path, str]]:
    found = []
    for page in PAGES:
        text = FENCE.sub("", page.read_text(encoding="utf-8"))
        for match in LINK.finditer(text):
            target = match.group(1) or match.group(2)
            if not re.match(r"^[a-z]+:", target):
                found.append((page, target))
    return found


@pytest.mark.parametrize(("page", "target"), _links(), ids=lambda v: str(v).replace(str(ROOT), ""))
def test_relative_links_resolve(page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    assert resolved.exists(), f"{page.relative_to(ROOT)}: {target} does not exist"
    if anchor and resolved.suffix == ".md":
        assert anchor in _anchors(resolved), f"{page.relative_to(ROOT)}: no heading #{anchor} in {path or page.name}"


def _commands() -> list[tuple[str, str]]:
    """(page, command) for every `seci` command shown, comments and shell continuations removed."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        blocks = FENCE.findall(text)
        lines = []
        for block in blocks:
            joined = block.replace("\\\n", " ")
            lines += [line.split(" #", 1)[0].strip() for line in joined.splitlines()]
        lines += [m.strip() for m in INLINE.findall(FENCE.sub("", text))]
        for line in lines:
            line = re.sub(r"^(\.venv/bin/|echo .*\| *)", "", line)
            line = re.sub(r"^echo .*\| *", "", line)
            if line.startswith("seci "):
                found.append((str(page.relative_to(ROOT)), line))
    return found


COMMANDS = _commands()


def _argv(command: str) -> list[str]:
    args = shlex.split(command)[1:]
    # Documentation brackets mark optional parts ([--json], [--ray-actors 8]); parse the command without them.
    return [a for a in args if not (a.startswith("[") or (a.endswith("]") and "=" not in a) or a == "...")]


def test_the_docs_show_every_command() -> None:
    shown = {shlex.split(c)[1] for _, c in COMMANDS}
    assert shown >= {"score", "batch", "timeline", "ingest", "train", "evaluate", "suggest"}


@pytest.mark.parametrize(("page", "command"), COMMANDS, ids=[f"{p}: {c[:60]}" for p, c in COMMANDS])
def test_commands_parse(page: str, command: str) -> None:
    result = CliRunner().invoke(app, [*_argv(command), "--help"])
    assert result.exit_code == 0, f"{page}: `{command}` does not parse:\n{result.output}"


def test_configs_named_in_commands_exist() -> None:
    for page, command in COMMANDS:
        args = shlex.split(command)
        for flag in ("--config",):
            if flag in args:
                config = args[args.index(flag) + 1]
                if not config.isupper():  # FILE, a placeholder
                    assert (ROOT / config).is_file(), f"{page}: {config} does not exist"


def test_readme_is_short_and_keeps_the_quality_markers() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    assert "<!-- model-quality -->" in text and "<!-- /model-quality -->" in text


def test_ingest_on_the_samples_runs_as_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "items.jsonl"
    result = CliRunner().invoke(app, ["ingest", "data/samples", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0


@pytest.mark.slow
def test_score_on_a_sample_runs_as_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    command = next(c for _, c in COMMANDS if c.startswith("seci score data/samples/"))
    result = CliRunner().invoke(app, _argv(command))
    assert result.exit_code == 0, result.output
    assert "SECI mode" in result.output
