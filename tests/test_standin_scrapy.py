"""The stand-in fetched through Scrapy itself (`scrapy runspider` routed by StandinResolver), URLs unchanged."""

from __future__ import annotations

import base64
import http.client
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from dw_facts import API_KEYS
from w3lib.url import safe_url_string

from archiver.dw.dumps import iter_dumps
from archiver.standin.corpus import Corpus
from archiver.standin.faults import FaultPlan
from archiver.standin.server import Reply, Responder

DUMPS = Path(__file__).parent / "data" / "feed-dumps"
SAMPLE_ID = 71613509
NO_REDIRECT = {"dont_redirect": True, "handle_httpstatus_all": True}


@pytest.fixture(scope="module")
def entries() -> dict:
    return {r.entry.article_id: r.entry for r in iter_dumps([DUMPS]) if r.entry and r.entry.is_dw}


@pytest.fixture(scope="module")
def core(standin, scrapy_probe, entries) -> dict:
    """One Scrapy run over the main shapes."""
    page_url = entries[SAMPLE_ID].page_url
    requests = [
        {"name": "page", "url": page_url, "keep_body": True},
        {"name": "api", "url": f"https://api.dw.com/api/detail/article/{SAMPLE_ID}", "keep_body": True},
        {"name": "api_ref", "url": "https://api.dw.com/api/detail/article/71590287", "keep_body": True},
        {"name": "api_unknown", "url": "https://api.dw.com/api/detail/article/12345", "meta": NO_REDIRECT},
        {"name": "image", "url": "https://static.dw.com/image/71588384_303.jpg", "keep_body": True},
        {"name": "api_image", "url": "https://api.dw.com/image/41850343_303.jpg", "keep_body": True},
        {"name": f"robots_{0}", "url": "https://www.dw.com/robots.txt", "keep_body": True},
        {"name": "robots_api", "url": "https://api.dw.com/robots.txt", "keep_body": True},
        {"name": "robots_static", "url": "https://static.dw.com/robots.txt", "keep_body": True},
        {"name": "robots_http", "url": "http://www.dw.com/robots.txt", "keep_body": True},
        {"name": "wrong_slug", "url": f"https://www.dw.com/zh/wrong/a-{SAMPLE_ID}", "meta": NO_REDIRECT},
        {"name": "no_slug_followed", "url": f"https://www.dw.com/zh/a-{SAMPLE_ID}"},
        {"name": "hant", "url": page_url.replace("/zh/", "/zh-hant/")},
        {"name": "other_path", "url": "https://www.dw.com/zh/在线报导/s-9058", "meta": NO_REDIRECT},
        {"name": "identity", "url": page_url, "headers": {"Accept-Encoding": "identity"}},
    ]
    return scrapy_probe(requests, standin.scrapy_settings())


def test_page_is_served_at_the_original_url(core, entries) -> None:
    page = core["page"]
    assert page["status"] == 200
    assert page["url"] == entries[SAMPLE_ID].page_url  # no rewriting, no redirect
    assert page["ip"] == "127.0.0.1" and page["protocol"] == "HTTP/1.1"
    html = base64.b64decode(page["body_b64"]).decode("utf-8")
    assert f'<h1 class="sc-iJfdHH sc-ilpitK cmgBOB has-italic">{entries[SAMPLE_ID].title}</h1>' in html
    assert 190_000 <= len(html.encode()) <= 330_000
    assert page["headers"]["content-type"] == ["text/html; charset=utf-8"]
    assert len(page["headers"]["set-cookie"]) == 3
    assert page["headers"]["etag"] and page["headers"]["last-modified"] and page["headers"]["date"]


