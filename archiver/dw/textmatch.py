"""How well an extracted page text and a feed body agree: character-bigram F1 over normalized article text.

Pure and linear in the text length. The feed body loses its boilerplate first (`feed_article_text`), the same
that `archiver.dw.page` drops: the `<i>author<br>date</i>` line; images, their `<small>` captions and the
slides of a picture gallery within an article; embeds; paragraphs that are only a link or start with a
"更多阅读：" label (inline related teasers); promos (Instagram, podcast); the copyright line
("© … 德国之声版权声明"); and everything from the feedx footer (`<hr>`) on. Normalization (`normalize`)
keeps letters and digits only (NFKC, case-folded): whitespace, punctuation and character width do not count.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from collections.abc import Callable

from archiver.dw.page import DW_OPTIONS, PageText

__all__ = ["agreement", "extract_and_compare", "feed_article_text", "normalize", "overlap"]

_FOOTER = re.compile(r"<hr\b[^>]*>|获取更多RSS|獲取更多RSS|feedx\.(?:net|top|site)", re.IGNORECASE)
_DROP_BLOCKS = re.compile(
    r"<(script|style|iframe|video|audio|small|figcaption)\b[^>]*>.*?</\1\s*>"  # captions, embeds
    r"|<div>\s*<i>.*?</i>\s*</div>"  # the author/date line
    r"|<img\b[^>]*>"
    r"|<p>\s*<a\b[^>]*>[^<]*</a>\s*(?:<span>\s*</span>\s*)?</p>",  # a paragraph that is one link
    re.IGNORECASE | re.DOTALL,
)
_SLIDE = re.compile(r"<div>\s*<img\b[^>]*>\s*<b>.*?</div>", re.IGNORECASE | re.DOTALL)
_GALLERY_HEADING = re.compile(r"<(h\d)>\s*(?:相关图集|相關圖集).*?</\1>", re.DOTALL)
_BLOCK_END = re.compile(r"</(?:p|div|h\d|li|blockquote|tr)\s*>|<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_BOILERPLATE = re.compile(f"{DW_OPTIONS.copyright}|{DW_OPTIONS.promo}|{DW_OPTIONS.related_label}", re.IGNORECASE)


def feed_article_text(body: str) -> str:
    """The article text of a feed body (HTML or plain), one block per line, boilerplate removed.

    Picture-gallery slides (`<div><img><b>title</b>：caption</div>`) are captions too, and go with their
    `相关图集` heading, unless they are all the body has (a gallery), as `archiver.dw.page` does.
    """
    if footer := _FOOTER.search(body):
        body = body[: footer.start()]
    if "<" in body:
        without_slides = _SLIDE.sub(" ", _GALLERY_HEADING.sub(" ", body))
        if _text(without_slides):
            body = without_slides
    return _text(body)


def _text(body: str) -> str:
    if "<" in body:
        body = _DROP_BLOCKS.sub(" ", body)
        body = _BLOCK_END.sub("\n", body)
        body = html.unescape(_TAG.sub("", body))
    lines = (" ".join(line.split()) for line in body.splitlines())
    return "\n".join(line for line in lines if line and not _BOILERPLATE.search(line))


def normalize(text: str) -> str:
    """Letters and digits only, NFKC and case-folded: `“你好，World!”` -> `你好world`."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


def _grams(text: str, n: int) -> Counter[str]:
    if len(text) < n:
        return Counter([text]) if text else Counter()
    return Counter(text[i : i + n] for i in range(len(text) - n + 1))


def overlap(page_text: str, feed_text: str, n: int = 2) -> tuple[float, float]:
    """(precision, recall) of the page's character n-grams against the feed's, both texts already clean."""
    page, feed = _grams(normalize(page_text), n), _grams(normalize(feed_text), n)
    if not page or not feed:
        return 0.0, 0.0
    common = sum((page & feed).values())
    return common / sum(page.values()), common / sum(feed.values())


def agreement(page_text: str, feed_body_html_or_text: str, n: int = 2) -> float:
    """F1 (0..1) of character n-grams: how much of the feed article the page text reproduces and vice versa.

    Pass the page's body without its lead (`PageText.body`) to compare like with like: feeds carry no lead.
    """
    precision, recall = overlap(page_text, feed_article_text(feed_body_html_or_text), n)
    if precision + recall == 0:
        return 0.0
    return round(2 * precision * recall / (precision + recall), 6)


def extract_and_compare(
    func: Callable[[bytes | str, str], PageText], html: bytes | str, url: str, feed_body: str | None
) -> PageText:
    """`func(html, url)`, its `agreement` with the feed body filled in: one call in an extraction worker."""
    page = func(html, url)
    if feed_body and page.body:  # feed bodies carry no lead: compare the body
        page.agreement = round(agreement(page.body, feed_body), 4)
    return page
