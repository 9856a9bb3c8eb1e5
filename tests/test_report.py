"""The timeline report: files written, charts, escaping, the team cap, and rendering in Chromium."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from pipeline.report import build_timeline
from pipeline.report.build import PLOT_KINDS

FIXTURES = Path(__file__).parent / "fixtures" / "results"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def ami_report(tmp_path_factory):
    return build_timeline(FIXTURES / "ami", tmp_path_factory.mktemp("ami-report"))


def _rows(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "items.jsonl").read_text().splitlines()]


def test_report_writes_tables_and_every_plot(ami_report):
    report = ami_report
    for path in (report.timeline_csv, report.timeline_parquet, report.teams_csv, report.turns_csv, report.metrics_json):
        assert path.is_file() and path.stat().st_size > 0
    assert set(report.plots) == {"ES2002", "TS3000"}
    pngs = [path for team in report.plots.values() for path in team.values()] + [report.overview_png]
    assert len(pngs) == 2 * len(PLOT_KINDS) + 1
    for kinds in report.plots.values():
        assert tuple(kinds) == PLOT_KINDS
    for path in pngs:
        assert path.read_bytes().startswith(PNG_MAGIC)
        with Image.open(path) as image:
            assert image.width > 200 and image.height > 200

    timeline = pd.read_csv(report.timeline_csv)
    assert timeline[timeline["team"] == "ES2002"]["period"].tolist() == ["ES2002a", "ES2002b", "ES2002c", "ES2002d"]
    assert pd.read_parquet(report.timeline_parquet).shape == timeline.shape
    teams = pd.read_csv(report.teams_csv).set_index("team")
    assert teams.loc["ES2002", "turns_completed"] == 2
    assert teams.loc["ES2002", "coherence"] == pytest.approx(8 / 9)
    assert teams.loc["TS3000", "stall_mode"] == "externalization"
    assert len(pd.read_csv(report.turns_csv)) == 2
    metrics = json.loads(report.metrics_json.read_text())
    assert metrics["teams"][0]["team"] == "ES2002"
    assert report.freq is None and report.items == 18 and not report.sections_capped


def test_page_is_self_contained(ami_report):
    page = ami_report.index_html.read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 2 * len(PLOT_KINDS) + 1
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    assert base64.b64decode(sources[0].split(",", 1)[1]).startswith(PNG_MAGIC)
    assert "<script" not in page.lower()
    assert not re.search(r"(href|src)=\"(https?:)?//", page)
    assert "<style>" in page
    # the table and the sections, with the numbers behind them
    assert page.index('id="team-000"') < page.index('id="team-001"')
    assert "spiral coherence 0.89" in page
    assert "Rounds most often stop at externalization" in page
    assert "docs/spiral.md" not in page  # the reader of the report does not have our docs


def test_data_strings_are_escaped(tmp_path):
    rows = _rows(FIXTURES / "email")
    for row in rows:
        if row["team"] == "Legal":
            row["team"] = HOSTILE
            row["thread"] = f'"><img src=x onerror=alert(2)>{row["thread"]}'
            row["title"] = HOSTILE
            row["text"] = f"{HOSTILE} <b>bold</b> & the rest of a memo"
        else:
            row["team"] = "Trading $x^2$ & co"  # mathtext and an ampersand
    results = tmp_path / "results"
    results.mkdir()
    (results / "items.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = build_timeline(results, tmp_path / "out")
    page = report.index_html.read_text()
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    # the excerpts are data too (issue 25): shown escaped
    assert "<q>&lt;script&gt;alert(1)&lt;/script&gt; &lt;b&gt;bold&lt;/b&gt; &amp; the rest of a memo</q>" in page
    assert "<b>bold</b>" not in page
    assert "Trading $x^2$ &amp; co" in page
    assert "<script" not in page.lower()
    for kinds in report.plots.values():
        assert all(path.is_file() for path in kinds.values())


def test_team_sections_are_capped_and_the_page_says_so(tmp_path):
    report = build_timeline(FIXTURES / "ami", tmp_path, max_teams=1)
    page = report.index_html.read_text()
    assert report.sections_capped
    assert list(report.plots) == ["ES2002"]
    assert "Showing sections for the 1 largest of 2 teams" in page
    assert 'id="team-001"' not in page
    assert ">TS3000</td>" in page  # still in the table


def test_dated_report_and_teams_file(tmp_path):
    rules = tmp_path / "teams.csv"
    rules.write_text("kind,key,team\npath,mail/Legal/*,Counsel\n")
    report = build_timeline(FIXTURES / "email", tmp_path / "out", freq="W", teams=rules)
    assert report.freq == "W"
    assert [t.team for t in report.teams] == ["Trading", "Counsel"]
    assert "shown by weeks" in report.index_html.read_text()


def test_unreadable_teams_file_is_a_value_error(tmp_path):
    rules = tmp_path / "teams.yaml"
    rules.write_text("teams: [1, 2")
    with pytest.raises(ValueError, match="teams file"):
        build_timeline(FIXTURES / "email", tmp_path / "out", teams=rules)


def test_empty_results_are_an_error(tmp_path):
    (tmp_path / "items.jsonl").write_text("")
    with pytest.raises(ValueError, match="no items"):
        build_timeline(tmp_path, tmp_path / "out")


# --- headless Chromium --------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium")
# The flags the machine notes prescribe: without the networking ones Chromium keeps trying to reach
# hosts this closed network refuses.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
CDP_TIMEOUT_S = 20.0
IMAGE_SIZES_JS = "JSON.stringify(Array.from(document.images, i => [i.complete, i.naturalWidth, i.naturalHeight]))"
_FD_LAUNCHER = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); os.execv(sys.argv[3], sys.argv[3:])"
)


class DevTools:
    """A minimal Chrome DevTools Protocol client over `--remote-debugging-pipe` (fds 3 and 4).

    A pipe needs no port and no websocket library: messages are JSON, each ended by a NUL byte.
    """

    def __init__(self, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Chromium wants its ends on fds 3 and 4 exactly; subprocess can only keep fds at their own
        # numbers, so a tiny Python launcher moves them there and execs Chromium.
        launch = [sys.executable, "-c", _FD_LAUNCHER, str(to_chrome_r), str(from_chrome_w), CHROMIUM, *CHROMIUM_FLAGS]
        self.process = subprocess.Popen(
            [*launch, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(to_chrome_r, from_chrome_w),
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no answer from Chromium")
            ready, _, _ = select.select([self._from_chrome], [], [], remaining)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise ConnectionError("Chromium closed the pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + CDP_TIMEOUT_S
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, event: str) -> dict:
        deadline = time.monotonic() + CDP_TIMEOUT_S
        for seen in self.events:
            if seen.get("method") == event:
                return seen
        while True:
            message = self._read_message(deadline)
            self.events.append(message)
            if message.get("method") == event:
                return message

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError, ConnectionError):
            self.call("Browser.close")
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def _console_errors(events: list[dict]) -> list[str]:
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            errors.append(json.dumps(params.get("exceptionDetails", {}))[:300])
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(json.dumps(params.get("args", []))[:300])
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            errors.append(params["entry"].get("text", "")[:300])
    return errors


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(ami_report, tmp_path):
    browser = DevTools(tmp_path / "profile")
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable", session=session)
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 2000, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        browser.call("Page.navigate", {"url": ami_report.index_html.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        images = browser.call(
            "Runtime.evaluate",
            {
                "expression": IMAGE_SIZES_JS,
                "returnByValue": True,
            },
            session=session,
        )["result"]["value"]
        shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
    finally:
        browser.close()

    sizes = json.loads(images)
    assert len(sizes) == 2 * len(PLOT_KINDS) + 1
    assert all(complete and width > 100 and height > 100 for complete, width, height in sizes), sizes
    assert _console_errors(browser.events) == []
    screenshot = tmp_path / "shot.png"
    screenshot.write_bytes(base64.b64decode(shot))
    with Image.open(screenshot) as image:
        assert image.size == (1280, 2000)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
        # None means more colours than the cap: certainly not blank
        assert colours is None or len(colours) > 50


# What the layout test measures: every image's natural and drawn size, the page's widths, and
# whether any table or image sticks out of the window.
LAYOUT_JS = """JSON.stringify({
  images: Array.from(document.images, i => ({alt: i.alt, natural: [i.naturalWidth, i.naturalHeight],
    drawn: [i.clientWidth, i.clientHeight],
    right: i.getBoundingClientRect().right})),
  scrollWidth: document.documentElement.scrollWidth,
  clientWidth: document.documentElement.clientWidth,
  tables: Array.from(document.querySelectorAll('main > table, section > table'), t => t.getBoundingClientRect().right),
})"""


def render(page: Path, width: int, height: int, profile: Path) -> tuple[dict, bytes, list[str]]:
    """Load `page` in headless Chromium at `width` x `height`: (LAYOUT_JS's measures, PNG, errors)."""
    browser = DevTools(profile)
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable", session=session)
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        browser.call("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        measures = browser.call("Runtime.evaluate", {"expression": LAYOUT_JS, "returnByValue": True}, session=session)[
            "result"
        ]["value"]
        shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
    finally:
        browser.close()
    return json.loads(measures), base64.b64decode(shot), _console_errors(browser.events)


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.parametrize("width", [1280, 900])
def test_heatmaps_keep_their_size_and_nothing_is_cut_at_a_narrow_window(ami_report, tmp_path, width):
    # issue 25: a flexbox rule drew the 480x420 heatmaps as 480x560, and at 900 px the overview
    # chart and the table were cut off
    measures, _, errors = render(ami_report.index_html, width, 1400, tmp_path / "profile")
    assert errors == []
    heatmaps = [i for i in measures["images"] if i["alt"].endswith(": transitions")]
    assert len(heatmaps) == 2
    for image in measures["images"]:
        (nw, nh), (dw, dh) = image["natural"], image["drawn"]
        assert abs(dw / dh - nw / nh) < 0.02, image  # never stretched
        assert image["right"] <= measures["clientWidth"] + 1, image  # never cut off
    for heatmap in heatmaps:
        assert heatmap["natural"] == [480, 420]
        assert heatmap["drawn"] == [480, 420]  # drawn at its own size: it fits in both windows
    assert measures["scrollWidth"] <= measures["clientWidth"], measures  # no horizontal scrolling
    assert all(right <= measures["clientWidth"] + 1 for right in measures["tables"])
