"""End to end: local faults never count as archived. A WARC folder or a whole output folder that fills up (tmpfs,
else a file-size limit), against the real stand-in; the next run with room finishes the work, nothing doubled."""

from __future__ import annotations

import errno
import json
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from crawl_support import CrawlRun, run_crawl
from disk_support import small_disk

from archiver.run.outage import disk_full
from archiver.state.store import ARCHIVED, FAILED, State
from archiver.warc.check import check_file
from archiver.warc.lookup import read_record_at
from archiver.warc.middleware import capture_failure

LOST = "WARC write failed"


def all_items(out: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for f in sorted((out / "items").glob("*.jsonl"))
        for line in f.read_text("utf-8").splitlines()
        if line.strip()
    ]


def assert_captures_in_place(out: Path, items: list[dict[str, Any]]) -> int:
    """Every capture of an archived item is a record with its id at its offset in a closed, valid WARC file."""
    n = 0
    for item in items:
        if item["status"] == "failed" or any(e["reason"].startswith(LOST) for e in item["errors"]):
            continue
        for cap in item["captures"]:
            assert cap["warc_file"] and cap["offset"] is not None, (item["article_id"], cap)
            record = read_record_at(out / "warc" / cap["warc_file"], cap["offset"])
            assert record.get("WARC-Record-ID") == cap["record_id"], (item["article_id"], cap)
            n += 1
    for path in (out / "warc").glob("*.warc.gz"):
        assert check_file(path).ok, path
    return n


def test_a_warc_write_failure_is_a_loss_and_the_next_run_archives_it(standin: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with small_disk(out / "warc", 600_000) as disk:
        if not disk.mounted:
            pytest.skip("needs a tmpfs for the WARC folder alone (mounts not allowed here)")
        first = run_crawl(out, standin, args={"limit": "12"})
        assert first.returncode == 1, first.log[-3000:]
        assert "Traceback" not in first.log
        report = first.report()
        assert not report["outcome"]["ok"]
        assert any("not written to a WARC file" in p for p in report["outcome"]["problems"])
        items = first.items()
        lost = [i for i in items if any(e["reason"].startswith(LOST) for e in i["errors"])]
        assert lost, "the WARC folder never filled"
        assert all(i["status"] in ("failed", "partial") for i in lost)
        # Never an archived item with a capture that names no record.
        for item in items:
            if item["status"] == "complete":
                assert all(c["record_id"] and c["warc_file"] for c in item["captures"]), item["article_id"]
        listed = {f["article_id"] for f in report["failures"]}
        assert {i["article_id"] for i in lost} <= listed
        now = time.time()
        with State.open(out / "state.sqlite3") as state:
            for item in lost:
                row = state.get_article(item["article_id"])
                assert row is not None and row.status == FAILED and row.next_check <= now + 1, row
                assert any(LOST in e for e in row.errors)

        disk.grow(200_000_000)
        second = run_crawl(out, standin, args={"limit": "12"})
        assert second.returncode == 0, second.log[-3000:]
        assert second.report()["outcome"] == {"ok": True, "exit_status": 0, "problems": []}
        redone = {i["article_id"]: i for i in second.items()}
        for item in lost:
            assert redone[item["article_id"]]["status"] == "complete", redone[item["article_id"]]["errors"]
        with State.open(out / "state.sqlite3") as state:
            assert all(state.get_article(i["article_id"]).status == ARCHIVED for i in lost)
        assert assert_captures_in_place(out, all_items(out)) > 0


def test_a_full_disk_stops_the_run_with_exit_1_and_the_next_run_finishes(standin: Any, tmp_path: Path) -> None:
    out = tmp_path / "disk" / "out"
    with small_disk(tmp_path / "disk", 2_500_000) as disk:
        first = run_crawl(out, standin, args={"limit": "30"}, preexec=disk.preexec())
        assert first.returncode == 1, first.log[-3000:]
        assert "Traceback" not in first.log
        assert "stopping the run: disk full" in first.log
        reports = list((out / "reports").glob("*.json"))
        if reports:  # written when there was room for it; otherwise one line says why
            assert not json.loads(reports[0].read_text("utf-8"))["outcome"]["ok"]
        else:
            assert "run report" in first.log and "not written" in first.log and "MB free" in first.log
        assert not list((out / "reports").glob("*.json.tmp"))

        disk.grow(300_000_000)
        second = run_crawl(out, standin, args={"limit": "30"}, preexec=disk.preexec())
        assert second.returncode == 0, second.log[-3000:]
        items = all_items(out)
        archived = [i for i in items if i["kind"] != "reference" and i["status"] == "complete"]
        counts = Counter(i["article_id"] for i in archived)
        assert len(counts) == 30 and set(counts.values()) == {1}, counts  # all done, none twice
        assert assert_captures_in_place(out, items) > 0
        assert not list((out / "warc").glob("*.open"))


def test_a_second_run_cleans_stale_report_files(standin: Any, tmp_path: Path) -> None:
    (tmp_path / "reports").mkdir(parents=True)
    stale = tmp_path / "reports" / "feeddump-old.json.tmp"
    stale.write_bytes(b"")
    run = run_crawl(tmp_path, standin, args={"limit": "1"}, settings={"ARCHIVER_MEDIA": "0", "ARCHIVER_REFS_DEPTH": 0})
    assert run.returncode == 0, run.log[-3000:]
    assert not stale.exists()
    assert isinstance(run, CrawlRun) and run.report()["outcome"]["ok"]


def test_disk_full_is_recognised_through_wrapping_errors() -> None:
    full = OSError(errno.ENOSPC, "No space left on device")
    try:
        try:
            raise full
        except OSError as exc:
            raise RuntimeError("write failed") from exc
    except RuntimeError as wrapped:
        assert disk_full(wrapped)
    assert disk_full(sqlite3.OperationalError("database or disk is full"))
    assert disk_full(OSError(errno.EFBIG, "File too large"))
    assert not disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not disk_full(ValueError("x"))
    assert capture_failure(full) == "WARC write failed: OSError: [Errno 28] No space left on device"
