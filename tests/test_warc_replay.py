"""Replay and packaging with the real tools: pywb (own virtualenv) replays every capture, py-wacz validates."""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import pytest
from warc_support import PATHS, Server, items, run_crawl

from archiver.warc.cdxj import read_cdxj

PYWB_VERSION = "2.10.0"
REPLAYED = [p for p in PATHS if p != "/dataloss"]  # a cut-off body is archived, not replayed


def cache_dir() -> Path:
    base = os.environ.get("ARCHIVER_TEST_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "archiver-tests")
    return Path(base)


@pytest.fixture(scope="session")
def pywb_bin() -> Path:
    """A virtualenv with pywb (its pins break Scrapy's env), built once from PyPI and cached by version."""
    venv = cache_dir() / f"pywb-{PYWB_VERSION}-py{sys.version_info.major}{sys.version_info.minor}"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / (venv.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs build it once
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            pip = subprocess.run(
                [str(venv / "bin" / "pip"), "install", "-q", f"pywb=={PYWB_VERSION}"], capture_output=True, text=True
            )
            assert pip.returncode == 0, f"pywb could not be installed: {pip.stderr[-2000:]}"
            (venv / ".complete").write_text(PYWB_VERSION)
    return venv / "bin"


@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replay")
    with Server() as server:
        urls = [server.base + p for p in REPLAYED]
        result = run_crawl(tmp, urls, again=["/etag", "/same"], settings={"ARCHIVER_WARC_MAX_SIZE": "8000"})
        decoded = dict(server.decoded)
        base = server.base
    assert result.returncode == 0, result.stderr[-2000:]
    return {"tmp": tmp, "warc": tmp / "out" / "warc", "decoded": decoded, "base": base}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def undo_encoding(headers: dict, body: bytes) -> bytes:
    enc = {k.lower(): v for k, v in headers.items()}.get("content-encoding", "")
    if enc == "gzip":
        return gzip.decompress(body)
    if enc == "deflate":
        return zlib.decompress(body)
    return body


@pytest.fixture(scope="module")
def wayback(crawled, pywb_bin, tmp_path_factory):
    root = tmp_path_factory.mktemp("pywb")
    subprocess.run([str(pywb_bin / "wb-manager"), "init", "coll"], cwd=root, check=True, capture_output=True)
    coll = root / "collections" / "coll"
    lines = []
    for w in sorted(crawled["warc"].glob("*.warc.gz")):
        shutil.copy(w, coll / "archive" / w.name)
        lines += (w.parent / (w.name + ".cdxj")).read_text().splitlines()
    (coll / "indexes" / "index.cdxj").write_text("\n".join(sorted(lines)) + "\n")  # our CDXJ, not pywb's
    port = free_port()
    proc = subprocess.Popen(
        [str(pywb_bin / "wayback"), "-p", str(port), "-b", "127.0.0.1"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    yield base
    proc.terminate()
    proc.wait(timeout=10)


def ts(fetched_at: str) -> str:
    return "".join(c for c in fetched_at if c.isdigit())[:14]


def test_pywb_replays_every_capture_with_the_bytes_served(crawled, wayback):
    its = items(crawled["tmp"])
    assert {it["capture"]["record_type"] for it in its} == {"response", "revisit"}
    for it in its:
        path = it["url"].removeprefix(crawled["base"])
        status, headers, body = fetch(f"{wayback}/coll/{ts(it['capture']['fetched_at'])}id_/{it['url']}")
        assert status == it["status"], path
        assert undo_encoding(headers, body) == crawled["decoded"][path], path


def test_pywb_replays_the_404_and_the_304_revisit(crawled, wayback):
    warc = crawled["warc"]
    lines = [line for idx in warc.glob("*.cdxj") for line in read_cdxj(idx)]
    (missing,) = [x for x in lines if x.url.endswith("/missing")]
    status, _, body = fetch(f"{wayback}/coll/{missing.timestamp}id_/{missing.url}")
    assert status == 404 and body == crawled["decoded"]["/missing"]
    revisits = [x for x in lines if x.url.endswith("/etag") and x.fields["mime"] == "warc/revisit"]
    assert len(revisits) == 1
    status, headers, body = fetch(f"{wayback}/coll/{revisits[0].timestamp}id_/{revisits[0].url}")
    # pywb resolves the server-not-modified revisit to the original 200 and its payload
    assert status == 200
    assert undo_encoding(headers, body) == b"etag body " * 100


def test_wacz_package_validates(crawled, tmp_path):
    # items as the spider writes them: captures with url, role, fetched_at, record ids
    out = crawled["tmp"] / "out"
    (out / "items").mkdir(exist_ok=True)
    with open(out / "items" / "warctest.jsonl", "w", encoding="utf-8") as f:
        for it in items(crawled["tmp"]):
            cap = dict(it["capture"], url=it["url"], role="page")
            f.write(
                json.dumps({"url": it["url"], "title": "标题 " + it["url"], "captures": [cap]}, ensure_ascii=False)
                + "\n"
            )
    wacz = tmp_path / "run.wacz"
    res = subprocess.run(
        [sys.executable, "-m", "scrapy", "wacz", "--run", "warctest", "--output-dir", str(out), "-o", str(wacz)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "validate passed" in res.stdout
    import zipfile

    with zipfile.ZipFile(wacz) as z:
        names = set(z.namelist())
        pages = z.read("pages/pages.jsonl").decode().splitlines()
    assert {"datapackage.json", "pages/pages.jsonl"} <= names
    assert any(n.startswith("indexes/") for n in names)
    assert len([n for n in names if n.startswith("archive/")]) == len(list(crawled["warc"].glob("*.warc.gz")))
    assert json.loads(pages[0])["format"] == "json-pages-1.0"
    urls = {json.loads(p)["url"] for p in pages[1:]}
    assert crawled["base"] + "/page" in urls


def test_warc_get_prints_the_archived_response(crawled):
    out = crawled["tmp"] / "out"
    its = items(crawled["tmp"])
    (page,) = [it for it in its if it["url"].endswith("/page")]
    res = subprocess.run(
        [sys.executable, "-m", "scrapy", "warc-get", "--output-dir", str(out), crawled["base"] + "/page"],
        capture_output=True,
    )
    assert res.returncode == 0
    head, _, body = res.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Set-Cookie: b=2" in head
    assert body == crawled["decoded"]["/page"]
    (same,) = [it for it in its if it["url"].endswith("/same") and it["capture"]["record_type"] == "revisit"]
    (out / "items").mkdir(exist_ok=True)
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "scrapy",
            "warc-get",
            "--output-dir",
            str(out),
            "--body-only",
            same["capture"]["record_id"],
        ],
        capture_output=True,
    )
    assert res.returncode == 0 and res.stdout == crawled["decoded"]["/same"]
    assert page
