"""What a recheck of an archived article found: the change kinds, the normalized fields compared, the verdict.

Pure (no Scrapy, no I/O). The comparison is on normalized extracted fields, never on bytes: page chrome,
related links, headers and image query strings change the bytes of a page but not these fields.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from archiver.items.model import Change

# Outcomes of a recheck (the names are a contract: `scrapy changes --json`, the run report, the schedule).
UNCHANGED = "unchanged"
EDITED = "edited"  # title, teaser, text, authors or dates differ from the previous version
REMOVED = "removed"  # 404 or 410 where the previous version had content
MOVED = "moved"  # redirected to another article
RESTORED = "restored"  # content again after `removed` (or `moved`)
UNREACHABLE = "unreachable"  # timeout, 5xx, 429, reset: not a change, retried as any failure
RECHECK_KINDS = (UNCHANGED, EDITED, REMOVED, MOVED, RESTORED, UNREACHABLE)
# The outcomes that make a new version of the article (an item, a history row).
CHANGE_KINDS = (EDITED, REMOVED, MOVED, RESTORED)
# The first version the history knows of an article (its first archive); a history row, not a recheck outcome.
NEW = "new"
HISTORY_KINDS = (NEW, *CHANGE_KINDS)

# What a recheck observed of the article (page and API JSON together).
CONTENT, GONE, REDIRECTED, FAILED = "content", "gone", "moved", "unreachable"
GONE_STATUSES = frozenset({404, 410})
OK_STATUSES = frozenset({200, 203, 304})

# Compared fields, normalized; `api_text` is reported as `text`.
COMPARED_FIELDS = ("title", "teaser", "text", "api_text", "authors", "published", "modified")
REPORTED_AS = {"api_text": "text"}

_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u2060\ufeff]")
_SPACE = re.compile(r"\s+")
# A space before or after a non-ASCII character; written to start with the space, which the regex engine finds fast.
_SPACE_BY_WIDE = re.compile(r" (?:(?=[^\x00-\x7f])|(?<=[^\x00-\x7f] ))")
_PAGE_ID = re.compile(r"/a-(\d+)(?:[/?#]|$)")
_API_ID = re.compile(r"/api/detail/article/(\d+)(?:[/?#]|$)")


def normalize_text(value: str | None) -> str | None:
    """Text as compared: NFKC, no invisible characters, whitespace collapsed and dropped next to CJK; None if empty."""
    if not value:
        return None
    text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", value))
    text = _SPACE_BY_WIDE.sub("", _SPACE.sub(" ", text).strip())
    return text or None


def normalized_fields(item: Any) -> dict[str, str]:
    """The compared fields of an item (an ArticleItem or its dict), normalized; a missing field is left out."""

    def get(name: str) -> Any:
        return item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)

    authors = sorted(filter(None, (normalize_text(a) for a in get("authors") or ())))
    values = {
        "title": normalize_text(get("title")),
        "teaser": normalize_text(get("teaser")),
        "text": normalize_text(get("text")),
        "api_text": normalize_text(get("api_text")),
        "authors": "\n".join(authors) or None,
        "published": get("published") or None,
        "modified": get("modified") or None,
    }
    return {name: value for name, value in values.items() if value is not None}


def field_digests(item: Any) -> dict[str, str]:
    """A short SHA-1 of each compared field: what the history keeps to compare the next recheck with."""
    return {
        name: hashlib.sha1(value.encode("utf-8")).hexdigest()[:20] for name, value in normalized_fields(item).items()
    }


def changed_fields(before: Mapping[str, str] | None, after: Mapping[str, str]) -> tuple[str, ...]:
    """Fields whose digest differs; a field missing on either side (not extracted) is not a difference."""
    if not before:
        return ()
    names = {REPORTED_AS.get(n, n) for n in COMPARED_FIELDS if n in before and n in after and before[n] != after[n]}
    return tuple(n for n in COMPARED_FIELDS if n in names)


@dataclass(frozen=True, slots=True)
class Observation:
    """What a fetch of the article showed: content, gone (404/410), moved elsewhere, or unreachable."""

    outcome: str
    moved_to: str | None = None


@dataclass(frozen=True, slots=True)
class Previous:
    """What the history knows of the last version: how it was observed, its field digests, its captures."""

    observed: str
    digests: dict[str, str] = field(default_factory=dict)
    moved_to: str | None = None
    captures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def record_ids(self) -> list[str]:
        """WARC record ids of the last version's page and API captures."""
        return [c["record_id"] for c in self.captures if c.get("record_id")]


@dataclass(frozen=True, slots=True)
class Verdict:
    """A classified recheck: the change, what was seen, the digests to keep; `baseline` when no history existed."""

    change: Change
    seen: Observation
    digests: dict[str, str]
    baseline: bool = False


def _target_id(url: str, role: str) -> int | None:
    match = (_PAGE_ID if role == "page" else _API_ID).search(url)
    return int(match.group(1)) if match else None


def observe(article_id: int, captures: Iterable[Any], errors: Iterable[Any], images: Iterable[str] = ()) -> Observation:
    """Page and API exchanges of one fetch as one observation; images (`images`: their URLs) do not count.

    Moved: a page or API answer from another article's URL (a redirect was followed). Gone: the page (or
    the API of an article without page) answered 404/410. Unreachable: a part without answer, with any
    other status, or whose body could not be read. Otherwise content (200, or 304 confirming the archive).
    """
    captures = list(captures)
    parts = {c.role: c for c in captures if c.role in ("page", "api")}
    for role in ("page", "api"):
        part = parts.get(role)
        if part is not None and part.status in OK_STATUSES:
            target = _target_id(part.url, role)
            if target is not None and target != article_id:
                return Observation(REDIRECTED, part.url)
    main = parts.get("page") or parts.get("api")
    if main is not None and main.status in GONE_STATUSES:
        return Observation(GONE)
    skip = set(images) | {c.url for c in captures if c.role == "image"}
    broken = any(e.url not in skip and not e.reason.startswith(("HTTP 404", "HTTP 410")) for e in errors)
    if not parts or broken or any(c.status not in OK_STATUSES | GONE_STATUSES for c in parts.values()):
        return Observation(FAILED)
    return Observation(CONTENT)


def classify(previous: Previous | None, seen: Observation, digests: Mapping[str, str]) -> Change:
    """The recheck's kind from the last version and this observation.

    `previous` None: an article archived (with content) before the history existed; its content becomes the
    baseline, and a 404/410 or a redirect is still a removal or a move.
    """
    if seen.outcome == FAILED:
        return Change(UNREACHABLE)
    if seen.outcome == GONE:
        return Change(UNCHANGED if previous is not None and previous.observed == GONE else REMOVED)
    if seen.outcome == REDIRECTED:
        same = previous is not None and previous.observed == REDIRECTED and previous.moved_to == seen.moved_to
        return Change(UNCHANGED if same else MOVED, moved_to=seen.moved_to)
    if previous is None:  # archived before the history existed: this fetch becomes its baseline
        return Change(UNCHANGED)
    fields = list(changed_fields(previous.digests, digests))
    if previous.observed in (GONE, REDIRECTED):
        return Change(RESTORED, fields)
    return Change(EDITED, fields) if fields else Change(UNCHANGED)
