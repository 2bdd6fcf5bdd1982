"""The scrapy-redis scheduler with one request queue per worker, persisted, and without deprecated calls.

The shared frontier is the job queue (`archiver.distributed.queue`): a job runs on the worker that took it,
so its acknowledgement and the reaper stay exact. The per-worker queue key lets the reaper drop the requests
of a dead worker together with handing its jobs back.
"""

from __future__ import annotations

from typing import Any

from scrapy.utils.misc import load_object
from scrapy_redis.scheduler import Scheduler

from archiver.distributed.connection import keys, worker_id


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

    def enqueue_request(self, request: Any) -> bool:
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            return False
        self.stats.inc_value("scheduler/enqueued/redis")
        self.queue.push(request)
        return True

    def next_request(self) -> Any:
        request = self.queue.pop(self.idle_before_close)
        if request is not None:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request
