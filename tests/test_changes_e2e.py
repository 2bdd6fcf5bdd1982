"""Real `scrapy crawl` runs against a stand-in that changes between epochs, then `scrapy changes` on their output.

Run 1 archives the bundled dumps (epoch 0); run 2 (epoch 1) meets an edit, a title change, a 410, a 404 and a
move, and every other page with other chrome, related links, cookies and image query strings; run 3 (same
epoch) meets nothing new; run 4 (epoch 2) meets a restoration and chrome changed once more.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from archiver.state.store import ARCHIVED, State
from tests.crawl_support import ROOT, CrawlRun, run_crawl

EDIT, TITLE, GONE, NOT_FOUND, MOVED = 54020887, 54237399, 55253484, 55384004, 56173407
REVISIONS = f"{EDIT}:edit@1,{TITLE}:title@1,{GONE}:gone@1,{NOT_FOUND}:404@1,{MOVED}:moved@1,{GONE}:restore@2"
EXPECTED = {
    EDIT: ("edited", ["text"]),
    TITLE: ("edited", ["title"]),
    GONE: ("removed", []),
    NOT_FOUND: ("removed", []),
    MOVED: ("moved", []),
}


class InProcessStandin:
    """The stand-in the crawl starts itself (`ARCHIVER_STANDIN=1`), at one epoch of REVISIONS."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def scrapy_settings(self) -> dict[str, str]:
        return {
            "ARCHIVER_STANDIN": "1",
            "ARCHIVER_STANDIN_EPOCH": str(self.epoch),
            "ARCHIVER_STANDIN_REVISIONS": REVISIONS,
        }


