"""Politeness: retries that wait (Retry-After on 429 and 503, exponential backoff otherwise); robots.txt obeyed."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares import robotstxt
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.http import Response

from archiver import config

logger = logging.getLogger(__name__)


def retry_after_seconds(value: bytes | str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date), None when absent or unreadable."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_seconds(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff for the n-th retry (1-based), capped."""
    return min(cap, base * 2 ** max(0, attempt - 1))


class WaitingRetryMiddleware(RetryMiddleware):
    """Scrapy's RetryMiddleware, but a retry waits: Retry-After when the server names it, else backoff."""

    @classmethod
    def from_crawler(cls, crawler):  # type: ignore[no-untyped-def]
        mw = super().from_crawler(crawler)
        mw.base = float(config.get(crawler.settings, "ARCHIVER_RETRY_BACKOFF"))
        mw.cap = float(config.get(crawler.settings, "ARCHIVER_RETRY_WAIT_MAX"))
        return mw

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        result = super().process_response(request, response)
        if isinstance(result, Request):
            await self._wait(result, retry_after_seconds(response.headers.get("Retry-After")), response.status)
        return result

    async def process_exception(self, request: Request, exception: Exception) -> Request | Response | None:
        result = super().process_exception(request, exception)
        if isinstance(result, Request):
            await self._wait(result, None, type(exception).__name__)
        return result

    async def _wait(self, retry: Request, asked: float | None, why: object) -> None:
        attempt = int(retry.meta.get("retry_times", 1))
        delay = min(self.cap, asked) if asked is not None else backoff_seconds(attempt, self.base, self.cap)
        if delay > 0:
            logger.info("retry %d of %s in %.1fs (%s)", attempt, retry.url, delay, why)
            self.crawler.stats.inc_value("archiver/retry/waited_seconds", int(delay))
            await asyncio.sleep(delay)


def robots_error_line(record: logging.LogRecord) -> bool:
    """Log filter: a robots.txt that could not be fetched is one line naming the host and why, not a traceback."""
    if record.exc_info and str(record.msg).startswith("Error downloading"):
        exc = record.exc_info[1]
        request = record.args.get("request") if isinstance(record.args, dict) else None
        host = urlsplit(request.url).netloc if isinstance(request, Request) else "?"
        record.msg = "robots.txt of %s could not be fetched (%s: %s); its URLs are fetched as if allowed"
        record.args = (host, type(exc).__name__, exc)
        record.exc_info = record.exc_text = None
    return True


class RobotsTxtMiddleware(robotstxt.RobotsTxtMiddleware):
    """Scrapy's robots.txt middleware, with `robots_error_line` on its logger."""

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        robotstxt.logger.addFilter(robots_error_line)  # the same function: added once per process
