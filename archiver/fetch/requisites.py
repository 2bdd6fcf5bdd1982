"""Page requisites: the stylesheets, scripts, fonts, icons and chrome images an archived page loads.

`page_requisites` and `css_requisites` are pure parsers (parsel for HTML, tinycss2 for CSS). `RequisitesExtension`
fetches what they find for every archived page, through the downloader middlewares (so the WARC capture sees it):
on the allowed hosts only, once per URL per run, and not at all when the URL was captured within
ARCHIVER_RECHECK_AFTER (an older capture makes the fetch conditional, so unchanged files become revisits, and an
unchanged stylesheet is read back from the WARC for what it names).
Requisites are not article content: they are in the WARC and counted in the report, never in items.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin, urlsplit

import tinycss2
from parsel import Selector
from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response, TextResponse
from scrapy.utils.defer import deferred_from_coro
from w3lib.url import safe_url_string

from archiver import config
from archiver.config import parse_bool
from archiver.fetch.scope import out_of_scope
from archiver.run.schedule import DAY
from archiver.warc.dedupe import CaptureIndex, as_prior, row_value
from archiver.warc.extension import WarcWriterExtension
from archiver.warc.lookup import archived_body

logger = logging.getLogger(__name__)

ROLE = "requisite"
# <link rel> tokens whose href the page loads (or the browser shows, for icons).
LINK_RELS = frozenset({"stylesheet", "icon", "shortcut", "apple-touch-icon", "preload", "modulepreload"})
# Where the loading tags are: <link>, <script>, <base>, and the page chrome (navigation, header, footer), whose images
# are the same on every page, unlike the article's, which are fetched as the item's images. Each distinct tag or
# chrome block is read by parsel once (they repeat on every page of a site), so a page costs one scan, not a parse.
_LOADERS = re.compile(
    r"<(?:link|script|base)\b[^>]*>|<(nav|header|footer)\b.*?</\1\s*>|<(article)\b|</(article)\s*>",
    re.IGNORECASE | re.DOTALL,
)
_SNIPPETS = 4096
# An http(s) URL with a host: `urljoin` returns it whatever the page's base (`http:///x` has none, so it is joined).
_ABSOLUTE = re.compile(r"https?://[^/?#]", re.IGNORECASE)
# A tag that may load something names one of these; others (canonical and alternate links, inline scripts, meta
# tags) are passed over without being parsed.
_MAY_LOAD = re.compile(r"\bsrc\b|stylesheet|icon|preload|<base\b", re.IGNORECASE)


def _srcset_urls(srcset: str) -> Iterator[str]:
    """The URLs of a `srcset` value (each candidate is `URL [descriptor]`)."""
    for candidate in srcset.split(","):
        url = candidate.strip().split(maxsplit=1)
        if url:
            yield url[0]


@lru_cache(maxsize=_SNIPPETS)
def _absolute(base: str, url: str) -> str | None:
    """`url` made absolute against `base`, without its fragment; None unless http(s). Pages of a site name the
    same assets, mostly by absolute URL: such a URL is resolved once, whatever page names it."""
    absolute = safe_url_string(urljoin(base, url) if base else url).split("#", 1)[0]
    return absolute if urlsplit(absolute).scheme in ("http", "https") else None


def _resolved(base: str, urls: Iterable[str]) -> list[str]:
    """Absolute http(s) URLs, in order, each once."""
    out: dict[str, None] = {}
    for url in urls:
        url = url.strip()
        if not url or url.startswith(("data:", "#", "javascript:")):
            continue
        absolute = _absolute("" if _ABSOLUTE.match(url) else base, url)
        if absolute is not None:
            out.setdefault(absolute, None)
    return list(out)


@lru_cache(maxsize=_SNIPPETS)
def _tag_refs(tag: str) -> tuple[tuple[str, str], ...]:
    """(kind, URL as written) of one <link>, <script> or <base> tag: kind is `base` or `load`."""
    sel = Selector(text=tag)
    refs: list[tuple[str, str]] = [("base", v) for v in sel.xpath("//base/@href").getall()]
    for link in sel.xpath("//link[@href]"):
        if set((link.attrib.get("rel") or "").lower().split()) & LINK_RELS:
            refs.append(("load", link.attrib["href"]))
    refs += [("load", v) for v in sel.xpath("//script/@src").getall()]
    return tuple(refs)


@lru_cache(maxsize=_SNIPPETS)
def _chrome_images(block: str) -> tuple[str, ...]:
    """img src and srcset URLs of one navigation, header or footer block."""
    sel = Selector(text=block)
    urls: list[str] = []
    for img in sel.xpath("//img"):
        urls.append(img.attrib.get("src") or "")
        urls += _srcset_urls(img.attrib.get("srcset") or "")
    return tuple(urls)


def page_requisites(url: str, html: str) -> list[str]:
    """What an HTML page loads: link rel=stylesheet|icon|preload, script src, and the chrome's img src/srcset."""
    refs: list[tuple[str, str]] = []
    images: list[str] = []
    in_article = 0
    for m in _LOADERS.finditer(html):
        chrome, opened, closed = m.groups()
        if opened or closed:
            in_article += 1 if opened else -1
        elif chrome:
            if in_article <= 0:
                images += _chrome_images(m.group(0))
        elif _MAY_LOAD.search(tag := m.group(0)):
            refs += _tag_refs(tag)
    base = urljoin(url, next((v for kind, v in refs if kind == "base"), ""))
    return _resolved(base, [v for kind, v in refs if kind == "load"] + images)


