"""Items that are not English get a warning and are counted; their label is still computed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.ingest import IngestSummary, ingest
from pipeline.ingest.language import detect, is_non_english, mark_language
from pipeline.items import Item

LANGUAGES = Path(__file__).parent / "fixtures" / "email" / "languages"


def _items() -> tuple[dict[str, Item], IngestSummary]:
    summary = IngestSummary()
    items = {Path(r.path).stem: r for r in ingest([LANGUAGES], summary=summary) if isinstance(r, Item)}
    return items, summary


def test_non_english_mail_is_warned_and_counted() -> None:
    items, summary = _items()
    assert items["german"].meta["language"] == "de" and items["french"].meta["language"] == "fr"
    assert any("not English" in w for w in items["german"].warnings)
    # English full of names and jargon, and a one-word reply, are left alone.
    assert not is_non_english(items["english"]) and not is_non_english(items["short"])
    assert summary.non_english == 2 and summary.to_dict()["non_english"] == 2


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Can we move the standup to 10? I have a dentist appointment.", "en"),
        ("PLEASE SEND THE SIGNED CONTRACT BY FRIDAY", "en"),
        ("Hola, te mando el presupuesto actualizado. Avísame si tienes dudas.", "es"),
        ("Kun je mij de notulen van de vergadering sturen? Alvast bedankt.", "nl"),
        ("Автоматический ответ: я в отпуске до понедельника.", "ru"),
    ],
)
def test_detect(text: str, language: str) -> None:
    found = detect(text)
    assert found is not None and found[0] == language


def test_mark_language_keeps_the_rest_of_the_item() -> None:
    item = Item(id="x", text="Ciao, ho aggiornato il documento con le tue correzioni.", source="other", path="x")
    assert mark_language(item)
    assert item.text.startswith("Ciao") and item.meta == {"language": "it"}
    assert len(item.warnings) == 1


def test_ingest_summary_shows_the_non_english_count(tmp_path: Path) -> None:
    out = tmp_path / "items.jsonl"
    result = CliRunner().invoke(app, ["ingest", str(LANGUAGES), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "non_english" in result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["meta"].get("language", "en") for r in rows) == ["de", "en", "en", "fr"]
