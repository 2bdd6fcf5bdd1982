"""Runs `extract_page` in a process pool, off the reactor thread and on every core, for async Scrapy callbacks.

`await extractor.extract(body, url)` from a callback under the asyncio reactor. A worker that dies or a page
that takes longer than `ARCHIVER_EXTRACT_TIMEOUT` ends as `ExtractionFailed(url, reason)`, which the spider
records; the pool is then replaced, so later pages are extracted as usual.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler

from archiver import config
from archiver.errors import ArchiverError
from archiver.extract import PageText, extract_page
from archiver.textmatch import extract_and_compare

__all__ = ["ExtractionFailed", "Extractor"]

logger = logging.getLogger(__name__)
ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"


class ExtractionFailed(ArchiverError, RuntimeError):
    """A page could not be extracted: its worker died or it ran past the time limit; `url` names it."""

    @property
    def url(self) -> str:
        return self.subject


class Extractor:
    """A process pool of `workers` extraction processes, started on first use and shut down with the engine."""

    def __init__(
        self,
        workers: int | None = None,
        timeout: float | None = 60.0,
        func: Callable[[bytes | str, str], PageText] = extract_page,
    ) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.timeout = timeout or None
        self.func = func
        self._pool: ProcessPoolExecutor | None = None
        self._generation = 0  # bumped whenever a pool is replaced
        self._killed: set[int] = set()  # generations this object tore down itself (after a timeout)
        self._semaphore: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self.crawler: Crawler | None = None  # its stats count pages and failures, when built from a crawler
        self.closed = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Extractor:
        """Read `ARCHIVER_EXTRACT_WORKERS` / `ARCHIVER_EXTRACT_TIMEOUT`; close on `engine_stopped`."""
        settings = crawler.settings
        extractor = cls(
            workers=int(config.get(settings, "ARCHIVER_EXTRACT_WORKERS") or 0) or None,
            timeout=float(config.get(settings, "ARCHIVER_EXTRACT_TIMEOUT") or 0) or None,
        )
        extractor.crawler = crawler
        crawler.signals.connect(extractor.close, signal=signals.engine_stopped)
        return extractor

    def start(self) -> None:
        """Start all worker processes now (otherwise the first pages pay for it)."""
        pool = self._ensure_pool()
        list(pool.map(_ready, range(self.workers)))

    async def extract(self, html: bytes | str, url: str, feed_body: str | None = None) -> PageText:
        """`extract_page(html, url)` in a worker; `ExtractionFailed` if the worker dies or runs too long.

        With `feed_body`, the worker also scores the text against it (`PageText.agreement`), off the reactor.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            needs = f"Extractor.extract needs the asyncio reactor (TWISTED_REACTOR = {ASYNCIO_REACTOR})"
            raise RuntimeError(needs) from None
        async with self._slots():  # pages queue here, so the time limit runs from a page's start
            try:
                page = await self._extract(html, url, feed_body)
            except ExtractionFailed as exc:
                self._count("extractor/failed" + ("/timeout" if "timed out" in exc.reason else "/worker_died"))
                raise
            except Exception:  # raised by extract_page itself (ExtractError), passed on as it is
                self._count("extractor/failed/error")
                raise
        self._count("extractor/pages")
        return page

    def _count(self, key: str) -> None:
        if self.crawler is not None and self.crawler.stats is not None:
            self.crawler.stats.inc_value(key)

    async def _extract(self, html: bytes | str, url: str, feed_body: str | None) -> PageText:
        for attempt in (1, 2):
            generation = self._generation
            future = self._submit(html, url, feed_body)
            try:
                return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
            except TimeoutError:
                self._replace_pool(generation, kill=True)
                raise ExtractionFailed(url, f"timed out after {self.timeout:g} s") from None
            except BrokenProcessPool:
                if generation in self._killed and attempt == 1:
                    continue  # the pool was torn down for another page's timeout: try once more
                self._replace_pool(generation, kill=False)
                raise ExtractionFailed(url, "extraction worker process died") from None
        raise ExtractionFailed(url, "extraction pool was replaced twice")  # pragma: no cover

    def _slots(self) -> asyncio.Semaphore:
        """Pages in the pool at once: two per worker (one running, one ready), per event loop."""
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._semaphore[0] is not loop:
            self._semaphore = (loop, asyncio.Semaphore(2 * self.workers))
        return self._semaphore[1]

    def close(self, grace: float = 5.0) -> None:
        """Stop the workers: pending pages are cancelled, a page still running after `grace` seconds is killed."""
        self.closed = True
        if self._pool is None:
            return
        pool, self._pool = self._pool, None
        processes = _processes(pool)
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(grace)
            if process.is_alive():
                process.kill()
        logger.info("extraction workers stopped")

    def _submit(self, html: bytes | str, url: str, feed_body: str | None) -> Future[PageText]:
        if self.closed:
            raise ExtractionFailed(url, "extractor is closed")
        args = (self.func, html, url, feed_body)
        try:
            return self._ensure_pool().submit(extract_and_compare, *args)
        except BrokenProcessPool:
            self._replace_pool(self._generation, kill=False)
            return self._ensure_pool().submit(extract_and_compare, *args)

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: workers are forked from a clean server process, never from the reactor's threads
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["archiver.textmatch"])  # imports archiver.extract
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=context, initializer=exit_with, initargs=(os.getpid(),)
            )
        return self._pool

    def _replace_pool(self, generation: int, *, kill: bool) -> None:
        """Drop the pool of `generation` (killing its workers if `kill`); the next page starts a new one."""
        if generation != self._generation or self._pool is None:
            return
        pool, self._pool = self._pool, None
        self._generation += 1
        if kill:
            self._killed.add(generation)
            for process in _processes(pool):
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        logger.warning("extraction pool replaced (%s)", "page timed out" if kill else "worker died")


def exit_with(pid: int, interval: float = 1.0) -> None:
    """In a worker: exit once process `pid` is gone (a crawl killed with -9 leaves no workers behind)."""

    def watch() -> None:
        while True:
            time.sleep(interval)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:
                continue

    threading.Thread(target=watch, name="exit-with-crawl", daemon=True).start()


def _ready(_: Any) -> bool:
    return True


def _processes(pool: ProcessPoolExecutor) -> list[Any]:
    """The pool's worker processes (ProcessPoolExecutor keeps them in `_processes`)."""
    return list((getattr(pool, "_processes", None) or {}).values())
