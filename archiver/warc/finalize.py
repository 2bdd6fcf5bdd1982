"""What happens to a WARC file once it is closed, in a child process: its CDXJ index, its digests in the fixity
manifest, and the validator's check."""

from __future__ import annotations

from pathlib import Path

from archiver.preservation.manifest import record_closed
from archiver.warc.cdxj import write_cdxj
from archiver.warc.check import CheckResult, check_file
from archiver.warc.writer import WET_SUFFIX


def finalize_file(path: Path, version: str, check: bool) -> tuple[Path, CheckResult | None, str | None]:
    """Write the CDXJ index beside a closed capture file, record the digests and check it (in a child process).

    Text files (`*.warc.wet.gz`) are checked, not indexed: an index is what replay tools look captures up in.
    """
    error = None
    closed = [path]
    try:
        if not path.name.endswith(WET_SUFFIX):
            closed.append(write_cdxj(path))
    except Exception as e:
        error = f"cdxj-indexer failed: {e!r}"
    try:
        record_closed(path.parent.parent, *closed)  # digests at close, in the output folder's fixity manifest
    except OSError as e:
        error = (f"{error}; " if error else "") + f"fixity manifest not written: {e!r}"
    return path, check_file(path, version) if check else None, error
