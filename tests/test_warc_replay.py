"""Replay and packaging with the real tools: pywb (own virtualenv) replays every capture, py-wacz validates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from warc_support import PATHS, Server, fetch, items, run_crawl, running_wayback, undo_encoding

from archiver.warc.cdxj import CdxjLine, read_cdxj

REPLAYED = [p for p in PATHS if p != "/dataloss"]  # a cut-off body is archived, not replayed


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


@pytest.fixture(scope="module")
def wayback(crawled, pywb_bin, tmp_path_factory):
    with running_wayback(pywb_bin, crawled["warc"], tmp_path_factory.mktemp("pywb")) as base:
        yield base


def cdxj_lines(warc: Path) -> list[CdxjLine]:
    """Every line of the CDXJ indexes beside the crawl's WARC files."""
    return [line for idx in warc.glob("*.cdxj") for line in read_cdxj(idx)]


def ts(fetched_at: str) -> str:
    return "".join(c for c in fetched_at if c.isdigit())[:14]


def test_pywb_replays_every_capture_with_the_bytes_served(crawled, wayback):
    its = items(crawled["tmp"])
    assert {it["capture"]["record_type"] for it in its} == {"response", "revisit"}
    for it in its:
        path = it["url"].removeprefix(crawled["base"])
        status, headers, body = fetch(f"{wayback}/{ts(it['capture']['fetched_at'])}id_/{it['url']}")
        assert status == it["status"], path
        assert undo_encoding(headers, body) == crawled["decoded"][path], path


def test_pywb_replays_the_404_and_the_304_revisit(crawled, wayback):
    lines = cdxj_lines(crawled["warc"])
    (missing,) = [x for x in lines if x.url.endswith("/missing")]
    status, _, body = fetch(f"{wayback}/{missing.timestamp}id_/{missing.url}")
    assert status == 404 and body == crawled["decoded"]["/missing"]
    revisits = [x for x in lines if x.url.endswith("/etag") and x.fields["mime"] == "warc/revisit"]
    (original,) = [x for x in lines if x.url.endswith("/etag") and x.fields["mime"] != "warc/revisit"]
    assert len(revisits) == 1 and revisits[0].timestamp > original.timestamp  # replay tells them apart
    # pywb answers a 3xx revisit with its archived headers only: the server-not-modified capture replays as the 304
    status, _, body = fetch(f"{wayback}/{revisits[0].timestamp}id_/{revisits[0].url}")
    assert status == 304 and body == b""
    status, headers, body = fetch(f"{wayback}/{original.timestamp}id_/{original.url}")
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
    # the server-not-modified revisit too (the newest capture of /etag): the original's status line and payload
    etag = sorted((x for x in cdxj_lines(out / "warc") if x.url.endswith("/etag")), key=lambda x: x.timestamp)
    assert [x.fields["mime"] == "warc/revisit" for x in etag] == [False, True]
    get = [sys.executable, "-m", "scrapy", "warc-get", "--output-dir", str(out), crawled["base"] + "/etag"]
    res = subprocess.run(get, capture_output=True)
    head, _, body = res.stdout.partition(b"\r\n\r\n")
    assert res.returncode == 0 and head.startswith(b"HTTP/1.1 200") and body == b"etag body " * 100
    assert page
