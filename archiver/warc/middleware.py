"""Downloader middlewares around the WARC capture: the capture itself (priority 950, before Scrapy decodes the
response) and Scrapy's HttpCompressionMiddleware (590), which takes the body the capture already decoded."""

from __future__ import annotations

import logging
from typing import Any

from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares import httpcompression
from scrapy.exceptions import NotConfigured
from scrapy.http import Request, Response, TextResponse
from scrapy.responsetypes import responsetypes

from archiver.config import get
from archiver.run.outage import stop_if_disk_full
from archiver.tuning.eventloop import after_pending_io
from archiver.warc.extension import WarcWriterExtension

logger = logging.getLogger(__name__)

# request.meta key: (the content-encoded body as captured, that body decoded), for HttpCompressionMiddleware.
DECODED_BODY = "_archiver_decoded_body"
# request.meta key: why the exchange could not be written to a WARC file (a write error, the digest index failing):
# the response reaches the spider, but as a loss, never as an archived capture.
CAPTURE_ERROR = "warc_capture_error"
# Bodies from this size on (a page: ~100 KB gzip-encoded, ~260 KB decoded) take over a millisecond to capture, in two
# halves; a shorter one (an image, an API answer) takes 0.3-0.8 ms, in one.
LONG_BODY = 32 * 1024


class WarcCaptureMiddleware:
    """Captures each response (still content-encoded) and names its record in `request.meta["warc_capture"]`."""

    def __init__(self, archive: WarcWriterExtension) -> None:
        self.archive = archive

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> WarcCaptureMiddleware:
        if not get(crawler.settings, "ARCHIVER_WARC_ENABLED"):
            raise NotConfigured("ARCHIVER_WARC_ENABLED is off")
        archive = crawler.get_extension(WarcWriterExtension)
        if archive is None:
            raise NotConfigured("the WARC capture needs archiver.warc.extension.WarcWriterExtension in EXTENSIONS")
        return cls(archive)

    async def process_response(self, request: Request, response: Response) -> Response:
        request.meta.pop(DECODED_BODY, None)  # a redirect's request copies its meta
        request.meta.pop(CAPTURE_ERROR, None)
        request.meta.pop("warc_capture", None)
        # The sockets that are ready go first, before the capture and, for a long body, before its second half.
        long_body = len(response.body) >= LONG_BODY
        try:
            await after_pending_io()
            prepared = self.archive.prepare(request, response)
            if prepared is None:
                return response
            if long_body:
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
        if captured.decoded_body is not None:
            request.meta[DECODED_BODY] = (response.body, captured.decoded_body)
        return response


def capture_failure(exc: BaseException) -> str:
    """The reason an item gives for an exchange that is not in a WARC file: `WARC write failed: <error>`."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return (
        f"WARC write failed: {type(exc).__name__}: {text}"[:300] if text else f"WARC write failed: {type(exc).__name__}"
    )


class HttpCompressionMiddleware(httpcompression.HttpCompressionMiddleware):
    """Scrapy's decoder, which takes the body the WARC capture decoded (for its outlinks) instead of decoding it
    again: a page or API body is inflated once per crawl, not twice."""

    def process_response(self, request: Request, response: Response, spider: Any = None) -> Request | Response:
        raw, decoded = request.meta.pop(DECODED_BODY, (None, None))
        if decoded is None or raw is not response.body or request.method == "HEAD":
            return super().process_response(request, response)
        # What the parent does after decoding, for a body the capture decoded whole with gzip/deflate only.
        warn_size = request.meta.get("download_warnsize", self._warn_size)
        if len(response.body) < warn_size <= len(decoded):
            logger.warning(
                f"{response} body size after decompression ({len(decoded)} B) is larger than the "
                f"download warning size ({warn_size} B)."
            )
        if self.stats:
            self.stats.inc_value("httpcompression/response_bytes", len(decoded))
            self.stats.inc_value("httpcompression/response_count")
            self.stats.inc_value("httpcompression/decoded_by_capture")
        # The class is chosen from the headers without Content-Encoding, so its Content-Type decides; Scrapy asks
        # with Content-Encoding still set, and so sniffs the body's first 5 KB (~0.1 ms a page) for it instead.
        headers = response.headers.copy()
        del headers[b"Content-Encoding"]
        respcls = responsetypes.from_args(headers=headers, url=response.url, body=decoded)
        kwargs: dict[str, Any] = {"body": decoded, "headers": headers}
        if issubclass(respcls, TextResponse):
            kwargs["encoding"] = None
        return response.replace(cls=respcls, **kwargs)
