"""Each HTML and JSON body inflated once per crawl (`ARCHIVER_DECODE_ONCE`).

The WARC capture sees each response still content-encoded and inflates HTML and JSON bodies for their outlinks;
Scrapy's HttpCompressionMiddleware, further down the chain, would inflate the same bytes again. With the tweak on,
the capture leaves its decoded body in the request's meta (`offer`) and this subclass of Scrapy's middleware takes
it instead of decoding. Off: Scrapy's own middleware decodes every body, and the capture leaves nothing behind.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares import httpcompression
from scrapy.http import Request, Response, TextResponse
from scrapy.responsetypes import responsetypes

logger = logging.getLogger(__name__)

# request.meta key: (the content-encoded body as captured, that body decoded).
DECODED_BODY = "_archiver_decoded_body"
SCRAPY_DECODER = "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware"
DECODER = "archiver.tuning.decodeonce.HttpCompressionMiddleware"


def withdraw(request: Request) -> None:
    """Forget a body offered for an earlier response (a redirect's request copies its meta)."""
    request.meta.pop(DECODED_BODY, None)


def offer(request: Request, encoded: bytes, decoded: bytes) -> None:
    """Leave `decoded` for the decoder of the response whose body is `encoded` (the very object)."""
    request.meta[DECODED_BODY] = (encoded, decoded)


class HttpCompressionMiddleware(httpcompression.HttpCompressionMiddleware):
    """Scrapy's decoder, which takes the body the WARC capture decoded, when it decoded it exactly as Scrapy would
    (gzip or deflate, one whole stream), instead of decoding it again; any other body goes to Scrapy's code."""

    warn_size: int

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HttpCompressionMiddleware:
        middleware = super().from_crawler(crawler)
        middleware.warn_size = crawler.settings.getint("DOWNLOAD_WARNSIZE")
        return middleware

    def process_response(self, request: Request, response: Response, spider: Any = None) -> Request | Response:
        encoded, decoded = request.meta.pop(DECODED_BODY, (None, None))
        if decoded is None or encoded is not response.body or request.method == "HEAD":
            return super().process_response(request, response)
        # What Scrapy's process_response does once the body is decoded and no encoding is left.
        warn_size = request.meta.get("download_warnsize", self.warn_size)
        if len(response.body) < warn_size <= len(decoded):
            logger.warning(
                f"{response} body size after decompression ({len(decoded)} B) is larger than the "
                f"download warning size ({warn_size} B)."
            )
        response.headers["Content-Encoding"] = []
        if self.stats:
            self.stats.inc_value("httpcompression/response_bytes", len(decoded))
            self.stats.inc_value("httpcompression/response_count")
            self.stats.inc_value("httpcompression/decoded_by_capture")
        respcls = responsetypes.from_args(headers=response.headers, url=response.url, body=decoded)
        kwargs: dict[str, Any] = {"body": decoded}
        if issubclass(respcls, TextResponse):
            kwargs["encoding"] = None
        response = response.replace(cls=respcls, **kwargs)
        del response.headers["Content-Encoding"]
        return response
