"""The JSON Lines exporter of the item files: Scrapy's, and a line that cannot be written is accounted for."""

from __future__ import annotations

import logging
from typing import Any

from scrapy import exporters

from archiver import signals

logger = logging.getLogger(__name__)


class JsonLinesItemExporter(exporters.JsonLinesItemExporter):
    """Scrapy's JSON Lines exporter. An item that cannot be written (a full disk) is one error line and
    `archiver.signals.item_not_written`, so its article is not counted done and the run stops."""

    crawler: Any = None

    @classmethod
    def from_crawler(cls, crawler: Any, file: Any, **kwargs: Any) -> JsonLinesItemExporter:
        exporter = cls(file, **kwargs)
        exporter.crawler = crawler
        return exporter

    def export_item(self, item: Any) -> None:
        try:
            super().export_item(item)
        except OSError as exc:
            if self.crawler is None:
                raise
            logger.error("item of article %s not written: %s", getattr(item, "article_id", "?"), exc)
            self.crawler.signals.send_catch_log(signals.item_not_written, item=item, error=exc)
