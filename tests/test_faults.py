"""Fault suite: every stand-in fault mode, and what becomes of the article in WARC, item, report, state, next run.

One crawl against a stand-in that plays each fault on its own article (page, API or image), then a re-run
against the healthy stand-in with ARCHIVER_FAILURE_BACKOFF=0; one test per fault reads both runs. The table
of outcomes is docs/faults.md.
"""

from __future__ import annotations

import json
import re
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import DUMPS, RunningStandin, start_standin
from crawl_support import run_crawl
from warcio.archiveiterator import ArchiveIterator

from archiver.dw.dumps import iter_dumps
from archiver.standin.server import GZIP_BOMB_BYTES
from archiver.state.store import State
from archiver.warc.lookup import archived_response, find_by_url, read_record_at
from archiver.warc.records import sha1_digest

# Quick failures: one retry, no waiting beyond a fraction of a second, a short timeout for `slow`.
FAST = {
    "AUTOTHROTTLE_START_DELAY": "0",
    "RETRY_TIMES": "1",
    "DOWNLOAD_TIMEOUT": "5",
    "ARCHIVER_RETRY_BACKOFF": "0",
    "ARCHIVER_RETRY_WAIT_MAX": "0.3",
    "ARCHIVER_FAILURE_BACKOFF": "0",
    "ARCHIVER_PROGRESS_INTERVAL": "0",
    "DOWNLOAD_MAXSIZE": str(1024 * 1024),
}
STANDIN_OPTIONS = ["--slow-seconds", "15", "--oversize-bytes", str(3 * 1024 * 1024), "--retry-after", "1"]


@dataclass(frozen=True)
class Case:
    """One fault: where the stand-in plays it, the reason the item must give, whether a re-run retries it."""

    fault: str
    role: str  # page | api | image
    reason: str  # start of the item's error reason
    retried: bool = True  # False: permanent (gone, over a size limit): archived as it is, not fetched again


CASES = [
    Case("404", "page", "HTTP 404"),
    Case("410", "api", "HTTP 410", retried=False),
    Case("500", "page", "HTTP 500"),
    Case("503", "page", "HTTP 503"),
    Case("429", "image", "HTTP 429"),
    Case("slow", "api", "timeout"),
    Case("reset", "api", "data loss"),
    Case("truncated", "api", "data loss"),
    Case("oversized", "image", "too large", retried=False),
    Case("gzip_bomb", "page", "too large", retried=False),
    Case("invalid_json", "api", "invalid API JSON"),
    Case("wrong_charset", "page", "encoding"),
    Case("redirect_loop", "page", "redirect loop"),
    Case("redirect_offsite", "page", "redirect off-site"),
]


@dataclass
class Target:
    """The article a fault is played on, and the URL that carries it."""

    article_id: int
    url: str
    spec: str


@dataclass
class Run:
    """What one crawl left: exit code, log, items by id, report, WARC records by URL."""

    code: int
    log: str
    items: dict[int, dict[str, Any]]
    report: dict[str, Any]
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


@dataclass
class FaultRuns:
    """The faulted run, the re-run, the targets and the output folder."""

    targets: dict[str, Target]
    first: Run
    second: Run
    out: Path
    dump_ids: list[int]
    first_state: dict[int, tuple[str, list[str]]]  # status and errors of each article after the faulted run


def crawl(dumps: Path, out: Path, run_id: str, standin: RunningStandin, **extra: str) -> Run:
    """`scrapy crawl feeddump` in a subprocess, routed to `standin`; read back items, report and WARC."""
    run = run_crawl(out, standin, dumps, settings={**FAST, "ARCHIVER_RUN_ID": run_id, **extra}, timeout=180)
    items_file = out / "items" / f"{run_id}.jsonl"
    items = {}
    if items_file.exists():
        for line in items_file.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            items[item["article_id"]] = item
    report_file = out / "reports" / f"{run_id}.json"
    assert report_file.exists(), run.log[-4000:]
    report = json.loads(report_file.read_text(encoding="utf-8"))
    return Run(run.returncode, run.log, items, report, warc_records(out / "warc"))


