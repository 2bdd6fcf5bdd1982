"""ARCHIVER_DECODE_ONCE: Scrapy's decoder takes the body the WARC capture decoded; off, Scrapy decodes every body.
Both ways the spider gets the same responses and the WARC files the same records (real crawls, loopback server)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from scrapy.settings import Settings
from warc_support import PATHS, Server, items, run_crawl
from warcio.archiveiterator import ArchiveIterator

from archiver.addon import Archiver
from archiver.tuning import decodeonce

CAPTURE = "archiver.warc.middleware.WarcCaptureMiddleware"
EXCHANGES = ("response", "revisit")
# The tuned crawl: what warc_support's crawl installs (capture and our decoder). The plain one: the capture alone,
# with every tweak of the capture off, so Scrapy's own HttpCompressionMiddleware (from its base) decodes.
PLAIN = {
    "DOWNLOADER_MIDDLEWARES": json.dumps({CAPTURE: 950}),
    "ARCHIVER_DECODE_ONCE": "False",
    "ARCHIVER_CAPTURE_YIELDS": "False",
}


def installed(settings: dict) -> dict:
    s = Settings(settings)
    Archiver().update_settings(s)
    # the add-on names components by class; by import path here
    return {
        k if isinstance(k, str) else f"{k.__module__}.{k.__qualname__}": v
        for k, v in s.getdict("DOWNLOADER_MIDDLEWARES").items()
    }


def test_the_addon_installs_the_decoder_only_when_on() -> None:
    on = installed({})
    assert on[decodeonce.DECODER] == 590 and on[decodeonce.SCRAPY_DECODER] is None
    off = installed({"ARCHIVER_DECODE_ONCE": "False"})
    assert decodeonce.DECODER not in off and decodeonce.SCRAPY_DECODER not in off  # Scrapy's base one stays


def crawl(tmp: Path, settings: dict | None) -> dict:
    with Server() as server:
        result = run_crawl(tmp, [server.base + p for p in PATHS], again=["/etag", "/same"], settings=settings)
    assert result.returncode == 0, result.stderr[-3000:]
    responses = {}
    for it in items(tmp):
        key = (it["url"].removeprefix(server.base), it["capture"]["record_type"] if it["capture"] else None)
        responses[key] = {k: it[k] for k in ("status", "body_sha1", "class", "content_encoding", "flags")}
    records = []
    for path in sorted((tmp / "out" / "warc").glob("*.warc.gz")):
        with open(path, "rb") as f:
            for rec in ArchiveIterator(f):
                uri = (rec.rec_headers.get_header("WARC-Target-URI") or "").removeprefix(server.base)
                # Other records' payloads name the server's port or the time: only the exchanges' are compared.
                digest = rec.rec_headers.get_header("WARC-Payload-Digest") if rec.rec_type in EXCHANGES else None
                records.append((rec.rec_type, uri, digest))
    stats = dict(re.findall(r"'(httpcompression/[a-z_]+)': (\d+)", result.stderr))
    return {"responses": responses, "records": records, "stats": stats}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    return {
        name: crawl(tmp_path_factory.mktemp(name), settings) for name, settings in (("tuned", None), ("plain", PLAIN))
    }


def test_both_paths_give_the_spider_the_same_responses(runs) -> None:
    tuned, plain = runs["tuned"]["responses"], runs["plain"]["responses"]
    assert len(tuned) == 10 and tuned == plain  # 404 and 304 go to the errback
    assert tuned[("/page", "response")]["class"] == "HtmlResponse"
    assert tuned[("/api/detail/article/1", "response")]["class"] == "JsonResponse"
    assert not any(r["content_encoding"] for r in tuned.values())


def test_both_paths_write_the_same_records(runs) -> None:
    tuned, plain = runs["tuned"]["records"], runs["plain"]["records"]
    assert sorted(r for r in tuned if r[0] != "warcinfo") == sorted(r for r in plain if r[0] != "warcinfo")
    assert ("revisit", "/same") in {r[:2] for r in tuned}


def test_only_the_tuned_path_takes_the_captures_bodies(runs) -> None:
    tuned, plain = runs["tuned"]["stats"], runs["plain"]["stats"]
    assert tuned["httpcompression/decoded_by_capture"] == "3"  # /page, /gzip-chunked, the API
    assert "httpcompression/decoded_by_capture" not in plain
    assert tuned["httpcompression/response_count"] == plain["httpcompression/response_count"] == "6"
