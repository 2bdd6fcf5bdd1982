"""`-s ARCHIVER_STANDIN=1`: the extension starts the stand-in on the crawl's reactor and routes DW to it."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from scrapy.exceptions import NotConfigured
from scrapy.utils.test import get_crawler

from archiver.standin.extension import StandinExtension
from archiver.standin.server import TMP_PREFIX, sweep_stale_tmpdirs

DUMPS = Path(__file__).parent / "data" / "feed-dumps"
SAMPLE_ID = 71613509
EXTENSION = json.dumps({"archiver.standin.extension.StandinExtension": 100})
IN_PROCESS = {
    "ARCHIVER_STANDIN": "1",
    "TWISTED_DNS_RESOLVER": "archiver.standin.routing.StandinResolver",
    "EXTENSIONS": EXTENSION,
}
REQUESTS = [
    {"name": "page", "url": f"https://www.dw.com/zh/a-{SAMPLE_ID}"},
    {"name": "api", "url": f"https://api.dw.com/api/detail/article/{SAMPLE_ID}"},
    {"name": "image", "url": "https://static.dw.com/image/71588384_303.jpg"},
    {"name": "robots", "url": "http://www.dw.com/robots.txt"},
]


def test_off_by_default() -> None:
    with pytest.raises(NotConfigured):
        StandinExtension.from_crawler(get_crawler(settings_dict={}))


def test_dumps_from_the_spider(scrapy_probe) -> None:
    out = scrapy_probe(REQUESTS, IN_PROCESS, args={"dumps": str(DUMPS)})
    assert out["page"]["status"] == 200 and out["page"]["url"].endswith(f"/a-{SAMPLE_ID}")
    assert out["page"]["redirect_urls"] == [f"https://www.dw.com/zh/a-{SAMPLE_ID}"]
    assert out["api"]["status"] == 200 and out["api"]["url"] == REQUESTS[1]["url"]
    assert out["image"]["magic"].startswith("ffd8ff")
    assert out["robots"]["status"] == 200
    assert "DW stand-in serving 396 articles" in out["_log"]
    assert "ERROR" not in out["_log"]  # started, routed and stopped cleanly


def test_dumps_and_faults_from_settings(scrapy_probe) -> None:
    settings = {
        **IN_PROCESS,
        "ARCHIVER_STANDIN_DUMPS": str(DUMPS),
        "ARCHIVER_STANDIN_FAULTS": f"{SAMPLE_ID}@api:410",
    }
    requests = [REQUESTS[0], {**REQUESTS[1], "meta": {"handle_httpstatus_all": True}}]
    out = scrapy_probe(requests, settings)
    assert out["page"]["status"] == 200
    assert out["api"]["status"] == 410


def test_without_the_resolver_it_says_so(scrapy_probe) -> None:
    settings = {**IN_PROCESS, "TWISTED_DNS_RESOLVER": "scrapy.resolver.CachingThreadedResolver"}
    out = scrapy_probe([], settings, args={"dumps": str(DUMPS)})  # no request: nothing may leave the machine
    assert "DW stand-in started but not routed" in out["_log"]


def test_ca_folders_of_dead_stand_ins_are_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = tmp_path / f"{TMP_PREFIX}{gone.pid}-abc"
    live = tmp_path / f"{TMP_PREFIX}{os.getpid()}-def"
    for folder in (dead, live):
        folder.mkdir()
        (folder / "ca.pem").write_text("x")
    assert sweep_stale_tmpdirs() == [dead]
    assert not dead.exists() and live.exists()