def warc_records(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Response records of every WARC file in `folder`, by target URL (status, headers, payload, outlinks)."""
    records: dict[str, list[dict[str, Any]]] = {}
    by_id: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.warc.gz")):
        with path.open("rb") as fh:
            for rec in ArchiveIterator(fh):
                if rec.rec_type == "metadata":
                    fields = rec.content_stream().read().decode("utf-8").splitlines()
                    response = by_id.get(rec.rec_headers.get_header("WARC-Concurrent-To"), {})
                    response["outlinks"] = [f.removeprefix("outlink: ") for f in fields if f.startswith("outlink: ")]
                if rec.rec_type != "response":
                    continue
                url = rec.rec_headers.get_header("WARC-Target-URI")
                bomb = rec.http_headers.get_header("X-Standin-Fault") == "gzip_bomb"
                response = {
                    "file": path.name,
                    "status": int(rec.http_headers.get_statuscode()),
                    "location": rec.http_headers.get_header("Location"),
                    "retry_after": rec.http_headers.get_header("Retry-After"),
                    "truncated": rec.rec_headers.get_header("WARC-Truncated"),
                    "content_encoding": rec.http_headers.get_header("Content-Encoding"),
                    "payload_digest": rec.rec_headers.get_header("WARC-Payload-Digest"),
                    # the payload decoded, but a gzip bomb's as stored: warcio would inflate all of it
                    "payload": (rec.raw_stream if bomb else rec.content_stream()).read(),
                }
                records.setdefault(url, []).append(response)
                by_id[rec.rec_headers.get_header("WARC-Record-ID")] = response
    return records


def pick_targets(dumps: Path) -> tuple[dict[str, Target], list[int]]:
    """Copy DW dumps with distinct ids into `dumps`; give each fault an article (with images for image faults)."""
    chosen, ids, images_seen = [], [], set()
    for result in iter_dumps(str(DUMPS)):
        entry = result.entry
        if entry is None or entry.article_id is None or entry.article_id in ids:
            continue
        image_ids = [m.group(1) for i in entry.images if (m := re.search(r"/image/(\d+)_", i.url))]
        if images_seen & set(image_ids):
            continue
        images_seen |= set(image_ids)
        chosen.append((result.path, entry, image_ids))
        ids.append(entry.article_id)
    with_images = [c for c in chosen if c[2]]
    without = [c for c in chosen if not c[2]]
    targets: dict[str, Target] = {}
    used: list[tuple[str, Any, list[str]]] = []
    for case in CASES:
        pool = with_images if case.role == "image" else (without or with_images)
        path, entry, image_ids = pool.pop(0)
        used.append((path, entry, image_ids))
        if case.role == "image":
            url = next(i.url for i in entry.images if f"/image/{image_ids[0]}_" in i.url)
            spec = f"{image_ids[0]}@image:{case.fault}"
        else:
            url = entry.page_url if case.role == "page" else f"https://api.dw.com/api/detail/article/{entry.article_id}"
            spec = f"{entry.article_id}@{case.role}:{case.fault}"
        targets[case.fault] = Target(entry.article_id, url, spec)
    # two healthy articles beside the faulted ones
    used += [with_images.pop(0), (without or with_images).pop(0)]
    dumps.mkdir(parents=True)
    for n, (path, _, _) in enumerate(used):
        shutil.copy(path, dumps / f"{n:02d}-{Path(path).name}")
    return targets, [entry.article_id for _, entry, _ in used]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, standin: RunningStandin) -> FaultRuns:
    """The faulted crawl, then the re-run against the healthy session stand-in."""
    tmp = tmp_path_factory.mktemp("faults")
    dumps, out = tmp / "dumps", tmp / "out"
    targets, dump_ids = pick_targets(dumps)
    faulted = start_standin([str(dumps)], ",".join(t.spec for t in targets.values()), *STANDIN_OPTIONS)
    try:
        # the peak RSS (ru_maxrss) sampled often, so the stats show any short peak, e.g. an inflated gzip bomb
        first = crawl(dumps, out, "faulted", faulted, MEMUSAGE_CHECK_INTERVAL_SECONDS="0.5")
    finally:
        faulted.stop()
    with open_state(out) as state:
        first_state = {aid: (row.status, row.errors) for aid in dump_ids if (row := state.get_article(aid))}
    second = crawl(dumps, out, "rerun", standin)
    return FaultRuns(targets, first, second, out, dump_ids, first_state)


def open_state(out: Path) -> State:
    return State.open(out / "state.sqlite3", lock_path=out / ".test-lock")


def test_runs_end_cleanly_and_account_for_every_article(runs: FaultRuns) -> None:
    for run in (runs.first, runs.second):
        assert run.code == 0, run.log[-3000:]
        assert "Traceback" not in run.log, run.log[run.log.index("Traceback") - 200 :][:4000]
    report = runs.first.report
    articles = report["articles"]
    assert articles["planned"] == len(runs.dump_ids)
    assert articles["complete"] + articles["partial"] + articles["failed"] == len(runs.dump_ids)
    assert set(runs.first.items) >= set(runs.dump_ids)
    for aid in runs.dump_ids:
        item = runs.first.items[aid]
        assert item["status"] == "complete" or item["errors"], item
    for aid in runs.dump_ids:  # the state knows every article, with the errors of those not complete
        status, errors = runs.first_state[aid]
        assert status in ("archived", "failed") and (runs.first.items[aid]["status"] == "complete") != bool(errors)
    not_complete = {f["article_id"] for f in report["failures"]}
    assert not_complete == {aid for aid, i in runs.first.items.items() if i["status"] != "complete"}
    assert report["dumps"]["read"] == len(runs.dump_ids) and report["dumps"]["failed"] == 0


@pytest.mark.parametrize("case", CASES, ids=[c.fault for c in CASES])
def test_fault(runs: FaultRuns, case: Case) -> None:
    target = runs.targets[case.fault]
    aid = target.article_id

    # item: never complete, the reason names the faulted URL's failure
    item = runs.first.items[aid]
    assert item["status"] in ("partial", "failed"), item
    reasons = [e["reason"] for e in item["errors"]]
    assert any(r.startswith(case.reason) for r in reasons), reasons
    if case.role == "page":
        assert item["text"] is None, "an error page or a failed page became the article's text"

    # report: the article is listed with the same reason
    failure = next(f for f in runs.first.report["failures"] if f["article_id"] == aid)
    assert any(e["reason"].startswith(case.reason) for e in failure["errors"]), failure

    # WARC: what happened, as it happened
    check_warc(case, target, runs.first.records)

    # state after the faulted run: failed (waits for its retry) or, for a permanent fault, archived as it is
    status, errors = runs.first_state[aid]
    assert status == ("failed" if case.retried else "archived"), (status, errors)
    assert any(case.reason in e and target.url.split("?")[0] in e for e in errors), errors

    # ... and after the re-run against the healthy stand-in
    second = runs.second.items.get(aid)
    with open_state(runs.out) as state:
        row = state.get_article(aid)
    assert row is not None
    if case.retried:
        assert second is not None, f"article {aid} not retried; re-run items: {sorted(runs.second.items)}"
        assert second["status"] == "complete", second["errors"]
        assert row.status == "archived" and not row.errors, row
    else:
        assert second is None, "a permanent failure was fetched again at once"
        assert row.status == "archived", row
        assert any(case.reason in e for e in row.errors), row.errors


def test_gzip_bomb_is_refused_not_inflated(runs: FaultRuns) -> None:
    """Capture decodes no further than DOWNLOAD_MAXSIZE; HttpCompressionMiddleware then drops the response."""
    log = runs.first.log
    assert "'warc/outlinks_skipped/too_large': 1," in log, log[log.find("Dumping Scrapy stats") :][:4000]
    page = runs.targets["gzip_bomb"].url
    refused = [line for line in log.splitlines() if "during decompression" in line]
    assert len(refused) == 1 and page in refused[0] and "WARNING" in refused[0], refused
    memory = {k: int(v) for k, v in re.findall(r"'memusage/(max|startup)': (\d+)", log)}
    assert memory["max"] - memory["startup"] < GZIP_BOMB_BYTES // 2, memory  # inflated, it would add 256 MiB
    # Looked up again (scrapy warc-get), the archived bomb comes back as stored, not inflated.
    limit = int(FAST["DOWNLOAD_MAXSIZE"])
    location = find_by_url(runs.out / "warc", page)
    head, body = archived_response(runs.out / "warc", read_record_at(location.warc_file, location.offset), limit)
    assert b"Content-Encoding: gzip" in head and body[:2] == b"\x1f\x8b" and len(body) < limit


def test_state_kept_retryable_failures_for_the_next_run(runs: FaultRuns, tmp_path: Path) -> None:
    # The re-run fetched exactly the retryable ones: nothing archived in full was fetched again.
    retried = {runs.targets[c.fault].article_id for c in CASES if c.retried}
    assert {aid for aid in runs.second.items if aid in runs.dump_ids} == retried
    assert runs.second.report["articles"]["complete"] == len(retried)
    assert runs.second.report["failures"] == []


def check_warc(case: Case, target: Target, records: dict[str, list[dict[str, Any]]]) -> None:
    """The WARC side of each fault."""
    got = records.get(target.url, [])
    statuses = [r["status"] for r in got]
    if case.fault in ("404", "410", "500"):
        assert int(case.fault) in statuses
    elif case.fault in ("503", "429"):
        # every attempt (RETRY_TIMES=1: two) archived as what happened, Retry-After kept
        answered = [r for r in got if r["status"] == int(case.fault)]
        assert len(answered) == 2 and all(r["retry_after"] == "1" for r in answered), statuses
    elif case.fault in ("slow", "reset", "truncated", "oversized"):
        assert got == [], "an exchange without a complete response was archived as a response"
    elif case.fault == "gzip_bomb":
        # the 200 as received: gzip bytes (digest of those), small on the wire; outlinks not decoded past the limit
        (rec,) = got
        limit = int(FAST["DOWNLOAD_MAXSIZE"])
        assert rec["status"] == 200 and rec["content_encoding"] == "gzip", rec["status"]
        assert len(rec["payload"]) < limit and rec["payload_digest"] == sha1_digest(rec["payload"])
        assert len(zlib.decompressobj(wbits=31).decompress(rec["payload"], 4 * limit)) == 4 * limit
        assert rec["outlinks"] == []  # the body's first bytes hold a link: it was never decoded
    elif case.fault == "invalid_json":
        assert statuses == [200]
    elif case.fault == "wrong_charset":
        (rec,) = got
        assert rec["status"] == 200
        with pytest.raises(UnicodeDecodeError):
            rec["payload"].decode("utf-8")  # the exact bytes the server sent, not a "repaired" text
        rec["payload"].decode("gb18030")
    elif case.fault == "redirect_loop":
        loop = [r for url, rs in records.items() if url.startswith(target.url) for r in rs]
        assert len(loop) >= 2 and all(r["status"] == 302 for r in loop), loop
    elif case.fault == "redirect_offsite":
        assert statuses == [302] and got[0]["location"].startswith("https://www.example.com/")
        assert not any(url.startswith("https://www.example.com/") for url in records), "off-site target fetched"


def test_truncated_body_kept_is_flagged_never_complete(tmp_path: Path, standin: RunningStandin) -> None:
    """With DOWNLOAD_FAIL_ON_DATALOSS=False the cut body is kept: WARC-Truncated, item error, retried."""
    dumps, out = tmp_path / "dumps", tmp_path / "out"
    dumps.mkdir()
    entry = next(r.entry for r in iter_dumps(str(DUMPS)) if r.entry and r.entry.article_id and not r.entry.images)
    shutil.copy(entry.path, dumps / "a.md")
    api_url = f"https://api.dw.com/api/detail/article/{entry.article_id}"
    faulted = start_standin([str(dumps)], f"{entry.article_id}@api:truncated", *STANDIN_OPTIONS)
    try:
        first = crawl(dumps, out, "cut", faulted, DOWNLOAD_FAIL_ON_DATALOSS="False", ARCHIVER_REFS_DEPTH="0")
    finally:
        faulted.stop()
    assert first.code == 0 and "Traceback" not in first.log, first.log[-3000:]
    item = first.items[entry.article_id]
    assert item["status"] == "partial"
    assert {"url": api_url, "reason": "truncated body"} in item["errors"]
    assert item["api_text"] is None
    kept = first.records[api_url]
    assert kept and all(r["truncated"] == "disconnect" for r in kept), kept
    assert first.report["failures"][0]["errors"] == item["errors"]
    with open_state(out) as state:
        assert state.get_article(entry.article_id).status == "failed"
    second = crawl(dumps, out, "whole", standin, ARCHIVER_REFS_DEPTH="0")
    assert second.items[entry.article_id]["status"] == "complete"
