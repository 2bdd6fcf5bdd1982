"""Real `scrapy crawl` runs in subprocesses against a loopback server: conditional rechecks, the run lock."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from archiver.state.store import State

ROOT = Path(__file__).resolve().parents[1]
LAST_MODIFIED = "Wed, 21 Oct 2025 07:28:00 GMT"

SETTINGS = """
from archiver.addon import DOWNLOADER_MIDDLEWARES as _MIDDLEWARES, EXTENSIONS as _EXTENSIONS

SPIDER_MODULES = ["probeproj.spiders"]
ROBOTSTXT_OBEY = False
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"
# Only the state's components of archiver's add-on, at the priorities it gives them.
EXTENSIONS = {
    "scrapy.extensions.telnet.TelnetConsole": None,
    "archiver.state.extension.StateExtension": _EXTENSIONS["archiver.state.extension.StateExtension"],
}
DOWNLOADER_MIDDLEWARES = {
    k: v for k, v in _MIDDLEWARES.items() if k.startswith("archiver.fetch.conditional.")
}
"""

SPIDER = '''
import hashlib, uuid
from datetime import UTC, datetime

import scrapy

from archiver.state.store import CaptureRow, State


class Probe(scrapy.Spider):
    """Fetch `urls`; record each answer as a capture, as the WARC writer does, and yield what was sent."""

    name = "probe"
    urls = ""
    unconditional = ""

    async def start(self):
        meta = {"archiver_conditional": False} if self.unconditional else {}
        for url in self.urls.split(","):
            yield scrapy.Request(url, meta=dict(meta), dont_filter=True)

    def parse(self, response):
        prev = response.meta.get("archiver_previous_capture")
        etag = response.headers.get(b"ETag")
        modified = response.headers.get(b"Last-Modified")
        record_id = f"<urn:uuid:{uuid.uuid4()}>"
        State.for_crawler(self.crawler).add_capture(
            CaptureRow(
                url=response.url,
                fetched_at=datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
                status=response.status,
                payload_digest="sha1:" + hashlib.sha1(response.body).hexdigest(),
                record_id=record_id,
                warc_file="probe.warc.gz",
                etag=etag.decode() if etag else (prev or {}).get("etag"),
                last_modified=modified.decode() if modified else (prev or {}).get("last_modified"),
                record_type="revisit" if response.status == 304 else "response",
                run_id=self.settings["ARCHIVER_RUN_ID"],
            )
        )
        yield {
            "url": response.url,
            "status": response.status,
            "body": response.text,
            "record_id": record_id,
            "refers_to": (prev or {}).get("record_id"),
            "sent": {k.decode(): v[0].decode() for k, v in response.request.headers.items()},
        }


class Slow(Probe):
    name = "slow"
'''


class Site:
    """A loopback server: `/page` (ETag + Last-Modified), `/lm` (Last-Modified only), `/slow` (waits)."""

    def __init__(self) -> None:
        self.version = "v1"
        self.moved = False
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.slow_hit = threading.Event()
        self.release = threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                site.seen.append((self.path, headers))
                if self.path == "/slow":
                    site.slow_hit.set()
                    site.release.wait(120)
                if self.path == "/moved" and site.moved:
                    self.send_response(301)
                    self.send_header("Location", "/page")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                etag = None if self.path == "/lm" else f'"{site.version}"' if self.path != "/moved" else '"m1"'
                not_modified = (etag and headers.get("if-none-match") == etag) or (
                    "if-none-match" not in headers and headers.get("if-modified-since") == LAST_MODIFIED
                )
                self.send_response(304 if not_modified else 200)
                if etag:
                    self.send_header("ETag", etag)
                self.send_header("Last-Modified", LAST_MODIFIED)
                body = b"" if not_modified else f"{self.path} {site.version}".encode()
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def requests(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.seen if p == path]


@pytest.fixture
def site() -> Iterator[Site]:
    s = Site()
    yield s
    s.release.set()
    s.server.shutdown()
    s.server.server_close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    (proj / "probeproj" / "spiders").mkdir(parents=True)
    (proj / "scrapy.cfg").write_text("[settings]\ndefault = probeproj.settings\n")
    (proj / "probeproj" / "__init__.py").write_text("")
    (proj / "probeproj" / "settings.py").write_text(SETTINGS)
    (proj / "probeproj" / "spiders" / "__init__.py").write_text(SPIDER)
    return proj


def crawl_cmd(project: Path, spider: str, out: Path, feed: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "scrapy", "crawl", spider, "-O", str(feed),
            "-s", f"ARCHIVER_OUTPUT_DIR={out}", *args]  # fmt: skip


def run_env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SCRAPY_SETTINGS_MODULE"}
    env["PYTHONPATH"] = os.pathsep.join([str(project), str(ROOT)])
    return env


def crawl(project: Path, out: Path, name: str, *args: str) -> list[dict]:
    feed = out.parent / f"{name}.jsonl"
    proc = subprocess.run(
        crawl_cmd(project, "probe", out, feed, "-s", f"ARCHIVER_RUN_ID={name}", *args),
        cwd=project,
        env=run_env(project),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sorted((json.loads(line) for line in feed.read_text().splitlines()), key=lambda i: i["url"])


def test_rechecks_send_the_last_validators_and_304_reaches_the_spider(site: Site, project: Path, tmp_path: Path):
    out = tmp_path / "out"
    urls = f"urls={site.base}/lm,{site.base}/page"

    first = crawl(project, out, "run1", "-a", urls)
    assert [i["status"] for i in first] == [200, 200]
    assert not any("if-none-match" in h or "if-modified-since" in h for _, h in site.seen)

    second = crawl(project, out, "run2", "-a", urls)
    lm, page = site.requests("/lm")[-1], site.requests("/page")[-1]
    assert page["if-none-match"] == '"v1"' and page["if-modified-since"] == LAST_MODIFIED
    assert lm["if-modified-since"] == LAST_MODIFIED and "if-none-match" not in lm
    assert [i["status"] for i in second] == [304, 304]
    # The spider learns which capture the 304 confirms (for the server-not-modified revisit) ...
    assert [i["refers_to"] for i in second] == [i["record_id"] for i in first]
    # ... and the request it sees (as the WARC capture at 950 does) carries the headers as sent.
    assert second[1]["sent"]["If-None-Match"] == '"v1"'

    site.version = "v2"
    third = crawl(project, out, "run3", "-a", urls)
    assert site.requests("/page")[-1]["if-none-match"] == '"v1"'
    assert [(i["status"], i["body"]) for i in third] == [(304, ""), (200, "/page v2")]

    fourth = crawl(project, out, "run4", "-a", urls, "-a", "unconditional=1")
    assert [i["status"] for i in fourth] == [200, 200]
    assert not any("if-none-match" in h or "if-modified-since" in h for h in site.requests("/page")[-1:])

    with State.open(out / "state.sqlite3") as state:
        assert [state.get_run(r).outcome for r in ("run1", "run2", "run3", "run4")] == ["finished"] * 4
        digest = "sha1:" + hashlib.sha1(b"/page v1").hexdigest()
        assert state.find_by_digest(f"{site.base}/page", digest).run_id == "run1"
        assert state.last_capture(f"{site.base}/page").etag == '"v2"'


def test_a_second_crawl_on_the_same_output_refuses_while_the_first_runs(site: Site, project: Path, tmp_path: Path):
    out = tmp_path / "out"
    first = subprocess.Popen(
        crawl_cmd(project, "slow", out, tmp_path / "slow.jsonl", "-a", f"urls={site.base}/slow"),
        cwd=project,
        env=run_env(project),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert site.slow_hit.wait(120), "the first crawl never reached the server"
        second = subprocess.run(
            crawl_cmd(project, "probe", out, tmp_path / "second.jsonl", "-a", f"urls={site.base}/page"),
            cwd=project,
            env=run_env(project),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode != 0
        assert "is in use by run slow-" in second.stderr and f"(pid {first.pid} on " in second.stderr
        assert "refuses to start" in second.stderr
        assert second.stderr.count("refuses to start") == 1 and "Traceback" not in second.stderr, second.stderr
        assert site.requests("/page") == []  # it fetched nothing
        assert not (tmp_path / "second.jsonl").exists() or (tmp_path / "second.jsonl").read_text() == ""
    finally:
        site.release.set()
        _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err[-3000:]
    assert crawl(project, out, "after", "-a", f"urls={site.base}/page")[0]["status"] == 200  # lock released


def test_a_crawl_killed_with_sigkill_does_not_lock_out_the_next(site: Site, project: Path, tmp_path: Path):
    out = tmp_path / "out"
    first = subprocess.Popen(
        crawl_cmd(
            project,
            "slow",
            out,
            tmp_path / "slow.jsonl",
            "-a",
            f"urls={site.base}/slow",
            "-s",
            "ARCHIVER_RUN_ID=killed",
        ),
        cwd=project,
        env=run_env(project),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert site.slow_hit.wait(120), "the first crawl never reached the server"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    finally:
        first.kill()
        first.wait()
    assert json.loads((out / ".lock").read_text())["run_id"] == "killed"  # stale content, no lock behind it
    assert crawl(project, out, "next", "-a", f"urls={site.base}/page")[0]["status"] == 200
    with State.open(out / "state.sqlite3") as state:
        assert state.integrity_check() == "ok"
        assert state.get_run("killed").outcome == "interrupted"
        assert state.get_run("next").outcome == "finished"


def test_a_redirect_does_not_carry_the_validators_of_the_first_url(site: Site, project: Path, tmp_path: Path):
    out = tmp_path / "out"
    urls = f"urls={site.base}/moved,{site.base}/page"
    assert [i["status"] for i in crawl(project, out, "run1", "-a", urls)] == [200, 200]
    site.moved = True  # /moved (ETag "m1") now redirects to /page (ETag "v1")
    second = crawl(project, out, "run2", "-a", f"urls={site.base}/moved")
    assert site.requests("/moved")[-1]["if-none-match"] == '"m1"'
    assert site.requests("/page")[-1]["if-none-match"] == '"v1"'
    assert [(i["url"], i["status"]) for i in second] == [(f"{site.base}/page", 304)]
