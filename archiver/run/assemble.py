"""Turn the fetched parts of one article into its normalized item (pure: no I/O, no Scrapy)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archiver.items.model import ArticleItem, Capture, ImageRef, ItemError, TextRecord
from archiver.timefmt import now_iso

if TYPE_CHECKING:
    from archiver.run.jobs import ArticleJob

# Statuses whose body is what the server meant to say about the resource. A 429/503 body is
# a block or rate-limit page: archived as what happened, never used as content.
CONTENT_STATUSES = frozenset({200, 203})
# 304 after a conditional request: the archived content is confirmed, there is just no new body.
NOT_MODIFIED = 304
# How the reason of an exchange starts whose records could not be written (archiver.warc.middleware): a loss.
CAPTURE_LOSS = "WARC write failed"


@dataclass(slots=True)
class Fetched:
    """The outcome of one exchange: a response (any status) or an error without response."""

    url: str
    role: str
    status: int | None = None
    body: bytes = b""
    error: str | None = None
    capture: dict[str, Any] | None = None
    fetched_at: str = field(default_factory=lambda: now_iso())
    conversion: TextRecord | None = None  # the conversion record of the text extracted from it

    @property
    def ok(self) -> bool:
        """Whether the exchange gave content, or confirmed the archived content (304)."""
        return self.error is None and (self.status in CONTENT_STATUSES or self.status == NOT_MODIFIED)

    @property
    def has_body(self) -> bool:
        """Whether the exchange gave a body to read (not a 304, not an error page)."""
        return self.error is None and self.status in CONTENT_STATUSES

    @property
    def reason(self) -> str | None:
        """Why the exchange gave no content, or None when it did."""
        if self.ok:
            return None
        return self.error or f"HTTP {self.status}"


def capture_of(part: Fetched) -> Capture | None:
    """The item's capture entry for an exchange that produced a response and was archived (a lost one is none)."""
    if part.status is None or (part.capture is None and (part.error or "").startswith(CAPTURE_LOSS)):
        return None
    warc = part.capture or {}
    return Capture(
        url=part.url,
        role=part.role,
        status=part.status,
        fetched_at=warc.get("fetched_at") or part.fetched_at,
        warc_file=warc.get("warc_file"),
        offset=warc.get("offset"),
        length=warc.get("length"),
        record_id=warc.get("record_id"),
        payload_digest=warc.get("payload_digest"),
        record_type=warc.get("record_type"),
        conversion=part.conversion,
    )


def item_status(required: Sequence[Fetched], optional: Iterable[Fetched]) -> str:
    """complete when every part gave content, failed when no required part did, else partial."""
    optional = list(optional)
    if all(p.ok for p in required) and all(p.ok for p in optional):
        return "complete"
    if not any(p.ok for p in required):
        return "failed"
    return "partial"


def language_of(url: str | None) -> str | None:
    """zh-Hant for /zh-hant/ pages, zh-Hans for /zh/ pages."""
    if not url:
        return None
    return "zh-Hant" if "/zh-hant/" in url.lower() else "zh-Hans"


def _unique_ints(values: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(values))


@dataclass(slots=True)
class ArticleParts:
    """Everything gathered for one job; the spider fills it, `article_item` reads it."""

    job: ArticleJob
    page: Fetched | None = None
    api: Fetched | None = None
    images: list[Fetched] = field(default_factory=list)
    page_text: Any = None  # archiver.dw.page.PageText
    api_article: Any = None  # archiver.dw.api.ApiArticle
    agreement: float | None = None
    extra_errors: list[ItemError] = field(default_factory=list)
    via: int | None = None
    depth: int = 0


def article_item(parts: ArticleParts, run_id: str | None = None) -> ArticleItem:
    """The item for an article from the dumps, or (kind `reference`) for a cited article."""
    job, page, api, text, doc = parts.job, parts.page, parts.api, parts.page_text, parts.api_article
    exchanges = [p for p in (page, api, *parts.images) if p is not None]
    required = [p for p in (page, api) if p is not None]

    images = [ImageRef(url=u, caption=c) for u, c in job.images]
    if not images and doc is not None:
        images = [ImageRef(url=u, caption=c) for u, c in getattr(doc, "images", ())]
    references = _unique_ints([*job.references, *(getattr(doc, "references", ()) or ())])
    errors = [ItemError(url=p.url, reason=p.reason or "") for p in exchanges if not p.ok]
    errors += parts.extra_errors
    status = item_status(required, parts.images)
    if parts.extra_errors and status == "complete":
        status = "partial"

    url = job.page_url or getattr(doc, "permalink", None)
    return ArticleItem(
        article_id=job.article_id,
        kind=job.kind,
        url=url if url and url.startswith("https://www.dw.com/") else None,
        api_url=job.api_url,
        title=_first(getattr(text, "title", None), getattr(doc, "name", None), job.title),
        teaser=_first(getattr(text, "teaser", None), getattr(doc, "teaser", None)),
        text=getattr(text, "text", None) or None,
        api_text=getattr(doc, "text", None) or None,
        authors=list(getattr(text, "authors", None) or ([job.author] if job.author else [])),
        published=_first(getattr(text, "published", None), getattr(doc, "display_date", None), job.published),
        modified=getattr(text, "modified", None),
        language=_first(getattr(text, "language", None), getattr(doc, "language", None), language_of(url)),
        category=getattr(doc, "category", None),
        images=images,
        references=[r for r in references if r != job.article_id],
        feed=list(job.feed),
        captures=[c for c in map(capture_of, exchanges) if c is not None],
        status=status,
        errors=errors,
        text_agreement=parts.agreement,
        via=parts.via,
        depth=parts.depth,
        run_id=run_id,
    )


def _first(*values: Any) -> Any:
    return next((v for v in values if v), None)
