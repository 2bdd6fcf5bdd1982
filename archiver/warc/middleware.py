"""The WARC capture as a downloader middleware (priority 950: it sees each response before Scrapy decodes it)."""

from __future__ import annotations

import logging

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Request, Response

from archiver.config import get
from archiver.run.outage import stop_if_disk_full
from archiver.tuning import decodeonce
from archiver.tuning.eventloop import after_pending_io
from archiver.warc.extension import WarcWriterExtension

logger = logging.getLogger(__name__)

# request.meta key: why the exchange could not be written to a WARC file (a write error, the digest index failing):
# the response reaches the spider, but as a loss, never as an archived capture.
CAPTURE_ERROR = "warc_capture_error"
# A body from this size on (a page, not an image or an API answer) takes long enough to capture that the ready
# sockets also go first between the capture's two halves.
LONG_BODY = 32 * 1024


class WarcCaptureMiddleware:
    """Captures each response (still content-encoded) and names its record in `request.meta["warc_capture"]`."""

    def __init__(self, archive: WarcWriterExtension, *, yields: bool = True, decode_once: bool = True) -> None:
        self.archive = archive
        self.yields = yields  # ARCHIVER_CAPTURE_YIELDS
        self.decode_once = decode_once  # ARCHIVER_DECODE_ONCE

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcCaptureMiddleware:
        settings = crawler.settings
        if not get(settings, "ARCHIVER_WARC_ENABLED"):
            raise NotConfigured("ARCHIVER_WARC_ENABLED is off")
        archive = crawler.get_extension(WarcWriterExtension)
        if archive is None:
            raise NotConfigured("the WARC capture needs archiver.warc.extension.WarcWriterExtension in EXTENSIONS")
        yields, decode_once = get(settings, "ARCHIVER_CAPTURE_YIELDS"), get(settings, "ARCHIVER_DECODE_ONCE")
        return cls(archive, yields=yields, decode_once=decode_once)

    async def process_response(self, request: Request, response: Response) -> Response:
        request.meta.pop(CAPTURE_ERROR, None)  # a redirect's request copies its meta
        request.meta.pop("warc_capture", None)
        decodeonce.withdraw(request)
        try:
            if self.yields:  # the sockets that are ready go first, before the capture
                await after_pending_io()
            prepared = self.archive.prepare(request, response)
            if prepared is None:
                return response
            if self.yields and len(response.body) >= LONG_BODY:  # and before a long body's second half
                await after_pending_io()
            captured = self.archive.write(prepared)
        except Exception as exc:
            self.archive.stats.inc_value("warc/capture_errors")
            reason = capture_failure(exc)
            logger.error("WARC capture of %s failed: %s", request.url, reason)
            request.meta[CAPTURE_ERROR] = reason
            stop_if_disk_full(self.archive.crawler, exc, self.archive.directory)
            return response
        request.meta["warc_capture"] = captured.location
        if self.decode_once and captured.decoded_body is not None:
            decodeonce.offer(request, response.body, captured.decoded_body)
        return response


def capture_failure(exc: BaseException) -> str:
    """The reason an item gives for an exchange that is not in a WARC file: `WARC write failed: <error>`."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (
        f"WARC write failed: {type(exc).__name__}: {text}"[:300] if text else f"WARC write failed: {type(exc).__name__}"
    )
