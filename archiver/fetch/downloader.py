"""Scrapy's downloader, with each download started as soon as its slot frees, which also keeps each host's
concurrency limit when requests to it arrive in a burst.

Under the asyncio reactor, Scrapy 2.19's `Downloader._process_queue` starts each download it pops as an asyncio
task, and the task marks the request as transferring only when it runs. Until then the slot still looks free, so
one call pops the whole queue: a job's images, or many jobs' API calls queued together, all go out at once,
whatever `CONCURRENT_REQUESTS_PER_DOMAIN` says (65 at once to one host with a limit of 4 was seen), each on a new
TLS connection. And the task first runs on the event loop's next turn, after every callback already waiting (a
page's WARC capture, the spider's steps), while its connection sits idle. Here each download is an eager task: it
runs at once up to its first wait (the request handed to its connection), marking itself transferring on the way.
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextvars
import sys
import time
from collections.abc import Coroutine
from typing import Any

from scrapy.core.downloader import Downloader as ScrapyDownloader
from scrapy.core.downloader import Slot
from scrapy.utils.asyncio import call_later, is_asyncio_available


class _Resumed(collections.abc.Coroutine):
    """A coroutine driven by its task, whose first step `first_step` takes earlier, outside that task's turn."""

    def __init__(self, coro: Coroutine) -> None:
        self._coro = coro
        self._first: tuple[str, Any] | None = None  # ("yield" | "return" | "raise", value) until the task asks

    def first_step(self) -> None:
        try:
            self._first = ("yield", self._coro.send(None))
        except StopIteration as stop:
            self._first = ("return", stop.value)
        except BaseException as exc:  # the task raises it, as it would have raised it itself
            self._first = ("raise", exc)

    def send(self, value: Any) -> Any:
        first, self._first = self._first, None
        if first is None:
            return self._coro.send(value)
        kind, result = first
        if kind == "return":
            raise StopIteration(result)
        if kind == "raise":
            raise result
        return result

    def throw(self, *exc: Any) -> Any:
        if self._first is not None and self._first[0] != "yield":
            return self.send(None)  # the coroutine ended in its first step: that outcome stands
        first, self._first = self._first, None
        if first is not None and isinstance(first[1], asyncio.Future):
            first[1].cancel()  # cancelled before its task took over: what it waits for is cancelled, as a task does
        return self._coro.throw(*exc)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Any:
        raise TypeError("driven by its task, not awaited")


def start_now(coro: Coroutine) -> asyncio.Task:
    """`coro` as an asyncio task whose first step runs now, up to its first wait: an eager task (Python 3.12's
    `asyncio.eager_task_factory`; on 3.11 the step runs as that task, in its context, before the task's first turn)."""
    loop = asyncio.get_running_loop()
    if sys.version_info >= (3, 12):
        return asyncio.eager_task_factory(loop, coro)
    context = contextvars.copy_context()
    resumed = _Resumed(coro)
    task = loop.create_task(resumed, context=context)
    caller = asyncio.current_task(loop)
    if caller is not None:
        asyncio.tasks._leave_task(loop, caller)
    asyncio.tasks._enter_task(loop, task)
    try:
        context.run(resumed.first_step)
    finally:
        asyncio.tasks._leave_task(loop, task)
        if caller is not None:
            asyncio.tasks._enter_task(loop, caller)
    return task


class Downloader(ScrapyDownloader):
    """`DOWNLOADER = "archiver.fetch.downloader.Downloader"`: a freed slot sends its next request in the same turn
    of the event loop, and per-slot concurrency holds for bursts too."""

    def _process_queue(self, slot: Slot) -> None:
        """Scrapy's, pacing and all (`DOWNLOAD_DELAY`, AutoThrottle), with each download started as an eager task."""
        if not is_asyncio_available():
            super()._process_queue(slot)
            return
        if slot.latercall:
            return
        now = time.monotonic()
        delay = slot.download_delay()
        if delay:
            penalty = delay - now + slot.lastseen
            if penalty > 0:
                slot.latercall = call_later(penalty, self._latercall, slot)
                return
        while slot.queue and slot.free_transfer_slots() > 0:
            slot.lastseen = now
            request, queue_dfd = slot.queue.popleft()
            start_now(self._wait_for_download(slot, request, queue_dfd))
            if delay:  # one request per delay
                self._process_queue(slot)
                break
