"""The archive as a reader sees it: a crawl's WACZ opened in ReplayWeb.page in headless Chromium.

For several article pages: the replayed document has the page's title and text, the stand-in's stylesheet is in
effect (a computed style only it gives), and every request the replayed page made to the archived site was answered
from the archive, except the article images the crawl does not take (picture/srcset sizes and teasers of other
articles: per page, not requisites).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browser_support import CHROMIUM, CHROMIUM_ARGS, Replayed, archived_url, page_html, replay_site, replay_tools
from browser_support import serving as serving_folder
from crawl_support import DUMPS, ROOT, run_crawl, subset

from archiver.config import DW_HOSTS
from archiver.dw.dumps import iter_dumps
from archiver.standin import assets

IDS = sorted({r.entry.article_id for r in iter_dumps([DUMPS]) if r.entry and r.entry.is_dw})[40:46]
LOAD_TIMEOUT = 90


@pytest.fixture(scope="module")
def packaged(standin, tmp_path_factory) -> dict:
    """A crawl of a few articles, packaged with `scrapy wacz -o` (no run named: the latest)."""
    tmp = tmp_path_factory.mktemp("browser")
    run = run_crawl(tmp / "out", standin, subset(tmp, IDS))
    assert run.returncode == 0, run.log[-3000:]
    wacz = tmp / "crawl.wacz"
    packed = subprocess.run(
        [sys.executable, "-m", "scrapy", "wacz", "--output-dir", str(run.out), "-o", str(wacz)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert packed.returncode == 0 and "validate passed" in packed.stdout, packed.stdout + packed.stderr
    return {"wacz": wacz, "items": [i for i in run.items() if i["kind"] != "reference" and i["text"]], "tmp": tmp}


@pytest.fixture(scope="module")
def browser():
    replay_tools()  # Chromium, fonts, Playwright and ReplayWeb.page, installed by the project's own script
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def replay(browser, site: Path, base: str, url: str, screenshot: Path | None = None) -> Replayed:
    """Open `url` from the site's WACZ in ReplayWeb.page and read the replayed document."""
    (site / "index.html").write_text(page_html(url), encoding="utf-8")
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, service_workers="allow")
    requests: dict[str, int | None] = {}

    def answered(response) -> None:
        target = archived_url(response.url)
        if target:
            requests[target] = response.status

    def failed(request) -> None:
        target = archived_url(request.url)
        if target and target not in requests:
            requests[target] = None

    context.on("response", answered)
    context.on("requestfailed", failed)
    page = context.new_page()
    page.goto(base + "/index.html")
    deadline = time.monotonic() + LOAD_TIMEOUT
    frame = None
    while time.monotonic() < deadline:
        frame = next((f for f in page.frames if archived_url(f.url) and "mp_/" in f.url), None)
        try:
            if frame and frame.evaluate("document.readyState") == "complete" and frame.title():
                break
        except Exception:  # the frame navigated while being read: look again
            pass
        page.wait_for_timeout(250)  # lets Playwright take in the browser's events (frames attached)
    assert frame is not None, f"no replay frame for {url}: {[f.url for f in page.frames]}"
    settle(page, requests, deadline)
    shown = frame.evaluate(
        """() => {
            const kicker = document.querySelector('.kicker');
            return [document.title, document.body.innerText,
                    kicker && getComputedStyle(kicker).color, getComputedStyle(document.body).fontFamily];
        }"""
    )
    if screenshot is not None:
        page.screenshot(path=str(screenshot))
    context.close()
    return Replayed(shown[0], shown[1], shown[2], shown[3], requests)


def settle(page, requests: dict, deadline: float, quiet: float = 1.5) -> None:
    """Wait until the replayed page has made no new request for `quiet` seconds (fonts and images come late)."""
    seen, since = len(requests), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet:
        page.wait_for_timeout(250)
        if len(requests) != seen:
            seen, since = len(requests), time.monotonic()


def content_image(url: str) -> bool:
    """An article image (DW's /image/<id>_<format>.jpg): fetched for items, not as a requisite."""
    return urlsplit(url).path.startswith("/image/")


def test_replaywebpage_shows_each_page_styled_with_its_text_and_no_request_unanswered(packaged, browser):
    site = replay_site(replay_tools(), packaged["wacz"], packaged["tmp"] / "site")
    items = packaged["items"][:3]
    assert len(items) == 3
    with serving_folder(site) as base:
        for item in items:
            shown = replay(browser, site, base, item["url"], packaged["tmp"] / f"{item['article_id']}.png")
            assert item["title"] in shown.title, (item["url"], shown.title)
            first_line = next(line for line in item["text"].splitlines() if len(line) >= 20)
            assert first_line[:20] in shown.text
            # the stand-in's stylesheet and its font sheet applied; without them: black text, the default font
            assert shown.kicker_color == assets.KICKER_COLOR
            assert "DW Noto Sans" in shown.body_font
            www = "https://www.dw.com"
            assert shown.requests.get(www + assets.STYLESHEET) == 200
            assert shown.requests.get(www + assets.SCRIPT) == 200
            assert shown.requests.get(www + assets.FOOTER_LOGO) == 200 or shown.requests.get(
                www + assets.FOOTER_LOGO_2X
            )
            unanswered = {
                u: s for u, s in shown.unanswered.items() if urlsplit(u).hostname in DW_HOSTS and not content_image(u)
            }
            assert unanswered == {}, item["url"]


def test_the_wacz_pages_carry_the_text_for_full_text_search(packaged):
    with zipfile.ZipFile(packaged["wacz"]) as z:
        lines = z.read("pages/pages.jsonl").decode("utf-8").splitlines()
        names = z.namelist()
    pages = {p["url"]: p for p in map(json.loads, lines[1:])}
    assert not [n for n in names if n.endswith(".wet.gz")]  # text files are not indexed as captures
    for item in packaged["items"]:
        page = pages[next(c["url"] for c in item["captures"] if c["role"] == "page")]
        assert page["text"] == item["text"] and page["title"] == item["title"]
        assert page["article_id"] == item["article_id"] and page["ts"] and page["id"]
