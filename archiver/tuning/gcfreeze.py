"""Keeps the objects alive when the spider opens out of Python's garbage collector for the rest of the crawl.

Modules, settings and components live as long as the crawl does, yet every full collection walks them all, and
while it runs no response is read. `gc.freeze()` moves them to a permanent generation, so collections walk only
what the crawl itself allocates. Off (`ARCHIVER_GC_FREEZE=False`): Python's collector as it comes.
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
    """Extension: `gc.freeze()` once the spider is open (`ARCHIVER_GC_FREEZE`)."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> GcFreeze:
        if not config.get(crawler.settings, "ARCHIVER_GC_FREEZE"):
            raise NotConfigured("ARCHIVER_GC_FREEZE is off")
        extension = cls()
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        return extension

    def spider_opened(self, spider: Any) -> None:
        gc.collect()  # what is garbage now is freed, not frozen
        gc.freeze()
        logger.debug("gc: %d objects frozen", gc.get_freeze_count())
