"""The JSON Lines exporter of the item files: Scrapy's, and a line that cannot be written is accounted for."""

from __future__ import annotations

import dataclasses
import logging
from functools import cache
from typing import Any

from scrapy import exporters
from scrapy.utils.python import to_bytes

from archiver import config, signals

logger = logging.getLogger(__name__)


@cache
def _plain_dataclass(cls: type) -> bool:
    """Whether `cls` is a dataclass none of whose fields names a serializer (Scrapy's exporters would call it)."""
    return dataclasses.is_dataclass(cls) and not any(f.metadata.get("serializer") for f in dataclasses.fields(cls))


class JsonLinesItemExporter(exporters.JsonLinesItemExporter):
    """Scrapy's JSON Lines exporter. An item that cannot be written (a full disk) is one error line and
    `archiver.signals.item_not_written`, so its article is not counted done and the run stops.

    With `ARCHIVER_EXPORT_ASDICT` (docs/tuning.md) a dataclass item becomes one `dataclasses.asdict` before
    encoding, instead of an ItemAdapter for every nested part in the encoder's `default()`: the same line."""

    crawler: Any = None
    as_dict = False

    @classmethod
    def from_crawler(cls, crawler: Any, file: Any, **kwargs: Any) -> JsonLinesItemExporter:
        exporter = cls(file, **kwargs)
        exporter.crawler = crawler
        exporter.as_dict = bool(config.get(crawler.settings, "ARCHIVER_EXPORT_ASDICT"))
        return exporter

    def export_item(self, item: Any) -> None:
        try:
            if self.as_dict and self.fields_to_export is None and _plain_dataclass(type(item)):
                self.file.write(to_bytes(self.encoder.encode(dataclasses.asdict(item)) + "\n", self.encoding))
            else:
                super().export_item(item)
        except OSError as exc:
            if self.crawler is None:
                raise
            logger.error("item of article %s not written: %s", getattr(item, "article_id", "?"), exc)
            self.crawler.signals.send_catch_log(signals.item_not_written, item=item, error=exc)
