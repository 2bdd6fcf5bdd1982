"""Retries wait: Retry-After on 429/503 is honoured, other retries back off."""

import json
import subprocess
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from archiver.politeness import backoff_seconds, retry_after_seconds

ROOT = Path(__file__).resolve().parents[1]


def test_retry_after_header_forms():
    now = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(b"7") == 7.0
    assert retry_after_seconds("Fri, 27 Nov 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Fri, 27 Nov 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds(b"soon") is None
    assert retry_after_seconds(None) is None


def test_backoff_doubles_and_is_capped():
    assert [backoff_seconds(n, 1.0, 5.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]


class Flaky(BaseHTTPRequestHandler):
    """429 with Retry-After: 1 on the first visit of each path, then 200."""

    seen: ClassVar[set[str]] = set()

    def do_GET(self):
        first = self.path not in self.seen
        self.seen.add(self.path)
        body = b"slow down" if first else b"fine"
        self.send_response(429 if first else 200)
        if first:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_429_is_retried_after_the_wait_the_server_asked_for(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = tmp_path / "out.jsonl"
    url = f"http://127.0.0.1:{server.server_port}/a"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "scrapy", "runspider", str(ROOT / "tests/spiders/fetch_urls.py"),
             "-a", f"urls={url}", "-a", f"out={out}", "-s", "ARCHIVER_ALLOWED_HOSTS=127.0.0.1",
             "-s", "ROBOTSTXT_OBEY=False", "-s", "ARCHIVER_OUTPUT_DIR=" + str(tmp_path),
             "-s", "ARCHIVER_ALLOW_PRIVATE_ADDRESSES=1"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        server.shutdown()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [{"url": url, "status": 200, "body": "fine"}], proc.stderr[-3000:]
    assert "retry 1 of " + url + " in 1.0s (429)" in proc.stderr
    assert "'archiver/retry/waited_seconds': 1" in proc.stderr


class NoRobots(BaseHTTPRequestHandler):
    """Drops the connection on /robots.txt; serves every other path."""

    def do_GET(self):
        if self.path == "/robots.txt":
            self.close_connection = True
            self.connection.shutdown(2)  # no status line: Scrapy gets a connection error
            return
        body = b"page"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_an_unreachable_robots_txt_is_one_error_line_not_a_traceback(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), NoRobots)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    out = tmp_path / "out.jsonl"
    host = f"127.0.0.1:{server.server_port}"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "scrapy", "runspider", str(ROOT / "tests/spiders/fetch_urls.py"),
             "-a", f"urls=http://{host}/a", "-a", f"out={out}", "-s", "ARCHIVER_ALLOWED_HOSTS=127.0.0.1",
             "-s", "ARCHIVER_OUTPUT_DIR=" + str(tmp_path), "-s", "ARCHIVER_ALLOW_PRIVATE_ADDRESSES=1",
             "-s", "RETRY_TIMES=0"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        server.shutdown()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [{"url": f"http://{host}/a", "status": 200, "body": "page"}], proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if "robotstxt] ERROR" in line]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert f"robots.txt of {host} could not be fetched (" in errors[0]
    assert "its URLs are fetched as if allowed" in errors[0]
    assert "Traceback" not in proc.stderr
    assert "'robotstxt/request_count': 1" in proc.stderr
