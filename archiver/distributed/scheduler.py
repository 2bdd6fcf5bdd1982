"""The scrapy-redis scheduler with one request queue per worker, persisted, and without deprecated calls.

The shared frontier is the job queue (`archiver.distributed.queue`): a job runs on the worker that took it,
so its acknowledgement and the reaper stay exact. The per-worker queue key lets the reaper drop the requests
of a dead worker together with handing its jobs back. While Redis is unreachable, requests wait in memory and
the engine's loop goes on (RedisJobSource decides when an outage has lasted too long).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import redis
from scrapy.utils.misc import load_object
from scrapy_redis.scheduler import Scheduler

from archiver.distributed.connection import keys, worker_id

logger = logging.getLogger(__name__)


class WorkerScheduler(Scheduler):
    """scrapy-redis `Scheduler` whose queue key is `<prefix>:requests:<worker id>`."""

    @classmethod
    def from_crawler(cls, crawler: Any) -> WorkerScheduler:
        scheduler = cls.from_settings(crawler.settings)
        scheduler.stats = crawler.stats
        scheduler.queue_key = keys(crawler.settings).requests(worker_id(crawler.settings))
        scheduler.crawler = crawler
        return scheduler

    def open(self, spider: Any) -> None:
        """Open this worker's queue and the dupefilter."""
        self.spider = spider
        queue_cls = load_object(self.queue_cls)
        self.queue = queue_cls(server=self.server, spider=spider, key=self.queue_key, serializer=self.serializer)
        if not self.df:
            self.df = load_object(self.dupefilter_cls).from_spider(spider)
        if self.flush_on_start:
            self.flush()

    held: deque[Any] | None = None  # requests Redis could not take; pushed again once it answers

    def _unreachable(self, exc: redis.RedisError, what: str) -> None:
        self.stats.inc_value("archiver/redis/scheduler_errors")
        logger.warning("scheduler: Redis unreachable while %s; kept in memory: %s", what, exc)

    def enqueue_request(self, request: Any) -> bool:
        try:
            if not request.dont_filter and self.df.request_seen(request):
                self.df.log(request, self.spider)
                return False
            self.queue.push(request)
        except redis.RedisError as exc:
            self._unreachable(exc, "queueing a request")
            self.held = self.held or deque()
            self.held.append(request)
        self.stats.inc_value("scheduler/enqueued/redis")
        return True

    def next_request(self) -> Any:
        if self.held:
            self.stats.inc_value("scheduler/dequeued/redis")
            return self.held.popleft()
        try:
            request = self.queue.pop(self.idle_before_close)
        except redis.RedisError as exc:
            self._unreachable(exc, "taking a request")
            return None
        if request is not None:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def has_pending_requests(self) -> bool:
        if self.held:
            return True
        try:
            return len(self) > 0
        except redis.RedisError:
            return True  # unknown while Redis is away: the spider stays open

    def close(self, reason: str) -> None:
        try:
            super().close(reason)
        except redis.RedisError as exc:
            logger.warning("scheduler: Redis unreachable at close: %s", exc)
