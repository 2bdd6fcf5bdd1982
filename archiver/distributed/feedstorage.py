"""A local file feed storage without write buffer: every exported item reaches the OS at once.

Scrapy's `FileFeedStorage` opens a buffered file, so the last few kB of items vanish when a worker is
killed with SIGKILL after their jobs were acknowledged. Unbuffered, each JSON line is one `write()`.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from scrapy.extensions.feedexport import FileFeedStorage


class UnbufferedFileFeedStorage(FileFeedStorage):
    """`FileFeedStorage` that writes through to the OS (survives kill -9, not power loss)."""

    def open(self, spider: Any) -> IO[bytes]:
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open(self.write_mode, buffering=0)
