"""Page requisites: the HTML and CSS parsers, and crawls that fetch what pages load, once, across runs too."""

from __future__ import annotations

import gzip
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from crawl_support import DUMPS, CrawlRun, run_crawl, subset
from warcio.archiveiterator import ArchiveIterator

from archiver.dw.dumps import iter_dumps
from archiver.fetch.requisites import css_requisites, page_requisites
from archiver.standin import assets
from archiver.standin.content import render_page
from archiver.standin.corpus import Corpus

WWW = "https://www.dw.com"
IDS = sorted({r.entry.article_id for r in iter_dumps([DUMPS]) if r.entry and r.entry.is_dw})
PAGE_LOADS = {
    WWW + assets.STYLESHEET,
    WWW + assets.SCRIPT,
    WWW + assets.FONTS[0],  # <link rel=preload>
    *(WWW + icon for icon in assets.ICONS),
    WWW + assets.FOOTER_LOGO,
    WWW + assets.FOOTER_LOGO_2X,  # from srcset
}
ALL_ASSETS = {f"https://{host}{path}" for host, path in assets.assets()}


def test_a_page_loads_its_stylesheet_script_preloads_icons_and_chrome_images_not_its_content():
    corpus = Corpus.from_entries(r.entry for r in iter_dumps([DUMPS]) if r.entry and r.entry.is_dw)
    article = corpus.get(IDS[0])
    found = page_requisites(article.page_url, render_page(article, corpus.get))
    assert set(found) == PAGE_LOADS and len(found) == len(PAGE_LOADS)
    # canonical, amphtml, manifest and preconnect are no loads; the article's and teasers' images are content
    assert not [u for u in found if "/image/" in u or "amp.dw.com" in u or "manifest" in u]


def test_page_parser_resolves_against_base_and_reads_srcset_outside_the_article_only():
    html = """<html><head><base href="https://www.dw.com/zh/"><link rel="Shortcut Icon" href="fav.ico">
    <link rel="alternate" href="feed.xml"><script>inline()</script><script src="//static.dw.com/a.js#x"></script>
    <link rel="stylesheet" href="data:text/css,p{}"></head><body>
    <header><img src="logo.png" srcset="logo-2x.png 2x,  logo-3x.png 3x"></header>
    <article><header><img src="author.jpg"></header><p><img src="photo.jpg"></p><footer><img src="x.jpg"></footer>
    </article><footer><img src="/f.png"></footer></body></html>"""
    assert page_requisites("https://www.dw.com/zh/page/a-1", html) == [
        "https://www.dw.com/zh/fav.ico",
        "https://static.dw.com/a.js",
        "https://www.dw.com/zh/logo.png",
        "https://www.dw.com/zh/logo-2x.png",
        "https://www.dw.com/zh/logo-3x.png",
        "https://www.dw.com/f.png",
    ]


def test_a_url_without_a_host_is_joined_to_the_page_as_urljoin_does():
    html = '<link rel="stylesheet" href="https:///s.css"><script src="HTTPS://static.dw.com/b.js#x"></script>'
    assert page_requisites("https://www.dw.com/zh/page/a-1", html) == [
        "https://www.dw.com/s.css",
        "https://static.dw.com/b.js",
    ]


def test_css_parser_finds_imports_and_every_url_absolute_and_relative():
    sheet = css_requisites(WWW + assets.STYLESHEET, assets.stylesheet())
    assert sheet == [
        WWW + assets.FONT_SHEET,  # @import "fonts-….css", relative to the sheet
        WWW + assets.LOGO,  # url(https://…) absolute
        WWW + assets.ARROW,  # url('../images/…') relative
        "https://static.dw.com" + assets.PATTERN,  # url("https://static.dw.com/…")
    ]
    assert css_requisites(WWW + assets.FONT_SHEET, assets.font_sheet()) == [WWW + f for f in assets.FONTS]
    css = """@import url(base.css) screen; @charset "utf-8"; /* url(comment.png) */
    @media (min-width: 1px) { .a { background: image-set(url( 'a b.png' ) 1x, url(c.png) 2x) } }
    @font-face { src: url(data:font/woff2;base64,AAAA) format("woff2"), url(f.woff) format("woff") }
    .b::after { content: "url(not-a-url.png)" }"""
    assert css_requisites("https://www.dw.com/static/x/s.css", css) == [
        "https://www.dw.com/static/x/base.css",
        "https://www.dw.com/static/x/a%20b.png",
        "https://www.dw.com/static/x/c.png",
        "https://www.dw.com/static/x/f.woff",
    ]


