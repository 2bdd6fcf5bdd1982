"""Every fault mode of the stand-in, as Scrapy meets it (one stand-in, one crawl, one id per fault)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from archiver.standin.corpus import Corpus

DUMPS = Path(__file__).parent / "data" / "feed-dumps"
NO_REDIRECT = {"dont_redirect": True, "handle_httpstatus_all": True}
STATUS_ONLY = {"handle_httpstatus_all": True}

# fault -> role it is put on; each gets its own article id.
FAULTS = {
    "404": "page",
    "410": "page",
    "500": "api",
    "503": "api",
    "429": "page",
    "slow": "api",
    "reset": "page",
    "truncated": "api",
    "oversized": "page",
    "gzip_bomb": "page",
    "invalid_json": "api",
    "wrong_charset": "page",
    "redirect_loop": "page",
    "redirect_offsite": "api",
    "changes": "api",
}


@pytest.fixture(scope="module")
def ids() -> dict[str, int]:
    dump_ids = Corpus.from_paths([DUMPS]).dump_ids()
    names = [*FAULTS, "role_only", "transient"]
    return dict(zip(names, dump_ids[10 : 10 + len(names)], strict=True))


@pytest.fixture(scope="module")
def urls(ids) -> dict[str, str]:
    corpus = Corpus.from_paths([DUMPS])
    out = {}
    for name, article_id in ids.items():
        out[f"{name}:page"] = corpus.get(article_id).page_url
        out[f"{name}:api"] = f"https://api.dw.com/api/detail/article/{article_id}"
    return out


@pytest.fixture(scope="module")
def faulted(ids, urls, scrapy_probe):
    """A stand-in with every fault, and one Scrapy run that meets each."""
    from conftest import start_standin

    spec = ",".join(f"{ids[f]}@{role}:{f}" for f, role in FAULTS.items())
    spec += f",{ids['role_only']}@page:404,{ids['transient']}@api:503x1"
    running = start_standin(None, spec, "--slow-seconds", "6", "--oversize-bytes", str(3_000_000), "--retry-after", "7")
    try:
        requests = []
        for fault, role in FAULTS.items():
            meta = {"redirect_offsite": NO_REDIRECT, "redirect_loop": {}}.get(fault, STATUS_ONLY)
            keep = fault in ("invalid_json", "wrong_charset", "changes")
            requests.append({"name": fault, "url": urls[f"{fault}:{role}"], "meta": meta, "keep_body": keep})
        requests += [
            {"name": "changes_again", "url": urls["changes:api"], "meta": STATUS_ONLY, "keep_body": True},
            {"name": "role_only_page", "url": urls["role_only:page"], "meta": STATUS_ONLY},
            {"name": "role_only_api", "url": urls["role_only:api"], "meta": STATUS_ONLY},
            {"name": "transient_1", "url": urls["transient:api"], "meta": STATUS_ONLY},
            {"name": "transient_2", "url": urls["transient:api"], "meta": STATUS_ONLY},
            {"name": "unfaulted_page", "url": urls["reset:api"], "meta": STATUS_ONLY},
        ]
        settings = {
            **running.scrapy_settings(),
            "DOWNLOAD_TIMEOUT": "3",
            "DOWNLOAD_MAXSIZE": str(2_000_000),
            "REDIRECT_MAX_TIMES": "5",
        }
        yield scrapy_probe(requests, settings)
    finally:
        running.stop()


@pytest.mark.parametrize("fault", ["404", "410", "500"])
def test_error_statuses(faulted, urls, fault) -> None:
    assert faulted[fault]["status"] == int(fault)
    assert faulted[fault]["url"] == urls[f"{fault}:{FAULTS[fault]}"]


@pytest.mark.parametrize("fault", ["503", "429"])
def test_unavailable_and_rate_limited_carry_retry_after(faulted, fault) -> None:
    assert faulted[fault]["status"] == int(fault)
    assert faulted[fault]["headers"]["retry-after"] == ["7"]


def test_slow_exceeds_download_timeout(faulted) -> None:
    assert faulted["slow"]["error"] == "DownloadTimeoutError"


def test_reset_mid_body_loses_the_response(faulted, urls) -> None:
    assert faulted["reset"]["error"] == "ResponseDataLossError", faulted["reset"]
    assert faulted["reset"]["url"] == urls["reset:page"]
    assert faulted["unfaulted_page"]["status"] == 200  # the api of the same id is fine


def test_truncated_body_is_data_loss(faulted) -> None:
    assert faulted["truncated"]["error"] == "ResponseDataLossError", faulted["truncated"]


def test_oversized_body_is_cancelled_by_maxsize(faulted) -> None:
    assert faulted["oversized"]["error"] in ("CancelledError", "DownloadCancelledError"), faulted["oversized"]
    assert "larger than download max size" in faulted["_log"]


def test_gzip_bomb_is_refused_by_scrapys_decompression_limit(faulted) -> None:
    assert faulted["gzip_bomb"]["error"] == "IgnoreRequest", faulted["gzip_bomb"]
    assert "exceeded DOWNLOAD_MAXSIZE (2000000 B) during decompression" in faulted["_log"]


def test_invalid_json(faulted) -> None:
    assert faulted["invalid_json"]["status"] == 200
    body = base64.b64decode(faulted["invalid_json"]["body_b64"])
    assert body.startswith(b'{\n  "type" : "Article"')
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)


def test_wrong_charset(faulted) -> None:
    page = faulted["wrong_charset"]
    assert page["status"] == 200 and page["headers"]["content-type"] == ["text/html; charset=utf-8"]
    body = base64.b64decode(page["body_b64"])
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    assert "德国之声" in body.decode("gb18030")


def test_redirect_loop_ends_in_max_redirections(faulted, urls) -> None:
    assert faulted["redirect_loop"]["error"] == "IgnoreRequest"
    assert faulted["redirect_loop"]["url"].split("?")[0] == urls["redirect_loop:page"]
    assert faulted["redirect_loop"]["message"] == "max redirections reached"


def test_redirect_offsite_points_off_dw(faulted) -> None:
    assert faulted["redirect_offsite"]["status"] == 302
    (location,) = faulted["redirect_offsite"]["headers"]["location"]
    assert location.startswith("https://www.example.com/")


def test_changes_differ_on_each_visit(faulted) -> None:
    one, two = faulted["changes"], faulted["changes_again"]
    assert one["status"] == two["status"] == 200
    assert one["sha1"] != two["sha1"] and one["headers"]["etag"] != two["headers"]["etag"]
    texts = sorted(json.loads(base64.b64decode(r["body_b64"]))["text"][-12:] for r in (one, two))
    assert "更新 1" in texts[0] and "更新 2" in texts[1]


def test_faults_target_a_role_and_can_be_transient(faulted) -> None:
    assert faulted["role_only_page"]["status"] == 404
    assert faulted["role_only_api"]["status"] == 200
    assert sorted((faulted["transient_1"]["status"], faulted["transient_2"]["status"])) == [200, 503]


def test_scheduled_faults_by_rate_and_seed(standin_factory, scrapy_probe, urls) -> None:
    api_urls = [u for k, u in urls.items() if k.endswith(":api")]
    running = standin_factory(extra=["--fault-rate", "0.5", "--fault-pool", "404,410", "--seed", "3"])
    out = scrapy_probe([{"name": u, "url": u, "meta": STATUS_ONLY} for u in api_urls], running.scrapy_settings())
    statuses = [out[u]["status"] for u in api_urls]
    assert set(statuses) == {200, 404, 410}
    again = standin_factory(extra=["--fault-rate", "0.5", "--fault-pool", "404,410", "--seed", "3"])
    out2 = scrapy_probe([{"name": u, "url": u, "meta": STATUS_ONLY} for u in api_urls], again.scrapy_settings())
    assert [out2[u]["status"] for u in api_urls] == statuses
