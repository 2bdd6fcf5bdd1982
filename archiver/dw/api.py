"""Structured fields of an api.dw.com detail response (`/api/detail/article/<id>`, also video/gallery).

Pure: bytes in, `ApiArticle` out. Anything that is not a DW detail object within the size and nesting limits
raises `ApiError(source, reason)`; no other exception escapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from archiver.dw.script import chinese_script
from archiver.errors import ArchiverError
from archiver.timefmt import normalize_iso

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_DEPTH",
    "ApiArticle",
    "ApiError",
    "ApiImage",
    "parse_article_json",
]

DEFAULT_MAX_BYTES = 5 * 1024 * 1024  # real article details are 5-60 KB
DEFAULT_MAX_DEPTH = 64  # real ones nest 6 deep
CHINESE_LANGUAGE_ID = 4
REF_TYPES = ("ArticleRef", "CommentRef")


class ApiError(ArchiverError, ValueError):
    """An API response that cannot be read as a DW detail object; `source` names it, `reason` says why."""

    @property
    def source(self) -> str | int | None:
        return self.subject


class ApiImage(NamedTuple):
    """An image of the article: its largest static.dw.com rendition and caption."""

    url: str
    caption: str | None = None


@dataclass(frozen=True, slots=True)
class ApiArticle:
    """The fields of a detail response that the archive keeps."""

    id: int
    type: str | None
    language_id: int | None
    name: str | None
    teaser: str | None
    text: str | None
    category: str | None
    permalink: str | None
    display_date: str | None  # ISO 8601 UTC, `Z`
    references: tuple[int, ...]  # ArticleRef/CommentRef ids: body links first, then referenceGroups
    images: tuple[ApiImage, ...]  # mainContent first, then body images
    language: str | None  # zh-Hans / zh-Hant for Chinese (languageId 4), else None


def parse_article_json(
    data: bytes | str,
    source: str | int | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> ApiArticle:
    """Parse a detail response; `source` (URL or id) names it in errors."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if not isinstance(raw, bytes | bytearray):
        raise ApiError(source, f"expected bytes, got {type(data).__name__}")
    if len(raw) > max_bytes:
        raise ApiError(source, f"too large: {len(raw)} bytes > {max_bytes}")
    if not raw.strip():
        raise ApiError(source, "empty body")
    try:
        doc = json.loads(bytes(raw).decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ApiError(source, f"not UTF-8 at byte {exc.start}") from None
    except RecursionError:
        raise ApiError(source, f"too deeply nested (> {max_depth} levels)") from None
    except ValueError as exc:  # JSONDecodeError
        raise ApiError(source, f"invalid JSON: {exc}") from None
    depth = _depth(doc, max_depth)
    if depth > max_depth:
        raise ApiError(source, f"too deeply nested (> {max_depth} levels)")
    if not isinstance(doc, dict):
        raise ApiError(source, f"expected a JSON object, got {_kind(doc)}")
    return _article(doc, source)


def _article(doc: dict[str, Any], source: str | int | None) -> ApiArticle:
    fields = _Fields(doc, source)
    article_id = fields.integer("id", required=True)
    name, teaser, text = fields.string("name"), fields.string("teaser"), fields.string("text")
    language_id = fields.integer("languageId")
    display_date = fields.string("displayDate")
    body = fields.array("body")
    main = fields.obj("mainContent")
    groups = fields.array("referenceGroups")

    references = list(_body_references(body))
    references += [r for group in groups if isinstance(group, dict) for r in _group_references(group)]
    images = [img for img in (_image(main),) if img]
    images += [img for element in body if (img := _image(_content(element)))]
    language = None
    if language_id == CHINESE_LANGUAGE_ID:
        language = chinese_script(" ".join(t for t in (name, teaser, text) if t)) or "zh-Hans"
    return ApiArticle(
        id=article_id,  # type: ignore[arg-type]  # required=True
        type=fields.string("type"),
        language_id=language_id,
        name=name.strip() if name else name,
        teaser=teaser.strip() if teaser else teaser,
        text=text.strip() if text else text,
        category=fields.string("categoryName"),
        permalink=fields.string("permaLink"),
        display_date=normalize_iso(display_date) if display_date else None,
        references=tuple(dict.fromkeys(references)),
        images=tuple(dict.fromkeys(images)),
        language=language,
    )


class _Fields:
    """Typed access to the top-level fields; a present field of the wrong type is an ApiError."""

    def __init__(self, doc: dict[str, Any], source: str | int | None) -> None:
        self.doc, self.source = doc, source

    def _get(self, key: str, types: tuple[type, ...], label: str) -> Any:
        value = self.doc.get(key)
        if value is None or (isinstance(value, types) and not isinstance(value, bool)):
            return value
        raise ApiError(self.source, f"field {key!r}: expected {label}, got {_kind(value)}")

    def integer(self, key: str, *, required: bool = False) -> int | None:
        value = self.doc.get(key)
        if isinstance(value, str) and value.isascii() and value.isdigit():
            value = int(value)
        elif value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise ApiError(self.source, f"field {key!r}: expected an integer, got {_kind(value)}")
        if required and value is None:
            raise ApiError(self.source, f"field {key!r} missing")
        return value

    def string(self, key: str) -> str | None:
        return self._get(key, (str,), "a string")

    def array(self, key: str) -> list[Any]:
        return self._get(key, (list,), "an array") or []

    def obj(self, key: str) -> dict[str, Any] | None:
        return self._get(key, (dict,), "an object")


def _kind(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )


def _depth(doc: object, limit: int) -> int:
    """Nesting depth of a parsed JSON value, iteratively; stops counting past `limit`."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, level)
            if level > limit:
                return level
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


_A_TAG = re.compile(r"<a\b[^>]*>", re.IGNORECASE)
_REL = re.compile(r"""\brel\s*=\s*["']?([A-Za-z]+)""", re.IGNORECASE)
_HREF = re.compile(r"""\bhref\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_REF_ID = re.compile(r"/api/detail/(?:article|comment)/(\d+)|/a-(\d+)(?:$|[/?#])")


def _content(element: object) -> dict[str, Any] | None:
    """A body element's payload: `{"content": {...}}` as served, or the object itself."""
    if not isinstance(element, dict):
        return None
    inner = element.get("content")
    return inner if isinstance(inner, dict) else element


def _body_references(body: list[Any]) -> Iterator[int]:
    for element in body:
        content = _content(element)
        if content is None or not isinstance(content.get("text"), str):
            continue
        for tag in _A_TAG.findall(content["text"]):
            rel, href = _REL.search(tag), _HREF.search(tag)
            if rel and rel.group(1) in REF_TYPES and href and (ref := _ref_id(href.group(1))):
                yield ref


def _group_references(group: dict[str, Any]) -> Iterator[int]:
    items = group.get("items")
    for entry in items if isinstance(items, list) else ():
        if not isinstance(entry, dict):
            continue
        reference = entry.get("reference") if isinstance(entry.get("reference"), dict) else entry
        if reference.get("type") not in REF_TYPES:
            continue
        ref_id = reference.get("id")
        if isinstance(ref_id, int) and not isinstance(ref_id, bool) and ref_id > 0:
            yield ref_id
        elif isinstance(reference.get("url"), str) and (ref := _ref_id(reference["url"])):
            yield ref


def _ref_id(href: str) -> int | None:
    match = _REF_ID.search(href)
    return int(match.group(1) or match.group(2)) if match else None


def _image(content: dict[str, Any] | None) -> ApiImage | None:
    """The largest rendition of an Image object (a Video's preview image counts)."""
    if not content:
        return None
    if content.get("type") != "Image" and isinstance(content.get("previewImage"), dict):
        content = content["previewImage"]
    if content.get("type") != "Image" or not isinstance(content.get("sizes"), list):
        return None
    sizes = [s for s in content["sizes"] if isinstance(s, dict) and isinstance(s.get("url"), str)]
    if not sizes:
        return None
    widest = max(sizes, key=lambda s: s["width"] if isinstance(s.get("width"), int | float) else 0)
    caption = next(
        (c.strip() for c in (content.get("description"), content.get("name")) if isinstance(c, str) and c.strip()),
        None,
    )
    return ApiImage(url=widest["url"], caption=caption)
