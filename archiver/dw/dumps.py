"""Read feed dumps (the `<!--ms-->` / `[title](url)` / `------` / HTML files of the public mirrors).

Pure Python, no Scrapy: `read_dump()` parses one file, `iter_dumps()` streams a corpus. A file that is no
readable dump raises `DumpError` with one of the stable reason codes defined below.
"""

from __future__ import annotations

import glob
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urljoin

from archiver.errors import ArchiverError
from archiver.timefmt import iso_utc

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
API_URL = "https://api.dw.com/api/detail/article/{}"
PAGE_HOST = "https://www.dw.com"
DUMP_SUFFIX = ".md"
KINDS = ("article", "gallery", "video", "empty")

# Reasons are stable codes: the spider and `scrapy dumps --summary` count by them.
NOT_FOUND = "not found"
UNREADABLE = "unreadable"
TOO_LARGE = "too large"
EMPTY = "empty file"
BINARY = "binary content"
NOT_UTF8 = "not UTF-8"
NOT_A_DUMP = "not a feed dump"
TRUNCATED = "truncated header"
BAD_TIMESTAMP = "bad timestamp"
MISSING_LINK = "missing link"
# Reasons for files met in a folder walk that are skipped rather than failed.
NOT_MD = "not a .md file"
HIDDEN = "hidden"
SYMLINKED_FOLDER = "symlinked folder"


class DumpError(ArchiverError):
    """A file that is not a readable feed dump; names the file and the reason."""

    def __init__(self, path: str | Path, reason: str, detail: str = "") -> None:
        super().__init__(str(path), reason, detail)

    @property
    def path(self) -> str:
        return self.subject


@dataclass(frozen=True, slots=True)
class Reference:
    """A cited DW article: `rel` is `ArticleRef` or `CommentRef`."""

    article_id: int
    rel: str


@dataclass(frozen=True, slots=True)
class Image:
    """An image of the item, by its original (unproxied) URL."""

    url: str
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class YouTube:
    """A YouTube embed; `valid` is False when the id is malformed (kept raw)."""

    video_id: str
    valid: bool


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One parsed feed dump."""

    path: str
    feed_time: datetime | None
    title: str
    link: str
    article_id: int | None
    page_url: str | None
    published: datetime | None
    author: str | None
    kind: str  # article | gallery | video | empty
    body_html: str
    references: tuple[Reference, ...] = ()
    external_links: tuple[str, ...] = ()
    images: tuple[Image, ...] = ()
    videos: tuple[str, ...] = ()
    youtube: tuple[YouTube, ...] = ()
    topics: tuple[int, ...] = ()

    @property
    def api_url(self) -> str | None:
        """The api.dw.com detail URL of the article, for DW entries."""
        return None if self.article_id is None else API_URL.format(self.article_id)

    @property
    def is_dw(self) -> bool:
        """Whether the entry is a DW article (other outlets have no article id)."""
        return self.article_id is not None

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready values (datetimes as ISO 8601 UTC with `Z`)."""
        return {
            "path": self.path,
            "feed_time": iso_utc(self.feed_time),
            "title": self.title,
            "link": self.link,
            "article_id": self.article_id,
            "page_url": self.page_url,
            "api_url": self.api_url,
            "published": iso_utc(self.published),
            "author": self.author,
            "kind": self.kind,
            "references": [{"article_id": r.article_id, "rel": r.rel} for r in self.references],
            "external_links": list(self.external_links),
            "images": [{"url": i.url, "caption": i.caption} for i in self.images],
            "videos": list(self.videos),
            "youtube": [{"video_id": y.video_id, "valid": y.valid} for y in self.youtube],
            "topics": list(self.topics),
            "body_html": self.body_html,
        }


@dataclass(frozen=True, slots=True)
class DumpResult:
    """What became of one input file: an entry, or the error that names why not.

    `skipped` marks an error that is not a failure: a file met in a folder walk that is no dump.
    """

    path: str
    entry: FeedEntry | None = None
    error: DumpError | None = None
    skipped: bool = False

    @property
    def status(self) -> str:
        """`parsed`, `skipped` or `failed`."""
        if self.entry is not None:
            return "parsed"
        return "skipped" if self.skipped else "failed"


