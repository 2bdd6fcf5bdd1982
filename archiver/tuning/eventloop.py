"""Letting the sockets that are ready go first, before long work on the reactor thread.

The crawl has one thread. A response that arrives while it runs a capture waits until the capture is done, and so
does the next request on a free connection: under a per-host limit, every such wait lengthens the time per request.
`await after_pending_io()` between long steps lets the event loop read and write what is ready in between.
"""

from __future__ import annotations

import asyncio

from scrapy.utils.asyncio import is_asyncio_available

# asyncio runs a due timer after the I/O callbacks of the same loop turn; `sleep(0)` would run before them.
_TIMER = 1e-6


async def after_pending_io() -> None:
    """Resume once the event loop has served the sockets ready now (at once without the asyncio reactor)."""
    if is_asyncio_available():
        await asyncio.sleep(_TIMER)
