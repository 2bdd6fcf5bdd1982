"""CPU priority for the extraction workers (`ARCHIVER_EXTRACT_IDLE_PRIORITY`).

The crawl's event loop, and on a single machine the server it fetches from, should never wait for a core behind
extraction: with idle priority a worker takes only the cores nothing else wants, and when extraction falls behind,
Scrapy's own back-pressure slows the downloads, which frees the cores it needs.
"""

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
