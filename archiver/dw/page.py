"""Main text and metadata of a www.dw.com article page: trafilatura on the article container, JSON-LD for metadata.

Pure: bytes or str in, `PageText` out. Both DW layouts are handled: 2023+ (`header h1`, `p.teaser-text`,
`div.rich-text`, JSON-LD NewsArticle) and the old one (`h1`, `p.intro`, `div.longText`, `ul.smallList`).
The text keeps the lead, the subheadings and the body paragraphs in order, one block per line, and nothing else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from configparser import ConfigParser
from copy import deepcopy
from dataclasses import dataclass, field
from functools import cache
from urllib.parse import urlsplit

import trafilatura
from lxml import etree, html
from lxml.cssselect import CSSSelector
from trafilatura.settings import DEFAULT_CONFIG, Extractor
from trafilatura.utils import load_html

from archiver.dw.script import chinese_script
from archiver.errors import ArchiverError
from archiver.timefmt import normalize_iso

__all__ = [
    "DW_OPTIONS",
    "DwExtraction",
    "ExtractError",
    "Layout",
    "PageText",
    "extract_page",
]


class ExtractError(ArchiverError, ValueError):
    """The document is not an HTML page that anything can be extracted from; `url` names it."""

    @property
    def url(self) -> str:
        return self.subject


@dataclass(slots=True)
class PageText:
    """What an article page says: `text` is lead + subheadings + body paragraphs, one block per line."""

    url: str
    title: str | None = None
    teaser: str | None = None
    text: str = ""
    body: str = ""  # `text` without the lead
    subheadings: list[str] = field(default_factory=list)
    authors: list[str] = field(default_factory=list)
    published: str | None = None  # ISO 8601 UTC, `Z`
    modified: str | None = None
    language: str | None = None  # Chinese pages: zh-Hans / zh-Hant by the script of the text; else None
    page_language: str | None = None  # `<html lang>` or the URL's language segment, as the page says
    category: str | None = None
    canonical_url: str | None = None
    layout: str = "unknown"  # 2023 | old | unknown (whole page through trafilatura)
    agreement: float | None = None  # with the feed body, when the extraction was asked to compare (textmatch)


@dataclass(frozen=True, slots=True)
class Layout:
    """Where one DW page layout keeps its parts (CSS selectors)."""

    name: str
    body: str
    lead: str
    title: str
    category: str


@dataclass(frozen=True, slots=True)
class DwExtraction:
    """Every choice of the DW extraction in one place (CSS selectors, text rules, trafilatura options)."""

    layouts: tuple[Layout, ...] = (
        Layout("2023", "div.rich-text", "header p.teaser-text, p.teaser-text", "header h1", "header .kicker span"),
        Layout("old", "div.longText", "p.intro", "h1", "h4.artikel"),
    )
    # removed from the body container before trafilatura sees it
    drop: str = (
        "script, style, noscript, template, iframe, video, audio, svg, form, button, input, nav, aside, footer, "
        "figure, figcaption, .vjs-wrapper, .embed, .rich-text-ad, .advertisement, .picBox, .gallery, .col3, "
        ".longText .longText, .in-line, .copy-button-wrapper, .share, .social, .smallList, .overlayLink"
    )
    # removed from the whole page when no known container is found
    drop_page: str = (
        "header .kicker, .author-details, .time-area, section.in-line, .copy-button-wrapper, .advertisement, "
        "footer, nav, aside, figure, .vjs-wrapper, .smallList, .relatedContent, .picBox, .gallery, "
        "[class*=cookie], [id*=cookie], [class*=consent], [class*=newsletter], [class*=teaser]:not(.teaser-text)"
    )
    # a paragraph starting with such a label and holding a link ("Read more: <a>") is an inline related teaser
    related_label: str = (
        r"^\s*(?:(?:延伸|延申|更多|相关|相關|推荐|推薦)(?:阅读|閱讀)|read more|mehr zum thema|lesen sie (?:auch|mehr)"
        r"|(?:à )?lire aussi)\s*[:：]?"
    )
    copyright: str = r"^\s*(?:©|\(c\)\s*\d{4}|版权所有|版權所有)|德国之声版权声明|德國之聲版權聲明"
    # promos: Instagram, the classical-music podcast with its feed links, and bare URLs
    promo: str = (
        r"DW中文有\s*Instagram|(?:欢迎搜寻|歡迎搜尋)\s*dw\.chinese|^\s*(?:欢迎|歡迎)(?:订阅|訂閱)德(?:国|國)之(?:声|聲)"
        r"|^\s*(?:Feed-URL|iTunes)\s*[:：]?\s*$|^\s*https?://\S+\s*$"
    )
    # a heading that introduces related content (an embedded picture gallery, more on the topic)
    related_heading: str = r"^\s*(?:相关图集|相關圖集|相关内容|相關內容|更多相关内容|mehr zum thema|related content)"
    lead_fallback: str = "p.teaser-text, p.intro"
    caption_credit: str = "small.copyright, .copyright"  # "Bild: …" inside a figcaption
    subheading_max_chars: int = 150  # a bold-only paragraph up to this length is a subheading (old layout, feeds)
    # trafilatura on the restricted tree: no fallback algorithms (the container is already the article)
    fast: bool = True
    favor_precision: bool = False
    favor_recall: bool = False
    include_tables: bool = True
    # whole-page fallback
    fallback_favor_precision: bool = True

    def extractor(self, *, whole_page: bool = False) -> Extractor:
        """The trafilatura options object for the body (or for the whole-page fallback)."""
        return _extractor(self, whole_page)


@cache
def _extractor(options: DwExtraction, whole_page: bool) -> Extractor:
    """trafilatura's options object, built once per `DwExtraction`."""
    return Extractor(
        config=_trafilatura_config(),
        output_format="python",
        fast=options.fast and not whole_page,
        precision=options.fallback_favor_precision if whole_page else options.favor_precision,
        recall=False if whole_page else options.favor_recall,
        comments=False,
        formatting=False,
        links=False,
        images=False,
        tables=options.include_tables,
        dedup=False,
    )