# --- reading one file ---


def read_dump(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> FeedEntry:
    """Parse one feed dump; raise DumpError naming the file and the reason."""
    name = str(path)
    try:
        # O_NONBLOCK: opening a FIFO must not hang; only regular files are read.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise DumpError(name, UNREADABLE, "not a regular file")
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise DumpError(name, NOT_FOUND) from None
    except (OSError, ValueError) as exc:  # ValueError: NUL byte in the path
        raise DumpError(name, UNREADABLE, getattr(exc, "strerror", None) or str(exc)) from None
    if len(data) > max_bytes:
        raise DumpError(name, TOO_LARGE, f"over {max_bytes} bytes")
    return parse_dump(data, name)


def parse_dump(data: bytes, path: str = "<bytes>") -> FeedEntry:
    """Parse the bytes of one feed dump; raise DumpError naming `path` and the reason."""
    text = _decode(data, path)
    header, body_html, jekyll = _split(text, path)
    feed_time, title, link = header
    body_html = _clean_body(body_html, jekyll)
    article_id, page_url = dw_article(link)
    author, published, dated = _date_line(body_html)
    return FeedEntry(
        path=path,
        feed_time=feed_time,
        title=title,
        link=link,
        article_id=article_id,
        page_url=page_url,
        published=published,
        author=author,
        kind=_kind(body_html, dated),
        body_html=body_html,
        **_scan_body(body_html, link),
    )


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")


def _decode(data: bytes, path: str) -> str:
    """UTF-8 text with the BOM dropped and every line ending turned into LF."""
    if not data.strip():
        raise DumpError(path, EMPTY)
    if data.startswith(_UTF16_BOMS):
        raise DumpError(path, NOT_UTF8, "UTF-16 byte order mark")
    if b"\x00" in data:
        raise DumpError(path, BINARY, f"NUL byte at offset {data.index(0)}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Text in another encoding has few control bytes; junk (images, archives) has many.
        head = data[:4096]
        if len(_CONTROL_BYTES.findall(head)) * 50 > len(head):
            raise DumpError(path, BINARY, "control bytes") from None
        raise DumpError(path, NOT_UTF8, f"byte offset {exc.start}: {exc.reason}") from None
    text = text.removeprefix("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DumpError(path, EMPTY)
    return text


_TIMESTAMP = re.compile(r"<!--[ \t]*([0-9]+)[ \t]*-->[ \t]*")
_SEPARATOR = re.compile(r"^------+[ \t]*$", re.M)
_BLANK_LINES = re.compile(r"(?:[ \t]*\n)*")


def _split(text: str, path: str) -> tuple[tuple[datetime | None, str, str], str, bool]:
    """((feed_time, title, link), raw body, whether Jekyll-wrapped) of a decoded dump."""
    pos, jekyll = 0, False
    if text.startswith("---\n"):
        end = text.find("\n---\n", 3)
        if end < 0:
            if text.rstrip().endswith("\n---"):
                raise DumpError(path, TRUNCATED, "nothing after the front matter")
            raise DumpError(path, TRUNCATED, "front matter not closed")
        pos, jekyll = end + 5, True
    pos = _BLANK_LINES.match(text, pos).end()
    if pos >= len(text):
        raise DumpError(path, TRUNCATED, "nothing after the front matter")

    feed_time = None
    if text.startswith("<!--", pos):
        eol = text.find("\n", pos)
        if eol < 0:
            raise DumpError(path, TRUNCATED, "ends in the timestamp line")
        m = _TIMESTAMP.fullmatch(text, pos, eol)
        if m is None:
            raise DumpError(path, BAD_TIMESTAMP, repr(text[pos:eol][:60]))
        feed_time = _from_ms(m.group(1), path)
        pos = _BLANK_LINES.match(text, eol + 1).end()
    elif not text.startswith("[", pos):
        raise DumpError(path, NOT_A_DUMP, "no `<!--ms-->` or `[title](url)` header")

    sep = _SEPARATOR.search(text, pos)
    if sep is None:
        if feed_time is not None and pos < len(text) and not text.startswith("[", pos):
            raise DumpError(path, MISSING_LINK, "no `[title](url)` line")
        raise DumpError(path, TRUNCATED, "no `------` line")
    head = text[pos : sep.start()].rstrip()
    split = head.rfind("](")
    if not head.startswith("[") or split < 0 or not head.endswith(")") or split + 3 > len(head):
        raise DumpError(path, MISSING_LINK, repr(head[:80]) if head else "empty header")
    link = head[split + 2 : -1].strip()
    if not link:
        raise DumpError(path, MISSING_LINK, "empty URL")
    title = " ".join(head[1:split].split())
    return (feed_time, title, link), text[sep.end() :], jekyll


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _from_ms(digits: str, path: str) -> datetime:
    if len(digits) > 15:
        raise DumpError(path, BAD_TIMESTAMP, f"{digits[:20]} ms is out of range")
    try:
        return _EPOCH + timedelta(milliseconds=int(digits))
    except OverflowError:
        raise DumpError(path, BAD_TIMESTAMP, f"{digits} ms is out of range") from None


_FOOTER = re.compile(r"<hr\s*/?>\s*<div>\s*获取更多RSS.*?</div>\s*\Z", re.S)
_TRAILING_BR = re.compile(r"<br\s*/?>\Z")
_WS = " \t\n\f\v"  # ASCII only: a body may end in meaningful NBSP or U+3000


def _clean_body(body: str, jekyll: bool) -> str:
    """The body without surrounding blank lines, the Jekyll `<div>` wrapper and the feedx footer."""
    body = body.strip(_WS)
    if jekyll and body.startswith("<div>\n") and body.endswith("\n</div>"):
        body = body[6:-7].strip(_WS)
    promo = body.rfind("获取更多RSS")
    if promo >= 0:
        start = body.rfind("<hr", 0, promo)
        if start >= 0 and _FOOTER.match(body, start):
            body = body[:start].rstrip(_WS)
            if (br := _TRAILING_BR.search(body, max(0, len(body) - 8))) is not None:
                body = body[: br.start()].rstrip(_WS)
    return body


# --- the link ---

_DW_LINK = re.compile(r"https?://(?:www\.|m\.)?dw\.com((?:/.*)?)/a-([0-9]{1,15})", re.I | re.S)
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# RFC 3986 pchar (unreserved, sub-delims, ":", "@") plus "/" and existing %XX escapes.
_PATH_SAFE = "/%:@!$&'()*+,;=~"


def dw_article(link: str) -> tuple[int | None, str | None]:
    """(article id, canonical page URL) of a DW link, from the raw string; (None, None) otherwise."""
    m = _DW_LINK.fullmatch(link)
    if m is None:
        return None, None
    article_id = int(m.group(2))
    return article_id, f"{PAGE_HOST}{requote_path(m.group(1))}/a-{article_id}"


def requote_path(path: str) -> str:
    """Percent-encode what a URL path may not hold raw (`?`, `#`, spaces, non-ASCII), keeping `%XX`."""
    return quote(_LONE_PERCENT.sub("%25", path), safe=_PATH_SAFE)


# --- the body ---

_DATE_LINE = re.compile(r"<div>\s*<i>(.{0,500}?)</i>\s*</div>", re.S)
_CDT_DATE = re.compile(r"日期：([^\n<]+)")
_BR = re.compile(r"<br\s*/?>", re.I)
_TAG = re.compile(r"<[^>]*>")


def _date_line(body: str) -> tuple[str | None, datetime | None, bool]:
    """(author, published, found) from the `<div><i>author<br>date</i></div>` line opening the body."""
    m = _DATE_LINE.match(body)
    if m is None:
        cdt = _CDT_DATE.match(body)  # other outlets: `日期：<RFC 2822 date>`
        return None, (parse_date(cdt.group(1)) if cdt else None), False
    parts = _BR.split(m.group(1))
    author = clean_author(parts[0]) if len(parts) > 1 else None
    return author, parse_date(text_of(parts[-1])), True


def clean_author(raw: str) -> str | None:
    """The author with tags, the `null ` prefix and repeated whitespace removed; None when empty."""
    words = text_of(raw).split()
    if words and words[0] == "null":
        words = words[1:]
    return " ".join(words) or None


def parse_date(text: str) -> datetime | None:
    """An ISO 8601 or RFC 2822 date with a time zone, in UTC; None otherwise."""
    text = text.strip()
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        try:
            value = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if value.tzinfo is None:  # a naive time names no zone: do not guess one
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return None


def text_of(html: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed."""
    if "<" in html:
        html = _TAG.sub(" ", html)
    if "&" in html:
        html = unescape(html)
    return " ".join(html.split())


def _kind(body: str, dated: bool) -> str:
    if not body:
        return "empty"
    if dated:
        return "article"
    if body.startswith("<div><img"):
        return "gallery"
    if "<video" in body:
        return "video"
    return "article"


_TAGS = re.compile(r"<(a|img|video|source|iframe|span)\s([^>]*)>", re.I)
_ATTR = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
_CAPTION = re.compile(r"\s*<div>\s*<small[^>]*>(.*?)</small>\s*</div>", re.S)
_REF_ID = re.compile(r"(?:/article/|/a-)([0-9]{1,15})/?$")
_WESERV = re.compile(r"(?:https?:)?//images\.weserv\.nl/?\?(.*)", re.I | re.S)
_YOUTUBE = re.compile(r"(?:https?:)?//(?:www\.)?youtube(?:-nocookie)?\.com/embed/([^?#&/]*)", re.I)
_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
REF_RELS = ("ArticleRef", "CommentRef")


def _attrs(raw: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for name, dq, sq, bare in _ATTR.findall(raw):
        value = dq or sq or bare
        attrs.setdefault(name.lower(), unescape(value) if "&" in value else value)
    return attrs


def _scan_body(body: str, link: str) -> dict[str, Any]:
    """References, external links, images, videos, YouTube ids and AUTO_TOPIC ids of a body."""
    refs: dict[Reference, None] = {}
    links: dict[str, None] = {}
    images: dict[str, str | None] = {}
    videos: dict[str, None] = {}
    youtube: dict[str, None] = {}
    topics: dict[int, None] = {}
    for m in _TAGS.finditer(body):
        tag, attrs = m.group(1).lower(), _attrs(m.group(2))
        if tag == "a":
            href = attrs.get("href", "").strip()
            rel = attrs.get("rel", "")
            ref = _REF_ID.search(href) if rel in REF_RELS else None
            if ref is not None:
                refs[Reference(int(ref.group(1)), rel)] = None
            elif (url := _absolute(href, link)) is not None:
                links[url] = None
        elif tag == "img":
            url = original_image_url(attrs.get("src", ""), link)
            if url is not None and url not in images:
                cap = _CAPTION.match(body, m.end())
                images[url] = (text_of(cap.group(1)) or None) if cap else None
        elif tag in ("video", "source"):
            if (url := _absolute(attrs.get("src", "").strip(), link)) is not None:
                videos[url] = None
        elif tag == "iframe":
            yt = _YOUTUBE.match(attrs.get("src", "").strip())
            if yt is not None and yt.group(1):
                youtube[yt.group(1)] = None
        elif attrs.get("data-type") == "AUTO_TOPIC":
            topic = attrs.get("data-id", "").strip()
            if topic.isascii() and topic.isdigit() and len(topic) < 16:
                topics[int(topic)] = None
    return {
        "references": tuple(refs),
        "external_links": tuple(links),
        "images": tuple(Image(url, caption) for url, caption in images.items()),
        "videos": tuple(videos),
        "youtube": tuple(YouTube(v, _YOUTUBE_ID.fullmatch(v) is not None) for v in youtube),
        "topics": tuple(topics),
    }


def _absolute(url: str, base: str) -> str | None:
    """`url` made absolute against the dump's link; None for empty, fragment-only or script links."""
    if not url or url.startswith("#"):
        return None
    if url.startswith(("https://", "http://")):
        return url
    if url.startswith("//"):
        return "https:" + url
    if url.lower().startswith(("javascript:", "data:", "mailto:")):
        return None
    try:
        return urljoin(base, url)
    except ValueError:  # e.g. a malformed IPv6 host in the base
        return None


def original_image_url(src: str, base: str = "") -> str | None:
    """The original URL of an image, unwrapped from the images.weserv.nl proxy; None for `src=""`."""
    src = src.strip()
    m = _WESERV.match(src)
    if m is None:
        return _absolute(src, base)
    for param in m.group(1).split("&"):
        if param.startswith("url="):
            target = unquote(param[4:]).strip()
            if target.startswith("ssl:"):
                return "https://" + target[4:]
            if target.startswith(("https://", "http://")):
                return target
            return "https://" + target.removeprefix("//") if target else None
    return src


# --- many files ---


def iter_dumps(
    paths: Iterable[str | Path] | str | Path,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    skip: Callable[[str], str | None] | None = None,
) -> Iterator[DumpResult]:
    """Stream a DumpResult for every dump file under `paths` (files, folders, globs).

    A file named directly is read whatever its name. Folders are walked recursively in sorted order:
    `*.md` files are read, and other files, hidden entries and symlinked folders are yielded as
    skipped, as is a `*.md` file that is no feed dump at all (e.g. a README). A path that does not
    exist is taken as a glob pattern; when nothing matches it, its result fails as `not found`.
    `skip(path)` is asked before a file is read: a reason it returns makes the file skipped, unread.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    for raw in paths:
        path = str(raw)
        if os.path.isdir(path):
            yield from _walk(path, max_bytes, skip)
        elif os.path.lexists(path):
            yield _result(path, max_bytes, skip)
        elif glob.has_magic(path) and (matches := sorted(glob.iglob(path, recursive=True))):
            for match in matches:
                if os.path.isdir(match):
                    yield from _walk(match, max_bytes, skip)
                else:
                    yield _result(match, max_bytes, skip)
        else:
            detail = "no file matches the pattern" if glob.has_magic(path) else "no such file or folder"
            yield DumpResult(path, error=DumpError(path, NOT_FOUND, detail))


def _result(
    path: str, max_bytes: int, skip: Callable[[str], str | None] | None, *, in_walk: bool = False
) -> DumpResult:
    if skip is not None and (reason := skip(path)):
        return DumpResult(path, error=DumpError(path, reason), skipped=True)
    try:
        return DumpResult(path, entry=read_dump(path, max_bytes=max_bytes))
    except DumpError as exc:
        return DumpResult(path, error=exc, skipped=in_walk and exc.reason == NOT_A_DUMP)


def _walk(folder: str, max_bytes: int, skip: Callable[[str], str | None] | None) -> Iterator[DumpResult]:
    """Every file below `folder`, depth first in name order; one listing in memory per level."""
    try:
        with os.scandir(folder) as it:
            listing = sorted((e.name, e.is_dir(follow_symlinks=False), e.is_symlink()) for e in it)
    except OSError as exc:
        yield DumpResult(folder, error=DumpError(folder, UNREADABLE, exc.strerror or str(exc)))
        return
    for name, is_dir, is_link in listing:
        path = os.path.join(folder, name)
        if name.startswith("."):
            yield DumpResult(path, error=DumpError(path, HIDDEN), skipped=True)
        elif is_dir:
            yield from _walk(path, max_bytes, skip)
        elif is_link and os.path.isdir(path):
            yield DumpResult(path, error=DumpError(path, SYMLINKED_FOLDER, "not followed"), skipped=True)
        elif not name.endswith(DUMP_SUFFIX):
            yield DumpResult(path, error=DumpError(path, NOT_MD), skipped=True)
        else:
            yield _result(path, max_bytes, skip, in_walk=True)
