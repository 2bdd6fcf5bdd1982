"""Item files that survive `kill -9`: every item reaches the OS as soon as it is exported."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Self

from scrapy.extensions.feedexport import FileFeedStorage

from archiver.config import output_dir
from archiver.preservation.manifest import inside, record_closed

logger = logging.getLogger(__name__)


class UnbufferedFileFeedStorage(FileFeedStorage):
    """Scrapy's file storage without a user-space buffer: an exported line is in the file at once.

    The state marks an article done only after its item is written (see archiver.run.plan), so a
    killed run never leaves an article counted as done whose item was still in a buffer.
    """

    output: Path | None = None  # the output folder, whose fixity manifest records the file at close

    @classmethod
    def from_crawler(cls, crawler: Any, uri: str, *, feed_options: dict[str, Any] | None = None) -> Self:
        storage = cls(uri, feed_options=feed_options)
        storage.output = output_dir(crawler.settings)
        return storage

    def open(self, spider: Any) -> IO[bytes]:
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open(self.write_mode, buffering=0)

    def store(self, file: IO[bytes]) -> None:
        """Close the file and record its digest if it lies in the output folder."""
        file.close()
        path = Path(self.path)
        if self.output is not None and inside(self.output, path):
            try:
                record_closed(self.output, path)
            except OSError as exc:  # a full disk: `scrapy fixity` lists the file as unrecorded, `--adopt` takes it
                logger.error("items file %s not recorded in the fixity manifest: %s", path, exc.strerror or exc)


def items_file(output_dir: Path, run_id: str) -> Path:
    """Where a run's items go unless FEEDS says otherwise: `<output>/items/<run>.jsonl`."""
    return output_dir / "items" / f"{run_id}.jsonl"


def written_ids(path: Path, keep: Callable[[dict[str, Any]], bool] | None = None) -> set[int]:
    """The article ids of the items in a JSON Lines file (those `keep` accepts); a torn last line (killed
    mid-write) is cut off."""
    if not path.exists():
        return set()
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with path.open("r+b") as f:
            f.truncate(end)
    ids = set()
    for line in data[:end].splitlines():
        try:
            data = json.loads(line)
            if keep is None or keep(data):
                ids.add(int(data["article_id"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return ids