DW_OPTIONS = DwExtraction()


@cache
def _trafilatura_config() -> ConfigParser:
    """trafilatura's defaults, minus the size floors that would send short articles to the fallbacks."""
    config = ConfigParser()
    config.read_dict({s: dict(DEFAULT_CONFIG[s]) for s in DEFAULT_CONFIG})
    config["DEFAULT"]["MIN_EXTRACTED_SIZE"] = "1"
    config["DEFAULT"]["MIN_OUTPUT_SIZE"] = "1"
    config["DEFAULT"]["EXTRACTION_TIMEOUT"] = "0"
    return config


@cache
def _css(selector: str) -> CSSSelector:
    return CSSSelector(selector)


_WS = re.compile(r"\s+")
_SENTENCE_END = ("。", ".", ":", "：", ";", "；", ",", "，")


def _clean(text: str | None) -> str:
    """Collapse whitespace (NBSP and zero-width characters too) and strip."""
    if not text:
        return ""
    return _WS.sub(" ", text.replace("\u200b", "").replace("\ufeff", "")).strip()


def _first(tree: html.HtmlElement, selector: str) -> html.HtmlElement | None:
    found = _css(selector)(tree)
    return found[0] if found else None


def _text_of(tree: html.HtmlElement, selector: str) -> str | None:
    element = _first(tree, selector)
    return (_clean(element.text_content()) or None) if element is not None else None


def _json_ld(tree: html.HtmlElement) -> dict:
    """The first NewsArticle-like object of the page's JSON-LD blocks ({} if none)."""
    for script in _css('script[type="application/ld+json"]')(tree):
        try:
            data = json.loads(script.text or "", strict=False)
        except ValueError:
            continue
        for obj in _ld_objects(data):
            kind = obj.get("@type")
            kinds = kind if isinstance(kind, list) else [kind]
            if any(isinstance(k, str) and k.endswith("Article") for k in kinds):
                return obj
    return {}


def _ld_objects(data: object) -> Iterator[dict]:
    if isinstance(data, list):
        for entry in data:
            yield from _ld_objects(entry)
    elif isinstance(data, dict):
        yield data
        if isinstance(data.get("@graph"), list):
            yield from _ld_objects(data["@graph"])


