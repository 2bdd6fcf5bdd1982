"""The normalized article item and its parts, as written to `output/items/*.jsonl`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

ITEM_KINDS = ("article", "gallery", "video", "empty", "reference")
ITEM_STATUSES = ("complete", "partial", "failed")
CAPTURE_ROLES = ("page", "api", "image")


@dataclass(slots=True)
class FeedRef:
    """One feed dump that named the article."""

    file: str
    feed_time: str | None
    title: str
    link: str


@dataclass(slots=True)
class TextRecord:
    """Where the conversion record holding a capture's extracted text is (a `*.warc.wet.gz` file)."""

    warc_file: str
    offset: int
    length: int
    record_id: str


@dataclass(slots=True)
class Capture:
    """One archived exchange of the article and where its WARC record is."""

    url: str
    role: str
    status: int | None
    fetched_at: str
    warc_file: str | None = None
    offset: int | None = None
    length: int | None = None
    record_id: str | None = None
    payload_digest: str | None = None
    record_type: str | None = None
    conversion: TextRecord | None = None


@dataclass(slots=True)
class ItemError:
    """A part of the article that could not be archived, and why."""

    url: str
    reason: str


@dataclass(slots=True)
class ImageRef:
    """An image the item shows, by its original URL."""

    url: str
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """What a recheck found (kinds in archiver.run.changes): the kind, the changed fields, for `moved` the new URL."""

    kind: str
    fields: list[str] = field(default_factory=list)
    moved_to: str | None = None


@dataclass(slots=True)
class ArticleItem:
    """One DW article (from a dump) or one cited article (kind `reference`)."""

    article_id: int
    kind: str
    url: str | None
    api_url: str
    title: str | None = None
    teaser: str | None = None
    text: str | None = None
    api_text: str | None = None
    authors: list[str] = field(default_factory=list)
    published: str | None = None
    modified: str | None = None
    language: str | None = None
    category: str | None = None
    images: list[ImageRef] = field(default_factory=list)
    references: list[int] = field(default_factory=list)
    feed: list[FeedRef] = field(default_factory=list)
    captures: list[Capture] = field(default_factory=list)
    status: str = "complete"
    errors: list[ItemError] = field(default_factory=list)
    text_agreement: float | None = None
    via: int | None = None
    depth: int = 0
    version: int = 1
    run_id: str | None = None
    change: Change | None = None  # set on rechecks of an archived article
    previous_captures: list[str] = field(default_factory=list)  # WARC record ids of the previous version


@cache
def item_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that every exported item satisfies."""
    return json.loads(resources.files("archiver").joinpath("item.schema.json").read_text("utf-8"))
