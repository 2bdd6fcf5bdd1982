"""Rolling WARC file writer: `<prefix>-<ts17>-<serial5>-<host>-<pid><suffix>`, written as `.open`, renamed on close.

Records are serialized by warcio's writer (`RecordWriter`) and each put into its own gzip member; each file starts
with a warcinfo record; the records of one exchange are written with one `write()`, so a killed process loses at most
the exchange being written. After a failed write the file is cut back to its last complete record and the caller
gets a `WarcWriteError`: every offset returned is the true offset in the file. Not tied to Scrapy.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
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

from archiver.warc.records import WARC_1_1, WRITER_SOFTWARE, RecordWriter, WarcRecord, build_warcinfo

OPEN_SUFFIX = ".open"
WARC_SUFFIX = ".warc.gz"
WET_SUFFIX = ".warc.wet.gz"  # conversion (extracted text) records in files of their own, as Common Crawl's WET
SUFFIXES = (WARC_SUFFIX, WET_SUFFIX)
NAME_RE = re.compile(
    r"^(?P<prefix>.+)-(?P<ts>\d{17})-(?P<serial>\d{5})-(?P<host>.+)-(?P<pid>\d+)"
    r"(?P<suffix>\.warc(?:\.wet)?\.gz)(?P<open>\.open)?$"
)


def safe_hostname() -> str:
    """This machine's host name as used in file names (no path separators or spaces)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "localhost"


def warc_files(directory: Path, open_files: bool = False) -> list[Path]:
    """The WARC files of a folder, capture and WET alike, sorted: closed ones, or with `open_files` the `.open` ones."""
    tail = OPEN_SUFFIX if open_files else ""
    return sorted(p for suffix in SUFFIXES for p in Path(directory).glob(f"*{suffix}{tail}"))


class WarcWriteError(OSError):
    """A WARC file could not be written (disk full, I/O error): names the file, the reason and what was kept."""

    def __init__(self, path: Path, reason: str, cause: OSError | None = None) -> None:
        super().__init__(cause.errno if cause and cause.errno else errno.EIO, reason)
        self.filename = str(path)

    def __str__(self) -> str:
        return f"WARC file {self.filename}: {self.strerror}"


# Payloads deflate cannot shrink: gzip-encoded bodies, JPEG, PNG, GIF, WebP, zip.
COMPRESSED_MAGIC = (b"\x1f\x8b", b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"PK\x03\x04")
STORE_MIN = 1024
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"  # deflate, no name, mtime 0, unix: as zlib writes it
# zlib's default memLevel 8 makes each new compressor cost more (its larger tables are allocated and cleared afresh);
# records are mostly a few KB, which 7 deflates as small (bench/RESULTS.md section 13).
MEM_LEVEL = 7


def gzip_member(data: bytes, level: int, stored_from: int | None = None) -> bytes:
    """`data` as one complete gzip member; from offset `stored_from` on, stored as is (already compressed).

    Kept from our own writer: warcio's gzip wrapper deflates every record at level 9, with neither a level nor a way
    to store a payload that is already compressed, which measured markedly less writer CPU (bench/RESULTS.md §7).
    """
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
    payload = record.payload
    if record.type != "response" or len(payload) < STORE_MIN or not payload.startswith(COMPRESSED_MAGIC):
        return None
    return len(record.http_head)


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _set_warcinfo_id(fields: list[tuple[str, str]], warcinfo_id: str) -> None:
    """Set WARC-Warcinfo-ID, placed last but for a final Content-Length (where warcio's writer keeps it)."""
    for index in range(len(fields) - 1, -1, -1):
        if fields[index][0] == "WARC-Warcinfo-ID":
            fields[index] = ("WARC-Warcinfo-ID", warcinfo_id)
            return
    end = len(fields) - 1 if fields and fields[-1][0] == "Content-Length" else len(fields)
    fields.insert(end, ("WARC-Warcinfo-ID", warcinfo_id))


@dataclass(frozen=True, slots=True)
class WrittenRecord:
    """Where one record ended up: the final file name, its offset and its compressed length."""

    record_id: str
    record_type: str
    warc_file: str
    offset: int
    length: int


