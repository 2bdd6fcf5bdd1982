"""The unit of work: one article id with everything the dumps said of it, as plain JSON.

A job is self-contained so that a worker on another machine (scrapy-redis) needs no dump files.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from archiver.dw.dumps import API_URL, FeedEntry
from archiver.items.model import FeedRef
from archiver.timefmt import iso_utc


@dataclass(slots=True)
class ArticleJob:
    """Fetch the page, API JSON, cited articles and images of one article."""

    article_id: int
    kind: str
    page_url: str | None
    title: str = ""
    author: str | None = None
    published: str | None = None
    body_html: str = ""
    images: list[tuple[str, str | None]] = field(default_factory=list)
    references: list[int] = field(default_factory=list)
    feed: list[FeedRef] = field(default_factory=list)
    recheck: bool = False
    depth: int = 0  # hops from a dump: cited articles are fetched up to `refs_depth`

    @property
    def api_url(self) -> str:
        """The article's api.dw.com detail URL."""
        return API_URL.format(self.article_id)

    def provenance(self) -> list[dict[str, Any]]:
        """The dumps that led here, for WARC metadata records."""
        return [{"file": f.file, "feed_time": f.feed_time, "title": f.title} for f in self.feed]

    def to_json(self) -> str:
        """The job as one line of JSON."""
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ArticleJob:
        """A job from `to_json` output."""
        data = json.loads(text)
        data["images"] = [tuple(i) for i in data.get("images", [])]
        data["feed"] = [FeedRef(**f) for f in data.get("feed", [])]
        return cls(**data)


def feed_ref(entry: FeedEntry) -> FeedRef:
    """The item's record of one dump that named the article."""
    return FeedRef(file=entry.path, feed_time=iso_utc(entry.feed_time), title=entry.title, link=entry.link)


def job_from_entry(entry: FeedEntry) -> ArticleJob:
    """The job for a DW feed entry."""
    assert entry.article_id is not None
    return ArticleJob(
        article_id=entry.article_id,
        kind=entry.kind,
        page_url=entry.page_url,
        title=entry.title,
        author=entry.author,
        published=iso_utc(entry.published),
        body_html=entry.body_html,
        images=[(i.url, i.caption) for i in entry.images],
        references=list(dict.fromkeys(r.article_id for r in entry.references if r.article_id != entry.article_id)),
        feed=[feed_ref(entry)],
    )