def test_gzip_when_accepted_identity_otherwise(core) -> None:
    wire = core["page"]["wire"][-1]
    assert wire["content_encoding"] == "gzip" and wire["raw_magic"].startswith("1f8b")
    assert core["page"]["magic"] == "3c21646f"  # `<!do` after Scrapy decoded it
    plain = core["identity"]["wire"][-1]
    assert plain["content_encoding"] == "" and plain["raw_magic"] == "3c21646f"
    assert plain["body_length"] == core["identity"]["length"]  # Content-Length, not chunked
    assert core["identity"]["sha1"] == core["page"]["sha1"]


def test_api_json_is_chunked_jackson_with_dw_key_order(core) -> None:
    api = core["api"]
    assert api["status"] == 200 and api["url"] == f"https://api.dw.com/api/detail/article/{SAMPLE_ID}"
    assert api["wire"][-1]["body_length"] == -1  # no Content-Length: chunked transfer
    text = base64.b64decode(api["body_b64"]).decode("utf-8")
    assert text.startswith('{\n  "type" : "Article",\n  "id" : 71613509,\n  "languageId" : 4,')
    assert list(json.loads(text)) == API_KEYS
    assert '"sizes" : [ {' in text and "\\u" not in text
    ref = json.loads(base64.b64decode(core["api_ref"]["body_b64"]))
    assert ref["id"] == 71590287 and list(ref) == API_KEYS
    assert core["api_unknown"]["status"] == 404


def test_images_are_jpeg(core) -> None:
    for name in ("image", "api_image"):
        image = core[name]
        assert image["status"] == 200 and image["headers"]["content-type"] == ["image/jpeg"]
        assert base64.b64decode(image["body_b64"])[:3] == b"\xff\xd8\xff"
        assert image["wire"][-1]["content_encoding"] == ""
    assert core["api_image"]["url"] == "https://api.dw.com/image/41850343_303.jpg"


def test_robots_on_every_host(core) -> None:
    for name in ("robots_0", "robots_api", "robots_static", "robots_http"):
        assert core[name]["status"] == 200
        assert base64.b64decode(core[name]["body_b64"]).startswith(b"User-agent: *\n")
    assert core["robots_http"]["url"] == "http://www.dw.com/robots.txt"


def test_wrong_or_missing_slug_redirects_to_canonical(core, entries) -> None:
    assert core["wrong_slug"]["status"] == 301
    assert core["wrong_slug"]["headers"]["location"] == [entries[SAMPLE_ID].page_url]
    followed = core["no_slug_followed"]
    assert followed["status"] == 200 and followed["url"] == entries[SAMPLE_ID].page_url
    assert followed["redirect_urls"] == [f"https://www.dw.com/zh/a-{SAMPLE_ID}"]
    assert core["hant"]["status"] == 200
    assert core["other_path"]["status"] == 404


def test_conditional_requests_get_304(standin, scrapy_probe, core, entries) -> None:
    page_url = entries[SAMPLE_ID].page_url
    api_url = f"https://api.dw.com/api/detail/article/{SAMPLE_ID}"
    requests = [
        {"name": "inm", "url": page_url, "headers": {"If-None-Match": core["page"]["headers"]["etag"][0]}},
        {"name": "inm_api", "url": api_url, "headers": {"If-None-Match": core["api"]["headers"]["etag"][0]}},
        {"name": "ims", "url": page_url, "headers": {"If-Modified-Since": core["page"]["headers"]["last-modified"][0]}},
        {"name": "stale", "url": page_url, "headers": {"If-None-Match": '"0000"'}},
    ]
    for r in requests:
        r["meta"] = NO_REDIRECT
    out = scrapy_probe(requests, standin.scrapy_settings())
    for name in ("inm", "inm_api", "ims"):
        assert out[name]["status"] == 304, name
        assert out[name]["length"] == 0 and out[name]["url"] in (page_url, api_url)
    assert out["inm"]["headers"]["etag"] == core["page"]["headers"]["etag"]
    assert out["stale"]["status"] == 200


