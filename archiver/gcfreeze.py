"""Python's garbage collector tuned for a crawl: the objects alive when the spider opens frozen, fewer young passes.

Modules, settings and components live as long as the crawl does, yet every full collection walks them all: over
a crawl that is pauses of up to 130 ms in which no response is read (bench/RESULTS.md §11). `gc.freeze()` moves
them to a permanent generation, so collections walk only what the crawl itself allocates. A response allocates
thousands of objects, so the default young threshold (700) runs a pass every few responses; 5,000 cut the pauses
from 0.89 to 0.36 s per 2,000 articles at the same peak RSS (§14).
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from archiver import config

logger = logging.getLogger(__name__)


class GcFreeze:
    """Extension: `gc.freeze()` (`ARCHIVER_GC_FREEZE`) and the young threshold (`ARCHIVER_GC_GEN0_THRESHOLD`)."""

    def __init__(self, freeze: bool, gen0_threshold: int) -> None:
        self.freeze = freeze
        self.gen0_threshold = gen0_threshold
        self._thresholds: tuple[int, int, int] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> GcFreeze:
        freeze = bool(config.get(crawler.settings, "ARCHIVER_GC_FREEZE"))
        threshold = int(config.get(crawler.settings, "ARCHIVER_GC_GEN0_THRESHOLD") or 0)
        if threshold < 0:
            raise ValueError(f"ARCHIVER_GC_GEN0_THRESHOLD must be 0 (Python's own) or more, not {threshold}")
        if not freeze and not threshold:
            raise NotConfigured("ARCHIVER_GC_FREEZE is off and ARCHIVER_GC_GEN0_THRESHOLD is 0")
        extension = cls(freeze, threshold)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_opened(self, spider: Any) -> None:
        if self.gen0_threshold:
            self._thresholds = gc.get_threshold()
            gc.set_threshold(self.gen0_threshold, *self._thresholds[1:])
        if self.freeze:
            gc.collect()  # what is garbage now is freed, not frozen
            gc.freeze()
            logger.debug("gc: %d objects frozen", gc.get_freeze_count())

    def spider_closed(self, spider: Any) -> None:
        """Give the process its thresholds back (another crawl may run in it)."""
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None