def changes_cmd(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`scrapy changes --output-dir OUT ARGS`."""
    cmd = [sys.executable, "-m", "scrapy", "changes", "--output-dir", str(out), *args]
    env = {k: v for k, v in os.environ.items() if k != "SCRAPY_SETTINGS_MODULE"}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def changes_json(out: Path, *args: str) -> list[dict[str, Any]]:
    proc = changes_cmd(out, "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("changes") / "out"
    settings = {"ARCHIVER_RECHECK_AFTER": "0", "ARCHIVER_PROGRESS_INTERVAL": "0.2"}
    result: dict[str, Any] = {"out": out, "history": []}
    for name, epoch in (("first", 0), ("changed", 1), ("same", 1), ("restored", 2)):
        run = run_crawl(out, InProcessStandin(epoch), dumps=None, settings=settings)
        assert run.returncode == 0, run.log[-3000:]
        result[name] = Run(run, run.report())
        with State.open(out / "state.sqlite3") as state:
            result["history"].append(state.count_changes())
    return result


@dataclass
class Run:
    """One crawl and its own report (CrawlRun reads the newest one)."""

    crawl: CrawlRun
    report: dict[str, Any]

    @property
    def log(self) -> str:
        return self.crawl.log

    @property
    def items_path(self) -> Path:
        return self.crawl.out / "items" / f"{self.report['run_id']}.jsonl"


def _items(run: Run) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run.items_path.read_text("utf-8").splitlines()]


def test_every_scheduled_change_is_found_and_nothing_else(runs: dict[str, Any]) -> None:
    report = runs["changed"].report
    found = {a["article_id"]: (a["change"], a["fields"]) for a in report["changes"]["articles"]}
    assert found == EXPECTED
    counts = report["changes"]["counts"]
    assert counts["edited"] == 2 and counts["removed"] == 2 and counts["moved"] == 1
    assert counts["restored"] == 0 and counts["unreachable"] == 0
    assert counts["unchanged"] == report["articles"]["unchanged"] + report["references"]["unchanged"] > 20
    listed = changes_json(runs["out"], "--until", report["finished"])
    assert {e["article_id"]: (e["change"], e["fields"]) for e in listed} == EXPECTED
    assert re.search(r"edits \d+, removals \d+", runs["changed"].log)


def test_chrome_cookies_and_image_queries_did_change_between_the_runs(runs: dict[str, Any]) -> None:
    """The 0 false positives above are no accident of identical bytes: unchanged pages were new responses."""
    first, changed = _items(runs["first"]), {i["article_id"]: i for i in _items(runs["changed"])}
    run_id = runs["changed"].report["run_id"]
    renewed = 0
    with sqlite3.connect(runs["out"] / "state.sqlite3") as db:
        for item in first:
            if item["article_id"] in EXPECTED or not item["url"]:
                continue
            assert item["article_id"] not in changed
            old = next(c for c in item["captures"] if c["role"] == "page")
            new = db.execute(
                "SELECT record_type, payload_digest FROM captures WHERE url = ? AND run_id = ?", (old["url"], run_id)
            ).fetchone()
            renewed += new == ("response", new[1]) and new[1] != old["payload_digest"]
    assert renewed >= 15


def test_changed_items_carry_version_change_and_previous_captures(runs: dict[str, Any]) -> None:
    before = {i["article_id"]: i for i in _items(runs["first"])}
    items = {i["article_id"]: i for i in _items(runs["changed"])}
    assert set(items) == set(EXPECTED)
    for aid, (kind, fields) in EXPECTED.items():
        item = items[aid]
        assert item["version"] == 2 and item["change"]["kind"] == kind and item["change"]["fields"] == fields
        previous = [c["record_id"] for c in before[aid]["captures"] if c["role"] in ("page", "api")]
        assert item["previous_captures"] == previous
    assert items[MOVED]["change"]["moved_to"].endswith("/a-56573833")
    assert "更新：" in items[TITLE]["title"]


def test_removal_is_a_finding_not_a_failure(runs: dict[str, Any]) -> None:
    with State.open(runs["out"] / "state.sqlite3") as state:
        for aid in (GONE, NOT_FOUND):
            row = state.get_article(aid)
            assert row is not None and row.status == ARCHIVED and row.attempts == 0
        # Still 404 in runs 3 and 4: recorded once, checked again on the normal schedule, never failed.
        assert [r.kind for r in state.article_history(NOT_FOUND)] == ["new", "removed"]
        assert state.get_article(NOT_FOUND).version == 2
    assert runs["changed"].report["articles"]["failed"] == 0


def test_a_run_with_nothing_new_reports_nothing_and_keeps_the_state_size(runs: dict[str, Any]) -> None:
    report = runs["same"].report
    counts = report["changes"]["counts"]
    assert not report["changes"]["articles"]
    assert counts["edited"] == counts["removed"] == counts["moved"] == counts["restored"] == 0
    assert counts["unchanged"] > 20
    assert not runs["same"].items_path.exists() or _items(runs["same"]) == []
    first, changed, same, restored = runs["history"]
    assert changed == first + 5 and same == changed and restored == same + 1


def test_restoration_is_reported_as_such(runs: dict[str, Any]) -> None:
    report = runs["restored"].report
    assert [(a["article_id"], a["change"]) for a in report["changes"]["articles"]] == [(GONE, "restored")]
    listed = changes_json(runs["out"], "--since", runs["restored"].report["started"])
    assert [(e["article_id"], e["change"]) for e in listed] == [(GONE, "restored")]
    everything = changes_json(runs["out"])
    assert [e["change"] for e in everything if e["article_id"] == GONE] == ["restored", "removed"]


def test_warc_metadata_record_names_previous_capture_and_kind(runs: dict[str, Any]) -> None:
    run_id = runs["changed"].report["run_id"]
    items = {i["article_id"]: i for i in _items(runs["changed"])}
    found: dict[str, dict[str, list[str]]] = {}
    for path in runs["out"].glob("warc/*.warc.gz"):
        with path.open("rb") as f:
            for record in ArchiveIterator(f):
                if record.rec_type != "metadata":
                    continue
                text = record.content_stream().read().decode("utf-8")
                if "recheck: " not in text:
                    continue
                fields: dict[str, list[str]] = {}
                for line in text.splitlines():
                    name, _, value = line.partition(": ")
                    fields.setdefault(name, []).append(value)
                found[record.rec_headers.get_header("WARC-Concurrent-To")] = fields
    page = next(c for c in items[EDIT]["captures"] if c["role"] == "page")
    meta = found[page["record_id"]]
    assert meta["recheck"] == ["edited"] and meta["changed-fields"] == ["text"]
    assert meta["previous-capture"] == items[EDIT]["previous_captures"]
    kinds = [f["recheck"][0] for f in found.values()]
    assert kinds.count("unchanged") > 40 and "removed" in kinds and "moved" in kinds and "restored" in kinds
    assert run_id


def test_text_listing_shows_sentence_diffs_and_colour_only_when_asked(runs: dict[str, Any]) -> None:
    plain = changes_cmd(runs["out"], "--kind", "edited")
    assert plain.returncode == 0 and "\x1b[" not in plain.stdout
    lines = plain.stdout.splitlines()
    assert "+ 编者注：本段内容已于第1次修订中更正。" in [line.strip() for line in lines]
    assert any(line.strip() == "+ 更新：" + line.strip()[2:].removeprefix("更新：") for line in lines)
    assert sum(1 for line in lines if re.match(r"\S+Z\s+edited", line)) == 2
    coloured = changes_cmd(runs["out"], "--kind", "edited", "--colour", "always")
    assert "\x1b[32m" in coloured.stdout and "\x1b[7m" in coloured.stdout
    one = changes_json(runs["out"], "--article", str(TITLE))
    assert [e["change"] for e in one] == ["edited"] and one[0]["fields"] == ["title"]
    bad = changes_cmd(runs["out"], "--kind", "deleted")
    assert bad.returncode != 0 and "deleted" in bad.stderr


def test_html_page_and_atom_feed(runs: dict[str, Any], tmp_path: Path) -> None:
    feedparser = pytest.importorskip("feedparser")
    html, atom = tmp_path / "changes.html", tmp_path / "changes.xml"
    proc = changes_cmd(runs["out"], "--html", str(html), "--atom", str(atom), "--wacz", "https://example.org/a.wacz")
    assert proc.returncode == 0, proc.stderr
    feed = feedparser.parse(str(atom))
    assert not feed.bozo and feed.version == "atom10"
    assert len(feed.entries) == 6 and feed.entries[0].title == f"[restored] {feed.entries[0].title[11:]}"
    assert {e.id for e in feed.entries} == {e.id for e in feedparser.parse(str(atom)).entries}
    assert all(e.link.startswith("https://www.dw.com/") for e in feed.entries)
    page = html.read_text("utf-8")
    assert "<script" not in page and 'rel="stylesheet"' not in page and "src=" not in page
    assert page.count('<section class="change"') == 6
    assert "<ins>编者注：本段内容已于第1次修订中更正。</ins>" in page
    assert "http://localhost:8080/archiver/2" in page and "https://replayweb.page/?source=" in page
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("no /usr/bin/chromium: the page was not rendered")
    shot = tmp_path / "shot.png"
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,1600"]
    dom = subprocess.run(
        [str(chromium), *args, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.stdout.count('class="change"') == 6
    subprocess.run([str(chromium), *args, f"--screenshot={shot}", html.as_uri()], capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000


def test_an_archive_older_than_the_history_gets_its_baseline(tmp_path: Path) -> None:
    """Articles archived before migration 4: content at the first recheck is silent, a removal is still reported.

    A server error on a recheck is `unreachable`: no finding, no history row, retried with backoff as before.
    """
    out = tmp_path / "out"

    class Standin:
        def __init__(self, revisions: str, epoch: int) -> None:
            self.settings = {"ARCHIVER_STANDIN_EPOCH": str(epoch), "ARCHIVER_STANDIN_REVISIONS": revisions}

        def scrapy_settings(self) -> dict[str, str]:
            return {"ARCHIVER_STANDIN": "1", **self.settings}

    settings = {"ARCHIVER_RECHECK_AFTER": "0", "ARCHIVER_REFS_DEPTH": "0", "ARCHIVER_MEDIA": "0"}
    first = run_crawl(out, Standin("", 0), dumps=None, settings=settings, args={"limit": "3"})
    assert first.returncode == 0, first.log[-3000:]
    ids = sorted(i["article_id"] for i in first.items())
    with sqlite3.connect(out / "state.sqlite3") as db:
        db.execute("DELETE FROM changes")  # as a state file written before the history existed
    faulty = settings | {"ARCHIVER_STANDIN_FAULTS": f"{ids[1]}@page:500", "RETRY_TIMES": "0"}
    second = run_crawl(out, Standin(f"{ids[0]}:gone@1", 1), dumps=None, settings=faulty)
    assert second.returncode == 0, second.log[-3000:]
    report = second.report()
    assert [(a["article_id"], a["change"]) for a in report["changes"]["articles"]] == [(ids[0], "removed")]
    assert report["changes"]["counts"]["unreachable"] == 1
    with State.open(out / "state.sqlite3") as state:
        assert [r.kind for r in state.article_history(ids[0])] == ["removed"]
        assert state.article_history(ids[1]) == [] and [r.kind for r in state.article_history(ids[2])] == ["new"]
        unreachable = state.get_article(ids[1])
        assert unreachable.status == ARCHIVED and unreachable.attempts == 1 and unreachable.version == 1
