"""Rolling WARC file writer: `<prefix>-<ts17>-<serial5>-<host>-<pid>.warc.gz`, written as `.open`, renamed on close.

Each file starts with a warcinfo record; each record is one gzip member; the records of one exchange are written
with one `write()` and flushed, so a killed process loses at most the exchange being written. Not tied to Scrapy.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from archiver.warc.records import WARC_1_1, WarcRecord, build_warcinfo

OPEN_SUFFIX = ".open"
WARC_SUFFIX = ".warc.gz"
TEXT_SUFFIX = ".warc.wet.gz"  # extracted-text (conversion) files, Common Crawl's WET naming
NAME_RE = re.compile(
    r"^(?P<prefix>.+)-(?P<ts>\d{17})-(?P<serial>\d{5})-(?P<host>.+)-(?P<pid>\d+)(?P<suffix>\.warc(?:\.wet)?\.gz)"
    r"(?P<open>\.open)?$"
)


def safe_hostname() -> str:
    """This machine's host name as used in file names (no path separators or spaces)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "localhost"


# Payloads deflate cannot shrink: gzip-encoded bodies, JPEG, PNG, GIF, WebP, zip. Deflating them costs about
# 1.5 ms per 100 KB at any level for no gain (bench/RESULTS.md), so they are stored inside the member instead.
COMPRESSED_MAGIC = (b"\x1f\x8b", b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"PK\x03\x04")
STORE_MIN = 1024
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"  # deflate, no name, mtime 0, unix: as zlib writes it
# zlib's default memLevel 8 makes each new compressor cost 20-40 us more (its larger tables are allocated and
# cleared afresh). Records are mostly a few KB, which 7 deflates as small (bench/RESULTS.md §13).
MEM_LEVEL = 7


def gzip_member(data: bytes, level: int, stored_from: int | None = None) -> bytes:
    """`data` as one complete gzip member; from offset `stored_from` on, stored as is (already compressed)."""
    if stored_from is None or not 0 <= stored_from < len(data):
        comp = zlib.compressobj(level, zlib.DEFLATED, 31, MEM_LEVEL)
        return comp.compress(data) + comp.flush()
    # One deflate stream in two parts: the head deflated and sync-flushed (byte-aligned, not final), then the
    # rest in stored blocks ending with the final one; one gzip header and trailer around both.
    head = zlib.compressobj(level, zlib.DEFLATED, -15, MEM_LEVEL)
    rest = zlib.compressobj(0, zlib.DEFLATED, -15, MEM_LEVEL)
    deflated = head.compress(data[:stored_from]) + head.flush(zlib.Z_SYNC_FLUSH)
    stored = rest.compress(data[stored_from:]) + rest.flush()
    return _GZIP_HEADER + deflated + stored + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)


def compressed_payload_start(record: WarcRecord) -> int | None:
    """Offset in `record.block` of a response payload of at least STORE_MIN bytes that is already compressed."""
    block = record.block
    if len(block) < STORE_MIN or record.type != "response":
        return None
    end = block.find(b"\r\n\r\n")
    start = end + 4
    if end < 0 or len(block) - start < STORE_MIN or not block.startswith(COMPRESSED_MAGIC, start):
        return None
    return start


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class WrittenRecord:
    """Where one record ended up: the final file name, its offset and its compressed length."""

    record_id: str
    record_type: str
    warc_file: str
    offset: int
    length: int


class RollingWarcWriter:
    """Writes record groups into rolling WARC files below one folder; thread-safe."""

    def __init__(
        self,
        directory: Path,
        prefix: str = "archiver",
        version: str = WARC_1_1,
        max_size: int = 1_000_000_000,
        gzip_level: int = 6,
        warcinfo_fields: Callable[[], Iterable[tuple[str, object]]] | None = None,
        on_close: Callable[[Path], None] | None = None,
        suffix: str = WARC_SUFFIX,
    ) -> None:
        self.directory = Path(directory)
        self.prefix = prefix
        self.version = version
        self.max_size = max_size
        self.gzip_level = gzip_level
        self.warcinfo_fields = warcinfo_fields or (lambda: [])
        self.on_close = on_close
        self.suffix = suffix
        self.host = safe_hostname()
        self.pid = os.getpid()
        self.serial = 0
        self.closed_files: list[Path] = []
        self._lock = threading.Lock()
        self._file: BinaryIO | None = None
        self._path: Path | None = None  # the .open path
        self._warcinfo_id = ""
        self._size = 0
        self._records = 0

    # --- naming -------------------------------------------------------------------------------------------
    def _next_name(self) -> str:
        ts = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")[:17]
        name = f"{self.prefix}-{ts}-{self.serial:05d}-{self.host}-{self.pid}{self.suffix}"
        self.serial += 1
        return name

    @property
    def current_name(self) -> str | None:
        """Final name of the file being written, if one is open."""
        return self._path.name.removesuffix(OPEN_SUFFIX) if self._path else None

    # --- files --------------------------------------------------------------------------------------------
    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        while True:
            name = self._next_name()
            path = self.directory / (name + OPEN_SUFFIX)
            if not path.exists() and not (self.directory / name).exists():
                break
        f = open(path, "xb")  # noqa: SIM115 - kept open across calls
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._file, self._path, self._size, self._records = f, path, 0, 0
        info = build_warcinfo(name, self.warcinfo_fields(), datetime.now(UTC), self.version)
        self._warcinfo_id = info.record_id
        data = gzip_member(info.to_bytes(), self.gzip_level)
        f.write(data)
        f.flush()
        self._size = len(data)

    def _close(self) -> Path | None:
        if self._file is None or self._path is None:
            return None
        f, path = self._file, self._path
        f.flush()
        os.fsync(f.fileno())
        final = path.with_name(path.name.removesuffix(OPEN_SUFFIX))
        os.rename(path, final)
        fsync_dir(self.directory)
        f.close()  # releases the lock only once the final name is in place
        self._file = self._path = None
        self.closed_files.append(final)
        return final

    def close(self) -> Path | None:
        """Close and rename the current file (if any); calls on_close with its final path."""
        with self._lock:
            final = self._close()
        if final is not None and self.on_close:
            self.on_close(final)
        return final

    # --- records ------------------------------------------------------------------------------------------
    def _encode(self, records: Sequence[WarcRecord]) -> list[bytes]:
        extra = [("WARC-Warcinfo-ID", self._warcinfo_id)]
        members = []
        for record in records:
            data = record.to_bytes(extra)
            start = compressed_payload_start(record)
            # to_bytes() ends with the block and CRLF CRLF: the payload starts this far from the end
            stored_from = None if start is None else len(data) - 4 - (len(record.block) - start)
            members.append(gzip_member(data, self.gzip_level, stored_from))
        return members

    def write(self, records: Sequence[WarcRecord]) -> list[WrittenRecord]:
        """Write records together into one file (rolling over first if they would pass max_size)."""
        rolled: Path | None = None
        with self._lock:
            if self._file is None:
                self._open()
            members = self._encode(records)
            total = sum(map(len, members))
            if self._records and self._size + total > self.max_size:
                rolled = self._close()
                self._open()
                members = self._encode(records)
            assert self._file is not None
            name = self.current_name or ""
            offset = self._size
            written = []
            for record, member in zip(records, members, strict=True):
                written.append(WrittenRecord(record.record_id, record.type, name, offset, len(member)))
                offset += len(member)
            self._file.write(b"".join(members))
            self._file.flush()
            self._size = offset
            self._records += len(records)
        if rolled is not None and self.on_close:
            self.on_close(rolled)
        return written
