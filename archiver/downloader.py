"""Scrapy's downloader, with each host's concurrency limit kept when requests to it arrive in a burst, and each
download started as soon as its slot frees.

Under the asyncio reactor, Scrapy 2.19's `Downloader._process_queue` starts each download it pops as an asyncio
task, and the task marks the request as transferring only when it runs. Until then the slot still looks free, so
one call pops the whole queue: a job's images, or many jobs' API calls queued together, all go out at once,
whatever `CONCURRENT_REQUESTS_PER_DOMAIN` says (65 at once to one host with a limit of 4 was seen), each on a new
TLS connection. Here a request counts as transferring from the moment it leaves its slot's queue.

That task also first runs on the event loop's next turn, after every callback already waiting (a page's WARC
capture, the spider's steps), while its connection sits idle. Here the download runs at once up to its first wait
(the request handed to its connection), and goes on as a task from there.
"""

from __future__ import annotations

import asyncio
import collections.abc
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

from scrapy import Request
from scrapy.core.downloader import Downloader as ScrapyDownloader
from scrapy.core.downloader import Slot
from scrapy.utils.asyncio import is_asyncio_available


class ReservingQueue(deque):
    """A slot's queue whose `popleft` reserves the slot's transfer place for the request it hands out."""

    def __init__(self, slot: Slot, items: deque) -> None:
        super().__init__(items)
        self.slot = slot

    def popleft(self) -> Any:
        request, dfd = super().popleft()
        self.slot.transferring.add(request)  # `_download` adds it again (a set) and removes it when done
        return request, dfd


_NOT_YET = object()


class _Resumed(collections.abc.Coroutine):
    """The rest of a coroutine whose first step was already taken: it waits first for what that step awaited.

    A task hands it a cancellation before its first step too, so the coroutine sees every cancellation."""

    def __init__(self, coro: Coroutine, awaited: Any) -> None:
        self._coro = coro
        self._awaited = awaited

    def send(self, value: Any) -> Any:
        awaited, self._awaited = self._awaited, _NOT_YET
        return self._coro.send(value) if awaited is _NOT_YET else awaited

    def throw(self, *exc: Any) -> Any:
        self._awaited = _NOT_YET
        return self._coro.throw(*exc)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Any:
        raise TypeError("driven by its task, not awaited")


def start_now(coro: Coroutine) -> None:
    """Runs `coro` now up to its first wait, and from there as an asyncio task (what Python 3.12's eager tasks do)."""
    try:
        awaited = coro.send(None)
    except StopIteration:
        return
    asyncio.get_running_loop().create_task(_Resumed(coro, awaited))


class Downloader(ScrapyDownloader):
    """`DOWNLOADER = "archiver.downloader.Downloader"`: per-slot concurrency holds for bursts too, and a freed slot
    sends its next request in the same turn of the event loop."""

    def _get_slot(self, request: Request, spider: Any = None) -> tuple[str, Slot]:
        key, slot = super()._get_slot(request)
        if not isinstance(slot.queue, ReservingQueue):
            slot.queue = ReservingQueue(slot, slot.queue)
        return key, slot

    def _process_queue(self, slot: Slot) -> None:
        if slot.latercall or slot.download_delay() or not is_asyncio_available():
            super()._process_queue(slot)  # a delay keeps Scrapy's own pacing
            return
        while slot.queue and slot.free_transfer_slots() > 0:
            slot.lastseen = time.monotonic()
            request, queue_dfd = slot.queue.popleft()
            start_now(self._wait_for_download(slot, request, queue_dfd))
