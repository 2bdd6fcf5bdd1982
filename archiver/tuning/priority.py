"""CPU priority for the crawl's background processes (extraction workers, the WARC finalizer)."""

from __future__ import annotations

import contextlib
import os


def run_idle() -> None:
    """Take a core only when no normally scheduled process wants it: `SCHED_IDLE` (Linux), else niceness 19."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(OSError):
            os.nice(19)
