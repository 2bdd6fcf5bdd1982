"""The memory of periodic crawls, in SQLite: dumps, articles, captures, failures, runs (store.py); its schema
(migrations.py), the run lock (lock.py), its Scrapy extension (extension.py) and the digest index it serves to the WARC
writer (index.py)."""

from typing import Any


def __getattr__(name: str) -> Any:
    """`archiver.state:capture_index`, the default of ARCHIVER_WARC_CAPTURE_INDEX, without importing Scrapy here."""
    if name == "capture_index":
        from archiver.state.index import capture_index

        return capture_index
    raise AttributeError(name)