def _css_urls(tokens: Iterable[Any]) -> Iterator[str]:
    """url() values among CSS component values, at any depth (inside functions and blocks too)."""
    for token in tokens:
        if token.type == "url":
            yield token.value
        elif token.type == "function" and token.lower_name == "url":
            yield from (t.value for t in token.arguments if t.type == "string")
        elif token.type == "function":
            yield from _css_urls(token.arguments)
        elif token.type in ("() block", "[] block", "{} block"):
            yield from _css_urls(token.content)


def css_requisites(url: str, css: str) -> list[str]:
    """What a stylesheet loads: its @import targets and every url() (fonts, images), resolved against it."""
    found: list[str] = []
    for rule in tinycss2.parse_stylesheet(css, skip_comments=True, skip_whitespace=True):
        if rule.type == "at-rule" and rule.lower_at_keyword == "import":
            found += [t.value for t in rule.prelude if t.type == "string"]
        if rule.type in ("at-rule", "qualified-rule"):
            found += _css_urls(rule.prelude)
            found += _css_urls(rule.content or ())
    return _resolved(url, found)


def _when(iso: str) -> datetime | None:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None


class RequisitesExtension:
    """Fetches the requisites of each archived page, and the url()s of each fetched stylesheet."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.stats = crawler.stats
        self.enabled = bool(config.get(settings, "ARCHIVER_REQUISITES"))
        self.allowed_hosts = frozenset(h.lower() for h in config.get_list(settings, "ARCHIVER_ALLOWED_HOSTS"))
        fixed = config.recheck_policy(settings).fixed  # ARCHIVER_RECHECK_AFTER when set, else a day
        self.fresh_for = DAY if fixed is None else fixed
        self.warc_dir = config.output_dir(settings) / "warc"
        self.max_size = settings.getint("DOWNLOAD_MAXSIZE") or None
        self.seen: set[str] = set()
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.response_received, signal=signals.response_received)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RequisitesExtension:
        if not config.get(crawler.settings, "ARCHIVER_WARC_ENABLED"):
            raise NotConfigured("requisites are only fetched for the WARC")
        return cls(crawler)

    def spider_opened(self, spider: Spider) -> None:
        """The spider argument `requisites` (if given) overrides ARCHIVER_REQUISITES."""
        arg = getattr(spider, "requisites", None)
        if arg not in (None, ""):
            self.enabled = parse_bool(arg)

    def response_received(self, response: Response, request: Request, spider: Spider) -> None:
        """A page (or a fetched stylesheet) arrived: fetch what it loads."""
        role = (request.meta.get("archiver") or {}).get("role")
        if not self.enabled or role not in ("page", ROLE):
            return
        if role == ROLE and response.status == 304 and urlsplit(response.url).path.endswith(".css"):
            css = self._archived_text(response.url)  # unchanged: what it names may be due all the same
            urls = css_requisites(response.url, css) if css else []
        elif response.status != 200 or not isinstance(response, TextResponse):
            return
        else:
            ctype = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
            if role == "page" and "html" in ctype:
                urls = page_requisites(response.url, response.text)
            elif role == ROLE and ctype.startswith("text/css"):
                urls = css_requisites(response.url, response.text)
            else:
                return
        for url in urls:
            self.fetch(url, response.url)

    def _archived_text(self, url: str) -> str | None:
        """The text of a URL's last full capture, read back from its WARC file (None if it cannot be read)."""
        row = self._index().last_capture(url)
        warc_file, offset = row_value(row, "warc_file"), row_value(row, "offset")
        if row is None or not warc_file or offset is None:
            return None
        try:
            return archived_body(self.warc_dir, warc_file, int(offset), self.max_size).decode("utf-8", "replace")
        except (OSError, ValueError) as exc:
            logger.warning("requisite %s: archived copy %s@%s unreadable: %s", url, warc_file, offset, exc)
            return None

    def _index(self) -> CaptureIndex:
        """The digest index of the crawl's WARC writer (its extension's)."""
        archive = self.crawler.get_extension(WarcWriterExtension)
        if archive is None:
            raise NotConfigured("requisites need archiver.warc.extension.WarcWriterExtension in EXTENSIONS")
        return archive.index

    def fetch(self, url: str, via: str) -> None:
        """Fetch one requisite unless this run has, it is off the allowed hosts, or it was captured lately."""
        if url in self.seen:
            return
        self.seen.add(url)
        parts = urlsplit(url)
        if out_of_scope(parts.scheme, parts.hostname, self.allowed_hosts):
            self.stats.inc_value("archiver/requisites/refused")
            return
        if self._captured_lately(url):
            self.stats.inc_value("archiver/requisites/fresh")
            return
        meta = {"archiver": {"role": ROLE, "via": via, "hop": 0}}
        deferred_from_coro(self._download(Request(url, meta=meta, dont_filter=True)))

    def _captured_lately(self, url: str) -> bool:
        last = as_prior(self._index().last_capture(url))  # the last full response
        when = _when(last.fetched_at) if last is not None else None
        return when is not None and (datetime.now(UTC) - when).total_seconds() < self.fresh_for

    async def _download(self, request: Request) -> None:
        engine = self.crawler.engine
        assert engine is not None
        try:
            response = await engine.download_async(request)
        except Exception as exc:  # a requisite that failed is counted and logged; the page is archived anyway
            self.stats.inc_value("archiver/requisites/failed")
            logger.warning("requisite %s (of %s) failed: %s", request.url, request.meta["archiver"]["via"], exc)
            return
        ok = response.status in (200, 304)
        self.stats.inc_value("archiver/requisites/archived" if ok else "archiver/requisites/failed")
        if not ok:
            logger.warning(
                "requisite %s (of %s): HTTP %d", request.url, request.meta["archiver"]["via"], response.status
            )
