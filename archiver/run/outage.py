"""Local faults that end a run early without losing work: a full disk (output or state), a lost service.

The run stops taking new work (the spider closes), closes what it can, writes its report if the disk allows, and
exits with status 1; what was not archived stays in the state for the next run.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
from typing import Any

from scrapy.utils.defer import deferred_from_coro

from archiver import signals
from archiver.run.report import RunReport, free_space

logger = logging.getLogger(__name__)

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
DISK_FULL = "disk_full"


def disk_full(exc: BaseException | None) -> bool:
    """Whether an error (or one it was raised from) says a disk or file-size limit is full."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        if isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def stop_run(crawler: Any, problem: str, reason: str) -> None:
    """Record why the run fails and close the spider (no new work); the first call does it, later ones only log."""
    crawler.signals.send_catch_log(signals.run_problem, problem=problem)
    report = crawler.get_extension(RunReport)
    if crawler.engine is None or (report is not None and report.stopping):
        return
    if report is not None:
        report.stopping = reason
    logger.error("stopping the run: %s", problem)
    deferred_from_coro(crawler.engine.close_spider_async(reason=reason))


def stop_if_disk_full(crawler: Any, exc: BaseException, where: Any) -> bool:
    """Stop the run when `exc` is a full disk at `where` (a path); whether it was."""
    if not disk_full(exc):
        return False
    stop_run(crawler, f"disk full writing {where} ({free_space(where)}): {exc}", DISK_FULL)
    return True
