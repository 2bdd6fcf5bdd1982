"""A Redis dupefilter whose memory is bounded: one expiring key per request fingerprint.

scrapy-redis's own filter is a set that never shrinks. Here a request counts as seen for
`ARCHIVER_DUPEFILTER_TTL` seconds after it was first scheduled by any worker, so Redis holds only
the fingerprints of one window, and a periodic crawl fetches a page again in a later window.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from scrapy import Request
from scrapy.dupefilters import BaseDupeFilter

from archiver import config
from archiver.distributed.connection import Keys, client, keys

logger = logging.getLogger(__name__)


class ExpiringDupeFilter(BaseDupeFilter):
    """Seen = a `<prefix>:seen:<fingerprint>` key exists; keys expire after the TTL."""

    def __init__(self, conn: redis.Redis, keys: Keys, fingerprinter: Any, ttl: float, debug: bool = False) -> None:
        self.conn = conn
        self.keys = keys
        self.fingerprinter = fingerprinter
        self.ttl_ms = int(ttl * 1000)
        self.debug = debug
        self._logged = False

    @classmethod
    def from_crawler(cls, crawler: Any) -> ExpiringDupeFilter:
        settings = crawler.settings
        ttl = float(config.get(settings, "ARCHIVER_DUPEFILTER_TTL"))
        debug = settings.getbool("DUPEFILTER_DEBUG")
        return cls(client(crawler.settings), keys(settings), crawler.request_fingerprinter, ttl, debug)

    @classmethod
    def from_spider(cls, spider: Any) -> ExpiringDupeFilter:
        """How the scrapy-redis scheduler builds its dupefilter."""
        return cls.from_crawler(spider.crawler)

    def fingerprint(self, request: Request) -> str:
        """The request's fingerprint (Scrapy's `REQUEST_FINGERPRINTER_CLASS`) in hex."""
        return self.fingerprinter.fingerprint(request).hex()

    def request_seen(self, request: Request) -> bool:
        """Mark the request seen for the TTL; True when some worker had already marked it."""
        key = self.keys.seen(self.fingerprint(request))
        return not self.conn.set(key, "", nx=True, px=self.ttl_ms or None)

    def close(self, reason: str = "") -> None:
        """Nothing to do: the fingerprints are shared and expire on their own."""

    def clear(self) -> None:
        """Forget every fingerprint under the prefix (scrapy-redis calls it when it does not persist)."""
        for key in self.conn.scan_iter(match=self.keys.seen("*"), count=1000):
            self.conn.delete(key)

    def log(self, request: Request, spider: Any) -> None:
        if self.debug:
            logger.debug("Filtered duplicate request: %(request)s", {"request": request})
        elif not self._logged:
            logger.debug(
                "Filtered duplicate request %(request)s - no more duplicates will be shown", {"request": request}
            )
            self._logged = True