def test_the_standin_serves_them_as_a_cdn_does(standin):
    """Long Cache-Control, ETag and gzip for text, not for what is compressed already; a 304 for a known ETag."""
    base = f"http://127.0.0.1:{standin.http_port}"

    def get(path: str, **headers: str) -> tuple[int, dict, bytes]:
        request = urllib.request.Request(base + path, headers={"Host": "www.dw.com", **headers})
        try:
            with urllib.request.urlopen(request) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), b""

    status, headers, body = get(assets.STYLESHEET, **{"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip" and headers["Content-Type"] == "text/css"
    assert "max-age=31536000" in headers["Cache-Control"] and headers["ETag"]
    assert gzip.decompress(body).decode() == assets.stylesheet() and len(body) < len(assets.stylesheet()) // 3
    assert get(assets.STYLESHEET, **{"Accept-Encoding": "gzip", "If-None-Match": headers["ETag"]})[0] == 304
    status, headers, body = get(assets.FONTS[0], **{"Accept-Encoding": "gzip"})
    assert status == 200 and "Content-Encoding" not in headers and body.startswith(b"wOF2")
    assert get("/static/index-00000000.css")[0] == 404


def requisite_records(out: Path) -> list[tuple[str, str, bytes, str]]:
    """(type, URL, payload, profile) of every response/revisit record whose URL is a stand-in asset."""
    found = []
    for path in sorted((out / "warc").glob("*.warc.gz")):
        with open(path, "rb") as f:
            for rec in ArchiveIterator(f):
                url = rec.rec_headers.get_header("WARC-Target-URI")
                if rec.rec_type in ("response", "revisit") and url in ALL_ASSETS:
                    body = rec.content_stream().read() if rec.rec_type == "response" else b""
                    found.append((rec.rec_type, url, body, rec.rec_headers.get_header("WARC-Profile") or ""))
    return found


@dataclass
class Run:
    """One crawl of the series, with its report and items as they were right after it."""

    crawl: CrawlRun
    report: dict
    items: list[dict]


@pytest.fixture(scope="module")
def runs(standin, tmp_path_factory) -> dict[str, Run]:
    tmp = tmp_path_factory.mktemp("requisites")
    out = tmp / "out"
    done = {}

    def crawl(name: str, out: Path, ids: list[int], **kwargs: dict) -> None:
        run = run_crawl(out, standin, subset(tmp, ids), **kwargs)
        assert run.returncode == 0, run.log[-3000:]
        done[name] = Run(run, run.report(), run.items())

    crawl("one", out, IDS[:8])
    crawl("two", out, IDS[8:12])  # new pages; their requisites were captured lately
    crawl("three", out, IDS[12:16], settings={"ARCHIVER_RECHECK_AFTER": "0"})
    crawl("off", tmp / "off", IDS[16:18], args={"requisites": "0"})
    return done


def test_a_crawl_archives_each_requisite_once_as_served_and_not_in_items(runs):
    one = runs["one"]
    assert one.report["requisites"] == {"archived": len(ALL_ASSETS), "failed": 0, "fresh": 0, "refused": 0}
    records = [r for r in requisite_records(one.crawl.out) if r[0] == "response"]
    assert Counter(url for _, url, _, _ in records) == Counter(ALL_ASSETS)  # once per URL for 8 pages
    served = {f"https://{host}{path}": a.body for (host, path), a in assets.assets().items()}
    for _, url, body, _ in records:
        decoded = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
        assert decoded == served[url], url
    captured = {c["url"] for i in one.items for c in i["captures"]}
    assert len(one.items) >= 8 and not captured & ALL_ASSETS
    assert "requisites: 13 archived, 0 failed, 0 fresh, 0 refused" in one.crawl.log


def test_later_runs_skip_what_is_fresh_and_revisit_what_is_not(runs):
    two, three = runs["two"], runs["three"]
    # captured within ARCHIVER_RECHECK_AFTER: not fetched at all (CSS-named files are not even reached)
    assert two.report["requisites"] == {"archived": 0, "failed": 0, "fresh": len(PAGE_LOADS), "refused": 0}
    assert two.items
    # older than that: fetched with the validators of the last capture, answered 304, written as revisits; an
    # unchanged stylesheet is read back from the WARC, so what it names is checked too
    assert three.report["requisites"]["archived"] == len(ALL_ASSETS)
    revisits = [r for r in requisite_records(three.crawl.out) if r[0] == "revisit"]
    assert Counter(url for _, url, _, _ in revisits) == Counter(ALL_ASSETS)
    assert all(profile.endswith("server-not-modified") for _, _, _, profile in revisits)


def test_the_spider_argument_turns_them_off(runs):
    off = runs["off"]
    assert off.items
    assert off.report["requisites"] == {"archived": 0, "failed": 0, "fresh": 0, "refused": 0}
    assert requisite_records(off.crawl.out) == []
