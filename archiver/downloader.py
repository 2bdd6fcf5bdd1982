"""Scrapy's downloader, with each host's concurrency limit kept when requests to it arrive in a burst.

Under the asyncio reactor, Scrapy 2.19's `Downloader._process_queue` starts each download it pops as an asyncio
task, and the task marks the request as transferring only when it runs. Until then the slot still looks free, so
one call pops the whole queue: a job's images, or many jobs' API calls queued together, all go out at once,
whatever `CONCURRENT_REQUESTS_PER_DOMAIN` says (65 at once to one host with a limit of 4 was seen), each on a new
TLS connection. Here a request counts as transferring from the moment it leaves its slot's queue.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from scrapy import Request
from scrapy.core.downloader import Downloader as ScrapyDownloader
from scrapy.core.downloader import Slot


class ReservingQueue(deque):
    """A slot's queue whose `popleft` reserves the slot's transfer place for the request it hands out."""

    def __init__(self, slot: Slot, items: deque) -> None:
        super().__init__(items)
        self.slot = slot

    def popleft(self) -> Any:
        request, dfd = super().popleft()
        self.slot.transferring.add(request)  # `_download` adds it again (a set) and removes it when done
        return request, dfd


class Downloader(ScrapyDownloader):
    """`DOWNLOADER = "archiver.downloader.Downloader"`: per-slot concurrency holds for bursts too."""

    def _get_slot(self, request: Request, spider: Any = None) -> tuple[str, Slot]:
        key, slot = super()._get_slot(request)
        if not isinstance(slot.queue, ReservingQueue):
            slot.queue = ReservingQueue(slot, slot.queue)
        return key, slot
