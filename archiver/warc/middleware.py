"""Downloader middleware that writes every exchange to WARC before Scrapy decodes it (priority 950)."""

from __future__ import annotations

import logging

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Request, Response

from archiver.config import get
from archiver.warc.extension import WarcWriterExtension

logger = logging.getLogger(__name__)


class WarcCaptureMiddleware:
    """Captures each response (still content-encoded) and names its record in `request.meta["warc_capture"]`."""

    def __init__(self, archive: WarcWriterExtension) -> None:
        self.archive = archive

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcCaptureMiddleware:
        if not get(crawler.settings, "ARCHIVER_WARC_ENABLED"):
            raise NotConfigured("ARCHIVER_WARC_ENABLED is off")
        return cls(WarcWriterExtension.from_crawler(crawler))

    def process_response(self, request: Request, response: Response) -> Response:
        try:
            capture = self.archive.capture(request, response)
        except Exception:
            self.archive.stats.inc_value("warc/capture_errors")
            logger.exception("WARC capture of %s failed", request.url)
            return response
        if capture is not None:
            request.meta["warc_capture"] = capture
        return response