def _ld_authors(value: object) -> list[str]:
    entries = value if isinstance(value, list) else [value]
    names: list[str] = []
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else entry
        name = _clean(name) if isinstance(name, str) else ""
        if name and name not in names:
            names.append(name)
    return names


def _small_list(tree: html.HtmlElement) -> dict[str, str]:
    """Old layout: the `ul.smallList` fields by label (`Datum`, `Autorin/Autor`, `Date`, `Author`, …)."""
    fields: dict[str, str] = {}
    for item in _css("ul.smallList > li")(tree):
        label = item.find("strong")
        if label is None:
            continue
        key = _clean(label.text_content()).lower()
        value = _clean(item.text_content())[len(_clean(label.text_content())) :].strip(" :：")
        fields.setdefault(key, value)
    return fields


def _languages(tree: html.HtmlElement, url: str) -> tuple[str | None, str | None]:
    """(zh-Hans / zh-Hant or None, the page's own language code) from the URL path and `<html lang>`."""
    segment = urlsplit(url).path.strip("/").split("/", 1)[0].lower()
    declared = (tree.get("lang") or "").strip().lower().replace("_", "-")
    for code in (segment, declared):
        if code in ("zh-hant", "zh-tw", "zh-hk"):
            return "zh-Hant", code
        if code in ("zh", "zh-hans", "zh-cn"):
            return "zh-Hans", code
    code = declared if re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]+)*", declared) else None
    return None, code


def _is_related_teaser(p: html.HtmlElement, text: str, options: DwExtraction) -> bool:
    """`<p><em>Read more</em>: <a>…</a></p>`, or a paragraph that is one link and nothing else (promo)."""
    links = p.findall(".//a")
    if not links:
        return False
    link_text = _clean(" ".join(a.text_content() for a in links))
    return link_text == text or re.match(options.related_label, text, re.IGNORECASE) is not None


def _is_bold_heading(p: html.HtmlElement, options: DwExtraction) -> bool:
    text = _clean(p.text_content())
    if not text or len(text) > options.subheading_max_chars or text.endswith(_SENTENCE_END):
        return False
    bold = _clean(" ".join(b.text_content() for b in p.iter("strong", "b")))
    return bold == text


def _prepare_body(container: html.HtmlElement, options: DwExtraction) -> html.HtmlElement:
    """A new `<html><body><article>` holding the cleaned container: boilerplate gone, bold lines as `h2`.

    A container with nothing but pictures (a gallery) keeps their captions, one paragraph each.
    """
    body = deepcopy(container)
    if not _has_text_outside_figures(body):
        scope = container.getparent()
        body = _gallery(container if scope is None else scope, options)
    for element in _css(options.drop)(body):
        if element is not body and element.getparent() is not None:
            element.drop_tree()
    boilerplate = re.compile(f"{options.copyright}|{options.promo}", re.IGNORECASE)
    for p in list(body.iter("p", "div")):
        if p.getparent() is None or (p.tag == "div" and len(p)):
            continue
        text = _clean(p.text_content())
        if not text or boilerplate.search(text) or _is_related_teaser(p, text, options):
            p.drop_tree()
        elif p.tag == "p" and _is_bold_heading(p, options):
            p.tag = "h2"
    related_heading = re.compile(options.related_heading, re.IGNORECASE)
    for heading in list(body.iter("h2", "h3", "h4")):
        text = _clean(heading.text_content())
        if heading.getparent() is not None and (related_heading.search(text) or boilerplate.search(text)):
            heading.drop_tree()
    page = html.fromstring("<html><body><article></article></body></html>")
    article = page.find(".//article")
    article.text = body.text
    for child in list(body):
        article.append(child)
    return page


def _has_text_outside_figures(container: html.HtmlElement) -> bool:
    return any(
        _clean(element.text_content()) and not any(a.tag in ("figure", "figcaption") for a in element.iterancestors())
        for element in container.iter("p", "li", "blockquote", "td")
    )


def _gallery(scope: html.HtmlElement, options: DwExtraction) -> html.HtmlElement:
    """A `div` with one paragraph per picture caption in `scope` (the lead picture too), credits removed."""
    gallery = html.Element("div")
    for caption in deepcopy(scope).iter("figcaption"):
        for credit in _css(options.caption_credit)(caption):
            credit.drop_tree()
        if text := _clean(caption.text_content()):
            etree.SubElement(gallery, "p").text = text
    return gallery


