"""The one module that uses private APIs of other libraries: Scrapy's `Downloader._process_queue`, overridden, and
twisted.web's `Request._disconnected` (read by the stand-in).

archiver's downloader: Scrapy's, with each download counted as transferring as soon as it is popped, which keeps
each host's concurrency limit when requests to it arrive in a burst (politeness), and on Python 3.12+ started at
once as an eager task.

Under the asyncio reactor, Scrapy 2.19's `Downloader._process_queue` starts each download it pops as an asyncio
task, and the task marks the request as transferring only when it runs. Until then the slot still looks free, so one
call pops the whole queue: a job's images, or many jobs' API calls queued together, all go out at once, whatever
`CONCURRENT_REQUESTS_PER_DOMAIN` says, each on a new TLS connection. And the task first runs on the event loop's
next turn, after every callback already waiting (a page's WARC capture, the spider's steps), while its connection
sits idle. Here each download counts as transferring from the moment it is popped; on Python 3.12+ it is also an
eager task that runs at once up to its first wait (the request handed to its connection).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Coroutine
from typing import Any

from scrapy.core.downloader import Downloader as ScrapyDownloader
from scrapy.core.downloader import Slot
from scrapy.utils.asyncio import call_later, is_asyncio_available


def start_download(coro: Coroutine, slot: Slot, request: Any) -> asyncio.Task:
    """`coro` as an asyncio task that counts as transferring from now on: on Python 3.12+ an eager task (its first
    step, which hands the request to its connection, runs now); on 3.11 a plain task whose request is counted in the
    slot before the task first runs."""
    loop = asyncio.get_running_loop()
    if sys.version_info >= (3, 12):
        return asyncio.eager_task_factory(loop, coro)
    slot.transferring.add(request)  # Scrapy's own _download adds it again (a set) and removes it when done
    task = loop.create_task(coro)
    task.add_done_callback(lambda _: slot.transferring.discard(request))  # also when cancelled before it ran
    return task


class Downloader(ScrapyDownloader):
    """`DOWNLOADER = "archiver.compat.Downloader"` (archiver's add-on sets it): per-slot concurrency holds for
    bursts too, and on Python 3.12+ a freed slot sends its next request in the same turn of the event loop."""

    def _process_queue(self, slot: Slot) -> None:
        """Scrapy's, pacing and all (`DOWNLOAD_DELAY`, AutoThrottle), with each download counted at once."""
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
            start_download(self._wait_for_download(slot, request, queue_dfd), slot, request)
            if delay:  # one request per delay
                self._process_queue(slot)
                break


def client_gone(request: Any) -> bool:
    """Whether a twisted.web request is finished or its client went away (twisted.web has no public attribute for
    the second, only `notifyFinish()`'s errback)."""
    return bool(request.finished or request._disconnected)