def test_certificate_verification_passes_with_the_standin_ca(standin, scrapy_probe, entries) -> None:
    requests = [{"name": "page", "url": entries[SAMPLE_ID].page_url}, {"name": "api", "url": standin_api(SAMPLE_ID)}]
    settings = {**standin.scrapy_settings(), "DOWNLOAD_VERIFY_CERTIFICATES": "True"}
    trusted = scrapy_probe(requests, settings, env=standin.verify_env())
    assert trusted["page"]["status"] == 200 and trusted["api"]["status"] == 200
    # The same run without the CA fails: verification really was on.
    untrusted = scrapy_probe(requests[:1], settings, env={"SSL_CERT_FILE": str(DUMPS / "SOURCE.md")})
    assert untrusted["page"]["error"] == "DownloadFailedError", untrusted["page"]
    assert "certificate verify failed" in untrusted["page"]["message"]


def standin_api(article_id: int) -> str:
    return f"https://api.dw.com/api/detail/article/{article_id}"


def test_other_hosts_get_421(standin) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", standin.http_port, timeout=10)
    conn.request("GET", "/robots.txt", headers={"Host": "www.example.org"})
    response = conn.getresponse()
    assert response.status == 421 and response.read() == b"Misdirected Request\n"
    conn.close()


def test_every_dump_url_is_served_without_redirect_except_retitled_duplicates(entries) -> None:
    """The page_url of each dump, as Scrapy sends it, answers 200; re-titled duplicates 301 to the first title."""
    ordered = [r.entry for r in iter_dumps([DUMPS]) if r.entry and r.entry.is_dw]
    responder = Responder(Corpus.from_entries(ordered), FaultPlan(), reactor=None)
    first_url: dict[int, str] = {}
    for entry in ordered:
        parts = urlsplit(safe_url_string(entry.page_url))
        routed = responder.route("www.dw.com", parts.path, parts.path + (f"?{parts.query}" if parts.query else ""))
        first = first_url.setdefault(entry.article_id, entry.page_url)
        if first == entry.page_url:
            assert not isinstance(routed, Reply), entry.path
        else:
            assert isinstance(routed, Reply) and routed.status == 301
            assert dict(routed.headers)["Location"] == first


def test_other_names_resolve_as_usual_and_get_421(standin, scrapy_probe) -> None:
    """With private addresses allowed, `localhost` reaches the stand-in's port, which refuses the host."""
    url = f"http://localhost:{standin.http_port}/robots.txt"
    settings = standin.scrapy_settings() | {"ARCHIVER_ALLOW_PRIVATE_ADDRESSES": "1"}
    out = scrapy_probe([{"name": "local", "url": url, "meta": NO_REDIRECT}], settings)
    assert out["local"]["status"] == 421 and out["local"]["url"] == url


def test_names_that_resolve_to_private_addresses_are_refused_by_default(standin, scrapy_probe) -> None:
    """Only the stand-in's own routes may lead to loopback: `localhost` resolves to nothing."""
    url = f"http://localhost:{standin.http_port}/robots.txt"
    out = scrapy_probe([{"name": "local", "url": url, "meta": NO_REDIRECT}], standin.scrapy_settings())
    assert out["local"]["error"] == "CannotResolveHostError", out["local"]
    assert "no results for hostname lookup: localhost" in out["local"]["message"]
    assert out["local"]["status"] is None


def test_standalone_prints_where_it_listens_and_stops_on_sigterm(standin_factory) -> None:
    running = standin_factory(extra=["--seed", "1"])
    assert set(running.info) >= {"https", "http", "ca_cert", "address"}
    assert running.info["https"] == f"127.0.0.1:{running.https_port}"
    assert running.address == f"127.0.0.1:{running.https_port},{running.http_port}"
    assert Path(running.ca_cert).read_text().startswith("-----BEGIN CERTIFICATE-----")
    running.process.terminate()
    assert running.process.wait(timeout=30) == 0
    assert not Path(running.ca_cert).exists()  # its temporary CA is cleaned up on shutdown