def _blocks(document_body: etree._Element | None) -> Iterator[tuple[str, str]]:
    """(kind, text) of each block of trafilatura's output tree: `head` or `p` (lists, quotes, tables as p)."""
    if document_body is None:
        return
    for element in document_body:
        if element.tag == "list":
            for item in element.iter("item"):
                if text := _clean("".join(item.itertext())):
                    yield "p", text
        elif element.tag == "table":
            for row in element.iter("row"):
                cells = [_clean("".join(c.itertext())) for c in row.iter("cell")]
                if text := " | ".join(c for c in cells if c):
                    yield "p", text
        elif text := _clean("".join(element.itertext())):
            yield ("head" if element.tag == "head" else "p"), text


def _run_trafilatura(tree: html.HtmlElement, url: str, extractor: Extractor, prune: list[str] | None = None):
    document = trafilatura.bare_extraction(tree, url=url, options=extractor, prune_xpath=prune)
    return None if document is None else document.body


def extract_page(html_doc: str | bytes, url: str, options: DwExtraction = DW_OPTIONS) -> PageText:
    """Title, lead, subheadings, body and metadata of one DW article page (either layout)."""
    tree = load_html(html_doc) if html_doc else None
    if tree is None or not isinstance(tree.tag, str):
        raise ExtractError(url, "not an HTML document")
    ld = _json_ld(tree)
    small = _small_list(tree)
    language, page_language = _languages(tree, url)
    page = PageText(url=url, language=language, page_language=page_language)
    canonical = _first(tree, 'link[rel="canonical"]')
    page.canonical_url = canonical.get("href") if canonical is not None else None

    layout = next((lay for lay in options.layouts if _first(tree, lay.body) is not None), None)
    title_sel = layout.title if layout else "header h1, h1"
    page.title = _clean(ld.get("headline")) if isinstance(ld.get("headline"), str) else None
    page.title = page.title or _text_of(tree, title_sel) or _text_of(tree, "h1")
    page.teaser = _text_of(tree, layout.lead if layout else options.lead_fallback)
    page.category = _text_of(tree, layout.category) if layout else None
    page.authors = _ld_authors(ld.get("author")) or _authors_from_page(tree, small)
    page.published = normalize_iso(ld.get("datePublished")) or normalize_iso(_field(small, ("datum", "date", "日期")))
    page.modified = normalize_iso(ld.get("dateModified"))

    if layout is not None:
        page.layout = layout.name
        body_tree = _prepare_body(_first(tree, layout.body), options)
        blocks = list(_blocks(_run_trafilatura(body_tree, url, options.extractor())))
    else:
        prune = [_css(options.drop_page).path]
        blocks = list(_blocks(_run_trafilatura(tree, url, options.extractor(whole_page=True), prune)))
        boilerplate = re.compile(f"{options.copyright}|{options.promo}", re.IGNORECASE)
        blocks = [(k, t) for k, t in blocks if t not in (page.title, page.teaser) and not boilerplate.search(t)]
    page.subheadings = [t for k, t in blocks if k == "head"]
    page.body = "\n".join(t for _, t in blocks)
    page.text = "\n".join(t for t in (page.teaser, page.body) if t)
    if page.language:  # /zh/ pages may be written in either script: the text decides
        page.language = chinese_script(f"{page.title} {page.teaser} {page.body[:2000]}") or page.language
    return page


def _field(fields: dict[str, str], labels: tuple[str, ...]) -> str | None:
    return next((value for key, value in fields.items() if any(key.startswith(lab) for lab in labels)), None)


def _authors_from_page(tree: html.HtmlElement, small: dict[str, str]) -> list[str]:
    names = [_clean(e.text_content()) for e in _css("header .author-details .author")(tree)]
    if not names and (line := _field(small, ("autor", "author", "auteur", "作者"))):
        names = [_clean(n) for n in re.split(r",|\s+/\s+|\s+und\s+|\s+and\s+|、", line)]
    return list(dict.fromkeys(n for n in names if n))
