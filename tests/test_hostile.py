"""Hostile dumps crawl without a traceback, account for every file, and fetch nothing off the allowed hosts.

The proof is taken from the outside: a canary HTTP server on loopback, which the hostile links point at
under many spellings, must receive no request at all; every WARC record must be on an allowed host; nothing
may be written outside the output folder. Also: RemoteControl and telnet are off in every settings profile.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest
from conftest import ROOT, start_standin
from crawl_support import run_crawl
from hostile_corpus import FIRST_ID, HostileFile, _lead, dump, write_corpus
from hypothesis import given, settings
from hypothesis import strategies as st
from scrapy.utils.conf import build_component_list
from warcio.archiveiterator import ArchiveIterator

from archiver.config import DW_HOSTS
from archiver.items.model import FeedRef
from archiver.run.assemble import ArticleParts, Fetched, article_item
from archiver.run.jobs import ArticleJob
from archiver.state.store import State

MAX_DUMP_BYTES = 1_000_000
OUT_FILES = re.compile(r"^(items|reports|warc|fixity|state\.sqlite3(-wal|-shm)?|\.lock)$")


class Canary:
    """Loopback HTTP servers (IPv4 and, where possible, IPv6 on the same port) that log every request."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        canary = self

        class Handler(BaseHTTPRequestHandler):
            def _hit(self) -> None:
                canary.hits.append(f"{self.command} {self.path} Host={self.headers.get('Host')}")
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"canary")

            do_GET = do_HEAD = do_POST = _hit

            def log_message(self, *args: object) -> None:
                pass

        self.servers = [ThreadingHTTPServer(("127.0.0.1", 0), Handler)]
        self.port = self.servers[0].server_address[1]

        class V6(ThreadingHTTPServer):
            address_family = socket.AF_INET6

        with contextlib.suppress(OSError):  # without IPv6 loopback the IPv4 canary still covers the rest
            self.servers.append(V6(("::1", self.port), Handler))
        for server in self.servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()

    def close(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def canary() -> Iterator[Canary]:
    running = Canary()
    with urlopen(f"http://127.0.0.1:{running.port}/self-test") as answer:  # the canary does see a request
        assert answer.read() == b"canary"
    assert running.hits == [f"GET /self-test Host=127.0.0.1:{running.port}"]
    running.hits.clear()
    yield running
    running.close()


def tree(root: Path, skip: Path | None = None) -> dict[str, int]:
    """Every path below `root` (not following links) with its size, except below `skip`."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if skip is not None and (here == skip or skip in here.parents):
            continue
        for name in dirnames + filenames:
            path = here / name
            if path == skip:
                continue
            found[str(path)] = path.lstat().st_size if not path.is_dir() else -1
    return found


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, canary: Canary) -> dict:
    """Write the corpus, crawl it against a stand-in built from it, and collect what came out."""
    tmp = tmp_path_factory.mktemp("hostile")
    dumps, out = tmp / "dumps", tmp / "out"
    files = write_corpus(dumps, canary.port, huge_bytes=MAX_DUMP_BYTES + 200_000)
    before = tree(tmp)
    standin = start_standin([str(dumps)])
    try:
        settings = {
            "ARCHIVER_RUN_ID": "hostile",
            "ARCHIVER_DUMP_MAX_BYTES": str(MAX_DUMP_BYTES),
            "RETRY_TIMES": "0",
            "DOWNLOAD_TIMEOUT": "10",
            "CONCURRENT_REQUESTS_PER_DOMAIN": "16",
        }
        run = run_crawl(out, standin, dumps, settings=settings, timeout=240)
    finally:
        standin.stop()
    items = [json.loads(line) for line in (out / "items" / "hostile.jsonl").read_text(encoding="utf-8").splitlines()]
    report = json.loads((out / "reports" / "hostile.json").read_text(encoding="utf-8"))
    return {
        "files": files,
        "dumps": dumps,
        "out": out,
        "tmp": tmp,
        "before": before,
        "after": tree(tmp, skip=out),
        "code": run.returncode,
        "log": run.log,
        "items": items,
        "report": report,
    }


def test_no_traceback_and_clean_exit(hostile: dict) -> None:
    log = hostile["log"]
    assert hostile["code"] == 0, log[-3000:]
    assert "Traceback" not in log, log[log.index("Traceback") - 300 :][:4000]


def test_canary_received_nothing(hostile: dict, canary: Canary) -> None:
    assert canary.hits == []


def test_every_warc_record_is_on_an_allowed_host(hostile: dict) -> None:
    uris = []
    for path in (hostile["out"] / "warc").glob("*.warc.gz"):
        with path.open("rb") as fh:
            uris += [
                r.rec_headers.get_header("WARC-Target-URI") for r in ArchiveIterator(fh) if r.rec_type != "warcinfo"
            ]
    assert uris
    for uri in uris:
        parts = urlsplit(uri)
        assert parts.scheme in ("http", "https") and parts.hostname in DW_HOSTS and parts.username is None, uri


def test_every_file_is_accounted_for(hostile: dict) -> None:
    files: list[HostileFile] = hostile["files"]
    dumps = hostile["report"]["dumps"]
    assert dumps["read"] + dumps["duplicate"] + dumps["skipped"] + dumps["failed"] == len(files)
    listed = {f["path"]: f for f in dumps["files"]}
    for f in files:
        if f.outcome in ("failed", "skipped"):
            assert listed[str(f.path)]["outcome"] == f.outcome, (f, listed.get(str(f.path)))
            assert listed[str(f.path)]["reason"]
        else:
            assert str(f.path) not in listed, f
    huge = listed[str(hostile["dumps"] / "huge.md")]
    assert huge["reason"].startswith("too large")


def test_every_article_has_an_item_with_honest_status(hostile: dict) -> None:
    read = [f for f in hostile["files"] if f.outcome == "read"]
    articles = [i for i in hostile["items"] if i["kind"] != "reference"]
    assert len(articles) == len(read) == hostile["report"]["articles"]["planned"]
    for item in articles:
        assert item["status"] == "complete" or item["errors"], item["article_id"]


def test_internal_links_are_recorded_not_fetched(hostile: dict) -> None:
    (item,) = [i for i in hostile["items"] if i["title"] == "internal"]
    refused = [e for e in item["errors"] if e["reason"].startswith("out of scope")]
    images = [i["url"] for i in item["images"]]
    assert images and len(refused) == len([u for u in images if urlsplit(u).hostname not in DW_HOSTS])
    assert all(c["url"].startswith("https://www.dw.com/") or "api.dw.com" in c["url"] for c in item["captures"])
    assert item["status"] == "partial"
    all_refused = sum(e["reason"].startswith("out of scope") for i in hostile["items"] for e in i["errors"])
    stat = re.search(r"'archiver/scope/refused': (\d+)", hostile["log"])
    assert stat and int(stat.group(1)) == all_refused > 0


def test_limits_on_references_and_images(hostile: dict) -> None:
    by_title = {i["title"]: i for i in hostile["items"] if i["kind"] != "reference"}
    refs = by_title["refs"]
    assert len(refs["references"]) == 3000  # all listed ...
    fetched_refs = [i for i in hostile["items"] if i["kind"] == "reference" and i.get("via") == refs["article_id"]]
    assert 0 < len(fetched_refs) <= 200  # ... at most ARCHIVER_MAX_REFERENCES fetched
    pics = by_title["images"]
    assert len(pics["images"]) == 3000
    assert 0 < len([c for c in pics["captures"] if c["role"] == "image"]) <= 100  # ARCHIVER_MAX_IMAGES


def test_nothing_written_outside_the_output_folder(hostile: dict) -> None:
    assert hostile["after"] == hostile["before"], "the crawl changed files outside its output folder"
    out: Path = hostile["out"]
    assert all(OUT_FILES.match(p.name) for p in out.iterdir()), sorted(p.name for p in out.iterdir())
    for path in out.rglob("*"):
        assert out in path.resolve().parents and "\n" not in path.name and ".." not in path.name, path
    assert not Path("/tmp/pwned").exists()


def test_state_knows_every_article(hostile: dict) -> None:
    out: Path = hostile["out"]
    with State.open(out / "state.sqlite3", lock_path=out / ".test-lock") as state:
        for item in hostile["items"]:
            row = state.get_article(item["article_id"])
            assert row is not None and row.status in ("archived", "failed"), (item["article_id"], row)


# --- RemoteControl and telnet: off in every profile ---

PROFILES = sorted(p.stem for p in (ROOT / "settings").glob("*.py") if p.stem != "__init__")
_PROBE = """
import json
from scrapy.utils.conf import build_component_list
from scrapy.utils.project import get_project_settings
s = get_project_settings()
print(json.dumps({"telnet": s.getbool("TELNETCONSOLE_ENABLED"), "remote": s.getbool("REMOTE_CONTROL_ENABLED"),
                  "extensions": build_component_list(s.getwithbase("EXTENSIONS"))}))
"""


@pytest.mark.parametrize("profile", PROFILES)
def test_remote_control_and_telnet_are_off(profile: str) -> None:
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": f"settings.{profile}", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    effective = json.loads(proc.stdout)
    assert effective["telnet"] is False and effective["remote"] is False
    assert not any("telnet" in e.lower() or "remote_control" in e.lower() for e in effective["extensions"])


def test_a_real_crawl_opens_no_console(hostile: dict) -> None:
    log = hostile["log"]
    assert "Telnet console listening" not in log and "Remote control HTTP server" not in log
    assert build_component_list  # the same helper the profile probe uses


# --- a property: jobs survive their JSON round trip, and items from them are well-formed ---

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
_url = st.builds(lambda s: f"https://static.dw.com/image/{s}_303.jpg", st.integers(1, 10**9))
_jobs = st.builds(
    ArticleJob,
    article_id=st.integers(1, 10**15),
    kind=st.sampled_from(["article", "gallery", "video", "empty", "reference"]),
    page_url=st.one_of(st.none(), st.builds(lambda i: f"https://www.dw.com/zh/x/a-{i}", st.integers(1, 10**9))),
    title=_text,
    author=st.one_of(st.none(), _text),
    body_html=_text,
    images=st.lists(st.tuples(_url, st.one_of(st.none(), _text)), max_size=4),
    references=st.lists(st.integers(1, 10**15), max_size=5),
    feed=st.lists(st.builds(FeedRef, file=_text, feed_time=st.none(), title=_text, link=_text), max_size=3),
    recheck=st.booleans(),
    depth=st.integers(0, 3),
)


@settings(max_examples=150, deadline=None)
@given(job=_jobs, statuses=st.lists(st.sampled_from([200, 304, 404, 429, 503, None]), min_size=2, max_size=2))
def test_job_round_trip_and_item_status(job: ArticleJob, statuses: list[int | None]) -> None:
    assert ArticleJob.from_json(job.to_json()) == job
    page_status, api_status = statuses
    parts = ArticleParts(job=job)
    if job.page_url:
        parts.page = Fetched(job.page_url, "page", status=page_status, error=None if page_status else "timeout")
    parts.api = Fetched(job.api_url, "api", status=api_status, error=None if api_status else "timeout")
    item = article_item(parts, "run")
    ok = [p.ok for p in (parts.page, parts.api) if p is not None]
    assert item.status == ("complete" if all(ok) else "failed" if not any(ok) else "partial")
    assert len(item.errors) == ok.count(False)  # every part without content is named, none invented
    assert item.article_id == job.article_id and job.article_id not in item.references
    assert item.text is None  # nothing extracted: an error page never becomes text


def test_private_addresses_refused_even_when_allowed(tmp_path: Path, canary: Canary) -> None:
    """Second line: with loopback names put on ARCHIVER_ALLOWED_HOSTS, the address guard still refuses them."""
    dumps, out = tmp_path / "dumps", tmp_path / "out"
    dumps.mkdir()
    port = canary.port
    urls = [f"http://localhost:{port}/a.jpg", f"http://127.0.0.1:{port}/b.jpg", f"http://[::1]:{port}/c.jpg"]
    body = _lead() + "".join(f'<div><img src="{u}"><b>图</b>：x</div>' for u in urls)
    (dumps / "a.md").write_text(dump(FIRST_ID + 999, "guard", body), encoding="utf-8")
    standin = start_standin([str(dumps)])
    try:
        settings = {
            "ARCHIVER_RUN_ID": "guard",
            "RETRY_TIMES": "0",
            "ARCHIVER_ALLOWED_HOSTS": ",".join([*DW_HOSTS, "localhost", "127.0.0.1", "::1"]),
        }
        run = run_crawl(out, standin, dumps, settings=settings, timeout=120)
    finally:
        standin.stop()
    assert run.returncode == 0, run.log[-3000:]
    # A robots.txt of a refused host that cannot be fetched is one error line (archiver.fetch.politeness), no traceback.
    assert "Traceback" not in run.log, run.log[-3000:]
    assert canary.hits == []
    (item,) = [json.loads(line) for line in (out / "items" / "guard.jsonl").read_text(encoding="utf-8").splitlines()]
    assert item["status"] == "partial" and {e["url"] for e in item["errors"]} == set(urls)
    assert run.log.count("refused non-public addresses") >= len(urls)
