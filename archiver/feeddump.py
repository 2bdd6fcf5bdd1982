"""Read feed dumps (the `<!--ms-->` / `[title](url)` / `------` / HTML files of the public mirrors).

Pure Python, no Scrapy: `read_dump()` parses one file, `iter_dumps()` streams a corpus.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
API_URL = "https://api.dw.com/api/detail/article/{}"


class DumpError(Exception):
    """A file that is not a readable feed dump; names the file and the reason."""

    def __init__(self, path: str | Path, reason: str, detail: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        super().__init__(f"{self.path}: {reason}" + (f" ({detail})" if detail else ""))


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


@dataclass(frozen=True, slots=True)
class DumpResult:
    """What became of one input file: an entry, or the error that names why not."""

    path: str
    entry: FeedEntry | None = None
    error: DumpError | None = None


def read_dump(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> FeedEntry:
    """Parse one feed dump; raise DumpError naming the file and the reason."""
    raise NotImplementedError


def iter_dumps(paths: Iterable[str | Path], *, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[DumpResult]:
    """Stream a DumpResult for every dump file under `paths` (files, folders, globs)."""
    raise NotImplementedError
