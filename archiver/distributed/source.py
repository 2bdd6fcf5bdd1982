"""The worker side: an extension that feeds the running spider with jobs from Redis and acknowledges them.

Jobs are taken on a LoopingCall (never a blocking pop on the reactor), each scheduled as
`spider.job_request(job)`. A job is acknowledged once its own article's item has passed the item pipelines
(cited articles do not count), so a worker killed at any point leaves its unacknowledged jobs in its
processing list, which the reaper gives back to the queue once its heartbeat has expired.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import redis
from scrapy import signals as scrapy_signals
from scrapy.exceptions import DontCloseSpider
from scrapy.utils.defer import deferred_from_coro
from twisted.internet import task

from archiver import config
from archiver import signals as archiver_signals
from archiver.distributed.connection import client, keys, worker_id
from archiver.distributed.queue import JobQueue
from archiver.items.model import ArticleItem
from archiver.run.outage import stop_run
from archiver.run.plan import lost_locally

logger = logging.getLogger(__name__)

DONE_STATUSES = frozenset({"complete", "partial"})


class RedisJobSource:
    """Takes jobs from the Redis queue while the spider runs; keeps the spider open while work may come."""

    def __init__(self, crawler: Any, queue: JobQueue, worker: str) -> None:
        self.crawler = crawler
        self.queue = queue
        self.worker = worker
        settings = crawler.settings
        self.idle_exit = float(config.get(settings, "ARCHIVER_IDLE_EXIT"))
        self.poll = float(config.get(settings, "ARCHIVER_POLL_INTERVAL"))
        self.ttl = float(config.get(settings, "ARCHIVER_HEARTBEAT_TTL"))
        self.max_held = int(config.get(settings, "ARCHIVER_JOBS_IN_FLIGHT")) or settings.getint("CONCURRENT_REQUESTS")
        self.held: dict[int, str] = {}  # article id -> raw job JSON as stored in the processing list
        self.unacked: list[tuple[str, int, bool, str]] = []  # acks Redis refused; retried each tick
        self._empty_since: float | None = None
        self._last_beat = 0.0
        self._last_reap = 0.0
        self._loop: task.LoopingCall | None = None
        self._closing = False
        self._down_since: float | None = None  # when Redis stopped answering (None: it answers)

    @classmethod
    def from_crawler(cls, crawler: Any) -> RedisJobSource:
        ext = cls(crawler, JobQueue(client(crawler.settings), keys(crawler.settings)), worker_id(crawler.settings))
        crawler.signals.connect(ext.spider_opened, signal=scrapy_signals.spider_opened)
        crawler.signals.connect(ext.spider_idle, signal=scrapy_signals.spider_idle)
        crawler.signals.connect(ext.spider_closed, signal=scrapy_signals.spider_closed)
        crawler.signals.connect(ext.item_passed, signal=scrapy_signals.item_scraped)
        crawler.signals.connect(ext.item_passed, signal=scrapy_signals.item_dropped)
        crawler.signals.connect(ext.item_error, signal=scrapy_signals.item_error)
        crawler.signals.connect(ext.article_finished, signal=archiver_signals.article_finished)
        return ext

    # --- lifecycle ---

    def spider_opened(self, spider: Any) -> None:
        # A restarted worker with a fixed ARCHIVER_WORKER_ID forgets nothing: what it held goes back first.
        back = self.queue.requeue(self.worker)
        if back:
            logger.warning("worker %s: %d jobs of an earlier life put back in the queue", self.worker, back)
        self.queue.beat(self.worker, self.ttl)
        self._last_beat = time.monotonic()
        logger.info(
            "worker %s takes jobs from %s (up to %d at a time)", self.worker, self.queue.keys.jobs, self.max_held
        )
        self._loop = task.LoopingCall(self.tick)
        self._loop.start(self.poll, now=True).addErrback(self._loop_failed)

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        try:
            back = self.queue.requeue(self.worker)
        except redis.RedisError as exc:
            logger.error("worker %s closed (%s): Redis unreachable, its jobs are left for the reaper: %s",
                         self.worker, reason, exc)  # fmt: skip
            return
        stats = self.crawler.stats
        stats.set_value("archiver/redis/requeued_at_close", back)
        logger.info("worker %s closed (%s): %d unfinished jobs put back", self.worker, reason, back)

    def _loop_failed(self, failure: Any) -> None:
        logger.error("worker %s: job loop stopped, no more jobs taken: %s", self.worker, failure.getErrorMessage())

    # --- taking ---

    def tick(self) -> None:
        """One round of `_tick`; an unreachable Redis is retried on the next rounds (the client reconnects), until
        the outage outlasts the heartbeat TTL: then the worker stops, exit status 1, its jobs left for the reaper."""
        try:
            self._tick()
        except redis.RedisError as exc:
            self._redis_down(exc)
            return
        if self._down_since is not None:
            logger.warning("worker %s: Redis answers again after %.1f s", self.worker, self._down_for())
            self._down_since = None
            try:
                self._reconcile()
            except redis.RedisError as exc:
                self._redis_down(exc)

    def _reconcile(self) -> None:
        """Give back the jobs Redis lists as held by this worker that it does not know of: a `take` whose reply was
        lost in the outage. Left there, they would never run nor be reaped, and the worker would never go idle."""
        known = set(self.held.values()) | {raw for raw, *_ in self.unacked}
        lost = [raw for raw in self.queue.held(self.worker) if raw not in known]
        back = sum(self.queue.give_back(self.worker, raw) for raw in lost)
        if back:
            logger.warning("worker %s: %d jobs taken during the Redis outage put back in the queue", self.worker, back)

    def _down_for(self) -> float:
        return 0.0 if self._down_since is None else time.monotonic() - self._down_since

    def _redis_down(self, exc: BaseException) -> None:
        self.crawler.stats.inc_value("archiver/redis/errors")
        if self._down_since is None:
            self._down_since = time.monotonic()
            logger.warning("worker %s: Redis unreachable, retrying every %.1f s: %s", self.worker, self.poll, exc)
        if self._down_for() >= self.ttl and not self._closing:
            self._closing = True
            problem = f"Redis unreachable for {self._down_for():.0f} s (heartbeat TTL {self.ttl:g} s): {exc}"
            stop_run(self.crawler, problem, "redis_unavailable")

    def _tick(self) -> None:
        """Heartbeat, reap dead workers now and then, take jobs up to the limit and schedule them."""
        while self.unacked:
            raw, article_id, ok, reason = self.unacked[0]
            self.queue.ack(self.worker, raw, article_id, ok=ok, reason=reason)
            self.unacked.pop(0)
        now = time.monotonic()
        if now - self._last_beat >= self.ttl / 3:
            if not self.queue.beat(self.worker, self.ttl):
                logger.error("worker %s had been reaped (heartbeat lapsed): its jobs may run twice", self.worker)
            self._last_beat = now
        if now - self._last_reap >= self.ttl:
            self._last_reap = now
            moved, reaped = self.queue.reap()
            if reaped:
                logger.warning("reaped dead workers %s: %d jobs back in the queue", ", ".join(reaped), moved)
                self.crawler.stats.inc_value("archiver/redis/reaped_jobs", moved)
        engine = self.crawler.engine
        if self._closing or not engine.running:  # shutting down: take nothing more
            return
        taken = self.queue.take(self.worker, self.max_held - len(self.held))
        stats = self.crawler.stats
        if taken.skipped_done:
            stats.inc_value("archiver/redis/skipped_done", taken.skipped_done)
        spider = self.crawler.spider
        accept = getattr(spider, "accept_job", None)  # claims the job in the spider's state; else job_request
        for raw, job in taken.jobs:
            if job.article_id in self.held:  # the same id twice in the queue: keep one, drop the other
                self.queue.drop(self.worker, raw)
                continue
            self.held[job.article_id] = raw
            stats.inc_value("archiver/redis/taken")
            request = accept(job) if accept is not None else spider.job_request(job)
            if request is None:  # the spider's own state says there is nothing to do for this job
                self.held.pop(job.article_id)
                self.queue.ack(self.worker, raw, job.article_id, ok=True)
                stats.inc_value("archiver/redis/refused")
                continue
            stats.inc_value("archiver/articles/planned")  # the run report's "planned": jobs this worker runs
            self.crawler.engine.crawl(request)
        # The engine looks at idle spiders only every 5 s: close as soon as the exit is due.
        if not taken.jobs and not self._closing and engine.spider_is_idle() and self._exit_due():
            self._closing = True
            logger.info("worker %s: no work for %.0f s, closing", self.worker, self.idle_exit)
            deferred_from_coro(engine.close_spider_async(reason="finished"))

    def _quiet_for(self) -> float | None:
        """Seconds since this worker and the whole queue ran out of work (None while work remains)."""
        if self.held or self.unacked or self.queue.outstanding():
            self._empty_since = None
            return None
        now = time.monotonic()
        if self._empty_since is None:
            self._empty_since = now
        return now - self._empty_since

    def _exit_due(self) -> bool:
        quiet = self._quiet_for()
        return self.idle_exit > 0 and quiet is not None and quiet >= self.idle_exit

    def spider_idle(self, spider: Any) -> None:
        """Stay open while jobs are held, pending, or held by other workers (they may come back)."""
        try:
            due = self._exit_due()
        except redis.RedisError as exc:
            self._redis_down(exc)
            due = self._closing
        if not due:
            raise DontCloseSpider
        logger.info("worker %s: no work for %.0f s, closing", self.worker, self.idle_exit)

    # --- acknowledging ---

    def article_finished(self, item: Any, new_version: bool = True, **kwargs: Any) -> None:
        """A finished article whose item is not emitted (a recheck that found nothing new) is acknowledged now."""
        if not new_version:
            self.item_passed(item)

    def item_error(self, item: Any, **kwargs: Any) -> None:
        """An item pipeline failed: the item was not written, so its article is not done."""
        self.item_passed(item, failed="item pipeline error")

    def item_passed(self, item: Any, failed: str = "", **kwargs: Any) -> None:
        """Acknowledge the job of an article once its item is written (or dropped): never for a cited article."""
        article_id = getattr(item, "article_id", None)
        if getattr(item, "kind", None) == "reference" or article_id not in self.held:
            return
        raw = self.held.pop(article_id)
        status = getattr(item, "status", "complete")
        # A capture not written (e.g. the digest index was unreachable) is no archived article, whatever the status.
        ok = status in DONE_STATUSES and not failed and not (isinstance(item, ArticleItem) and lost_locally(item))
        reason = failed or ("" if ok else "; ".join(e.reason for e in getattr(item, "errors", [])[:3]) or status)
        try:
            self.queue.ack(self.worker, raw, article_id, ok=ok, reason=reason)
        except redis.RedisError as exc:
            logger.warning("worker %s: ack of %s deferred: %s", self.worker, article_id, exc)
            self.unacked.append((raw, article_id, ok, reason))
        self.crawler.stats.inc_value(f"archiver/redis/acked/{'done' if ok else 'failed'}")


def reference_claims(crawler: Any) -> Callable[[int], bool]:
    """`claim(article_id) -> bool`: True only for the first worker claiming a cited article per recheck period."""
    queue = JobQueue(client(crawler.settings), keys(crawler.settings))
    policy = config.recheck_policy(crawler.settings)  # a fixed interval, else the schedule's shortest one
    ttl = policy.fixed if policy.fixed is not None else policy.schedule.shortest
    return lambda article_id: queue.claim_reference(article_id, ttl)
