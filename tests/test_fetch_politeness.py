"""Politeness: Retry-After on 429/503 is honoured, other retries back off; robots.txt failures are one line."""

import json
from datetime import UTC, datetime
from typing import ClassVar

from archiver.fetch.politeness import backoff_seconds, retry_after_seconds
from tests.loopback import QuietHandler, runspider, serving


def test_retry_after_header_forms():
    now = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(b"7") == 7.0
    assert retry_after_seconds("Fri, 27 Nov 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Fri, 27 Nov 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds(b"soon") is None
    assert retry_after_seconds(None) is None


def test_backoff_doubles_and_is_capped():
    assert [backoff_seconds(n, 1.0, 5.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]


class Flaky(QuietHandler):
    """429 with Retry-After: 1 on the first visit of each path, then 200."""

    seen: ClassVar[set[str]] = set()

    def do_GET(self):
        first = self.path not in self.seen
        self.seen.add(self.path)
        if first:
            self.reply(429, b"slow down", {"Retry-After": "1"})
        else:
            self.reply(200, b"fine")


def test_429_is_retried_after_the_wait_the_server_asked_for(tmp_path):
    out = tmp_path / "out.jsonl"
    with serving(Flaky) as host:
        url = f"http://{host}/a"
        proc = runspider(
            "fetch_urls.py", tmp_path, "-a", f"urls={url}", "-a", f"out={out}", "-s", "ROBOTSTXT_OBEY=False"
        )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [{"url": url, "status": 200, "body": "fine"}], proc.stderr[-3000:]
    assert "retry 1 of " + url + " in 1.0s (429)" in proc.stderr
    assert "'archiver/retry/waited_seconds': 1" in proc.stderr


class NoRobots(QuietHandler):
    """Drops the connection on /robots.txt; serves every other path."""

    def do_GET(self):
        if self.path == "/robots.txt":
            self.close_connection = True
            self.connection.shutdown(2)  # no status line: Scrapy gets a connection error
            return
        self.reply(200, b"page")


def test_an_unreachable_robots_txt_is_one_error_line_not_a_traceback(tmp_path):
    out = tmp_path / "out.jsonl"
    with serving(NoRobots) as host:
        proc = runspider(
            "fetch_urls.py", tmp_path, "-a", f"urls=http://{host}/a", "-a", f"out={out}", "-s", "RETRY_TIMES=0"
        )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [{"url": f"http://{host}/a", "status": 200, "body": "page"}], proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if "robotstxt] ERROR" in line]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert f"robots.txt of {host} could not be fetched (" in errors[0]
    assert "its URLs are fetched as if allowed" in errors[0]
    assert "Traceback" not in proc.stderr
    assert "'robotstxt/request_count': 1" in proc.stderr
