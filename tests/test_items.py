"""Items: the record every stage passes on, and its JSON form (staged for Ray, written by `seci ingest`)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime

from pipeline.items import Item


def _item() -> Item:
    return Item(
        id="m1", text="We should treat the backlog as a garden.", source="email", path="inbox/1.eml",
        title="Backlog", timestamp=datetime(2001, 5, 4, 9, 30, tzinfo=UTC), end_time=None,
        authors=["ann@example.org"], participants=["bob@example.org", "cy@example.org"], team="ops",
        thread="t1", parent="m0", position=2, start_seconds=1.5, end_seconds=3.0, medium="virtual",
        meta={"subject": "Backlog", "folder": "inbox"}, warnings=["quoted text removed"],
    )  # fmt: skip


def test_an_item_survives_its_json_form_whole() -> None:
    item = _item()
    row = item.to_dict()
    expected = asdict(item)
    expected["timestamp"] = "2001-05-04T09:30:00+00:00"
    assert row == expected
    assert Item.from_dict(json.loads(json.dumps(row))) == item


def test_the_dict_of_an_item_shares_no_container_with_it() -> None:
    item = _item()
    row = item.to_dict()
    row["authors"].append("eve@example.org")
    row["meta"]["subject"] = "changed"
    row["warnings"].clear()
    assert item == _item()