class RollingWarcWriter:
    """Writes record groups into rolling WARC files below one folder; thread-safe.

    `suffix` names the kind of file: `.warc.gz` for captures, `.warc.wet.gz` for extracted text (WET); both follow
    the same rules (warcinfo first, `.open` while written, rollover at `max_size`). A warcinfo without a `software`
    field gets `WRITER_SOFTWARE`.
    """

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
        if suffix not in SUFFIXES:
            raise ValueError(f"WARC file suffix must be one of {SUFFIXES}, not {suffix!r}")
        self.directory = Path(directory)
        self.prefix = prefix
        self.version = version
        self.max_size = max_size
        self.gzip_level = gzip_level
        self.suffix = suffix
        self.warcinfo_fields = warcinfo_fields or (lambda: [])
        self.on_close = on_close
        self.suffix = suffix
        self.host = safe_hostname()
        self.pid = os.getpid()
        self.serial = 0
        self.closed_files: list[Path] = []
        self._lock = threading.Lock()
        self._records_out = RecordWriter(io.BytesIO(), version)
        self._file: io.FileIO | None = None
        self._path: Path | None = None  # the .open path
        self._warcinfo_id = ""
        self._size = 0  # the file's true size: every byte in it belongs to a complete record
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
        f = open(path, "xb", buffering=0)  # noqa: SIM115 - kept open across calls; unbuffered: no hidden bytes
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._file, self._path, self._size, self._records = f, path, 0, 0
        fields = list(self.warcinfo_fields())
        if not any(key == "software" for key, _ in fields):
            fields.insert(0, ("software", WRITER_SOFTWARE))
        info = build_warcinfo(name, fields, datetime.now(UTC), self.version)
        self._warcinfo_id = info.record_id
        self._append(self._member(info))

    def _close(self) -> Path | None:
        if self._file is None or self._path is None:
            return None
        f, path = self._file, self._path
        final = path.with_name(path.name.removesuffix(OPEN_SUFFIX))
        try:
            os.fsync(f.fileno())
            os.rename(path, final)
            fsync_dir(self.directory)
        except OSError as e:
            self._abandon()
            reason = f"not closed ({e.strerror or e}); left as it is for `scrapy warc-recover`"
            raise WarcWriteError(path, reason, e) from e
        f.close()  # releases the lock only once the final name is in place
        self._file = self._path = None
        self.closed_files.append(final)
        return final

    def _abandon(self) -> None:
        """Stop writing the current file without renaming it (a later recovery cuts it at its last whole record)."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        self._file = self._path = None

    def close(self) -> Path | None:
        """Close and rename the current file (if any); calls on_close with its final path."""
        with self._lock:
            final = self._close()
        if final is not None and self.on_close:
            self.on_close(final)
        return final

    def _append(self, data: bytes) -> None:
        """Write `data` at the end of the file, all of it, or cut the file back and raise WarcWriteError."""
        assert self._file is not None and self._path is not None
        f, good = self._file, self._size
        try:
            view = memoryview(data)
            while view:
                n = f.write(view)
                if not n:
                    raise OSError(errno.EIO, "write() wrote nothing")
                view = view[n:]
            position = f.tell()  # the file's own word, not a count kept beside it
            if position != good + len(data):
                raise OSError(errno.EIO, f"file position {position} after the write, expected {good + len(data)}")
        except OSError as e:
            raise self._cut_back(good, e) from e
        self._size = good + len(data)

    def _cut_back(self, good: int, cause: OSError) -> WarcWriteError:
        """Cut the file back to `good` bytes (its last complete record), or give it up; the error to raise."""
        assert self._file is not None and self._path is not None
        path, reason = self._path, cause.strerror or str(cause)
        try:
            os.ftruncate(self._file.fileno(), good)
            self._file.seek(good)
            size = os.fstat(self._file.fileno()).st_size
            if size != good:
                raise OSError(errno.EIO, f"still {size} bytes after truncating to {good}")
        except OSError as e:
            self._abandon()
            reason = f"{reason}; could not cut it back to {good} bytes ({e}), left for recovery"
            return WarcWriteError(path, reason, cause)
        if good == 0:  # the warcinfo record failed: no file at all rather than one without it
            self._abandon()
            path.unlink(missing_ok=True)
            return WarcWriteError(path, f"{reason}; nothing written, file removed", cause)
        return WarcWriteError(path, f"{reason}; cut back to its last complete record ({good} bytes)", cause)

    # --- records ------------------------------------------------------------------------------------------
    def _member(self, record: WarcRecord) -> bytes:
        """One record serialized by warcio's writer, as one gzip member (already compressed payloads stored)."""
        out = self._records_out.out = io.BytesIO()  # a fresh buffer: getvalue() then hands it over without a copy
        record.write_to(self._records_out)
        data = out.getvalue()
        start = compressed_payload_start(record)
        # warcio writes the block and CRLF CRLF last: the payload starts this far from the end
        stored_from = None if start is None else len(data) - 4 - len(record.payload)
        return gzip_member(data, self.gzip_level, stored_from)

    def _encode(self, records: Sequence[WarcRecord]) -> list[bytes]:
        members = []
        for record in records:
            _set_warcinfo_id(record.headers, self._warcinfo_id)
            members.append(self._member(record))
        return members

    def write(self, records: Sequence[WarcRecord]) -> list[WrittenRecord]:
        """Write records together into one file (rolling over first if they would pass max_size); where they are.

        Raises WarcWriteError when the file cannot take them: none of them is then in the file.
        """
        rolled: Path | None = None
        try:
            with self._lock:
                if self._file is None:
                    self._open()
                members = self._encode(records)
                total = sum(map(len, members))
                if self._records and self._size + total > self.max_size:
                    rolled = self._close()
                    self._open()
                    members = self._encode(records)
                name = self.current_name or ""
                offset = self._size
                written = []
                for record, member in zip(records, members, strict=True):
                    written.append(WrittenRecord(record.record_id, record.type, name, offset, len(member)))
                    offset += len(member)
                self._append(b"".join(members))
                self._records += len(records)
        finally:  # a file closed on rollover is handed on even if the next one then fails
            if rolled is not None and self.on_close:
                self.on_close(rolled)
        return written
