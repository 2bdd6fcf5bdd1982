"""Conditional rechecks: send the validators of a URL's last capture, so unchanged content answers 304."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from scrapy import Request
from scrapy.exceptions import NotConfigured

from archiver import config
from archiver.state.store import State

logger = logging.getLogger(__name__)

# request.meta keys: set CONDITIONAL_META to False to fetch unconditionally; the middleware puts the
# capture the validators came from (a CaptureRow as dict) under PREVIOUS_META for the revisit record.
CONDITIONAL_META = "archiver_conditional"
PREVIOUS_META = "archiver_previous_capture"


class ConditionalRequestMiddleware:
    """Downloader middleware (before the WARC capture) adding If-None-Match / If-Modified-Since.

    The validators come from the URL's latest 200/304 capture in the state. A request that already
    carries either header, is not a GET, or has `meta["archiver_conditional"] = False` is left alone.
    304 is added to the request's allowed statuses so the callback sees it and can write the revisit.
    """

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        settings = crawler.settings
        self.allow_all = settings.getbool("HTTPERROR_ALLOW_ALL")
        self.allowed_codes = settings.getlist("HTTPERROR_ALLOWED_CODES")

    @classmethod
    def from_crawler(cls, crawler: Any) -> ConditionalRequestMiddleware:
        if not config.get(crawler.settings, "ARCHIVER_CONDITIONAL_REQUESTS"):
            raise NotConfigured
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        """Add the validators of the URL's last capture, if it has any."""
        if request.meta.get(CONDITIONAL_META) is False or request.method != "GET":
            return
        previous = request.meta.get(PREVIOUS_META)
        if previous is not None and previous.get("url") != request.url:
            # A redirect copied our validators of another URL: they say nothing about this one.
            request.headers.pop(b"If-None-Match", None)
            request.headers.pop(b"If-Modified-Since", None)
            del request.meta[PREVIOUS_META]
        if b"If-None-Match" in request.headers or b"If-Modified-Since" in request.headers:
            return
        capture = State.for_crawler(self.crawler).last_capture(request.url, statuses=(200, 304))
        if capture is None or not (capture.etag or capture.last_modified):
            return
        if capture.etag:
            request.headers[b"If-None-Match"] = capture.etag
        if capture.last_modified:
            request.headers[b"If-Modified-Since"] = capture.last_modified
        request.meta[PREVIOUS_META] = dataclasses.asdict(capture)
        self._allow_304(request)
        self.stats.inc_value("archiver/conditional/sent")

    def process_response(self, request: Request, response: Any) -> Any:
        """Count the 304 answers to conditional requests."""
        if response.status == 304 and PREVIOUS_META in request.meta:
            self.stats.inc_value("archiver/conditional/not_modified")
        return response

    def _allow_304(self, request: Request) -> None:
        """Let the 304 through HttpErrorMiddleware, keeping the statuses the request or spider allowed."""
        meta = request.meta
        if meta.get("handle_httpstatus_all") or self.allow_all:
            return
        allowed = meta.get("handle_httpstatus_list")
        if allowed is None:
            spider = self.crawler.spider
            allowed = getattr(spider, "handle_httpstatus_list", None) or self.allowed_codes
        if 304 not in allowed:
            meta["handle_httpstatus_list"] = [*allowed, 304]
