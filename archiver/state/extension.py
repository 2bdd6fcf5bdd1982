"""The state's Scrapy edge: the run lock taken before the crawl starts, the run recorded, the state closed after."""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

from archiver import signals as archiver_signals
from archiver.run.ids import run_id_for
from archiver.state.errors import StateError, StateLocked
from archiver.state.store import State

logger = logging.getLogger(__name__)


def _refusal_already_logged(record: logging.LogRecord) -> bool:
    """asyncio log filter: Scrapy hands a refused start to asyncio, which would print StateLocked again, traceback
    and all, as "Task exception was never retrieved"; the one error line above says it (exit status stays 1)."""
    return not (record.exc_info and isinstance(record.exc_info[1], StateError))


class StateExtension:
    """Takes the output folder's run lock before the crawl starts and records the run in the state.

    A second run on a locked folder refuses: `from_crawler` raises `StateLocked`, so `scrapy crawl` logs
    the holder and exits with status 1 before anything is fetched or written.
    """

    def __init__(self, crawler: Any, state: State, run_id: str) -> None:
        self.crawler = crawler
        self.state = state
        self.run_id = run_id

    @classmethod
    def from_crawler(cls, crawler: Any) -> StateExtension:
        from scrapy import signals

        try:
            state = State.from_settings(crawler.settings)
        except StateError as exc:
            logger.error("%s", exc)
            logging.getLogger("asyncio").addFilter(_refusal_already_logged)
            raise
        run_id = run_id_for(crawler.settings, crawler.spidercls.name)
        try:
            state.acquire_run_lock(run_id)
        except StateLocked as exc:
            logger.error("%s", exc)
            logging.getLogger("asyncio").addFilter(_refusal_already_logged)
            state.close()
            raise
        dead = state.start_run(run_id, time.time())
        for other in dead:
            logger.warning("run %s on this output never finished (killed?): its unfinished work is redone", other)
        ext = cls(crawler, state, run_id)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        # engine_stopped comes after spider_closed, so components may still write in spider_closed.
        crawler.signals.connect(state.close, signal=signals.engine_stopped, weak=False)
        return ext

    def spider_closed(self, spider: Any, reason: str) -> None:
        """Record the run's outcome and stats."""
        stats = self.crawler.stats.get_stats() if self.crawler.stats else {}
        try:
            self.state.finish_run(self.run_id, time.time(), reason, stats)
        except (sqlite3.Error, StateError) as exc:  # the next run sees this run as interrupted: nothing is lost
            problem = f"state {self.state.path}: run {self.run_id} not recorded as finished: {exc}"
            logger.error("%s", problem)
            self.crawler.signals.send_catch_log(archiver_signals.run_problem, problem=problem)
