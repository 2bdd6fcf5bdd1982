"""The digest index shared through Redis, so a revisit written by one worker can name a capture made by another.

The `CaptureIndex` of archiver/warc/dedupe.py (rows are `CaptureRow`), named by ARCHIVER_WARC_CAPTURE_INDEX
(`archiver.distributed.digests:capture_index`). Bounded: one string per URL, JSON of its newest full response per
HTTP status (`s`) and its first per payload digest (`d`), both naming rows (`r`) by record id; rows no longer named
are dropped. The key expires `ARCHIVER_DIGEST_TTL` s after its last capture (0 = never).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import redis

from archiver import config
from archiver.distributed.connection import Keys, client, keys
from archiver.state.store import CaptureRow

# KEYS: the URL's key; ARGV: row JSON (no url), record id, fetched_at, status or '', digest or '', ttl ms.
_ADD = """
local raw = redis.call('GET', KEYS[1])
local e = raw and cjson.decode(raw) or {r = {}, s = {}, d = {}}
local rid, changed = ARGV[2], false
if ARGV[4] ~= '' then
  local cur = e.s[ARGV[4]]
  if not cur or e.r[cur]['fetched_at'] <= ARGV[3] then e.s[ARGV[4]] = rid; changed = true end
end
if ARGV[5] ~= '' and not e.d[ARGV[5]] then e.d[ARGV[5]] = rid; changed = true end
if changed then
  e.r[rid] = cjson.decode(ARGV[1])
  local named = {}
  for _, v in pairs(e.s) do named[v] = true end
  for _, v in pairs(e.d) do named[v] = true end
  for k in pairs(e.r) do if not named[k] then e.r[k] = nil end end
  redis.call('SET', KEYS[1], cjson.encode(e), 'KEEPTTL')
end
if tonumber(ARGV[6]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[6]) end
return changed and 1 or 0
"""

# Row fields not stored: the URL is the key's (96 bits of hash: no collision in any real archive), the record id
# names the row, only full responses are indexed.
_IMPLIED = ("url", "record_id", "record_type")


def url_hash(url: str) -> str:
    """A short stable name for a URL's hash key (96 bits of BLAKE2b)."""
    return hashlib.blake2b(url.encode("utf-8"), digest_size=12).hexdigest()


class RedisDigestIndex:
    """Where earlier captures of a URL are, for every worker of every run."""

    def __init__(self, conn: redis.Redis, keys: Keys, ttl: float = 0, run_id: str | None = None) -> None:
        self.conn = conn
        self.run_id = run_id
        self.keys = keys
        self.ttl_ms = int(ttl * 1000)
        self._add = conn.register_script(_ADD)

    @classmethod
    def from_crawler(cls, crawler: Any) -> RedisDigestIndex:
        settings = crawler.settings
        ttl = float(config.get(settings, "ARCHIVER_DIGEST_TTL"))
        return cls(client(crawler.settings), keys(settings), ttl, settings.get("ARCHIVER_RUN_ID"))

    def _key(self, url: str) -> str:
        return self.keys.capture(url_hash(url))

    def _entry(self, url: str) -> dict[str, Any] | None:
        """The URL's stored entry, or None."""
        raw = self.conn.get(self._key(url))
        return json.loads(raw) if raw else None

    @staticmethod
    def _row(url: str, entry: dict[str, Any], record_id: str | None) -> CaptureRow | None:
        data = entry["r"].get(record_id) if record_id else None
        return None if data is None else CaptureRow(url=url, record_id=record_id, record_type="response", **data)

    def add_capture(self, ref: Any) -> None:
        """Remember a written record (a `CaptureRef` or `CaptureRow`); only full responses can be referred to."""
        self.add_captures([ref])

    def add_captures(self, refs: Iterable[Any]) -> None:
        """Remember many written records in one round trip."""
        pipe = self.conn.pipeline(transaction=False)
        for ref in refs:
            args = self._args(ref)
            if args is not None:
                self._add(keys=[self._key(ref.url)], args=args, client=pipe)
        pipe.execute()

    def _args(self, ref: Any) -> list[Any] | None:
        record_type = getattr(ref, "record_type", None) or "response"
        if record_type != "response":
            return None
        capture = CaptureRow.from_ref(ref, self.run_id)
        row = {k: v for k, v in asdict(capture).items() if v is not None and k not in _IMPLIED}
        return [
            json.dumps(row, ensure_ascii=False, separators=(",", ":")),
            capture.record_id or f"{capture.warc_file}@{capture.offset}",
            capture.fetched_at,
            "" if capture.status is None else str(capture.status),
            capture.payload_digest or "",
            self.ttl_ms,
        ]

    def last_capture(self, url: str, *, statuses: Iterable[int] | None = (200,)) -> CaptureRow | None:
        """The newest full response of `url` with one of `statuses` (None: any status), or None."""
        entry = self._entry(url)
        if entry is None:
            return None
        wanted = entry["s"].values() if statuses is None else (entry["s"].get(str(s)) for s in statuses)
        rows = [row for rid in wanted if (row := self._row(url, entry, rid)) is not None]
        return max(rows, key=lambda r: r.fetched_at) if rows else None

    def find_by_digest(self, url: str, payload_digest: str) -> CaptureRow | None:
        """The first full response of `url` with this payload digest (any worker, run and WARC file), or None."""
        entry = self._entry(url)
        return None if entry is None else self._row(url, entry, entry["d"].get(payload_digest))


def capture_index(crawler: Any) -> RedisDigestIndex:
    """Factory for ARCHIVER_WARC_CAPTURE_INDEX: the index every worker shares."""
    return RedisDigestIndex.from_crawler(crawler)
