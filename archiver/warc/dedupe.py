"""The digest index revisits need: earlier captures by URL and by URL + payload digest.

`CaptureIndex` is what the capture middleware calls; `MemoryCaptureIndex` serves one run, the state
(archiver/state/store.py) serves every run through an adapter named by ARCHIVER_WARC_CAPTURE_INDEX.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from archiver.warc.records import PriorCapture


@dataclass(frozen=True, slots=True)
class CaptureRef:
    """A response or revisit record just written; only full 200 responses are referred to later."""

    url: str
    record_id: str
    fetched_at: str  # the record's WARC-Date, as written
    payload_digest: str
    warc_file: str
    offset: int
    length: int
    status: int
    record_type: str = "response"  # or "revisit"
    truncated: bool = False
    etag: str | None = None
    last_modified: str | None = None

    @property
    def referable(self) -> bool:
        """Whether a revisit may refer to this record: a complete 200 response."""
        return self.record_type == "response" and self.status == 200 and not self.truncated


@runtime_checkable
class CaptureIndex(Protocol):
    """Earlier captures; rows may be objects or mappings with record_id, url, fetched_at, payload_digest."""

    def last_capture(self, url: str) -> Any | None:
        """The newest complete 200 response record of a URL, or None."""

    def find_by_digest(self, url: str, payload_digest: str) -> Any | None:
        """A complete 200 response record of a URL with this payload digest, or None."""

    def add_capture(self, ref: CaptureRef) -> None:
        """Remember a record just written (every response and revisit; lookups return referable ones only)."""


class MemoryCaptureIndex:
    """CaptureIndex for one process: newest capture per URL and first capture per (URL, digest)."""

    def __init__(self) -> None:
        self._last: dict[str, CaptureRef] = {}
        self._by_digest: dict[tuple[str, str], CaptureRef] = {}

    def last_capture(self, url: str) -> CaptureRef | None:
        return self._last.get(url)

    def find_by_digest(self, url: str, payload_digest: str) -> CaptureRef | None:
        return self._by_digest.get((url, payload_digest))

    def add_capture(self, ref: CaptureRef) -> None:
        if not ref.referable:
            return
        self._last[ref.url] = ref
        self._by_digest.setdefault((ref.url, ref.payload_digest), ref)


def memory_index(crawler: Any = None) -> MemoryCaptureIndex:
    """Factory for ARCHIVER_WARC_CAPTURE_INDEX: a fresh in-memory index."""
    return MemoryCaptureIndex()


def row_value(row: Any, name: str) -> Any:
    """A field of an index row: an object with attributes, or a mapping."""
    if isinstance(row, dict):
        return row.get(name)
    try:
        return row[name]
    except (TypeError, KeyError, IndexError):
        return getattr(row, name, None)


def as_prior(row: Any) -> PriorCapture | None:
    """A PriorCapture from an index row (object with attributes, or mapping); None if it lacks a field."""
    if row is None:
        return None
    record_id, url, fetched_at = (row_value(row, name) for name in ("record_id", "url", "fetched_at"))
    if not (record_id and url and fetched_at):
        return None
    return PriorCapture(
        record_id=record_id, url=url, fetched_at=fetched_at, payload_digest=row_value(row, "payload_digest")
    )
